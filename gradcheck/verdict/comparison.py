"""The working state of an elementwise comparison: references, errors, tolerances, verdicts.

:class:`Comparison` holds, for the elements a check compares, the reference
derivative, its error estimate and step, the method that produced it, and the
tolerance derived from them (:mod:`gradcheck.verdict.tolerance`).  Every phase
of the check records into it and asks it which elements still fail.  A check
that compares few elements of a large problem keeps its per-element state in
:class:`SparseVector` s, so memory grows with the elements compared, not with
the problem.
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.problem.space import ParameterSpace, working_eps
from gradcheck.references.base import Estimate
from gradcheck.results import ElementValues
from gradcheck.verdict.tolerance import (
    derived_tolerance,
    passes,
    resolution_target,
    user_tolerance,
)

__all__ = [
    "Comparison",
    "EvaluationCost",
    "SparseVector",
    "dense_vector",
    "method_code",
    "method_name",
    "subset",
]


def subset(estimate: Estimate, mask: NDArray[np.bool_]) -> Estimate:
    """The part of ``estimate`` at the elements where ``mask`` is True."""
    return Estimate(
        estimate.indices[mask],
        estimate.derivative[mask],
        estimate.error[mask],
        estimate.step[mask],
        estimate.n_evaluations,
        estimate.method,
    )


#: Reference method names stored per element as small codes (0: not checked).
METHOD_CODES: dict[str, int] = {}


def method_code(name: str) -> int:
    return METHOD_CODES.setdefault(name, len(METHOD_CODES) + 1)


def method_name(code: int) -> str:
    return next(name for name, c in METHOD_CODES.items() if c == code)


class EvaluationCost:
    """Loss evaluations spent per parameter (a few counters, not one per element)."""

    def __init__(self, space: ParameterSpace) -> None:
        self.space = space
        self.per_leaf = np.zeros(len(space.leaves), dtype=np.int64)

    def spend(self, indices: NDArray[np.intp], spent: int) -> None:
        """``spent`` evaluations (measured) were shared by the elements of ``indices``.

        Split between the parameters in proportion to their elements, rounded so that
        the parts add up to ``spent`` exactly: the per-parameter counts never exceed
        the objective's own counter, as assumed evaluations per element could.
        """
        leaves = self.space.leaf_of(np.asarray(indices, dtype=np.intp))
        if not len(leaves) or spent <= 0:
            return
        counts = np.bincount(leaves, minlength=len(self.per_leaf))
        shares = np.rint(np.cumsum(counts) * (spent / len(leaves))).astype(np.int64)
        self.per_leaf += np.diff(shares, prepend=0)


class SparseVector:
    """A flat float vector of length ``n`` that stores only the entries written (NaN elsewhere).

    Supports what :class:`Comparison` does with its per-element arrays: reading and
    writing at integer index arrays, and :meth:`dense` for the results.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.keys = np.empty(0, dtype=np.intp)  # sorted, unique
        self.values = np.empty(0)

    def _find(self, indices: NDArray[np.intp]) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
        at = np.searchsorted(self.keys, indices)
        found = at < len(self.keys)
        found[found] = self.keys[at[found]] == indices[found]
        return at, found

    def __getitem__(self, indices: Any) -> NDArray[np.float64]:
        indices = np.asarray(indices, dtype=np.intp)
        out = np.full(indices.shape, np.nan)
        at, found = self._find(indices)
        out[found] = self.values[at[found]]
        return out

    def __setitem__(self, indices: Any, values: Any) -> None:
        indices = np.asarray(indices, dtype=np.intp).reshape(-1)
        values = np.broadcast_to(np.asarray(values, dtype=np.float64), indices.shape)
        keys = np.union1d(self.keys, indices).astype(np.intp)
        merged = np.full(len(keys), np.nan)
        merged[np.searchsorted(keys, self.keys)] = self.values
        merged[np.searchsorted(keys, indices)] = values
        self.keys, self.values = keys, merged

    def dense(self) -> NDArray[np.float64]:
        out = np.full(self.n, np.nan)
        out[self.keys] = self.values
        return out


def dense_vector(vector: NDArray[np.float64] | SparseVector, n: int) -> NDArray[np.float64]:
    """The full vector of length ``n`` (NaN where nothing was recorded)."""
    if isinstance(vector, SparseVector):
        return vector.dense()
    return vector if len(vector) == n else np.full(n, np.nan)


