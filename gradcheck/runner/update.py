"""``check_update``: is a training step gradient descent on the loss it claims to minimise?

A step ``new = step(params)`` taken with learning rate ``lr`` *implies* a
gradient, ``(params - new) / lr``.  Gradient descent is the statement that
this implied gradient is ``dL/dparams``; so the implied gradient goes through
:func:`gradcheck.check` like any hand-written gradient, with the same
independent references and the same derived tolerance (widened only by the
update's own rounding, ``eps (|params| + |new|) / lr``).  When it does not
match, the pattern of the mismatch says how the step differs: it climbs
(``new = params + lr * grad``), it is descent scaled by a constant factor, it
leaves a parameter unchanged, it uses a layer's per-sample delta where
``a_prev.T @ delta`` belongs, or it follows some other direction.

This is the seed question asked of any training loop: the post's working
update ``weight2 + lr * a1.T @ dC_dw2`` passes (``dC_dw2`` is *minus* delta,
so ``+`` is descent), and its textbook update ``weight2 - lr * dC_dw2`` fails
with the reason.
"""

from __future__ import annotations

import math
import re
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.diagnosis import validate_layer_inputs
from gradcheck.diagnosis.factors import (
    factor_candidates,
    fit_factor,
    simple_fraction,
    within_tolerance,
)
from gradcheck.errors import (
    GradientStructureError,
    InvalidParameterError,
    ParameterTypeError,
    UserFunctionError,
    raise_unless_passed,
)
from gradcheck.options import CheckOptions
from gradcheck.problem.calls import require_callable
from gradcheck.problem.space import ParameterSpace
from gradcheck.results import CheckResult, Diagnosis, ElementValues, ParameterResult
from gradcheck.runner.check import check
from gradcheck.runner.derivatives.binding import WithArguments, require_accepts
from gradcheck.verdict.tolerance import ESTIMATE_SAFETY

__all__ = ["check_update", "assert_update", "UpdateResult", "ParameterUpdate", "UPDATE_KINDS"]

#: What a step can be, in words.  ``descent`` is the only passing kind.
UPDATE_KINDS: dict[str, str] = {
    "descent": "gradient descent: new = params - lr * dL/dparams",
    "ascent": "gradient ascent: the step climbs the loss (new = params + lr * dL/dparams)",
    "factor": "gradient descent scaled by a constant factor",
    "frozen": "the step leaves the parameter unchanged",
    "per_sample_delta": (
        "the update term is a layer's per-sample delta, not dL/dW = a_prev.T @ delta"
    ),
    "different": "the step does not follow the gradient of this loss",
    "shape": "the update term does not have the parameter's shape",
    "mixed": "parameters differ from gradient descent in different ways",
    "inconclusive": "no verdict possible (see the hazards)",
    "hazard": "the step writes into its input, or its loss does (see the hazards)",
}


@dataclass(frozen=True)
class ParameterUpdate:
    """How the step treats one parameter.

    Attributes
    ----------
    name : str
        The parameter's path.
    kind : str
        A key of :data:`UPDATE_KINDS`.
    factor : float or None
        ``c`` with implied gradient ``= c * dL/dparam`` when the step is
        (scaled) descent or ascent; None otherwise.
    explanation : str
        The finding in words, with the numbers behind it.
    """

    name: str
    kind: str
    factor: float | None
    explanation: str

    @property
    def passed(self) -> bool:
        return self.kind == "descent"

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "kind": self.kind,
            "passed": self.passed,
            "factor": self.factor,
            "explanation": self.explanation,
        }


