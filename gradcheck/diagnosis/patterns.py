"""Diagnosis of likely bugs from the pattern of a failed comparison.

When a check fails, :func:`diagnose` looks at *how* the analytic gradient differs from the
reference and names the bug in plain words, with the numbers that support it.  Detectors are
tried from the most specific to the least (the registry :data:`DETECTORS`); when none fits,
the diagnosis says so (kind ``"unknown"``) rather than guess.

What each pattern means (``a`` the analytic gradient, ``r`` the reference, both per parameter):

========================  =====================================================================
``non-finite``            NaN or inf in ``a`` at the listed elements.
``precision``             ``a`` matches ``r`` only to float32 accuracy (relative ~1e-8..1e-5)
                          on a float64 problem, or every value of ``a`` is exactly a float32
                          number: the backward pass ran (or was cast) in float32.
``swapped``               ``a[P] = r[Q]`` and ``a[Q] = r[P]`` for two same-shaped parameters.
``sign-flip``             ``a = -r``.
``constant-factor``       ``a = c r``; ``c`` fitted by least squares and matched to 2, 1/2,
                          the batch size ``n``, ``1/n``, or another simple fraction.
``transposed``            ``a.T = r`` (square parameter).
``per-sample-delta``      ``a`` is the per-sample delta (one row per sample), not
                          ``a_prev.T @ delta``: its column sums equal the bias gradient of the
                          same layer, or ``a_prev.T @ a = r`` when the layer inputs are known.
``missing-samples``       the columns of ``a`` lie in the span of some samples' layer inputs
                          only (needs the layer inputs).
``zeroed``                ``a`` is exactly 0 at the failing elements (e.g. a whole row).
``parameter-proportional``  ``a - r = c x`` with ``x`` the parameter: a penalty's gradient is off.
``few-elements``          only a few elements are wrong: listed.
``different-point``       the gradient does not follow the parameters: along a random
                          direction the loss has curvature but the gradient does not change
                          (a stale cached forward pass, weights captured before an update).
``unknown``               none of the above.
``inconclusive``          nothing mismatched: a hazard (nondeterminism...) withheld the verdict.
========================  =====================================================================

The per-sample-delta and missing-samples patterns need to know what each layer's input was
when the layer has no bias: pass ``layer_inputs={"weight2": a1, ...}`` to
:func:`gradcheck.check` (``a_prev`` of the layer, shape ``(n_samples, fan_in)``).  That also
tells the diagnosis the batch size ``n``, so a factor ``n`` is named as such.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from fractions import Fraction
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.errors import InvalidParameterError, ParameterTypeError
from gradcheck.problem.calls import call_user
from gradcheck.problem.objective import Objective
from gradcheck.problem.space import Leaf, ParameterSpace
from gradcheck.results import Diagnosis, format_index

__all__ = ["Evidence", "diagnose", "DETECTORS", "describe_factor", "validate_layer_inputs"]

_F64 = NDArray[np.float64]


@dataclass(frozen=True, eq=False)
class Evidence:
    """Everything a diagnosis may look at: flat arrays over all elements, and the functions.

    Attributes
    ----------
    space : ParameterSpace
    analytic, reference, tolerance : ndarray
        Flat over all elements; ``reference`` is NaN where unchecked.
    checked, failed : ndarray of bool
    objective : Objective
        The loss, to spend a few extra evaluations.
    grad : callable
        The user's gradient, likewise.
    layer_inputs : mapping of str to ndarray, optional
        ``a_prev`` of the layer each weight parameter belongs to, shape ``(n, fan_in)``.
    """

    space: ParameterSpace
    analytic: _F64
    reference: _F64
    tolerance: _F64
    checked: NDArray[np.bool_]
    failed: NDArray[np.bool_]
    objective: Objective
    grad: Callable[[Any], Any]
    layer_inputs: Mapping[str, NDArray[Any]] | None = field(default=None)


@dataclass(frozen=True, eq=False)
class _Part:
    """One parameter's arrays, in its shape."""

    leaf: Leaf
    a: _F64
    r: _F64
    tol: _F64
    checked: NDArray[np.bool_]
    failed: NDArray[np.bool_]

    @property
    def name(self) -> str:
        return self.leaf.name

    def ok(self, candidate: _F64, tol: _F64 | None = None) -> bool:
        """``candidate`` matches the reference within tolerance at every checked element."""
        tol = self.tol if tol is None else tol
        with np.errstate(invalid="ignore"):
            good = np.abs(candidate - self.r) <= tol
        mask = self.checked & np.isfinite(self.r)
        return bool(mask.any() and np.all(good[mask]))


