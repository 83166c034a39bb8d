"""Directional mode: random probes with a stated guarantee; bisection finds the wrong elements.

An elementwise check of ``N`` parameters costs ``N`` to ``2N`` loss evaluations.
A directional probe costs one (complex step) or a few (Richardson): draw
``v ~ N(0, I)`` over one parameter, estimate the directional derivative
``D_v f = g . v`` from the loss alone, with its error estimate, and compare it
with the analytic ``g_a . v``.

**Why several Gaussian probes, and what they guarantee.**  Let ``e = g_a - g``
be the analytic gradient's error over that parameter.  For Gaussian ``v``,
``e . v ~ N(0, |e|**2)`` whatever the shape of ``e``: a single wrong element and
an error spread over every element are seen alike.  A probe passes when
``|g_a . v - D_v f| <= tol``; since the reference is within its error
estimate ``err <= tol / ESTIMATE_SAFETY`` of ``g . v``, a pass implies
``|e . v| <= tol + err``, which for ``|e| >= rho |g|`` has probability at most
``erf((tol + err) / (rho |g| sqrt 2))``.  ``k`` independent probes all pass
with at most the product.  The result states that product as "a bug with
``|e_p| >= rho |g_p|`` in any parameter ``p`` would be missed with
probability ``<= P``", and the smallest ``rho`` with ``P <= 1e-6``.
(``tol`` depends on ``v`` only through norms like ``|v|`` that concentrate
sharply, which the bound treats as fixed.)

**Tolerance.**  ``tol = ESTIMATE_SAFETY * (err + PROBE_SIGMAS * |r o v| + 2 eps |D|)``:
``err`` is the reference's own error (Richardson's truncation and roundoff estimate
along ``v``; for the complex step ``PROBE_SIGMAS * |c o v|`` with ``c`` the
elementwise complex-step rounding ``8 eps max|g|``), ``r`` the elementwise room
for the analytic gradient's rounding and measured jitter (as in
:mod:`gradcheck.verdict.tolerance`).  Per-element errors that are independent of
``v`` add up in ``e . v`` like a Gaussian of variance ``sum r_i**2 v_i**2``;
``PROBE_SIGMAS = 5`` standard deviations make a false alarm a one in a
million event.  The last term is the rounding of the two sums of ``n`` products compared
(:data:`SUMMATION_ROUNDING`, ``|D|`` the larger of the two), which is not independent of
``v``: it is the whole gap when ``v`` lies along the gradient.  A complex probe that fails
by less than ``sqrt(n)`` tolerances (what a loss summing ``n`` terms less accurately can
round to) has its rounding measured, as elementwise, at :data:`ROUNDING_STEPS` more steps.
Nothing is a fixed tolerance.

**Many parameter arrays.**  Up to :data:`MAX_TOP_GROUPS` arrays each get their own
probes.  Beyond, consecutive arrays of one dtype are grouped into at most that many
contiguous blocks, and one direction spans each block, every array's part weighted by
``1 / |g_p|``: ``e . v`` has standard deviation at least ``|e_p| / |g_p|`` for each array,
so the guarantee is still stated per array, and a model with hundreds of arrays pays for a
few probes, not a few per array.  Bisection of a failing group first halves its list of
arrays, so a wrong array among ``P`` is found with about ``2 log2 P`` probes.  A loss may
ask (:class:`Probing`; a derivative check's ``<u, f>`` does) for arrays to share probes
even when they are few: consecutive arrays of one dtype share them as long as none is
resolved more than :data:`POOL_COARSENING` times more coarsely than alone (a layer's
``gamma`` and ``beta``, not its ``x`` beside them), and for no illustrating samples.

**Budget.**  Given ``out_of_time``, the probes watch the check's budget: the top-level
probes run in rounds of one per group, and a round that would take the check past twice
its budget (at the measured pace) is cut, a shorter Richardson ladder tried first if it
reaches more groups.  Groups no probe reached, or whose probes do not rule out a relative
error of 1 for their typical parameter, are returned as ``unreached`` (the check
withholds their verdict); bisection and the illustrating samples stop the same way.

**Locating.**  When a parameter's probe fails, the wrong elements are found by
group testing: the parameter is halved, each half probed with a direction
restricted to it, and the halves that fail are halved again, down to blocks
of :data:`LEAF_BLOCK` elements, which the elementwise pipeline then checks.
``m`` wrong elements among ``N`` cost about ``2 m log2(N / m)`` probes instead
of ``N`` evaluations.  An error spread over many elements (a wrong factor)
makes every half fail: before bisecting a failing block of more than
``2 * LEAF_BLOCK`` elements, :data:`SPOT_BLOCKS` random blocks of
:data:`LEAF_BLOCK` elements inside it are probed (a smaller failing parameter has its
two halves probed); if (nearly) all fail the error is dense, the search stops and a
sample is checked elementwise (:data:`DENSE_SAMPLE` elements of the first dense
parameter, one of each later one: enough to name a factor), so a dense bug costs a few
dozen probes and a few elements more than a pass, not a bisection tree (784-128-10:
about 7 passing checks).  A sparse
pattern (one wrong column of a weight matrix) keeps being bisected, within
:data:`MAX_BISECTION_PROBES` probes.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.problem.objective import Objective
from gradcheck.problem.space import ParameterSpace, step_taken, working_eps
from gradcheck.references.complex_step import (
    COMPLEX_ROUNDING,
    ROUNDING_STEPS,
    SPREAD_SAFETY,
    complex_step_size,
)
from gradcheck.references.finite_difference import richardson
from gradcheck.results import json_float
from gradcheck.verdict.tolerance import ANALYTIC_ROUNDING, ESTIMATE_SAFETY, JITTER_FACTOR, passes

__all__ = [
    "Block",
    "Probe",
    "Guarantee",
    "DirectionalOutcome",
    "directional_check",
    "miss_probability",
    "PROBES_PER_PARAMETER",
    "PROBE_SIGMAS",
    "MISS_TARGET",
    "LEAF_BLOCK",
    "MAX_FRONTIER",
    "MAX_TOP_GROUPS",
    "OutOfTime",
    "Probing",
    "PROBING",
    "POOL_COARSENING",
]


# SciPy's erf would cost every ``import gradcheck`` (and every pytest start-up) ~0.4 s of
# import for the few dozen values a guarantee needs; math.erf is exact enough elementwise.
_MATH_ERF = np.frompyfunc(math.erf, 1, 1)


def _erf(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """The error function, elementwise (``math.erf`` over an array)."""
    return np.asarray(_MATH_ERF(x), dtype=np.float64)


#: Independent probes per parameter at the top level: complex-step probes are accurate to a
#: few ulps, so two already rule out relative errors near 1e-10; Richardson probes get three.
PROBES_PER_PARAMETER = {"complex": 2, "richardson": 3}
#: Standard deviations of the Gaussian sum of independent per-element errors allowed for.
PROBE_SIGMAS = 5.0
#: Rounding of the two sums a probe compares (the analytic ``a . v``, summed pairwise, and the
#: loss's own sum of the terms ``g_i v_i``), in eps of the larger of them: summing n terms of
#: one sign pairwise rounds to about 1.4 eps of the sum (terms of both signs round like the
#: per-element Gaussian room already allows); ESTIMATE_SAFETY on top.  A loss that sums less
#: accurately (a BLAS dot: up to ``sqrt(n)`` eps) shows it in a marginal complex probe, whose
#: rounding is then measured.
SUMMATION_ROUNDING = 2.0
#: Elements per chunk of the pairwise analytic dot product (:func:`_pairwise_dot`).
DOT_CHUNK = 1 << 16
#: The miss probability at which the resolvable relative bug size is reported.
MISS_TARGET = 1e-6
#: Relative bug sizes whose miss probability the result also states.
REPORTED_RHOS = (1e-3, 1e-4, 1e-6)
#: Blocks this small are handed to the elementwise pipeline.
LEAF_BLOCK = 16
#: Failing blocks of one parameter beyond which a spot test asks whether the error is dense.
MAX_FRONTIER = 8
#: Random small blocks probed by that spot test; if all but one fail, the error is dense.
SPOT_BLOCKS = 8
#: Most bisection probes in one check; past it the failing blocks are sampled elementwise.
MAX_BISECTION_PROBES = 512
#: Elements sampled elementwise from the failing blocks when the search stops early.
SPREAD_SAMPLE = 16
#: Elements per group sampled elementwise once the error is known to be dense: two show it
#: and let a factor be named; every failing one costs a second reference and a kink test
#: (~20 evaluations), so no more.
DENSE_SAMPLE = 2
#: Most top-level groups of parameters: up to this many parameter arrays each get their own
#: probes; beyond, consecutive arrays of one dtype share probes (a model with hundreds of
#: arrays pays for a few groups, not for every array), each array's part of the direction
#: weighted by ``1 / |g_p|`` so that every array keeps its own relative resolution.
MAX_TOP_GROUPS = 4
#: A parameter with a (near) zero gradient is weighted in a shared direction as one whose
#: gradient is this share of the largest: ``sqrt(eps)``, below which no finite difference
#: of the whole loss resolves it anyway.
ZERO_GRADIENT_WEIGHT = 2.0**-26
#: How many times more coarsely an array may be resolved in a group it shares than by probes
#: of its own, where a loss asks for pooling (:class:`Probing`; a derivative check's does):
#: a factor 4 in the smallest relative bug resolved, for half or less of the probes.
POOL_COARSENING = 4.0
#: Rungs of the Richardson ladder along a probe: top-level probes, bisection probes.
TOP_RUNGS = 7
BISECTION_RUNGS = 4
#: Loss evaluations an illustrating sample element costs the elementwise pipeline, about.
SAMPLE_COST = 3

#: ``out_of_time(evaluations)``: would that many more loss evaluations take the check past
#: its budget?
OutOfTime = Callable[[int], bool]


@dataclass(frozen=True)
class Probing:
    """What a directional check spends beyond its verdict, and how it groups its arrays.

    Attributes
    ----------
    samples : int
        Illustrating samples per passing group, checked elementwise (one loss
        evaluation each with the complex step): they show real numbers beside the
        probes' verdict; they do not make it.  With 0 those parameters read "no element
        compared" and the probes' guarantee is the whole evidence.
    pool : float or None
        None: up to :data:`MAX_TOP_GROUPS` arrays get probes of their own (the scalar
        check's rule, :func:`_top_groups`).  A number: consecutive arrays of one dtype
        share probes as long as none of them is resolved more than ``pool`` times more
        coarsely than by probes of its own (:func:`_pooled_groups`): fewer groups, fewer
        probes, and the guarantee, computed from the probes that ran, stays per array.

    complex_probes : int or None
        Top-level complex-step probes per group; None: :data:`PROBES_PER_PARAMETER`
        (two).  One still catches every bug of practical size (a derivative check's:
        a relative error of 1e-4 is missed with probability ~1e-8), at half the complex
        evaluations; the guarantee states what the probes that ran rule out.

    A loss may carry its own as the attribute ``probing`` (the scalar loss of a
    derivative check does: :class:`gradcheck.runner.derivatives.projection.Projection`);
    the scalar check reads it where it plans a directional check.
    """

    samples: int = 1
    pool: float | None = None
    complex_probes: int | None = None


#: The scalar check's: one illustrating sample per group, an array per group up to
#: :data:`MAX_TOP_GROUPS` arrays.
PROBING = Probing()


@dataclass(frozen=True)
class Block:
    """A contiguous run of flat indices ``[start, stop)``, inside one parameter or spanning
    several whole ones (parameters are contiguous in the flat index space); ``group`` is the
    top-level group it descends from."""

    start: int
    stop: int
    group: int = 0

    @property
    def size(self) -> int:
        return self.stop - self.start


@dataclass(frozen=True)
class Probe:
    """One directional comparison: ``g_a . v`` against ``D_v f`` over one block.

    Attributes
    ----------
    parameter : str
        The parameter probed.
    start, stop : int
        The probed elements, as flat indices within that parameter (``[start, stop)``).
    analytic : float
        ``g_a . v``.
    reference : float
        ``D_v f`` from the loss alone.
    error : float
        The reference's own error estimate.
    tolerance : float
        The derived tolerance of this probe.
    method : str
        ``"complex"`` or ``"richardson"``.
    n_evaluations : int
        Loss evaluations spent.
    level : int
        0 for the top-level probes, ``k`` for the ``k``-th bisection level.
    covers : tuple of str
        Every parameter the probe's direction touches (one, or a group of whole ones).
    """

    parameter: str
    start: int
    stop: int
    analytic: float
    reference: float
    error: float
    tolerance: float
    method: str
    n_evaluations: int
    level: int = 0
    covers: tuple[str, ...] = ()

    @property
    def passed(self) -> bool:
        return bool(passes(self.analytic, self.reference, self.tolerance))

    @property
    def ratio(self) -> float:
        """``|g_a . v - D_v f| / tolerance`` (above 1 means failed)."""
        gap = abs(self.analytic - self.reference)
        if self.tolerance > 0:
            return gap / self.tolerance
        return 0.0 if gap == 0 else math.inf

    def to_dict(self) -> dict[str, Any]:
        return {
            "parameter": self.parameter,
            "covers": list(self.covers),
            "elements": [self.start, self.stop],
            "analytic": json_float(self.analytic),
            "reference": json_float(self.reference),
            "error": json_float(self.error),
            "tolerance": json_float(self.tolerance),
            "method": self.method,
            "n_evaluations": self.n_evaluations,
            "level": self.level,
            "passed": self.passed,
        }


def miss_probability(slack: NDArray[np.float64] | list[float], bug_norm: float) -> float:
    """Probability that probes with these slacks all pass a bug of norm ``bug_norm``.

    Parameters
    ----------
    slack : array of float
        ``tol + err`` of each probe: the largest ``|e . v|`` a pass allows.
    bug_norm : float
        ``|e|``, the norm of the gradient's error over the probed elements.

    Returns
    -------
    float
        ``prod_k erf(slack_k / (bug_norm sqrt 2))``, i.e. ``prod_k P(|N(0, |e|**2)| <= slack_k)``.
    """
    slack = np.asarray(slack, dtype=np.float64)
    if bug_norm <= 0:
        return 1.0
    return float(np.prod(_erf(slack / (bug_norm * math.sqrt(2.0)))))


@dataclass(frozen=True)
class Guarantee:
    """What the passing probes rule out, per parameter.

    Attributes
    ----------
    rho : float
        The smallest relative bug size ``|e_p| / |g_p|`` missed with
        probability at most ``miss_probability`` in every parameter
        (``inf`` when some parameter could not be resolved).
    miss_probability : float
        :data:`MISS_TARGET`.
    at : dict of float to float
        The miss probability at each of :data:`REPORTED_RHOS`.
    scales : dict of str to float
        ``|g_p|`` per parameter: the larger of the analytic norm and the
        root mean square of the probes' reference values.
    """

    rho: float
    miss_probability: float
    at: dict[float, float]
    scales: dict[str, float]

    def sentence(self) -> str:
        if not math.isfinite(self.rho):
            return "the probes could not resolve a relative error in every parameter"
        extra = ", ".join(
            f">= {rho:.0e}: <= {p:.1e}" for rho, p in self.at.items() if rho > self.rho
        )
        text = (
            f"a bug with |e_p| >= {self.rho:.2g} |g_p| in any parameter p would be missed with "
            f"probability <= {self.miss_probability:.0e}"
        )
        return text + (f" ({extra})" if extra else "")

    def to_dict(self) -> dict[str, Any]:
        return {
            "rho": json_float(self.rho),
            "miss_probability": self.miss_probability,
            "at": {f"{rho:.0e}": json_float(p) for rho, p in self.at.items()},
            "scales": {name: json_float(value) for name, value in self.scales.items()},
            "statement": self.sentence(),
        }


@dataclass(frozen=True, eq=False)
class DirectionalOutcome:
    """The result of :func:`directional_check`.

    Attributes
    ----------
    probes : tuple of Probe
        Top-level probes (``level == 0``), then bisection probes.
    guarantee : Guarantee
        What the top-level probes rule out.
    suspects : ndarray of int
        Flat indices the elementwise pipeline should check: the elements the
        bisection narrowed down to, non-finite analytic elements, and samples.
    located : tuple of str
        What the bisection found, in words.
    method : str
        The reference used along the probes.
    n_evaluations : int
        Loss evaluations spent on probes.
    non_finite : int
        Analytic elements that are NaN or infinite (left out of the probes; they fail).
    unreached : tuple of str
        Parameters no probe reached, or resolved (``rho = 1`` not ruled out for the
        group's typical parameter), before the check's budget ran out (their verdict is
        withheld: the caller reports them).
    """

    probes: tuple[Probe, ...]
    guarantee: Guarantee
    suspects: NDArray[np.intp]
    located: tuple[str, ...]
    method: str
    n_evaluations: int
    non_finite: int = 0
    unreached: tuple[str, ...] = ()

    @property
    def top(self) -> tuple[Probe, ...]:
        return tuple(p for p in self.probes if p.level == 0)

    @property
    def passed(self) -> bool:
        """True when every top-level probe agreed and every analytic element is finite."""
        return self.non_finite == 0 and all(p.passed for p in self.top)

    def summary(self) -> str:
        top = self.top
        per = {name for p in top for name in (p.covers or (p.parameter,))}
        head = (
            f"{len(top)} probe(s) over {len(per)} parameter(s) ({self.method}, "
            f"{self.n_evaluations} loss evaluations)"
        )
        if self.passed:
            stopped = "".join(f"; {note}" for note in self.located)
            return f"{head}: all agree; {self.guarantee.sentence()}{stopped}"
        failed = [p for p in top if not p.passed]
        if not failed:
            return f"{head}: all agree on the finite elements; " + "; ".join(self.located)
        worst = max(failed, key=lambda p: p.ratio)
        text = (
            f"{head}: {len(failed)} disagree, worst in {worst.parameter}: g.v = "
            f"{worst.analytic:.6g}, reference {worst.reference:.6g}, |difference| "
            f"{abs(worst.analytic - worst.reference):.3g} > tolerance {worst.tolerance:.3g}"
        )
        if self.located:
            text += "; " + "; ".join(self.located)
        return text

    def to_dict(self) -> dict[str, Any]:
        """The ``CheckResult.directional`` dict (JSON-safe)."""
        return {
            "passed": self.passed,
            "summary": self.summary(),
            "method": self.method,
            "n_probes": len(self.top),
            "n_bisection_probes": len(self.probes) - len(self.top),
            "n_evaluations": self.n_evaluations,
            "guarantee": self.guarantee.to_dict(),
            "located": list(self.located),
            "probes": [p.to_dict() for p in self.probes],
        }


class _Lines:
    """Probe lines seen as the "elements" of a reference: element ``k`` is ``x0 + t u_k``.

    :func:`~gradcheck.references.finite_difference.richardson` only asks its
    objective for ``perturbed_many`` and ``n_evaluations``; here "moving
    element ``k`` by ``t``" means evaluating the loss at ``x0 + t u_k`` with
    ``u_k`` the unit direction of probe ``k``, so the Richardson math and its
    error estimate are reused unchanged along the probe directions.
    """

    def __init__(
        self,
        objective: Objective,
        blocks: list[Block],
        directions: list[NDArray[np.float64]],
        norms: list[float],
    ) -> None:
        self.objective = objective
        self.blocks = blocks
        self.directions = directions  # u_k = directions[k] / norms[k], formed when used
        self.norms = norms
        self.residual = np.zeros(len(blocks))  # largest |off-line part of the step| / |t|
        # Points go to the loss as a stack only when it takes stacks (or an executor splits
        # them); a plain loss is evaluated point by point, so one row at a time is enough.
        batched = getattr(objective, "vectorized", False) or getattr(objective, "executor", None)
        self.chunk = int(getattr(objective, "chunk_rows", 1)) if batched else 1

    @property
    def n_evaluations(self) -> int:
        return self.objective.n_evaluations

    def perturbed_many(
        self, indices: NDArray[np.intp], steps: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        if self.chunk == 1:  # a plain loss: each point moved in place, nothing built
            values = np.empty(len(indices))
            taken = np.empty(len(indices))
            for k, (probe, step) in enumerate(zip(indices, steps, strict=True)):
                block, norm = self.blocks[int(probe)], self.norms[int(probe)]
                values[k], taken[k], off = self.objective.along_block(
                    block.start, self.directions[int(probe)], float(step) / norm
                )
                self._off_line(int(probe), taken[k], off)
            return values, taken
        return self._stacked(indices, steps)

    def _off_line(self, probe: int, along: float, off: float) -> None:
        if along != 0:
            self.residual[probe] = max(self.residual[probe], off / abs(along))

    def _stacked(
        self, indices: NDArray[np.intp], steps: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """Points as rows of a stack, for a loss that takes stacks or an executor."""
        space = self.objective.space
        x0 = self.objective.x0
        values = np.empty(len(indices))
        taken = np.empty(len(indices))
        for start in range(0, len(indices), self.chunk):
            stop = min(start + self.chunk, len(indices))
            points = np.repeat(x0[np.newaxis, :], stop - start, axis=0)
            for row, k in enumerate(range(start, stop)):
                probe = int(indices[k])
                block = self.blocks[probe]
                unit = self.directions[probe] / self.norms[probe]
                dtype = space.leaves[int(space.leaf_of(block.start))].dtype  # one per block
                original = x0[block.start : block.stop]
                moved = (original + steps[k] * unit).astype(dtype)
                delta = step_taken(moved, original)
                taken[k] = float(delta @ unit)
                self._off_line(probe, taken[k], float(np.linalg.norm(delta - steps[k] * unit)))
                points[row, block.start : block.stop] = moved
            values[start:stop] = self.objective.values_at(points)
        return values, taken


def _pairwise_dot(a: NDArray[np.float64], v: NDArray[np.float64]) -> float:
    """``a . v`` summed pairwise in chunks (numpy's ``sum``), to about an eps of ``|a| |v|``.

    A BLAS dot accumulates each of a few partial sums over ``n / k`` terms in turn, so when
    the terms share one sign its rounding grows like ``sqrt(n)`` eps of the sum; pairwise
    summation keeps it near one eps (:data:`SUMMATION_ROUNDING`).  Chunked so the products
    never take more than :data:`DOT_CHUNK` elements of memory.
    """
    partial = [
        float(np.sum(a[start : start + DOT_CHUNK] * v[start : start + DOT_CHUNK]))
        for start in range(0, len(a), DOT_CHUNK)
    ]
    return float(np.sum(partial)) if partial else 0.0


def _largest_magnitude(values: NDArray[Any]) -> float:
    """``max |values|`` (0 for none) without a full-size temporary."""
    if values.size == 0:
        return 0.0
    return float(max(values.max(), -values.min()))


@dataclass
class _Context:
    objective: Objective
    space: ParameterSpace
    analytic: NDArray[np.float64]
    rounding: NDArray[np.float64]  # per parameter: room for the analytic gradient's rounding
    complex_rounding: NDArray[np.float64]  # per parameter: complex-step rounding (8 eps max|g|)
    max_g: float  # largest finite |analytic| element
    sigma: float | Callable[[], float]  # or a function measuring it when first needed
    use_complex: bool
    rng: np.random.Generator
    finite: NDArray[np.bool_]
    weights: NDArray[np.float64]  # per parameter: its weight in a direction spanning several
    jitter: NDArray[np.float64] | None = None  # measured jitter of the analytic gradient
    initial: dict[Block, NDArray[np.float64]] = field(default_factory=dict)  # first directions
    top_rungs: int = TOP_RUNGS  # Richardson rungs of a top-level probe (fewer when short of time)

    def leaves(self, block: Block) -> range:
        """The parameters ``block`` touches."""
        first = int(self.space.leaf_of(block.start))
        return range(first, int(self.space.leaf_of(block.stop - 1)) + 1)

    def per_element(self, values: NDArray[np.float64], block: Block) -> NDArray[np.float64] | float:
        """A per-parameter quantity over ``block``'s elements (a number inside one parameter)."""
        leaves = self.leaves(block)
        if len(leaves) == 1:
            return float(values[leaves[0]])
        sizes = [
            min(block.stop, leaf.offset + leaf.size) - max(block.start, leaf.offset)
            for leaf in (self.space.leaves[k] for k in leaves)
        ]
        return np.repeat(values[leaves.start : leaves.stop], sizes)

    def label(self, block: Block) -> tuple[str, int, int, tuple[str, ...]]:
        """The probe's parameter name, its local ``[start, stop)``, and what it covers."""
        leaves = [self.space.leaves[k] for k in self.leaves(block)]
        names = tuple(leaf.name for leaf in leaves)
        if len(leaves) == 1:
            offset = leaves[0].offset
            return names[0], block.start - offset, block.stop - offset, names
        name = f"{names[0]} ... {names[-1]} ({len(names)} parameters)"
        return name, block.start, block.stop, names

    def split(self, block: Block) -> tuple[Block, Block]:
        """Two halves: at the middle parameter boundary when ``block`` spans several."""
        leaves = self.leaves(block)
        if len(leaves) > 1:
            middle = self.space.leaves[leaves[len(leaves) // 2]].offset
        else:
            middle = block.start + block.size // 2
        return Block(block.start, middle, block.group), Block(middle, block.stop, block.group)

    def room(self, block: Block) -> NDArray[np.float64] | float:
        """Per-element room for the analytic gradient's rounding and jitter over ``block``."""
        rounding = self.per_element(self.rounding, block)
        if self.jitter is None:
            return rounding
        return rounding + JITTER_FACTOR * self.jitter[block.start : block.stop]

    def draw(self, block: Block) -> NDArray[np.float64]:
        given = self.initial.pop(block, None)
        v = self.rng.standard_normal(block.size) if given is None else given
        weight = self.per_element(self.weights, block)
        if not isinstance(weight, float) or weight != 1.0:
            v = v * weight
        finite = self.finite[block.start : block.stop]
        if not finite.all():  # non-finite elements are reported directly, not probed
            v = np.where(finite, v, 0.0)
        return v

    def probe_cost(self, level: int) -> int:
        """Loss evaluations of one probe at ``level``, in units of real evaluations."""
        if self.use_complex:
            return math.ceil(getattr(self.objective, "complex_cost", 1.0))
        return 2 * (self.top_rungs if level == 0 else BISECTION_RUNGS)

    def probe(self, blocks: list[Block], level: int) -> list[Probe]:
        """One probe per block (a fresh Gaussian direction each), batched."""
        if not blocks:
            return []
        directions = [self.draw(block) for block in blocks]
        if self.use_complex:
            pairs = zip(blocks, directions, strict=True)
            return [self._complex(block, v, level) for block, v in pairs]
        return self._richardson(blocks, directions, level)

    def _tolerance(
        self, block: Block, v: NDArray[np.float64], error: float, compared: float
    ) -> float:
        """The probe's tolerance; ``compared`` is the larger of ``|a . v|`` and the reference."""
        room_v = self.room(block)
        if isinstance(room_v, float):  # the same room for every element: no temporary
            room = PROBE_SIGMAS * room_v * float(np.linalg.norm(v))
        else:
            room = PROBE_SIGMAS * float(np.linalg.norm(room_v * v))
        # Both sides are sums of n products (a . v here, the loss's own sum of g_i v_i in
        # the reference): beyond the per-element rounding above (which adds up like a
        # Gaussian, fine for a random v), terms of one sign round to an eps or two of
        # their sum, the whole gap when v happens to lie along the gradient.
        eps = working_eps(self.space.leaves[self.leaves(block)[0]].dtype)
        summation = SUMMATION_ROUNDING * eps * compared
        return ESTIMATE_SAFETY * (error + room + summation)

    def _analytic(self, block: Block, v: NDArray[np.float64]) -> float:
        return _pairwise_dot(self.analytic[block.start : block.stop], v)

    def _complex(self, block: Block, v: NDArray[np.float64], level: int) -> Probe:
        before = self.objective.n_evaluations
        part = self.objective.x0[block.start : block.stop]
        scale = max(_largest_magnitude(part), 1.0)
        first = self.leaves(block)[0]  # a block's parameters share one dtype
        eps = working_eps(self.space.leaves[first].dtype)
        largest = max(_largest_magnitude(v), 1e-300)
        h = float(complex_step_size(eps)) * scale / largest
        value = self.objective.complex_value(None, h, v, start=block.start)
        reference = float(value.imag / h)
        error = PROBE_SIGMAS * float(self.complex_rounding[first] * np.linalg.norm(v))
        name, start, stop, covers = self.label(block)
        analytic = self._analytic(block, v)
        compared = max(abs(analytic), abs(reference))
        probe = Probe(
            name,
            start,
            stop,
            analytic,
            reference,
            error,
            self._tolerance(block, v, error, compared),
            "complex",
            self.objective.n_evaluations - before,
            level,
            covers,
        )
        if (
            probe.passed
            or abs(probe.analytic - reference) > math.sqrt(block.size) * probe.tolerance
        ):
            return probe
        # Marginal: the loss sums n terms g_i v_i h in its imaginary part, and when v lies
        # along the gradient they share one sign and round to more than the per-element
        # bound says (up to sqrt(n) times).  Measured as elementwise
        # (complex_step_rounding): the same probe at ROUNDING_STEPS times the step, where
        # every term rounds afresh; the spread bounds the first's rounding.
        derivatives = [reference]
        for ratio in ROUNDING_STEPS:
            again = self.objective.complex_value(None, h * ratio, v, start=block.start)
            derivatives.append(float(again.imag / (h * ratio)))
        error += SPREAD_SAFETY * (max(derivatives) - min(derivatives))
        return replace(
            probe,
            error=error,
            tolerance=self._tolerance(block, v, error, compared),
            n_evaluations=self.objective.n_evaluations - before,
        )

    def _richardson(
        self, blocks: list[Block], directions: list[NDArray[np.float64]], level: int
    ) -> list[Probe]:
        norms = [float(np.linalg.norm(v)) or 1.0 for v in directions]
        lines = _Lines(self.objective, blocks, directions, norms)
        x0 = self.objective.x0
        base = np.array(
            [
                np.cbrt(working_eps(self.space.leaves[self.leaves(b)[0]].dtype))
                * max(float(np.max(np.abs(x0[b.start : b.stop]), initial=0.0)), 1.0)
                for b in blocks
            ]
        )
        before = self.objective.n_evaluations
        estimate = richardson(
            lines,  # type: ignore[arg-type]
            np.arange(len(blocks)),
            sigma=self.sigma() if callable(self.sigma) else self.sigma,
            base_steps=base,
            n_steps=self.top_rungs if level == 0 else BISECTION_RUNGS,
        )
        spent = (self.objective.n_evaluations - before) // len(blocks)
        probes = []
        for k, (block, v, norm) in enumerate(zip(blocks, directions, norms, strict=True)):
            # The step off the line (rounding x0 + t u) moves the loss by g . off: bound it.
            off_line = 2.0 * PROBE_SIGMAS * self.max_g * lines.residual[k]
            error = norm * (float(estimate.error[k]) + off_line)
            name, start, stop, covers = self.label(block)
            analytic, reference = self._analytic(block, v), norm * float(estimate.derivative[k])
            compared = max(abs(analytic), abs(reference))
            probes.append(
                Probe(
                    name,
                    start,
                    stop,
                    analytic,
                    reference,
                    error,
                    self._tolerance(block, v, error, compared),
                    "richardson",
                    spent,
                    level,
                    covers,
                )
            )
        return probes


def directional_check(
    objective: Objective,
    analytic: NDArray[Any],
    *,
    sigma: float | Callable[[], float],
    use_complex: bool,
    rng: np.random.Generator,
    gradient_jitter: NDArray[np.float64] | None = None,
    measure_jitter: Callable[[], NDArray[np.float64] | None] | None = None,
    probes: int | None = None,
    locate: bool = True,
    probing: Probing | None = None,
    initial: NDArray[np.float64] | None = None,
    out_of_time: OutOfTime | None = None,
) -> DirectionalOutcome:
    """Probe the gradient along random directions; locate the wrong elements if any disagree.

    Parameters
    ----------
    objective : Objective
        The loss over the flat parameter vector (an
        :class:`~gradcheck.runner.evaluation.BatchedObjective` evaluates probe batches
        vectorized or in parallel).
    analytic : ndarray
        The user's gradient, flat.
    sigma : float or callable
        The loss's rounding noise (standard deviation), or a function returning it
        (called only if a Richardson probe needs it).
    use_complex : bool
        Use the complex step along each probe (the loss must have passed
        :func:`~gradcheck.references.complex_step.complex_step_capability`);
        else Richardson extrapolation along it.
    rng : numpy.random.Generator
        Draws the probe directions and samples.
    gradient_jitter : ndarray, optional
        Measured per-element jitter of the analytic gradient
        (:func:`gradcheck.verdict.jitter.measure_gradient_jitter`).
    measure_jitter : callable, optional
        Measures that jitter on demand (when ``gradient_jitter`` is not given): called
        only if a top-level probe fails without its room, after which the top-level
        probes are drawn again with it.  The room only widens tolerances, so probes
        that pass without it pass with it.
    probes : int, optional
        Top-level probes per parameter; ``probing.complex_probes`` (complex step) or
        :data:`PROBES_PER_PARAMETER` by default.
    locate : bool
        Bisect failing parameters down to suspect elements.
    probing : Probing, optional
        The illustrating samples (random elements per passing group added to the
        suspects, so that the elementwise pipeline also shows real numbers) and how the
        arrays are grouped; :data:`PROBING` (one sample, an array per group up to
        :data:`MAX_TOP_GROUPS` arrays) when None or not a :class:`Probing` (a user's
        loss may carry an unrelated ``probing`` attribute).
    initial : ndarray, optional
        A standard Gaussian draw over all elements whose restriction to each parameter
        is that parameter's first probe direction (saving a draw when the caller drew
        one for another purpose, such as the complex-step capability test: the
        directions only need to be independent of the gradient's error, which they are).
    out_of_time : callable, optional
        ``out_of_time(evaluations)``: whether that many more loss evaluations would take
        the check past its budget.  Asked before each round of top-level probes (a round
        that does not fit is cut, and the parameters not reached are listed in
        ``unreached``), before each bisection level (the search stops and the failing
        blocks are sampled elementwise; the verdict of the top-level probes stands), and
        before the illustrating samples (skipped).

    Returns
    -------
    DirectionalOutcome
        The probes, the guarantee, the suspect elements and how they were found.

    Notes
    -----
    See the module docstring for the probability bound and the tolerance.
    """
    space = objective.space
    analytic = np.asarray(analytic, dtype=np.float64)
    finite = np.isfinite(analytic)
    if not finite.all():
        analytic = np.where(finite, analytic, 0.0)  # non-finite elements are reported, not probed
    eps = np.array([working_eps(leaf.dtype) for leaf in space.leaves])
    scale = np.array([_largest_magnitude(analytic[leaf.slice]) for leaf in space.leaves])
    max_g = float(np.max(scale, initial=0.0))
    probing = probing if isinstance(probing, Probing) else PROBING  # (a loss's other .probing)
    norms = _leaf_norms(space, analytic)
    groups = (
        _top_groups(space) if probing.pool is None else _pooled_groups(space, norms, probing.pool)
    )
    context = _Context(
        objective,
        space,
        analytic,
        ANALYTIC_ROUNDING * eps * scale,
        COMPLEX_ROUNDING * eps * max_g,
        max_g,
        sigma,
        use_complex,
        rng,
        finite,
        _weights(space, norms, groups),
        None if gradient_jitter is None else np.asarray(gradient_jitter, dtype=np.float64),
    )
    before = objective.n_evaluations
    if initial is not None:
        context.initial = {b: initial[b.start : b.stop] for b in groups if b.size}
    if probes is None and use_complex and probing.complex_probes is not None:
        probes = probing.complex_probes
    if probes is None:
        probes = PROBES_PER_PARAMETER["complex" if use_complex else "richardson"]
    top_blocks, top, stopped = _top_level(context, groups, probes, out_of_time)
    if context.jitter is None and measure_jitter is not None and not all(p.passed for p in top):
        context.jitter = measure_jitter()
        if context.jitter is not None:  # fresh probes, judged with the jitter's room
            top = context.probe(top_blocks, level=0)
    guarantee, unresolved = _guarantee(context, top_blocks, top, norms)

    suspects: list[NDArray[np.intp]] = [np.flatnonzero(~finite)[:SPREAD_SAMPLE]]
    located: list[str] = [] if stopped is None else [stopped]
    bisection: list[Probe] = []
    failing = list(dict.fromkeys(b for b, p in zip(top_blocks, top, strict=True) if not p.passed))
    if locate and failing:
        found, extra, notes = _bisect(context, failing, out_of_time)
        suspects += found
        bisection += extra
        located += notes
    # Samples illustrate the parameters whose probes passed; a failing one has its own.
    passing = [b for b in groups if b not in failing and b in top_blocks]
    if out_of_time is None or not out_of_time(SAMPLE_COST * SPREAD_SAMPLE):
        grouped = len(groups) < len(space.leaves)
        suspects += _samples(space, rng, probing.samples, passing, grouped=grouped)
    # Cut short by the budget, a group is reached only if its probes rule out rho = 1 at least
    # (for its typical parameter: an array whose gradient is near zero beside the others'
    # stays unresolved however many probes run, and makes the guarantee inf, as uncut).
    reached = set(top_blocks) - (set(unresolved) if stopped else set())
    unreached = tuple(n for b in groups if b.size and b not in reached for n in context.label(b)[3])
    if np.any(~finite):
        located.insert(0, f"{int(np.sum(~finite))} non-finite analytic element(s)")
    all_suspects = (
        np.unique(np.concatenate(suspects).astype(np.intp))
        if suspects
        else np.array([], dtype=np.intp)
    )
    return DirectionalOutcome(
        probes=tuple(top + bisection),
        guarantee=guarantee,
        suspects=all_suspects,
        located=tuple(located),
        method="complex" if use_complex else "richardson",
        n_evaluations=objective.n_evaluations - before,
        non_finite=int(np.sum(~finite)),
        unreached=unreached,
    )


def _top_level(
    context: _Context, groups: list[Block], probes: int, out_of_time: OutOfTime | None
) -> tuple[list[Block], list[Probe], str | None]:
    """The top-level probes, in rounds of one per group: the blocks, the probes, and why they
    stopped early (None when all ran).

    With ``out_of_time``, a round that would take the check past its budget is cut to the
    probes that fit, and the probing stops there: the groups probed keep their (weaker)
    guarantee, the groups not reached are reported as such.
    """
    blocks = [b for b in groups if b.size]
    done_blocks: list[Block] = []
    done: list[Probe] = []
    for _ in range(probes):
        fit = _fitting(context, len(blocks), out_of_time)
        if fit < len(blocks) and not context.use_complex and context.top_rungs > BISECTION_RUNGS:
            # A shorter ladder, if it reaches more groups: every parameter probed, less exactly.
            rungs, context.top_rungs = context.top_rungs, BISECTION_RUNGS
            shorter = _fitting(context, len(blocks), out_of_time)
            if shorter > fit:
                fit = shorter
            else:
                context.top_rungs = rungs
        done_blocks += blocks[:fit]
        done += context.probe(blocks[:fit], level=0)
        if fit < len(blocks):
            n = probes * len(blocks)
            return (
                done_blocks,
                done,
                (
                    f"probing stopped after {len(done)} of {n} top-level probes: the next would "
                    "take the check past twice its budget"
                ),
            )
    return done_blocks, done, None


def _fitting(context: _Context, n: int, out_of_time: OutOfTime | None) -> int:
    """How many of ``n`` top-level probes fit in what is left of the budget."""
    cost = context.probe_cost(0)
    while n and out_of_time is not None and out_of_time(n * cost):
        n -= 1
    return n


def _top_groups(space: ParameterSpace) -> list[Block]:
    """One block per parameter, or, beyond :data:`MAX_TOP_GROUPS` parameters, at most that
    many runs of consecutive parameters of one dtype with about equal numbers of elements."""
    leaves = [leaf for leaf in space.leaves if leaf.size]
    if len(leaves) <= MAX_TOP_GROUPS:
        return [Block(leaf.offset, leaf.offset + leaf.size, k) for k, leaf in enumerate(leaves)]
    runs: list[list[Any]] = [[]]
    for leaf in leaves:
        if runs[-1] and runs[-1][-1].dtype != leaf.dtype:
            runs.append([])
        runs[-1].append(leaf)
    blocks: list[Block] = []
    per_group = max(space.size / MAX_TOP_GROUPS, 1.0)
    for run in runs:
        start, filled = run[0].offset, 0
        for leaf in run:
            filled += leaf.size
            end = leaf.offset + leaf.size
            if filled >= per_group or leaf is run[-1]:
                blocks.append(Block(start, end, len(blocks)))
                start, filled = end, 0
    return blocks


def _pooled_groups(space: ParameterSpace, norms: NDArray[np.float64], pool: float) -> list[Block]:
    """Runs of consecutive arrays of one dtype that share probes, none resolved more than
    ``pool`` times more coarsely than by probes of its own.

    A probe's reference error (the complex step's rounding, Richardson's estimate) and its
    room for rounding grow with ``|v|``.  Alone, array ``p`` is probed along ``v ~ N(0, I)``
    with ``|v| ~ sqrt(n_p)`` against ``e . v`` of scale ``|e_p|``: it resolves
    ``|e_p| / |g_p|`` down to about ``c / r_p``, with ``r_p = |g_p| / sqrt(n_p)`` its root
    mean square gradient element.  In a shared direction, each array weighted by
    ``1 / |g_p|`` (:func:`_weights`), ``|v|`` grows to ``sqrt(sum_q 1 / r_q**2)`` per unit of
    ``|e_p| / |g_p|``: array ``p`` is resolved ``r_p sqrt(sum_q 1 / r_q**2)`` times more
    coarsely, which is what ``pool`` bounds.  An array whose gradient is zero is never
    pooled (it would swamp the others).  Beyond :data:`MAX_TOP_GROUPS` groups the
    many-array rule of :func:`_top_groups` applies.
    """
    blocks: list[Block] = []
    run: list[Any] = []  # the arrays of the group being filled
    inverse = 0.0  # sum of 1 / r_q**2 over them
    largest = 0.0  # their largest r_q (0: the group is an array with a zero gradient)

    def close() -> None:
        if run:
            blocks.append(Block(run[0].offset, run[-1].offset + run[-1].size, len(blocks)))

    for leaf, norm in zip(space.leaves, norms, strict=True):
        if not leaf.size:
            continue
        r = float(norm) / math.sqrt(leaf.size)
        if (
            run
            and r > 0
            and largest > 0
            and run[-1].dtype == leaf.dtype
            and max(largest, r) ** 2 * (inverse + r**-2) <= pool**2
        ):
            run.append(leaf)
            inverse, largest = inverse + r**-2, max(largest, r)
            continue
        close()
        run, inverse, largest = [leaf], (r**-2 if r > 0 else 0.0), r
    close()
    return blocks if len(blocks) <= MAX_TOP_GROUPS else _top_groups(space)


def _weights(
    space: ParameterSpace, norms: NDArray[np.float64], groups: list[Block]
) -> NDArray[np.float64]:
    """Per parameter, its weight in directions that span several: ``1 / |g_p|``.

    ``e . v`` then has standard deviation at least ``|e_p| / |g_p|`` for every parameter
    ``p`` of the direction, so a relative bug in a parameter with small gradients is seen
    as well as in one with large gradients.  A parameter whose analytic gradient is (near)
    zero is weighted as one at ``ZERO_GRADIENT_WEIGHT`` of the largest, so that it still
    moves without taking the whole direction.  Inside one parameter every weight is 1, and
    so is the weight of a parameter probed alone (its group's guarantee is computed
    from its unweighted gradient norm, :func:`_guarantee`).
    """
    weights = np.ones(len(space.leaves))
    if len(groups) == len([leaf for leaf in space.leaves if leaf.size]):
        return weights
    typical = float(np.median(norms[norms > 0])) if np.any(norms > 0) else 1.0
    floor = ZERO_GRADIENT_WEIGHT * float(np.max(norms, initial=0.0))
    weights = typical / np.maximum(norms, floor or typical)
    for block in groups:
        first = int(space.leaf_of(block.start))
        if first == int(space.leaf_of(block.stop - 1)):
            weights[first] = 1.0
    return weights


def _samples(
    space: ParameterSpace,
    rng: np.random.Generator,
    samples: int,
    blocks: list[Block],
    *,
    grouped: bool,
) -> list[NDArray[np.intp]]:
    """Random elements of ``blocks`` for the elementwise pipeline: per parameter, or a few in
    all when the parameters are grouped (their number must not set the cost)."""
    if not samples or not blocks:
        return []
    if grouped:
        pool = np.concatenate([np.arange(b.start, b.stop) for b in blocks])
        pick = rng.choice(pool, size=min(SPREAD_SAMPLE, len(pool)), replace=False)
        return [np.sort(pick)]
    out = []
    for block in blocks:
        pick = rng.choice(block.size, size=min(samples, block.size), replace=False)
        out.append(block.start + pick)
    return out


def _leaf_norms(space: ParameterSpace, analytic: NDArray[np.float64]) -> NDArray[np.float64]:
    """``|g_p|`` of every parameter: one reduction over all of them when they are many."""
    if len(space.leaves) <= MAX_TOP_GROUPS:
        return np.array([float(np.linalg.norm(analytic[leaf.slice])) for leaf in space.leaves])
    sizes = np.array([leaf.size for leaf in space.leaves])
    starts = np.minimum([leaf.offset for leaf in space.leaves], space.size - 1)
    sums = np.add.reduceat(np.square(analytic), starts)
    sums[sizes == 0] = 0.0
    return np.sqrt(sums)


def _guarantee(
    context: _Context, top_blocks: list[Block], top: list[Probe], norms: NDArray[np.float64]
) -> tuple[Guarantee, list[Block]]:
    """What the top-level probes rule out, per parameter.

    A probe whose direction covers parameter ``p`` with weight ``w_p`` has
    ``e . v ~ N(0, s**2)`` with ``s >= w_p |e_p|``, so for ``|e_p| >= rho |g_p|`` it misses
    with probability at most ``erf(slack / (rho w_p |g_p| sqrt 2))``.  The parameters of one
    group share its probes, so the group's worst case is its parameter of smallest
    ``w_p |g_p|``: the bound is computed per group, whatever the number of parameters.
    Also returned: the groups whose probes do not even rule out ``rho = 1`` for their
    typical (median) parameter.
    """
    space = context.space
    scales: dict[str, float] = {}
    per_group_probes: dict[Block, list[Probe]] = {}
    for block, probe in zip(top_blocks, top, strict=True):
        per_group_probes.setdefault(block, []).append(probe)
    rows: list[list[float]] = []
    smallest: list[float] = []
    typical: list[float] = []
    for block, mine in per_group_probes.items():
        leaves = [k for k in context.leaves(block) if space.leaves[k].size]
        norm = norms[leaves]
        alone = len(leaves) == 1
        if alone:  # probes of this parameter alone also measured its scale
            norm = np.maximum(norm, math.sqrt(sum(p.reference**2 for p in mine) / len(mine)))
        scales.update((space.leaves[k].name, float(n)) for k, n in zip(leaves, norm, strict=True))
        effective = norm if alone else norm * context.weights[leaves]
        smallest.append(float(np.min(effective)) if np.all(effective > 0) else 0.0)
        typical.append(float(np.median(effective)))
        rows.append([p.tolerance + p.error for p in mine])

    width = max((len(row) for row in rows), default=0)
    table = np.full((len(rows), width), np.inf)
    for r, row in enumerate(rows):
        table[r, : len(row)] = row
    norms = np.array(smallest)

    def per_group(rho: float, norms: NDArray[np.float64] = norms) -> NDArray[np.float64]:
        with np.errstate(divide="ignore", invalid="ignore"):
            z = table / (rho * norms[:, np.newaxis] * math.sqrt(2.0))
        z[~(norms > 0)] = np.inf  # no scale, nothing resolved: probability 1 (miss_probability)
        return np.prod(_erf(z), axis=1)

    def worst(rho: float) -> float:
        return float(np.max(per_group(rho))) if rows else 1.0

    # Groups whose probes do not rule out rho = 1 even for their typical parameter.
    at_one = per_group(1.0, np.array(typical)) if rows else np.ones(0)
    unresolved = [b for b, p in zip(per_group_probes, at_one, strict=True) if p > MISS_TARGET]

    at = {rho: worst(rho) for rho in REPORTED_RHOS}
    if any(scale == 0 for scale in scales.values()) or worst(1.0) > MISS_TARGET:
        rho = math.inf
    else:
        low, high = -40.0, 0.0  # log10 rho: bisection on the monotone miss probability
        for _ in range(24):  # to 2.4e-6 in log10 rho: far finer than the 2 digits shown
            middle = (low + high) / 2
            if worst(10**middle) <= MISS_TARGET:
                high = middle
            else:
                low = middle
        rho = 10**high
    return Guarantee(rho=rho, miss_probability=MISS_TARGET, at=at, scales=scales), unresolved


@dataclass
class _Found:
    """What a bisection found so far: suspect elements, its probes, notes in words."""

    suspects: list[NDArray[np.intp]] = field(default_factory=list)
    probes: list[Probe] = field(default_factory=list)
    notes: list[str] = field(default_factory=list)
    dense: int = 0  # groups found dense so far: the first one is sampled more

    def spread(
        self,
        context: _Context,
        blocks: list[Block],
        seen: str,
        failing: Block | None = None,
        level: int = 1,
    ) -> None:
        """The error is spread over ``blocks``: stop localising, describe it by a sample.

        A random sample shows a dense error (a factor: every element wrong), but can miss
        the wrong elements of one spread thinly (an overlapping max pool's overwritten
        windows, beside gradients that are zero): a small block known to fail
        (``failing``) is halved down to one wrong element as well, which the sample then
        shows beside the others.
        """
        self.dense += 1
        pick = _sample(context, blocks, _dense_sample(self.dense))
        if failing is not None and self.dense == 1:
            pinned, probes = _pin(context, failing, level)
            self.probes += probes
            pick = np.union1d(pick, pinned).astype(np.intp)
        self.suspects.append(pick)
        self.notes.append(_spread_note(context, blocks, seen, len(pick)))


def _pin(context: _Context, block: Block, level: int) -> tuple[NDArray[np.intp], list[Probe]]:
    """Halve ``block`` (a failing one) down to one failing element: its half that fails,
    probing the second only when the first passes; stops at a block whose halves both
    pass (a marginal error), which is then handed on whole."""
    probes: list[Probe] = []
    while block.size > 1:
        first, second = context.split(block)
        tested = context.probe([first], level)
        if tested[0].passed:
            tested += context.probe([second], level)
        probes += tested
        dirty = [h for h, p in zip((first, second), tested, strict=False) if not p.passed]
        if not dirty:
            break
        block = dirty[0]
    return np.arange(block.start, block.stop, dtype=np.intp), probes


def _leaves(context: _Context, found: _Found, small: list[Block], level: int) -> None:
    """Hand small failing blocks to the elementwise pipeline; a whole small parameter that
    fails has its halves probed first: both failing show a spread error, which a sample
    describes; else the failing half is the leaf."""
    for block in small:
        if level == 1 and block.size > 2 * DENSE_SAMPLE:
            halves = context.split(block)
            tested = context.probe(list(halves), level)
            found.probes += tested
            dirty = [h for h, p in zip(halves, tested, strict=True) if not p.passed]
            if len(dirty) == 2:
                found.spread(context, [block], "both of its halves", dirty[0], level)
                continue
            block = Block(dirty[0].start, dirty[0].stop, block.group) if dirty else block
        found.suspects.append(np.arange(block.start, block.stop))


def _bisect(
    context: _Context, failing: list[Block], out_of_time: OutOfTime | None = None
) -> tuple[list[NDArray[np.intp]], list[Probe], list[str]]:
    """Halve failing blocks until they are small; stop when the error is dense."""
    found = _Found()
    suspects, probes, notes = found.suspects, found.probes, found.notes
    frontier = list(failing)
    level = 0
    retried: set[Block] = set()
    spot_tested: set[int] = set()
    while frontier:
        level += 1
        small = [b for b in frontier if b.size <= (2 if level == 1 else 1) * LEAF_BLOCK]
        _leaves(context, found, small, level)
        large = [b for b in frontier if b not in small]
        if not large:
            break
        over = len(probes) + 2 * len(large) > MAX_BISECTION_PROBES
        upcoming = (2 * len(large) + SPOT_BLOCKS) * context.probe_cost(level)
        if over or (out_of_time is not None and out_of_time(upcoming)):
            # Past the budget, each failing element's second reference and kink test
            # (~20 evaluations) would run it on: DENSE_SAMPLE show the error.
            per_group = SPREAD_SAMPLE if over else DENSE_SAMPLE
            pick = _sample(context, large, per_group * len({b.group for b in large}))
            suspects.append(pick)
            why = "" if over else " (the check's budget is spent)"
            notes.append(
                f"bisection stopped after {len(probes)} probes{why} with {len(large)} blocks "
                f"still disagreeing; {len(pick)} of their elements checked elementwise"
            )
            break
        for k in sorted({b.group for b in large} - spot_tested):
            mine = [b for b in large if b.group == k]
            if sum(b.size for b in mine) <= 2 * LEAF_BLOCK:
                continue  # one halving from the elementwise pipeline: bisect outright
            spot_tested.add(k)
            spots = _spots(context, mine)
            tested = context.probe(spots, level)
            probes += tested
            failed = sum(not p.passed for p in tested)
            if failed >= len(tested) - 1:
                large = [b for b in large if b.group != k]
                spot = next((s for s, p in zip(spots, tested, strict=True) if not p.passed), None)
                found.spread(
                    context,
                    mine,
                    f"{len(mine)} block(s) at bisection level {level} and {failed} of "
                    f"{len(tested)} random blocks of {LEAF_BLOCK}",
                    spot,
                    level,
                )
        children = [half for b in large for half in context.split(b)]
        tested = context.probe(children, level)
        probes += tested
        frontier = []
        for i, parent in enumerate(large):
            dirty = [children[2 * i + j] for j in (0, 1) if not tested[2 * i + j].passed]
            if not dirty and parent not in retried:
                # Both halves agreed: a marginal error or an unlucky direction; probe once more.
                retried.add(parent)
                halves = context.split(parent)
                again = context.probe(list(halves), level)
                probes += again
                dirty = [halves[j] for j, p in enumerate(again) if not p.passed]
            if not dirty:
                suspects.append(_sample(context, [parent], LEAF_BLOCK))
                name, start, stop, _ = context.label(parent)
                notes.append(
                    f"{name}[{start}:{stop}] disagrees but neither half does: a marginal error, "
                    "sampled elementwise"
                )
            frontier += dirty
    if suspects and not notes:
        n = int(sum(len(s) for s in suspects))
        notes.append(
            f"bisection narrowed the disagreement to {n} element(s) in {len(suspects)} "
            f"block(s) with {len(probes)} probe(s)"
        )
    return suspects, probes, notes


def _dense_sample(nth: int) -> int:
    """Elements checked of the ``nth`` group found dense: :data:`DENSE_SAMPLE` for the
    first, one for each later one (the pattern is named from the first; each failing
    element costs a second reference and a kink test, ~20 evaluations)."""
    return DENSE_SAMPLE if nth == 1 else 1


def _spread_note(context: _Context, blocks: list[Block], seen: str, checked: int) -> str:
    return (
        f"{_group_name(context, blocks)}: the error is spread over its elements ({seen} "
        f"disagree); stopped localising, {checked} element(s) checked elementwise"
    )


def _sample(context: _Context, blocks: list[Block], size: int) -> NDArray[np.intp]:
    pool = np.concatenate([np.arange(b.start, b.stop) for b in blocks])
    return np.sort(context.rng.choice(pool, size=min(size, len(pool)), replace=False))


def _spots(context: _Context, blocks: list[Block]) -> list[Block]:
    """:data:`SPOT_BLOCKS` random runs of :data:`LEAF_BLOCK` elements inside ``blocks``."""
    spots = []
    for i in context.rng.choice(len(blocks), size=SPOT_BLOCKS, replace=True):
        block = blocks[int(i)]
        size = min(LEAF_BLOCK, block.size)
        start = block.start + int(context.rng.integers(0, block.size - size + 1))
        spots.append(Block(start, start + size, block.group))
    return spots


def _group_name(context: _Context, blocks: list[Block]) -> str:
    """The parameter (or parameters) the blocks of one top-level group lie in."""
    names = sorted({n for b in blocks for n in context.label(b)[3]}, key=str)
    return names[0] if len(names) == 1 else f"{names[0]} ... {names[-1]} ({len(names)} parameters)"