@dataclass(frozen=True, eq=False)
class UpdateResult:
    """The outcome of :func:`check_update`.

    Attributes
    ----------
    kind : str
        The verdict, a key of :data:`UPDATE_KINDS` (``"descent"`` passes).
    explanation : str
        Why, in words.
    lr : float
        The learning rate the step was checked with.
    parameters : tuple of ParameterUpdate
        Per-parameter findings (empty when the step could not run).
    check : CheckResult or None
        The check of the implied gradient ``(params - new) / lr`` against the
        references; None when the step could not be evaluated.
    factor : float or None
        The common factor ``c`` (implied gradient ``= c * dL/dparams``) when one fits.
    seconds : float
        Wall time.
    """

    kind: str
    explanation: str
    lr: float
    parameters: tuple[ParameterUpdate, ...] = ()
    check: CheckResult | None = None
    factor: float | None = None
    seconds: float = float("nan")

    @property
    def passed(self) -> bool:
        return self.kind == "descent" and self.check is not None and self.check.passed

    @property
    def status(self) -> str:
        if self.kind in ("inconclusive", "hazard"):
            return self.kind
        return "passed" if self.passed else "failed"

    def __bool__(self) -> bool:
        return self.passed

    def __getitem__(self, name: str) -> ParameterUpdate:
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        raise KeyError(
            f"no parameter named {name!r}; parameters are {[p.name for p in self.parameters]}"
        )

    def __str__(self) -> str:
        head = {
            "passed": "PASSED",
            "failed": "FAILED",
            "inconclusive": "INCONCLUSIVE",
            "hazard": "FAILED (hazard)",
        }[self.status]
        lines = [f"gradcheck update: {head}: {UPDATE_KINDS[self.kind]} (lr={self.lr:g})"]
        lines += ["  " + line for line in self.explanation.splitlines()]
        if self.check is not None:
            lines.append("  the implied gradient (params - new) / lr against the references:")
            lines += ["    " + line for line in str(self.check).splitlines()]
        return "\n".join(lines)

    def to_dict(self, *, arrays: bool = False) -> dict[str, Any]:
        """A JSON-safe dict; ``arrays=True`` adds the check's element values."""
        return {
            "passed": self.passed,
            "status": self.status,
            "kind": self.kind,
            "explanation": self.explanation,
            "lr": self.lr,
            "factor": self.factor,
            "seconds": self.seconds if math.isfinite(self.seconds) else None,
            "parameters": [p.to_dict() for p in self.parameters],
            "check": self.check.to_dict(arrays=arrays) if self.check is not None else None,
        }


# -- the step as a gradient ------------------------------------------------------------------


class _ShapeBug(Exception):
    """The step produced (or tried to combine) an update of the wrong shape."""

    def __init__(self, message: str, parameter: str | None) -> None:
        super().__init__(message)
        self.parameter = parameter


_SHAPE_WORDS = ("broadcast", "mismatch in its core dimension", "not aligned")
_SHAPE = re.compile(r"\((\d+(?:\s*,\s*\d+)*)?\s*,?\)")


def _shapes_in(text: str) -> list[tuple[int, ...]]:
    return [
        tuple(int(n) for n in match.group(1).split(",")) if match.group(1) else ()
        for match in _SHAPE.finditer(text)
    ]


class _Step:
    """``step`` seen as a gradient: ``(params - step(params)) / lr``, on private copies."""

    def __init__(self, step: Callable[[Any], Any], space: ParameterSpace, lr: float) -> None:
        self.step = step
        self.space = space
        self.lr = lr

    def new(self, tree: Any) -> tuple[NDArray[Any], NDArray[Any]]:
        """The flat parameters before and after one step from ``tree``."""
        before = self.space.flatten_like(tree, role="parameters")
        # The step gets fresh copies, so in-place updates (`p["w"] -= lr * g`) work and never
        # touch gradcheck's working arrays; a step that returns None is taken as in-place.
        fresh = self.space.unflatten(before)
        try:
            new = self.step(fresh)
        except ValueError as exc:
            if any(word in str(exc) for word in _SHAPE_WORDS):
                raise _ShapeBug(self._broadcast_message(exc), self._culprit(str(exc))) from exc
            raise UserFunctionError("step", "applying the update step", exc) from exc
        except Exception as exc:  # noqa: BLE001 - reported with context
            raise UserFunctionError("step", "applying the update step", exc) from exc
        if new is None:
            new = fresh
        try:
            after = self.space.flatten_like(new, role="update")
        except GradientStructureError as exc:
            culprit = next((n for n in self.space.names if repr(n) in str(exc)), None)
            raise _ShapeBug(f"the step returned {exc}".replace("update: ", "", 1), culprit) from exc
        return before, after

    def __call__(self, tree: Any) -> Any:
        before, after = self.new(tree)
        dtype = np.result_type(before.dtype, after.dtype)
        implied = (before.astype(dtype) - after.astype(dtype)) / dtype.type(self.lr)
        return self.space.unflatten(implied)

    def _culprit(self, text: str) -> str | None:
        shapes = _shapes_in(text)
        for leaf in self.space.leaves:
            if leaf.shape in shapes:
                return leaf.name
        return None

    def _broadcast_message(self, exc: ValueError) -> str:
        numpy_says = " ".join(str(exc).split())
        culprit = self._culprit(numpy_says)
        if culprit is not None:
            shape = dict(
                zip(self.space.names, (leaf.shape for leaf in self.space.leaves), strict=True)
            )[culprit]
            others = [s for s in _shapes_in(numpy_says) if s != shape]
            term = f" with a term of shape {others[0]}" if others else ""
            return (
                f"the step cannot run at these parameters: it combines {culprit} (shape "
                f"{shape}){term} (numpy: {numpy_says})"
            )
        shapes = ", ".join(f"{leaf.name} {leaf.shape}" for leaf in self.space.leaves)
        return f"the step cannot run at these parameters: {numpy_says} (parameter shapes: {shapes})"


