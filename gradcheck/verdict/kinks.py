"""Kinks: non-differentiable points (relu at 0, ``abs``) told apart from wrong gradients.

At a kink the loss has two one-sided slopes and no derivative, so every
reference that steps across it is meaningless there.  An element that still
fails after the second reference, where the one-sided slopes differ by a jump
that does not shrink with the step, is a kink: the analytic value is accepted
when it lies between the two slopes within their own error, and the kink is
reported as a hazard, never silently absorbed.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from gradcheck.problem.objective import Objective
from gradcheck.problem.space import ParameterSpace
from gradcheck.references.finite_difference import (
    ROUNDOFF_SIGMAS,
    default_steps,
    one_sided_slopes,
)
from gradcheck.results import Hazard, format_index
from gradcheck.verdict.comparison import Comparison

__all__ = [
    "KINK_EVALUATIONS",
    "KINK_PERSISTENCE",
    "KINK_ROUNDOFF_MARGIN",
    "KINK_SLOPE_STABILITY",
    "accepted_kinks",
    "kink_hazards",
]

#: Loss evaluations the kink test spends per element: both one-sided slopes at h and h/2.
KINK_EVALUATIONS = 8
#: Share of the slopes' spread that must survive halving the step for a kink: a smooth
#: loss's spread ``h f''`` halves with ``h``; a jump in slope does not shrink at all.
KINK_PERSISTENCE = 0.75
#: How far the spread must exceed the slopes' roundoff bound to count as a jump.
KINK_ROUNDOFF_MARGIN = 4.0
#: Most each one-sided slope may change from h to h/2, as a share of the jump: on each
#: side of a kink the loss is smooth, so its slopes barely move (a kink at distance
#: r*h < 0.2h moves them by r*jump, at most 1/3 of the remaining jump); slopes that
#: wander as much as the jump are noise or drift, not a kink, and their band could
#: otherwise absorb an error of the gradient's size.
KINK_SLOPE_STABILITY = 0.5
#: Kinks listed by element in a hazard's message (all are in its ``indices``).
KINKS_LISTED = 5


def accepted_kinks(
    objective: Objective, state: Comparison, indices: NDArray[np.intp], sigma: float
) -> tuple[NDArray[np.bool_], NDArray[np.float64], NDArray[np.float64]]:
    """Which of ``indices`` sit at a kink, with the analytic value told by the clean slopes.

    For a smooth loss the forward and backward slopes differ by ``h f''``,
    which halves when ``h`` halves; at a kink they differ by the jump in
    slope, which does not.  A spread that keeps at least ``KINK_PERSISTENCE``
    of its size from ``h`` to ``h/2``, exceeds the roundoff bound by
    ``KINK_ROUNDOFF_MARGIN``, and whose one-sided slopes are each stable
    (``KINK_SLOPE_STABILITY``) is a kink at the point: the analytic value must lie
    between the slopes.  A kink further out, within a step on one side only, leaves
    the other side's slopes clean (:func:`_one_side_clean`): the analytic value must
    then match that side's slope within its own error, which is a check, not a band.

    Returns
    -------
    accepted : ndarray of bool
        Per element of ``indices``.
    reference, tolerance : ndarray
        Per element, what the accepted analytic value was checked against and how far it
        is known: the band's middle and half-width, or the clean side's slope and the
        room it was matched in plus that slope's own error (NaN where not accepted).
    """
    steps = default_steps(objective, indices)
    forward, backward = one_sided_slopes(objective, indices, steps)
    forward2, backward2 = one_sided_slopes(objective, indices, steps / 2)
    spread = np.abs(forward - backward)
    spread2 = np.abs(forward2 - backward2)
    roundoff = 2 * ROUNDOFF_SIGMAS * sigma / (steps / 2)
    is_kink = (spread2 > KINK_PERSISTENCE * spread) & (spread2 > KINK_ROUNDOFF_MARGIN * roundoff)
    # The band is the slopes' own error: roundoff, the change of each slope from h to h/2
    # (its truncation on a smooth side), and the analytic gradient's own rounding room;
    # not the element's tolerance, which a straddled kink has inflated.
    truncation = np.abs(forward2 - forward) + np.abs(backward2 - backward)
    is_kink &= truncation <= KINK_SLOPE_STABILITY * spread2
    analytic_room = state.analytic_room(indices)
    room = roundoff + truncation + analytic_room
    low = np.minimum(forward2, backward2) - room
    high = np.maximum(forward2, backward2) + room
    analytic = state.analytic[indices]
    between = is_kink & (analytic >= low) & (analytic <= high)
    # A clean side's slope at h/2 is off by about its change from h (first-order
    # truncation) plus roundoff: the analytic value must match it within that and its own
    # rounding, and is then known to within that error twice (the slope's and the match).
    forward_error = roundoff + np.abs(forward2 - forward)
    backward_error = roundoff + np.abs(backward2 - backward)
    forward_room = forward_error + analytic_room
    backward_room = backward_error + analytic_room
    forward_side = _one_side_clean(forward, forward2, backward, backward2, roundoff) & (
        np.abs(analytic - forward2) <= forward_room
    )
    backward_side = _one_side_clean(backward, backward2, forward, forward2, roundoff) & (
        np.abs(analytic - backward2) <= backward_room
    )
    reference = np.where(between, (low + high) / 2, np.where(forward_side, forward2, backward2))
    tolerance = np.where(
        between,
        (high - low) / 2,
        np.where(forward_side, forward_room + forward_error, backward_room + backward_error),
    )
    accepted = between | forward_side | backward_side
    return accepted, np.where(accepted, reference, np.nan), np.where(accepted, tolerance, np.nan)


def _one_side_clean(
    side: NDArray[np.float64],
    side2: NDArray[np.float64],
    other: NDArray[np.float64],
    other2: NDArray[np.float64],
    roundoff: NDArray[np.float64],
) -> NDArray[np.bool_]:
    """Where one side's slopes are clean and the other side's straddle a kink.

    A kink at ``r h`` from the point with ``0.2 < r < 1`` (a float32 relu unit 1e-3 from
    its kink, steps of 5e-3) moves the straddling side's slope by a large share of the
    jump from ``h`` to ``h/2``, so the band test above refuses it; the slopes on the other
    side stay where they were (``KINK_SLOPE_STABILITY`` of that move at most) and are a
    clean one-sided derivative.  The straddling side's move must exceed the roundoff
    bound by ``KINK_ROUNDOFF_MARGIN``, so a smooth loss (both sides move alike, by
    ``h f''/2``) or plain noise never qualifies.
    """
    moved = np.abs(other2 - other)
    return (np.abs(side2 - side) <= KINK_SLOPE_STABILITY * moved) & (
        moved > KINK_ROUNDOFF_MARGIN * roundoff
    )


def kink_hazards(space: ParameterSpace, at: NDArray[np.intp]) -> list[Hazard]:
    """One ``kink`` hazard per parameter with accepted kinks at the flat indices ``at``."""
    hazards = []
    for leaf in space.leaves:
        mine = at[(at >= leaf.offset) & (at < leaf.offset + leaf.size)]
        if not len(mine):
            continue
        where = tuple(space.leaf_index(int(i))[1] for i in mine)
        listed = ", ".join(format_index(w) for w in where[:KINKS_LISTED])
        more = " ..." if len(where) > KINKS_LISTED else ""
        place = f"at element(s) {listed}{more} of " if leaf.shape else "in "
        hazards.append(
            Hazard(
                "kink",
                f"non-differentiable point (kink) {place}{leaf.name}: the one-sided slopes "
                "differ and the analytic value lies between them, or matches the slope on the "
                "side away from the kink (accepted; checked only to within the slopes' error "
                "there, the tolerance shown for those elements)",
                parameter=leaf.name,
                indices=where,
            )
        )
    return hazards
