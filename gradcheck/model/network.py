"""A small fully connected network in numpy, with its loss and hand-written backpropagation.

This is the model gradcheck's examples and tests check, and the one the seed question is
about.  It is written to be read next to the math: layer ``l`` computes

.. math::

    z_l = a_{l-1} W_l + b_l, \\qquad a_l = \\sigma_l(z_l), \\qquad a_0 = x,

with one row per sample, and backpropagation computes ``delta_l = dL/dz_l`` (one row per
sample) from the output back:

.. math::

    \\frac{\\partial L}{\\partial W_l} = a_{l-1}^T \\delta_l, \\qquad
    \\frac{\\partial L}{\\partial b_l} = \\sum_{\\text{samples}} \\delta_l, \\qquad
    \\delta_{l-1} = (\\delta_l W_l^T) \\odot \\sigma_{l-1}'(z_{l-1}).

``a_{l-1}^T delta_l`` is the sum over samples of the outer product of the layer's input with
its delta: it has ``W_l``'s shape, while ``delta_l`` has shape (samples, units).

Parameters are a dict ``{"weight1": W1, "bias1": b1, "weight2": W2, ...}`` in layer order,
which is also the order of the flat vector (:meth:`Network.flatten`).
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from functools import cached_property
from itertools import pairwise
from typing import Any

import numpy as np
from numpy.typing import DTypeLike, NDArray

from gradcheck.errors import InvalidParameterError, ParameterTypeError
from gradcheck.model.activations import ACTIVATIONS
from gradcheck.model.losses import LOSSES, Loss

__all__ = ["Network", "Forward", "random_data"]

Array = NDArray[Any]
Params = dict[str, Array]
RngLike = np.random.Generator | int | None


@dataclass(frozen=True, eq=False)
class Forward:
    """What the forward pass computed, layer by layer: what the backward pass needs.

    Attributes
    ----------
    a_prev : tuple of ndarray
        The input of each layer, ``a_{l-1}`` (``a_prev[0]`` is ``x``).
    z : tuple of ndarray
        The pre-activation of each layer, ``z_l = a_{l-1} W_l + b_l``.
    a : tuple of ndarray
        The output of each layer, ``a_l = sigma_l(z_l)``.
    """

    a_prev: tuple[Array, ...]
    z: tuple[Array, ...]
    a: tuple[Array, ...]

    @property
    def output(self) -> Array:
        """The network's output, ``a`` of the last layer."""
        return self.a[-1]


