"""The analytic gradient's jitter: how much it moves when the parameters barely do.

A correct formula that loses digits to cancellation (a saturated sigmoid's
``a * (1 - a)``) gives a gradient that is only determined to within its own
rounding.  That rounding is measured here, from the user's gradient itself, and
becomes room in the derived tolerance (``JITTER_FACTOR * gradient_jitter`` in
:mod:`gradcheck.verdict.tolerance`).  It is not the loss's rounding noise
``sigma`` (:mod:`gradcheck.references.noise`), which belongs to the references.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.problem.calls import call_gradient
from gradcheck.problem.space import ParameterSpace
from gradcheck.references.noise import difference_table_noise

__all__ = [
    "FLOAT32_PROBE_MOVE",
    "JITTER_CAP",
    "JITTER_LINES",
    "JITTER_LINE_POINTS",
    "JITTER_STEP",
    "NODE_SPREAD",
    "CountedCalls",
    "GradientJitter",
    "float32_cell_ends",
    "float32_valued",
    "sees_float32_parameters",
    "measure_gradient_jitter",
]


#: Points on the line along which the gradient's rounding noise is measured (the gradient
#: at the parameters is the first): enough differences for three orders to agree.
JITTER_LINE_POINTS = 8
#: Step between those points, in units of ``sqrt(eps) * max(|x|, 1)`` per element: large
#: enough that the forward pass's intermediate values move by many ulps (a saturated
#: sigmoid's ``a`` with ``1 - a = 1e-10`` moves by ~1e-15 per step), so each point's
#: rounding is a fresh draw; small enough that the smooth part of a third difference,
#: ``t**3 g, is far below any rounding.
JITTER_STEP = 1.0
#: Independent lines whose largest estimate is taken: along one line the rounding of a
#: single dominant intermediate can advance slowly and look smooth (seen: a sixfold
#: underestimate on one line in twenty); a second, independent line rarely does too.
JITTER_LINES = 2
#: How far each point's position on the line strays from the equal spacing (in steps).
NODE_SPREAD = 0.35
#: Relative move of the float32 number around which a float32 backward pass is looked for
#: (:func:`float32_cell_ends`): off the parameters' own values, small enough to stay local.
FLOAT32_PROBE_MOVE = 1e-6
#: How far into its float32 rounding cell each end of the float32 probe lies, in float32
#: ulps on its side: the two ends round to the same float32 number and lie 0.9 ulp apart.
FLOAT32_CELL_REACH = 0.45
#: Gradient calls of one measurement: two lines of ``JITTER_LINE_POINTS - 1`` moved points,
#: and the float32 probe's two.
JITTER_GRADIENT_CALLS = JITTER_LINES * (JITTER_LINE_POINTS - 1) + 2
#: A measurement's time in units of its gradient calls' (measured: 3.2 at 5e6 elements).
MEASUREMENT_OVERHEAD = 3.0
#: Largest jitter accepted as rounding, relative to the element's own gradient: above it
#: the gradient is not rounding but jumping (a relu mask flipping along the line), and a
#: jump must not become room that could absorb an error of the gradient's size.
JITTER_CAP = 1e-3


def measure_gradient_jitter(
    grad: Callable[[Any], Any],
    space: ParameterSpace,
    analytic: NDArray[Any],
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """The analytic gradient's own rounding noise, per element, measured from ``grad``.

    A correct formula that loses digits to cancellation (a saturated sigmoid's
    ``a * (1 - a)``, with ``1 - a`` near ``1e-10``, keeps ~6 digits) is only
    determined to within that rounding.  It is measured, not assumed, so such a
    formula is not called a bug: the gradient is evaluated at
    ``JITTER_LINE_POINTS`` equally spaced points ``x + k t v`` on a random line
    and the rounding noise of each element is read off its difference table
    (:func:`~gradcheck.references.noise.difference_table_noise`, ECnoise): high
    differences cancel the gradient's smooth change and leave its rounding.  A
    wrong formula is smooth too (a missing factor, a sign, a transpose), so it
    shows no noise and gains no room.

    Elements whose table shows no consistent noise get none, and noise above
    ``JITTER_CAP`` of the element's gradient is a jump, not rounding, and is
    refused.  A gradient computed in float32 on a wider problem is the bug under
    test, so its float32 rounding gets no room: one whose values are all float32
    numbers, or one that returns the same gradient for parameters and their float32
    roundings (it only sees float32 copies of them).

    Returns
    -------
    ndarray
        Per element, the standard deviation of the gradient's rounding noise.
    """
    reference = analytic.astype(np.float64)
    if float32_valued(analytic, space) or sees_float32_parameters(grad, space, rng):
        return np.zeros(space.size)
    noise = np.zeros(space.size)
    for _ in range(JITTER_LINES):
        noise = np.fmax(noise, _line_noise(grad, space, reference, rng))
    return _pooled(noise, space)


def jitter_bound(space: ParameterSpace, analytic: NDArray[Any]) -> NDArray[np.float64]:
    """The most :func:`measure_gradient_jitter` can return: ``JITTER_CAP`` of each
    parameter's largest gradient, per element.

    An element's measured noise is refused above ``JITTER_CAP`` of its own gradient,
    and pooling raises it to at most its parameter's median of such values.
    """
    magnitude = np.abs(np.asarray(analytic, dtype=np.float64))
    bound = np.empty(space.size)
    for leaf in space.leaves:
        part = magnitude[leaf.slice]
        finite = part[np.isfinite(part)]
        bound[leaf.slice] = JITTER_CAP * (float(np.max(finite)) if finite.size else 0.0)
    return bound


def _pooled(noise: NDArray[np.float64], space: ParameterSpace) -> NDArray[np.float64]:
    """Each element's noise, at least the median noise of its parameter's elements.

    The elements of one parameter round through the same intermediates (a saturated
    unit's ``1 - a`` feeds a whole column of its weight), so their noise levels are alike,
    while each element's own estimate comes from a few differences on two lines and can
    fall several times short (seen: 4x, on an element whose textbook derivative was off
    by 2.7 of its true standard deviations).  The parameter's median is a steadier level;
    it only widens, and it stays at the size of the rounding, far below a bug's.
    """
    pooled = noise.copy()
    for leaf in space.leaves:
        part = noise[leaf.slice]
        measured = part[part > 0]
        if measured.size:
            pooled[leaf.slice] = np.maximum(part, np.median(measured))
    return pooled


def _line_noise(
    grad: Callable[[Any], Any],
    space: ParameterSpace,
    reference: NDArray[np.float64],
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """The gradient's rounding noise per element along one random line (0 where unclear)."""
    directions = [rng.standard_normal(leaf.shape) for leaf in space.leaves]
    # Irregular positions: see difference_table_noise (a rounding sawtooth must not look
    # linear along the line).
    nodes = np.arange(JITTER_LINE_POINTS) + rng.uniform(
        -NODE_SPREAD, NODE_SPREAD, JITTER_LINE_POINTS
    )
    nodes[0] = 0.0
    values = np.empty((JITTER_LINE_POINTS, space.size))
    values[0] = reference
    finite = np.isfinite(reference)
    for k in range(1, JITTER_LINE_POINTS):
        for leaf, array, direction in zip(space.leaves, space.arrays, directions, strict=True):
            t = JITTER_STEP * np.cbrt(np.finfo(leaf.dtype).eps)
            move = nodes[k] * t * direction * np.maximum(np.abs(array), 1)
            array[...] = array + move.astype(leaf.dtype)
        try:
            moved = call_gradient(grad, space, "evaluating the gradient along a short line")
        finally:
            space.restore()
        values[k] = moved
        finite &= np.isfinite(values[k])
    if not finite.all():  # (in place: a copy of the table would be JITTER_LINE_POINTS arrays)
        values[:, ~finite] = 0.0
    noise, accepted = difference_table_noise(values, nodes)
    with np.errstate(invalid="ignore"):
        jump = noise > JITTER_CAP * np.abs(reference)
    return np.where(accepted & finite & ~jump, noise, 0.0)


def float32_cell_ends(
    values: NDArray[Any], rng: np.random.Generator
) -> tuple[NDArray[Any], NDArray[Any]]:
    """Two points, in ``values``' dtype, whose elements round to the same float32 numbers.

    Around ``values`` moved by up to :data:`FLOAT32_PROBE_MOVE` (relative) and rounded to
    float32, one end lies ``FLOAT32_CELL_REACH`` of a float32 ulp below, the other as far
    above: ~0.9 float32 ulp apart, as far as the rounding cell allows.  A function that
    only sees float32 copies of its input gets the same numbers at both ends; a wider one
    sees inputs that differ by ~1e-7 relative, enough to move even a saturated unit's
    ``a`` (``1 - a = 1e-10``) by an ulp.  (Two points only half an ulp apart at random,
    as once used here, were often too close for a saturated gradient to tell apart, and
    a correct float64 backward pass was taken for a float32 one.)  Elements beyond
    float32's range are left as they are, at both ends.
    """
    moved = values * (1 + rng.uniform(-FLOAT32_PROBE_MOVE, FLOAT32_PROBE_MOVE, values.shape))
    with np.errstate(over="ignore", invalid="ignore"):  # beyond float32: left as they are
        center = moved.astype(np.float32)
        below = (center - np.nextafter(center, np.float32(-np.inf))).astype(values.dtype)
        above = (np.nextafter(center, np.float32(np.inf)) - center).astype(values.dtype)
        wide = center.astype(values.dtype)
        inside = np.isfinite(center) & np.isfinite(below) & np.isfinite(above)
        low = np.where(inside, wide - FLOAT32_CELL_REACH * below, values)
        high = np.where(inside, wide + FLOAT32_CELL_REACH * above, values)
    return low.astype(values.dtype), high.astype(values.dtype)


def sees_float32_parameters(
    grad: Callable[[Any], Any], space: ParameterSpace, rng: np.random.Generator
) -> bool:
    """True when the gradient of a wider-than-float32 problem only sees float32 copies.

    The gradient is evaluated at the two ends of :func:`float32_cell_ends`: a backward
    pass that casts its parameters to float32 gets the same float32 numbers both times
    and returns the same gradient, bit for bit; a wider one does not.
    """
    if np.finfo(space.dtype).eps >= np.finfo(np.float32).eps:
        return False
    ends = [float32_cell_ends(array, rng) for array in space.arrays]
    gradients = []
    for side in (0, 1):
        for array, pair in zip(space.arrays, ends, strict=True):
            array[...] = pair[side]
        try:
            gradients.append(
                call_gradient(grad, space, "evaluating the gradient at slightly moved parameters")
            )
        finally:
            space.restore()
    same = np.isfinite(gradients[0]) & np.isfinite(gradients[1])
    return bool(same.any()) and bool(np.array_equal(gradients[0][same], gradients[1][same]))


class GradientJitter:
    """The analytic gradient's jitter, measured only once a comparison needs its room.

    The derived tolerance grows with the jitter, so an element (or a directional probe)
    that passes without that room passes with it: the extra gradient calls of
    :func:`measure_gradient_jitter` are made only when something fails without it.
    The measurement draws from its own random stream, so whether it ran does not
    change the probes or samples drawn after it.
    """

    def __init__(
        self,
        grad: Callable[[Any], Any],
        space: ParameterSpace,
        analytic: NDArray[Any],
        rng: np.random.Generator,
        *,
        enabled: bool,
    ) -> None:
        self.grad, self.space, self.analytic, self.rng = grad, space, analytic, rng
        self.enabled = enabled
        self.values: NDArray[np.float64] | None = None
        self.grad_calls = 0
        #: ``affordable(seconds)``: may the check spend that much more?  (None: always.)
        self.affordable: Callable[[float], bool] | None = None
        #: Seconds of one gradient call, as first measured (0 while unknown).
        self.seconds_per_call = 0.0
        #: Seconds the measurement was projected to take when it was not affordable.
        self.skipped_seconds: float | None = None

    @property
    def projected_seconds(self) -> float:
        """What :func:`measure_gradient_jitter` would take: its gradient calls' time times
        :data:`MEASUREMENT_OVERHEAD` for its own work (moves, stored gradients, difference
        tables)."""
        return MEASUREMENT_OVERHEAD * JITTER_GRADIENT_CALLS * self.seconds_per_call

    @property
    def measured(self) -> bool:
        """Whether :attr:`values` were measured (not the bound put in their place)."""
        return self.values is not None and self.skipped_seconds is None

    def measure(self) -> NDArray[np.float64] | None:
        """The jitter (measured on the first call), or None when the tolerance does not use it.

        When measuring would take the check past its budget, the most that any measured
        jitter could be (:func:`jitter_bound`) stands in for it and :attr:`skipped_seconds`
        says so: what still fails then fails whatever the jitter; what passes only thanks
        to the bound is not verified (the check says ``inconclusive``).
        """
        if self.enabled and self.values is None:
            if self.affordable is not None and not self.affordable(self.projected_seconds):
                self.skipped_seconds = self.projected_seconds
                self.values = jitter_bound(self.space, self.analytic)
                return self.values
            counter = CountedCalls(self.grad)
            self.values = measure_gradient_jitter(counter, self.space, self.analytic, self.rng)
            self.grad_calls = counter.calls
        return self.values


class CountedCalls:
    """A function wrapper that counts its calls."""

    def __init__(self, function: Callable[[Any], Any]) -> None:
        self.function = function
        self.calls = 0
        self.__name__ = getattr(function, "__name__", "grad")

    def __call__(self, tree: Any) -> Any:
        self.calls += 1
        return self.function(tree)


def float32_valued(analytic: NDArray[Any], space: ParameterSpace) -> bool:
    """True when the parameters are wider than float32 but every gradient value is a float32."""
    if np.finfo(space.dtype).eps >= np.finfo(np.float32).eps:
        return False
    values = analytic.astype(np.float64)
    finite = values[np.isfinite(values)]
    interesting = finite[finite != np.round(finite)]  # zeros and small integers prove nothing
    if interesting.size < 3:
        return False
    return bool(np.all(interesting.astype(np.float32).astype(np.float64) == interesting))
