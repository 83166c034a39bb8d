"""The phases of :func:`gradcheck.check`, in the order it runs them.

1. :func:`prepare`: validate the inputs, copy the parameters, make the first
   calls of the loss and the gradient, and watch them for mutation and randomness;
2. :func:`plan`: test whether the complex step can be trusted, choose the mode
   (full, sampled or directional) and the elements to compare;
3. :func:`first_pass`: one reference for every element (the complex step, else a
   central difference), judged by the derived tolerance;
4. :func:`second_reference`: Richardson extrapolation for every element the first
   pass failed or could not resolve; it decides;
5. :func:`accept_kinks`: elements still failing at a kink (or hidden below an
   exactly-zero loss's quantum) are reported as hazards, not bugs;
6. :func:`watch_the_functions`: the original point evaluated again along the way and at
   the end: a loss or gradient that changed, or wrote into its input, withholds the verdict;
7. :func:`assemble`: the per-parameter results, the hazards and the diagnosis.

Each phase reads and updates one :class:`CheckRun` (what the check knows) and one
:class:`~gradcheck.verdict.comparison.Comparison` (the per-element verdict state).
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.diagnosis import FailedCheck, diagnose, validate_layer_inputs
from gradcheck.errors import InvalidParameterError
from gradcheck.options import CheckOptions
from gradcheck.problem.calls import call_gradient, require_callable
from gradcheck.problem.space import ParameterSpace
from gradcheck.references.base import Estimate, concatenate
from gradcheck.references.complex_step import (
    COMPLEX_ROUNDING,
    complex_step,
    complex_step_capability,
    complex_step_rounding,
)
from gradcheck.references.finite_difference import (
    ROUNDOFF_SIGMAS,
    central_difference,
    richardson,
    with_truncation,
)
from gradcheck.references.noise import NoiseOnDemand
from gradcheck.references.registry import REFERENCES
from gradcheck.results import CheckResult, Diagnosis, Hazard, ParameterResult
from gradcheck.runner.derivatives.binding import bind_arguments
from gradcheck.runner.directional import DirectionalOutcome, directional_check
from gradcheck.runner.evaluation import BatchedObjective, choose_mode
from gradcheck.verdict.comparison import (
    Comparison,
    EvaluationCost,
    dense_vector,
    method_code,
    subset,
)
from gradcheck.verdict.hazards import (
    below_zero_loss_quantum,
    cancellation_hazards,
    deduplicated,
    determinism_hazards,
    loss_drift_hazard,
    mutation_hazard,
    on_copies,
    precision_hazards,
    unresolved_parameter_hazards,
    zero_loss_hazard,
)
from gradcheck.verdict.jitter import JITTER_CAP, JITTER_GRADIENT_CALLS, GradientJitter
from gradcheck.verdict.kinks import accepted_kinks, kink_hazards
from gradcheck.verdict.tolerance import ANALYTIC_ROUNDING, ESTIMATE_SAFETY, JITTER_FACTOR

__all__ = [
    "CheckRun",
    "CheckPlan",
    "DEFAULT_SEED",
    "as_generator",
    "prepare",
    "plan",
    "first_pass",
    "second_reference",
    "accept_kinks",
    "watch_the_functions",
    "assemble",
]

#: Evaluations per element a full check is costed at when the loss has no complex step:
#: a central difference (two) and, for some elements, more.
REAL_EVALUATIONS_PER_ELEMENT = 3.0
#: A check that mode="auto" planned to fit its budget is re-planned when, at its measured
#: pace, it would take more than this many times the budget.
BUDGET_OVERRUN = 2.0
#: Elements in the first chunk of such a check's first pass; chunks double after it, the
#: pace measured after each.
FIRST_CHUNK = 32
#: A check compares few elements (directional, sampled) when fewer than one in this many:
#: per-element state is then kept for those elements only.
SPARSE_STATE_RATIO = 8


#: The seed of a check given ``rng=None``: the same call gives the same verdict, every run
#: (as torch's and jax's checkers do); pass another seed, or a Generator, to vary the draws.
DEFAULT_SEED = 0


def as_generator(rng: Any) -> tuple[np.random.Generator, int | None]:
    """``rng`` as a Generator, and the seed to report (None when a Generator was passed)."""
    if isinstance(rng, np.random.Generator):
        return rng, None
    seed = DEFAULT_SEED if rng is None else int(rng)
    return np.random.default_rng(seed), seed


@dataclass
class CheckRun:
    """What one check knows: the problem, the user's functions, and what it found so far."""

    options: CheckOptions
    space: ParameterSpace
    objective: BatchedObjective
    grad: Callable[[Any], Any]
    analytic: NDArray[Any]
    generator: np.random.Generator
    seed: int | None
    layer_inputs: dict[str, NDArray[np.float64]] | None
    jitter: GradientJitter
    noise: NoiseOnDemand
    cost: EvaluationCost
    started: float
    hazards: list[Hazard] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)


