"""Hazards: what makes a verdict less than it seems, found and named.

A hazard is reported beside the verdict: a loss or gradient that writes into
its arguments, randomness left on, precision narrower than float64, gradients
too small for an exactly-zero loss to show.  Blocking hazards (randomness)
make the check ``inconclusive``: finite differences of a random function say
nothing, so no verdict is given and no bug is named.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.problem.calls import call_gradient
from gradcheck.problem.objective import Objective
from gradcheck.problem.space import ParameterSpace, working_eps
from gradcheck.results import Hazard, ParameterResult, format_index
from gradcheck.verdict.comparison import Comparison

__all__ = [
    "DIGITS_LOST_NOTED",
    "ZERO_LOSS_TERMS",
    "below_zero_loss_quantum",
    "cancellation_hazards",
    "deduplicated",
    "determinism_hazards",
    "gradient_drift_hazard",
    "loss_drift_hazard",
    "mutation_hazard",
    "on_copies",
    "precision_hazards",
    "unresolved_parameter_hazards",
    "zero_loss_hazard",
]

#: Size of the cancelled terms of an exactly-zero loss, in units of the largest parameter.
ZERO_LOSS_TERMS = 16.0
#: Digits a gradient formula may lose to cancellation before a passing check says so: a
#: few are lost to ordinary rounding of sums and products (2 digits is a factor of 100).
DIGITS_LOST_NOTED = 3


def on_copies(function: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``function`` called on a deep copy of its argument: what it writes goes nowhere."""

    def guarded(tree: Any) -> Any:
        return function(copy.deepcopy(tree))

    return guarded


def mutation_hazard(role: str, *, during_check: bool = False, change: str | None = None) -> Hazard:
    """The ``mutation`` hazard of a ``role`` ("loss", "gradient") that changes its input.

    Changing its input means writing into the arrays, or replacing, deleting or adding
    entries of the parameter tree (``p["w"] = ...``, ``del p["b"]``): ``change`` says which
    when known (:attr:`~gradcheck.problem.space.ParameterSpace.last_change`).
    A function that changes its arguments corrupts the training loop it lives in
    (an SGD step inside ``grad`` updates the weights twice), so the check fails with
    status ``hazard`` even when the values are right.  One that starts changing them only
    during the check has corrupted the evaluations made since: no verdict is possible.
    """
    if during_check:
        what = change or "wrote into its arrays, or replaced, deleted or added tree entries"
        return Hazard(
            "mutation",
            f"the {role} function started changing its input during the check ({what}), so "
            "the evaluations since then saw other parameters: no verdict is possible "
            "(gradcheck restored the parameters; the caller's were never touched)",
            blocking=True,
        )
    what = change or (
        "writes into its input (its arrays, or the entries of the parameter tree it is given)"
    )
    return Hazard(
        "mutation",
        f"the {role} function {what}: the gradient values were checked on fresh copies, but "
        f"a training loop that calls this {role} gets its parameters changed behind its back",
        fails_check=True,
    )


def loss_drift_hazard(objective: Objective, when: str) -> Hazard | None:
    """A blocking hazard when the loss, at the original parameters, no longer gives ``value0``.

    ``when`` says at which point of the check the loss was evaluated again
    ("on its second call", "after the first pass", "at the end of the check").
    """
    again = objective.value_again(f"re-evaluating the loss {when} to test that it is deterministic")
    if again == objective.value0:
        return None
    return Hazard(
        "nondeterministic",
        f"the loss at the same parameters gave {float(objective.value0)!r} on its first call and "
        f"{float(again)!r} {when}: randomness (dropout, noise, sampling) or state left on? "
        "Finite differences of a function that changes between calls are meaningless, so no "
        "verdict is possible",
        blocking=True,
    )


def gradient_drift_hazard(
    grad: Callable[[Any], Any], space: ParameterSpace, analytic: NDArray[Any], when: str
) -> Hazard | None:
    """A blocking hazard when the gradient at the original parameters is no longer ``analytic``."""
    analytic_again = call_gradient(
        grad, space, f"re-evaluating the gradient {when} to test that it is deterministic"
    )
    space.restore()
    # The NaN-aware comparison is ~10x slower; it is only needed when the plain one fails.
    same = np.array_equal(analytic, analytic_again) or np.array_equal(
        analytic, analytic_again, equal_nan=True
    )
    if same:
        return None
    diff = np.abs(analytic.astype(np.float64) - analytic_again.astype(np.float64))
    k = int(np.nanargmax(diff))
    leaf, where = space.leaf_index(k)
    return Hazard(
        "nondeterministic",
        f"the gradient at the same parameters differs between its first call and {when} "
        f"(by {float(diff[k]):.3g} at {leaf.name}{format_index(where)}): randomness or state "
        "left on in the backward pass?",
        parameter=leaf.name,
        blocking=True,
    )


