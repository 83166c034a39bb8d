"""The user's loss seen as a function of one flat parameter vector.

Every reference (finite differences, complex step, SciPy) talks to the loss
through an :class:`Objective`: it validates each value (one finite real
number), counts evaluations, reports exceptions with their context, and
offers a fast path that perturbs single elements of gradcheck's private
working copies in place instead of rebuilding the whole tree per evaluation.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.errors import InvalidLossError, UserFunctionError
from gradcheck.problem.calls import call_user
from gradcheck.problem.space import MOVE_CHUNK, ParameterSpace, step_taken

__all__ = ["Objective", "as_real_scalar"]


def as_real_scalar(value: Any, *, context: str, allow_complex: bool = False) -> Any:
    """Validate a loss value: one finite number (real unless ``allow_complex``)."""
    if type(value) is float or type(value) is np.float64:  # the common case, checked fast
        if math.isfinite(value):
            return value
        raise InvalidLossError(f"loss: returned {value!r}, not a finite value ({context})")
    try:
        array = np.asarray(value)
    except Exception as exc:  # noqa: BLE001
        raise InvalidLossError(
            f"loss: returned {type(value).__name__}, not a number ({context})"
        ) from exc
    if array.size != 1:
        raise InvalidLossError(
            f"loss: returned an array of shape {array.shape}; the loss must be one scalar "
            f"(did you forget to sum or average?) ({context})"
        )
    if not (np.issubdtype(array.dtype, np.number) or array.dtype == bool):
        raise InvalidLossError(f"loss: returned dtype {array.dtype}, not a number ({context})")
    scalar = array.reshape(())[()]
    if np.iscomplexobj(array) and not allow_complex:
        if scalar.imag != 0:
            raise InvalidLossError(f"loss: returned a complex value {scalar!r} ({context})")
        scalar = scalar.real
    if not np.isfinite(scalar):
        raise InvalidLossError(f"loss: returned {scalar!r}, not a finite value ({context})")
    return scalar


def _dot(a: NDArray[Any], b: NDArray[Any]) -> float:
    """``a . b`` for one scratch-sized chunk, without BLAS: a threaded BLAS dot of a vector
    that fits in cache costs more in waking its threads (100x, on a busy machine) than
    the arithmetic."""
    return float(np.einsum("i,i->", a, b))


class Objective:
    """A counted, validated view of ``loss`` over the flat vector of a :class:`ParameterSpace`.

    Parameters
    ----------
    loss : callable
        ``loss(params) -> float`` taking the user's structure.
    space : ParameterSpace
        The parameters; its working copies are what is perturbed.
    """

    def __init__(self, loss: Callable[[Any], Any], space: ParameterSpace) -> None:
        self.loss = loss
        self.space = space
        self.n_evaluations = 0
        self.x0: NDArray[Any] = space.x0  # read-only: the original values, flat
        self.value0 = self._value(space.tree, "evaluating the loss at the given parameters")
        self._complex_tree: Any = None
        self._complex_buffers: tuple[NDArray[Any], ...] = ()

    def _value(self, tree: Any, context: str, *, allow_complex: bool = False) -> Any:
        self.n_evaluations += 1
        try:
            value = call_user(self.loss, "loss", context, tree)
        except UserFunctionError:
            # A call that raised after an entry of the tree was replaced (which the cheap
            # check before each call does not see): the full check renews the tree, and the
            # call is made again on the whole tree; restore() reports the mutation.
            if tree is not self.space.handed or not self.space.structure_changed():
                raise
            value = call_user(self.loss, "loss", context, self.space.tree)
        return as_real_scalar(value, context=context, allow_complex=allow_complex)

    def value_again(self, context: str) -> Any:
        """``loss`` at the original parameters once more (to test that it is deterministic)."""
        return self._value(self.space.tree, context)

    def __call__(self, x: NDArray[Any]) -> float:
        """``loss`` at the flat vector ``x`` (a fresh tree is built; nothing shared)."""
        x = np.asarray(x)
        return float(
            self._value(self.space.unflatten(x), "evaluating the loss at a perturbed point")
        )

    def perturbed(self, index: int, step: float) -> tuple[float, float]:
        """``loss`` with element ``index`` moved by ``step``, and the step really taken.

        The step really taken is ``fl(x + step) - x`` in the element's own
        dtype, so the difference quotient divides by what was added.
        """
        flat, local = self.space.element(index)
        original = flat[local]
        flat[local] = original + flat.dtype.type(step)
        taken = float(step_taken(flat[local], original))
        try:
            value = self._value(self.space.tree, f"evaluating the loss with element {index} moved")
        finally:
            flat[local] = original
        return float(value), taken

    def along(self, direction: NDArray[Any], t: float) -> float:
        """``loss`` at ``x0 + t * direction``, each element rounded to its own dtype.

        The point is written into gradcheck's working copies (in chunks, so no full-size
        temporary) and they are put back afterwards.
        """
        return self.along_block(0, direction, t)[0]

    def along_block(
        self, start: int, direction: NDArray[Any], t: float
    ) -> tuple[float, float, float]:
        """``loss`` with ``[start, start + len(direction))`` moved to ``x0 + t * direction``.

        The elements are moved in gradcheck's working copies, in place, each rounded to its
        own dtype, and put back bitwise afterwards: no point is built, whatever the
        parameters' size.  Returns the value, the step really taken along the direction's
        unit vector ``u`` (``delta . u`` for the rounded move ``delta``), and a bound on the
        part of ``delta`` off that line (``|delta - t |v| u|``).
        """
        norm = float(np.linalg.norm(direction)) or 1.0
        along, off = 0.0, 0.0  # delta . v, |delta - t v|**2
        scratch = np.empty(min(MOVE_CHUNK, len(direction)))
        try:
            for at, moved, original, intended in self.space.move(start, direction, t):
                n = len(moved)
                if moved.dtype == np.float64 and original.dtype == np.float64:
                    delta = np.subtract(moved, original, out=scratch[:n])
                else:
                    delta = step_taken(moved, original)
                along += _dot(delta, direction[at : at + n])
                delta -= intended
                off += _dot(delta, delta)
            value = self._value(self.space.tree, "evaluating the loss at a perturbed point")
        finally:
            self.space.put_back(start, start + len(direction))
        return float(value), along / norm, math.sqrt(off)

    def release_complex(self) -> None:
        """Drop the complex working copies (rebuilt on the next complex evaluation)."""
        self._complex_tree = None
        self._complex_buffers = ()

    # -- batches (overridden by runner.evaluation.BatchedObjective: chunks, vectorized, executor)
    def perturbed_many(
        self, indices: NDArray[np.intp], steps: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        """:meth:`perturbed` for each ``(indices[k], steps[k])``: the values and steps taken."""
        values = np.empty(len(indices))
        taken = np.empty(len(indices))
        for k, (index, step) in enumerate(zip(indices, steps, strict=True)):
            values[k], taken[k] = self.perturbed(int(index), float(step))
        return values, taken

    def complex_many(
        self, indices: NDArray[np.intp], steps: NDArray[np.float64]
    ) -> NDArray[np.complex128]:
        """:meth:`complex_value` at ``x0 + i steps[k] e_indices[k]`` for each ``k``."""
        values = np.empty(len(indices), dtype=np.complex128)
        for k, (index, step) in enumerate(zip(indices, steps, strict=True)):
            values[k] = self.complex_value(int(index), float(step))
        return values

    def values_at(self, points: NDArray[Any]) -> NDArray[np.float64]:
        """``loss`` at each row of ``points`` (shape ``(K, size)``, flat vectors)."""
        return np.array([self(point) for point in points], dtype=np.float64)

    # -- complex step --------------------------------------------------------------------
    def complex_value(
        self,
        index: int | None,
        step: float,
        direction: NDArray[Any] | None = None,
        *,
        start: int = 0,
    ) -> complex:
        """``loss`` at ``x0 + i * step * e_index`` (or along ``direction``), complex result.

        ``direction`` covers the flat indices ``[start, start + len(direction))``: a probe
        over one parameter touches only that parameter's imaginary parts.
        """
        space = self.space
        if self._complex_tree is None:
            # Laid out as the real working copies: one flat buffer (views per leaf) or one each.
            self._complex_buffers = tuple(
                np.array(b, dtype=np.result_type(b.dtype, np.complex64)) for b in space.buffers
            )
            self._complex_tree = space.build(space.views(self._complex_buffers))
        context = "evaluating the loss at a complex-step point"
        with warnings.catch_warnings():
            warnings.simplefilter("error", np.exceptions.ComplexWarning)
            if direction is not None:
                touched = []
                for k, low, high in space.pieces(start, start + len(direction)):
                    part = self._complex_buffers[k].imag[low:high]
                    at = int(space.buffer_offsets[k]) + low - start
                    np.multiply(direction[at : at + high - low], step, out=part)
                    touched.append(part)
                try:
                    return self._complex_result(context)
                finally:
                    for part in touched:
                        part[...] = 0
            assert index is not None
            k, local = space.locate(index)
            flat = self._complex_buffers[k]
            flat[local] = flat[local].real + 1j * step
            try:
                return self._complex_result(context)
            finally:
                flat[local] = flat[local].real

    def _complex_result(self, context: str) -> complex:
        return complex(self._value(self._complex_tree, context, allow_complex=True))