@dataclass
class CheckPlan:
    """What the check compares, and with which first reference."""

    mode: str
    indices: NDArray[np.intp]
    complex_ok: bool
    directional: DirectionalOutcome | None
    watched: bool = False  # chosen by mode="auto" to fit the budget: re-planned if it won't


def prepare(
    loss: Callable[..., Any], grad: Callable[..., Any] | bool, params: Any, options: CheckOptions
) -> CheckRun:
    """Phase 1: validate, copy, call the loss and the gradient once, watch them.

    ``options.args`` are bound here (``loss(params, *args)``), and ``grad=True`` splits
    a value-and-gradient ``loss`` (:mod:`gradcheck.runner.derivatives.binding`).
    """
    started = time.perf_counter()
    loss, grad = bind_arguments(loss, grad, options.args)
    require_callable(loss, "loss", "loss(params) -> float")
    require_callable(grad, "grad", "grad(params)")
    generator, seed = as_generator(options.rng)
    space = ParameterSpace(params)
    layer_inputs = validate_layer_inputs(options.layer_inputs, space)
    hazards: list[Hazard] = []

    def objective_of(function: Callable[[Any], Any]) -> BatchedObjective:
        return BatchedObjective(
            function,
            space,
            vectorized=options.vectorized,
            executor=options.executor,
            progress=options.progress,
        )

    objective = objective_of(loss)
    if space.restore():
        hazards.append(mutation_hazard("loss", change=space.last_change))
        objective = objective_of(on_copies(loss))
    began = time.perf_counter()
    analytic = call_gradient(grad, space, "evaluating the gradient at the given parameters")
    grad_seconds = time.perf_counter() - began
    if space.restore():
        hazards.append(mutation_hazard("gradient", change=space.last_change))
        grad = on_copies(grad)
    hazards += determinism_hazards(objective, grad, space, analytic)
    # The user's atol/rtol replace the derived tolerance, which alone uses the jitter.
    jitter = GradientJitter(
        grad, space, analytic, generator.spawn(1)[0], enabled=not options.user_tolerance
    )
    jitter.seconds_per_call = grad_seconds
    # Measured only if a finite difference needs it (a complex-step check never does).
    noise = NoiseOnDemand(objective, generator.spawn(1)[0])
    run = CheckRun(
        options, space, objective, grad, analytic, generator, seed, layer_inputs,
        jitter, noise, EvaluationCost(space), started, hazards,
    )  # fmt: skip
    if options.mode == "auto":  # (the budget plans auto mode; a mode asked for runs whole)
        jitter.affordable = lambda seconds: not _past_budget(run, seconds=seconds)
    return run


def plan(run: CheckRun) -> CheckPlan:
    """Phase 2: can the complex step be trusted; which mode; which elements to compare."""
    options, space = run.options, run.space
    capability, line = None, None
    if options.method in ("auto", "complex"):
        # The capability test's random line doubles as the first probe directions.
        line = run.generator.standard_normal(space.size)
        capability = complex_step_capability(
            run.objective,
            sigma=run.noise.lower_bound,
            measure_sigma=lambda: run.noise.sigma,
            rng=run.generator,
            direction=line,
        )
        if not capability.usable:
            if options.method == "complex":
                raise InvalidParameterError(
                    f"method: 'complex' cannot be used: {capability.reason}"
                )
            run.notes.append(f"complex step not used: {capability.reason}")
    complex_ok = bool(capability and capability.usable)
    objective = run.objective
    chosen, sample, why = choose_mode(
        options.mode,
        n_elements=space.size,
        n_parameters=len(space.leaves),
        elements=options.elements,
        seconds_per_evaluation=objective.seconds_per_evaluation / objective.parallelism,
        evaluations_per_element=(
            objective.complex_cost if complex_ok else REAL_EVALUATIONS_PER_ELEMENT
        ),
        budget=options.budget,
        user_tolerance=options.user_tolerance,
    )
    run.notes.append(why)
    if chosen != "directional":
        indices = _choose_indices(space, sample, run.generator)
        watched = options.mode == "auto" and chosen == "full"
        return CheckPlan(chosen, indices, complex_ok, None, watched)
    return _directional_plan(run, complex_ok, line)


