"""Bug patterns of one parameter that need its layer's structure to be told at all.

Each is a *model* of how a backward pass goes wrong, fitted to the analytic and reference
arrays and named only when the fit has more equations than unknowns and every equation holds
within tolerance:

* :func:`normalisation`: the parameter is normalised along an axis (the reference sums to zero
  along it: the loss ignores a shift there), and ``analytic - reference`` is, along that axis,
  a constant (the mean term ``-mean(dy)`` missing or wrong), a multiple of ``x - mean(x)``
  (the variance term ``-x_hat mean(dy x_hat)``), or both.
* :func:`missing_derivative` and :func:`softmax_diagonal`: a layer ``z = a_prev @ W + b``
  (``a_prev`` from ``layer_inputs``; or the parameter itself is ``z``) whose backward pass
  maps the upstream gradient ``G`` to ``dz`` wrongly.  One ``G`` must explain both arrays:
  ``analytic = a_prev.T @ wrong(G)`` and ``reference = a_prev.T @ right(G)``, with ``wrong``
  dropping ``* f'(z)`` (missing activation derivative) or keeping only the diagonal
  ``p (1 - p)`` of the softmax Jacobian.

What the arrays alone cannot tell is not named: a weight's layer is known only through
``layer_inputs`` (without them only a parameter that is itself the pre-activation is
tested), and a normalisation after a weight (``z = a_prev @ W`` normalised) is not modelled.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray

from gradcheck.diagnosis.factors import MIN_INFORMATIVE
from gradcheck.diagnosis.failed_check import ParameterArrays, SplitCheck
from gradcheck.model.activations import ACTIVATIONS
from gradcheck.results import Diagnosis
from gradcheck.verdict.tolerance import passes

__all__ = [
    "normalisation",
    "missing_derivative",
    "softmax_diagonal",
    "NORM_MIN_LENGTH",
    "MODEL_SLACK",
    "MAX_UNKNOWNS",
]

_F64 = NDArray[np.float64]
#: ``wrong(z, G)`` or ``right(z, G)``: the ``dz`` a backward pass makes of the upstream
#: gradient ``G`` (any leading axes broadcast).
_Map = Callable[[_F64, _F64], _F64]

#: Two coefficients are fitted per slice (a constant and ``x - mean``): at 4 elements, two
#: more equations than unknowns in every slice are evidence, not a fit.
NORM_MIN_LENGTH = 4
#: A layer model is evidence only when its equations outnumber what they determine by at
#: least 2 and by one per unit: a fit with no spare equation always succeeds.
MODEL_SLACK = 2
#: Unknowns (samples x units) of the least-squares system of a layer model: its matrix grows
#: with their square, and a check's layers are small; larger ones are not tested.
MAX_UNKNOWNS = 400


# -- normalisation ----------------------------------------------------------------------------
def _slices(array: _F64, axis: int) -> _F64:
    moved = np.moveaxis(array, axis, -1)
    return moved.reshape(-1, moved.shape[-1])


def _fits_rows(difference: _F64, tolerance: _F64, bases: list[_F64]) -> bool:
    """Whether every row of ``difference`` is a combination of the rows of ``bases``."""
    for row in range(difference.shape[0]):
        basis = np.stack([b[row] for b in bases], axis=1) / tolerance[row][:, None]
        coefficients = np.linalg.lstsq(basis, difference[row] / tolerance[row], rcond=None)[0]
        fitted = (basis @ coefficients) * tolerance[row]
        if not np.all(passes(difference[row], fitted, tolerance[row])):
            return False
    return True


def _normalised_along(part: ParameterArrays, x: _F64, axis: int) -> str | None:
    """Which normalisation terms the error along ``axis`` lacks, or None when none fits."""
    analytic, reference = _slices(part.analytic, axis), _slices(part.reference, axis)
    tolerance, values = _slices(part.tolerance, axis), _slices(x, axis)
    if analytic.shape[1] < NORM_MIN_LENGTH:
        return None
    # The loss ignores a shift along the axis: a normalisation (or centring) of x there.
    if np.any(np.abs(reference.sum(axis=1)) > tolerance.sum(axis=1)):
        return None
    if int(np.sum(np.abs(reference) > tolerance)) < MIN_INFORMATIVE:
        return None
    centred = values - values.mean(axis=1, keepdims=True)
    if np.any(np.all(centred == 0, axis=1)):
        return None
    difference, ones = analytic - reference, np.ones_like(values)
    for terms, bases in (
        ("the mean term (- mean(dy))", [ones]),
        ("the variance term (- x_hat * mean(dy * x_hat))", [centred]),
        ("the mean and variance terms", [ones, centred]),
    ):
        if _fits_rows(difference, tolerance, bases):
            return terms
    return None


#: How a normalised axis reads, by the parameter's number of dimensions and the axis.
_AXIS_WORDS = (
    ("over the vector",),
    ("down each column (axis 0: a batch norm?)", "along each row (axis 1: a layer norm?)"),
)


def normalisation(part: ParameterArrays, split: SplitCheck) -> Diagnosis | None:
    """A normalisation's backward pass without (or with a wrong) mean or variance term."""
    if part.analytic.ndim not in (1, 2) or not np.all(part.checked):
        return None
    if not np.all(np.isfinite(part.reference)):
        return None
    x = split.values(part)
    for axis in range(part.analytic.ndim):
        terms = _normalised_along(part, x, axis)
        if terms is None:
            continue
        where = _AXIS_WORDS[part.analytic.ndim - 1][axis]
        return Diagnosis(
            "normalisation",
            f"{part.name}: the normalisation's backward pass lacks {terms}, or gets it wrong: "
            f"{part.name} is normalised {where}, and dx = (dy - mean(dy) - x_hat * "
            "mean(dy * x_hat)) / sigma needs both",
            f"the reference sums to zero {where} (the loss ignores a shift there); analytic - "
            "reference is, slice by slice, a combination of 1 and x - mean(x) only, within "
            "tolerance at every element",
            (part.name,),
            {"axis": axis, "terms": terms},
        )
    return None


