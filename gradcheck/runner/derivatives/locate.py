"""Which output element a failing input element of a VJP is wrong for.

The scalar check of ``<u, f>`` names the wrong *input* element ``i``: the column
``e_i = J_vjp[:, i] - J[:, i]`` is off.  One reference column ``J[:, i]`` (one
complex-step evaluation of ``f``, or a Richardson ladder) and a few more VJP calls
name the *output* elements too.  The VJP's column is only seen through cotangents,
so the outputs are searched by group testing, as directional mode searches inputs:
the cotangent ``u`` restricted to half of the outputs, ``vjp(u_S)[i]`` against
``<u_S, J[:, i]>``; the halves that disagree are halved again, down to one-hot
cotangents ``vjp(e_j)[i]``, which are the entries ``J_vjp[j, i]`` themselves.  One
wrong output among ``m`` costs about ``2 log2(m)`` VJP calls; the search is
depth-first and stops after :data:`MAX_ENTRIES` wrong entries or
:data:`MAX_VJP_CALLS` calls.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.results import CheckResult, Diagnosis, JacobianEntry
from gradcheck.runner.derivatives.columns import (
    Columns,
    complex_columns,
    output_noise,
    richardson_columns,
)
from gradcheck.runner.derivatives.problem import DerivativeProblem
from gradcheck.verdict.tolerance import derived_tolerance, passes

__all__ = [
    "failing_elements",
    "reference_columns",
    "locate_outputs",
    "nonlinear_diagnosis",
    "transposed_rows",
    "Located",
    "MAX_TRACKED",
]

#: Failing input elements whose outputs are searched (the worst ones).
MAX_TRACKED = 3
#: Wrong entries named before the search stops.
MAX_ENTRIES = 6
#: Most VJP calls the search may spend.
MAX_VJP_CALLS = 64
#: Output blocks this small are tested one-hot, output by output.
LEAF_OUTPUTS = 2
#: Outputs named in a diagnosis before the rest are left out.
LISTED = 6


def failing_elements(problem: DerivativeProblem, result: CheckResult) -> NDArray[np.intp]:
    """Flat indices of the worst failing input elements (at most :data:`MAX_TRACKED`)."""
    flat, ratio = [], []
    for parameter in result.parameters:
        leaf = next(leaf for leaf in problem.space.leaves if leaf.name == parameter.name)
        where = np.flatnonzero(parameter.failed)
        with np.errstate(divide="ignore", invalid="ignore"):
            r = parameter.abs_error.reshape(-1)[where] / parameter.tolerance.reshape(-1)[where]
        flat.append(leaf.offset + where)
        ratio.append(np.nan_to_num(r, nan=np.inf))
    if not flat:
        return np.empty(0, dtype=np.intp)
    indices, ratios = np.concatenate(flat), np.concatenate(ratio)
    return np.asarray(indices[np.argsort(-ratios, kind="stable")][:MAX_TRACKED], dtype=np.intp)


def reference_columns(
    problem: DerivativeProblem, indices: NDArray[np.intp], *, complex_ok: bool
) -> Columns:
    """``J[:, i]`` for each index: complex step when the check trusted it, else Richardson."""
    function = problem.function()
    directions = []
    for i in indices:
        direction = np.zeros(problem.space.size)
        direction[int(i)] = 1.0
        directions.append(direction)
    scales = function.scales(indices)
    if complex_ok:
        return complex_columns(function, directions, scales)
    sigma, _ = output_noise(function, np.random.default_rng(problem.seed))
    return richardson_columns(function, directions, scales, sigma)


def _tolerance(
    weights: NDArray[np.float64], columns: Columns, eps: float, row: NDArray[np.float64]
) -> NDArray[np.float64]:
    """The derived tolerance of ``<w, J[:, i]>`` per tracked column (entries when one-hot).

    The analytic side's scale is the larger of the reference's ``sum |w_j J[j, i]|`` and
    the largest element of the whole product ``J^T w`` the VJP returned (its row, for a
    one-hot ``w``): a backward pass rounds on the scale of what it computes, also where
    the true entry is exactly 0.
    """
    magnitude = np.abs(weights)
    scale = np.maximum(magnitude @ np.abs(columns.derivative), float(np.max(np.abs(row))))
    return derived_tolerance(
        magnitude @ columns.error,
        eps,
        scale,
        underflow=float(np.finfo(np.float64).tiny),
        global_scale=float(np.max(scale)),
    )


@dataclass(frozen=True)
class Located:
    """What the search over outputs found.

    Attributes
    ----------
    entries : tuple of JacobianEntry
        Wrong entries, each seen with a one-hot cotangent.
    combined : tuple of str
        Outputs whose cotangents, together, give a wrong result although each alone
        gives the right entries: the VJP is not linear in its cotangent there.
    note : str
        How the search went, for the result's notes.
    """

    entries: tuple[JacobianEntry, ...]
    combined: tuple[str, ...]
    note: str


class _Search:
    """Depth-first group testing over the outputs (see the module docstring)."""

    def __init__(
        self,
        problem: DerivativeProblem,
        rows: Callable[[NDArray[np.float64]], NDArray[np.float64]],
        indices: NDArray[np.intp],
        columns: Columns,
    ) -> None:
        self.problem, self.rows, self.indices, self.columns = problem, rows, indices, columns
        self.eps = float(
            max(np.finfo(problem.space.dtype).eps, np.finfo(problem.outputs.dtype).eps)
        )
        self.calls = 0
        self.found: list[JacobianEntry] = []
        self.combined: list[str] = []

    def wrong(self, weights: NDArray[np.float64]) -> NDArray[np.bool_]:
        """Per tracked input element: does ``(J^T w)[i]`` miss ``<w, J[:, i]>``?"""
        row = self.rows(weights)
        self.calls += 1
        self.last = row[self.indices]
        self.tolerance = _tolerance(weights, self.columns, self.eps, row)
        return ~passes(self.last, weights @ self.columns.derivative, self.tolerance)

    def leaf(self, block: NDArray[np.intp], from_failing: bool) -> None:
        """One-hot cotangents: the entries ``J_vjp[j, i]`` themselves."""
        m = self.problem.outputs.size
        before = len(self.found)
        for j in block:
            one_hot = np.zeros(m)
            one_hot[j] = 1.0
            wrong = self.wrong(one_hot)
            self.found += [
                JacobianEntry(
                    self.problem.outputs.element_name(int(j)),
                    self.problem.element_name(int(self.indices[t])),
                    float(self.last[t]),
                    float(self.columns.derivative[j, t]),
                    float(self.tolerance[t]),
                    self.columns.method,
                )
                for t in np.flatnonzero(wrong)
            ]
        if from_failing and len(block) > 1 and len(self.found) == before:
            self.combined += [self.problem.outputs.element_name(int(j)) for j in block]

    def run(self) -> list[NDArray[np.intp]]:
        m, u = self.problem.outputs.size, self.problem.cotangent
        stack = [(np.arange(m), m > LEAF_OUTPUTS)]
        while stack and self.calls < MAX_VJP_CALLS and len(self.found) < MAX_ENTRIES:
            block, from_failing = stack.pop()
            if len(block) <= LEAF_OUTPUTS:
                self.leaf(block, from_failing)
                continue
            middle = len(block) // 2
            # Pushed second half first: the search goes down the first half first.
            for half in (block[middle:], block[:middle]):
                weights = np.zeros(m)
                weights[half] = u[half]
                if self.wrong(weights).any():
                    stack.append((half, True))
        return [block for block, _ in stack]


def locate_outputs(
    problem: DerivativeProblem,
    rows: Callable[[NDArray[np.float64]], NDArray[np.float64]],
    indices: NDArray[np.intp],
    columns: Columns,
    *,
    label: str = "vjp",
) -> Located:
    """The wrong entries ``(output j, input i)`` for the tracked input elements ``indices``.

    ``rows(w)`` is the user's transposed product ``J^T w`` at cotangent ``w``, flat
    over every input element (one VJP call).
    """
    search = _Search(problem, rows, indices, columns)
    left = search.run()
    found = tuple(search.found[:MAX_ENTRIES])
    more = bool(left) or len(search.found) >= MAX_ENTRIES
    note = (
        f"wrong outputs searched with {search.calls} {label} calls at restricted cotangents "
        f"against {len(indices)} reference column(s) ({columns.method}, "
        f"{columns.n_evaluations} evaluations)"
        + ("; the search stopped early, more entries may be wrong" if more else "")
    )
    return Located(found, tuple(dict.fromkeys(search.combined)), note)


def nonlinear_diagnosis(
    problem: DerivativeProblem, located: Located, indices: NDArray[np.intp], label: str
) -> Diagnosis:
    """The VJP is not linear in its cotangent: outputs wrong together, right one by one."""
    where = ", ".join(located.combined[:LISTED])
    inputs = ", ".join(problem.element_name(int(i)) for i in indices)
    return Diagnosis(
        "nonlinear-vjp",
        f"{label} is not linear in its cotangent: cotangents on {where} together give a wrong "
        f"gradient at {inputs}, yet each alone gives the right entries (an assignment where "
        "contributions must add up, dx[window] = ... instead of += with overlapping windows?)",
        "the restricted cotangent fails the derived tolerance; every one-hot cotangent in it "
        "passes",
        problem.inputs.differentiated_names,
        {
            "outputs": list(located.combined),
            "inputs": [problem.element_name(int(i)) for i in indices],
        },
    )


def transposed_rows(
    problem: DerivativeProblem, at: Callable[[NDArray[np.float64], Any], Any], role: str
) -> Callable[[NDArray[np.float64]], NDArray[np.float64]]:
    """``w -> J^T w``, flat, from a function ``at(w, tree)`` returning per-input values."""
    space = problem.space

    def rows(weights: NDArray[np.float64]) -> NDArray[np.float64]:
        per_input = at(weights, space.tree)
        flat = space.flatten_like(per_input, role=role)
        space.restore()
        return np.asarray(flat, dtype=np.float64)

    return rows
