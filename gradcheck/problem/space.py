"""Parameter trees: named leaves of nested dicts, lists and tuples of arrays.

Users hand gradcheck parameters in whatever structure their code uses: one
array, ``{"weight1": W1, "weight2": W2}``, ``{"layers": [{"weight": W, "bias": b}]}``.
:class:`ParameterSpace` walks that structure once, gives every leaf a readable
path (``layers[1].weight``), validates and copies it, and maps between the
tree and one flat index space of all elements, which is what the references
perturb.  The user's arrays are copied on the way in and never written to.

A tree nests at most :data:`MAX_DEPTH` levels and may not contain itself; names
are made printable (control characters escaped as ``repr`` does) once, here, so
nothing that prints a name can be made to overwrite a terminal line.  The tree
handed to the user's functions is checked before each call (cheaply: the lengths
of its containers) and in full at the pipeline's watch points: a function that
replaced, deleted or added an entry gets a fresh tree, and :meth:`restore`
reports the change as a mutation.

The working copies are views of one flat buffer when the leaves share a dtype (one
buffer per leaf otherwise): a model of thousands of small arrays costs a view per
array, not a buffer and its bookkeeping, and moving, restoring or comparing the
copies is one numpy call whatever the number of arrays.
"""

from __future__ import annotations

import functools
import math
import numbers
import operator
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
from gradcheck.results import printable

__all__ = [
    "Leaf",
    "MAX_DEPTH",
    "MOVE_CHUNK",
    "ParameterSpace",
    "ROOT_NAME",
    "step_taken",
    "walk_leaves",
    "working_eps",
]

#: The name given to the parameters when they are one bare array.
ROOT_NAME = "params"
#: Deepest nesting of a parameter tree (dicts, lists, tuples inside each other): far deeper
#: than any model's, far below Python's recursion limit, so walking a tree never overflows.
MAX_DEPTH = 100
#: Longest name quoted whole in a message; longer ones are cut in the middle.
SHOWN_NAME = 80


@functools.cache
def working_eps(dtype: Any) -> float:
    """The precision the references resolve a parameter of ``dtype`` to: its own machine
    epsilon, but never finer than float64's.

    Loss values, steps and derivatives travel through the references as float64 (and
    complex128) numbers, so a parameter wider than float64 (``longdouble``) is known to
    float64's precision: step sizes, noise floors and rounding bounds sized for its own
    epsilon would promise digits that the float64 arithmetic has already rounded away.
    """
    return float(max(np.finfo(dtype).eps, np.finfo(np.float64).eps))


def step_taken(moved: Any, original: Any) -> Any:
    """``moved - original`` exactly, as float64: the step an element really took.

    The difference is formed in the wider of the elements' dtype and float64 (exact for
    nearby values, by Sterbenz's lemma) and only then rounded: rounding both to float64
    first would lose a longdouble step's low bits before they cancel.
    """
    wide = np.result_type(np.asarray(moved).dtype, np.float64)
    difference = np.asarray(moved, dtype=wide) - np.asarray(original, dtype=wide)
    return difference.astype(np.float64, copy=False)


#: Elements moved per numpy call when a direction is written into the working copies: the
#: scratch vectors (``t * v``, the step taken) stay in cache whatever the parameters' size.
MOVE_CHUNK = 2**16


@dataclass(frozen=True, slots=True)
class Leaf:
    """One parameter array of a tree: its path, shape, dtype and place in the flat index."""

    name: str
    shape: tuple[int, ...]
    dtype: np.dtype[Any]
    offset: int

    @property
    def size(self) -> int:
        return math.prod(self.shape)  # ints: no numpy call per use (models have many leaves)

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


def _is_number_like(node: Any, depth: int = 0) -> bool:
    if isinstance(node, (numbers.Number, np.generic)):
        return True
    if isinstance(node, (list, tuple)):
        # Past the depth limit a list counts as a container: walk_leaves then refuses it
        # (too deep, or a list that contains itself) instead of recursing without end.
        return depth < MAX_DEPTH and all(_is_number_like(item, depth + 1) for item in node)
    return False