class _View:
    def __init__(self, evidence: Evidence) -> None:
        self.evidence = evidence
        space = evidence.space
        self.parts = [
            _Part(
                leaf,
                evidence.analytic[leaf.slice].reshape(leaf.shape).astype(np.float64),
                evidence.reference[leaf.slice].reshape(leaf.shape),
                evidence.tolerance[leaf.slice].reshape(leaf.shape),
                evidence.checked[leaf.slice].reshape(leaf.shape),
                evidence.failed[leaf.slice].reshape(leaf.shape),
            )
            for leaf in space.leaves
        ]
        self.failing = [p for p in self.parts if p.failed.any()]
        inputs = evidence.layer_inputs or {}
        self.layer_inputs = {k: np.asarray(v, dtype=np.float64) for k, v in inputs.items()}
        sizes = {v.shape[0] for v in self.layer_inputs.values() if v.ndim == 2}
        self.n_samples: int | None = sizes.pop() if len(sizes) == 1 else None

    def where(self, part: _Part, mask: NDArray[np.bool_], limit: int = 6) -> str:
        indices = [tuple(int(i) for i in idx) for idx in np.argwhere(mask)]
        text = ", ".join(f"{part.name}{format_index(i)}" for i in indices[:limit])
        return text + (f" and {len(indices) - limit} more" if len(indices) > limit else "")


Detector = Callable[[_View], Diagnosis | None]


def validate_layer_inputs(
    layer_inputs: Any, space: ParameterSpace
) -> dict[str, NDArray[np.float64]] | None:
    """Check :func:`gradcheck.check`'s ``layer_inputs``: weight name -> ``(n, fan_in)`` array.

    Raises
    ------
    ParameterTypeError
        Not a mapping, or an entry that is not a real 2-D array.
    InvalidParameterError
        An unknown or non-2-D parameter, a wrong ``fan_in``, or batch sizes that differ.
    """
    if layer_inputs is None:
        return None
    if not isinstance(layer_inputs, Mapping):
        raise ParameterTypeError(
            f"layer_inputs: expected a mapping of weight name to a_prev, got "
            f"{type(layer_inputs).__name__}"
        )
    leaves = {leaf.name: leaf for leaf in space.leaves}
    out: dict[str, NDArray[np.float64]] = {}
    for name, value in layer_inputs.items():
        if name not in leaves:
            raise InvalidParameterError(
                f"layer_inputs: {name!r} is not a parameter (parameters are "
                f"{', '.join(map(repr, leaves))})"
            )
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ParameterTypeError(f"layer_inputs[{name!r}]: not a real array ({exc})") from None
        shape = leaves[name].shape
        if len(shape) != 2 or array.ndim != 2 or array.shape[1] != shape[0]:
            raise InvalidParameterError(
                f"layer_inputs[{name!r}]: expected shape (n_samples, {shape[0]}) for a weight of "
                f"shape {shape}, got {array.shape}"
            )
        out[name] = array
    if len({a.shape[0] for a in out.values()}) > 1:
        raise InvalidParameterError("layer_inputs: the arrays have different numbers of samples")
    return out


