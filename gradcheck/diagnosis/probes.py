"""The few extra evaluations a diagnosis spends, each to make one pattern's test meaningful.

A pattern read off the arrays of a failed check can need evidence the arrays do not hold:

* :func:`probe_stale_point`: whether the gradient follows the parameters while the *true*
  gradient measurably moves (the loss's curvature along a line, smooth at two step sizes).
  Without that movement, a gradient that does not change is no evidence of a stale point: the
  gradient of a linear or piecewise-linear function does not change either.
* :func:`gradient_rounding_noise`: the gradient's own rounding noise, read off a difference
  table along a short line (ECnoise), the size float32 arithmetic gives the errors it causes.
* :func:`sees_float32_parameters`: whether the gradient only sees float32 copies of wider
  parameters (it is unchanged when they are rounded to float32).

Every probe draws from its own fixed stream (:data:`PROBE_SEED`), so the same failed check
gets the same diagnosis, and returns None when the user's functions cannot run there.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.diagnosis.failed_check import FailedCheck
from gradcheck.problem.calls import call_user
from gradcheck.references.noise import difference_table_noise
from gradcheck.verdict.jitter import float32_cell_ends

__all__ = [
    "StaleProbe",
    "probe_stale_point",
    "gradient_rounding_noise",
    "sees_float32_parameters",
    "PROBE_SEED",
    "SECOND_DIFFERENCE_ROUNDING",
    "CURVATURE_EVIDENCE",
    "CURVATURE_AGREEMENT",
    "STEP_GROWTH",
    "STEP_TRIES",
    "NOISE_LINE_POINTS",
    "NOISE_STEP",
    "NOISE_NODE_SPREAD",
]

_F64 = NDArray[np.float64]

#: The probes' random directions are fixed, so the same check gets the same diagnosis.
PROBE_SEED = 0
#: Roundoff of a second difference f(+t) - 2 f(0) + f(-t): coefficients summing to 4, each
#: value rounded by eps |f|, doubled because the values are themselves computed.
SECOND_DIFFERENCE_ROUNDING = 8
#: The loss's curvature is evidence only at 100 times its roundoff (then roundoff moves it by
#: under 1%).
CURVATURE_EVIDENCE = 100
#: The curvature measured with steps t and 2t agrees within 10% on a smooth loss (the
#: truncation ``t**2 f''''/4`` is far smaller at these steps); across a kink the second
#: difference grows like 1/t instead, and the "curvature" is a jump, not a moving gradient.
CURVATURE_AGREEMENT = 0.1
#: When the loss's second difference is lost in its roundoff, the step grows by 4 (the
#: roundoff over ``t**2`` falls 16-fold) ...
STEP_GROWTH = 4.0
#: ... at most 4 times in all: ``64 eps**(1/4)``, under 1% of the parameters' scale, is still
#: local, and the agreement at ``t`` and ``2t`` tells whether it was.
STEP_TRIES = 4
#: Points on the line of the rounding-noise probe: enough differences for three orders to
#: agree (see :func:`~gradcheck.references.noise.difference_table_noise`).
NOISE_LINE_POINTS = 8
#: Step of that line, relative (``cbrt(eps64) * max(|x|, 1)`` per element): ~100 float32 ulps,
#: so every float32 rounding along it is a fresh draw, while the smooth part of the high
#: differences (``t**3`` and beyond) stays far below any rounding.
NOISE_STEP = float(np.cbrt(np.finfo(np.float64).eps))
#: How far each point of that line strays from equal spacing, in steps (a rounding sawtooth
#: must not look linear along the line).
NOISE_NODE_SPREAD = 0.35


def _gradient_at(failed_check: FailedCheck, x: NDArray[Any]) -> _F64:
    space = failed_check.space
    tree = space.unflatten(x)
    value = call_user(failed_check.grad, "grad", "probing the gradient", tree)
    return np.asarray(space.flatten_like(value), dtype=np.float64)


@dataclass(frozen=True)
class StaleProbe:
    """What the stale-point probe measured along one random unit direction ``d``.

    Attributes
    ----------
    step : float
        ``t``: the gradient was evaluated at ``x0 - t d`` and ``x0 + t d``.
    curvature : float
        ``d' H d`` from the loss's second difference with step ``t``.
    meaningful : bool
        The true gradient measurably moves between the two points: the curvature stands
        :data:`CURVATURE_EVIDENCE` times above its roundoff, agrees with the one measured
        at ``2t`` (a smooth change, not a kink) and moves the directional derivative by more
        than the tolerance allows the gradient to be off.
    true_change : float
        ``2 t |d' H d|``: how much the true gradient's component along ``d`` changes between
        the points, a lower bound on how much the true gradient changes.
    gradient_change : float
        ``|g(x0 + t d) - g(x0 - t d)|``, the user's gradient's change (Euclidean norm).
    identical : bool
        The user's gradient is the same, bit for bit, at both points and at ``x0``.
    """

    step: float
    curvature: float
    meaningful: bool
    true_change: float
    gradient_change: float
    identical: bool


def _curvature(
    failed_check: FailedCheck, x0: _F64, direction: _F64, t: float
) -> tuple[float, float, float]:
    """The loss's second differences along ``direction`` with steps ``t`` and ``2t``, over
    ``t**2``, and the roundoff of the first."""
    objective = failed_check.objective
    values = {k: objective(x0 + k * t * direction) for k in (-2, -1, 1, 2)}
    value0 = float(objective.value0)
    eps = float(np.finfo(objective.x0.dtype).eps)
    size = max(abs(value0), *(abs(v) for v in values.values()))
    curvature = (values[1] - 2 * value0 + values[-1]) / t**2
    wide = (values[2] - 2 * value0 + values[-2]) / (4 * t**2)
    return curvature, wide, SECOND_DIFFERENCE_ROUNDING * eps * size / t**2


def probe_stale_point(failed_check: FailedCheck) -> StaleProbe | None:
    """Move along a fixed random direction; measure the true and the user's gradient's change.

    The step starts at ``eps**(1/4)`` (balancing a second difference's truncation against its
    roundoff) and grows by :data:`STEP_GROWTH` while the loss's second difference is lost in
    its roundoff (a loss near 1 whose gradients are ~1e-10), at most :data:`STEP_TRIES`
    times.  Spends four loss evaluations per step tried and two gradient evaluations.  None
    when a function cannot run there.
    """
    x0 = failed_check.objective.x0.astype(np.float64)
    rng = np.random.default_rng(PROBE_SEED)
    direction = rng.standard_normal(x0.shape) * np.maximum(np.abs(x0), 1.0)
    direction /= np.linalg.norm(direction)
    eps = float(np.finfo(failed_check.objective.x0.dtype).eps)
    t = eps**0.25 * max(1.0, float(np.max(np.abs(x0))))
    try:
        for _ in range(STEP_TRIES):
            curvature, wide, roundoff = _curvature(failed_check, x0, direction, t)
            if abs(curvature) > CURVATURE_EVIDENCE * roundoff:
                break
            t *= STEP_GROWTH
        g_plus = _gradient_at(failed_check, x0 + t * direction)
        g_minus = _gradient_at(failed_check, x0 - t * direction)
    except Exception:  # noqa: BLE001 - a probe that cannot run is no evidence
        return None
    smooth = abs(curvature - wide) <= CURVATURE_AGREEMENT * abs(curvature) + 2 * roundoff
    true_change = 2 * t * abs(curvature)
    checked = failed_check.checked & np.isfinite(failed_check.tolerance)
    # The tolerance lets d' g be off by up to sum |d_i| tol_i: a true change below that could
    # hide in what the check accepts, and would be no evidence.
    allowed = float(np.sum(np.abs(direction[checked]) * failed_check.tolerance[checked]))
    meaningful = bool(
        abs(curvature) > CURVATURE_EVIDENCE * roundoff and smooth and true_change > allowed
    )
    analytic = failed_check.analytic.astype(np.float64)
    identical = bool(np.array_equal(g_plus, analytic) and np.array_equal(g_minus, analytic))
    return StaleProbe(
        step=t,
        curvature=float(curvature),
        meaningful=meaningful,
        true_change=float(true_change),
        gradient_change=float(np.linalg.norm(g_plus - g_minus)),
        identical=identical,
    )


def gradient_rounding_noise(failed_check: FailedCheck) -> _F64 | None:
    """The gradient's rounding noise per element, along one short random line (ECnoise).

    The gradient is evaluated at :data:`NOISE_LINE_POINTS` irregularly spaced points
    ``x0 + s_k t v`` and each element's noise read off its difference table
    (:func:`~gradcheck.references.noise.difference_table_noise`): high differences cancel the
    smooth change and leave the rounding.  A wrong formula is smooth, so it shows no noise;
    float32 arithmetic shows its rounding, amplified by whatever cancellation the backward
    pass does.  Elements whose table shows no consistent noise get NaN (no evidence).
    None when the gradient cannot run on the line.
    """
    x0 = failed_check.objective.x0.astype(np.float64)
    rng = np.random.default_rng(PROBE_SEED)
    direction = rng.standard_normal(x0.shape) * np.maximum(np.abs(x0), 1.0)
    nodes = np.arange(NOISE_LINE_POINTS) + rng.uniform(
        -NOISE_NODE_SPREAD, NOISE_NODE_SPREAD, NOISE_LINE_POINTS
    )
    nodes[0] = 0.0
    values = np.empty((NOISE_LINE_POINTS, x0.size))
    values[0] = failed_check.analytic
    try:
        for k in range(1, NOISE_LINE_POINTS):
            values[k] = _gradient_at(failed_check, x0 + nodes[k] * NOISE_STEP * direction)
    except Exception:  # noqa: BLE001 - a probe that cannot run is no evidence
        return None
    finite = np.all(np.isfinite(values), axis=0)
    noise, accepted = difference_table_noise(np.where(finite, values, 0.0), nodes)
    return np.where(accepted & finite, noise, np.nan)


def sees_float32_parameters(failed_check: FailedCheck) -> bool:
    """True when the gradient of a wider-than-float32 problem only sees float32 copies.

    The gradient is evaluated at two points near ``x0`` whose elements round to the same
    float32 numbers, ~0.9 float32 ulp apart (:func:`~gradcheck.verdict.jitter.float32_cell_ends`):
    a backward pass that casts its parameters to float32 gets the same numbers both times
    and returns the same gradient, bit for bit; a wider one does not.
    """
    x0 = failed_check.objective.x0
    if np.finfo(x0.dtype).eps >= np.finfo(np.float32).eps:
        return False
    low, high = float32_cell_ends(x0, np.random.default_rng(PROBE_SEED))
    try:
        wide = _gradient_at(failed_check, low)
        narrow = _gradient_at(failed_check, high)
    except Exception:  # noqa: BLE001 - a probe that cannot run is no evidence
        return False
    same = np.isfinite(wide) & np.isfinite(narrow)
    return bool(same.any()) and bool(np.array_equal(wide[same], narrow[same]))