def _directional_plan(
    run: CheckRun, complex_ok: bool, line: NDArray[np.float64] | None
) -> CheckPlan:
    """Probe random directions; the elements to compare are what the bisection found."""
    outcome = directional_check(
        run.objective,
        run.analytic,
        sigma=lambda: run.noise.sigma,
        rng=run.generator,
        measure_jitter=run.jitter.measure,
        use_complex=complex_ok and run.options.method in ("auto", "complex"),
        initial=line,
        out_of_time=(lambda more: _past_budget(run, more)) if run.options.mode == "auto" else None,
        # A loss may say how its probes are grouped and illustrated (a derivative check's does).
        probing=getattr(run.objective.loss, "probing", None),
    )
    if outcome.unreached:
        names = ", ".join(repr(name) for name in outcome.unreached[:3])
        more = len(outcome.unreached) - 3
        run.hazards.append(
            Hazard(
                "budget",
                f"the directional probes that fit in twice the budget of {run.options.budget} "
                f"did not reach or resolve {names}{f' and {more} more' if more > 0 else ''}: "
                f"no verdict for {'them' if len(outcome.unreached) > 1 else 'it'} "
                "(raise budget=)",
                blocking=True,
            )
        )
    return CheckPlan("directional", outcome.suspects, complex_ok, outcome)


def _past_budget(run: CheckRun, upcoming: int = 0, *, seconds: float = 0.0) -> bool:
    """Whether ``upcoming`` more loss evaluations, at the measured pace, and ``seconds`` of
    other work would take the check past ``BUDGET_OVERRUN`` times its budget (a budget in
    evaluations counts those seconds at the loss's pace)."""
    budget = run.options.budget
    pace = run.objective.seconds_per_evaluation / run.objective.parallelism
    if budget.evaluations is not None:
        extra = seconds / pace if pace > 0 else 0.0
        return run.objective.n_evaluations + upcoming + extra > BUDGET_OVERRUN * budget.evaluations
    assert budget.seconds is not None
    spent = time.perf_counter() - run.started
    return spent + upcoming * pace + seconds > BUDGET_OVERRUN * budget.seconds


def _choose_indices(
    space: ParameterSpace, elements: int | None, rng: np.random.Generator
) -> NDArray[np.intp]:
    """All flat indices, or ``elements`` random ones of each parameter."""
    if elements is None:
        return np.arange(space.size)
    chosen = []
    for leaf in space.leaves:
        if leaf.size <= elements:
            chosen.append(np.arange(leaf.offset, leaf.offset + leaf.size))
        else:
            local = rng.choice(leaf.size, size=elements, replace=False)
            chosen.append(leaf.offset + np.sort(local))
    return np.concatenate(chosen).astype(np.intp)


def _first_reference(run: CheckRun, plan: CheckPlan, indices: NDArray[np.intp]) -> Estimate:
    method = run.options.method
    if method in ("auto", "complex") and plan.complex_ok:
        return complex_step(run.objective, indices)
    if method == "auto":
        # Roundoff-only first pass: the second reference estimates truncation where it matters.
        return central_difference(run.objective, indices, sigma=run.noise.sigma)
    return REFERENCES[method](run.objective, indices, run.noise.sigma)