# -- naming a factor ------------------------------------------------------------------------
def describe_factor(factor: float, n_samples: int | None = None) -> str:
    """Plain words for a constant factor between analytic and reference gradients.

    Examples
    --------
    >>> describe_factor(0.5)
    'half the true gradient: a missing factor 2 (or an extra 1/2)'
    >>> describe_factor(4.0, n_samples=4)
    '4 = n (the batch size) times the true gradient: summed over samples where the loss averages'
    """
    sign = "" if factor > 0 else "the sign flipped and "
    c = abs(factor)
    fraction = Fraction(c).limit_denominator(64)
    simple = fraction.numerator <= 64 and abs(float(fraction) - c) <= 1e-8 * c
    if simple and fraction == 2:
        return sign + (
            "twice the true gradient: an extra factor 2 (e.g. the derivative of "
            "(a - y)**2 used for a loss 1/2 (a - y)**2: a missing 1/2)"
        )
    if simple and fraction == Fraction(1, 2):
        return sign + "half the true gradient: a missing factor 2 (or an extra 1/2)"
    if simple and n_samples is not None and n_samples > 1:
        if fraction == n_samples:
            return sign + (
                f"{n_samples} = n (the batch size) times the true gradient: summed "
                "over samples where the loss averages"
            )
        if fraction == Fraction(1, n_samples):
            return sign + (
                f"1/{n_samples} = 1/n (the batch size) of the true gradient: "
                "averaged over samples where the loss sums"
            )
    if simple and fraction.denominator == 1:
        return sign + (
            f"{fraction.numerator} times the true gradient: a sum where a mean over "
            f"{fraction.numerator} items (samples? outputs?) was meant"
        )
    if simple and fraction.numerator == 1:
        return sign + (
            f"1/{fraction.denominator} of the true gradient: a mean over "
            f"{fraction.denominator} items (samples? outputs?) where the loss sums"
        )
    if simple:
        return sign + f"{fraction} times the true gradient"
    if abs(abs(c) - 1) < 1e-2:
        return sign + (
            f"{c:.8g} times the true gradient: not a simple fraction, slightly off "
            "everywhere (a constant such as 1.0001? or, when every gradient is tiny, "
            "a derivative formula like a * (1 - a) or 1 - a**2 evaluated where a "
            "rounds near 1: saturation)"
        )
    return sign + (
        f"{c:.8g} times the true gradient: not a simple fraction (a hard-coded "
        "constant? a learning rate folded into the gradient?)"
    )


def _fit_factor(parts: list[_Part]) -> tuple[float, bool, int] | None:
    """Least-squares ``c`` in ``a = c r`` over the parts' checked elements; does it fit?"""
    a = np.concatenate([p.a[p.checked] for p in parts])
    r = np.concatenate([p.r[p.checked] for p in parts])
    tol = np.concatenate([p.tol[p.checked] for p in parts])
    finite = np.isfinite(a) & np.isfinite(r)
    a, r, tol = a[finite], r[finite], tol[finite]
    informative = int(np.sum(np.abs(r) > tol))
    denominator = float(np.dot(r, r))
    if informative < 2 or denominator == 0:
        return None
    c = float(np.dot(a, r) / denominator)

    def fits(k: float) -> bool:
        return bool(np.all(np.abs(a - k * r) <= tol * max(1.0, abs(k))))

    # A simple fraction that fits as well is the better explanation: the reference of failing
    # elements may be a Richardson estimate good to only a few digits.
    simple = Fraction(abs(c)).limit_denominator(64)
    if simple != 0 and simple.numerator <= 64 and fits(float(np.sign(c) * simple)):
        return float(np.sign(c) * simple), True, informative
    return c, fits(c), informative


def _factor_diagnosis(parts: list[_Part], view: _View) -> Diagnosis | None:
    fit = _fit_factor(parts)
    if fit is None or not fit[1]:
        return None
    c, _, informative = fit
    if c == 0:
        return None  # an all-zero gradient is the "zeroed" pattern, not a factor
    names = tuple(p.name for p in parts)
    evidence = (
        f"a least-squares fit of analytic = c x reference over {informative} elements "
        f"gives c = {c:.10g}; every element fits within its tolerance"
    )
    if abs(c + 1) <= 1e-8:
        return Diagnosis(
            "sign-flip",
            f"{', '.join(names)}: the sign is flipped (analytic = "
            "-reference): '+' where '-' belongs (y - a instead of a - y?)",
            evidence,
            names,
            {"factor": c},
        )
    words = describe_factor(c, view.n_samples)
    return Diagnosis(
        "constant-factor",
        f"{', '.join(names)}: off by a constant factor: {words}",
        evidence,
        names,
        {"factor": c, "n_samples": view.n_samples},
    )


