"""Vector references: a whole Jacobian column, or a directional derivative, per evaluation.

The scalar references (:mod:`gradcheck.references`) differentiate one loss value.  A
vector function ``f: R^n -> R^m`` gives more per evaluation: ``f(x + i h e_k)`` carries
the whole column ``J[:, k]`` in its imaginary part, and ``f(x +- h d)`` the whole
directional derivative ``J d``.  The estimates here are the same references with the
same error estimates, one per output element:

* complex step: ``Im f(x + i h d) / h``, error ``COMPLEX_ROUNDING * eps * scale``
  (as :func:`gradcheck.references.complex_step.complex_step`);
* central difference: error ``ROUNDOFF_SIGMAS * sigma_j / h`` with ``sigma_j`` the
  rounding noise of output ``j``, measured by :func:`output_noise` (the loss's
  ECnoise measurement, :func:`gradcheck.references.noise.difference_table_noise`,
  applied to every output at once);
* Richardson extrapolation over a ladder of steps, the candidate with the smallest
  truncation-plus-roundoff estimate chosen per output (as
  :func:`gradcheck.references.finite_difference.richardson`).
"""

from __future__ import annotations

import warnings
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.problem.space import ParameterSpace
from gradcheck.references.complex_step import COMPLEX_ROUNDING, complex_step_size
from gradcheck.references.finite_difference import ROUNDOFF_SIGMAS, WIDEST_RUNG_POWER
from gradcheck.references.noise import NOISE_STEP, RESAMPLING_STEP, difference_table_noise
from gradcheck.runner.derivatives.layout import Inputs, Outputs

__all__ = [
    "VectorFunction",
    "Columns",
    "complex_columns",
    "central_columns",
    "richardson_columns",
    "output_noise",
    "along",
]

#: Rungs of a Richardson ladder (as the scalar reference's default), and their ratio.
RICHARDSON_RUNGS = 7
RUNG_FACTOR = 2.0
#: Points on the line that measures the outputs' rounding noise.
NOISE_POINTS = 8


class VectorFunction:
    """``f`` over the flat vector of the differentiated inputs: counted and validated.

    Parameters
    ----------
    f : callable
        The user's function, called as ``inputs`` says.
    inputs : Inputs
        Names, fixed inputs, how to call.
    outputs : Outputs
        The structure ``f`` returned at the given inputs.
    space : ParameterSpace
        The differentiated inputs (its ``x0`` is the point).
    role : str
        ``f``'s name in messages.
    """

    def __init__(
        self, f: Any, inputs: Inputs, outputs: Outputs, space: ParameterSpace, role: str = "f"
    ) -> None:
        self.f = f
        self.inputs = inputs
        self.outputs = outputs
        self.space = space
        self.role = role
        self.n_evaluations = 0
        self.x0 = space.x0
        #: Precision of the arithmetic: the coarser of the inputs' and the outputs'.
        self.eps = float(max(np.finfo(space.dtype).eps, np.finfo(outputs.dtype).eps))

    def __call__(self, x: NDArray[Any], context: str) -> NDArray[Any]:
        """``f`` at the flat point ``x`` (complex allowed), as one flat output vector."""
        self.n_evaluations += 1
        complex_ = np.iscomplexobj(x)
        dtype = np.result_type(self.space.dtype, np.complex64) if complex_ else None
        tree = self.space.unflatten(x, dtype=dtype)
        with warnings.catch_warnings():
            warnings.simplefilter("error", np.exceptions.ComplexWarning)
            value = self.inputs.call(self.f, self.role, context, tree)
        return self.outputs.flatten(value, context)

    def scales(self, indices: NDArray[np.intp]) -> NDArray[np.float64]:
        """``max(|x_k|, 1)`` per element: what the steps are relative to."""
        return np.maximum(np.abs(self.x0[indices]).astype(np.float64), 1.0)


