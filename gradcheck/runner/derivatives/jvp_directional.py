"""Directional mode for JVPs: random tangents, a stated miss probability, bisection.

A full JVP check costs ``n`` JVP calls (one per input element).  At scale the JVP
is probed instead, as :mod:`gradcheck.runner.directional` probes a gradient, with
the whole output vector compared at once: for a Gaussian tangent ``v`` over one
input, ``jvp(v)`` against the directional derivative ``D_v f`` from ``f`` alone (one
complex-step evaluation, or a Richardson ladder along ``v``, each with its own error
estimate, per output element).

**Guarantee.**  Let ``E`` be the JVP's Jacobian error over that input.  Output
``j`` of the probe errs by ``(E v)_j ~ N(0, |E_j|**2)``, ``E_j`` the row ``j``; it
passes only when that lies within its slack ``tol_j + err_j``, so ``k`` probes miss a
row error ``|E_j| >= rho |J_j|`` with probability at most
``prod_k erf(slack_kj / (rho |J_j| sqrt 2))``
(:func:`~gradcheck.runner.directional.miss_probability`), with ``|J_j|`` estimated
as the root mean square of the probes' references (``E (J_j v)**2 = |J_j|**2``).
The result states the worst over every output and input.

This is an adapter, not a second verdict: :func:`~gradcheck.runner.directional.directional_check`
takes the analytic gradient as a vector, and a JVP gives only products ``J v``;
the constants (:data:`~gradcheck.runner.directional.PROBES_PER_PARAMETER`,
:data:`~gradcheck.runner.directional.PROBE_SIGMAS`, the miss target) and the
tolerance rule are the scalar directional mode's.

**Locating.**  When an input's probe fails, its elements are halved and each half
probed (bisection, as the scalar mode does), down to blocks of
:data:`~gradcheck.runner.directional.LEAF_BLOCK` elements, whose columns are then
compared entry by entry.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.problem.objective import Objective
from gradcheck.problem.space import Leaf
from gradcheck.references.complex_step import COMPLEX_ROUNDING, complex_step_capability
from gradcheck.references.noise import NoiseOnDemand
from gradcheck.results import (
    CheckResult,
    ElementValues,
    Hazard,
    JacobianEntry,
    ParameterResult,
    json_float,
)
from gradcheck.runner.derivatives.columns import (
    Columns,
    VectorFunction,
    complex_columns,
    output_noise,
    richardson_columns,
)
from gradcheck.runner.derivatives.problem import (
    AUTO_DIRECTIONAL_NOTE,
    DerivativeProblem,
    directional_by_default,
    unwrapped,
)
from gradcheck.runner.derivatives.projection import Projection
from gradcheck.runner.directional import (
    LEAF_BLOCK,
    MISS_TARGET,
    PROBE_SIGMAS,
    PROBES_PER_PARAMETER,
    REPORTED_RHOS,
    miss_probability,
)
from gradcheck.runner.evaluation import choose_mode
from gradcheck.verdict.hazards import mutation_hazard
from gradcheck.verdict.tolerance import ANALYTIC_ROUNDING, ESTIMATE_SAFETY, derived_tolerance

__all__ = ["jvp_at", "jvp_mode", "check_jvp_directional", "MAX_PROBES"]

#: Most bisection probes one check spends locating wrong input elements.
MAX_PROBES = 64
#: Wrong entries named from the located blocks.
MAX_ENTRIES = 6


def jvp_at(
    problem: DerivativeProblem,
    jvp: Callable[..., Any],
    role: str,
    tangent: NDArray[np.float64],
    tree: Any,
) -> NDArray[np.float64]:
    """``jvp(v, *inputs)`` for a flat tangent ``v``, as one flat output vector (validated)."""
    space = problem.space
    per_input = space.split(np.asarray(tangent, dtype=space.dtype))
    tangents = {}
    for leaf in space.leaves:
        tangents[leaf.name] = per_input[leaf.name].copy()
    packed = problem.inputs.pack(_regroup(problem, tangents))
    value = problem.inputs.call(jvp, role, f"calling {role}", tree, packed)
    return np.asarray(
        problem.outputs.flatten(value, f"{role}'s output tangent", role=role), dtype=np.float64
    )


def _regroup(problem: DerivativeProblem, by_leaf: dict[str, Any]) -> dict[str, Any]:
    """Per-leaf tangents as per-input values (a tree input gets a tree of tangents)."""
    grouped = {}
    for name in problem.inputs.differentiated_names:
        given = problem.inputs.tree[name]
        if isinstance(given, np.ndarray) or np.isscalar(given):
            grouped[name] = by_leaf[name]
        else:
            sub = problem.space.build([by_leaf[leaf.name] for leaf in problem.space.leaves])
            grouped[name] = sub[name]
    return grouped


def jvp_mode(
    problem: DerivativeProblem, jvp: Callable[..., Any], role: str = "jvp"
) -> tuple[str, str]:
    """``full`` (``n`` JVP calls) or ``directional``, and why, as the scalar check decides."""
    settings = problem.settings
    if settings.mode in ("full", "directional"):
        return settings.mode, f"mode {settings.mode} (requested)"
    if directional_by_default(settings, problem.space.size):
        return "directional", AUTO_DIRECTIONAL_NOTE.format(n=problem.space.size, kind="JVP")
    function = problem.function()
    started = time.perf_counter()
    with unwrapped():
        function(problem.space.x0, "timing f")
        seconds_f = time.perf_counter() - started
        started = time.perf_counter()
        jvp_at(problem, jvp, role, np.zeros(problem.space.size), problem.space.tree)
        seconds_jvp = time.perf_counter() - started
    problem.space.restore()
    mode, _, why = choose_mode(
        "auto",
        n_elements=problem.space.size,
        n_parameters=len(problem.space.leaves),
        elements=None,
        seconds_per_evaluation=max(seconds_f, 1e-9),
        # A central difference (2), its share of refinement (1), and the JVP call.
        evaluations_per_element=3.0 + seconds_jvp / max(seconds_f, 1e-9),
        budget=settings.budget,
        user_tolerance=settings.user_tolerance,
    )
    if mode == "sampled":  # atol/rtol are entrywise: they need the full check
        return "full", why.replace("mode sampled (auto)", "mode full (atol/rtol given)")
    return mode, why.replace("loss evaluations", f"evaluations of {problem.role} and {role}")


@dataclass
class _Probe:
    """One comparison of ``jvp(v)`` with ``D_v f`` over elements ``[start, stop)`` of a leaf."""

    leaf: Leaf
    start: int
    stop: int
    analytic: NDArray[np.float64]
    reference: NDArray[np.float64]
    error: NDArray[np.float64]
    norm_v: float
    n_evaluations: int
    level: int
    tolerance: NDArray[np.float64] | None = None

    @property
    def passed(self) -> bool:
        assert self.tolerance is not None
        with np.errstate(invalid="ignore"):
            return bool(np.all(np.abs(self.analytic - self.reference) <= self.tolerance))

    @property
    def ratio(self) -> float:
        """The largest gap relative to its tolerance (above 1 means failed)."""
        assert self.tolerance is not None
        j = self.worst
        gap = abs(float(self.analytic[j]) - float(self.reference[j]))
        return gap / float(self.tolerance[j]) if self.tolerance[j] > 0 else math.inf

    @property
    def worst(self) -> int:
        """The output element with the largest gap relative to its tolerance."""
        assert self.tolerance is not None
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.abs(self.analytic - self.reference) / self.tolerance
        return int(np.argmax(np.nan_to_num(ratio, nan=np.inf)))

    def to_dict(self, outputs: Any) -> dict[str, Any]:
        j = self.worst
        assert self.tolerance is not None
        return {
            "parameter": self.leaf.name,
            "elements": [self.start, self.stop],
            "level": self.level,
            "passed": self.passed,
            "worst_output": outputs.element_name(j),
            "analytic": json_float(self.analytic[j]),
            "reference": json_float(self.reference[j]),
            "error": json_float(self.error[j]),
            "tolerance": json_float(self.tolerance[j]),
            "n_evaluations": self.n_evaluations,
        }


@dataclass
class _Prober:
    """Draws and judges probes: ``jvp(v)`` against ``D_v f`` for Gaussian ``v`` over a block."""

    problem: DerivativeProblem
    jvp: Callable[..., Any]
    function: VectorFunction
    use_complex: bool
    sigma: Callable[[], NDArray[np.float64]]
    rng: np.random.Generator
    role: str = "jvp"
    scale: float = 0.0  # largest |J v| seen at the top level: the entries' scale, bounded
    jvp_calls: int = 0

    def reference(self, v: NDArray[np.float64]) -> Columns:
        scale = max(float(np.max(np.abs(self.function.x0), initial=0.0)), 1.0)
        scales = np.array([scale / max(float(np.max(np.abs(v))), 1e-300)])
        if self.use_complex:
            return complex_columns(self.function, [v], scales)
        return richardson_columns(self.function, [v], scales, self.sigma())

    def draw(self, leaf: Leaf, start: int, stop: int, level: int) -> _Probe:
        v = np.zeros(self.problem.space.size)
        v[leaf.offset + start : leaf.offset + stop] = self.rng.standard_normal(stop - start)
        analytic = jvp_at(self.problem, self.jvp, self.role, v, self.problem.space.tree)
        self.problem.space.restore()
        self.jvp_calls += 1
        found = self.reference(v)
        return _Probe(
            leaf,
            start,
            stop,
            analytic,
            found.derivative[:, 0],
            found.error[:, 0],
            float(np.linalg.norm(v)),
            found.n_evaluations,
            level,
        )

    def judge(self, probe: _Probe) -> _Probe:
        """The scalar directional mode's tolerance, output by output."""
        eps = self.function.eps
        room = ANALYTIC_ROUNDING * eps * self.scale * probe.norm_v
        if self.use_complex:
            error = probe.error + PROBE_SIGMAS * COMPLEX_ROUNDING * eps * self.scale * probe.norm_v
        else:  # rounding x0 + t v onto the inputs' grid moves f by ~ eps**(2/3) |J| |v|
            error = probe.error + np.cbrt(eps) ** 2 * self.scale * probe.norm_v
        probe.tolerance = ESTIMATE_SAFETY * (error + PROBE_SIGMAS * room)
        return probe


