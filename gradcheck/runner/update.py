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

from gradcheck.errors import (
    GradientMismatchError,
    GradientStructureError,
    InvalidParameterError,
    ParameterTypeError,
    UserFunctionError,
)
from gradcheck.problem.calls import require_callable
from gradcheck.problem.space import ParameterSpace
from gradcheck.results import CheckResult, ParameterResult
from gradcheck.runner.check import check
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
        if self.kind == "inconclusive":
            return "inconclusive"
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
        head = {"passed": "PASSED", "failed": "FAILED", "inconclusive": "INCONCLUSIVE"}[self.status]
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


def _widen(
    result: CheckResult, rounding: NDArray[np.float64], space: ParameterSpace
) -> CheckResult:
    """``result`` with every tolerance widened by the update's own rounding."""
    parameters: list[ParameterResult] = []
    for parameter, leaf in zip(result.parameters, space.leaves, strict=True):
        extra = rounding[leaf.slice].reshape(leaf.shape)
        tolerance = np.where(parameter.checked, parameter.tolerance + extra, parameter.tolerance)
        parameters.append(
            replace(
                parameter,
                tolerance=tolerance,
                tolerance_source=parameter.tolerance_source
                + "; plus 2 eps (|params| + |new|) / lr for the update's own rounding",
            )
        )
    widened = replace(result, parameters=tuple(parameters))
    if widened.passed and widened.diagnosis is not None:
        widened = replace(widened, diagnosis=None)
    return widened


# -- how a failing step differs ----------------------------------------------------------------


@dataclass(frozen=True)
class _Evidence:
    name: str
    implied: NDArray[np.float64]  # checked elements, flat
    reference: NDArray[np.float64]
    tolerance: NDArray[np.float64]
    shape: tuple[int, ...]
    implied_full: NDArray[np.float64]
    reference_full: NDArray[np.float64]
    tolerance_full: NDArray[np.float64]
    complete: bool
    layer_input: NDArray[np.float64] | None


def _fits(fitted: NDArray[np.float64], evidence: _Evidence, factor: float = 1.0) -> bool:
    with np.errstate(invalid="ignore"):
        return bool(
            np.all(
                np.abs(fitted - evidence.reference) <= evidence.tolerance * max(1.0, abs(factor))
            )
        )


def _fraction(c: float) -> str:
    """``2``, ``1/4``, ``-1`` or ``0.3712`` for a factor."""
    for n in range(1, 65):
        if math.isclose(abs(c), n, rel_tol=1e-6):
            return f"{'-' if c < 0 else ''}{n}"
        if math.isclose(abs(c), 1 / n, rel_tol=1e-6):
            return f"{'-' if c < 0 else ''}1/{n}"
    return f"{c:.4g}"


def _frozen(e: _Evidence) -> ParameterUpdate | None:
    if np.all(np.abs(e.implied) <= e.tolerance):
        return ParameterUpdate(
            e.name,
            "frozen",
            0.0,
            f"the step leaves {e.name} unchanged, but dL/d{e.name} is not zero "
            f"(largest |dL/d{e.name}| = {float(np.max(np.abs(e.reference))):.3g}): "
            "is its update missing, or applied to a copy?",
        )
    return None


def _scaled(e: _Evidence) -> ParameterUpdate | None:
    norm = float(e.reference @ e.reference)
    if norm == 0:
        return None
    c = float(e.implied @ e.reference) / norm
    # The implied gradient is c * reference: then reference = implied / c within tolerance.
    if c == 0 or not _fits(e.implied / c, e, 1 / abs(c)):
        return None
    if math.isclose(c, -1.0, rel_tol=1e-6) or _fits(-e.implied, e):
        return ParameterUpdate(
            e.name,
            "ascent",
            -1.0,
            f"the step moves {e.name} by +lr * dL/d{e.name}: it climbs the loss. The sign is "
            "flipped: new = params - lr * dL/dparams is descent. (A term written as (y - "
            "prediction) is already minus the gradient of 1/2 (prediction - y)^2: subtract "
            "the gradient, or add that term, not both.)",
        )
    if c < 0:
        return ParameterUpdate(
            e.name,
            "ascent",
            c,
            f"the step moves {e.name} by +{_fraction(-c)} * lr * dL/d{e.name}: it climbs the "
            "loss (the sign is flipped, and the size is off by a factor too)",
        )
    return ParameterUpdate(
        e.name,
        "factor",
        c,
        f"the step is descent with {_fraction(c)} x the learning rate on {e.name}: "
        f"new = params - {_fraction(c)} * lr * dL/dparams. Usual causes: a missing 1/2 in the "
        "loss (factor 2), a sum where the loss takes a mean (factor = number of samples), "
        "a learning rate applied twice",
    )