def determinism_hazards(
    objective: Objective,
    grad: Callable[[Any], Any],
    space: ParameterSpace,
    analytic: NDArray[Any],
    *,
    when: str = "on its second call",
) -> list[Hazard]:
    """Blocking hazards when the loss or the gradient, called again, gives another value."""
    found = (
        loss_drift_hazard(objective, when),
        gradient_drift_hazard(grad, space, analytic, when),
    )
    return [hazard for hazard in found if hazard is not None]


def below_zero_loss_quantum(
    state: Comparison, objective: Objective, indices: NDArray[np.intp]
) -> NDArray[np.bool_]:
    """Elements whose gradient a loss that is exactly 0.0 cannot show.

    A loss that evaluates to exactly zero everywhere near ``x`` (measured:
    the noise probe saw identical values) carries no scale of its own.  Such
    a value is a difference of terms that cancelled exactly, like a softmax
    cross-entropy ``logsumexp(z) - z_y`` fit perfectly; terms scale with the
    parameters, so their quantum is about ``eps * T`` with
    ``T = ZERO_LOSS_TERMS * max(max|x|, 1)``.  A gradient ``g`` with
    ``|g| * max(|x_i|, 1) <= eps * T`` changes such a loss by less than that
    quantum even for a move as large as the parameter itself, so it cannot be
    checked from loss values at all.
    """
    x = np.abs(objective.x0.astype(np.float64))
    terms = ZERO_LOSS_TERMS * max(float(np.max(x, initial=0.0)), 1.0)
    predicted = np.abs(state.analytic[indices]) * np.maximum(x[indices], 1.0)
    return (state.reference[indices] == 0.0) & (predicted <= state.eps(indices) * terms)


def zero_loss_hazard(n_hidden: int) -> Hazard:
    """The ``unresolved`` hazard for ``n_hidden`` elements an exactly-zero loss cannot show."""
    return Hazard(
        "unresolved",
        "the loss is exactly 0.0 and constant near the parameters, so "
        f"{n_hidden} gradient element(s) too small to change it by one rounding quantum were "
        "not checked (e.g. a perfectly fit softmax, whose tiny gradients round away)",
    )


def cancellation_hazards(
    space: ParameterSpace, analytic: NDArray[np.float64], jitter: NDArray[np.float64] | None
) -> list[Hazard]:
    """One note per parameter whose gradient formula loses digits to cancellation.

    ``jitter`` is the analytic gradient's measured rounding noise
    (:func:`gradcheck.verdict.jitter.measure_gradient_jitter`), measured only when a
    comparison needed its room.  Where its median relative size over a parameter is
    ``r``, the formula keeps about ``-log10(r)`` digits of the dtype's ``-log10(eps)``;
    beyond ``DIGITS_LOST_NOTED`` lost, the check passed only thanks to that room and says
    so, with the usual cause (a saturated activation's derivative computed from its
    output), the cure (computing it from the pre-activation), and the other cause that
    looks the same (float32 arithmetic inside a float64 backward pass, which the jitter
    cannot tell from it: see the known limits).
    """
    if jitter is None:
        return []
    hazards = []
    for leaf in space.leaves:
        noise, values = jitter[leaf.slice], np.abs(analytic[leaf.slice])
        seen = (noise > 0) & (values > 0) & np.isfinite(values)
        if not seen.any():
            continue
        relative = float(np.median(noise[seen] / values[seen]))
        available = -np.log10(working_eps(leaf.dtype))
        kept = -np.log10(relative)
        if kept > available - DIGITS_LOST_NOTED:
            continue
        hazards.append(
            Hazard(
                "cancellation",
                f"{leaf.name}: the gradient keeps about {max(kept, 0):.0f} of "
                f"{leaf.dtype}'s {available:.0f} digits (its measured rounding noise is "
                f"~{relative:.1g} of its values; the tolerance allows for it). The usual "
                "cause: a derivative computed from a saturated activation's output, like "
                "a * (1 - a) or 1 - a**2, loses digits as a nears 1; from the pre-activation "
                "z it keeps them: sigmoid(z) * sigmoid(-z), 1 / cosh(z)**2. (Arithmetic in a "
                "narrower dtype inside the backward pass looks the same.)",
                parameter=leaf.name,
            )
        )
    return hazards


def precision_hazards(results: tuple[ParameterResult, ...]) -> list[Hazard]:
    """One note when parameters are narrower than float64: the accuracy the check can reach."""
    narrow, achievable = [], 0.0
    for result in results:
        dtype = np.dtype(result.dtype)
        if not np.issubdtype(dtype, np.floating) or np.finfo(dtype).eps <= np.finfo(np.float64).eps:
            continue
        narrow.append(result)
        mask = result.checked & np.isfinite(result.reference) & np.isfinite(result.tolerance)
        if result.kink_mask is not None:
            mask &= ~result.kink_mask  # the kink hazard states how far those are checked
        scale = float(np.max(np.abs(result.reference[mask]), initial=0.0))
        if scale > 0:
            achievable = max(achievable, float(np.max(result.tolerance[mask])) / scale)
    if not narrow:
        return []
    dtypes = sorted({r.dtype for r in narrow})
    eps = max(float(np.finfo(np.dtype(d)).eps) for d in dtypes)
    return [
        Hazard(
            "precision",
            f"{', '.join(r.name for r in narrow)} {'is' if len(narrow) == 1 else 'are'} "
            f"{'/'.join(dtypes)} (eps {eps:.2g}): checked at the precision that allows; errors "
            f"below ~{achievable:.2g} of a parameter's gradient scale cannot be resolved (a bug "
            "smaller than that passes)",
        )
    ]