def _guarantee(probes: list[_Probe], outputs: int) -> tuple[float, dict[float, float]]:
    """The smallest row error ``rho |J_j|`` missed with probability <= MISS_TARGET, and more."""
    by_leaf: dict[str, list[_Probe]] = {}
    for p in probes:
        by_leaf.setdefault(p.leaf.name, []).append(p)
    groups = []
    for group in by_leaf.values():
        references = np.array([p.reference for p in group])
        slack = np.array([p.tolerance + p.error for p in group])  # type: ignore[operator]
        norms = np.sqrt(np.mean(references**2, axis=0))
        groups.append((slack, norms))

    def worst(rho: float) -> float:
        miss = 0.0
        for slack, norms in groups:
            for j in np.flatnonzero(norms > 0):
                miss = max(miss, miss_probability(slack[:, j], rho * float(norms[j])))
        return miss

    at = {rho: worst(rho) for rho in REPORTED_RHOS}
    if worst(1.0) > MISS_TARGET:
        return math.inf, at
    low, high = -16.0, 0.0  # log10 rho, bisected
    for _ in range(30):
        middle = (low + high) / 2
        low, high = (low, middle) if worst(10.0**middle) <= MISS_TARGET else (middle, high)
    return 10.0**high, at


def _use_complex(
    problem: DerivativeProblem, function: VectorFunction, rng: np.random.Generator
) -> tuple[bool, str]:
    """Whether the complex step can be trusted for ``f``: the scalar check's capability test.

    Its evaluations of ``f`` are counted in ``function``'s.
    """
    method = problem.settings.method
    if method not in ("auto", "complex"):
        return False, f"method {method}: Richardson extrapolation along each tangent"
    loss = Projection(
        problem.f, problem.inputs, problem.outputs, problem.cotangent, first=problem.at_point()
    )
    objective = Objective(loss, problem.space)
    noise = NoiseOnDemand(objective, rng)
    with unwrapped():
        capability = complex_step_capability(
            objective,
            sigma=noise.lower_bound,
            measure_sigma=lambda: noise.sigma,
            rng=rng,
        )
    problem.space.restore()
    function.n_evaluations += objective.n_evaluations
    if not capability.usable and method == "complex":
        from gradcheck.errors import InvalidParameterError

        raise InvalidParameterError(f"method: 'complex' cannot be used: {capability.reason}")
    if capability.usable:
        return True, "complex step along each tangent"
    return False, f"complex step not used: {capability.reason}"