@dataclass(frozen=True, eq=False)
class Columns:
    """Estimates of Jacobian columns (or directional derivatives), one per direction.

    Attributes
    ----------
    derivative, error : ndarray, shape (m, k)
        Per output element and direction, the estimate and its own error estimate.
    step : ndarray, shape (k,)
        The step of each direction (half the stencil's width).
    n_evaluations : int
        Evaluations of ``f`` spent.
    method : str
        ``complex``, ``central`` or ``richardson``.
    """

    derivative: NDArray[np.float64]
    error: NDArray[np.float64]
    step: NDArray[np.float64]
    n_evaluations: int
    method: str


def along(
    function: VectorFunction, direction: NDArray[Any], t: float, context: str
) -> tuple[NDArray[Any], float]:
    """``f(x0 + t d)`` with the point rounded to the inputs' dtypes, and the ``t`` really taken.

    The step really taken is measured along the largest component of ``d``, so a
    difference quotient divides by what was added (as the scalar references do).
    """
    point = function.space.unflatten(function.x0 + t * direction)
    flat = function.space.flatten_like(point, role="point")
    k = int(np.argmax(np.abs(direction)))
    taken = (float(flat[k]) - float(function.x0[k])) / float(direction[k]) if direction[k] else t
    return function(flat, context), taken


def complex_columns(
    function: VectorFunction, directions: list[NDArray[np.float64]], scales: NDArray[np.float64]
) -> Columns:
    """``Im f(x0 + i h d) / h`` for each direction ``d``: one evaluation per column.

    ``h = complex_step_size(eps) * scale``; ``error`` is ``COMPLEX_ROUNDING * eps``
    times the largest ``|derivative|`` over every estimated entry, as the scalar
    complex step does over its elements.
    """
    before = function.n_evaluations
    steps = complex_step_size(function.eps) * np.asarray(scales, dtype=np.float64)
    columns = np.empty((function.outputs.size, len(directions)))
    for k, (direction, h) in enumerate(zip(directions, steps, strict=True)):
        y = function(function.x0 + 1j * h * direction, "evaluating f at a complex-step point")
        columns[:, k] = np.imag(y) / h
    scale = float(np.max(np.abs(columns), initial=0.0))
    error = COMPLEX_ROUNDING * function.eps * np.maximum(np.abs(columns), scale)
    return Columns(columns, error, steps, function.n_evaluations - before, "complex")


def central_columns(
    function: VectorFunction,
    directions: list[NDArray[np.float64]],
    scales: NDArray[np.float64],
    sigma: NDArray[np.float64],
) -> Columns:
    """``(f(x0 + h d) - f(x0 - h d)) / 2h`` per direction; error ``ROUNDOFF_SIGMAS sigma_j / h``.

    Roundoff only, as the scalar first pass: :func:`richardson_columns` adds the
    truncation estimate where a verdict needs it.
    """
    before = function.n_evaluations
    steps = np.cbrt(function.eps) * np.asarray(scales, dtype=np.float64)
    columns = np.empty((function.outputs.size, len(directions)))
    widths = np.empty(len(directions))
    for k, (direction, h) in enumerate(zip(directions, steps, strict=True)):
        plus, h_plus = along(function, direction, h, "evaluating f with an input moved")
        minus, h_minus = along(function, direction, -h, "evaluating f with an input moved")
        widths[k] = h_plus - h_minus
        columns[:, k] = (plus - minus) / widths[k]
    error = ROUNDOFF_SIGMAS * sigma[:, None] * 2.0 / widths[None, :]
    return Columns(columns, error, widths / 2.0, function.n_evaluations - before, "central")


def _rungs(eps: float) -> int:
    """Rungs that stay within ``eps**(1/6)`` of the point (see ``local_rungs``)."""
    ratio = eps**WIDEST_RUNG_POWER / eps ** (1 / 3)
    return min(RICHARDSON_RUNGS, max(2, 1 + int(np.floor(np.log(ratio) / np.log(RUNG_FACTOR)))))