# -- layer models ------------------------------------------------------------------------------
@dataclass(frozen=True)
class _Layer:
    """A layer's equations: ``inputs.T @ dz`` gives ``analytic``/``reference`` (rows x units).

    ``inputs`` is ``[a_prev, 1]`` (with a bias), ``a_prev``, or the identity when the
    parameter is the pre-activation ``z`` itself.
    """

    inputs: _F64
    z: _F64
    analytic: _F64
    reference: _F64
    tolerance: _F64
    described: str
    names: tuple[str, ...]


def _layer(part: ParameterArrays, split: SplitCheck) -> _Layer | None:
    """The layer ``part`` belongs to, from ``layer_inputs``; or ``part`` as the pre-activation."""
    x = split.values(part)
    a_prev = split.layer_inputs.get(part.name)
    if a_prev is None:
        if part.analytic.ndim not in (1, 2):
            return None
        z = x.reshape(1, -1) if x.ndim == 1 else x
        return _Layer(
            np.eye(z.shape[0]),
            z,
            part.analytic.reshape(z.shape),
            part.reference.reshape(z.shape),
            part.tolerance.reshape(z.shape),
            f"{part.name} itself as the pre-activation z",
            (part.name,),
        )
    bias = split.bias_of(part)
    if bias is None:
        return _Layer(
            a_prev,
            a_prev @ x,
            part.analytic,
            part.reference,
            part.tolerance,
            f"z = a_prev @ {part.name}",
            (part.name,),
        )
    return _Layer(
        np.hstack([a_prev, np.ones((a_prev.shape[0], 1))]),
        a_prev @ x + split.values(bias),
        np.vstack([part.analytic, bias.analytic[None]]),
        np.vstack([part.reference, np.where(bias.checked, bias.reference, np.nan)[None]]),
        np.vstack([part.tolerance, bias.tolerance[None]]),
        f"z = a_prev @ {part.name} + {bias.name}",
        (part.name, bias.name),
    )