# -- global detectors -----------------------------------------------------------------------
def _non_finite(view: _View) -> Diagnosis | None:
    bad = [(p, ~np.isfinite(p.a)) for p in view.parts if not np.all(np.isfinite(p.a))]
    if not bad:
        return None
    where = "; ".join(view.where(p, mask) for p, mask in bad)
    values = sorted({repr(float(v)) for p, mask in bad for v in p.a[mask]})
    return Diagnosis(
        "non-finite",
        f"the gradient has {'/'.join(values)} at {where}",
        "non-finite values where the reference is finite: a division by zero, log(0) or an "
        "overflow in the backward pass",
        tuple(p.name for p, _ in bad),
        {"elements": {p.name: [list(map(int, i)) for i in np.argwhere(m)] for p, m in bad}},
    )


def _relative_errors(part: _Part) -> _F64:
    scale = float(np.max(np.abs(part.r[part.checked & np.isfinite(part.r)]), initial=0.0))
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.abs(part.a - part.r) / scale if scale > 0 else np.full(part.a.shape, np.inf)


def _precision(view: _View) -> Diagnosis | None:
    if not all(p.leaf.dtype == np.float64 for p in view.parts) or not view.failing:
        return None
    analytic = np.concatenate([p.a.ravel() for p in view.parts])
    nonzero = analytic[analytic != 0]
    exact32 = bool(
        len(np.unique(nonzero)) >= 3
        and np.all(nonzero.astype(np.float32).astype(np.float64) == nonzero)
    )
    relative = np.concatenate([_relative_errors(p)[p.failed] for p in view.failing])
    worst = float(np.max(relative))
    failing = sum(int(p.failed.sum()) for p in view.failing)
    checked = sum(int(p.checked.sum()) for p in view.failing)
    spread = failing >= max(2, 0.3 * checked)
    if exact32 and worst <= 1e-4:
        return Diagnosis(
            "precision",
            "precision-limited: the gradient was computed in float32 on a float64 problem "
            "(an array cast to float32 in the backward pass?)",
            f"every one of the {len(nonzero)} nonzero gradient values is exactly a float32 "
            f"number, and the errors (up to {worst:.2g} of the gradient scale) are at float32 "
            "level",
            tuple(p.name for p in view.failing),
            {"max_relative_error": worst, "float32_exact": True},
        )
    if spread and 1e-10 <= worst <= 1e-5:
        return Diagnosis(
            "precision",
            "precision-limited: the errors look like float32 arithmetic on a float64 problem",
            f"{failing} of {checked} elements fail with small errors spread across them, up to "
            f"{worst:.2g} of the gradient scale (float32 rounding is ~6e-8)",
            tuple(p.name for p in view.failing),
            {"max_relative_error": worst, "float32_exact": False},
        )
    return None


def _swapped(view: _View) -> Diagnosis | None:
    for i, p in enumerate(view.parts):
        for q in view.parts[i + 1 :]:
            if p.a.shape != q.a.shape or not (p.failed.any() or q.failed.any()):
                continue
            if p.ok(q.a, np.maximum(p.tol, q.tol)) and q.ok(p.a, np.maximum(p.tol, q.tol)):
                return Diagnosis(
                    "swapped",
                    f"the gradients of {p.name} and {q.name} are swapped",
                    f"the analytic {p.name} matches the reference {q.name} and vice versa, "
                    "within tolerance",
                    (p.name, q.name),
                )
    return None


def _global_factor(view: _View) -> Diagnosis | None:
    if not view.failing:
        return None
    diagnosis = _factor_diagnosis(view.failing, view)
    if diagnosis is None and len(view.failing) < len(view.parts):
        # The factor may also apply to parameters that passed only because their gradient is 0.
        return None
    return diagnosis


