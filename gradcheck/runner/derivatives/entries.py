"""Every entry of a Jacobian judged on its own, by the verdict of the scalar check.

A full Jacobian (or JVP, or Hessian) check compares the user's ``J[j, i]`` with the
reference column ``J[:, i]`` entry by entry.  The entries are laid out as blocks,
one per (output, input) pair of shape ``out.shape + input.shape`` (``d out / d x``),
in a :class:`~gradcheck.problem.space.ParameterSpace` of their own, so the scalar
check's per-element verdict state (:class:`~gradcheck.verdict.comparison.Comparison`:
the derived tolerance, the pass rule), its results and its diagnosis apply to them
unchanged: a transposed Jacobian is a transposed 2-D "parameter".

The references are the columns (:mod:`.columns`): captured from the scalar check's
own evaluations when it ran in this process (:class:`.projection.Capture`), else
computed.  As in the scalar check, entries that fail the first reference get a
second one, Richardson extrapolation, which decides them
(:func:`second_reference`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.diagnosis import FailedCheck, diagnose
from gradcheck.problem.objective import Objective
from gradcheck.problem.space import ParameterSpace
from gradcheck.references.base import Estimate
from gradcheck.references.complex_step import COMPLEX_ROUNDING
from gradcheck.references.finite_difference import ROUNDOFF_SIGMAS
from gradcheck.results import Diagnosis, JacobianEntry, ParameterResult
from gradcheck.runner.derivatives.columns import Columns, VectorFunction, richardson_columns
from gradcheck.runner.derivatives.layout import Outputs
from gradcheck.runner.phases import parameter_results
from gradcheck.verdict.comparison import Comparison, dense_vector, subset

__all__ = ["Blocks", "EntryCheck", "judge_entries", "second_reference", "SHOWN_ENTRIES"]

#: Wrong entries listed in a result (the worst ones; the blocks hold them all).
SHOWN_ENTRIES = 6


class Blocks:
    """The entries of ``J`` (``m x n``) as blocks ``d out / d input`` in a parameter space.

    Parameters
    ----------
    outputs : Outputs
        The output leaves (rows of ``J``).
    space : ParameterSpace
        The differentiated inputs (columns of ``J``).
    """

    def __init__(self, outputs: Outputs, space: ParameterSpace) -> None:
        trees: dict[str, NDArray[Any]] = {}
        rows, cols = [], []
        dtype = np.result_type(outputs.dtype, space.dtype)
        for k, (out_name, out_shape) in enumerate(zip(outputs.names, outputs.shapes, strict=True)):
            out_rows = np.arange(outputs.offsets[k], outputs.offsets[k + 1])
            for leaf in space.leaves:
                trees[f"d {out_name} / d {leaf.name}"] = np.zeros(out_shape + leaf.shape, dtype)
                in_cols = np.arange(leaf.offset, leaf.offset + leaf.size)
                rows.append(np.repeat(out_rows, leaf.size))
                cols.append(np.tile(in_cols, len(out_rows)))
        #: The blocks as "parameters": zeros (the Jacobian's values are the analytic ones).
        self.space = ParameterSpace(trees)
        #: Per entry (flat over the blocks): its output element and input element.
        self.row = np.concatenate(rows).astype(np.intp)
        self.col = np.concatenate(cols).astype(np.intp)
        self.outputs = outputs
        self.inputs = space

    def entries(self, matrix: NDArray[Any]) -> NDArray[np.float64]:
        """An ``m x n`` matrix (or ``m x k`` over columns ``cols``) as the flat entry vector."""
        return np.asarray(matrix[self.row, self.col], dtype=np.float64)

    def of_columns(self, columns: NDArray[np.intp]) -> NDArray[np.intp]:
        """The entries (flat indices) of the given input columns."""
        return np.flatnonzero(np.isin(self.col, columns)).astype(np.intp)

    def label(self, entry: int) -> tuple[str, str]:
        """``("out[3]", "inputs[0][2, 1]")`` for an entry."""
        leaf, index = self.inputs.leaf_index(int(self.col[entry]))
        from gradcheck.results import format_index

        name = leaf.name + (format_index(index) if leaf.shape else "")
        return self.outputs.element_name(int(self.row[entry])), name


@dataclass
class EntryCheck:
    """The entrywise verdict state of one Jacobian check."""

    blocks: Blocks
    state: Comparison
    columns: NDArray[np.intp]  # the input columns compared
    first_method: str
    n_evaluations: int


def _estimate(blocks: Blocks, columns: NDArray[np.intp], found: Columns) -> Estimate:
    """The column estimates as an :class:`Estimate` over their entries."""
    matrix = np.full((blocks.outputs.size, blocks.inputs.size), np.nan)
    errors = np.full_like(matrix, np.nan)
    steps = np.full(blocks.inputs.size, np.nan)
    matrix[:, columns], errors[:, columns] = found.derivative, found.error
    steps[columns] = found.step
    at = blocks.of_columns(columns)
    return Estimate(
        at,
        blocks.entries(matrix)[at],
        blocks.entries(errors)[at],
        steps[blocks.col[at]],
        found.n_evaluations,
        found.method,
    )


def complex_error(found: Columns, eps: float) -> Columns:
    """Captured complex-step columns with the complex step's own error estimate."""
    scale = float(np.max(np.abs(found.derivative), initial=0.0))
    error = COMPLEX_ROUNDING * eps * np.maximum(np.abs(found.derivative), scale)
    return Columns(found.derivative, error, found.step, found.n_evaluations, found.method)