def _hazards(problem: DerivativeProblem, prober: _Prober) -> list[Hazard]:
    """``f`` and ``jvp`` called again at the same point: writing into inputs, randomness."""
    space = problem.space
    hazards = []
    context = "evaluating f again at the given inputs to test that it is deterministic"
    with unwrapped():
        again = problem.outputs.flatten(
            problem.inputs.call(problem.f, problem.role, context, space.tree), context
        )
    if space.restore():
        hazards.append(mutation_hazard(problem.role))
    if not np.array_equal(again, problem.outputs.value0):
        hazards.append(
            Hazard(
                "nondeterministic",
                f"{problem.role} at the same inputs gave another value on its second call: "
                "randomness (dropout, noise) or state left on? No verdict is possible",
                blocking=True,
            )
        )
    v = prober.rng.standard_normal(space.size)
    with unwrapped():
        first = jvp_at(problem, prober.jvp, prober.role, v, space.tree)
        second = jvp_at(problem, prober.jvp, prober.role, v, space.tree)
    prober.jvp_calls += 2
    if space.restore():
        hazards.append(mutation_hazard(prober.role))
    if not np.array_equal(first, second):
        hazards.append(
            Hazard(
                "nondeterministic",
                f"{prober.role} gave another output tangent for the same tangent on its second "
                "call: randomness or state left on? No verdict is possible",
                blocking=True,
            )
        )
    return hazards