# -- per-parameter detectors ----------------------------------------------------------------
def _transposed(part: _Part, view: _View) -> Diagnosis | None:
    if part.a.ndim != 2 or part.a.shape[0] != part.a.shape[1] or part.a.shape[0] < 2:
        return None
    if part.ok(part.a.T, np.maximum(part.tol, part.tol.T)):
        return Diagnosis(
            "transposed",
            f"{part.name}: the gradient is transposed (delta.T @ a_prev instead "
            "of a_prev.T @ delta?)",
            f"analytic.T matches the reference of {part.name} within tolerance",
            (part.name,),
        )
    return None


def _bias_partner(part: _Part, view: _View) -> _Part | None:
    index = view.parts.index(part)
    if index + 1 < len(view.parts):
        other = view.parts[index + 1]
        if other.a.shape == (part.a.shape[1],):
            return other
    return None


def _per_sample_delta(part: _Part, view: _View) -> Diagnosis | None:
    if part.a.ndim != 2:
        return None
    inputs = view.layer_inputs.get(part.name)
    if inputs is not None and inputs.shape == (part.a.shape[0], part.a.shape[0]):
        product = inputs.T @ part.a
        room = part.tol + 64 * np.finfo(np.float64).eps * (np.abs(inputs.T) @ np.abs(part.a))
        if part.ok(product, room):
            return Diagnosis(
                "per-sample-delta",
                f"{part.name}: the per-sample delta (one row per sample) was "
                "returned as the weight gradient; dL/dW = a_prev.T @ delta sums the outer "
                "products of each sample's input with its delta",
                f"a_prev.T @ analytic matches the reference of {part.name}; the shapes only "
                f"agree because the batch has {inputs.shape[0]} samples and the layer "
                f"{inputs.shape[0]} inputs",
                (part.name,),
            )
    bias = _bias_partner(part, view)
    if bias is not None and not bias.failed.any() and part.a.shape[0] > 1:
        room = bias.tol + 64 * np.finfo(np.float64).eps * np.abs(part.a).sum(axis=0)
        if bias.ok(part.a.sum(axis=0), room):
            return Diagnosis(
                "per-sample-delta",
                f"{part.name}: the per-sample delta (one row per sample) was "
                "returned as the weight gradient; dL/dW = a_prev.T @ delta",
                f"the rows of the analytic {part.name} sum to the bias gradient {bias.name} "
                "(= the sum of delta over samples), as delta's rows do",
                (part.name,),
            )
    return None


def _missing_samples(part: _Part, view: _View) -> Diagnosis | None:
    inputs = view.layer_inputs.get(part.name)
    if inputs is None or part.a.ndim != 2 or inputs.shape[1] != part.a.shape[0]:
        return None
    n, fan_in = inputs.shape
    if fan_in < 2 or n < 2:
        return None

    def residual(samples: list[int], target: _F64) -> _F64:
        basis, _ = np.linalg.qr(inputs[samples].T)
        return target - basis @ (basis.T @ target)

    room = part.tol + 64 * np.finfo(np.float64).eps * np.abs(part.a)
    chosen: list[int] = []
    while len(chosen) < min(n - 1, fan_in - 1):
        candidates = [s for s in range(n) if s not in chosen]
        best = min(candidates, key=lambda s: float(np.linalg.norm(residual(chosen + [s], part.a))))
        chosen.append(best)
        if np.all(np.abs(residual(chosen, part.a)) <= room):
            if np.all(np.abs(residual(chosen, np.nan_to_num(part.r))) <= part.tol):
                return None  # the reference lies in that span too: no evidence
            samples = sorted(chosen)
            return Diagnosis(
                "missing-samples",
                f"{part.name}: only sample(s) {samples} of {n} contribute to "
                "the gradient (a loop or slice that stops early? delta[:1]?)",
                f"every column of the analytic {part.name} lies in the span of those samples' "
                "layer inputs, the reference's does not",
                (part.name,),
                {"samples": samples},
            )
    return None


def _own_factor(part: _Part, view: _View) -> Diagnosis | None:
    return _factor_diagnosis([part], view)