@dataclass(frozen=True)
class Network:
    """A fully connected network: its architecture, loss, forward pass and backpropagation.

    Parameters
    ----------
    sizes : tuple of int
        Units per layer, input first: ``(3, 4, 1)`` is 3 inputs, 4 hidden units, 1 output.
    activations : tuple of str
        One activation name per layer after the input (``len(sizes) - 1`` of them), from
        :data:`gradcheck.model.activations.ACTIVATIONS`.  ``"softmax"`` only as the last one, and
        then with ``loss="cross_entropy"``.
    loss : str, optional
        Name of the loss in :data:`gradcheck.model.losses.LOSSES`; ``"half_sse"``
        (``1/2 * sum((a - y)**2)``, the seed's) by default.  ``"cross_entropy"`` needs the
        output activation ``"softmax"``.
    bias : bool, optional
        Whether the layers have biases ``bias1, bias2, ...`` (default True).

    Raises
    ------
    InvalidParameterError
        If an argument is invalid; the message starts with the argument's name.

    See Also
    --------
    random_data : inputs and targets that suit a network.

    Notes
    -----
    The methods take the parameters as a dict (see :meth:`param_shapes`), the inputs ``x``
    with shape ``(n_samples, sizes[0])`` and the targets ``y`` with shape
    ``(n_samples, sizes[-1])``.  Everything is dtype-preserving (``float32`` parameters and
    data give a ``float32`` loss and gradient) and the loss accepts complex parameters (the
    complex-step reference evaluates it at ``params + i*h``).

    Examples
    --------
    >>> import numpy as np
    >>> from gradcheck.model.network import Network, random_data
    >>> net = Network((3, 4, 1), ("sigmoid", "sigmoid"))
    >>> params = net.init_params(rng=0)
    >>> {name: w.shape for name, w in params.items()}
    {'weight1': (3, 4), 'bias1': (4,), 'weight2': (4, 1), 'bias2': (1,)}
    >>> x, y = random_data(net, 8, rng=1)
    >>> loss, grads = net.loss_and_grad(params, x, y)
    >>> grads["weight1"].shape
    (3, 4)
    """

    sizes: tuple[int, ...]
    activations: tuple[str, ...]
    loss: str = "half_sse"
    bias: bool = True

    def __post_init__(self) -> None:
        sizes = _validate_sizes(self.sizes)
        activations = _validate_activations(self.activations, len(sizes) - 1)
        if not isinstance(self.loss, str) or self.loss not in LOSSES:
            raise InvalidParameterError(
                f"loss: unknown loss {self.loss!r}; choose one of {', '.join(map(repr, LOSSES))}"
            )
        if not isinstance(self.bias, (bool, np.bool_)):
            raise ParameterTypeError(f"bias: expected True or False, got {self.bias!r}")
        _validate_pairing(activations, LOSSES[self.loss])
        object.__setattr__(self, "sizes", sizes)
        object.__setattr__(self, "activations", activations)
        object.__setattr__(self, "bias", bool(self.bias))

    # -- structure ---------------------------------------------------------------------------
    @property
    def n_layers(self) -> int:
        """Number of layers with parameters (``len(sizes) - 1``)."""
        return len(self.sizes) - 1

    def param_shapes(self) -> dict[str, tuple[int, ...]]:
        """The name and shape of every parameter, in layer order.

        Returns
        -------
        dict of str to tuple of int
            ``{"weight1": (sizes[0], sizes[1]), "bias1": (sizes[1],), "weight2": ...}``
            (no biases if ``bias=False``).  This order is the order of the flat vector.

        Examples
        --------
        >>> Network((2, 3, 1), ("tanh", "identity"), bias=False).param_shapes()
        {'weight1': (2, 3), 'weight2': (3, 1)}
        """
        return {name: shape for name, shape, _ in self._layout}

    @property
    def n_params(self) -> int:
        """Total number of scalar parameters."""
        return self._layout[-1][2].stop

    @cached_property
    def _layout(self) -> tuple[tuple[str, tuple[int, ...], slice], ...]:
        # (name, shape, slice of the flat vector) per parameter; computed once, as every
        # loss evaluation consults it.
        layout = []
        start = 0
        for layer, (fan_in, fan_out) in enumerate(pairwise(self.sizes), 1):
            shapes: list[tuple[str, tuple[int, ...]]] = [(f"weight{layer}", (fan_in, fan_out))]
            if self.bias:
                shapes.append((f"bias{layer}", (fan_out,)))
            for name, shape in shapes:
                stop = start + math.prod(shape)
                layout.append((name, shape, slice(start, stop)))
                start = stop
        return tuple(layout)

    def init_params(
        self, rng: RngLike = None, *, scale: float = 1.0, dtype: DTypeLike = np.float64
    ) -> Params:
        """Draw random parameters.

        Parameters
        ----------
        rng : numpy.random.Generator, int or None, optional
            Source of randomness, or a seed for :func:`numpy.random.default_rng`.
        scale : float, optional
            Weights are drawn from ``N(0, (scale / sqrt(fan_in))**2)``; the default 1 keeps
            the pre-activations of order 1.
        dtype : dtype, optional
            Real floating dtype of the arrays (default float64).

        Returns
        -------
        dict of str to ndarray
            Fresh arrays named and shaped as in :meth:`param_shapes`.  Biases are drawn
            from ``N(0, 0.1**2)`` rather than set to zero so that every bias gradient is
            nontrivial, which is what a gradient check wants.

        Raises
        ------
        InvalidParameterError
            If ``scale`` is not a positive finite number.
        ParameterTypeError
            If ``dtype`` is not a real floating dtype.

        Examples
        --------
        >>> net = Network((2, 2), ("identity",))
        >>> net.init_params(rng=0, dtype=np.float32)["weight1"].dtype
        dtype('float32')
        """
        dtype = np.dtype(dtype)
        if not np.issubdtype(dtype, np.floating):
            raise ParameterTypeError(f"dtype: expected a real floating dtype, got {dtype}")
        if not (isinstance(scale, numbers.Real) and np.isfinite(scale) and scale > 0):
            raise InvalidParameterError(f"scale: expected a positive finite number, got {scale!r}")
        generator = np.random.default_rng(rng)
        params: Params = {}
        for name, shape in self.param_shapes().items():
            std = scale / np.sqrt(shape[0]) if name.startswith("weight") else 0.1
            params[name] = (std * generator.standard_normal(shape)).astype(dtype)
        return params

    # -- flat vectors ------------------------------------------------------------------------
    def flatten(self, params: Mapping[str, Array]) -> Array:
        """Concatenate the parameters, ravelled, in the order of :meth:`param_shapes`.

        Parameters
        ----------
        params : mapping of str to ndarray
            Parameters of this network.

        Returns
        -------
        ndarray
            Shape ``(n_params,)``, the parameters' common dtype.

        Raises
        ------
        InvalidParameterError
            If a parameter is missing, unexpected or has the wrong shape.
        """
        self._check_params(params)
        return np.concatenate([np.ravel(params[name]) for name, _, _ in self._layout])

    def unflatten(self, vector: Array) -> Params:
        """Cut a flat vector (or a stack of them) into named parameter arrays.

        Parameters
        ----------
        vector : ndarray
            Shape ``(..., n_params)`` in the order of :meth:`flatten`.  Leading axes are
            kept: a stack of ``K`` vectors gives arrays of shape ``(K, *shape)``.

        Returns
        -------
        dict of str to ndarray
            New arrays (copies), in the order of :meth:`param_shapes`.

        Raises
        ------
        InvalidParameterError
            If the last axis does not have length ``n_params``.

        Examples
        --------
        >>> net = Network((2, 1), ("identity",))
        >>> net.unflatten(np.arange(3.0))
        {'weight1': array([[0.],
               [1.]]), 'bias1': array([2.])}
        """
        vector = np.asarray(vector)
        if vector.ndim == 0 or vector.shape[-1] != self.n_params:
            raise InvalidParameterError(
                f"vector: expected a last axis of length {self.n_params} (the number of "
                f"parameters), got shape {vector.shape}"
            )
        return {
            name: vector[..., part].reshape(vector.shape[:-1] + shape).copy()
            for name, shape, part in self._layout
        }

    # -- forward, loss, backward -------------------------------------------------------------
    def forward(self, params: Mapping[str, Array], x: Array) -> Forward:
        """Run the network on ``x``, keeping every layer's input, pre-activation and output.

        Parameters
        ----------
        params : mapping of str to ndarray
            Parameters (real or complex).
        x : array_like
            Inputs, shape ``(n_samples, sizes[0])``.

        Returns
        -------
        Forward
            ``a_prev``, ``z`` and ``a`` per layer; ``output`` is the last ``a``.

        Raises
        ------
        InvalidParameterError
            If ``params`` or ``x`` do not fit the network.
        """
        self._check_params(params)
        x = self._check_x(x)
        return self._forward(params, x)

    def _forward(self, params: Mapping[str, Array], x: Array) -> Forward:
        a_prev, zs, outputs = [], [], []
        a = x  # a_0 = x
        for layer, name in enumerate(self.activations, 1):
            z = _matmul(a, params[f"weight{layer}"])  # z_l = a_{l-1} W_l + b_l
            if self.bias:
                z = z + params[f"bias{layer}"]
            a_prev.append(a)
            zs.append(z)
            a = ACTIVATIONS[name].forward(z)  # a_l = sigma_l(z_l)
            outputs.append(a)
        return Forward(tuple(a_prev), tuple(zs), tuple(outputs))

    def loss_value(self, params: Mapping[str, Array], x: Array, y: Array) -> Any:
        """The loss of the network on ``(x, y)``.

        Parameters
        ----------
        params : mapping of str to ndarray
            Parameters; complex parameters give a complex loss (complex step).
        x : array_like
            Inputs, shape ``(n_samples, sizes[0])``.
        y : array_like
            Targets, shape ``(n_samples, sizes[-1])``.

        Returns
        -------
        numpy scalar
            The loss, in the result dtype of parameters and data.

        Raises
        ------
        InvalidParameterError
            If ``params``, ``x`` or ``y`` do not fit the network.
        """
        self._check_params(params)
        x, y = self._check_data(x, y)
        return self._loss(self._forward(params, x), y)

    def _loss(self, forward: Forward, y: Array) -> Any:
        return LOSSES[self.loss].value(forward.z[-1], forward.output, y)

    def backward(
        self,
        params: Mapping[str, Array],
        x: Array,
        y: Array,
        forward: Forward | None = None,
    ) -> Params:
        """The gradient of the loss by backpropagation.

        Parameters
        ----------
        params : mapping of str to ndarray
            Parameters (real).
        x, y : array_like
            Inputs ``(n_samples, sizes[0])`` and targets ``(n_samples, sizes[-1])``.
        forward : Forward, optional
            The result of :meth:`forward` at ``params`` and ``x``, if already computed
            (it is trusted to be).

        Returns
        -------
        dict of str to ndarray
            ``dL/dparam`` for every parameter, same names, shapes and order.

        Raises
        ------
        InvalidParameterError
            If ``params``, ``x`` or ``y`` do not fit the network.

        Notes
        -----
        ``delta = dL/dz`` starts at the output (the loss's ``delta``) and goes back one layer
        at a time: ``dL/dW_l = a_{l-1}^T delta_l``, ``dL/db_l = sum over samples of
        delta_l``, ``delta_{l-1} = (delta_l W_l^T) * sigma'_{l-1}(z_{l-1})``.
        """
        self._check_params(params)
        x, y = self._check_data(x, y)
        if forward is None:
            forward = self._forward(params, x)
        return self._backward(params, y, forward)

    def _backward(self, params: Mapping[str, Array], y: Array, forward: Forward) -> Params:
        activations = [ACTIVATIONS[name] for name in self.activations]
        # delta_L = dL/dz_L, one row per sample
        delta = LOSSES[self.loss].delta(forward.z[-1], forward.output, y, activations[-1])
        grads: Params = {}
        for i in reversed(range(self.n_layers)):  # i = l - 1 indexes layer l in forward
            layer = i + 1
            # dL/dW_l = a_{l-1}^T delta_l: sum over samples of outer(input, delta)
            grads[f"weight{layer}"] = forward.a_prev[i].T @ delta
            if self.bias:
                grads[f"bias{layer}"] = delta.sum(axis=0)  # dL/db_l = sum over samples of delta_l
            if i > 0:
                derivative = activations[i - 1].derivative
                assert derivative is not None  # validated: only the output may be softmax
                sigma_prime = derivative(forward.z[i - 1], forward.a[i - 1])  # sigma'(z_{l-1})
                # delta_{l-1} = (delta_l W_l^T) * sigma'_{l-1}(z_{l-1})
                delta = (delta @ params[f"weight{layer}"].T) * sigma_prime
        return {name: grads[name] for name, _, _ in self._layout}

    def loss_and_grad(self, params: Mapping[str, Array], x: Array, y: Array) -> tuple[Any, Params]:
        """The loss and its gradient from one forward pass.

        Parameters
        ----------
        params : mapping of str to ndarray
            Parameters.
        x, y : array_like
            Inputs and targets.

        Returns
        -------
        loss : numpy scalar
            As :meth:`loss_value`.
        grads : dict of str to ndarray
            As :meth:`backward`.

        Raises
        ------
        InvalidParameterError
            If ``params``, ``x`` or ``y`` do not fit the network.
        """
        self._check_params(params)
        x, y = self._check_data(x, y)
        forward = self._forward(params, x)
        return self._loss(forward, y), self._backward(params, y, forward)

    def functions(
        self, x: Array, y: Array
    ) -> tuple[Callable[[Mapping[str, Array]], Any], Callable[[Mapping[str, Array]], Params]]:
        """``(loss_fn, grad_fn)`` of the parameters alone, for fixed data.

        Parameters
        ----------
        x, y : array_like
            Inputs and targets, bound into the closures.

        Returns
        -------
        loss_fn : callable
            ``loss_fn(params) -> loss``.
        grad_fn : callable
            ``grad_fn(params) -> dict of gradients``.

        Examples
        --------
        >>> net = Network((2, 3, 1), ("tanh", "identity"))
        >>> x, y = random_data(net, 5, rng=0)
        >>> loss_fn, grad_fn = net.functions(x, y)
        >>> sorted(grad_fn(net.init_params(rng=0)))
        ['bias1', 'bias2', 'weight1', 'weight2']
        """
        x, y = self._check_data(x, y)
        return _BoundLoss(self, x, y), _BoundGradient(self, x, y)

    def vectorized_loss(self, x: Array, y: Array) -> Callable[[Array], Array]:
        """A loss that evaluates many flat parameter vectors at once.

        Parameters
        ----------
        x, y : array_like
            Inputs and targets, bound into the function.

        Returns
        -------
        callable
            ``f(thetas)`` with ``thetas`` of shape ``(K, n_params)`` (flat order of
            :meth:`flatten`), returning the ``K`` losses, shape ``(K,)``.  The layers run as
            batched matrix products ``(K, n, fan_in) @ (K, fan_in, fan_out)``, so
            evaluating many perturbations costs a few numpy calls instead of a Python loop;
            the first layer, whose input all rows share, updates the first row's product
            for rows whose weights differ from it in few entries (as a stack of
            finite-difference or complex-step points does) instead of multiplying again.

        Examples
        --------
        >>> net = Network((2, 3, 1), ("tanh", "identity"))
        >>> x, y = random_data(net, 5, rng=0)
        >>> thetas = np.random.default_rng(0).standard_normal((4, net.n_params))
        >>> net.vectorized_loss(x, y)(thetas).shape
        (4,)
        """
        x, y = self._check_data(x, y)
        return _BatchedLoss(self, x, y)

    # -- validation --------------------------------------------------------------------------
    def _check_params(self, params: Mapping[str, Array]) -> None:
        if not isinstance(params, Mapping):
            raise ParameterTypeError(
                f"params: expected a dict of arrays, got {type(params).__name__}"
            )
        for name, shape, _ in self._layout:
            if name not in params:
                raise InvalidParameterError(f"params: parameter {name!r} is missing")
            if np.shape(params[name]) != shape:
                raise InvalidParameterError(
                    f"params: {name!r} has shape {np.shape(params[name])}, expected {shape}"
                )
        if len(params) != len(self._layout):
            shapes = self.param_shapes()
            extra = next(name for name in params if name not in shapes)
            raise InvalidParameterError(
                f"params: {extra!r} is not a parameter of this network "
                f"(its parameters are {', '.join(map(repr, shapes))})"
            )

    def _check_x(self, x: Array) -> Array:
        x = np.asarray(x)
        if x.ndim != 2 or x.shape[1] != self.sizes[0]:
            raise InvalidParameterError(
                f"x: expected shape (n_samples, {self.sizes[0]}), got {x.shape}"
            )
        return x

    def _check_data(self, x: Array, y: Array) -> tuple[Array, Array]:
        x = self._check_x(x)
        y = np.asarray(y)
        if y.shape != (x.shape[0], self.sizes[-1]):
            raise InvalidParameterError(
                f"y: expected shape ({x.shape[0]}, {self.sizes[-1]}) (samples of x, outputs), "
                f"got {y.shape}"
            )
        return x, y