def _bisect(prober: _Prober, failing: list[_Probe]) -> list[_Probe]:
    """Halves of the failing inputs' elements, probed down to blocks of LEAF_BLOCK elements."""
    located: list[_Probe] = []
    stack = [(p.leaf, p.start, p.stop) for p in {p.leaf.name: p for p in failing}.values()]
    spent = 0
    while stack and spent < MAX_PROBES:
        leaf, start, stop = stack.pop()
        if stop - start <= LEAF_BLOCK:
            located.append(_Probe(leaf, start, stop, *(np.empty(0),) * 3, 0.0, 0, -1))
            continue
        middle = (start + stop) // 2
        for low, high in ((middle, stop), (start, middle)):
            probe = prober.judge(prober.draw(leaf, low, high, level=1))
            spent += 1
            if not probe.passed:
                stack.append((leaf, low, high))
    return located


def _entries(
    prober: _Prober, blocks: list[_Probe], *, complex_ok: bool
) -> tuple[JacobianEntry, ...]:
    """The located blocks' columns, ``jvp(e_i)`` against ``J[:, i]``, entry by entry."""
    problem, function = prober.problem, prober.function
    found: list[JacobianEntry] = []
    for block in blocks:
        indices = np.arange(block.leaf.offset + block.start, block.leaf.offset + block.stop)
        directions = []
        for i in indices:
            direction = np.zeros(problem.space.size)
            direction[i] = 1.0
            directions.append(direction)
        scales = function.scales(indices)
        if complex_ok:
            columns = complex_columns(function, directions, scales)
        else:
            columns = richardson_columns(function, directions, scales, prober.sigma())
        for k, (i, direction) in enumerate(zip(indices, directions, strict=True)):
            analytic = jvp_at(problem, prober.jvp, prober.role, direction, problem.space.tree)
            problem.space.restore()
            tolerance = derived_tolerance(
                columns.error[:, k], function.eps, prober.scale, global_scale=prober.scale
            )
            gap = np.abs(analytic - columns.derivative[:, k])
            for j in np.flatnonzero(~(gap <= tolerance)):
                found.append(
                    JacobianEntry(
                        problem.outputs.element_name(int(j)),
                        problem.element_name(int(i)),
                        float(analytic[j]),
                        float(columns.derivative[j, k]),
                        float(tolerance[j]),
                        columns.method,
                    )
                )
                if len(found) >= MAX_ENTRIES:
                    return tuple(found)
    return tuple(found)


def _unchecked(problem: DerivativeProblem, method: str, source: str) -> tuple[ParameterResult, ...]:
    """Per input: no element compared on its own (the probes compared products)."""
    space = problem.space
    starts = np.array([leaf.offset for leaf in space.leaves] + [space.size], dtype=np.intp)
    none = np.empty(0)
    values = ElementValues(
        np.full(space.size, np.nan),  # no analytic element was asked for either
        starts,
        np.empty(0, dtype=np.intp),
        none,
        none,
        none,
        none,
        np.empty(0, dtype=bool),
        np.empty(0, dtype=bool),
    )
    return tuple(
        ParameterResult(
            name=leaf.name,
            values=values,
            position=k,
            shape=tuple(leaf.shape),
            method=method,
            tolerance_source=source,
            n_evaluations=0,
            dtype=str(leaf.dtype),
        )
        for k, leaf in enumerate(space.leaves)
    )


