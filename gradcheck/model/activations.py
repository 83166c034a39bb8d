"""Activation functions, each forward beside its derivative.

Every activation is an :class:`Activation` in the :data:`ACTIVATIONS` registry.  The
forward maps the pre-activation ``z`` to the output ``a``; the derivative returns
``da/dz`` elementwise and is given both ``z`` and ``a``: the textbook writes most
derivatives in terms of the output (``sigmoid' = a * (1 - a)``, ``tanh' = 1 - a**2``), but
those forms cancel to 0 once ``a`` rounds to 1, so sigmoid and tanh use ``z`` to stay
accurate relative to the true slope at saturation, which is what a gradient check compares.

The forwards are written for gradient checking:

* they accept complex input and return complex output, so the complex-step reference
  can push ``z + i*h`` through them (no ``abs``, no ``float()``, no ``np.real`` of the
  result: each is an analytic formula of ``z``, branches are chosen on ``z.real``);
* they keep the dtype (``float32`` in, ``float32`` out);
* they do not overflow or warn for large ``|z|``.

Softmax is not elementwise: its Jacobian couples the units of a row.  It has no
``derivative`` and may only be the output activation, paired with the
``"cross_entropy"`` loss whose ``delta`` is ``(p - y) / n`` directly (see
:mod:`gradcheck.model.losses`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["Activation", "ACTIVATIONS", "log_softmax"]

Array = NDArray[Any]


@dataclass(frozen=True)
class Activation:
    """One activation function and its elementwise derivative.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"sigmoid"``.
    forward : callable
        ``forward(z) -> a``, elementwise unless stated otherwise; complex-safe and
        dtype-preserving.
    derivative : callable or None
        ``derivative(z, a) -> da/dz`` elementwise, for real ``z`` and ``a = forward(z)``.
        ``None`` for activations whose Jacobian is not diagonal (softmax): those are
        only allowed as the output layer, with a loss that supplies ``dL/dz`` itself.

    Examples
    --------
    >>> import numpy as np
    >>> from gradcheck.model.activations import ACTIVATIONS
    >>> tanh = ACTIVATIONS["tanh"]
    >>> z = np.array([0.0, 1.0])
    >>> a = tanh.forward(z)
    >>> tanh.derivative(z, a).round(3)
    array([1.  , 0.42])
    """

    name: str
    forward: Callable[[Array], Array]
    derivative: Callable[[Array, Array], Array] | None

    @property
    def elementwise(self) -> bool:
        """True if the activation has an elementwise derivative (all but softmax)."""
        return self.derivative is not None


def _minus_abs(z: Array) -> Array:
    # -|z| for real z, written without abs so that it also passes a complex step through.
    return np.where(z.real >= 0, -z, z)


# -- sigmoid: a = 1 / (1 + exp(-z)),  da/dz = a (1 - a) = sigmoid(z) sigmoid(-z) --------------
def _sigmoid(z: Array) -> Array:
    # exp of an argument with non-positive real part never overflows, so evaluate
    # 1/(1+e^-z) where Re z >= 0 and the equal e^z/(1+e^z) where Re z < 0.  This is
    # also what keeps complex input finite: 1/(1+e^-z) gives nan+nanj at z = -1000+1e-20j.
    e = np.exp(_minus_abs(z))
    return np.where(z.real >= 0, 1, e) / (1 + e)


def _sigmoid_derivative(z: Array, a: Array) -> Array:
    # a (1 - a), but with 1 - a = sigmoid(-z): once a rounds to 1 (z > 37 in float64),
    # a (1 - a) is 0 while the true slope, about e^-z, is what a gradient check compares.
    return a * _sigmoid(-z)


# -- tanh: a = tanh(z),  da/dz = 1 - a^2 = sech^2 z --------------------------------------------
def _tanh(z: Array) -> Array:
    return np.tanh(z)


def _tanh_derivative(z: Array, a: Array) -> Array:
    # 1 - a^2, but computed as sech^2 z = 4e / (1 + e)^2 with e = exp(-2|z|): 1 - a^2 is 0
    # once a rounds to +-1 (|z| > 19 in float64) while the true slope is about 4 e^-2|z|.
    e = np.exp(2 * _minus_abs(z))
    return 4 * e / (1 + e) ** 2


# -- relu: a = z if z > 0 else 0,  da/dz = 1 if z > 0 else 0 ---------------------------------
def _relu(z: Array) -> Array:
    # Branch on the real part only: a complex-step perturbation i*h must pass through
    # unchanged where the unit is active.
    return np.where(z.real > 0, z, 0)


def _relu_derivative(z: Array, a: Array) -> Array:
    return (z.real > 0).astype(z.dtype)


# -- identity: a = z,  da/dz = 1 -------------------------------------------------------------
def _identity(z: Array) -> Array:
    return z


def _identity_derivative(z: Array, a: Array) -> Array:
    return np.ones_like(z)


# -- softmax over the last axis: p = exp(z) / sum(exp(z)); no elementwise derivative ---------
def _shifted(z: Array) -> Array:
    # Subtracting the row maximum changes neither softmax nor log-softmax and keeps exp
    # from overflowing; only the real part decides the shift, so z's imaginary part
    # (a complex step) is carried through untouched.
    return z - z.real.max(axis=-1, keepdims=True)


def _softmax(z: Array) -> Array:
    e = np.exp(_shifted(z))
    return e / e.sum(axis=-1, keepdims=True)


def log_softmax(z: Array) -> Array:
    """Logarithm of the softmax of ``z`` over the last axis, by log-sum-exp with ``log1p``.

    Parameters
    ----------
    z : ndarray
        Pre-activations, shape ``(..., n_classes)``; real or complex.

    Returns
    -------
    ndarray
        ``log(softmax(z))`` with ``z``'s shape and dtype.  Finite wherever ``z`` is, even
        where ``softmax(z)`` underflows to 0 (where ``log(softmax(z))`` would be ``-inf``),
        and accurate to rounding relative to itself, even at the most likely class where
        ``log p`` is tiny.

    Notes
    -----
    With ``m`` the row's entry of largest real part,
    ``log p_k = (z_k - m) - log1p(sum_{j != m} exp(z_j - m))``.  Shifting by ``m`` keeps
    ``exp`` from overflowing; leaving the maximum's ``exp(0) = 1`` out of the sum and adding
    it back through ``log1p`` keeps the other classes' share when it is below ``eps``
    (``log(1 + 1e-26)`` is 0 in floating point, ``log1p(1e-26)`` is not).  The shift is
    by the complex ``m`` itself, so a complex step enters only as differences
    ``z_j - m`` and is not lost to cancellation.

    Examples
    --------
    >>> import numpy as np
    >>> log_softmax(np.array([[0.0, 1000.0]]))
    array([[-1000.,     0.]])
    """
    top = z.real.argmax(axis=-1)[..., np.newaxis]
    shifted = z - np.take_along_axis(z, top, axis=-1)  # exactly 0 at the maximum
    is_top = np.arange(z.shape[-1]) == top
    others = np.where(is_top, 0, np.exp(shifted)).sum(axis=-1, keepdims=True)
    return shifted - np.log1p(others)


#: The activation functions by name.
ACTIVATIONS: dict[str, Activation] = {
    activation.name: activation
    for activation in (
        Activation("sigmoid", _sigmoid, _sigmoid_derivative),
        Activation("tanh", _tanh, _tanh_derivative),
        Activation("relu", _relu, _relu_derivative),
        Activation("identity", _identity, _identity_derivative),
        Activation("softmax", _softmax, None),
    )
}