def _explains(layer: _Layer, wrong: _Map, right: _Map) -> int | None:
    """Spare equations when one upstream ``G`` explains both arrays within tolerance, else None.

    Solves ``inputs.T @ wrong(G) = analytic`` and ``inputs.T @ right(G) = reference``
    jointly for ``G`` by least squares, each equation weighted by its tolerance.
    """
    n, units = layer.z.shape
    if n * units > MAX_UNKNOWNS:
        return None
    basis = np.eye(n * units).reshape(n * units, n, units)

    def matrix(dz_map: _Map) -> _F64:
        dz = dz_map(layer.z, basis)  # (unknowns, n, units)
        return np.einsum("ik,bih->khb", layer.inputs, dz).reshape(-1, n * units)

    target = np.concatenate([layer.analytic.ravel(), layer.reference.ravel()])
    tolerance = np.concatenate([layer.tolerance.ravel()] * 2)
    system = np.vstack([matrix(wrong), matrix(right)])
    known = np.isfinite(target) & np.isfinite(system).all(axis=1) & (tolerance > 0)
    system, target, tolerance = system[known], target[known], tolerance[known]
    if not np.all(np.isfinite(target)) or target.size == 0:
        return None
    solution, _, rank, _ = np.linalg.lstsq(
        system / tolerance[:, None], target / tolerance, rcond=None
    )
    spare = int(target.size - rank)
    if spare < max(MODEL_SLACK, units):
        return None
    if not np.all(passes(system @ solution, target, tolerance)):
        return None
    return spare


def _derivative_maps(name: str) -> tuple[_Map, _Map]:
    activation = ACTIVATIONS[name]
    derivative = activation.derivative
    assert derivative is not None

    def right(z: _F64, upstream: _F64) -> _F64:
        return upstream * derivative(z, activation.forward(z))

    return (lambda z, upstream: upstream), right


#: The elementwise activations whose derivative a backward pass can drop (identity has none).
_DROPPABLE = tuple(name for name, a in ACTIVATIONS.items() if a.elementwise and name != "identity")


def missing_derivative(part: ParameterArrays, split: SplitCheck) -> Diagnosis | None:
    """The backward pass leaves ``* f'(z)`` out of ``dz = G * f'(z)`` in ``part``'s layer."""
    layer = _layer(part, split)
    if layer is None:
        return None
    fits = {name: _explains(layer, *_derivative_maps(name)) for name in _DROPPABLE}
    found = {name: spare for name, spare in fits.items() if spare is not None}
    if not found:
        return None
    names = " or ".join(f"{name}'(z)" for name in found)
    return Diagnosis(
        "missing-derivative",
        f"{part.name}: the backward pass drops the activation derivative {names} of its "
        f"layer ({layer.described}): dz = G where dz = G * f'(z) belongs",
        f"one upstream gradient G explains both arrays within tolerance: analytic = "
        f"a_prev.T @ G, reference = a_prev.T @ (G * f'(z)), with {min(found.values())} more "
        "equations than that fit needs",
        layer.names,
        {"activations": list(found)},
    )


def _softmax_rows(z: _F64) -> _F64:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return np.asarray(e / e.sum(axis=-1, keepdims=True), dtype=np.float64)


def _diagonal_only(z: _F64, upstream: _F64) -> _F64:
    p = _softmax_rows(z)
    return p * (1 - p) * upstream


def _full_jacobian(z: _F64, upstream: _F64) -> _F64:
    p = _softmax_rows(z)
    return p * (upstream - np.sum(p * upstream, axis=-1, keepdims=True))


def softmax_diagonal(part: ParameterArrays, split: SplitCheck) -> Diagnosis | None:
    """The softmax's backward pass keeps only its Jacobian's diagonal ``p (1 - p)``."""
    layer = _layer(part, split)
    if layer is None or layer.z.shape[1] < 2:
        return None
    spare = _explains(layer, _diagonal_only, _full_jacobian)
    if spare is None:
        return None
    return Diagnosis(
        "softmax-diagonal",
        f"{part.name}: the softmax's backward pass ({layer.described}, softmax along each "
        "row) uses only the diagonal of its Jacobian, p * (1 - p) * G; the off-diagonal "
        "terms -p_i p_j are missing: dz = p * (G - sum(p * G))",
        f"one upstream gradient G explains both arrays within tolerance: analytic from the "
        f"diagonal alone, reference from the full Jacobian, with {spare} more equations than "
        "that fit needs",
        layer.names,
    )