def richardson_columns(
    function: VectorFunction,
    directions: list[NDArray[np.float64]],
    scales: NDArray[np.float64],
    sigma: NDArray[np.float64],
    rungs: int | None = None,
) -> Columns:
    """Richardson-extrapolated central differences per direction, the best candidate per output.

    The ladder ``h, 2h, 4h, ...`` starts at the central step; candidate ``R_{l,k}``
    removes the ``h**(2l)`` term, its error estimate is ``|R_{l,k} - R_{l,k+1}|``
    plus its roundoff ``sum |w| ROUNDOFF_SIGMAS sigma_j / h``, and the candidate with
    the smallest estimate wins, output by output (the scalar
    :func:`~gradcheck.references.finite_difference.richardson`, on vectors).
    """
    before = function.n_evaluations
    n_rungs = rungs or _rungs(function.eps)
    base = np.cbrt(function.eps) * np.asarray(scales, dtype=np.float64)
    m = function.outputs.size
    derivative = np.empty((m, len(directions)))
    error = np.empty((m, len(directions)))
    for k, (direction, h) in enumerate(zip(directions, base, strict=True)):
        values = np.empty((n_rungs, m))
        widths = np.empty(n_rungs)
        for r in range(n_rungs):
            t = h * RUNG_FACTOR**r
            plus, t_plus = along(function, direction, t, "evaluating f on a Richardson ladder")
            minus, t_minus = along(function, direction, -t, "evaluating f on a Richardson ladder")
            widths[r] = t_plus - t_minus
            values[r] = (plus - minus) / widths[r]
        derivative[:, k], error[:, k] = _extrapolate(values, widths, sigma)
    return Columns(derivative, error, base, function.n_evaluations - before, "richardson")


def _extrapolate(
    values: NDArray[np.float64], widths: NDArray[np.float64], sigma: NDArray[np.float64]
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """The best Richardson candidate per output from rungs ``values`` (rungs x outputs)."""
    n_rungs = len(widths)
    roundoff = ROUNDOFF_SIGMAS * 2.0 * sigma[None, :] / widths[:, None]  # (rungs, outputs)
    levels = [np.eye(n_rungs)]
    for level in range(1, n_rungs):
        ratio = RUNG_FACTOR ** (2 * level)
        previous = levels[-1]
        levels.append((ratio * previous[:-1] - previous[1:]) / (ratio - 1.0))
    best = np.full(values.shape[1], np.inf)
    best_value = values[0].copy()
    for weights in levels:
        if len(weights) < 2:
            continue
        candidates = weights @ values
        total = np.abs(candidates[:-1] - candidates[1:]) + (np.abs(weights) @ roundoff)[:-1]
        for k in range(len(total)):
            better = total[k] < best
            best = np.where(better, total[k], best)
            best_value = np.where(better, candidates[k], best_value)
    return best_value, best


def output_noise(
    function: VectorFunction, rng: np.random.Generator
) -> tuple[NDArray[np.float64], int]:
    """The rounding noise of every output element near ``x0``, and the evaluations spent.

    The loss's ECnoise measurement (:func:`~gradcheck.references.noise.estimate_noise`)
    on every output at once: ``f`` along a short random line, its difference table per
    output.  Where no estimate is accepted, or it is below, the floor ``eps |f_j|`` is used.
    """
    before = function.n_evaluations
    direction = rng.standard_normal(function.space.size)
    direction /= np.linalg.norm(direction) or 1.0
    scale = max(float(np.max(np.abs(function.x0), initial=0.0)), 1.0)
    floor = function.eps * np.abs(function.outputs.value0)
    noise = np.zeros(function.outputs.size)
    unknown = np.ones(function.outputs.size, dtype=bool)
    for relative in (NOISE_STEP * np.sqrt(function.eps), RESAMPLING_STEP * np.cbrt(function.eps)):
        t = relative * scale
        values = np.empty((NOISE_POINTS, function.outputs.size))
        values[0] = function.outputs.value0
        for k in range(1, NOISE_POINTS):
            values[k], _ = along(function, direction, k * t, "measuring the rounding noise of f")
        measured, accepted = difference_table_noise(values)
        noise[unknown] = np.where(accepted, measured, 0.0)[unknown]
        # Outputs that did not move at all along the tiny line (a saturated ``1 - a``) hide
        # their rounding: they are looked at again along a longer line, as the loss's is.
        unknown &= (noise == 0) & (function.outputs.value0 != 0)
        if not unknown.any():
            break
    sigma = np.maximum(np.maximum(noise, floor), np.finfo(np.float64).tiny)
    return sigma, function.n_evaluations - before