# -- the network's functions with their data bound (module-level classes: picklable, so a
# -- process pool or a dask cluster can run them) --------------------------------------------
class _Bound:
    def __init__(self, net: Network, x: Array, y: Array) -> None:
        self.net, self.x, self.y = net, x, y

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.net!r}, {len(self.x)} samples)"


class _BoundLoss(_Bound):
    """``loss(params)`` of a network on fixed data (see :meth:`Network.functions`)."""

    def __call__(self, params: Mapping[str, Array]) -> Any:
        self.net._check_params(params)
        return self.net._loss(self.net._forward(params, self.x), self.y)


class _BoundGradient(_Bound):
    """``grad(params)`` of a network on fixed data, by backpropagation.

    See :meth:`Network.functions`.
    """

    def __call__(self, params: Mapping[str, Array]) -> Params:
        self.net._check_params(params)
        return self.net._backward(params, self.y, self.net._forward(params, self.x))


class _BatchedLoss(_Bound):
    """The loss at each row of a stack of flat parameter vectors.

    See :meth:`Network.vectorized_loss`.
    """

    def __call__(self, thetas: Array) -> Array:
        net = self.net
        thetas = np.asarray(thetas)
        if thetas.ndim != 2 or thetas.shape[1] != net.n_params:
            raise InvalidParameterError(
                f"thetas: expected shape (K, {net.n_params}), got {thetas.shape}"
            )
        # Views into the stack, no copies: each row is read once, by the products.
        # Weights are (K, fan_in, fan_out); biases (K, fan_out) broadcast over samples
        # as (K, 1, fan_out).
        params = {
            name: thetas[:, part].reshape(
                (len(thetas), 1, *shape) if name.startswith("bias") else (len(thetas), *shape)
            )
            for name, shape, part in net._layout
        }
        return net._loss(net._forward(params, self.x), self.y)