def _rounding(step: _Step, space: ParameterSpace) -> NDArray[np.float64]:
    """Per element: ``ESTIMATE_SAFETY * eps * (|params| + |new|) / lr``, the step's rounding."""
    before, after = step.new(space.tree)
    space.restore()
    magnitude = np.abs(before.astype(np.float64)) + np.abs(after.astype(np.float64))
    return ESTIMATE_SAFETY * space.eps() * magnitude / step.lr


def _widen(result: CheckResult, rounding: NDArray[np.float64]) -> CheckResult:
    """``result`` with every tolerance widened by the update's own rounding."""
    widened_values: dict[int, ElementValues] = {}  # (the parameters share one, usually)
    parameters: list[ParameterResult] = []
    for parameter in result.parameters:
        values = parameter.values
        if id(values) not in widened_values:
            widened_values[id(values)] = values.widened(rounding)
        parameters.append(
            replace(
                parameter,
                values=widened_values[id(values)],
                tolerance_source=parameter.tolerance_source
                + f"; plus {ESTIMATE_SAFETY:g} eps (|params| + |new|) / lr for the update's own "
                "rounding",
            )
        )
    widened = replace(result, parameters=tuple(parameters))
    if widened.passed and widened.diagnosis is not None:
        widened = replace(widened, diagnosis=None)
    return widened


# -- how a failing step differs ----------------------------------------------------------------


@dataclass(frozen=True)
class _ImpliedGradient:
    """One parameter's implied gradient ``(params - new) / lr`` beside its reference.

    ``implied``, ``reference`` and ``tolerance`` are flat over the checked elements with a
    finite reference; the ``*_full`` arrays are in the parameter's shape, NaN where unchecked.
    """

    name: str
    implied: NDArray[np.float64]
    reference: NDArray[np.float64]
    tolerance: NDArray[np.float64]
    shape: tuple[int, ...]
    implied_full: NDArray[np.float64]
    reference_full: NDArray[np.float64]
    tolerance_full: NDArray[np.float64]
    complete: bool
    layer_input: NDArray[np.float64] | None


#: Informative elements a scaled step needs (the diagnosis needs MIN_INFORMATIVE = 2 to name a
#: cause): a step on a one-element parameter is a multiple of dL/dp whatever it is, so "scaled"
#: describes it exactly, where the other patterns (per-sample delta, a different direction) are
#: false.
_STEP_MIN_INFORMATIVE = 1


def _factor_text(c: float) -> str:
    """``2``, ``1/4``, ``-1``, ``2/3`` (simple fractions), or ``0.3712`` for a factor."""
    fraction = simple_fraction(c)
    return str(fraction) if fraction is not None else f"{c:.4g}"


