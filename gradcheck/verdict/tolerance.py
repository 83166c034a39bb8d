"""The pass/fail criterion: tolerances derived from floating-point reasoning, not tuned.

An element passes when ``|analytic - reference| <= tolerance`` (:func:`passes`, the one
pass rule every check uses) with

    tolerance = ESTIMATE_SAFETY * (reference_error + ANALYTIC_ROUNDING * eps * scale
                                   + JITTER_FACTOR * gradient_jitter
                                   + eps**(2/3) * global_scale + tiny)

* ``reference_error`` is the reference's *own* error estimate at that element:
  roundoff ``3 sigma / h`` for a difference quotient (``sigma`` the measured
  rounding noise of the loss, ``h`` the step), plus the truncation estimate
  from Richardson extrapolation when the element needed one; ``8 eps |d|`` for
  the complex step.
* ``ANALYTIC_ROUNDING * eps * scale`` is room for the analytic gradient's own
  rounding: backprop sums products whose size is the parameter's gradient
  scale (``scale = max |reference|`` over that parameter), each rounding by a
  relative ``eps`` of the *parameter's* dtype. A float64 problem gets float64
  room, so backprop silently done in float32 (errors near 1e-7) fails.
* ``JITTER_FACTOR * gradient_jitter`` is room for rounding the
  analytic formula amplifies beyond that (cancellation, as in a saturated
  sigmoid's ``a * (1 - a)``): ``gradient_jitter`` is *measured* as the change
  of the user's gradient when the parameters move by a few ulps and, as a
  second difference that cancels the true change, by ``sqrt(eps)``
  (:func:`gradcheck.verdict.jitter.measure_gradient_jitter`).  The factor turns a few
  samples into a bound.
* ``eps**(2/3) * global_scale``, with ``global_scale`` the largest reference
  gradient anywhere in the problem.  ``eps**(2/3)`` is the best relative
  accuracy a real-arithmetic finite difference reaches (central difference at
  its optimal step), so errors below it at the problem's own scale are
  invisible to any reference built from loss values; only the complex step
  resolves them.  This is room for digits a correct formula loses to
  cancellation that no perturbation reveals: a saturated sigmoid's textbook
  derivative ``a * (1 - a)`` with ``1 - a`` near ``eps`` is wrong in its
  leading digit, yet ``a`` rounds to the same float under any small move, so
  its error is frozen.  A 1e-4 relative bug, float32 arithmetic (1e-7) and a
  single element off by 1e-3 of the largest gradient all stay far outside
  it, also when every gradient is ~1e-10, since the room scales with them.
* ``tiny``, the dtype's smallest normal number: below it numbers go
  subnormal and lose significant bits, so a gradient whose computation
  passes through that range (a float32 ``1 - tanh(z)**2`` at ``|z| ~ 45``)
  is only known to about ``tiny`` absolutely.  It matters only for gradients
  near underflow (1e-38 in float32, 1e-308 in float64).
* ``ESTIMATE_SAFETY`` covers that every term is an estimate (a factor of 2).

Nothing here depends on the size of the gradient alone, so saturated networks
(gradients ~1e-10) and losses scaled by 1e6 are judged by the same rule.
Users who want a classical criterion pass ``atol``/``rtol``:
``tolerance = atol + rtol * |reference|``.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

__all__ = [
    "ESTIMATE_SAFETY",
    "ANALYTIC_ROUNDING",
    "JITTER_FACTOR",
    "FROZEN_ROOM_CAP",
    "passes",
    "derived_tolerance",
    "user_tolerance",
    "resolution_target",
]

#: Factor on the sum of the error terms: each term is an estimate, not a bound.
ESTIMATE_SAFETY = 2.0
#: Room for the analytic gradient's rounding, in units of ``eps * scale``: backprop sums
#: a few dozen products of the gradient's size, each rounded once.
ANALYTIC_ROUNDING = 32.0
#: Most of a parameter's own gradient scale the frozen-digits room may reach: a parameter
#: whose gradients all lie inside ``eps**(2/3) * largest_gradient`` (a term ``1e-12 * b``
#: beside ``w**2``) must still fail when zeroed or sign-flipped.
FROZEN_ROOM_CAP = 1e-2
#: Room for the measured jitter of the analytic gradient: a few samples of a spread turned
#: into a bound.
JITTER_FACTOR = 4.0


def passes(
    analytic: NDArray[np.float64] | float,
    reference: NDArray[np.float64] | float,
    tolerance: NDArray[np.float64] | float,
) -> NDArray[np.bool_]:
    """The pass rule, elementwise: ``|analytic - reference| <= tolerance``.

    NaN anywhere (an unchecked element, a non-finite gradient) does not pass.
    """
    with np.errstate(invalid="ignore"):
        return np.asarray(np.abs(analytic - reference) <= tolerance)


def derived_tolerance(
    reference_error: NDArray[np.float64],
    eps: NDArray[np.float64] | float,
    scale: NDArray[np.float64] | float,
    gradient_jitter: NDArray[np.float64] | float = 0.0,
    underflow: NDArray[np.float64] | float = 0.0,
    global_scale: float = 0.0,
) -> NDArray[np.float64]:
    """The derived tolerance of each element (see the module docstring)."""
    # The terms that do not depend on the reference are summed first: with per-parameter
    # scalars (the usual case) that is a few numbers, and the result costs one array.
    # Frozen digits are room at the problem's scale, but never a parameter's own size: a
    # parameter whose whole gradient is that small is still told from zero and from -g.
    frozen = np.minimum(np.cbrt(eps) ** 2 * global_scale, FROZEN_ROOM_CAP * np.asarray(scale))
    room = ANALYTIC_ROUNDING * eps * scale + underflow + frozen
    if np.any(gradient_jitter):
        room = room + JITTER_FACTOR * np.asarray(gradient_jitter)
    tolerance = np.add(reference_error, room, dtype=np.float64)
    tolerance *= ESTIMATE_SAFETY
    return tolerance


def user_tolerance(
    reference: NDArray[np.float64], atol: float | None, rtol: float | None
) -> NDArray[np.float64]:
    """``atol + rtol * |reference|`` (a missing one counts as 0)."""
    return (atol or 0.0) + (rtol or 0.0) * np.abs(reference)


def resolution_target(eps: NDArray[np.float64], scale: NDArray[np.float64]) -> NDArray[np.float64]:
    """The tolerance an element should reach before a pass means something: ``sqrt(eps) * scale``.

    A first-pass tolerance above this is too coarse to see a 1e-4 relative
    bug in float64 (``sqrt(eps) = 1.5e-8``), so such elements are refined
    with Richardson extrapolation over larger steps.  In float32 the target
    is ``3.5e-4``: what float32 can resolve.
    """
    return np.sqrt(eps) * scale