#: Multiply-adds of one layer's product below which recomputing it is cheaper than finding
#: which weights changed (the comparison streams every row through memory).
_UPDATE_WORTH = 2**18


def _matmul(a: Array, W: Array) -> Array:
    """``a @ W``; for a stack of weight matrices sharing one input, by updates where it pays.

    A vectorized loss evaluates its first layer as ``x @ W_k`` for a stack of ``K``
    weight matrices and one input ``x``.  When the stack holds perturbations of one
    point (finite differences, complex steps), most ``W_k`` differ from ``W_0`` in a few
    entries, and ``x @ W_k = x @ W_0 + sum_(i,j) x[:, i] (W_k - W_0)[i, j] e_j`` costs
    ``O(n)`` per changed entry instead of a full product.  Rows that differ in more
    than ``fan_in`` entries get the full product, and small layers (under
    :data:`_UPDATE_WORTH` multiply-adds) are simply multiplied.  Either way the value is
    ``x @ W_k`` up to rounding.
    """
    if a.ndim != 2 or W.ndim != 3 or len(W) < 2 or a.shape[0] * W[0].size < _UPDATE_WORTH:
        return a @ W
    k_rows, fan_in, fan_out = W.shape
    flat = W.reshape(k_rows, fan_in * fan_out)
    base = a @ W[0]
    out = np.empty((k_rows, *base.shape), dtype=base.dtype)
    changes = np.flatnonzero(flat[1:] != flat[0])  # every row's changed entries, one pass
    rows, entries = np.divmod(changes, fan_in * fan_out)
    rows += 1
    dense = np.bincount(rows, minlength=k_rows) > fan_in
    out[~dense] = base
    if dense.any():
        out[dense] = a @ W[dense]
    sparse = ~dense[rows]
    rows, entries = rows[sparse], entries[sparse]
    i, j = np.divmod(entries, fan_out)
    update = a[:, i] * (flat[rows, entries] - flat[0, entries])  # column m: x[:, i_m] dW_m
    np.add.at(out.transpose(0, 2, 1), (rows, j), update.T)
    return out


