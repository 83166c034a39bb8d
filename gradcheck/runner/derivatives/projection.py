"""Every derivative kind as the scalar check: ``phi(x) = <u, f(x)>`` and its gradient.

For a random cotangent ``u`` over ``f``'s outputs, ``phi`` is a scalar loss and its
gradient is ``J^T u``: what a VJP returns for ``u``, what a Jacobian gives as
``tensordot(u, J)``, what ``n`` JVPs give element by element.  So
:func:`gradcheck.check` applied to ``phi`` gives every kind the whole verdict:
references with their own error estimates, the derived tolerance, Richardson
arbitration, kinks, hazards, determinism, directional mode, the diagnosis.
The inner product does not conjugate, so a complex step through ``f`` stays a
complex step through ``phi``.

:class:`Capture` keeps, at no extra cost, what the scalar check's evaluations of
``phi`` reveal about ``f``: an evaluation at ``x0 + i h e_k`` (the complex step) holds
the whole column ``J[:, k]``, and ``x0 +- h e_k`` (a central difference) its two
halves.  A full Jacobian check reads its columns from there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.errors import GradientStructureError
from gradcheck.problem.space import ParameterSpace, walk_leaves
from gradcheck.runner.derivatives.columns import Columns
from gradcheck.runner.derivatives.layout import Inputs, Outputs
from gradcheck.runner.directional import POOL_COARSENING, Probing

__all__ = ["Projection", "Capture", "ProjectedGradient", "check_shapes"]


class Capture:
    """Jacobian columns read off evaluations of ``f`` at single-element perturbations.

    Parameters
    ----------
    space : ParameterSpace
        The differentiated inputs; ``x0`` the point.
    """

    def __init__(self, space: ParameterSpace) -> None:
        self.space = space
        self.complex: dict[int, tuple[float, NDArray[np.float64]]] = {}
        self.real: dict[tuple[int, int], tuple[float, NDArray[np.float64]]] = {}

    def _moved(self, tree: Any) -> tuple[int, complex] | None:
        """The one element ``tree`` moves away from ``x0`` and by how much, else None."""
        arrays = [np.asarray(v) for _, v in walk_leaves(tree, "")]
        if len(arrays) != len(self.space.leaves):
            return None
        found: tuple[int, complex] | None = None
        for leaf, array in zip(self.space.leaves, arrays, strict=True):
            if array.shape != leaf.shape:
                return None
            flat = array.reshape(-1)
            x0 = self.space.x0[leaf.slice]
            moved = np.flatnonzero((flat != x0) | (np.imag(flat) != 0))
            if len(moved) == 0:
                continue
            if len(moved) > 1 or found is not None:
                return None
            local = int(moved[0])
            found = (leaf.offset + local, complex(flat[local]) - complex(x0[local]))
        return found

    def record(self, tree: Any, value: NDArray[Any]) -> None:
        """Keep ``value`` if ``tree`` is ``x0`` with one element moved (first such per kind)."""
        moved = self._moved(tree)
        if moved is None:
            return
        index, delta = moved
        if delta.real == 0 and delta.imag != 0 and np.iscomplexobj(value):
            if index not in self.complex:
                self.complex[index] = (delta.imag, np.imag(value) / delta.imag)
        elif delta.imag == 0 and delta.real != 0 and not np.iscomplexobj(value):
            key = (index, 1 if delta.real > 0 else -1)
            if key not in self.real:
                self.real[key] = (delta.real, np.array(value, dtype=np.float64))

    def columns(self, indices: NDArray[np.intp], m: int) -> tuple[Columns | None, str]:
        """The captured columns at ``indices``, complex step first, else central differences.

        Returns None when some column was not captured by either (the caller then
        computes them); the method name otherwise.  The error is left for the caller.
        """
        if all(int(i) in self.complex for i in indices):
            steps = np.array([self.complex[int(i)][0] for i in indices])
            derivative = np.empty((m, len(indices)))
            for k, i in enumerate(indices):
                derivative[:, k] = self.complex[int(i)][1]
            return Columns(derivative, np.zeros_like(derivative), steps, 0, "complex"), "complex"
        if all((int(i), 1) in self.real and (int(i), -1) in self.real for i in indices):
            derivative = np.empty((m, len(indices)))
            widths = np.empty(len(indices))
            for k, i in enumerate(indices):
                h_plus, plus = self.real[(int(i), 1)]
                h_minus, minus = self.real[(int(i), -1)]
                widths[k] = h_plus - h_minus
                derivative[:, k] = (plus - minus) / widths[k]
            zeros = np.zeros_like(derivative)
            return Columns(derivative, zeros, widths / 2.0, 0, "central"), "central"
        return None, ""


class Projection:
    """``phi(params) = <u, f(*inputs)>``, the scalar loss of every derivative check.

    Picklable when ``f`` and the inputs are (``workers=N``); a worker's copy
    captures nothing.
    """

    #: Its directional probes (:class:`~gradcheck.runner.directional.Probing`): no
    #: illustrating samples, inputs whose gradients are resolved alike probed together, and
    #: one complex-step probe per group, as torch's and jax's default checks project once
    #: (with a stated guarantee: a relative error above ~3e-6 is missed with probability
    #: <= 1e-6 on the benchmark layers, was ~2e-9 with two).
    probing = Probing(samples=0, pool=POOL_COARSENING, complex_probes=1)

    def __init__(
        self,
        f: Callable[..., Any],
        inputs: Inputs,
        outputs: Outputs,
        cotangent: NDArray[np.float64],
        *,
        role: str = "f",
        capture: Capture | None = None,
        first: tuple[tuple[NDArray[Any], ...], NDArray[Any]] | None = None,
    ) -> None:
        self.f = f
        self.inputs = inputs
        self.outputs = outputs
        self.cotangent = cotangent
        self.role = role
        self.capture = capture
        #: ``(point, value)``: ``f``'s flat value at ``point`` (the differentiated inputs'
        #: arrays, in tree order), already computed; the first call, if it is made there,
        #: uses it instead of calling ``f`` again.
        self.first = first

    def __call__(self, tree: Any) -> Any:
        if self.first is not None:
            (point, value), self.first = self.first, None  # the first call only
            if _same_point(tree, point):
                return self.cotangent @ value
        context = f"evaluating {self.role} inside <u, {self.role}>"
        value = self.outputs.flatten(self.inputs.call(self.f, self.role, context, tree), context)
        if self.capture is not None:
            self.capture.record(tree, value)
        return self.cotangent @ value  # no conjugation: a complex step stays one

    def __getstate__(self) -> dict[str, Any]:
        return {**self.__dict__, "capture": None, "first": None}


def _same_point(tree: Any, point: tuple[NDArray[Any], ...]) -> bool:
    """Whether ``tree``'s arrays are ``point``'s: the same shapes, dtypes and values."""
    try:
        arrays = [np.asarray(value) for _, value in walk_leaves(tree, "")]
    except Exception:  # noqa: BLE001 - not a tree of arrays: not the point
        return False
    return len(arrays) == len(point) and all(
        a.shape == b.shape and a.dtype == b.dtype and np.array_equal(a, b)
        for a, b in zip(arrays, point, strict=True)
    )


def check_shapes(
    per_input: Mapping[str, Any], inputs: Inputs, space: ParameterSpace, role: str
) -> None:
    """Each array an input's function returned has that input's shape, named if not.

    Raises
    ------
    GradientStructureError
        ``role``'s value for an array input has another shape (trees are checked,
        by path, when flattened).
    """
    for name, value in per_input.items():
        given = inputs.tree[name]
        if isinstance(given, (Mapping, list, tuple)):
            continue
        expected = next(leaf.shape for leaf in space.leaves if leaf.name == name)
        try:
            shape = np.shape(value)
        except Exception:  # noqa: BLE001 - not array-like: flatten_like says so
            continue
        if value is None:
            raise GradientStructureError(f"{role}: returned None for {name} (shape {expected})")
        if tuple(shape) != tuple(expected):
            raise GradientStructureError(
                f"{role}: the entry for {name} has shape {tuple(shape)}, but {name} has shape "
                f"{tuple(expected)}"
            )


class ProjectedGradient:
    """``J^T u`` from a function of the cotangent, as the scalar check's gradient.

    ``transpose(cotangent_tree, tree) -> one value per differentiated input`` (a
    VJP), normalised by :meth:`Inputs.per_input` and checked for shapes; with
    ``by_name`` it returns ``{input name: value}`` already (a contraction of the
    user's Jacobian, validated where it was made).
    """

    def __init__(
        self,
        transpose: Callable[[Any, Any], Any],
        inputs: Inputs,
        outputs: Outputs,
        space: ParameterSpace,
        cotangent: NDArray[np.float64],
        role: str,
        what: str = "gradient",
        *,
        by_name: bool = False,
    ) -> None:
        self.by_name = by_name  # ``transpose`` already returns {input name: value}
        self.transpose = transpose
        self.inputs = inputs
        self.outputs = outputs
        self.space = space
        self.cotangent = cotangent
        self.role = role
        self.what = what

    def at(self, cotangent: NDArray[np.float64], tree: Any) -> dict[str, Any]:
        """The per-input values for any cotangent (the localisation's one-hot ones too)."""
        returned = self.transpose(self.outputs.unflatten(cotangent), tree)
        if self.by_name:
            return dict(returned)
        per_input = self.inputs.per_input(returned, self.role, self.what)
        check_shapes(per_input, self.inputs, self.space, self.role)
        return per_input

    def __call__(self, tree: Any) -> dict[str, Any]:
        return self.at(self.cotangent, tree)