def _over_budget(run: CheckRun, done: int, total: int, since: float, spent: int) -> str | None:
    """Why the check would overrun its budget at its measured pace, or None if it won't."""
    budget = run.options.budget
    if budget.evaluations is not None:
        projected = run.objective.n_evaluations + spent / done * (total - done)
        if projected > BUDGET_OVERRUN * budget.evaluations:
            return f"~{projected:,.0f} loss evaluations projected"
        return None
    now = time.perf_counter()
    projected_s = now - run.started + (now - since) / done * (total - done)
    assert budget.seconds is not None
    if projected_s > BUDGET_OVERRUN * budget.seconds:
        pace = 1e3 * (now - since) / max(spent, 1)
        return f"~{projected_s:.3g} s projected at {pace:.3g} ms per evaluation"
    return None


def _growing_chunks(indices: NDArray[np.intp]) -> list[NDArray[np.intp]]:
    """``indices`` cut into chunks that double from ``FIRST_CHUNK`` elements: the pace is
    known early, and a passing check spends only a few chunks' worth of overhead."""
    bounds, size = [0], FIRST_CHUNK
    while bounds[-1] < len(indices):
        bounds.append(min(bounds[-1] + size, len(indices)))
        size *= 2
    return [indices[a:b] for a, b in zip(bounds[:-1], bounds[1:], strict=True)]


def _first_estimate(run: CheckRun, plan: CheckPlan) -> Estimate | None:
    """The first reference at every element; None when a watched plan would overrun."""
    if not plan.watched:
        return _first_reference(run, plan, plan.indices)
    parts, done, since = [], 0, time.perf_counter()
    before = run.objective.n_evaluations
    for chunk in _growing_chunks(plan.indices):
        parts.append(_first_reference(run, plan, chunk))
        done += len(chunk)
        spent = run.objective.n_evaluations - before
        why = (
            _over_budget(run, done, len(plan.indices), since, spent)
            if done < len(plan.indices)
            else None
        )
        if why:
            run.notes.append(
                f"re-planned after {done:,} of {len(plan.indices):,} elements: a full check would "
                f"overrun its budget of {run.options.budget} ({why}); directional instead"
            )
            return None
    return concatenate(parts)


def first_pass(run: CheckRun, plan: CheckPlan) -> tuple[Comparison, Estimate, CheckPlan]:
    """Phase 3: one reference for every element compared, judged by the derived tolerance.

    A full check that ``mode="auto"`` planned to fit its budget runs in chunks and is
    re-planned as a directional check when, at its measured pace, it would take more
    than ``BUDGET_OVERRUN`` times the budget (a loss that became slower, a budget in
    evaluations that the first estimate misjudged).

    Returns the comparison state, the first estimate (the second reference reuses a
    central first pass as its first rung) and the plan that ran.
    """
    first_estimate = _first_estimate(run, plan)
    if first_estimate is None:
        plan = _directional_plan(run, plan.complex_ok, None)
        first_estimate = _first_reference(run, plan, plan.indices)
    options, indices = run.options, plan.indices
    # Few elements to compare (directional, sampled): per-element state for those only.
    sparse = SPARSE_STATE_RATIO * len(indices) < run.space.size
    state = Comparison(run.space, run.analytic, run.jitter.values, sparse=sparse)
    first = first_estimate
    state.record(first)
    run.cost.spend(indices, first.n_evaluations)
    state.judge(options.atol, options.rtol)
    # The jitter only widens the tolerance: measured only once something fails without it.
    if run.jitter.values is None and state.failing(indices).any():
        if run.jitter.measure() is not None:
            state.gradient_jitter = run.jitter.values
            state.judge(options.atol, options.rtol)
    if first.method == "complex" and plan.mode != "directional":
        _measure_complex_rounding(run, plan, state, first)
    if options.method == "central":
        doubtful = state.failing(indices)
        if doubtful.any():
            widened = with_truncation(run.objective, subset(first, doubtful), sigma=run.noise.sigma)
            run.cost.spend(widened.indices, widened.n_evaluations)
            state.record(widened)
            state.judge(options.atol, options.rtol)
    return state, first, plan