def unresolved_parameter_hazards(
    results: tuple[ParameterResult, ...], *, decisive: bool = True
) -> list[Hazard]:
    """The parameters whose whole gradient lies within the check's tolerance of zero.

    For such a parameter every checked element has ``|analytic| <= tolerance`` and
    ``|reference| <= tolerance``: the check cannot tell its gradient from zero or from
    its negative, so a zeroed or sign-flipped gradient of it would pass as well.  Seen
    in float32 (a parameter whose gradients are 1e-5 of the largest, below what float32
    differences resolve) and with losses that take no complex input (gradients below
    ``eps**(2/3)`` of the largest).  Saying ``passed`` there would be a guess, so the
    hazard blocks the verdict (``inconclusive``) when nothing else failed and the check
    was ``decisive`` (it chose its references itself, ``method="auto"``, and had the
    complex step and Richardson to try); beside a failure, which is a verdict of its own,
    or under a reference the user chose, it is a note of what that reference could not
    resolve.  A parameter whose reference is exactly zero everywhere (an unused
    parameter, a dead unit, a gradient far below what finite differences show) is
    checked to be that small and is not listed, unless its tolerance is too coarse for
    that to mean anything (see :func:`_within_tolerance_of_zero`).  One hazard names
    them all.
    """
    scales = [np.abs(r.reference[r.checked & np.isfinite(r.reference)]) for r in results]
    largest = max((float(np.max(v)) for v in scales if v.size), default=0.0)
    unresolved = [result for result in results if _within_tolerance_of_zero(result, largest)]
    if not unresolved:
        return []
    names = ", ".join(result.name for result in unresolved)
    size = max(float(np.nanmax(np.abs(r.reference[r.checked]))) for r in unresolved)
    size = max(size, *(float(np.max(np.abs(r.analytic[r.checked]))) for r in unresolved))
    tolerance = max(float(np.nanmax(r.tolerance[r.checked])) for r in unresolved)
    narrow = any(np.finfo(np.dtype(r.dtype)).eps > np.finfo(np.float64).eps for r in unresolved)
    remedy = (
        "checking in float64 (parameters and data cast) resolves it"
        if narrow
        else "a loss that accepts complex input (the complex step) may resolve it"
    )
    one = len(unresolved) == 1
    return [
        Hazard(
            "unresolved",
            f"{names}: {'its' if one else 'their'} analytic and reference gradients (up to "
            f"{size:.3g}) lie within the check's tolerance (up to {tolerance:.3g}) of zero, so "
            f"a zeroed or sign-flipped gradient would pass too: not verified; {remedy}",
            parameter=unresolved[0].name if one else None,
            blocking=decisive and all(result.passed for result in results),
        )
    ]


def _within_tolerance_of_zero(result: ParameterResult, largest: float) -> bool:
    """Whether every checked element has ``|analytic|`` and ``|reference|`` within tolerance,
    and the reference saw something there or its tolerance means nothing.

    A reference that is exactly zero everywhere (the loss did not change at all) says
    ``|g| <= tolerance``, whatever the analytic values: that is a check when the tolerance
    is at the loss's rounding (an unused parameter; a gradient of 1e-12 beside others of
    order 1 under finite differences), so a correct gradient and a zeroed one both pass,
    checked to that absolute accuracy.  It is not when the tolerance is too coarse to mean
    anything beside the problem's ``largest`` gradient (above ``sqrt(eps)`` of it, as
    :func:`~gradcheck.verdict.tolerance.resolution_target`: a float32 loss scaled by 1e6
    that cannot see a parameter at all gives zero with a tolerance of tens).
    """
    mask = result.checked & np.isfinite(result.reference) & np.isfinite(result.tolerance)
    if result.kink_mask is not None:
        mask &= ~result.kink_mask
    if not mask.any():
        return False
    analytic = np.abs(result.analytic[mask].astype(np.float64))
    reference = np.abs(result.reference[mask])
    tolerance = result.tolerance[mask]
    size = np.maximum(analytic, reference)
    if not np.all(size <= tolerance):
        return False
    eps = float(np.finfo(np.dtype(result.dtype)).eps)
    coarse = largest > 0 and float(np.max(tolerance)) > np.sqrt(eps) * largest
    return bool(np.any(reference > 0)) or coarse


def deduplicated(hazards: list[Hazard]) -> list[Hazard]:
    """``hazards`` without repeats of the same kind and message, in order."""
    seen: set[tuple[str, str]] = set()
    out = []
    for hazard in hazards:
        key = (hazard.kind, hazard.message)
        if key not in seen:
            seen.add(key)
            out.append(hazard)
    return out