def _per_sample_delta(e: _Evidence) -> ParameterUpdate | None:
    a = e.layer_input
    if a is None or len(e.shape) != 2 or not e.complete:
        return None
    if a.ndim != 2 or a.shape[0] != e.shape[0]:
        return None
    samples, units = e.shape
    summed = a.T @ e.implied_full  # what the term would be if it were the per-sample delta
    if summed.shape != e.shape:
        return None
    evidence = replace(
        e,
        implied=summed.ravel(),
        reference=e.reference_full.ravel(),
        tolerance=e.tolerance_full.ravel(),
    )
    norm = float(summed.ravel() @ summed.ravel())
    if norm == 0:
        return None
    for sign in (1.0, -1.0):
        if _fits(sign * summed.ravel(), evidence):
            break
    else:
        return None
    flipped = sign < 0
    return ParameterUpdate(
        e.name,
        "per_sample_delta",
        None,
        f"the term subtracted from {e.name} is {'minus ' if flipped else ''}the layer's delta "
        f"(dL/dz, one row per sample: {samples} samples x {units} units), not dL/d{e.name}. "
        f"The gradient is the layer input transposed times delta, dL/dW = a_prev.T @ delta: "
        "the sum over samples of each sample's outer product, which has W's shape. Here delta "
        f"has {e.name}'s shape {e.shape} only because the number of samples ({samples}) equals "
        f"{e.name}'s number of rows; with another batch size this update would not even run."
        + (
            " Its sign is flipped as well: delta is dL/dz, while the term used here is -delta "
            "(written (y - a) * ...), so even a_prev.T @ term would climb the loss; adding "
            "lr * a_prev.T @ term, as the working code does, is exactly "
            "W - lr * a_prev.T @ delta = W - lr * dL/dW."
            if flipped
            else ""
        ),
    )


def _different(e: _Evidence) -> ParameterUpdate:
    norms = float(np.linalg.norm(e.implied)) * float(np.linalg.norm(e.reference))
    cosine = float(e.implied @ e.reference) / norms if norms else float("nan")
    hint = ""
    if len(e.shape) == 2 and e.layer_input is None:
        hint = (
            " If the update uses the layer's delta (dL/dz, one row per sample) in place of "
            f"dL/dW = a_prev.T @ delta, pass layer_inputs={{{e.name!r}: a_prev}} to "
            "confirm it."
        )
    return ParameterUpdate(
        e.name,
        "different",
        None,
        f"the step on {e.name} is not along -dL/d{e.name}: the implied gradient "
        f"(params - new) / lr and the reference point in different directions (cosine "
        f"{cosine:.3f}); it is the gradient of another function, or not a gradient at all.{hint}",
    )


#: Patterns tried in order on each failing parameter; the first that fits explains it.
PATTERNS: dict[str, Callable[[_Evidence], ParameterUpdate | None]] = {
    "frozen": _frozen,
    "scaled": _scaled,
    "per_sample_delta": _per_sample_delta,
}


