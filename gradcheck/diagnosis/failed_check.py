"""What a diagnosis looks at: the failed check (:class:`FailedCheck`), split by parameter.

:class:`FailedCheck` is the input of :func:`gradcheck.diagnosis.diagnose`, built by the runner
from a failed comparison: flat arrays over all elements, plus the loss and gradient functions
for the few extra evaluations some patterns spend.  :class:`SplitCheck` is the same check split
into parameters, each in its own shape (:class:`ParameterArrays`), which is how the bug patterns
read it.  :func:`validate_layer_inputs` checks the optional ``layer_inputs`` that tell a
diagnosis each layer's input ``a_prev``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.errors import InvalidParameterError, ParameterTypeError
from gradcheck.problem.objective import Objective
from gradcheck.problem.space import Leaf, ParameterSpace
from gradcheck.results import format_index
from gradcheck.verdict.tolerance import passes

__all__ = [
    "FailedCheck",
    "ParameterArrays",
    "SplitCheck",
    "validate_layer_inputs",
    "LISTED_ELEMENTS",
]

_F64 = NDArray[np.float64]

#: Elements named in a diagnosis before "and N more": enough to see a pattern (a row, a
#: column), few enough to read on one line.
LISTED_ELEMENTS = 6


@dataclass(frozen=True, eq=False)
class FailedCheck:
    """A failed check as the diagnosis sees it: flat arrays over all elements, and the functions.

    Attributes
    ----------
    space : ParameterSpace
        The parameters: names, shapes and where each sits in the flat arrays.
    analytic, reference, tolerance : ndarray
        Flat over all elements; ``reference`` is NaN where unchecked.
    checked, failed : ndarray of bool
        Flat masks of the elements compared and of those that mismatched.
    objective : Objective
        The loss, to spend a few extra evaluations.
    grad : callable
        The user's gradient, likewise.
    layer_inputs : mapping of str to ndarray, optional
        ``a_prev`` of the layer each weight parameter belongs to, shape ``(n, fan_in)``.
    """

    space: ParameterSpace
    analytic: _F64
    reference: _F64
    tolerance: _F64
    checked: NDArray[np.bool_]
    failed: NDArray[np.bool_]
    objective: Objective
    grad: Callable[[Any], Any]
    layer_inputs: Mapping[str, NDArray[Any]] | None = field(default=None)


@dataclass(frozen=True, eq=False)
class ParameterArrays:
    """One parameter's part of a :class:`FailedCheck`, every array in the parameter's shape.

    Attributes
    ----------
    leaf : Leaf
        The parameter: name, shape, dtype, place in the flat arrays.
    analytic, reference, tolerance : ndarray
        As in :class:`FailedCheck`; ``analytic`` as float64.
    checked, failed : ndarray of bool
        As in :class:`FailedCheck`.
    """

    leaf: Leaf
    analytic: _F64
    reference: _F64
    tolerance: _F64
    checked: NDArray[np.bool_]
    failed: NDArray[np.bool_]

    @property
    def name(self) -> str:
        """The parameter's path."""
        return self.leaf.name

    def matches(self, candidate: _F64, tolerance: _F64 | None = None) -> bool:
        """Whether ``candidate`` matches the reference within tolerance at every checked element.

        ``tolerance`` replaces the parameter's own (a caller's room for extra rounding).  False
        when no checked element has a finite reference: no evidence is no match.
        """
        tolerance = self.tolerance if tolerance is None else tolerance
        good = passes(candidate, self.reference, tolerance)
        mask = self.checked & np.isfinite(self.reference)
        return bool(mask.any() and np.all(good[mask]))


