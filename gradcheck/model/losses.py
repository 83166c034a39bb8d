"""Loss functions of the network's output, each value beside its output-layer delta.

Every loss is a :class:`Loss` in the :data:`LOSSES` registry.  ``value`` is the scalar
loss of a batch; ``delta`` is ``dL/dz_out``, the quantity backpropagation starts from.
For the elementwise losses ``delta = dL/da * activation'(z)``; cross-entropy is defined
on softmax outputs and its ``delta`` is the well-known ``(p - y) / n``.

Values reduce over the last two axes (samples, units), so they also accept a stack of
outputs of shape ``(K, n_samples, n_outputs)`` and return ``K`` losses: that is what
:meth:`gradcheck.model.network.Network.vectorized_loss` relies on.  They are complex-safe
(no ``abs``, no conjugation) and keep the dtype.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.errors import InvalidParameterError
from gradcheck.model.activations import Activation, log_softmax

__all__ = ["Loss", "LOSSES"]

Array = NDArray[Any]
_SAMPLES_AND_UNITS = (-2, -1)


@dataclass(frozen=True)
class Loss:
    """One loss function and its gradient with respect to the output pre-activation.

    Attributes
    ----------
    name : str
        Registry name, e.g. ``"half_sse"``.
    value : callable
        ``value(z_out, a_out, y) -> L``: the loss of the outputs ``a_out`` (computed
        from the pre-activations ``z_out``) against the targets ``y``, reduced over the
        last two axes.  Both ``z_out`` and ``a_out`` are given so that a loss can use
        the numerically better one (cross-entropy takes ``log p`` from ``z_out`` by
        log-sum-exp rather than ``log(a_out)``, which is ``-inf`` once ``p``
        underflows).
    delta : callable
        ``delta(z_out, a_out, y, activation) -> dL/dz_out`` for one batch of shape
        ``(n_samples, n_outputs)``, where ``activation`` is the output layer's
        :class:`~gradcheck.model.activations.Activation`.
    output_activation : str or None
        The only output activation the loss may be used with (``"softmax"`` for
        cross-entropy), or None for any elementwise activation.

    Examples
    --------
    >>> import numpy as np
    >>> from gradcheck.model.activations import ACTIVATIONS
    >>> from gradcheck.model.losses import LOSSES
    >>> identity = ACTIVATIONS["identity"]
    >>> z = np.array([[1.0, 2.0]]); y = np.array([[0.0, 0.0]])
    >>> float(LOSSES["half_sse"].value(z, z, y))
    2.5
    >>> LOSSES["half_sse"].delta(z, z, y, identity)
    array([[1., 2.]])
    """

    name: str
    value: Callable[[Array, Array, Array], Any]
    delta: Callable[[Array, Array, Array, Activation], Array]
    output_activation: str | None = None


def _through(activation: Activation, dL_da: Array, z: Array, a: Array) -> Array:
    """``dL/dz = dL/da * da/dz`` for an elementwise output activation."""
    if activation.derivative is None:
        raise InvalidParameterError(
            f"activation: {activation.name!r} has no elementwise derivative; it can only be "
            "the output of a loss that supplies dL/dz itself (softmax with 'cross_entropy')"
        )
    return dL_da * activation.derivative(z, a)


# -- half_sse: L = 1/2 sum (a - y)^2,  dL/da = a - y ------------------------------------------
def _half_sse(z: Array, a: Array, y: Array) -> Any:
    return 0.5 * np.sum((a - y) ** 2, axis=_SAMPLES_AND_UNITS)


def _half_sse_delta(z: Array, a: Array, y: Array, activation: Activation) -> Array:
    return _through(activation, a - y, z, a)


# -- mse: L = mean (a - y)^2,  dL/da = 2 (a - y) / (n_samples * n_outputs) ---------------------
def _mse(z: Array, a: Array, y: Array) -> Any:
    return np.mean((a - y) ** 2, axis=_SAMPLES_AND_UNITS)


def _mse_delta(z: Array, a: Array, y: Array, activation: Activation) -> Array:
    n_elements = a.shape[-2] * a.shape[-1]
    return _through(activation, 2 * (a - y) / n_elements, z, a)


# -- cross_entropy: L = -sum y log p / n,  dL/dz = (p - y) / n  (p = softmax(z)) --------------
def _cross_entropy(z: Array, p: Array, y: Array) -> Any:
    n_samples = z.shape[-2]
    return -np.sum(y * log_softmax(z), axis=_SAMPLES_AND_UNITS) / n_samples


def _cross_entropy_delta(z: Array, p: Array, y: Array, activation: Activation) -> Array:
    if activation.name != "softmax":
        raise InvalidParameterError(
            f"activation: loss 'cross_entropy' needs the output activation 'softmax', "
            f"got {activation.name!r}"
        )
    # dL/dz_k = (p_k * sum_j y_j - y_k) / n: the familiar (p - y) / n when each row of y sums
    # to 1 (one-hot or probabilities), and still exact when it does not.
    total = y.sum(axis=-1, keepdims=True)
    delta = p * total - y
    # At the most likely class p rounds to 1 once the others' share is below eps, and
    # p * total - y cancels to 0.  There (p - 1) * total + (total - y) is exact with
    # p - 1 = expm1(log p) and total - y = the sum of the other classes' targets.
    top = z.real.argmax(axis=-1)[..., np.newaxis]
    is_top = np.arange(z.shape[-1]) == top
    log_p_top = np.take_along_axis(log_softmax(z), top, axis=-1)
    other_targets = np.where(is_top, 0, y).sum(axis=-1, keepdims=True)
    delta = np.where(is_top, np.expm1(log_p_top) * total + other_targets, delta)
    return delta / z.shape[-2]


#: The loss functions by name.
LOSSES: dict[str, Loss] = {
    loss.name: loss
    for loss in (
        Loss("half_sse", _half_sse, _half_sse_delta),
        Loss("mse", _mse, _mse_delta),
        Loss("cross_entropy", _cross_entropy, _cross_entropy_delta, output_activation="softmax"),
    )
}