def shortened(name: str, limit: int = SHOWN_NAME) -> str:
    """``name``, cut in the middle with an ellipsis when longer than ``limit`` characters."""
    if len(name) <= limit:
        return name
    keep = (limit - 1) // 2
    return f"{name[:keep]}…{name[-keep:]}"


def _join(prefix: str, key: Any, *, index: bool) -> str:
    if index:
        return f"{prefix}[{key}]" if prefix else f"[{key}]"
    key = printable(str(key))
    return f"{prefix}.{key}" if prefix else key


def walk_leaves(
    node: Any, prefix: str, *, _depth: int = 0, _inside: frozenset[int] = frozenset()
) -> Iterator[tuple[str, Any]]:
    """``(name, leaf)`` for every leaf of a tree, in order; names are printable paths.

    Raises
    ------
    InvalidParameterError
        An empty mapping, a tree nested deeper than :data:`MAX_DEPTH`, or one
        that contains itself.
    """
    if not _is_container(node):
        yield (prefix or ROOT_NAME), node
        return
    where = repr(shortened(prefix)) if prefix else "the top level"
    if id(node) in _inside:
        raise InvalidParameterError(
            f"parameters: {where} contains itself (a reference cycle); parameters must be a "
            "tree of dicts, lists and tuples of arrays"
        )
    if _depth >= MAX_DEPTH:
        raise InvalidParameterError(
            f"parameters: {where} is nested more than {MAX_DEPTH} levels deep, the limit of "
            "a parameter tree"
        )
    inside = _inside | {id(node)}
    if isinstance(node, Mapping):
        if not node:
            raise InvalidParameterError(
                f"parameters: {shortened(prefix) or 'the mapping'} is empty"
            )
        for key, value in node.items():
            yield from walk_leaves(
                value, _join(prefix, key, index=False), _depth=_depth + 1, _inside=inside
            )
    else:
        for i, value in enumerate(node):
            yield from walk_leaves(
                value, _join(prefix, i, index=True), _depth=_depth + 1, _inside=inside
            )


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
    # dtype kinds, not np.issubdtype: this runs once per array, and models have thousands.
    kind = array.dtype.kind
    if kind == "O":
        raise ParameterTypeError(f"{role} {name!r}: has dtype object; expected a float array")
    if kind not in "biufc":  # numbers or bool
        raise ParameterTypeError(
            f"{role} {name!r}: has dtype {array.dtype}; expected numbers (a float array)"
        )
    if role == "parameter":
        if kind == "c":
            raise ParameterTypeError(
                f"parameter {name!r}: has complex dtype {array.dtype}; gradcheck checks "
                "gradients of real parameters"
            )
        if kind != "f":
            raise ParameterTypeError(
                f"parameter {name!r}: has dtype {array.dtype}; a gradient needs a "
                "floating-point parameter (convert it, e.g. with .astype(float))"
            )
        if not np.isfinite(array).all():
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
        values: list[NDArray[Any]] = []
        offset = 0
        seen: set[str] = set()
        for name, value in named:
            if name in seen:
                raise InvalidParameterError(f"parameters: two parameters are both named {name!r}")
            seen.add(name)
            array = _as_float_array(name, value, role="parameter")
            leaves.append(Leaf(name, tuple(array.shape), array.dtype, offset))
            values.append(array)
            offset += array.size
        if offset == 0:
            shapes = ", ".join(f"{shortened(leaf.name)!r} {leaf.shape}" for leaf in leaves[:3])
            raise InvalidParameterError(
                f"parameters: no elements to check (every parameter array is empty: {shapes}"
                f"{', ...' if len(leaves) > 3 else ''}); a check of nothing would pass"
            )
        self._structure = params
        self.leaves: tuple[Leaf, ...] = tuple(leaves)
        self.size = offset
        # Leaf k holds flat indices [offset_k, offset_k + size_k): a sorted search over the
        # offsets finds an element's leaf without an N-sized lookup table.
        self._offsets = np.array([leaf.offset for leaf in leaves], dtype=np.intp)
        self._leaf_eps = np.array([working_eps(leaf.dtype) for leaf in leaves], dtype=np.float64)
        self._init_buffers(values)
        self._tree: Any = None
        self._containers: list[tuple[Any, tuple[Any, ...] | None, tuple[Any, ...]]] = []
        self._lengths: list[tuple[Any, int]] = []
        #: What the user's functions last changed in the tree's structure (for messages).
        self.last_change: str | None = None
        self._structure_changed = False
        self._renew_tree()

    def _init_buffers(self, values: list[NDArray[Any]]) -> None:
        """The original values and the working copies, as few flat buffers as the dtypes allow.

        When every leaf has one dtype (the usual case) the working copies are views of one
        flat buffer, and the originals are ``x0`` itself: moving, restoring and comparing
        them is one numpy call whatever the number of arrays, and an array costs a view,
        not a buffer.  Leaves of mixed dtypes get one buffer each.
        """
        dtype = np.result_type(*(leaf.dtype for leaf in self.leaves))
        #: The original values, flat and read-only, in the widest dtype.
        self.x0: NDArray[Any] = np.concatenate([v.reshape(-1) for v in values], dtype=dtype)
        self.x0.setflags(write=False)
        if all(leaf.dtype == dtype for leaf in self.leaves):
            self._original_buffers: tuple[NDArray[Any], ...] = (self.x0,)
            self.buffer_offsets = np.zeros(1, dtype=np.intp)
        else:
            self._original_buffers = tuple(
                np.array(v, dtype=leaf.dtype, copy=True).reshape(-1)
                for leaf, v in zip(self.leaves, values, strict=True)
            )
            self.buffer_offsets = self._offsets
        #: The working copies, flat: one buffer, or one per leaf (starting at
        #: :attr:`buffer_offsets`); moved in place and put back after each evaluation.
        self.buffers: tuple[NDArray[Any], ...] = tuple(b.copy() for b in self._original_buffers)
        #: Working copies handed to the user's functions (views of :attr:`buffers`).
        self.arrays: tuple[NDArray[Any], ...] = self.views(self.buffers)

    def views(self, buffers: tuple[NDArray[Any], ...]) -> tuple[NDArray[Any], ...]:
        """Each leaf's array, of its shape, as a view of ``buffers`` (laid out as
        :attr:`buffers`: one flat buffer, or one per leaf)."""
        if len(buffers) == 1:
            whole = buffers[0]
            return tuple(whole[leaf.slice].reshape(leaf.shape) for leaf in self.leaves)
        return tuple(b.reshape(leaf.shape) for leaf, b in zip(self.leaves, buffers, strict=True))

    @property
    def originals(self) -> tuple[NDArray[Any], ...]:
        """The original value of each leaf (read-only views; built when asked)."""
        return self.views(self._original_buffers)

    def pieces(self, start: int, stop: int) -> Iterator[tuple[int, int, int]]:
        """``(buffer, low, high)`` for the buffers holding flat indices ``[start, stop)``:
        buffer number, and the local range in it; the pieces follow each other in order."""
        first = int(np.searchsorted(self.buffer_offsets, start, side="right")) - 1
        for k in range(first, len(self.buffer_offsets)):
            begin = int(self.buffer_offsets[k])
            if begin >= stop:
                break
            end = begin + len(self._original_buffers[k])
            low, high = max(start, begin), min(stop, end)
            if low < high:
                yield k, low - begin, high - begin

    def locate(self, flat_index: int) -> tuple[int, int]:
        """The working buffer holding ``flat_index`` (its number) and the index within it."""
        if len(self.buffers) == 1:
            return 0, int(flat_index)
        k = int(self.leaf_of(flat_index))
        return k, int(flat_index) - self.leaves[k].offset

    def move(
        self, start: int, direction: NDArray[Any], t: float
    ) -> Iterator[tuple[int, NDArray[Any], NDArray[Any], NDArray[np.float64]]]:
        """Write ``x0 + t * direction`` into the working copies of ``[start, start + len)``.

        Each element is rounded to its own dtype.  The work is done :data:`MOVE_CHUNK`
        elements at a time, in two reused scratch vectors, so nothing full-size is
        allocated whatever the parameters' size; each chunk is yielded as ``(position in
        direction, moved values, original values, t * direction there)`` (views, valid
        until the next chunk) for the caller to measure the step really taken.
        """
        scratch = np.empty(min(MOVE_CHUNK, len(direction)))
        for k, low, high in self.pieces(start, start + len(direction)):
            buffer, begin = self.buffers[k], int(self.buffer_offsets[k])
            original = self._original_buffers[k]
            for a in range(low, high, MOVE_CHUNK):
                b = min(a + MOVE_CHUNK, high)
                at = begin + a - start
                intended = np.multiply(direction[at : at + b - a], t, out=scratch[: b - a])
                part = buffer[a:b]
                np.add(original[a:b], intended, out=part, casting="unsafe")
                yield at, part, original[a:b], intended

    def put_back(self, start: int, stop: int) -> None:
        """Restore the working copies of flat indices ``[start, stop)``, bitwise."""
        for k, low, high in self.pieces(start, stop):
            self.buffers[k][low:high] = self._original_buffers[k][low:high]

    # -- the tree handed to the user's functions --------------------------------------
    @property
    def tree(self) -> Any:
        """The working copies in the user's structure, as handed to the user's functions.

        Checked on every access, cheaply: when a function deleted or added an entry
        (``del p["b"]``, ``p["x"] = ...``), a container's length changed, and a fresh tree
        is built, so the next call sees every parameter.  An entry *replaced* in place
        (``p["w"] = ...``) keeps the lengths: it is found by the full check of
        :meth:`structure_changed`, which :meth:`restore` runs at the pipeline's watch
        points and the objective runs when a call raises.  Either way :meth:`restore`
        reports the change.  (The full check compares every entry, O(arrays): too slow
        for every call of a model with thousands of arrays.)
        """
        for container, length in self._lengths:
            if len(container) != length:
                self.structure_changed()
                break
        return self._tree

    @property
    def handed(self) -> Any:
        """The tree last handed to the user's functions, unchecked."""
        return self._tree

    def structure_changed(self) -> bool:
        """Whether any dict or list of the tree was changed since it was built (a full check:
        replaced entries too); if so a fresh tree is built and :meth:`restore` reports it."""
        if self._tree_intact():
            return False
        self._structure_changed = True
        self._renew_tree()
        return True

    def _renew_tree(self) -> None:
        self._tree = self.build(self.arrays)
        # Every dict and list of the tree with its keys and values as built: identity
        # checks against them find any rebinding (tuples cannot be changed in place).
        self._containers = []
        stack = [self._tree]
        while stack:
            node = stack.pop()
            if isinstance(node, dict):
                self._containers.append((node, tuple(node), tuple(node.values())))
                stack.extend(v for v in node.values() if isinstance(v, (dict, list, tuple)))
            elif isinstance(node, (list, tuple)):
                if isinstance(node, list):
                    self._containers.append((node, None, tuple(node)))
                stack.extend(v for v in node if isinstance(v, (dict, list, tuple)))
        self._lengths = [(container, len(values)) for container, _, values in self._containers]

    def _tree_intact(self) -> bool:
        """Whether every dict and list of the tree still holds what was handed over."""
        for container, keys, values in self._containers:
            if len(container) != len(values):
                break
            if keys is None:
                if not all(map(operator.is_, container, values)):
                    break
            elif not (
                all(map(operator.is_, container.values(), values)) and tuple(container) == keys
            ):
                break
        else:
            return True
        self.last_change = _describe_change(container, keys, values)
        return False

    # -- structure -------------------------------------------------------------------
    @property
    def names(self) -> tuple[str, ...]:
        return tuple(leaf.name for leaf in self.leaves)

    @property
    def dtype(self) -> np.dtype[Any]:
        """The widest floating dtype among the leaves."""
        return self.x0.dtype

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
        """The working buffer holding ``flat_index`` and the element's index in it."""
        k, local = self.locate(flat_index)
        return self.buffers[k], local

    def leaf_of(self, flat_index: Any) -> Any:
        """The position in :attr:`leaves` of the leaf holding each flat index."""
        # side="right" skips empty leaves, which share their offset with the next leaf.
        return np.searchsorted(self._offsets, flat_index, side="right") - 1

    def eps_at(self, indices: NDArray[np.intp]) -> NDArray[np.float64]:
        """:func:`working_eps` of the dtype of each element in ``indices``."""
        return self._leaf_eps[self.leaf_of(np.asarray(indices, dtype=np.intp))]

    def eps(self) -> NDArray[np.float64]:
        """:func:`working_eps` of each element's own dtype, as a flat vector."""
        return np.repeat(self._leaf_eps, [leaf.size for leaf in self.leaves])

    def restore(self, *, force: bool = False) -> bool:
        """Put the original values back into the working copies; True if any had changed.

        With ``force`` they are copied back without comparing (after gradcheck itself
        moved them), and the return value is False.  Without it the tree's structure is
        checked too (entries replaced, deleted or added), in full.
        """
        if force:
            for buffer, original in zip(self.buffers, self._original_buffers, strict=True):
                buffer[...] = original
            return False
        self.structure_changed()  # the full check
        structural, self._structure_changed = self._structure_changed, False
        wrote = False
        for buffer, original in zip(self.buffers, self._original_buffers, strict=True):
            if not _same_values(buffer, original):
                wrote = True
                buffer[...] = original
        if wrote:
            self.last_change = "wrote into its input arrays" + (
                f" and {self.last_change}" if structural else ""
            )
        return structural or wrote

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
        known = set(self.names)
        extra = [name for name in named if name not in known]
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