def central_error(found: Columns, sigma: NDArray[np.float64]) -> Columns:
    """Captured central-difference columns with their roundoff bound per output."""
    error = ROUNDOFF_SIGMAS * sigma[:, None] / found.step[None, :]
    return Columns(found.derivative, error, found.step, found.n_evaluations, found.method)


def judge_entries(
    blocks: Blocks,
    analytic: NDArray[Any],
    columns: NDArray[np.intp],
    first: Columns,
    options: Any,
) -> EntryCheck:
    """The first pass over the entries of ``columns``: record the reference, judge."""
    state = Comparison(blocks.space, blocks.entries(analytic), None)
    state.record(_estimate(blocks, columns, first))
    state.judge(options.atol, options.rtol)
    return EntryCheck(blocks, state, columns, first.method, first.n_evaluations)


def second_reference(
    check: EntryCheck,
    function: VectorFunction,
    sigma: Callable[[], NDArray[np.float64]],
    options: Any,
) -> None:
    """Richardson extrapolation for the columns holding doubtful entries; it decides them.

    Doubtful: failing, or, after central differences, passing only under a tolerance too
    coarse to mean anything (the scalar check's "unresolved" elements).  After a complex
    step Richardson decides only where it disagrees with the complex step by more than
    its own derived tolerance (the function is not complex-analytic there), or below
    float64 (as the scalar check's second reference does).
    """
    state, blocks = check.state, check.blocks
    if options.user_tolerance:
        return
    at = blocks.of_columns(check.columns)
    failing = at[state.failing(at)]
    doubtful = failing
    if check.first_method == "central":
        doubtful = np.union1d(failing, at[state.unresolved(at)])
    if not len(doubtful):
        return
    columns = np.unique(blocks.col[doubtful])
    directions = []
    for i in columns:
        direction = np.zeros(blocks.inputs.size)
        direction[int(i)] = 1.0
        directions.append(direction)
    refined = _estimate(
        blocks,
        columns,
        richardson_columns(function, directions, function.scales(columns), sigma()),
    )
    check.n_evaluations += refined.n_evaluations
    if check.first_method == "complex":
        disagree = np.abs(refined.derivative - state.reference[refined.indices]) > state.derived(
            refined.indices, refined.error
        )
        narrow = state.eps(refined.indices) > np.finfo(np.float64).eps
        state.record(subset(refined, disagree | narrow))
    else:
        was_failing = np.isin(refined.indices, failing)
        state.record(subset(refined, was_failing))
        state.record(subset(refined, ~was_failing), only_if_better=True)
    state.judge(options.atol, options.rtol)


def excuse_kinks(check: EntryCheck, kink_columns: NDArray[np.intp]) -> None:
    """Entries in columns the scalar check accepted as kinks are kinks (already a hazard)."""
    at = check.blocks.of_columns(kink_columns)
    check.state.kink[at] = True