def check_jvp_directional(
    problem: DerivativeProblem,
    jvp: Callable[..., Any],
    why: str,
    *,
    role: str = "jvp",
    kind: str = "jvp",
    extra: Callable[[_Prober], list[Hazard]] | None = None,
) -> CheckResult:
    """Probe ``jvp`` along random tangents; locate wrong input elements when probes disagree."""
    started = time.perf_counter()
    rng = problem.rng if isinstance(problem.rng, np.random.Generator) else None
    rng = rng or np.random.default_rng(problem.seed)
    function = problem.function()
    complex_ok, how = _use_complex(problem, function, rng)
    sigma: list[NDArray[np.float64]] = []

    def measured_sigma() -> NDArray[np.float64]:
        if not sigma:
            sigma.append(output_noise(function, rng)[0])
        return sigma[0]

    prober = _Prober(problem, jvp, function, complex_ok, measured_sigma, rng, role)
    hazards = _hazards(problem, prober)
    if any(h.blocking for h in hazards):
        return _assemble(problem, prober, [], (), hazards, [why, how], started, kind)
    if extra is not None:
        with unwrapped():
            hazards += extra(prober)
    per = PROBES_PER_PARAMETER["complex" if complex_ok else "richardson"]
    with unwrapped():
        top = [
            prober.draw(leaf, 0, leaf.size, level=0)
            for leaf in problem.space.leaves
            for _ in range(per)
            if leaf.size
        ]
        prober.scale = max(
            (float(np.max(np.abs(np.concatenate([p.reference, p.analytic])))) for p in top),
            default=0.0,
        )
        top = [prober.judge(p) for p in top]
        failing = [p for p in top if not p.passed]
        entries: tuple[JacobianEntry, ...] = ()
        probes = list(top)
        if failing:
            blocks = _bisect(prober, failing)
            entries = _entries(prober, blocks, complex_ok=complex_ok)
    return _assemble(problem, prober, probes, entries, hazards, [why, how], started, kind)


def _assemble(
    problem: DerivativeProblem,
    prober: _Prober,
    top: list[_Probe],
    entries: tuple[JacobianEntry, ...],
    hazards: list[Hazard],
    notes: list[str],
    started: float,
    kind: str,
) -> CheckResult:
    method = "complex" if prober.use_complex else "richardson"
    passed = bool(top) and all(p.passed for p in top)
    rho, at = _guarantee(top, problem.outputs.size) if passed else (math.inf, {})
    head = (
        f"{len(top)} tangent probe(s) over {len(problem.space.leaves)} input(s) ({method}, "
        f"{prober.function.n_evaluations} evaluations of {problem.role}, {prober.jvp_calls} "
        f"{prober.role} calls)"
    )
    if passed:
        summary = (
            f"{head}: all agree; a wrong row E_j of the Jacobian {prober.role} implies, with "
            f"|E_j| >= {rho:.2g} |J_j| for any output element j, would be missed with "
            "probability <= "
            f"{MISS_TARGET:.0e}"
        )
    elif top:
        worst = max((p for p in top if not p.passed), key=lambda p: p.ratio)
        j = worst.worst
        summary = (
            f"{head}: {sum(not p.passed for p in top)} disagree, worst in {worst.leaf.name} at "
            f"{problem.outputs.element_name(j)}: {prober.role} {worst.analytic[j]:.6g}, reference "
            f"{worst.reference[j]:.6g}"
        )
    else:
        summary = f"{head}: no probe made (a hazard withholds the verdict)"
    directional = {
        "passed": passed or not top,
        "summary": summary,
        "method": method,
        "n_probes": len(top),
        "probes": [p.to_dict(problem.outputs) for p in top],
        "guarantee": {
            "rho": json_float(rho),
            "at": {f"{r:.0e}": json_float(p) for r, p in at.items()},
        },
    }
    source = "directional: 2 x (reference error + 5 sigma of the JVP's rounding over the tangent)"
    return problem.finish(
        CheckResult(
            parameters=_unchecked(problem, method, source),
            hazards=tuple(hazards),
            mode="directional",
            method=problem.settings.method,
            n_evaluations=prober.function.n_evaluations,
            n_grad_evaluations=prober.jvp_calls,
            seed=problem.seed,
            notes=tuple(notes),
            directional=directional,
            seconds=time.perf_counter() - started,
        ),
        kind,
        entries=entries,
    )