#: Dtypes whose every bit is part of the value, compared as raw words.
_WORD_DTYPES = {np.dtype(t): np.dtype(f"u{np.dtype(t).itemsize}") for t in ("f2", "f4", "f8")}


def _same_values(array: NDArray[Any], original: NDArray[Any]) -> bool:
    """Whether a working copy still holds its original values."""
    words = _WORD_DTYPES.get(array.dtype)
    if words is not None:
        # Bitwise: any write counts, and comparing the raw words is ~10x faster than a
        # NaN-aware float comparison.
        return bool(np.array_equal(array.reshape(-1).view(words), original.reshape(-1).view(words)))
    # longdouble carries padding bytes that arithmetic leaves undefined: compare values.
    return bool(np.array_equal(array, original, equal_nan=True))


def _describe_change(container: Any, keys: tuple[Any, ...] | None, values: tuple[Any, ...]) -> str:
    """In words, how a container of the tree differs from what was handed over."""
    if keys is None:  # a list
        if len(container) != len(values):
            return f"changed the length of a list of parameters ({len(values)} -> {len(container)})"
        return "replaced an entry of a list of parameters"
    before = dict(zip(keys, values, strict=True))
    gone = [k for k in keys if k not in container]
    added = [k for k in container if k not in before]
    replaced = [k for k in keys if k in container and container[k] is not before[k]]

    def named(found: list[Any]) -> str:
        return ", ".join(repr(shortened(printable(str(k)))) for k in found[:3])

    parts = []
    if replaced:
        parts.append(f"replaced {named(replaced)}")
    if gone:
        parts.append(f"deleted {named(gone)}")
    if added:
        parts.append(f"added {named(added)}")
    return " and ".join(parts or ["reordered entries"]) + " in its parameter tree"
