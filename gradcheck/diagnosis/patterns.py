"""Diagnosis of likely bugs from the pattern of a failed comparison.

When a check fails, :func:`diagnose` looks at *how* the analytic gradient differs from the
reference and names the bug in plain words, with the numbers that support it.  Patterns are
tried from the most specific to the least (the registry :data:`DETECTORS`; the patterns of
one parameter are in :mod:`~gradcheck.diagnosis.parameter_patterns`, the factor fit in
:mod:`~gradcheck.diagnosis.factors`); when none fits, the diagnosis says so (kind
``"unknown"``) rather than guess.

What each pattern means (``a`` the analytic gradient, ``r`` the reference, both per parameter):

========================  =====================================================================
``non-finite``            NaN or inf in ``a`` at the listed elements.
``precision``             ``a`` matches ``r`` only to float32 accuracy (relative ~1e-8..1e-5)
                          on a float64 problem, or every value of ``a`` is exactly a float32
                          number: the backward pass ran (or was cast) in float32.
``swapped``               ``a[P] = r[Q]`` and ``a[Q] = r[P]`` for two same-shaped parameters.
``sign-flip``             ``a = -r``.
``constant-factor``       ``a = c r``; ``c`` fitted by least squares and matched to 2, 1/2,
                          the batch size ``n``, ``1/n``, or another simple fraction
                          (:func:`~gradcheck.diagnosis.factors.fit_factor`).
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

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from gradcheck.diagnosis.failed_check import FailedCheck, ParameterArrays, SplitCheck
from gradcheck.diagnosis.parameter_patterns import factor_diagnosis, per_parameter
from gradcheck.problem.calls import call_user
from gradcheck.results import Diagnosis

__all__ = [
    "diagnose",
    "DETECTORS",
    "Detector",
    "FLOAT32_DISTINCT_VALUES",
    "FLOAT32_EXACT_MAX_ERROR",
    "FLOAT32_ERROR_RANGE",
    "SPREAD_FRACTION",
    "SPREAD_MIN_ELEMENTS",
    "FEW_ELEMENTS",
    "FEW_FRACTION",
    "PROBE_SEED",
    "SECOND_DIFFERENCE_ROUNDING",
    "CURVATURE_EVIDENCE",
    "UNRESPONSIVE",
]

_F64 = NDArray[np.float64]

Detector = Callable[[SplitCheck], Diagnosis | None]

# -- the thresholds, each with its reason ------------------------------------------------------
#: Fewer distinct nonzero values may all be float32 numbers by chance (0.5, 1, -2...).
FLOAT32_DISTINCT_VALUES = 3
#: float32 values with errors beyond 1e-4 of the gradient scale (~1000 float32 eps, more than
#: cancellation in a backward pass makes of its rounding) have another cause as well.
FLOAT32_EXACT_MAX_ERROR = 1e-4
#: Relative errors of float32 arithmetic: above what float64 rounding reaches (1e-10 is ~5e5
#: float64 eps) and below 1e-5 (~100 float32 eps, the 6e-8 rounding after some cancellation).
FLOAT32_ERROR_RANGE = (1e-10, 1e-5)
#: float32 rounding touches most elements: at least 30% of the checked ones fail when it is the
#: cause; a bug confined to a few elements is another pattern.
SPREAD_FRACTION = 0.3
#: One failing element is no spread.
SPREAD_MIN_ELEMENTS = 2
#: "A few elements" are at most 3, or 5% of the checked ones: few enough to list and inspect.
FEW_ELEMENTS = 3
FEW_FRACTION = 0.05
#: The stale-point probe's random direction is fixed, so the same check gets the same diagnosis.
PROBE_SEED = 0
#: Roundoff of a second difference f(+t) - 2 f(0) + f(-t): coefficients summing to 4, each
#: value rounded by eps |f|, doubled because the values are themselves computed.
SECOND_DIFFERENCE_ROUNDING = 8
#: The loss's curvature is evidence only at 100 times its roundoff.
CURVATURE_EVIDENCE = 100
#: A gradient whose change along the direction is under 1e-3 of the loss's curvature does not
#: follow the parameters (a responsive gradient matches it to the difference's few digits).
UNRESPONSIVE = 1e-3


# -- whole-check patterns -----------------------------------------------------------------------
def _non_finite(split: SplitCheck) -> Diagnosis | None:
    masks = [(p, ~np.isfinite(p.analytic)) for p in split.parts]
    bad = [(p, mask) for p, mask in masks if mask.any()]
    if not bad:
        return None
    where = "; ".join(split.where(p, mask) for p, mask in bad)
    values = sorted({repr(float(v)) for p, mask in bad for v in p.analytic[mask]})
    return Diagnosis(
        "non-finite",
        f"the gradient has {'/'.join(values)} at {where}",
        "non-finite values where the reference is finite: a division by zero, log(0) or an "
        "overflow in the backward pass",
        tuple(p.name for p, _ in bad),
        {"elements": {p.name: [list(map(int, i)) for i in np.argwhere(m)] for p, m in bad}},
    )


def _relative_errors(part: ParameterArrays) -> _F64:
    """``|a - r|`` over the parameter's gradient scale ``max |r|``."""
    checked = part.checked & np.isfinite(part.reference)
    scale = float(np.max(np.abs(part.reference[checked]), initial=0.0))
    if scale <= 0:
        return np.full(part.analytic.shape, np.inf)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.abs(part.analytic - part.reference) / scale