def _classify(
    result: CheckResult, layer_inputs: Mapping[str, NDArray[np.float64]]
) -> tuple[ParameterUpdate, ...]:
    found = []
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
        checked = p.checked & np.isfinite(p.reference)
        analytic = p.analytic.astype(np.float64)
        evidence = _Evidence(
            name=p.name,
            implied=analytic[checked],
            reference=p.reference[checked],
            tolerance=p.tolerance[checked],
            shape=p.shape,
            implied_full=analytic,
            reference_full=p.reference,
            tolerance_full=p.tolerance,
            complete=bool(checked.all()),
            layer_input=layer_inputs.get(p.name),
        )
        for pattern in PATTERNS.values():
            finding = pattern(evidence)
            if finding is not None:
                break
        else:
            finding = _different(evidence)
        found.append(finding)
    return tuple(found)


def _summarise(parameters: tuple[ParameterUpdate, ...]) -> tuple[str, str, float | None]:
    failing = [p for p in parameters if not p.passed]
    if not failing:
        return (
            "descent",
            "new = params - lr * dL/dparams for every parameter: the implied "
            "gradient (params - new) / lr matches the references in every element checked",
            1.0,
        )
    kinds = {p.kind for p in failing}
    factors = [p.factor for p in failing]
    same_factor = all(f is None for f in factors) or all(
        f is not None and factors[0] is not None and math.isclose(f, factors[0], rel_tol=1e-6)
        for f in factors
    )
    fine = [p.name for p in parameters if p.passed]
    tail = f"\n({', '.join(fine)}: gradient descent, correct)" if fine else ""
    if len(kinds) == 1 and same_factor:
        kind = kinds.pop()
        factor = failing[0].factor
        if len(failing) == 1:
            return kind, failing[0].explanation + tail, factor
        names = ", ".join(p.name for p in failing)
        return kind, f"{names}: " + failing[0].explanation + tail, factor
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


def _layer_inputs(layer_inputs: Any, space: ParameterSpace) -> dict[str, NDArray[np.float64]]:
    if layer_inputs is None:
        return {}
    if not isinstance(layer_inputs, Mapping):
        raise ParameterTypeError(
            f"layer_inputs: expected a mapping {{parameter name: a_prev}}, got "
            f"{type(layer_inputs).__name__}"
        )
    out = {}
    for name, value in layer_inputs.items():
        if name not in space.names:
            raise InvalidParameterError(
                f"layer_inputs: {name!r} is not a parameter (parameters are "
                f"{', '.join(map(repr, space.names))})"
            )
        array = np.asarray(value, dtype=np.float64)
        if array.ndim != 2:
            raise InvalidParameterError(
                f"layer_inputs: {name!r} must be a 2-D (samples, inputs) array, got shape "
                f"{array.shape}"
            )
        out[name] = array
    return out


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
    method: str = "auto",
    atol: float | None = None,
    rtol: float | None = None,
    elements: int | None = None,
    rng: Any = None,
    diagnose: bool = True,
    mode: str = "auto",
    budget: float | int | None = None,
    workers: int | None = None,
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
    method, atol, rtol, elements, rng, diagnose
        As in :func:`gradcheck.check`, which judges the implied gradient.
    workers
        As in :func:`gradcheck.check`: the loss's evaluations in worker processes.
    mode, budget
        As in :func:`gradcheck.check`, except that ``directional`` is refused:
        an update is classified element by element, so ``auto`` checks every
        element (``sampled`` with ``elements``).

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
    lr = _validate(step, loss, lr)
    space = ParameterSpace(params)
    inputs = _layer_inputs(layer_inputs, space)
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
        method=method,
        atol=atol,
        rtol=rtol,
        elements=elements,
        rng=rng,
        diagnose=diagnose,
        mode=_elementwise_mode(mode, elements),
        budget=budget,
        workers=workers,
    )
    result = _widen(result, rounding, space)
    if result.status == "inconclusive":
        hazards = "; ".join(str(h) for h in result.hazards if h.blocking)
        return UpdateResult(
            "inconclusive", hazards, lr, (), result, None, time.perf_counter() - started
        )
    parameters = _classify(result, inputs)
    kind, explanation, factor = _summarise(parameters)
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
    result = check_update(step, loss, params, lr, **options)
    if not result.passed:
        raise GradientMismatchError(result)
    return result