def block_results(check: EntryCheck, source: str) -> tuple[ParameterResult, ...]:
    """One :class:`ParameterResult` per block, evaluations counted per input's columns."""
    blocks = check.blocks
    cost = np.zeros(len(blocks.space.leaves), dtype=np.int64)
    per_column = check.n_evaluations / max(len(check.columns), 1)
    for k, leaf in enumerate(blocks.space.leaves):
        cols = np.unique(blocks.col[leaf.slice])
        cost[k] = int(round(per_column * np.isin(cols, check.columns).sum()))
    return parameter_results(blocks.space, check.state, cost, source)


def wrong_entries(
    check: EntryCheck, results: tuple[ParameterResult, ...]
) -> tuple[JacobianEntry, ...]:
    """The worst wrong entries, named by output and input element."""
    state, blocks = check.state, check.blocks
    failed = np.concatenate([p.failed.reshape(-1) for p in results])
    at = np.flatnonzero(failed)
    if not len(at):
        return ()
    tolerance = dense_vector(state.tolerance, blocks.space.size)[at]
    reference = dense_vector(state.reference, blocks.space.size)[at]
    analytic = state.analytic[at]
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.nan_to_num(np.abs(analytic - reference) / tolerance, nan=np.inf)
    methods = {p.name: p.method for p in results}
    found = []
    for k in np.argsort(-ratio, kind="stable")[:SHOWN_ENTRIES]:
        entry = int(at[k])
        output, element = blocks.label(entry)
        leaf, _ = blocks.space.leaf_index(entry)
        found.append(
            JacobianEntry(
                output,
                element,
                float(analytic[k]),
                float(reference[k]),
                float(tolerance[k]),
                methods[leaf.name],
            )
        )
    return tuple(found)


#: Diagnoses read from the blocks' arrays alone (analytic against reference), which hold for
#: a Jacobian block as for a gradient.  The others read the parameters' values or evaluate the
#: loss again: a block has neither (its stand-in values are zeros), so they are not trusted.
ARRAY_PATTERNS = frozenset(
    {
        "non-finite",
        "precision",
        "swapped",
        "sign-flip",
        "partial-sign-flip",
        "constant-factor",
        "transposed",
        "few-elements",
        "zeroed",
    }
)


def diagnose_entries(
    check: EntryCheck, results: tuple[ParameterResult, ...], fallback: Diagnosis | None
) -> Diagnosis:
    """The diagnosis of the wrong entries, each block read as a parameter.

    The patterns read the blocks' arrays (sign, factor, transpose, few elements...);
    only those are kept (:data:`ARRAY_PATTERNS`).  The patterns that read parameter
    values or evaluate the loss again find a stand-in (zero values, a constant loss,
    the analytic Jacobian as a gradient that never moves), so what they say is
    replaced by ``fallback``, the scalar check's own diagnosis (made with the real
    functions), or by "no known pattern": a wrong name is worse than none.
    """
    blocks, state = check.blocks, check.state
    analytic = state.analytic
    stand_in = Objective(_Zero(), blocks.space)
    found = diagnose(
        FailedCheck(
            space=blocks.space,
            analytic=analytic,
            reference=dense_vector(state.reference, blocks.space.size),
            tolerance=dense_vector(state.tolerance, blocks.space.size),
            checked=state.checked,
            failed=np.concatenate([p.failed.reshape(-1) for p in results]),
            objective=stand_in,
            grad=_Constant(blocks.space.split(analytic)),
        )
    )
    if found.kind in ARRAY_PATTERNS:
        return found
    if fallback is not None and fallback.kind not in ("unknown", "inconclusive", "hazard"):
        return fallback
    names = tuple(p.name for p in results if not p.passed)
    return Diagnosis(
        "unknown",
        "no known bug pattern fits the wrong entries",
        f"{sum(p.n_failed for p in results)} entries of {', '.join(names)} fail",
        names,
    )


class _Zero:
    def __call__(self, tree: Any) -> float:
        return 0.0


class _Constant:
    def __init__(self, value: Any) -> None:
        self.value = value

    def __call__(self, tree: Any) -> Any:
        return self.value