def _factor_causes(c: float, gradient: _ImpliedGradient) -> str:
    """The causes that fit a step's factor ``|c|``, listed, none asserted (as the diagnosis)."""
    fraction = simple_fraction(abs(c))
    if fraction is None:
        return "not a simple fraction: a learning rate applied twice? a hard-coded constant?"
    n_samples = None if gradient.layer_input is None else gradient.layer_input.shape[0]
    dimensions = tuple(sorted({n for n in gradient.shape if n > 1}))
    causes = factor_candidates(fraction, n_samples, dimensions)
    if not causes:
        return f"no common cause of a factor {fraction} known (a hard-coded constant?)"
    return f"causes that fit a factor {fraction}: " + "; or ".join(causes)


def _frozen(gradient: _ImpliedGradient) -> ParameterUpdate | None:
    name = gradient.name
    if np.all(np.abs(gradient.implied) <= gradient.tolerance):
        return ParameterUpdate(
            name,
            "frozen",
            0.0,
            f"the step leaves {name} unchanged, but dL/d{name} is not zero "
            f"(largest |dL/d{name}| = {float(np.max(np.abs(gradient.reference))):.3g}): "
            "is its update missing, or applied to a copy?",
        )
    return None


def _scaled(gradient: _ImpliedGradient) -> ParameterUpdate | None:
    """The implied gradient is ``c * dL/dparam`` (:func:`fit_factor`): scaled descent or ascent."""
    fit = fit_factor(
        gradient.implied,
        gradient.reference,
        gradient.tolerance,
        min_informative=_STEP_MIN_INFORMATIVE,
    )
    if fit is None or not fit.fits or fit.factor == 0:
        return None
    c, name = fit.factor, gradient.name
    if c == -1:
        return ParameterUpdate(
            name,
            "ascent",
            -1.0,
            f"the step moves {name} by +lr * dL/d{name}: it climbs the loss. The sign is "
            "flipped: new = params - lr * dL/dparams is descent. (A term written as (y - "
            "prediction) is already minus the gradient of 1/2 (prediction - y)^2: subtract "
            "the gradient, or add that term, not both.)",
        )
    if c < 0:
        return ParameterUpdate(
            name,
            "ascent",
            c,
            f"the step moves {name} by +{_factor_text(-c)} * lr * dL/d{name}: it climbs the "
            f"loss (the sign is flipped, and the size is off by a factor too; "
            f"{_factor_causes(c, gradient)})",
        )
    return ParameterUpdate(
        name,
        "factor",
        c,
        f"the step is descent with {_factor_text(c)} x the learning rate on {name}: "
        f"new = params - {_factor_text(c)} * lr * dL/dparams ({_factor_causes(c, gradient)})",
    )


def _per_sample_delta(gradient: _ImpliedGradient) -> ParameterUpdate | None:
    a_prev = gradient.layer_input
    if a_prev is None or len(gradient.shape) != 2 or not gradient.complete:
        return None
    if a_prev.ndim != 2 or a_prev.shape[0] != gradient.shape[0]:
        return None
    samples, units = gradient.shape
    summed = a_prev.T @ gradient.implied_full  # the term's gradient if it is the per-sample delta
    if summed.shape != gradient.shape or float(summed.ravel() @ summed.ravel()) == 0:
        return None
    reference, tolerance = gradient.reference_full, gradient.tolerance_full
    for sign in (1.0, -1.0):
        if within_tolerance(sign * summed, reference, tolerance):
            break
    else:
        return None
    flipped = sign < 0
    name = gradient.name
    return ParameterUpdate(
        name,
        "per_sample_delta",
        None,
        f"the term subtracted from {name} is {'minus ' if flipped else ''}the layer's delta "
        f"(dL/dz, one row per sample: {samples} samples x {units} units), not dL/d{name}. "
        f"The gradient is the layer input transposed times delta, dL/dW = a_prev.T @ delta: "
        "the sum over samples of each sample's outer product, which has W's shape. Here delta "
        f"has {name}'s shape {gradient.shape} only because the number of samples ({samples}) "
        f"equals {name}'s number of rows; with another batch size this update would not even "
        "run."
        + (
            " Its sign is flipped as well: delta is dL/dz, while the term used here is -delta "
            "(written (y - a) * ...), so even a_prev.T @ term would climb the loss; adding "
            "lr * a_prev.T @ term, as the working code does, is exactly "
            "W - lr * a_prev.T @ delta = W - lr * dL/dW."
            if flipped
            else ""
        ),
    )