def _validate_sizes(sizes: Any) -> tuple[int, ...]:
    if isinstance(sizes, (str, bytes)) or not hasattr(sizes, "__iter__"):
        raise ParameterTypeError(f"sizes: expected a sequence of ints, got {sizes!r}")
    sizes = tuple(sizes)
    for size in sizes:
        if isinstance(size, (bool, np.bool_)) or not isinstance(size, numbers.Integral):
            raise ParameterTypeError(f"sizes: expected ints, got {size!r} in {sizes}")
    if len(sizes) < 2:
        raise InvalidParameterError(
            f"sizes: expected at least two layer sizes (inputs and outputs), got {sizes}"
        )
    if min(sizes) < 1:
        raise InvalidParameterError(f"sizes: every layer needs at least 1 unit, got {sizes}")
    return tuple(int(size) for size in sizes)


def _validate_activations(activations: Any, n_layers: int) -> tuple[str, ...]:
    if isinstance(activations, str) or not hasattr(activations, "__iter__"):
        raise ParameterTypeError(
            f"activations: expected a sequence of {n_layers} activation names, got {activations!r}"
        )
    activations = tuple(activations)
    if len(activations) != n_layers:
        raise InvalidParameterError(
            f"activations: expected {n_layers} (one per layer after the input), "
            f"got {len(activations)}: {activations}"
        )
    for name in activations:
        if not isinstance(name, str) or name not in ACTIVATIONS:
            raise InvalidParameterError(
                f"activations: unknown activation {name!r}; choose from "
                f"{', '.join(map(repr, ACTIVATIONS))}"
            )
    return activations