class SplitCheck:
    """A :class:`FailedCheck` split by parameter, as the bug patterns read it.

    Attributes
    ----------
    failed_check : FailedCheck
        The whole check, for the patterns that evaluate the loss or gradient again.
    parts : list of ParameterArrays
        Every parameter, in the order of the space.
    failing : list of ParameterArrays
        The parameters with at least one failed element.
    layer_inputs : dict of str to ndarray
        ``a_prev`` per weight parameter, as float64 (empty when not given).
    n_samples : int or None
        The batch size when the layer inputs tell it (all with the same number of rows).
    """

    def __init__(self, failed_check: FailedCheck) -> None:
        self.failed_check = failed_check
        self.parts = [_parameter_arrays(failed_check, leaf) for leaf in failed_check.space.leaves]
        self.failing = [p for p in self.parts if p.failed.any()]
        inputs = failed_check.layer_inputs or {}
        self.layer_inputs = {k: np.asarray(v, dtype=np.float64) for k, v in inputs.items()}
        sizes = {v.shape[0] for v in self.layer_inputs.values() if v.ndim == 2}
        self.n_samples: int | None = sizes.pop() if len(sizes) == 1 else None

    @property
    def dimensions(self) -> tuple[int, ...]:
        """Every size above 1 of a parameter's axes (and the batch size), sorted: the ``d`` and
        ``n`` a constant factor may be made of."""
        sizes = {n for p in self.parts for n in p.analytic.shape if n > 1}
        if self.n_samples is not None and self.n_samples > 1:
            sizes.add(self.n_samples)
        return tuple(sorted(sizes))

    def values(self, part: ParameterArrays) -> _F64:
        """The parameter's values at the checked point, in its shape, as float64."""
        x0 = self.failed_check.objective.x0
        return np.asarray(x0[part.leaf.slice].reshape(part.leaf.shape), dtype=np.float64)

    def bias_of(self, part: ParameterArrays) -> ParameterArrays | None:
        """The parameter after the 2-D ``part`` when it has the shape of ``part``'s bias."""
        index = self.parts.index(part)
        if part.analytic.ndim == 2 and index + 1 < len(self.parts):
            other = self.parts[index + 1]
            if other.analytic.shape == (part.analytic.shape[1],):
                return other
        return None

    def where(self, part: ParameterArrays, mask: NDArray[np.bool_]) -> str:
        """The elements of ``part`` in ``mask``, named (``weight1[2, 0], ...``) and counted."""
        indices = [tuple(int(i) for i in idx) for idx in np.argwhere(mask)]
        text = ", ".join(f"{part.name}{format_index(i)}" for i in indices[:LISTED_ELEMENTS])
        more = len(indices) - LISTED_ELEMENTS
        return text + (f" and {more} more" if more > 0 else "")


def _parameter_arrays(failed_check: FailedCheck, leaf: Leaf) -> ParameterArrays:
    def shaped(flat: NDArray[Any]) -> NDArray[Any]:
        return flat[leaf.slice].reshape(leaf.shape)

    return ParameterArrays(
        leaf,
        shaped(failed_check.analytic).astype(np.float64),
        shaped(failed_check.reference),
        shaped(failed_check.tolerance),
        shaped(failed_check.checked),
        shaped(failed_check.failed),
    )


def validate_layer_inputs(
    layer_inputs: Any, space: ParameterSpace
) -> dict[str, NDArray[np.float64]] | None:
    """Check :func:`gradcheck.check`'s ``layer_inputs``: weight name -> ``(n, fan_in)`` array.

    Parameters
    ----------
    layer_inputs : mapping of str to array_like, or None
        ``a_prev`` of the layer of each named 2-D weight.
    space : ParameterSpace
        The parameters the names refer to.

    Returns
    -------
    dict of str to ndarray, or None
        The arrays as float64; None when ``layer_inputs`` is None.

    Raises
    ------
    ParameterTypeError
        Not a mapping, or an entry that is not a real 2-D array.
    InvalidParameterError
        An unknown or non-2-D parameter, a wrong ``fan_in``, or batch sizes that differ.
    """
    if layer_inputs is None:
        return None
    if not isinstance(layer_inputs, Mapping):
        raise ParameterTypeError(
            f"layer_inputs: expected a mapping of weight name to a_prev, got "
            f"{type(layer_inputs).__name__}"
        )
    leaves = {leaf.name: leaf for leaf in space.leaves}
    out: dict[str, NDArray[np.float64]] = {}
    for name, value in layer_inputs.items():
        if name not in leaves:
            raise InvalidParameterError(
                f"layer_inputs: {name!r} is not a parameter (parameters are "
                f"{', '.join(map(repr, leaves))})"
            )
        try:
            array = np.asarray(value, dtype=np.float64)
        except (TypeError, ValueError) as exc:
            raise ParameterTypeError(f"layer_inputs[{name!r}]: not a real array ({exc})") from None
        shape = leaves[name].shape
        fan_in = shape[0] if len(shape) == 2 else "fan_in"
        if len(shape) != 2 or array.ndim != 2 or array.shape[1] != shape[0]:
            raise InvalidParameterError(
                f"layer_inputs[{name!r}]: must be a 2-D (n_samples, {fan_in}) array for a 2-D "
                f"weight; the weight has shape {shape}, the array {array.shape}"
            )
        out[name] = array
    if len({a.shape[0] for a in out.values()}) > 1:
        raise InvalidParameterError("layer_inputs: the arrays have different numbers of samples")
    return out