def _different(gradient: _ImpliedGradient, found: str | None = None) -> ParameterUpdate:
    """No pattern of a step fits: say how far off it is, and what the check of it found.

    ``found`` is the nested check's diagnosis of this parameter, when it names one: the step's
    explanation quotes it rather than guess another cause.
    """
    implied, reference, name = gradient.implied, gradient.reference, gradient.name
    norms = float(np.linalg.norm(implied)) * float(np.linalg.norm(reference))
    cosine = float(implied @ reference) / norms if norms else float("nan")
    hint = ""
    if found is not None:
        hint = f" The check of the implied gradient finds: {found}."
    elif len(gradient.shape) == 2 and gradient.layer_input is None:
        hint = (
            " If the update uses the layer's delta (dL/dz, one row per sample) in place of "
            f"dL/dW = a_prev.T @ delta, pass layer_inputs={{{name!r}: a_prev}} to "
            "confirm it."
        )
    return ParameterUpdate(
        name,
        "different",
        None,
        f"the step on {name} is not -lr * dL/d{name}: the implied gradient (params - new) / lr "
        f"differs from the reference by more than the tolerance, and by no constant factor "
        f"(cosine between them {cosine:.4f}).{hint}",
    )


#: Patterns tried in order on each failing parameter; the first that fits explains it.
PATTERNS: dict[str, Callable[[_ImpliedGradient], ParameterUpdate | None]] = {
    "frozen": _frozen,
    "scaled": _scaled,
    "per_sample_delta": _per_sample_delta,
}


def _implied_gradient(
    parameter: ParameterResult, layer_input: NDArray[np.float64] | None
) -> _ImpliedGradient:
    checked = parameter.checked & np.isfinite(parameter.reference)
    analytic = parameter.analytic.astype(np.float64)
    return _ImpliedGradient(
        name=parameter.name,
        implied=analytic[checked],
        reference=parameter.reference[checked],
        tolerance=parameter.tolerance[checked],
        shape=parameter.shape,
        implied_full=analytic,
        reference_full=parameter.reference,
        tolerance_full=parameter.tolerance,
        complete=bool(checked.all()),
        layer_input=layer_input,
    )


def _classify(
    result: CheckResult, layer_inputs: Mapping[str, NDArray[np.float64]]
) -> tuple[tuple[ParameterUpdate, ...], dict[str, _ImpliedGradient]]:
    """Each parameter's finding, and the implied gradients of the failing ones."""
    found = []
    gradients: dict[str, _ImpliedGradient] = {}
    for p in result.parameters:
        if p.passed:
            found.append(
                ParameterUpdate(
                    p.name,
                    "descent",
                    1.0,
                    f"{p.name}: new = {p.name} - lr * dL/d{p.name} in every element checked",
                )
            )
            continue
        gradient = gradients[p.name] = _implied_gradient(p, layer_inputs.get(p.name))
        for pattern in PATTERNS.values():
            finding = pattern(gradient)
            if finding is not None:
                break
        else:
            finding = _different(gradient, _nested_finding(result.diagnosis, p.name))
        found.append(finding)
    return tuple(found), gradients


def _nested_finding(diagnosis: Diagnosis | None, name: str) -> str | None:
    """What the check of the implied gradient found for parameter ``name``, if it named it."""
    if diagnosis is None or name not in diagnosis.parameters:
        return None
    if diagnosis.kind in ("unknown", "inconclusive", "hazard"):
        return None
    kinds = diagnosis.details.get("per_parameter")
    if kinds is None:  # one finding for this parameter (and perhaps others)
        return f"{diagnosis.summary} ({diagnosis.kind})"
    if kinds.get(name, "unknown") == "unknown":
        return None
    summary = diagnosis.details.get("summaries", {}).get(name)
    return None if summary is None else f"{summary} ({kinds[name]})"