class Comparison:
    """Mutable working state of one elementwise comparison.

    Everything computed from the per-element values (scales, tolerances) runs over the
    elements actually recorded, so a directional or sampled check of a large network
    does O(checked) work per step.  With ``sparse`` (few elements to check) the
    reference, error, step and tolerance are stored for those elements only and become
    full arrays (NaN where unchecked) only for the results.
    """

    def __init__(
        self,
        space: ParameterSpace,
        analytic: NDArray[Any],
        gradient_jitter: NDArray[np.float64] | None,
        *,
        sparse: bool = False,
    ) -> None:
        n = space.size
        self.gradient_jitter = gradient_jitter  # None until measured: no room for jitter yet
        self.space = space
        self.analytic = analytic.astype(np.float64, copy=False)

        self.reference: NDArray[np.float64] | SparseVector
        self.error: NDArray[np.float64] | SparseVector
        self.step: NDArray[np.float64] | SparseVector
        self.tolerance: NDArray[np.float64] | SparseVector
        if sparse:
            self.reference, self.error, self.step, self.tolerance = (
                SparseVector(n) for _ in range(4)
            )
        else:
            # Dense reference/error/step start empty: the first record either adopts a full
            # first pass's arrays or allocates them (see record()).
            self.reference = self.error = self.step = np.full(0, np.nan)
            self.tolerance = np.full(n, np.nan)
        # A first estimate of every element, in order, is adopted rather than copied.
        self._adoptable = not sparse
        self.checked = np.zeros(n, dtype=bool)
        self.method = np.zeros(n, dtype=np.int8)  # METHOD_CODES; 0 where nothing recorded
        self.kink = np.zeros(n, dtype=bool)
        self.recorded = np.array([], dtype=np.intp)  # sorted flat indices with an estimate
        self._tiny = np.array([float(np.finfo(leaf.dtype).tiny) for leaf in space.leaves])

    def eps(self, indices: NDArray[np.intp]) -> NDArray[np.float64]:
        return self.space.eps_at(indices)

    def jitter(self, indices: NDArray[np.intp]) -> NDArray[np.float64]:
        """The analytic gradient's measured jitter at ``indices`` (0 while unmeasured).

        Not the loss's rounding noise (that is ``sigma``, a property of the reference):
        how much the user's gradient moves when the parameters barely do.
        """
        if self.gradient_jitter is None:
            return np.zeros(len(indices))
        return self.gradient_jitter[indices]

    def underflow(self, indices: NDArray[np.intp]) -> NDArray[np.float64]:
        """The smallest normal number of each element's dtype."""
        return self._tiny[self.space.leaf_of(indices)]

    def record(self, estimate: Estimate, *, only_if_better: bool = False) -> None:
        """Store an estimate; with ``only_if_better``, only where its error estimate is smaller."""
        i = estimate.indices
        if self._adoptable and self._covers_all(i) and not only_if_better:
            # A full check's first pass: its arrays become the state (no second copy); the
            # estimate must not be read after later records change them.
            self.reference = np.asarray(estimate.derivative, dtype=np.float64)
            self.error = np.asarray(estimate.error, dtype=np.float64)
            self.step = np.asarray(estimate.step, dtype=np.float64)
            self.checked[:] = True
            self.method[:] = method_code(estimate.method)
            self.recorded = np.asarray(i, dtype=np.intp)
            self._adoptable = False
            return
        self._adoptable = False
        n = self.space.size
        if not isinstance(self.reference, SparseVector) and len(self.reference) != n:
            self.reference, self.error, self.step = (np.full(n, np.nan) for _ in range(3))
        if only_if_better:
            better = ~(estimate.error >= self.error[i])  # NaN (nothing yet) counts as worse
            estimate = subset(estimate, better)
            i = estimate.indices
        self.reference[i] = estimate.derivative
        self.error[i] = estimate.error
        self.step[i] = estimate.step
        self.checked[i] = True
        self.method[i] = method_code(estimate.method)
        self.recorded = np.union1d(self.recorded, i).astype(np.intp)

    def _covers_all(self, indices: NDArray[np.intp]) -> bool:
        n = self.space.size
        return len(indices) == n and (n == 0 or bool(np.all(indices == np.arange(n))))

    def _leaf_scales(self) -> NDArray[np.float64]:
        """Per parameter, max |reference| over its recorded finite elements (0 if none)."""
        scales = np.zeros(len(self.space.leaves))
        values = np.abs(self.reference[self.recorded])
        finite = np.isfinite(values)
        np.maximum.at(scales, self.space.leaf_of(self.recorded[finite]), values[finite])
        return scales

    def scale(self, indices: NDArray[np.intp]) -> NDArray[np.float64]:
        """Each element's parameter-wide gradient scale: max |reference| over its parameter."""
        return self._leaf_scales()[self.space.leaf_of(indices)]

    def global_scale(self) -> float:
        """The largest finite reference gradient anywhere in the problem."""
        return float(np.max(self._leaf_scales(), initial=0.0))

    def derived(self, indices: NDArray[np.intp], error: NDArray[np.float64]) -> NDArray[np.float64]:
        """The derived tolerance of ``indices`` for a reference with this error estimate."""
        indices = np.asarray(indices, dtype=np.intp)
        scales = self._leaf_scales()
        global_scale = float(np.max(scales, initial=0.0))
        if len(indices) > 1 and not np.all(indices[1:] >= indices[:-1]):
            return derived_tolerance(
                error,
                self.eps(indices),
                self.scale(indices),
                self.jitter(indices),
                self.underflow(indices),
                global_scale,
            )
        # Sorted indices: one run per parameter, whose eps, scale and tiny are numbers, so
        # a full check's tolerance costs a few arrays, not one per term.
        out = np.empty(len(indices))
        bounds = np.searchsorted(
            indices, [leaf.offset for leaf in self.space.leaves] + [self.space.size]
        )
        for k, leaf in enumerate(self.space.leaves):
            run = slice(bounds[k], bounds[k + 1])
            if run.start == run.stop:
                continue
            jitter = 0.0 if self.gradient_jitter is None else self.gradient_jitter[indices[run]]
            out[run] = derived_tolerance(
                error[run],
                working_eps(leaf.dtype),
                float(scales[k]),
                jitter,
                float(self._tiny[k]),
                global_scale,
            )
        return out

    def analytic_room(self, indices: NDArray[np.intp]) -> NDArray[np.float64]:
        """The derived tolerance with no reference error: the analytic gradient's own room."""
        return self.derived(indices, np.zeros(len(indices)))

    def judge(self, atol: float | None = None, rtol: float | None = None) -> None:
        """Set the tolerance of every recorded element: the user's ``atol``/``rtol``, or derived."""
        i = self.recorded
        if atol is not None or rtol is not None:
            self.tolerance[i] = user_tolerance(self.reference[i], atol, rtol)
        else:
            self.tolerance[i] = self.derived(i, self.error[i])

    def failing(self, indices: NDArray[np.intp]) -> NDArray[np.bool_]:
        """Which of ``indices`` fail the pass rule (kinks accepted as such do not)."""
        ok = passes(self.analytic[indices], self.reference[indices], self.tolerance[indices])
        return ~ok & ~self.kink[indices]

    def unresolved(self, indices: NDArray[np.intp]) -> NDArray[np.bool_]:
        target = resolution_target(self.eps(indices), self.scale(indices))
        return self.tolerance[indices] > target

    def element_values(self) -> ElementValues:
        """The per-element values for the results, shared by every parameter's result.

        A full check hands over its arrays as they are; a check that recorded few
        elements (directional, sampled, or a full check whose first pass was not one
        record) keeps the recorded, compared and kinked elements only.
        """
        n = self.space.size
        starts = np.array([leaf.offset for leaf in self.space.leaves] + [n], dtype=np.intp)
        stored = (self.reference, self.error, self.tolerance, self.step)
        if all(isinstance(v, np.ndarray) and len(v) == n for v in stored):
            reference, error, tolerance, step = (np.asarray(v) for v in stored)
            return ElementValues(
                self.analytic,
                starts,
                None,
                reference,
                error,
                tolerance,
                step,
                self.checked.copy(),
                self.kink.copy(),
            )
        keys = np.union1d(self.recorded, np.flatnonzero(self.checked | self.kink)).astype(np.intp)

        def at(vector: NDArray[np.float64] | SparseVector) -> NDArray[np.float64]:
            if isinstance(vector, SparseVector) or len(vector) == n:
                return np.asarray(vector[keys], dtype=np.float64)
            return np.full(len(keys), np.nan)  # nothing recorded in this array

        reference, error, tolerance, step = (at(v) for v in stored)
        return ElementValues(
            self.analytic,
            starts,
            keys,
            reference,
            error,
            tolerance,
            step,
            self.checked[keys],
            self.kink[keys],
        )

    def methods(self) -> list[str]:
        """Per parameter, the references that decided its checked elements, most used first
        (``none`` where none was checked), in one pass over the checked elements."""
        checked = np.flatnonzero(self.checked)
        n_leaves, n_codes = len(self.space.leaves), len(METHOD_CODES) + 1
        counts = np.bincount(
            self.space.leaf_of(checked) * n_codes + self.method[checked],
            minlength=n_leaves * n_codes,
        ).reshape(n_leaves, n_codes)
        names = []
        for row in counts:
            used = [(int(n), method_name(code)) for code, n in enumerate(row) if code and n]
            used.sort(key=lambda pair: -pair[0])
            names.append("+".join(name for _, name in used) or "none")
        return names
