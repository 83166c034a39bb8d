"""The complex-step reference: ``f'(x) = Im f(x + i h) / h`` with no subtractive cancellation.

For a loss that is real-analytic and written with operations that extend to
complex numbers (``exp``, ``log``, ``@``, ``tanh``...), ``f(x + i h e_k)``
equals ``f(x) + i h df/dx_k + O(h**2)``, so the imaginary part divided by
``h`` is the derivative to within machine precision even for ``h = 1e-20``.
Losses that use ``abs``, comparisons on complex values or casts to real break
this silently, so :func:`complex_step_capability` *tests* it before it is
trusted: the loss must accept complex input, return a complex value, and
its complex-step directional derivative must agree with a Richardson
estimate of the same directional derivative.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gradcheck.errors import InvalidLossError, UserFunctionError
from gradcheck.problem.objective import Objective
from gradcheck.problem.space import working_eps
from gradcheck.references.base import Estimate
from gradcheck.references.finite_difference import ROUNDOFF_SIGMAS

__all__ = [
    "COMPLEX_STEP",
    "ComplexCapability",
    "complex_step_capability",
    "complex_step",
    "complex_step_rounding",
    "complex_step_size",
    "ROUNDING_STEPS",
    "SPREAD_SAFETY",
]

#: The imaginary step is ``COMPLEX_STEP * sqrt(eps) * max(|x_i|, 1)``.  Truncation is
#: ``h**2 |f'''| / 6``, below ``1e-6 * eps`` of ``|f'|`` unless ``f'''/f'`` exceeds ``6e6``
#: per unit of ``x`` squared; nothing is subtracted, so a small step costs no roundoff.  It is
#: not the classic ``1e-20``: in float32 (complex64) ``f' * 1e-20`` underflows below the
#: smallest subnormal once ``|f'| < 1e-25`` (a saturated sigmoid), quantising the
#: imaginary part; ``sqrt(eps)`` keeps it well inside the representable range.
COMPLEX_STEP = 1e-3


def complex_step_size(eps: float | NDArray[np.float64]) -> float | NDArray[np.float64]:
    """The imaginary step for unit-scale parameters of machine epsilon ``eps``."""
    return COMPLEX_STEP * np.sqrt(eps)


#: Rounding of the imaginary part, in units of eps times the derivative's scale.
COMPLEX_ROUNDING = 8.0
#: Further imaginary steps, as multiples of the first, at which the complex step's own
#: rounding is measured (:func:`complex_step_rounding`): irrational ratios, so that every
#: imaginary part has other trailing digits at each step and rounds afresh.
ROUNDING_STEPS = (0.6180339887498949, 0.7548776662466927, 0.7071067811865476)
#: Range of the derivatives at the four steps -> bound on the rounding of the first: the
#: range of four Gaussian draws averages ~2 standard deviations, and the first draw's
#: error exceeds ``ESTIMATE_SAFETY * SPREAD_SAFETY`` (= 8) times the range with probability
#: ~5e-5 (1.4e-3 with three steps, which is why there are four).
SPREAD_SAFETY = 4.0


@dataclass(frozen=True)
class ComplexCapability:
    """Whether the complex step can be trusted for this loss, and why (not)."""

    usable: bool
    reason: str
    n_evaluations: int


def complex_step_capability(
    objective: Objective,
    *,
    sigma: float,
    rng: np.random.Generator,
    measure_sigma: Callable[[], float] | None = None,
    direction: NDArray[np.float64] | None = None,
) -> ComplexCapability:
    """Probe whether ``objective`` supports the complex step, along one random direction.

    The directional derivative ``Im f(x + i h v) / h`` is compared with a
    central difference along ``v`` at two steps (``t`` and ``2t``, with the
    Richardson estimate and its error bound from both).  Agreement within that
    bound (plus rounding) means the loss propagated the imaginary part as an
    analytic function would.

    ``sigma`` may be a lower bound of the loss's rounding noise (``eps |f|``) when
    ``measure_sigma`` can measure it: the bound only grows with ``sigma``, so
    agreement under the lower bound stands, and only a disagreement is judged again
    with the measured noise.  ``direction`` (any nonzero vector, e.g. a Gaussian draw
    the caller also uses elsewhere) replaces the random line drawn from ``rng``.
    """
    x0 = objective.x0
    before = objective.n_evaluations
    direction = rng.standard_normal(x0.shape) if direction is None else direction
    # Steps along the unit vector u = direction / |direction|, without forming u:
    # x0 + t u = x0 + (t / |direction|) direction.
    unit = 1.0 / (float(np.linalg.norm(direction)) or 1.0)
    scale = max(float(np.max(np.abs(x0), initial=0.0)), 1.0)
    eps = working_eps(x0.dtype)
    h = float(complex_step_size(eps)) * scale
    try:
        value = objective.complex_value(None, h * unit, direction)
    except InvalidLossError as exc:
        return ComplexCapability(
            False,
            f"the loss is not finite at complex input ({exc})",
            objective.n_evaluations - before,
        )
    except UserFunctionError as exc:
        return ComplexCapability(
            False,
            "the loss does not accept complex input "
            f"({type(exc.original).__name__}: {exc.original})",
            objective.n_evaluations - before,
        )
    slope = value.imag / h
    t = np.cbrt(eps) * scale
    d1 = (objective.along(direction, t * unit) - objective.along(direction, -t * unit)) / (2 * t)
    d2 = (objective.along(direction, 2 * t * unit) - objective.along(direction, -2 * t * unit)) / (
        4 * t
    )
    extrapolated = (4 * d1 - d2) / 3

    def bound(sigma: float) -> float:
        return (
            abs(d1 - d2)
            + ROUNDOFF_SIGMAS * sigma * (4 / 3 + 1 / 6) / t
            + COMPLEX_ROUNDING * eps * max(abs(slope), abs(extrapolated))
        )

    agree = abs(slope - extrapolated) <= 2 * bound(sigma)
    if not agree and measure_sigma is not None:
        sigma = max(sigma, measure_sigma())
        agree = abs(slope - extrapolated) <= 2 * bound(sigma)
    spent = objective.n_evaluations - before
    if value.imag == 0.0 and abs(extrapolated) > 2 * bound(sigma):
        return ComplexCapability(
            False, "the loss dropped the imaginary part (returned a real value)", spent
        )
    if not agree:
        return ComplexCapability(
            False,
            f"the complex-step slope {slope:.6g} disagrees with finite differences "
            f"{extrapolated:.6g} (the loss is not complex-analytic: abs, comparisons or casts?)",
            spent,
        )
    return ComplexCapability(True, "the loss propagates complex perturbations analytically", spent)


def complex_step(
    objective: Objective,
    indices: NDArray[np.intp] | None = None,
    *,
    step: float | None = None,
) -> Estimate:
    """Complex-step derivatives ``Im f(x + i h e_k) / h`` at each element.

    Parameters
    ----------
    objective : Objective
        The loss; it must pass :func:`complex_step_capability`.
    indices : array of int, optional
        Flat indices; all by default.
    step : float, optional
        Imaginary step relative to ``max(|x_k|, 1)``; by default
        :func:`complex_step_size` of each element's dtype.

    Returns
    -------
    Estimate
        ``error`` is ``COMPLEX_ROUNDING * eps * max|derivative|`` over the
        estimated elements: the imaginary part is computed with relative
        precision ``eps`` of the terms that make it up, whose size the largest
        derivative stands in for.
    """
    if indices is None:
        indices = np.arange(objective.space.size)
    indices = np.asarray(indices, dtype=np.intp)
    before = objective.n_evaluations
    relative = complex_step_size(objective.space.eps_at(indices)) if step is None else step
    steps = relative * np.maximum(np.abs(objective.x0[indices]).astype(np.float64), 1.0)
    derivative = objective.complex_many(indices, steps).imag / steps
    eps = objective.space.eps_at(indices)
    scale = float(np.max(np.abs(derivative), initial=0.0))
    error = COMPLEX_ROUNDING * eps * np.maximum(np.abs(derivative), scale)
    return Estimate(
        indices=indices,
        derivative=derivative,
        error=error,
        step=steps,
        n_evaluations=objective.n_evaluations - before,
        method="complex",
    )


def complex_step_rounding(objective: Objective, first: Estimate) -> Estimate:
    """The complex step's error at ``first``'s elements, measured instead of bounded.

    :func:`complex_step` bounds the rounding of every element by ``COMPLEX_ROUNDING *
    eps`` times the *largest* derivative it estimated: the imaginary part sums terms
    whose size the derivative does not show when they cancel, and the largest
    derivative stands in for them.  For a parameter whose gradients are 1e-17 of the
    largest, that bound exceeds its whole gradient, and a zeroed gradient of it would
    pass.  Here the rounding is measured: the same elements again at the steps
    ``ROUNDING_STEPS`` times the first, where every imaginary part rounds afresh (the
    truncation, ``h**2 |f'''| / 6``, stays far below it; see :data:`COMPLEX_STEP`).
    The spread of the four shows the rounding of the terms that actually flow,
    cancelling ones included.

    Returns
    -------
    Estimate
        ``first``'s derivatives with ``error = COMPLEX_ROUNDING * eps * max|d| +
        SPREAD_SAFETY * (max d - min d)`` over the four steps; ``n_evaluations``
        counts the three new evaluations per element.
    """
    indices = first.indices
    before = objective.n_evaluations
    derivatives = [np.asarray(first.derivative, dtype=np.float64)]
    for ratio in ROUNDING_STEPS:
        steps = np.asarray(first.step, dtype=np.float64) * ratio
        derivatives.append(objective.complex_many(indices, steps).imag / steps)
    stack = np.stack(derivatives)
    eps = objective.space.eps_at(indices)
    spread = np.ptp(stack, axis=0)
    error = COMPLEX_ROUNDING * eps * np.max(np.abs(stack), axis=0) + SPREAD_SAFETY * spread
    return Estimate(
        indices=indices,
        derivative=first.derivative,
        error=error,
        step=first.step,
        n_evaluations=objective.n_evaluations - before,
        method="complex",
    )