def _shared_factor(
    failing: list[ParameterUpdate], gradients: Mapping[str, _ImpliedGradient]
) -> tuple[bool, float | None]:
    """Whether failing parameters of one kind share their factor, and the factor.

    Scaled steps share a factor when one constant fits all their elements: the same fit and
    tolerance test (:func:`fit_factor`) as each parameter's own.
    """
    factors = [p.factor for p in failing]
    if len(failing) == 1 or all(f is None for f in factors):
        return True, factors[0]
    if failing[0].kind not in ("factor", "ascent"):  # frozen: the factor is 0 for each
        return all(f == factors[0] for f in factors), factors[0]
    chosen = [gradients[p.name] for p in failing]
    fit = fit_factor(
        np.concatenate([g.implied for g in chosen]),
        np.concatenate([g.reference for g in chosen]),
        np.concatenate([g.tolerance for g in chosen]),
        min_informative=_STEP_MIN_INFORMATIVE,
    )
    if fit is None or not fit.fits:
        return False, None
    return True, fit.factor


def _summarise(
    parameters: tuple[ParameterUpdate, ...], gradients: Mapping[str, _ImpliedGradient]
) -> tuple[str, str, float | None]:
    failing = [p for p in parameters if not p.passed]
    if not failing:
        return (
            "descent",
            "new = params - lr * dL/dparams for every parameter: the implied "
            "gradient (params - new) / lr matches the references in every element checked",
            1.0,
        )
    kinds = {p.kind for p in failing}
    fine = [p.name for p in parameters if p.passed]
    tail = f"\n({', '.join(fine)}: gradient descent, correct)" if fine else ""
    if len(kinds) == 1:
        shared, factor = _shared_factor(failing, gradients)
        if shared and len(failing) == 1:
            return failing[0].kind, failing[0].explanation + tail, factor
        if shared:
            names = ", ".join(p.name for p in failing)
            return failing[0].kind, f"{names}: " + failing[0].explanation + tail, factor
    text = "\n".join(f"{p.name}: {p.explanation}" for p in failing) + tail
    return "mixed", text, None


def _validate(step: Any, loss: Any, lr: Any) -> float:
    require_callable(step, "step", "step(params) -> new params")
    require_callable(loss, "loss", "loss(params) -> float")
    if isinstance(lr, bool) or not isinstance(lr, (int, float, np.integer, np.floating)):
        raise ParameterTypeError(f"lr: expected a positive number, got {type(lr).__name__}")
    if not np.isfinite(lr) or lr <= 0:
        raise InvalidParameterError(f"lr: must be finite and > 0, got {lr!r}")
    return float(lr)


def _elementwise_mode(mode: Any, elements: int | None) -> str:
    """``check``'s mode for an update check: elementwise always (see :func:`check_update`)."""
    if mode == "directional":
        raise InvalidParameterError(
            "mode: check_update classifies the update element by element; use 'auto', 'full' "
            "or 'sampled', not 'directional'"
        )
    if mode == "auto":
        return "sampled" if elements is not None else "full"
    return str(mode)