def _measure_complex_rounding(
    run: CheckRun, plan: CheckPlan, state: Comparison, first: Estimate
) -> None:
    """Measure the complex step's rounding where its bound decides the verdict.

    The first pass bounds the complex step's rounding by ``COMPLEX_ROUNDING * eps`` times
    the problem's largest derivative.  That bound can be too coarse: beside gradients of
    order 1 it can exceed a whole parameter's gradient (1e-18 in the first layer of a
    saturated network), so that a zeroed or sign-flipped gradient of it would pass.  And
    it can be too fine: a loss that is a small difference of huge terms rounds its
    imaginary part at the terms' size, not the derivative's.  So the elements that fail,
    and those whose tolerance is too coarse to resolve them (:meth:`Comparison.unresolved`)
    *because of that bound*, get their rounding measured at three more steps
    (:func:`complex_step_rounding`).  (Below float64, elements that still fail are then
    decided by Richardson, which sees what the loss sees: see :func:`second_reference`.)
    """
    if run.options.user_tolerance:
        return
    indices = plan.indices
    error = state.error[indices]
    room = state.tolerance[indices] / ESTIMATE_SAFETY - error  # the tolerance's other terms
    pick = (state.failing(indices) | (state.unresolved(indices) & (error > room))) & (
        state.scale(indices) > 0
    )
    if not pick.any():
        return
    measured = complex_step_rounding(run.objective, subset(first, pick))
    run.cost.spend(measured.indices, measured.n_evaluations)
    state.record(measured)
    state.judge()


def second_reference(run: CheckRun, plan: CheckPlan, state: Comparison, first: Estimate) -> None:
    """Phase 4: Richardson extrapolation decides the elements the first pass left in doubt.

    Richardson over a ladder of larger steps is a second, real-arithmetic reference
    for every element the first pass failed and, after a central first pass, for
    every element whose tolerance was too coarse to mean anything (saturated
    networks).  After a complex-step failure the two references are compared first:
    when they agree within Richardson's error the complex step's extra digits decide
    (in float64); when they disagree the loss is not complex-analytic at that element
    and Richardson decides.
    """
    options, indices = run.options, plan.indices
    if options.user_tolerance or options.method not in ("auto", "complex"):
        return
    doubtful = state.failing(indices)
    unresolved = np.zeros_like(doubtful)
    # A directional check's verdict is its probes'; its passing samples only illustrate it,
    # so only the elements that fail get the second reference.
    if options.method == "auto" and first.method == "central" and plan.mode != "directional":
        unresolved = state.unresolved(indices) & ~doubtful
    pick = doubtful | unresolved
    if not pick.any():
        return
    again = indices[pick]
    base = None
    if first.method == "central":
        base = Estimate(
            again, first.derivative[pick], first.error[pick], first.step[pick], 0, "central"
        )
    refined = richardson(run.objective, again, sigma=run.noise.sigma, first=base)
    run.cost.spend(again, refined.n_evaluations)
    if first.method == "complex":
        disagree = np.abs(refined.derivative - state.reference[again]) > state.derived(
            again, refined.error
        )
        # Below float64, the complex step resolves derivatives far finer than the loss
        # itself can show (a float32 sigmoid that rounds to 1 is flat in the loss, yet
        # its complex step still has the slope): there Richardson, which sees what the
        # loss sees, decides, as the precision hazard states.
        narrow = state.eps(again) > np.finfo(np.float64).eps
        state.record(subset(refined, disagree | narrow))
    else:
        fail_mask = doubtful[pick]
        state.record(subset(refined, fail_mask))
        state.record(subset(refined, ~fail_mask), only_if_better=True)
    state.judge(options.atol, options.rtol)


def accept_kinks(run: CheckRun, plan: CheckPlan, state: Comparison) -> None:
    """Phase 5: failures an exactly-zero loss cannot show, and kinks, become hazards."""
    options, indices, objective = run.options, plan.indices, run.objective
    if options.user_tolerance:
        return
    still = indices[state.failing(indices)]
    if len(still) and float(objective.value0) == 0.0 and run.noise.estimate.measured == 0.0:
        hidden = below_zero_loss_quantum(state, objective, still)
        if hidden.any():
            state.checked[still[hidden]] = False
            run.hazards.append(zero_loss_hazard(int(hidden.sum())))
            still = still[~hidden]
    # Elements that pass only because a difference straddling a kink inflated their error
    # estimate are probed too: the kink is reported, not silently absorbed.  A complex
    # step takes no real step, so its error estimate cannot have been inflated that way.
    inflatable = state.checked[indices] & (state.method[indices] != method_code("complex"))
    if plan.mode != "directional":  # (a directional check's passing samples only illustrate)
        still = np.union1d(still, indices[state.unresolved(indices) & inflatable])
    if not len(still) or options.method not in ("auto", "complex", "richardson"):
        return
    before = objective.n_evaluations
    accepted, reference, tolerance = accepted_kinks(objective, state, still, run.noise.sigma)
    run.cost.spend(still, objective.n_evaluations - before)
    if accepted.any():
        at = still[accepted]
        state.kink[at] = True
        # What the analytic value was checked against there, and how closely (the result
        # shows it; the precision hazard leaves these elements to the kink hazard).
        state.reference[at], state.tolerance[at] = reference[accepted], tolerance[accepted]
        run.hazards += kink_hazards(run.space, at)