def _precision(split: SplitCheck) -> Diagnosis | None:
    if not all(p.leaf.dtype == np.float64 for p in split.parts) or not split.failing:
        return None
    analytic = np.concatenate([p.analytic.ravel() for p in split.parts])
    nonzero = analytic[analytic != 0]
    exact32 = bool(
        len(np.unique(nonzero)) >= FLOAT32_DISTINCT_VALUES
        and np.all(nonzero.astype(np.float32).astype(np.float64) == nonzero)
    )
    relative = np.concatenate([_relative_errors(p)[p.failed] for p in split.failing])
    worst = float(np.max(relative))
    failing = sum(int(p.failed.sum()) for p in split.failing)
    checked = sum(int(p.checked.sum()) for p in split.failing)
    spread = failing >= max(SPREAD_MIN_ELEMENTS, SPREAD_FRACTION * checked)
    names = tuple(p.name for p in split.failing)
    if exact32 and worst <= FLOAT32_EXACT_MAX_ERROR:
        return Diagnosis(
            "precision",
            "precision-limited: the gradient was computed in float32 on a float64 problem "
            "(an array cast to float32 in the backward pass?)",
            f"every one of the {len(nonzero)} nonzero gradient values is exactly a float32 "
            f"number, and the errors (up to {worst:.2g} of the gradient scale) are at float32 "
            "level",
            names,
            {"max_relative_error": worst, "float32_exact": True},
        )
    low, high = FLOAT32_ERROR_RANGE
    if spread and low <= worst <= high:
        return Diagnosis(
            "precision",
            "precision-limited: the errors look like float32 arithmetic on a float64 problem",
            f"{failing} of {checked} elements fail with small errors spread across them, up to "
            f"{worst:.2g} of the gradient scale (float32 rounding is ~6e-8)",
            names,
            {"max_relative_error": worst, "float32_exact": False},
        )
    return None


def _swapped(split: SplitCheck) -> Diagnosis | None:
    for i, p in enumerate(split.parts):
        for q in split.parts[i + 1 :]:
            if p.analytic.shape != q.analytic.shape or not (p.failed.any() or q.failed.any()):
                continue
            room = np.maximum(p.tolerance, q.tolerance)
            if p.matches(q.analytic, room) and q.matches(p.analytic, room):
                return Diagnosis(
                    "swapped",
                    f"the gradients of {p.name} and {q.name} are swapped",
                    f"the analytic {p.name} matches the reference {q.name} and vice versa, "
                    "within tolerance",
                    (p.name, q.name),
                )
    return None


def _global_factor(split: SplitCheck) -> Diagnosis | None:
    if not split.failing:
        return None
    # Fitted over the failing parameters only: the passing ones have the factor 1, and a bug
    # that scales some parameters (the biases only, say) is still one factor.
    return factor_diagnosis(split.failing, split)


def _few_elements(split: SplitCheck) -> Diagnosis | None:
    failing = sum(int(p.failed.sum()) for p in split.failing)
    checked = sum(int(p.checked.sum()) for p in split.parts)
    if failing == 0 or failing > max(FEW_ELEMENTS, FEW_FRACTION * checked):
        return None
    where = "; ".join(split.where(p, p.failed) for p in split.failing)
    return Diagnosis(
        "few-elements",
        f"only a few elements are wrong: {where}",
        f"{failing} of {checked} checked elements fail; the rest match",
        tuple(p.name for p in split.failing),
        {
            "elements": {
                p.name: [list(map(int, i)) for i in np.argwhere(p.failed)] for p in split.failing
            }
        },
    )