def _zeroed(part: _Part, view: _View) -> Diagnosis | None:
    if not np.all(part.a[part.failed] == 0):
        return None
    text = view.where(part, part.failed)
    if part.a.ndim == 2:
        rows = np.unique(np.argwhere(part.failed)[:, 0])
        if len(rows) == 1:
            text = f"row {int(rows[0])} of {part.name} ({text})"
    return Diagnosis(
        "zeroed",
        f"{part.name}: the gradient is zero where it should not be: {text} (never "
        "written, or masked out?)",
        "the analytic value is exactly 0 at every failing element, the reference is not",
        (part.name,),
        {"elements": [list(map(int, i)) for i in np.argwhere(part.failed)]},
    )


def _proportional_to_parameter(part: _Part, view: _View) -> Diagnosis | None:
    """``a - r = c * x``: the error is a multiple of the parameter itself (a penalty's gradient)."""
    x = view.evidence.objective.x0[part.leaf.slice].reshape(part.leaf.shape).astype(np.float64)
    mask = part.checked & np.isfinite(part.r) & np.isfinite(part.a)
    difference = (part.a - part.r)[mask]
    values = x[mask]
    denominator = float(np.dot(values, values))
    if denominator == 0 or int(np.sum(np.abs(values) > 0)) < 2:
        return None
    c = float(np.dot(difference, values) / denominator)
    if not np.all(np.abs(difference - c * values) <= part.tol[mask]):
        return None
    simple = Fraction(c).limit_denominator(1000)
    shown = f"{float(simple):.6g}" if abs(float(simple) - c) <= 1e-9 * abs(c) else f"{c:.6g}"
    return Diagnosis(
        "parameter-proportional",
        f"{part.name}: the error is {shown} x {part.name} itself: a penalty or weight-decay "
        f"term's gradient is off (the gradient of lam * sum(W**2) is 2 * lam * W, not lam * W)",
        f"analytic - reference = c x parameter, least squares c = {c:.10g}, within tolerance at "
        f"all {int(mask.sum())} checked elements",
        (part.name,),
        {"coefficient": c},
    )


PER_PARAMETER: dict[str, Callable[[_Part, _View], Diagnosis | None]] = {
    "transposed": _transposed,
    "per-sample-delta": _per_sample_delta,
    "missing-samples": _missing_samples,
    "constant-factor": _own_factor,
    "zeroed": _zeroed,
    "parameter-proportional": _proportional_to_parameter,
}


def _per_parameter(view: _View) -> Diagnosis | None:
    found: list[tuple[_Part, Diagnosis | None]] = []
    for part in view.failing:
        diagnosis = None
        for detector in PER_PARAMETER.values():
            diagnosis = detector(part, view)
            if diagnosis is not None:
                break
        found.append((part, diagnosis))
    known = [d for _, d in found if d is not None]
    if not known:
        return None
    if len(known) == 1 and len(found) == 1:
        return known[0]
    unexplained = [p.name for p, d in found if d is None]
    summary = "; ".join(d.summary for d in known)
    if unexplained:
        summary += f"; {', '.join(unexplained)}: no known pattern"
    return Diagnosis(
        known[0].kind,
        summary,
        " / ".join(d.evidence for d in known),
        tuple(p.name for p, _ in found),
        {
            **{k: v for d in known for k, v in d.details.items()},
            "per_parameter": {p.name: (d.kind if d else "unknown") for p, d in found},
        },
    )


def _few_elements(view: _View) -> Diagnosis | None:
    failing = sum(int(p.failed.sum()) for p in view.failing)
    checked = sum(int(p.checked.sum()) for p in view.parts)
    if failing == 0 or failing > max(3, 0.05 * checked):
        return None
    where = "; ".join(view.where(p, p.failed) for p in view.failing)
    return Diagnosis(
        "few-elements",
        f"only a few elements are wrong: {where}",
        f"{failing} of {checked} checked elements fail; the rest match",
        tuple(p.name for p in view.failing),
        {
            "elements": {
                p.name: [list(map(int, i)) for i in np.argwhere(p.failed)] for p in view.failing
            }
        },
    )