def watch_the_functions(run: CheckRun, when: str) -> None:
    """Phases 3b and 6: are the loss and the gradient still the functions first called?

    A loss that writes into its input, or starts returning other values after a
    few calls, would make every later reference meaningless, so the loss is
    evaluated again at the original point along the way and at the end.  A change
    is a blocking hazard: the check is ``inconclusive``, never ``passed``.  (The
    gradient compared is the one of the first call, tested against the second in
    :func:`prepare`; later calls only measure its jitter.)
    """
    if any(h.blocking for h in run.hazards):
        return  # already withheld; more calls would say nothing new
    wrote = run.space.restore()
    drift = loss_drift_hazard(run.objective, when)
    # Evaluations at perturbed points put the working copy back unconditionally, so a
    # loss that writes is caught here, by the calls at the original point: whatever it
    # returns after writing is explained by the writing, not by randomness.
    if wrote or run.space.restore():
        change = run.space.last_change
        run.hazards.append(mutation_hazard("loss", during_check=True, change=change))
    elif drift is not None:
        run.hazards.append(drift)


def tolerance_source(run: CheckRun, complex_ok: bool) -> str:
    """How the tolerance was made, in words, from the constants that make it."""
    options = run.options
    if options.user_tolerance:
        return f"user: atol={options.atol or 0:g} + rtol={options.rtol or 0:g} * |reference|"
    first = (
        f"complex step ({COMPLEX_ROUNDING:g} eps |d|)"
        if complex_ok
        else f"central difference roundoff ({ROUNDOFF_SIGMAS:g} sigma/h)"
    )
    if run.jitter.measured:
        room = f"{JITTER_FACTOR:g} x measured gradient jitter"
    elif run.jitter.values is not None:
        room = (
            f"{JITTER_FACTOR:g} x the most the gradient's jitter could be ({JITTER_CAP:g} of "
            "the parameter's largest gradient; not measured: past the budget)"
        )
    else:
        room = "no jitter room (every comparison passed without it, so it was not measured)"
    noise = run.noise.estimate.source if run.noise.measured_yet else None
    return (
        f"{ESTIMATE_SAFETY:g} x ({first} or Richardson error estimate "
        f"+ {ANALYTIC_ROUNDING:g} eps x gradient scale "
        f"+ {room} + eps^(2/3) x largest gradient); "
        + (f"sigma from {noise}" if noise else "no finite difference, so no sigma")
    )


def unmeasured_jitter_hazard(run: CheckRun) -> Hazard:
    """Blocking: the gradient disagreed with the reference by more than its rounding allows,
    and agreed only within the most its jitter could be, which was not measured because that
    would have passed the budget (a disagreement beyond that bound is a failure anyway)."""
    seconds = run.jitter.skipped_seconds or 0.0
    return Hazard(
        "budget",
        f"the gradient disagrees with the reference by more than its rounding allows but "
        f"within the most its own rounding jitter could be ({JITTER_CAP:g} of each parameter's "
        f"largest gradient); measuring that jitter takes {JITTER_GRADIENT_CALLS} more gradient "
        f"calls (~{seconds:.3g} s), past twice the budget of {run.options.budget}: no verdict "
        "(raise budget=)",
        blocking=True,
    )