def _validate_pairing(activations: tuple[str, ...], loss: Loss) -> None:
    for position, name in enumerate(activations[:-1], 1):
        if not ACTIVATIONS[name].elementwise:
            raise InvalidParameterError(
                f"activations: {name!r} (layer {position}) has no elementwise derivative and "
                "can only be the output activation"
            )
    output = activations[-1]
    if loss.output_activation is not None and output != loss.output_activation:
        raise InvalidParameterError(
            f"activations: loss {loss.name!r} needs the output activation "
            f"{loss.output_activation!r}, got {output!r}"
        )
    if not ACTIVATIONS[output].elementwise and loss.output_activation != output:
        pairs = [other.name for other in LOSSES.values() if other.output_activation == output]
        raise InvalidParameterError(
            f"loss: the output activation {output!r} needs loss "
            f"{' or '.join(map(repr, pairs))}, got {loss.name!r}"
        )


def random_data(
    network: Network, n_samples: int, rng: RngLike = None, *, dtype: DTypeLike = np.float64
) -> tuple[Array, Array]:
    """Random inputs and targets that suit ``network``'s output and loss.

    Parameters
    ----------
    network : Network
        The network the data is for.
    n_samples : int
        Number of samples (rows), at least 1.
    rng : numpy.random.Generator, int or None, optional
        Source of randomness, or a seed for :func:`numpy.random.default_rng`.
    dtype : dtype, optional
        Real floating dtype of ``x`` and ``y`` (default float64).

    Returns
    -------
    x : ndarray
        Standard normal inputs, shape ``(n_samples, sizes[0])``.
    y : ndarray
        Targets, shape ``(n_samples, sizes[-1])``: one-hot rows for a softmax output,
        uniform in ``(0.05, 0.95)`` for a sigmoid output, standard normal otherwise.

    Raises
    ------
    InvalidParameterError
        If ``n_samples`` is not a positive int.
    ParameterTypeError
        If ``network`` is not a :class:`Network` or ``dtype`` is not a real floating dtype.

    Examples
    --------
    >>> net = Network((3, 2), ("softmax",), loss="cross_entropy")
    >>> x, y = random_data(net, 4, rng=0)
    >>> y.sum(axis=1)
    array([1., 1., 1., 1.])
    """
    if not isinstance(network, Network):
        raise ParameterTypeError(f"network: expected a Network, got {type(network).__name__}")
    if isinstance(n_samples, (bool, np.bool_)) or not isinstance(n_samples, numbers.Integral):
        raise InvalidParameterError(f"n_samples: expected a positive int, got {n_samples!r}")
    if n_samples < 1:
        raise InvalidParameterError(f"n_samples: expected a positive int, got {n_samples!r}")
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise ParameterTypeError(f"dtype: expected a real floating dtype, got {dtype}")
    generator = np.random.default_rng(rng)
    n_outputs = network.sizes[-1]
    x = generator.standard_normal((n_samples, network.sizes[0]))
    output = network.activations[-1]
    if output == "softmax":
        y = np.eye(n_outputs)[generator.integers(n_outputs, size=n_samples)]
    elif output == "sigmoid":
        y = generator.uniform(0.05, 0.95, size=(n_samples, n_outputs))
    else:
        y = generator.standard_normal((n_samples, n_outputs))
    return x.astype(dtype), y.astype(dtype)
