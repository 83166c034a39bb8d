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
) -> NDArray[np.bool_]:
    """Which of ``indices`` sit at a kink with the analytic value between the one-sided slopes.

    For a smooth loss the forward and backward slopes differ by ``h f''``,
    which halves when ``h`` halves; at a kink they differ by the jump in
    slope, which does not.  A spread that keeps at least ``KINK_PERSISTENCE``
    of its size from ``h`` to ``h/2``, exceeds the roundoff bound by
    ``KINK_ROUNDOFF_MARGIN``, and whose one-sided slopes are each stable
    (``KINK_SLOPE_STABILITY``) is a kink.
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
    room = roundoff + truncation + state.analytic_room(indices)
    low = np.minimum(forward2, backward2) - room
    high = np.maximum(forward2, backward2) + room
    analytic = state.analytic[indices]
    return is_kink & (analytic >= low) & (analytic <= high)


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
                f"non-differentiable point (kink) {place}{leaf.name}: "
                "the one-sided slopes differ and the analytic value lies between them (accepted)",
                parameter=leaf.name,
                indices=where,
            )
        )
    return hazards
