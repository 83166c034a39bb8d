"""Finite-difference references: central differences, Richardson extrapolation, kinks.

Nothing here knows how the gradient is computed analytically; each estimate
comes from loss values alone, with an error estimate built from the two
things that limit a difference quotient (truncation and roundoff).
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray

from gradcheck.problem.objective import Objective
from gradcheck.references.base import Estimate

__all__ = [
    "ROUNDOFF_SIGMAS",
    "default_steps",
    "central_difference",
    "with_truncation",
    "richardson",
    "one_sided_slopes",
    "local_rungs",
]

#: A difference quotient's roundoff bound, in standard deviations of the loss noise per step:
#: ``|e(x+h) - e(x-h)| / 2h <= ROUNDOFF_SIGMAS * sigma / h``.  The quotient's noise has
#: standard deviation ``sigma / (sqrt(2) h)``, so 3 sigma/h is 4.2 of its standard deviations.
ROUNDOFF_SIGMAS = 3.0


def default_steps(objective: Objective, indices: NDArray[np.intp]) -> NDArray[np.float64]:
    """The central-difference step of each element: ``eps**(1/3) * max(|x_i|, 1)``.

    Notes
    -----
    The error of a central difference is ``h**2 |f'''| / 6`` (truncation)
    plus ``sigma / h`` (roundoff), smallest near ``h ~ (3 sigma / |f'''|)**(1/3)``.
    With ``sigma ~ eps |f|`` and curvature on the scale of the parameter this
    is ``eps**(1/3)`` times the parameter's magnitude; the ``max(., 1)`` keeps
    the step from vanishing at parameters near zero, where the loss still
    varies on the scale of its inputs.  ``eps`` is that of each element's own
    dtype, so a float32 parameter gets a float32-sized step.
    """
    steps = np.abs(objective.x0[indices].astype(np.float64))  # a fresh array, then in place
    np.maximum(steps, 1.0, out=steps)
    leaf_eps = np.unique(
        objective.space.eps_at(
            np.array([leaf.offset for leaf in objective.space.leaves if leaf.size])
        )
    )
    if len(leaf_eps) == 1:  # one dtype: no per-element eps array
        steps *= np.cbrt(leaf_eps[0])
    else:
        steps *= np.cbrt(objective.space.eps_at(indices))
    return steps


def _differences(
    objective: Objective, indices: NDArray[np.intp], steps: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """``f(x + h e_i)``, ``f(x - h e_i)`` and the steps really taken on each side."""
    # One batch per side: the objective may evaluate a batch in chunks, vectorized or in parallel.
    steps = np.asarray(steps, dtype=np.float64)
    plus, h_plus = objective.perturbed_many(indices, steps)
    minus, taken = objective.perturbed_many(indices, np.negative(steps))
    return plus, minus, h_plus, np.negative(taken, out=taken)


def central_difference(
    objective: Objective,
    indices: NDArray[np.intp] | None = None,
    *,
    steps: NDArray[np.float64] | None = None,
    sigma: float,
    truncation: bool = False,
) -> Estimate:
    """Central differences ``(f(x + h e_i) - f(x - h e_i)) / (h+ + h-)`` at each element.

    Parameters
    ----------
    objective : Objective
        The loss over the flat parameter vector.
    indices : array of int, optional
        Flat indices to estimate; all by default.
    steps : array of float, optional
        One step per index; :func:`default_steps` by default.
    sigma : float
        Standard deviation of the loss's rounding noise (see
        :func:`~gradcheck.references.noise.estimate_noise`).
    truncation : bool
        Also estimate the truncation error from a second difference at ``2h``
        (two more evaluations per element).

    Returns
    -------
    Estimate
        ``error`` is the roundoff bound ``ROUNDOFF_SIGMAS * sigma / h``, plus,
        with ``truncation=True``, ``|D(2h) - D(h)| / 3``: since
        ``D(h) = f' + c h**2 + O(h**4)``, ``D(2h) - D(h) = 3 c h**2`` is three
        times the truncation error of ``D(h)``.  Without it one step says
        nothing about truncation, which :func:`richardson` estimates for the
        elements whose verdict needs it.
    """
    if indices is None:
        indices = np.arange(objective.space.size)
    indices = np.asarray(indices, dtype=np.intp)
    if steps is None:
        steps = default_steps(objective, indices)
    before = objective.n_evaluations
    plus, minus, h_plus, h_minus = _differences(objective, indices, steps)
    # In place: a full check of N elements holds a few N-sized arrays, not a dozen.
    width = np.add(h_plus, h_minus, out=h_plus)
    derivative = np.subtract(plus, minus, out=plus)
    derivative /= width
    error = np.divide(ROUNDOFF_SIGMAS * sigma * 2.0, width, out=minus)
    step = np.multiply(width, 0.5, out=h_minus)
    estimate = Estimate(
        indices=indices,
        derivative=derivative,
        error=error,
        step=step,
        n_evaluations=objective.n_evaluations - before,
        method="central",
    )
    if truncation:
        wider = with_truncation(objective, estimate, sigma=sigma)
        estimate = Estimate(
            indices=indices,
            derivative=derivative,
            error=wider.error,
            step=estimate.step,
            n_evaluations=objective.n_evaluations - before,
            method="central",
        )
    return estimate


def with_truncation(objective: Objective, first: Estimate, *, sigma: float) -> Estimate:
    """``first`` (a roundoff-only :func:`central_difference`) with its truncation error added.

    Two more evaluations per element, at twice the step: the same estimate as
    ``central_difference(..., truncation=True)``, spent only on the elements whose
    verdict needs it (a roundoff-only error bound can only make a tolerance tighter,
    so a pass without the truncation term stands).
    """
    before = objective.n_evaluations
    derivative = first.derivative
    plus2, minus2, h_plus2, h_minus2 = _differences(objective, first.indices, 2.0 * first.step)
    wide = (plus2 - minus2) / (h_plus2 + h_minus2)
    error = (
        first.error
        + np.abs(wide - derivative) / 3.0
        + ROUNDOFF_SIGMAS * sigma * 2.0 / (3.0 * (h_plus2 + h_minus2))
    )
    return Estimate(
        indices=first.indices,
        derivative=derivative,
        error=error,
        step=first.step,
        n_evaluations=objective.n_evaluations - before,
        method="central",
    )


def richardson(
    objective: Objective,
    indices: NDArray[np.intp] | None = None,
    *,
    sigma: float,
    base_steps: NDArray[np.float64] | None = None,
    n_steps: int = 7,
    factor: float = 2.0,
    first: Estimate | None = None,
) -> Estimate:
    """Richardson-extrapolated central differences over a ladder of steps, best one chosen.

    Parameters
    ----------
    objective : Objective
        The loss over the flat parameter vector.
    indices : array of int, optional
        Flat indices to estimate; all by default.
    sigma : float
        Standard deviation of the loss's rounding noise.
    base_steps : array of float, optional
        Smallest step of each element's ladder; :func:`default_steps` by default.
    n_steps : int
        Rungs of the ladder ``h, factor h, factor**2 h, ...``.
    factor : float
        Ratio between rungs.
    first : Estimate, optional
        A :func:`central_difference` at ``base_steps`` already made (its
        evaluations are reused).

    Returns
    -------
    Estimate
        ``derivative`` is the candidate with the smallest error estimate;
        ``error`` that estimate; ``step`` the smallest step the candidate uses.

    Notes
    -----
    A central difference expands as ``D(h) = f' + c2 h**2 + c4 h**4 + ...``.
    Combining rungs ``k`` and ``k+1`` as ``(r**(2l) R_{l-1,k} - R_{l-1,k+1}) / (r**(2l) - 1)``
    removes the ``h**(2l)`` term.  Each candidate ``R_{l,k}`` is a linear
    combination ``sum_j w_j D_j``; its roundoff bound is
    ``sum_j |w_j| * ROUNDOFF_SIGMAS * sigma / h_j`` and its truncation
    estimate is ``|R_{l,k} - R_{l,k+1}|`` (the same order one rung up, whose
    leading error is ``r**(2l+2)`` times larger, so the difference bounds the
    candidate's own error).  Larger rungs shrink roundoff, which is what
    resolves the tiny gradients of saturated networks; extrapolation removes
    the truncation that larger rungs bring.  The candidate with the smallest
    sum wins, as in numdifftools' step selection.
    """
    if indices is None:
        indices = np.arange(objective.space.size)
    indices = np.asarray(indices, dtype=np.intp)
    if base_steps is None:
        base_steps = default_steps(objective, indices) if first is None else first.step
    before = objective.n_evaluations
    n = len(indices)
    n_steps = min(n_steps, local_rungs(objective, indices, factor))
    rungs = np.empty((n_steps, n))
    widths = np.empty((n_steps, n))
    start = 0
    if first is not None:
        rungs[0] = first.derivative
        widths[0] = 2.0 * first.step
        start = 1
    for k in range(start, n_steps):
        plus, minus, h_plus, h_minus = _differences(objective, indices, base_steps * factor**k)
        widths[k] = h_plus + h_minus
        rungs[k] = (plus - minus) / widths[k]
    roundoff_unit = ROUNDOFF_SIGMAS * sigma * 2.0 / widths  # per rung, bound for D_k

    # Each candidate as weights over rungs: start with the identity, extrapolate level by level.
    levels: list[NDArray[np.float64]] = [np.eye(n_steps)]
    for level in range(1, n_steps):
        ratio = factor ** (2 * level)
        prev = levels[-1]
        levels.append((ratio * prev[:-1] - prev[1:]) / (ratio - 1.0))
    best = np.full(n, np.inf)
    best_value = rungs[0].copy()
    best_step = widths[0] / 2.0
    for weights in levels:
        values = weights @ rungs  # (candidates, n)
        noise = np.abs(weights) @ roundoff_unit
        if len(values) < 2:
            continue
        truncation = np.abs(values[:-1] - values[1:])
        total = truncation + noise[:-1]
        for k in range(len(total)):
            better = total[k] < best
            best = np.where(better, total[k], best)
            best_value = np.where(better, values[k], best_value)
            best_step = np.where(better, widths[k] / 2.0, best_step)
    return Estimate(
        indices=indices,
        derivative=best_value,
        error=best,
        step=best_step,
        n_evaluations=objective.n_evaluations - before + (first.n_evaluations if first else 0),
        method="richardson",
        notes={"rungs": rungs},
    )


#: The widest rung of a ladder, relative to ``max(|x|, 1)``: ``eps**(1/6)``.  Wider steps leave
#: the neighbourhood where the loss is one smooth piece (they cross relu kinks a small step
#: does not see).  In float64 this allows 7 doublings of ``eps**(1/3)``; in float32 only 3.
WIDEST_RUNG_POWER = 1 / 6


def local_rungs(objective: Objective, indices: NDArray[np.intp], factor: float = 2.0) -> int:
    """How many rungs ``h, factor h, ...`` stay within ``eps**(1/6) * max(|x|, 1)``.

    Objectives that are not over a parameter space (the directional probes' lines, which
    choose their own ladders) are not limited.
    """
    if len(indices) == 0 or not hasattr(objective, "space"):
        return 1_000_000 if len(indices) else 2
    eps = float(np.max(objective.space.eps_at(indices)))
    ratio = eps**WIDEST_RUNG_POWER / eps ** (1 / 3)
    return max(2, 1 + int(np.floor(np.log(ratio) / np.log(factor))))


def one_sided_slopes(
    objective: Objective,
    indices: Sequence[int] | NDArray[np.intp],
    steps: NDArray[np.float64],
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Forward and backward slopes ``(f(x + h) - f(x)) / h`` and ``(f(x) - f(x - h)) / h``."""
    indices = np.asarray(indices, dtype=np.intp)
    f0 = float(objective.value0)
    plus, minus, h_plus, h_minus = _differences(objective, indices, steps)
    return (plus - f0) / h_plus, (f0 - minus) / h_minus
