"""How noisy is the loss?  The roundoff level that every finite difference divides by its step.

A finite difference ``(f(x + h) - f(x - h)) / 2h`` inherits the loss's own
rounding noise divided by ``h``.  That noise is not simply ``eps * |f|``: a
loss that sums many terms which cancel is noisier than its value suggests.
:func:`estimate_noise` measures it from the loss itself, following the idea of
Moré & Wild's ECnoise (SIAM J. Sci. Comput. 33(3), 2011): along a short line
the loss is a smooth polynomial plus noise, high-order differences of
equally spaced values annihilate the smooth part, and what is left is noise
of known amplification.
"""

from __future__ import annotations

from dataclasses import dataclass
from math import factorial

import numpy as np
from numpy.typing import NDArray

from gradcheck.problem.objective import Objective

__all__ = ["NoiseEstimate", "NoiseOnDemand", "estimate_noise"]


@dataclass(frozen=True)
class NoiseEstimate:
    """The loss's rounding noise (one standard deviation) and how it was found.

    Attributes
    ----------
    sigma : float
        Noise level used by the references: ``max(measured, floor)``.
    measured : float or None
        The ECnoise-style measurement, None when the difference table gave no
        consistent answer (e.g. the line crossed a kink).
    floor : float
        ``eps * |f(x)|`` in the loss's precision: no evaluation is more exact.
    n_evaluations : int
        Loss evaluations spent measuring.
    """

    sigma: float
    measured: float | None
    floor: float
    n_evaluations: int

    @property
    def source(self) -> str:
        if self.measured is not None and self.measured >= self.floor:
            return "measured loss noise (ECnoise)"
        return "eps * |loss|"


def _gamma(order: int) -> float:
    """Variance amplification of the ``order``-th difference of unit-variance iid noise."""
    return factorial(order) ** 2 / factorial(2 * order)


def estimate_noise(
    objective: Objective,
    *,
    rng: np.random.Generator,
    n_points: int = 8,
    loss_eps: float | None = None,
) -> NoiseEstimate:
    """Estimate the standard deviation of the rounding noise of ``objective`` near ``x0``.

    Parameters
    ----------
    objective : Objective
        The loss; ``n_points - 1`` extra evaluations are spent.
    rng : numpy.random.Generator
        Draws the direction of the line.
    n_points : int
        Points on the line (including ``x0``).
    loss_eps : float, optional
        Machine epsilon of the loss's arithmetic; defaults to that of the
        parameters' widest dtype.

    Returns
    -------
    NoiseEstimate

    Notes
    -----
    With ``f_k = f(x0 + k t v)`` for ``k = 0..m-1``, the ``j``-th forward
    differences of iid noise of variance ``s^2`` have variance
    ``s^2 (2j)! / (j!)^2``, so ``s_j = sqrt(gamma_j * mean((Delta^j f)^2))``
    estimates ``s`` once ``j`` is high enough to cancel the smooth part.  The
    estimate is accepted when three consecutive orders agree within a factor
    of 4 and the differences change sign (noise, not a trend); otherwise the
    floor ``eps * |f(x0)|`` is used.  The step ``t`` is tiny (``1e-3 *
    eps**0.5`` of the parameters' scale) so that the smooth part of
    ``Delta^j f``, of size ``t**j f^(j)``, is far below the noise.
    """
    x0 = objective.x0
    eps = float(loss_eps if loss_eps is not None else np.finfo(x0.dtype).eps)
    f0 = float(objective.value0)
    floor = eps * abs(f0)
    direction = rng.standard_normal(x0.shape)
    direction /= np.linalg.norm(direction) or 1.0
    scale = max(float(np.max(np.abs(x0), initial=0.0)), 1.0)
    t = 1e-3 * np.sqrt(eps) * scale
    before = objective.n_evaluations
    values = np.empty(n_points)
    values[0] = f0
    for k in range(1, n_points):
        values[k] = objective.along(direction, k * t)
    spent = objective.n_evaluations - before

    estimates: list[float] = []
    changes_sign: list[bool] = []
    table: NDArray[np.float64] = values.copy()
    for order in range(1, n_points - 1):
        table = np.diff(table)
        estimates.append(float(np.sqrt(_gamma(order) * np.mean(table**2))))
        changes_sign.append(bool(np.any(table > 0) and np.any(table < 0)))
    measured = None
    for j in range(len(estimates) - 2):
        window = estimates[j : j + 3]
        low, high = min(window), max(window)
        if high > 0 and high <= 4 * low and all(changes_sign[j : j + 3]):
            measured = float(np.median(window))
            break
    if measured is None and np.all(values == values[0]):
        measured = 0.0
    sigma = max(measured or 0.0, floor, np.finfo(np.float64).tiny)
    return NoiseEstimate(sigma=sigma, measured=measured, floor=floor, n_evaluations=spent)


class NoiseOnDemand:
    """The loss's rounding noise, measured by :func:`estimate_noise` when first asked for.

    Only references that divide a difference of loss values by a step need it;
    a check decided by the complex step alone never does, and skips the
    evaluations.  The measurement draws from its own generator, so whether it
    ran does not change any other random draw of the check.

    Parameters
    ----------
    objective : Objective
        The loss.
    rng : numpy.random.Generator
        Used only by the measurement.
    """

    def __init__(self, objective: Objective, rng: np.random.Generator) -> None:
        self._objective = objective
        self._rng = rng
        self._estimate: NoiseEstimate | None = None

    @property
    def measured_yet(self) -> bool:
        return self._estimate is not None

    @property
    def estimate(self) -> NoiseEstimate:
        """The measurement (made now if it was not made yet)."""
        if self._estimate is None:
            self._estimate = estimate_noise(self._objective, rng=self._rng)
        return self._estimate

    @property
    def sigma(self) -> float:
        """The measured noise level (see :attr:`NoiseEstimate.sigma`)."""
        return self.estimate.sigma

    @property
    def lower_bound(self) -> float:
        """``eps * |f(x0)|`` (no evaluation is more exact), known without measuring."""
        eps = float(np.finfo(self._objective.x0.dtype).eps)
        return max(eps * abs(float(self._objective.value0)), np.finfo(np.float64).tiny)
