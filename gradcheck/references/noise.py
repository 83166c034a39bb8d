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
from gradcheck.problem.space import working_eps

__all__ = ["NoiseEstimate", "NoiseOnDemand", "difference_table_noise", "estimate_noise"]


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


#: Step of the noise probe's line, in units of ``sqrt(eps)`` of the parameters' scale.
NOISE_STEP = 1e-3
#: Step of the second line, walked when the loss did not move along the first, in units of
#: ``eps**(1/3)`` of the parameters' scale (the central difference's step).
RESAMPLING_STEP = 1.0
#: Columns of a difference table worked on at once (:func:`difference_table_noise`).
NOISE_COLUMNS = 1 << 15
#: Consecutive difference orders that must agree for a noise estimate to be accepted.
AGREEING_ORDERS = 3
#: Most those orders' estimates may differ by (a factor): noise gives the same level at
#: every order, a smooth trend shrinks with the order.
ORDER_AGREEMENT = 4.0


def _divided_difference_weights(nodes: NDArray[np.float64], order: int) -> NDArray[np.float64]:
    """Weights ``w[window, i]`` of the ``order``-th divided difference on each run of nodes."""
    windows = len(nodes) - order
    weights = np.empty((windows, order + 1))
    for start in range(windows):
        run = nodes[start : start + order + 1]
        gaps = run[:, None] - run[None, :]
        np.fill_diagonal(gaps, 1.0)
        weights[start] = 1.0 / np.prod(gaps, axis=1)
    return weights


def difference_table_noise(
    values: NDArray[np.float64], nodes: NDArray[np.float64] | None = None
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """The rounding noise of each column of ``values``, from its difference table (ECnoise).

    ``values[k, i]`` is quantity ``i`` at the ``k``-th of ``m`` points on a line, at
    position ``nodes[k]`` (equally spaced, ``0..m-1``, by default).  The ``j``-th
    divided difference over ``j + 1`` consecutive points cancels every polynomial of
    degree below ``j`` (the smooth part) and turns iid noise of variance ``s^2`` into
    a variable of variance ``s^2 sum(w**2)``, ``w`` its weights; so
    ``s_j = sqrt(mean(D_j**2) / mean(sum(w**2)))`` estimates ``s`` once ``j`` is high
    enough.  (On equally spaced nodes this is ``sqrt(gamma_j * mean((Delta^j v)**2))``
    with ``gamma_j = (j!)**2 / (2j)!``.)  Irregular nodes keep a rounding error that is
    a sawtooth of one smooth intermediate from looking linear along the line (its
    phase advancing by the same fraction of an ulp at every equal step).  A column's
    estimate is accepted when ``AGREEING_ORDERS`` consecutive orders agree within
    ``ORDER_AGREEMENT`` and their differences change sign (noise, not a trend); it is
    the median of that window.  A column whose values are all equal has noise 0
    (accepted).  After More & Wild, "Estimating computational noise" (2011).

    Returns
    -------
    noise : ndarray
        Per column; 0 where not accepted.
    accepted : ndarray of bool
        Per column, whether the estimate was accepted.
    """
    values = np.asarray(values, dtype=np.float64)
    n = values.shape[1]
    if n <= NOISE_COLUMNS:
        return _difference_table_noise(values, nodes)
    # Columns are independent: in chunks, the tables' temporaries stay small (at 1e7
    # quantities they took ~30 copies of them).
    noise, accepted = np.empty(n), np.empty(n, dtype=bool)
    for start in range(0, n, NOISE_COLUMNS):
        part = slice(start, start + NOISE_COLUMNS)
        noise[part], accepted[part] = _difference_table_noise(values[:, part], nodes)
    return noise, accepted


def _difference_table_noise(
    values: NDArray[np.float64], nodes: NDArray[np.float64] | None
) -> tuple[NDArray[np.float64], NDArray[np.bool_]]:
    """:func:`difference_table_noise` of one chunk of columns."""
    m, n = values.shape
    nodes = np.arange(m, dtype=np.float64) if nodes is None else np.asarray(nodes, np.float64)
    orders = range(1, m - 1)
    estimates = np.empty((len(orders), n))
    changes_sign = np.empty((len(orders), n), dtype=bool)
    with np.errstate(invalid="ignore", over="ignore"):
        for row, order in enumerate(orders):
            weights = _divided_difference_weights(nodes, order)
            table = np.stack(
                [w @ values[start : start + order + 1] for start, w in enumerate(weights)]
            )
            amplification = float(np.mean(np.sum(weights**2, axis=1)))
            estimates[row] = np.sqrt(np.mean(table**2, axis=0) / amplification)
            changes_sign[row] = np.any(table > 0, axis=0) & np.any(table < 0, axis=0)
    noise = np.zeros(n)
    accepted = np.all(values == values[0], axis=0)
    for j in range(len(orders) - AGREEING_ORDERS + 1):
        window = estimates[j : j + AGREEING_ORDERS]
        low, high = window.min(axis=0), window.max(axis=0)
        ok = (
            ~accepted
            & (high > 0)
            & (high <= ORDER_AGREEMENT * low)
            & changes_sign[j : j + AGREEING_ORDERS].all(axis=0)
        )
        noise[ok] = np.median(window[:, ok], axis=0)
        accepted |= ok
    return noise, accepted


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
    estimate (:func:`difference_table_noise`) is accepted when three consecutive
    orders agree within a factor of 4 and the differences change sign (noise, not
    a trend); otherwise the floor ``eps * |f(x0)|`` is used.  The step ``t`` is tiny
    (``NOISE_STEP * eps**0.5`` of the parameters' scale) so that the smooth part of
    ``Delta^j f``, of size ``t**j f^(j)``, is far below the noise.  When the loss does
    not change at all along that line, the line is walked again with
    ``RESAMPLING_STEP * eps**(1/3)`` steps, whose third and higher differences still
    cancel the smooth part (``(t z)**3`` relative), so that rounding frozen at the tiny
    scale (a saturated ``1 - a``) is seen.
    """
    x0 = objective.x0
    eps = float(loss_eps if loss_eps is not None else working_eps(x0.dtype))
    f0 = float(objective.value0)
    floor = eps * abs(f0)
    direction = rng.standard_normal(x0.shape)
    direction /= np.linalg.norm(direction) or 1.0
    scale = max(float(np.max(np.abs(x0), initial=0.0)), 1.0)
    before = objective.n_evaluations
    measured = None
    for relative_step in (NOISE_STEP * np.sqrt(eps), RESAMPLING_STEP * np.cbrt(eps)):
        t = relative_step * scale
        values = np.empty(n_points)
        values[0] = f0
        for k in range(1, n_points):
            values[k] = objective.along(direction, k * t)
        noise, accepted = difference_table_noise(values[:, None])
        measured = float(noise[0]) if accepted[0] else None
        # A loss that did not move at all along the tiny line (a saturated output whose
        # ``1 - a`` rounds the same at every point) hides its rounding: look again with
        # steps that move its intermediates by many ulps.  A loss that is exactly 0.0
        # stays as measured (see the exactly-zero-loss hazard).
        if measured != 0.0 or f0 == 0.0:
            break
    spent = objective.n_evaluations - before
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
        eps = working_eps(self._objective.x0.dtype)
        return max(eps * abs(float(self._objective.value0)), np.finfo(np.float64).tiny)
