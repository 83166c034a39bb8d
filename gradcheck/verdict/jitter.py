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

__all__ = [
    "JITTER_SAMPLES",
    "JITTER_ULPS",
    "CountedCalls",
    "GradientJitter",
    "float32_valued",
    "measure_gradient_jitter",
]


#: Gradient evaluations at ulp-perturbed parameters that measure the analytic gradient's jitter.
JITTER_SAMPLES = 3
#: Size of those perturbations, in units of each element's eps (relative).
JITTER_ULPS = 4.0


def measure_gradient_jitter(
    grad: Callable[[Any], Any],
    space: ParameterSpace,
    analytic: NDArray[Any],
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """How much the analytic gradient jitters when the parameters barely move.

    A parameter is only known to within its last bits, so a gradient formula
    whose value jumps by ``d`` under such moves is only determined to within
    ``d``.  This is how rounding amplified by cancellation inside the user's
    backward pass shows itself, and it is measured rather than assumed, so a
    correct but ill-conditioned formula is not called a bug.  Two scales:

    * a few ulps (``JITTER_ULPS``), ``JITTER_SAMPLES`` times:
      the largest change;
    * ``sqrt(eps)`` relative, as a second difference
      ``(g(x + d) + g(x - d) - 2 g(x)) / 2``, which cancels the gradient's true
      (linear) change and leaves its rounding.  This scale is what unfreezes
      rounding that ulp moves cannot reach: a saturated sigmoid's ``a * (1 - a)``
      with ``1 - a = 1e-10`` loses ten digits, yet ``a`` itself does not move
      under ulp perturbations of the weights.

    A gradient whose values are all exactly float32 numbers while the
    parameters are wider was computed in float32; its float32 rounding is the
    bug under test, so it gets no second-difference room.

    Returns
    -------
    ndarray
        Per element, the larger of the two measurements.
    """
    reference = analytic.astype(np.float64)
    spread = np.zeros(space.size)

    def moved_by(relative: Callable[[Any], NDArray[np.float64]]) -> NDArray[np.float64]:
        for leaf, array in zip(space.leaves, space.arrays, strict=True):
            array[...] = array * (1 + relative(leaf)).astype(leaf.dtype)
        try:
            moved = call_gradient(
                grad, space, "evaluating the gradient at slightly moved parameters"
            )
        finally:
            space.restore()
        return moved.astype(np.float64)

    for _ in range(JITTER_SAMPLES):
        moved = moved_by(
            lambda leaf: (
                rng.uniform(-JITTER_ULPS, JITTER_ULPS, size=leaf.shape) * np.finfo(leaf.dtype).eps
            )
        )
        with np.errstate(invalid="ignore"):
            change = np.abs(moved - reference)
        spread = np.fmax(spread, np.where(np.isfinite(change), change, 0.0))

    if not float32_valued(analytic, space):
        signs = {leaf.name: rng.choice([-1.0, 1.0], size=leaf.shape) for leaf in space.leaves}
        scale = {leaf.name: np.sqrt(np.finfo(leaf.dtype).eps) for leaf in space.leaves}
        plus = moved_by(lambda leaf: signs[leaf.name] * scale[leaf.name])
        minus = moved_by(lambda leaf: -signs[leaf.name] * scale[leaf.name])
        with np.errstate(invalid="ignore"):
            second = np.abs(plus + minus - 2 * reference) / 2
        spread = np.fmax(spread, np.where(np.isfinite(second), second, 0.0))
    return spread


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

    def measure(self) -> NDArray[np.float64] | None:
        """The jitter (measured on the first call), or None when the tolerance does not use it."""
        if self.enabled and self.values is None:
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
