"""Parameter trees: named leaves of nested dicts, lists and tuples of arrays.

Users hand gradcheck parameters in whatever structure their code uses: one
array, ``{"weight1": W1, "weight2": W2}``, ``{"layers": [{"weight": W, "bias": b}]}``.
:class:`ParameterSpace` walks that structure once, gives every leaf a readable
path (``layers[1].weight``), validates and copies it, and maps between the
tree and one flat index space of all elements, which is what the references
perturb.  The user's arrays are copied on the way in and never written to.
"""

from __future__ import annotations

import numbers
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.errors import (
    GradientStructureError,
    InvalidParameterError,
    ParameterTypeError,
)

__all__ = ["Leaf", "ParameterSpace", "ROOT_NAME"]

#: The name given to the parameters when they are one bare array.
ROOT_NAME = "params"


@dataclass(frozen=True)
class Leaf:
    """One parameter array of a tree: its path, shape, dtype and place in the flat index."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    offset: int

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64))

    @property
    def slice(self) -> slice:
        return slice(self.offset, self.offset + self.size)


def _is_container(node: Any) -> bool:
    if isinstance(node, Mapping):
        return True
    if isinstance(node, (list, tuple)):
        # A list of numbers is an array; a list holding arrays or mappings is a container.
        return any(not _is_number_like(item) for item in node)
    return False


def _is_number_like(node: Any) -> bool:
    if isinstance(node, (numbers.Number, np.generic)):
        return True
    if isinstance(node, (list, tuple)):
        return all(_is_number_like(item) for item in node)
    return False


def _join(prefix: str, key: Any, *, index: bool) -> str:
    if index:
        return f"{prefix}[{key}]" if prefix else f"[{key}]"
    return f"{prefix}.{key}" if prefix else str(key)


def walk_leaves(node: Any, prefix: str) -> Iterator[tuple[str, Any]]:
    if isinstance(node, Mapping):
        if not node:
            raise InvalidParameterError(f"parameters: {prefix or 'the mapping'} is empty")
        for key, value in node.items():
            yield from walk_leaves(value, _join(prefix, key, index=False))
    elif _is_container(node):
        for i, value in enumerate(node):
            yield from walk_leaves(value, _join(prefix, i, index=True))
    else:
        yield (prefix or ROOT_NAME), node


def _rebuild(node: Any, leaves: Iterator[Any]) -> Any:
    """``node``'s structure with its leaves taken from ``leaves`` in order.

    A module-level function, not a closure over itself: a self-referencing closure is a
    reference cycle that would keep every tree built (one per loss evaluation) alive until
    the garbage collector runs.
    """
    if isinstance(node, Mapping):
        return {key: _rebuild(value, leaves) for key, value in node.items()}
    if _is_container(node):
        items = [_rebuild(value, leaves) for value in node]
        return tuple(items) if isinstance(node, tuple) else items
    return next(leaves)


def _as_float_array(name: str, value: Any, *, role: str) -> NDArray[Any]:
    try:
        array = np.asarray(value)
    except Exception as exc:  # noqa: BLE001 - any conversion failure is the caller's input
        raise ParameterTypeError(
            f"{role} {name!r}: cannot be converted to a numpy array ({exc})"
        ) from exc
    if array.dtype == object:
        raise ParameterTypeError(f"{role} {name!r}: has dtype object; expected a float array")
    if role == "parameter":
        if np.issubdtype(array.dtype, np.complexfloating):
            raise ParameterTypeError(
                f"parameter {name!r}: has complex dtype {array.dtype}; gradcheck checks "
                "gradients of real parameters"
            )
        if not np.issubdtype(array.dtype, np.floating):
            raise ParameterTypeError(
                f"parameter {name!r}: has dtype {array.dtype}; a gradient needs a "
                "floating-point parameter (convert it, e.g. with .astype(float))"
            )
        if not np.all(np.isfinite(array)):
            bad = np.argwhere(~np.isfinite(array))[0]
            raise InvalidParameterError(
                f"parameter {name!r}: contains a non-finite value at index "
                f"{tuple(int(i) for i in bad)}"
            )
    return array


class ParameterSpace:
    """The parameters of one check: named leaves, private working copies, a flat index.

    Parameters
    ----------
    params : array_like or nested mapping/sequence of array_like
        The user's parameters.  They are copied; the copies are what the
        loss is evaluated at.

    Attributes
    ----------
    leaves : tuple of Leaf
        One entry per parameter array, in the order of the tree.
    size : int
        Total number of scalar parameters.
    """

    def __init__(self, params: Any) -> None:
        named = list(walk_leaves(params, ""))
        if not named:
            raise InvalidParameterError("parameters: no parameter arrays were given")
        leaves: list[Leaf] = []
        arrays: list[NDArray[Any]] = []
        offset = 0
        seen: set[str] = set()
        for name, value in named:
            if name in seen:
                raise InvalidParameterError(f"parameters: two parameters are both named {name!r}")
            seen.add(name)
            array = np.array(_as_float_array(name, value, role="parameter"), order="C", copy=True)
            leaves.append(Leaf(name, tuple(array.shape), array.dtype, offset))
            arrays.append(array)
            offset += array.size
        self._structure = params
        self.leaves: tuple[Leaf, ...] = tuple(leaves)
        self.size = offset
        # The original values, once: as one flat read-only vector in the widest dtype, whose
        # pieces are the per-leaf originals when every leaf has that dtype (the usual case).
        dtype = np.result_type(*(leaf.dtype for leaf in leaves))
        self.x0: NDArray[Any] = np.concatenate([a.reshape(-1) for a in arrays], dtype=dtype)
        #: The original value of each leaf (read-only; restore() copies them back).
        self.originals: tuple[NDArray[Any], ...]
        if all(leaf.dtype == dtype for leaf in leaves):
            self.originals = tuple(self.x0[leaf.slice].reshape(leaf.shape) for leaf in leaves)
        else:
            self.originals = tuple(a.copy() for a in arrays)
        self.x0.setflags(write=False)
        #: Working copies handed to the user's functions; perturbed in place.
        self.arrays: tuple[NDArray[Any], ...] = tuple(arrays)
        #: The working copies as flat views (one element moved in place per evaluation).
        self.flat_views = tuple(a.reshape(-1) for a in self.arrays)
        self.tree = self.build(self.arrays)
        # Leaf k holds flat indices [offset_k, offset_k + size_k): a sorted search over the
        # offsets finds an element's leaf without an N-sized lookup table.
        self._offsets = np.array([leaf.offset for leaf in leaves], dtype=np.intp)
        self._leaf_eps = np.array([np.finfo(leaf.dtype).eps for leaf in leaves], dtype=np.float64)

    # -- structure -------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(leaf.name for leaf in self.leaves)

    @property
    def dtype(self) -> np.dtype[Any]:
        """The widest floating dtype among the leaves."""
        return np.result_type(*(leaf.dtype for leaf in self.leaves))

    def build(self, arrays: tuple[NDArray[Any], ...] | list[NDArray[Any]]) -> Any:
        """Return a tree of the user's structure whose leaves are ``arrays`` (in leaf order)."""
        return _rebuild(self._structure, iter(arrays))

    def leaf_index(self, flat_index: int) -> tuple[Leaf, tuple[int, ...]]:
        """Return the leaf holding ``flat_index`` and the element's index within it."""
        leaf = self.leaves[int(self.leaf_of(flat_index))]
        local = int(flat_index) - leaf.offset
        return leaf, tuple(
            int(i) for i in np.unravel_index(local, leaf.shape)
        ) if leaf.shape else ()

    # -- flat vectors (the original values are ``x0``) ---------------------------------
    def unflatten(self, vector: NDArray[Any], *, dtype: Any = None) -> Any:
        """A new tree (fresh arrays) holding ``vector``; leaves keep their dtype by default."""
        vector = np.asarray(vector)
        arrays = [
            vector[leaf.slice].reshape(leaf.shape).astype(dtype or leaf.dtype, copy=True)
            for leaf in self.leaves
        ]
        return self.build(arrays)

    def element(self, flat_index: int) -> tuple[NDArray[Any], int]:
        """The flat view of the working leaf holding ``flat_index`` and the local index."""
        k = int(self.leaf_of(flat_index))
        return self.flat_views[k], int(flat_index) - self.leaves[k].offset

    def leaf_of(self, flat_index: Any) -> Any:
        """The position in :attr:`leaves` of the leaf holding each flat index."""
        # side="right" skips empty leaves, which share their offset with the next leaf.
        return np.searchsorted(self._offsets, flat_index, side="right") - 1

    def eps_at(self, indices: NDArray[np.intp]) -> NDArray[np.float64]:
        """Machine epsilon of the dtype of each element in ``indices``."""
        return self._leaf_eps[self.leaf_of(np.asarray(indices, dtype=np.intp))]

    def eps(self) -> NDArray[np.float64]:
        """Machine epsilon of each element's own dtype, as a flat vector."""
        return np.concatenate(
            [np.full(leaf.size, np.finfo(leaf.dtype).eps, dtype=np.float64) for leaf in self.leaves]
        )

    def restore(self, *, force: bool = False) -> bool:
        """Put the original values back into the working copies; True if any had changed.

        With ``force`` they are copied back without comparing (after gradcheck itself
        moved them), and the return value is False.
        """
        if force:
            for array, original in zip(self.arrays, self.originals, strict=True):
                array[...] = original
            return False
        changed = False
        for array, original in zip(self.arrays, self.originals, strict=True):
            # Bitwise: any write counts, and comparing the raw words is ~10x faster than a
            # NaN-aware float comparison (this runs after every call of the user's functions).
            words = np.dtype(f"u{array.itemsize}" if array.itemsize in (2, 4, 8) else "u1")
            if not np.array_equal(array.reshape(-1).view(words), original.reshape(-1).view(words)):
                changed = True
                array[...] = original
        return changed

    # -- gradients -------------------------------------------------------------------
    def flatten_like(self, tree: Any, *, role: str = "gradient") -> NDArray[Any]:
        """Validate that ``tree`` has this structure and return it as a flat vector.

        Raises
        ------
        GradientStructureError
            If a parameter is missing, an extra one is present, or a shape differs.
        """
        try:
            named = dict(walk_leaves(tree, ""))
        except InvalidParameterError as exc:
            raise GradientStructureError(f"{role}: {exc}") from None
        missing = [leaf.name for leaf in self.leaves if leaf.name not in named]
        extra = [name for name in named if name not in set(self.names)]
        if missing:
            hint = f" (it has {', '.join(map(repr, extra))})" if extra else ""
            raise GradientStructureError(
                f"{role}: parameter {missing[0]!r} is missing from the {role}{hint}"
            )
        if extra:
            raise GradientStructureError(
                f"{role}: {extra[0]!r} is not a parameter (parameters are "
                f"{', '.join(map(repr, self.names))})"
            )
        parts = []
        for leaf in self.leaves:
            array = _as_float_array(leaf.name, named[leaf.name], role=role)
            if array.shape != leaf.shape:
                raise GradientStructureError(
                    f"{role}: {leaf.name!r} has shape {array.shape}, but the parameter has "
                    f"shape {leaf.shape}"
                )
            if np.iscomplexobj(array):
                raise GradientStructureError(f"{role}: {leaf.name!r} is complex; expected real")
            parts.append(array.reshape(-1))
        dtype = np.result_type(*(p.dtype for p in parts), np.float32)
        return np.concatenate(parts, dtype=dtype, casting="unsafe")

    def split(self, vector: NDArray[Any]) -> dict[str, NDArray[Any]]:
        """Cut a flat vector into ``{name: array of the leaf's shape}`` (views)."""
        return {leaf.name: vector[leaf.slice].reshape(leaf.shape) for leaf in self.leaves}