def _different_point(view: _View) -> Diagnosis | None:
    """The gradient does not respond to the parameters while the loss curves: a stale point."""
    if all(np.all(p.a[p.failed] == 0) for p in view.failing):
        return None  # all zero where it fails: the "zeroed" pattern says more
    evidence = view.evidence
    space, objective = evidence.space, evidence.objective
    x0 = objective.x0.astype(np.float64)
    rng = np.random.default_rng(0)
    direction = rng.standard_normal(x0.shape) * np.maximum(np.abs(x0), 1.0)
    direction /= np.linalg.norm(direction)
    t = float(np.finfo(x0.dtype).eps ** 0.25) * max(1.0, float(np.max(np.abs(x0))))
    try:
        plus = objective(x0 + t * direction)
        minus = objective(x0 - t * direction)
        g_plus = space.flatten_like(
            call_user(
                evidence.grad, "grad", "probing the gradient", space.unflatten(x0 + t * direction)
            )
        )
        g_minus = space.flatten_like(
            call_user(
                evidence.grad, "grad", "probing the gradient", space.unflatten(x0 - t * direction)
            )
        )
    except Exception:  # noqa: BLE001 - a probe that cannot run is no evidence
        return None
    value0 = float(objective.value0)
    analytic = evidence.analytic
    if plus != minus and np.array_equal(g_plus, analytic) and np.array_equal(g_minus, analytic):
        return Diagnosis(
            "different-point",
            "the gradient looks computed at a different, fixed point: it "
            "does not change at all when the parameters do (a cached forward pass, or weights "
            "captured before an update?)",
            f"moving the parameters by {t:.2g} along a random "
            f"direction changes the loss ({minus!r} -> {plus!r}) but not one bit of the gradient",
            tuple(p.name for p in view.failing),
            {"unresponsive": True},
        )
    curvature_loss = (plus - 2 * value0 + minus) / t**2
    roundoff = 8 * np.finfo(x0.dtype).eps * max(abs(plus), abs(minus), abs(value0)) / t**2
    curvature_grad = float(np.dot(direction, g_plus.astype(np.float64) - g_minus) / (2 * t))
    if abs(curvature_loss) <= 100 * roundoff:
        return None
    if abs(curvature_grad) > 1e-3 * abs(curvature_loss):
        return None
    return Diagnosis(
        "different-point",
        "the gradient looks computed at a different, fixed point: it does not "
        "change when the parameters do (a cached forward pass, or weights captured before an "
        "update?)",
        f"along a random direction the loss's curvature is {curvature_loss:.3g}, "
        f"the gradient's change gives {curvature_grad:.3g}",
        tuple(p.name for p in view.failing),
        {"curvature_loss": curvature_loss, "curvature_grad": curvature_grad},
    )


#: The detectors, most specific first; the first that fits names the bug.
DETECTORS: dict[str, Detector] = {
    "non-finite": _non_finite,
    "precision": _precision,
    "swapped": _swapped,
    "factor": _global_factor,
    "different-point": _different_point,
    "per-parameter": _per_parameter,
    "few-elements": _few_elements,
}


def diagnose(evidence: Evidence) -> Diagnosis:
    """Name the likely bug behind a failed check, or say that no known pattern fits.

    Parameters
    ----------
    evidence : Evidence
        The failed comparison, flat over all elements, and the functions.

    Returns
    -------
    Diagnosis
        ``kind`` one of the codes in the module docstring, ``summary`` in plain words,
        ``evidence`` the numbers behind it.
    """
    view = _View(evidence)
    if not view.failing:
        return Diagnosis(
            "inconclusive",
            "no element mismatches: the verdict is withheld because of a hazard "
            "(see the hazards), not because the gradient is wrong",
        )
    for detector in DETECTORS.values():
        diagnosis = detector(view)
        if diagnosis is not None:
            return diagnosis
    failing = sum(int(p.failed.sum()) for p in view.failing)
    return Diagnosis(
        "unknown",
        "no known bug pattern fits the errors",
        f"{failing} element(s) of {', '.join(p.name for p in view.failing)} fail; not a sign "
        "flip, constant factor, transpose, swap, per-sample delta, missing samples, zeroed "
        "elements, float32 precision or a stale point",
        tuple(p.name for p in view.failing),
    )
