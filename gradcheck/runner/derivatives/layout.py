"""The inputs and outputs of a vector function ``f(*inputs)``, named and validated once.

:class:`Inputs` is what ``check_vjp(f, vjp, inputs, wrt=...)`` was given: a tuple of
positional arguments (torch's and jax's convention) or a dict of keyword arguments,
and which of them are differentiated.  The differentiated ones become the parameter
tree of the scalar check, keyed by their names (``inputs[0]``, or the keyword), so
every result names them the same way; the others (integer labels, a ``conv_param``
dict) are held fixed, as read-only copies.

:class:`Outputs` is the structure of ``f``'s value: one array (``out``) or a tree
(``out.logits``, ``out[1]``), flattened to one vector whose elements have readable
names (``out[3, 1]``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.errors import (
    GradientStructureError,
    InvalidLossError,
    InvalidParameterError,
    ParameterTypeError,
)
from gradcheck.problem.calls import call_user
from gradcheck.problem.space import ParameterSpace, walk_leaves
from gradcheck.results import format_index

__all__ = ["Inputs", "Outputs", "OUTPUT_NAME", "differentiable"]

#: The name of ``f``'s value in results: ``out``, ``out[3, 1]``, ``out.logits[2]``.
OUTPUT_NAME = "out"


def differentiable(value: Any) -> bool:
    """A floating-point array (any shape), or a non-empty tree whose leaves all are.

    Python scalars (``reg=0.1``, ``eps=1e-5``) are hyperparameters, held fixed unless
    named in ``wrt``; numpy floating scalars and arrays are differentiated.
    """
    if isinstance(value, np.ndarray):
        return bool(np.issubdtype(value.dtype, np.floating))
    if isinstance(value, np.floating):
        return True
    if isinstance(value, (Mapping, list, tuple)) and len(value):
        try:
            leaves = [leaf for _, leaf in walk_leaves(value, "")]
        except InvalidParameterError:
            return False
        return all(
            isinstance(leaf, (np.ndarray, np.floating))
            and np.issubdtype(np.asarray(leaf).dtype, np.floating)
            for leaf in leaves
        )
    return False


def _floating(value: Any) -> bool:
    """Every leaf converts to a floating-point array (what ``wrt`` may name)."""
    try:
        leaves = [np.asarray(leaf) for _, leaf in walk_leaves(value, "")]
    except Exception:  # noqa: BLE001 - not a tree of arrays at all
        return False
    return bool(leaves) and all(np.issubdtype(leaf.dtype, np.floating) for leaf in leaves)


def _read_only_copy(value: Any) -> Any:
    """A private copy of a fixed input that ``f`` cannot write into (arrays, inside trees too)."""
    if isinstance(value, np.ndarray):
        copy = np.array(value, copy=True)
        copy.setflags(write=False)
        return copy
    if isinstance(value, Mapping):
        return {k: _read_only_copy(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)) and not hasattr(value, "_fields"):
        return type(value)(_read_only_copy(v) for v in value)
    return value


def _dtype_name(value: Any) -> str:
    try:
        return str(np.asarray(value).dtype)
    except Exception:  # noqa: BLE001 - only for a message
        return type(value).__name__


class Inputs:
    """The inputs of ``f``: their names, which are differentiated, and how to call with them.

    Parameters
    ----------
    inputs : tuple, list, dict or ndarray
        Positional arguments (a bare array is one input) or keyword arguments.
    wrt : int, str, or sequence of them, optional
        The differentiated inputs, by position or keyword; by default every
        floating-point array input (:func:`differentiable`).
    names : tuple of str, optional
        Names of positional inputs in results (``x`` for SciPy's ``fun(x, *args)``);
        ``inputs[0]``, ``inputs[1]``... by default.

    Raises
    ------
    ParameterTypeError
        ``inputs`` of another type; ``wrt`` naming a non-floating input.
    InvalidParameterError
        ``wrt`` naming a missing input; no input to differentiate.
    """

    def __init__(self, inputs: Any, wrt: Any = None, *, names: tuple[str, ...] = ()) -> None:
        if isinstance(inputs, np.ndarray):
            inputs = (inputs,)
        if isinstance(inputs, Mapping):
            self.keyword = True
            self.keys: tuple[Any, ...] = tuple(inputs)
            self.names = tuple(str(k) for k in self.keys)
            values = [inputs[k] for k in self.keys]
        elif isinstance(inputs, (tuple, list)):
            self.keyword = False
            self.keys = tuple(range(len(inputs)))
            self.names = names or tuple(f"inputs[{i}]" for i in self.keys)
            values = list(inputs)
        else:
            raise ParameterTypeError(
                "inputs: expected a tuple of positional arguments of f (or a dict of keyword "
                f"arguments), got {type(inputs).__name__}; for one array pass (x,)"
            )
        if not self.keys:
            raise InvalidParameterError("inputs: f must take at least one input")
        self.differentiated: tuple[int, ...] = self._select(wrt, values)
        self.fixed = {
            k: _read_only_copy(v) for k, v in enumerate(values) if k not in self.differentiated
        }
        #: The parameter tree of the scalar check: the differentiated inputs by name.
        self.tree = {self.names[k]: values[k] for k in self.differentiated}

    # -- wrt --------------------------------------------------------------------------
    def _position(self, key: Any) -> int:
        if self.keyword:
            if key in self.keys:
                return self.keys.index(key)
            raise InvalidParameterError(
                f"wrt: {key!r} is not an input (inputs are {', '.join(map(repr, self.keys))})"
            )
        if isinstance(key, (bool, np.bool_)) or not isinstance(key, (int, np.integer)):
            raise ParameterTypeError(
                f"wrt: inputs are positional, so wrt takes positions (ints), got {key!r}"
            )
        if not -len(self.keys) <= key < len(self.keys):
            raise InvalidParameterError(
                f"wrt: inputs[{key}] does not exist: f is given {len(self.keys)} input(s) "
                f"({', '.join(self.names)})"
            )
        return int(key) % len(self.keys)

    def _select(self, wrt: Any, values: Sequence[Any]) -> tuple[int, ...]:
        if wrt is None:
            chosen = [k for k, v in enumerate(values) if differentiable(v)]
            if not chosen:
                kinds = ", ".join(
                    f"{n} ({_dtype_name(v)})" for n, v in zip(self.names, values, strict=True)
                )
                raise InvalidParameterError(
                    f"inputs: no floating-point array to differentiate among {kinds}; pass "
                    "float arrays, or name the inputs in wrt"
                )
            return tuple(chosen)
        keys = [wrt] if isinstance(wrt, (str, int, np.integer)) else list(wrt)
        chosen = []
        for key in keys:
            k = self._position(key)
            if k in chosen:
                raise InvalidParameterError(f"wrt: {self.names[k]} is named twice")
            value = values[k]
            # Named in wrt, anything float-valued is differentiated (Python floats, lists).
            if not _floating(value):
                raise ParameterTypeError(
                    f"wrt: {self.names[k]} has dtype {_dtype_name(value)}; only floating-point "
                    "inputs can be differentiated (integer labels and settings are held fixed)"
                )
            chosen.append(k)
        if not chosen:
            raise InvalidParameterError("wrt: names no input")
        return tuple(chosen)

    # -- calling ----------------------------------------------------------------------
    @property
    def differentiated_names(self) -> tuple[str, ...]:
        return tuple(self.names[k] for k in self.differentiated)

    @property
    def fixed_names(self) -> tuple[str, ...]:
        return tuple(self.names[k] for k in sorted(self.fixed))

    def arguments(self, tree: Mapping[str, Any]) -> list[Any]:
        """Every input in order: the differentiated ones from ``tree``, the rest fixed."""
        return [
            tree[self.names[k]] if k in self.differentiated else self.fixed[k]
            for k in range(len(self.keys))
        ]

    def call(
        self, function: Callable[..., Any], role: str, context: str, tree: Any, *leading: Any
    ) -> Any:
        """``function(*leading, *inputs)`` (or ``**inputs``), exceptions reported with context."""
        values = self.arguments(tree)
        if self.keyword:
            kwargs = dict(zip(self.keys, values, strict=True))
            return call_user(lambda: function(*leading, **kwargs), role, context)
        return call_user(function, role, context, *leading, *values)

    # -- one value per differentiated input -------------------------------------------
    def per_input(self, returned: Any, role: str, what: str) -> dict[str, Any]:
        """``returned`` (one entry per differentiated input) keyed by input name.

        Accepted, as jax and torch return them: a tuple or list with one entry per
        differentiated input, or with one per input (the entries of inputs held
        fixed are ignored: a cs231n backward returning ``dx, dw, db``); a bare value
        when exactly one input is differentiated; a dict keyed by keyword.

        Raises
        ------
        GradientStructureError
            Another count, or a dict missing an input.
        """
        names = self.differentiated_names
        if self.keyword and isinstance(returned, Mapping):
            missing = [
                n
                for k, n in zip(self.keys, self.names, strict=True)
                if n in names and k not in returned
            ]
            if missing:
                raise GradientStructureError(
                    f"{role}: returned no {what} for {missing[0]!r} (it returned "
                    f"{', '.join(map(repr, returned))})"
                )
            return {self.names[k]: returned[self.keys[k]] for k in self.differentiated}
        if len(names) == 1 and not isinstance(returned, (tuple, list)):
            return {names[0]: returned}
        if isinstance(returned, (tuple, list)):
            if len(returned) == len(names) and not (
                len(names) == 1 and len(self.keys) > 1 and len(returned) == len(self.keys)
            ):
                return dict(zip(names, returned, strict=True))
            if len(returned) == len(self.keys):
                return {self.names[k]: returned[k] for k in self.differentiated}
            if len(names) == 1 and isinstance(self.tree[names[0]], (tuple, list)):
                return {names[0]: returned}
        count = len(returned) if isinstance(returned, (tuple, list)) else 1
        raise GradientStructureError(
            f"{role}: returned {count} {what}(s) ({type(returned).__name__}); expected one per "
            f"differentiated input, {len(names)} ({', '.join(names)})"
            + (f", or one per input ({len(self.keys)})" if len(self.keys) != len(names) else "")
        )

    def pack(self, values: Mapping[str, Any]) -> Any:
        """Values per differentiated input as the user's function takes them.

        A bare value when one input is differentiated; else a tuple in ``wrt``
        order (a dict keyed by keyword for keyword inputs).
        """
        names = self.differentiated_names
        if len(names) == 1:
            return values[names[0]]
        if self.keyword:
            return {self.keys[k]: values[self.names[k]] for k in self.differentiated}
        return tuple(values[n] for n in names)

    def describe(self) -> str:
        """``inputs[0], inputs[1] (held fixed: inputs[2])`` for notes."""
        text = ", ".join(self.differentiated_names)
        if self.fixed:
            text += f" (held fixed: {', '.join(self.fixed_names)})"
        return text


class Outputs:
    """The structure of ``f``'s value, flattened: leaves, shapes, names of elements.

    Parameters
    ----------
    value : array_like or tree of array_like
        ``f`` at the given inputs.
    role : str
        The function's name in messages (``f``, ``grad``).
    prefix : str
        The name of the value in results (``out``; ``grad`` for a Hessian check).

    Raises
    ------
    InvalidLossError
        Not floating-point numbers, complex at real inputs, or not finite.
    """

    def __init__(self, value: Any, role: str = "f", prefix: str = OUTPUT_NAME) -> None:
        self.role = role
        self.prefix = prefix
        named = self._leaves(value, "at the given inputs")
        for name, array in named:
            if np.iscomplexobj(array):
                raise InvalidLossError(f"{role}: {name} is complex at real inputs")
            if not np.issubdtype(array.dtype, np.floating):
                raise InvalidLossError(
                    f"{role}: {name} has dtype {array.dtype}; a derivative needs floating-point "
                    "outputs"
                )
        flat = np.concatenate([a.reshape(-1) for _, a in named])
        self.names = tuple(name for name, _ in named)
        self.shapes = tuple(array.shape for _, array in named)
        sizes = [int(np.prod(shape, dtype=np.int64)) for shape in self.shapes]
        self.offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.intp)
        self.size = int(self.offsets[-1])
        if self.size == 0:
            raise InvalidLossError(f"{role}: returned no element at the given inputs")
        self._finite(flat, "at the given inputs")
        self.dtype: np.dtype[Any] = np.result_type(*(a.dtype for _, a in named))
        self.value0 = flat.astype(np.float64)
        #: The structure, to rebuild cotangents in it.
        self.space = ParameterSpace(value)

    def _leaves(self, value: Any, context: str) -> list[tuple[str, NDArray[Any]]]:
        try:
            named = list(walk_leaves(value, self.prefix))
        except InvalidParameterError as exc:
            raise InvalidLossError(f"{self.role}: {exc} ({context})") from None
        out = []
        for name, leaf in named:
            try:
                array = np.asarray(leaf)
            except Exception as exc:  # noqa: BLE001 - whatever it is, it is not an array
                raise InvalidLossError(
                    f"{self.role}: {name} is a {type(leaf).__name__}, not an array ({context})"
                ) from exc
            if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
                raise InvalidLossError(
                    f"{self.role}: {name} has dtype {array.dtype}, not numbers ({context})"
                )
            out.append((name, array))
        return out

    def _finite(self, flat: NDArray[Any], context: str) -> None:
        bad = ~np.isfinite(flat)
        if bad.any():
            k = int(np.flatnonzero(bad)[0])
            raise InvalidLossError(
                f"{self.role}: {self.element_name(k)} is {flat[k]!r}, not finite ({context})"
            )

    def flatten(self, value: Any, context: str, *, role: str | None = None) -> NDArray[Any]:
        """``value`` (``f`` somewhere else) as one flat vector, checked against the structure.

        ``role`` names another function whose value must have ``f``'s structure (a JVP's
        output tangent).
        """
        if role is not None and role != self.role:
            renamed = Outputs.__new__(Outputs)
            renamed.__dict__.update(self.__dict__, role=role)
            return renamed.flatten(value, context)
        if (
            type(value) is np.ndarray
            and value.dtype.kind in "fc"
            and len(self.shapes) == 1
            and self.names[0] == self.prefix
            and value.shape == self.shapes[0]
        ):
            # One array, as f first returned (the common case, called once per evaluation):
            # no tree walk; a finite sum proves every element finite (inf and nan propagate).
            flat = value.reshape(-1)
            if not np.isfinite(flat.sum()):
                self._finite(flat, context)
            return flat
        named = self._leaves(value, context)
        if tuple(n for n, _ in named) != self.names or tuple(a.shape for _, a in named) != (
            self.shapes
        ):
            got = ", ".join(f"{n} {a.shape}" for n, a in named)
            want = ", ".join(f"{n} {s}" for n, s in zip(self.names, self.shapes, strict=True))
            raise InvalidLossError(
                f"{self.role}: returned {got} where it first returned {want} ({context})"
            )
        flat = np.concatenate([a.reshape(-1) for _, a in named])
        self._finite(flat, context)
        return flat

    def element_name(self, flat_index: int) -> str:
        """``out[3, 1]`` for a flat index into the output vector."""
        k = int(np.searchsorted(self.offsets, flat_index, side="right") - 1)
        local = int(flat_index - self.offsets[k])
        shape = self.shapes[k]
        if not shape:
            return self.names[k]
        return self.names[k] + format_index(tuple(int(i) for i in np.unravel_index(local, shape)))

    def unflatten(self, vector: NDArray[Any]) -> Any:
        """A tree of the output's structure holding ``vector`` (a cotangent for ``vjp``)."""
        return self.space.unflatten(np.asarray(vector), dtype=np.result_type(vector))

    def describe(self) -> str:
        """``out (4, 3)`` or ``out.a (2,), out.b ()`` for notes."""
        return ", ".join(f"{n} {s}" for n, s in zip(self.names, self.shapes, strict=True))