def check_update(
    step: Callable[[Any], Any],
    loss: Callable[[Any], Any],
    params: Any,
    lr: float,
    *,
    layer_inputs: Mapping[str, Any] | None = None,
    **options: Any,
) -> UpdateResult:
    """Check that ``step`` is gradient descent on ``loss``: ``step(p) == p - lr * dL/dp``.

    Parameters
    ----------
    step : callable
        ``step(params) -> new_params`` in the structure of ``params``: one
        training update with learning rate ``lr``.  It receives fresh copies,
        so it may update them in place (and then may return None).
    loss : callable
        ``loss(params) -> float``, the loss the step should descend.
    params : array_like or nested dict/list/tuple of array_like
        Where to take the step.  Never modified.
    lr : float
        The learning rate the step uses (> 0).
    layer_inputs : mapping of str to array_like, optional, keyword-only
        For 2-D weights, the layer's input ``a_prev`` (samples x inputs) at
        ``params``: lets a failing step be recognised as using the layer's
        per-sample delta in place of ``a_prev.T @ delta``.

    Other Parameters
    ----------------
    **options
        The options of :func:`gradcheck.check` (defined once in
        :class:`gradcheck.options.CheckOptions`), which judges the implied
        gradient, except that ``mode="directional"`` is refused: an update is
        classified element by element, so ``auto`` checks every element
        (``sampled`` with ``elements``).  ``args`` go to both functions:
        ``step(params, *args)`` and ``loss(params, *args)`` (a step that takes
        its batch, as SciPy passes ``args`` to every function).

    Returns
    -------
    UpdateResult
        ``passed`` when the step is gradient descent; otherwise ``kind``
        (``ascent``, ``factor``, ``frozen``, ``per_sample_delta``,
        ``different``, ``shape``, ``mixed``) and an explanation, with the
        underlying :class:`~gradcheck.CheckResult` in ``check``.

    Raises
    ------
    ParameterTypeError, InvalidParameterError
        Bad ``step``, ``loss``, ``lr``, ``layer_inputs``, ``params`` or options.
    UserFunctionError
        ``loss`` or ``step`` raised something other than a shape error
        (shape errors in the step are the step's bug: ``kind == "shape"``).

    See Also
    --------
    gradcheck.check : the check of the implied gradient.
    assert_update : raise instead of returning a failed result.

    Notes
    -----
    The implied gradient is ``g = (params - step(params)) / lr``.  Rounding of
    ``new`` costs ``g`` up to ``eps (|params| + |new|) / lr``; that much
    (times the usual safety factor 2) is added to each element's tolerance,
    so a small learning rate is not mistaken for a wrong gradient.

    Examples
    --------
    >>> import numpy as np
    >>> from gradcheck.runner.update import check_update
    >>> loss = lambda w: float(np.sum(w ** 2))
    >>> check_update(lambda w: w - 0.1 * 2 * w, loss, np.array([1.0, -2.0]), 0.1).passed
    True
    >>> check_update(lambda w: w + 0.1 * 2 * w, loss, np.array([1.0, -2.0]), 0.1).kind
    'ascent'
    """
    started = time.perf_counter()
    settings = CheckOptions.from_keywords(options, function="check_update")
    lr = _validate(step, loss, lr)
    if settings.args:  # step(params, *args) and loss(params, *args), bound once here
        require_accepts(step, "step", 1, settings.args)
        require_accepts(loss, "loss", 1, settings.args)
        step, loss = WithArguments(step, settings.args), WithArguments(loss, settings.args)
    space = ParameterSpace(params)
    inputs = validate_layer_inputs(layer_inputs, space) or {}
    as_gradient = _Step(step, space, lr)
    try:
        rounding = _rounding(as_gradient, space)
    except _ShapeBug as bug:
        names = (bug.parameter,) if bug.parameter else ()
        explanation = str(bug) + (
            ". An update term whose shape is not the parameter's is often a layer's delta "
            "(dL/dz, one row per sample) used in place of dL/dW = a_prev.T @ delta, which "
            "sums the samples and has W's shape"
        )
        return UpdateResult(
            kind="shape",
            explanation=explanation,
            lr=lr,
            parameters=tuple(ParameterUpdate(n, "shape", None, explanation) for n in names),
            seconds=time.perf_counter() - started,
        )
    result = check(
        loss,
        as_gradient,
        params,
        **{
            **settings.keywords(),
            "layer_inputs": layer_inputs,  # the nested diagnosis names what the headline names
            "args": (),  # bound above, to the step too
            "mode": _elementwise_mode(settings.mode, settings.elements),
        },
    )
    result = _widen(result, rounding)
    if result.status in ("inconclusive", "hazard"):
        hazards = "; ".join(str(h) for h in result.hazards if h.blocking or h.fails_check)
        return UpdateResult(
            result.status, hazards, lr, (), result, None, time.perf_counter() - started
        )
    parameters, gradients = _classify(result, inputs)
    kind, explanation, factor = _summarise(parameters, gradients)
    return UpdateResult(
        kind, explanation, lr, parameters, result, factor, time.perf_counter() - started
    )


def assert_update(
    step: Callable[[Any], Any],
    loss: Callable[[Any], Any],
    params: Any,
    lr: float,
    **options: Any,
) -> UpdateResult:
    """Like :func:`check_update`, but raise ``GradientMismatchError`` unless the step is descent.

    Raises
    ------
    GradientMismatchError
        An ``AssertionError`` whose message is the readable report.
    """
    return raise_unless_passed(check_update(step, loss, params, lr, **options))