def parameter_results(
    space: ParameterSpace, state: Comparison, cost: NDArray[np.int64], source: str
) -> tuple[ParameterResult, ...]:
    """One :class:`~gradcheck.results.ParameterResult` per parameter, from the comparison.

    Every parameter's result reads one shared :class:`~gradcheck.results.ElementValues`,
    so the results cost a small object per parameter plus the compared elements' values.
    """
    values = state.element_values()
    methods = state.methods()
    dtype_names = {dtype: sys.intern(str(dtype)) for dtype in {leaf.dtype for leaf in space.leaves}}
    kinked = np.flatnonzero(state.kink)
    results = []
    for k, leaf in enumerate(space.leaves):
        kinks: tuple[tuple[int, ...], ...] = ()
        if len(kinked):
            at = kinked[(kinked >= leaf.offset) & (kinked < leaf.offset + leaf.size)]
            kinks = tuple(
                tuple(int(i) for i in np.unravel_index(j - leaf.offset, leaf.shape)) for j in at
            )
        results.append(
            ParameterResult(
                name=leaf.name,
                values=values,
                position=k,
                shape=tuple(leaf.shape),
                method=sys.intern(methods[k]),  # one string, not one per array
                tolerance_source=source,
                n_evaluations=int(cost[k]),
                kinks=kinks,
                dtype=dtype_names[leaf.dtype],
            )
        )
    return tuple(results)


def assemble(run: CheckRun, plan: CheckPlan, state: Comparison) -> CheckResult:
    """Phase 7: the result, with its hazards and, for a failure, the likely bug."""
    objective = run.objective
    objective.close()
    source = tolerance_source(run, plan.complex_ok)
    objective.release_complex()  # the diagnosis rebuilds it if it needs it
    results = parameter_results(run.space, state, run.cost.per_leaf, source)
    hazards = run.hazards + precision_hazards(results)
    measured = run.jitter.values if run.jitter.measured else None
    hazards += cancellation_hazards(run.space, state.analytic, measured)
    if plan.mode != "directional" and not run.options.user_tolerance:
        hazards += unresolved_parameter_hazards(results, decisive=run.options.method == "auto")
    disagree = plan.directional is not None and not plan.directional.passed
    if run.jitter.skipped_seconds is not None and not (
        disagree or any(not p.passed for p in results)
    ):
        hazards.append(unmeasured_jitter_hazard(run))  # passed only within the jitter's bound
    result = CheckResult(
        parameters=results,
        hazards=tuple(deduplicated(hazards)),
        mode=plan.mode,
        method=run.options.method,
        n_evaluations=objective.n_evaluations,
        n_grad_evaluations=2 + run.jitter.grad_calls,
        loss_value=float(objective.value0),
        noise=run.noise.sigma if run.noise.measured_yet else float("nan"),
        seed=run.seed,
        notes=tuple(run.notes),
        directional=None if plan.directional is None else plan.directional.to_dict(),
        seconds=time.perf_counter() - run.started,
    )
    if not run.options.diagnose or result.passed:
        return result
    if result.status == "inconclusive":
        blocking = "; ".join(h.message for h in result.hazards if h.blocking)
        withheld = "no bug is named: a hazard withholds the verdict"
        return replace(result, diagnosis=Diagnosis("inconclusive", withheld, blocking))
    if not result.failed_parameters and plan.directional is not None:
        # The probes disagree but no element was pinned down (the search ran out of budget,
        # or the error is marginal): the gradient is wrong somewhere; no pattern to name.
        where = "; ".join(plan.directional.located) or "no block narrowed it down"
        unlocated = "the directional probes disagree; no wrong element was located"
        return replace(result, diagnosis=Diagnosis("unlocated", unlocated, where))
    if result.status == "hazard":
        found = "; ".join(h.message for h in result.hazards if h.fails_check)
        right = "the gradient's values are right; the code around them is not"
        return replace(result, diagnosis=Diagnosis("hazard", right, found))
    evidence = FailedCheck(
        space=run.space,
        analytic=state.analytic,
        reference=dense_vector(state.reference, run.space.size),
        tolerance=dense_vector(state.tolerance, run.space.size),
        checked=state.checked,
        failed=np.concatenate([p.failed.ravel() for p in result.parameters]),
        objective=objective,
        grad=run.grad,
        layer_inputs=run.layer_inputs,
    )
    return replace(result, diagnosis=diagnose(evidence), n_evaluations=objective.n_evaluations)
