"""Diagnosis of likely bugs from the pattern of a failed comparison.

When a check fails, :func:`diagnose` looks at *how* the analytic gradient differs from the
reference and names the bug in plain words, with the numbers that support it.  Patterns are
tried from the most specific to the least (the registry :data:`DETECTORS`; the patterns of
one parameter are in :mod:`~gradcheck.diagnosis.parameter_patterns` and
:mod:`~gradcheck.diagnosis.layer_patterns`, the factor fit in
:mod:`~gradcheck.diagnosis.factors`, the extra evaluations some patterns spend in
:mod:`~gradcheck.diagnosis.probes`).  A wrong name is worse than none: each pattern is tried
only where its own test is meaningful, and when none fits the diagnosis says so (kind
``"unknown"``) rather than guess.

What each pattern means (``a`` the analytic gradient, ``r`` the reference, both per parameter):

==========================  ===================================================================
``non-finite``              NaN or inf in ``a`` at the listed elements.
``precision``               the gradient is float32 on a float64 problem (its values are
                            float32 numbers, or it is unchanged when the parameters are rounded
                            to float32) *and* every error is the size of its rounding noise,
                            measured along a line.
``swapped``                 ``a[P] = r[Q]`` and ``a[Q] = r[P]`` for two same-shaped parameters.
``clipping``                every failing element sits at ``+-c`` where ``|r| > c``; no element
                            exceeds ``c`` (``np.clip(dparam, -c, c)`` inside the gradient).
``sign-flip``               ``a = -r``.
``constant-factor``         ``a = c r``; ``c`` fitted by least squares, stated as a number with
                            every common cause that fits it (1/N with the batch size, 1/2 of a
                            square, 1/sqrt(d)...), none asserted
                            (:func:`~gradcheck.diagnosis.factors.describe_factor`).
``different-point``         the gradient does not follow the parameters while the true gradient
                            measurably does (smooth curvature along a line, above roundoff and
                            tolerance): a cached forward pass, stale weights, a left-out term.
``transposed``              ``a.T = r`` (square parameter).
``per-sample-delta``        ``a`` is (minus) the per-sample delta, not ``a_prev.T @ delta``: its
                            column sums equal the bias gradient of the same layer, or
                            ``a_prev.T @ a = +-r`` when the layer inputs are known.
``missing-samples``         the columns of ``a`` lie in the span of some samples' layer inputs
                            only (needs the layer inputs).
``partial-sign-flip``       ``a = -r`` at the failing elements, ``a = r`` elsewhere.
``zeroed``                  ``a`` is exactly 0 at the failing elements (e.g. a whole row).
``parameter-proportional``  ``a - r = c x`` with ``x`` the parameter: a penalty term missing,
                            mis-scaled or flipped (the candidates listed with their ``lam``).
``normalisation``           ``x`` is normalised along an axis (``r`` sums to 0 along it) and
                            ``a - r`` is, along it, a combination of 1 and ``x - mean(x)``:
                            the mean or variance term of the backward pass is missing or wrong.
``missing-derivative``      one upstream ``G`` gives ``a = a_prev.T @ G`` and
                            ``r = a_prev.T @ (G * f'(z))`` for a known activation ``f``.
``softmax-diagonal``        likewise with ``p (1 - p) G`` for ``a`` and the full softmax
                            Jacobian for ``r``.
``few-elements``            only a few elements are wrong (at most a quarter): listed.
``unknown``                 none of the above fits where its test applies.
``inconclusive``            nothing mismatched: a hazard withheld the verdict.
==========================  ===================================================================

Several patterns need the layers' inputs: pass ``layer_inputs={"weight2": a1, ...}`` to
:func:`gradcheck.check` (``a_prev`` of the layer, shape ``(n_samples, fan_in)``).  That also
tells the diagnosis the batch size ``N``, so a factor ``N`` is listed as a cause.  Without
them, the layer models are tried only on a parameter that is itself a pre-activation.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from gradcheck.diagnosis.factors import MIN_INFORMATIVE
from gradcheck.diagnosis.failed_check import FailedCheck, ParameterArrays, SplitCheck
from gradcheck.diagnosis.parameter_patterns import factor_diagnosis, per_parameter
from gradcheck.diagnosis.probes import (
    gradient_rounding_noise,
    probe_stale_point,
    sees_float32_parameters,
)
from gradcheck.results import Diagnosis
from gradcheck.verdict.tolerance import passes

__all__ = [
    "diagnose",
    "DETECTORS",
    "Detector",
    "FLOAT32_DISTINCT_VALUES",
    "FLOAT32_MAX_ERROR",
    "ROUNDING_MATCH",
    "FEW_ELEMENTS",
    "FEW_FRACTION",
    "FEW_SHARE",
    "UNRESPONSIVE",
    "CLIP_ROOM",
]

_F64 = NDArray[np.float64]

Detector = Callable[[SplitCheck], Diagnosis | None]

_EPS32 = float(np.finfo(np.float32).eps)
_EPS64 = float(np.finfo(np.float64).eps)

# -- the thresholds, each with its reason ------------------------------------------------------
#: Fewer distinct nonzero values may all be float32 numbers by chance (0.5, 1, -2...).
FLOAT32_DISTINCT_VALUES = 3
#: Errors beyond 1e-4 of the gradient scale (~1000 float32 eps) are not float32 rounding, even
#: after the cancellation a backward pass does: the probes for float32 are not even spent.
FLOAT32_MAX_ERROR = 1e-4
#: An error "is" the gradient's rounding when it is within 30 times the rounding noise measured
#: along a line (a few standard deviations, times the factor by which one line's estimate can
#: miss): a float32 backward pass with a real bug on top (a 1e-5 epsilon left out) is not.
ROUNDING_MATCH = 30
#: "A few elements" are at most 3, or 5% of the checked ones: few enough to list and inspect,
#: and never more than a quarter of them (3 of 4 failing is most, not a few).
FEW_ELEMENTS = 3
FEW_FRACTION = 0.05
FEW_SHARE = 0.25
#: A gradient whose change between the probe's two points is under 1e-3 of the true
#: gradient's (measured) change, relative to their sizes, does not follow the parameters: a
#: responsive gradient changes by at least the true change, to the difference's few digits.
UNRESPONSIVE = 1e-3
#: Clipped values are the clip constant exactly (np.clip returns it); 8 eps of room covers a
#: constant written in float32 and cast back.
CLIP_ROOM = 8 * _EPS32


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


def _float32_valued(split: SplitCheck) -> bool:
    """Every interesting gradient value is exactly a float32 number (zeros and integers prove
    nothing), and there are enough of them not to be so by chance."""
    analytic = np.concatenate([p.analytic.ravel() for p in split.parts])
    finite = analytic[np.isfinite(analytic)]
    interesting = finite[finite != np.round(finite)]
    return bool(
        len(np.unique(interesting)) >= FLOAT32_DISTINCT_VALUES
        and np.all(interesting.astype(np.float32).astype(np.float64) == interesting)
    )


def _rounding_floor(split: SplitCheck, noise: _F64, analytic: _F64) -> _F64:
    """Each element's rounding: its measured noise, at least float32's ``eps |a|`` and the
    median noise of its parameter.

    An element whose value cancels to near 0 (or whose difference table found no consistent
    noise) is still computed from quantities of its parameter's size, and rounds like them.
    """
    rounding = np.fmax(np.nan_to_num(noise, nan=0.0), _EPS32 * np.abs(analytic))
    for part in split.parts:
        measured = noise[part.leaf.slice]
        measured = measured[np.isfinite(measured) & (measured > 0)]
        if measured.size:
            piece = rounding[part.leaf.slice]
            np.fmax(piece, float(np.median(measured)), out=piece)
    return rounding


def _precision(split: SplitCheck) -> Diagnosis | None:
    """float32 arithmetic on a float64 problem: shown to be float32, and the errors its rounding.

    Small errors alone are no evidence (an epsilon left out of ``1/sqrt(var + eps)`` is small
    too).  Two things must hold: the gradient is float32 (its values are float32 numbers, or it
    is unchanged when the parameters are rounded to float32), and every failing element's error
    is within :data:`ROUNDING_MATCH` times the gradient's rounding noise, measured along a line
    (:func:`_rounding_floor`).
    """
    if not all(p.leaf.dtype == np.float64 for p in split.parts) or not split.failing:
        return None
    relative = np.concatenate([_relative_errors(p)[p.failed] for p in split.failing])
    worst = float(np.max(relative))
    if not worst <= FLOAT32_MAX_ERROR:
        return None
    failed_check = split.failed_check
    exact32 = _float32_valued(split)
    if not (exact32 or sees_float32_parameters(failed_check)):
        return None
    noise = gradient_rounding_noise(failed_check)
    if noise is None:
        return None
    analytic = failed_check.analytic.astype(np.float64)
    rounding = _rounding_floor(split, noise, analytic)
    failed = failed_check.failed
    room = failed_check.tolerance[failed] + ROUNDING_MATCH * rounding[failed]
    if not np.all(passes(analytic[failed], failed_check.reference[failed], room)):
        return None
    ratio = np.abs(analytic - failed_check.reference)[failed] / rounding[failed]
    how = (
        f"every one of the {int(np.count_nonzero(analytic))} nonzero gradient values is exactly a "
        "float32 number"
        if exact32
        else "the gradient is unchanged, bit for bit, when the parameters are rounded to float32"
    )
    return Diagnosis(
        "precision",
        "precision-limited: the gradient was computed in float32 on a float64 problem "
        "(an array cast to float32 in the backward pass?)",
        f"{how}; the errors (up to {worst:.2g} of the gradient scale) are the size of its "
        f"rounding noise measured along a line (at most {float(np.max(ratio)):.2g} times it)",
        tuple(p.name for p in split.failing),
        {"max_relative_error": worst, "float32_exact": exact32},
    )


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


def _clipping(split: SplitCheck) -> Diagnosis | None:
    """Every failing element sits at one magnitude ``c`` where the true gradient exceeds it.

    The signature of ``np.clip(dparam, -c, c)`` inside the gradient: the failing elements'
    analytic values are ``+-c`` exactly, with the reference's sign and beyond ``c`` by more
    than the tolerance, while no element of those parameters exceeds ``c`` and those within
    it match.  Two failing elements at least: one value is any value.
    """
    parts = split.failing
    analytic = np.concatenate([p.analytic[p.failed] for p in parts])
    reference = np.concatenate([p.reference[p.failed] for p in parts])
    tolerance = np.concatenate([p.tolerance[p.failed] for p in parts])
    if analytic.size < MIN_INFORMATIVE or not np.all(np.isfinite(analytic)):
        return None
    cap = float(np.max(np.abs(analytic)))
    if cap == 0 or np.any(np.abs(analytic) < cap * (1 - CLIP_ROOM)):
        return None
    if np.any(np.sign(analytic) != np.sign(reference)) or np.any(
        np.abs(reference) <= cap + tolerance
    ):
        return None
    for p in parts:
        inside = p.checked & ~p.failed
        if np.any(np.abs(p.analytic[p.checked]) > cap * (1 + CLIP_ROOM)):
            return None
        if np.any(np.abs(p.reference[inside]) > cap + p.tolerance[inside]):
            return None
    where = "; ".join(split.where(p, p.failed) for p in parts)
    return Diagnosis(
        "clipping",
        f"the gradient is clipped to +-{cap:.6g}: every failing element sits at +-{cap:.6g} "
        f"where the true gradient is larger ({where}). Clipping (np.clip(dparam, -c, c), as "
        "min-char-rnn does) is a training choice, not part of dL/dparams: check the gradient "
        "before it is clipped",
        f"{analytic.size} failing elements, all at |analytic| = {cap!r} with the reference's "
        f"sign, the reference beyond it (up to {float(np.max(np.abs(reference))):.4g}); no "
        "element exceeds it and those within it match",
        tuple(p.name for p in parts),
        {"cap": cap},
    )


def _few_elements(split: SplitCheck) -> Diagnosis | None:
    failing = sum(int(p.failed.sum()) for p in split.failing)
    checked = sum(int(p.checked.sum()) for p in split.parts)
    few = max(FEW_ELEMENTS, FEW_FRACTION * checked)
    if failing == 0 or failing > few or failing > FEW_SHARE * checked:
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


def _different_point(split: SplitCheck) -> Diagnosis | None:
    """The gradient does not follow the parameters while the true gradient measurably does.

    Only meaningful where the true gradient changes between the points compared
    (:func:`~gradcheck.diagnosis.probes.probe_stale_point`): the gradient of a function
    linear or piecewise linear in the parameters does not change either, right or wrong.
    """
    if all(np.all(p.analytic[p.failed] == 0) for p in split.failing):
        return None  # all zero where it fails: the "zeroed" pattern says more
    probe = probe_stale_point(split.failed_check)
    if probe is None or not probe.meaningful:
        return None
    # Relative to its own size: a gradient much smaller than the true one (only the samples
    # whose outputs are saturated counted) moves as little in absolute terms, and follows.
    failed_check = split.failed_check
    true_size = float(np.linalg.norm(failed_check.reference[np.isfinite(failed_check.reference)]))
    if true_size == 0:
        return None
    size = float(np.linalg.norm(failed_check.analytic)) / true_size
    if probe.gradient_change > UNRESPONSIVE * probe.true_change * min(1.0, size):
        return None
    change = "not one bit" if probe.identical else f"by {probe.gradient_change:.3g}"
    return Diagnosis(
        "different-point",
        "the gradient does not follow the parameters, while the true gradient does: it is "
        "computed from values that stay fixed when the parameters move (a cached forward "
        "pass? weights captured before an update? or a term that depends on the parameters "
        "left out, such as an upstream gradient or a normaliser's derivative?)",
        f"moving the parameters by {probe.step:.2g} each way along a random direction, the "
        f"loss's curvature ({probe.curvature:.3g}, the same at twice the step) moves the true "
        f"gradient by at least {probe.true_change:.3g}; the gradient changes {change}",
        tuple(p.name for p in split.failing),
        {
            "curvature_loss": probe.curvature,
            "true_change": probe.true_change,
            "gradient_change": probe.gradient_change,
            "unresponsive": probe.identical,
        },
    )


#: The whole-check patterns, most specific first; the first that fits names the bug.
DETECTORS: dict[str, Detector] = {
    "non-finite": _non_finite,
    "precision": _precision,
    "swapped": _swapped,
    "clipping": _clipping,
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
        f"{failing} element(s) of {', '.join(p.name for p in split.failing)} fail; none of "
        "the patterns gradcheck knows fits where its test applies (some need layer_inputs, "
        "and none is named without its own evidence)",
        tuple(p.name for p in split.failing),
    )