def _probe_gradient(failed_check: FailedCheck, x: _F64) -> _F64:
    space = failed_check.space
    tree = space.unflatten(x)
    return space.flatten_like(call_user(failed_check.grad, "grad", "probing the gradient", tree))


def _different_point(split: SplitCheck) -> Diagnosis | None:
    """The gradient does not respond to the parameters while the loss curves: a stale point."""
    if all(np.all(p.analytic[p.failed] == 0) for p in split.failing):
        return None  # all zero where it fails: the "zeroed" pattern says more
    failed_check = split.failed_check
    objective = failed_check.objective
    x0 = objective.x0.astype(np.float64)
    rng = np.random.default_rng(PROBE_SEED)
    direction = rng.standard_normal(x0.shape) * np.maximum(np.abs(x0), 1.0)
    direction /= np.linalg.norm(direction)
    # eps**(1/4) balances a second difference's truncation (t**2) against its roundoff (eps/t**2).
    eps = float(np.finfo(x0.dtype).eps)
    t = eps**0.25 * max(1.0, float(np.max(np.abs(x0))))
    try:
        plus = objective(x0 + t * direction)
        minus = objective(x0 - t * direction)
        g_plus = _probe_gradient(failed_check, x0 + t * direction)
        g_minus = _probe_gradient(failed_check, x0 - t * direction)
    except Exception:  # noqa: BLE001 - a probe that cannot run is no evidence
        return None
    value0 = float(objective.value0)
    analytic = failed_check.analytic
    names = tuple(p.name for p in split.failing)
    if plus != minus and np.array_equal(g_plus, analytic) and np.array_equal(g_minus, analytic):
        return Diagnosis(
            "different-point",
            "the gradient looks computed at a different, fixed point: it "
            "does not change at all when the parameters do (a cached forward pass, or weights "
            "captured before an update?)",
            f"moving the parameters by {t:.2g} along a random "
            f"direction changes the loss ({minus!r} -> {plus!r}) but not one bit of the gradient",
            names,
            {"unresponsive": True},
        )
    curvature_loss = (plus - 2 * value0 + minus) / t**2
    loss_size = max(abs(plus), abs(minus), abs(value0))
    roundoff = SECOND_DIFFERENCE_ROUNDING * eps * loss_size / t**2
    curvature_grad = float(np.dot(direction, g_plus.astype(np.float64) - g_minus) / (2 * t))
    if abs(curvature_loss) <= CURVATURE_EVIDENCE * roundoff:
        return None
    if abs(curvature_grad) > UNRESPONSIVE * abs(curvature_loss):
        return None
    return Diagnosis(
        "different-point",
        "the gradient looks computed at a different, fixed point: it does not "
        "change when the parameters do (a cached forward pass, or weights captured before an "
        "update?)",
        f"along a random direction the loss's curvature is {curvature_loss:.3g}, "
        f"the gradient's change gives {curvature_grad:.3g}",
        names,
        {"curvature_loss": curvature_loss, "curvature_grad": curvature_grad},
    )


#: The whole-check patterns, most specific first; the first that fits names the bug.
DETECTORS: dict[str, Detector] = {
    "non-finite": _non_finite,
    "precision": _precision,
    "swapped": _swapped,
    "factor": _global_factor,
    "different-point": _different_point,
    "per-parameter": per_parameter,
    "few-elements": _few_elements,
}


def diagnose(failed_check: FailedCheck) -> Diagnosis:
    """Name the likely bug behind a failed check, or say that no known pattern fits.

    Parameters
    ----------
    failed_check : FailedCheck
        The failed comparison, flat over all elements, and the functions.

    Returns
    -------
    Diagnosis
        ``kind`` one of the codes in the module docstring, ``summary`` in plain words,
        ``evidence`` the numbers behind it.
    """
    split = SplitCheck(failed_check)
    if not split.failing:
        return Diagnosis(
            "inconclusive",
            "no element mismatches: the verdict is withheld because of a hazard "
            "(see the hazards), not because the gradient is wrong",
        )
    for detector in DETECTORS.values():
        diagnosis = detector(split)
        if diagnosis is not None:
            return diagnosis
    failing = sum(int(p.failed.sum()) for p in split.failing)
    return Diagnosis(
        "unknown",
        "no known bug pattern fits the errors",
        f"{failing} element(s) of {', '.join(p.name for p in split.failing)} fail; not a sign "
        "flip, constant factor, transpose, swap, per-sample delta, missing samples, zeroed "
        "elements, float32 precision or a stale point",
        tuple(p.name for p in split.failing),
    )
