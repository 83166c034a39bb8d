"""Hypothesis strategies for networks, their parameters and data: property tests of gradients.

Plain functions returning strategies, keyword-only ``min_*``/``max_*`` options (the style of
:mod:`hypothesis.extra.numpy`).  Everything is drawn so that hypothesis *shrinks* toward the
smallest problem that still fails: depth toward ``min_depth``, widths toward ``min_width``,
batches toward ``min_batch``, activations and losses toward the first one listed, random seeds
toward 0.  A property test over a buggy gradient therefore reports a one-layer network with a
unit or two when the bug shows there.

Examples
--------
>>> from hypothesis import given, settings
>>> import gradcheck
>>> from gradcheck.strategies import network_problems
>>> @settings(max_examples=5, deadline=None)
... @given(network_problems(max_depth=2, max_width=4))
... def test_backward(problem):
...     loss, grad = problem.functions()
...     assert gradcheck.check(loss, grad, problem.params, rng=0).passed
>>> test_backward()

:func:`layer_problems` draws single layers (affine, activation, softmax-cross-entropy,
normalisation) with their inputs and a cotangent, each with a correct ``forward`` and
``vjp``: swap in your own backward pass and check it with :func:`gradcheck.check_vjp`.

>>> from gradcheck.strategies import layer_problems
>>> @settings(max_examples=5, deadline=None)
... @given(layer_problems(kinds=["affine"]))
... def test_my_affine_backward(problem):
...     def my_vjp(dout, x, w, b):
...         return dout @ w.T, x.T @ dout, dout.sum(axis=0)
...     assert gradcheck.check_vjp(problem.forward, my_vjp, problem.inputs, rng=0).passed
>>> test_my_affine_backward()
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from hypothesis import assume
from hypothesis import strategies as st
from numpy.typing import DTypeLike, NDArray

from gradcheck.errors import InvalidParameterError
from gradcheck.model.activations import ACTIVATIONS
from gradcheck.model.losses import LOSSES
from gradcheck.model.network import Network, random_data

__all__ = [
    "Architecture",
    "NetworkProblem",
    "HIDDEN_ACTIVATIONS",
    "LOSS_NAMES",
    "KINK_MARGIN",
    "architectures",
    "networks",
    "parameters",
    "inputs_and_targets",
    "network_problems",
    "LayerProblem",
    "LAYER_KINDS",
    "LAYER_ACTIVATIONS",
    "layer_problems",
]

#: Elementwise activations, in shrinking order (hypothesis prefers the first).
HIDDEN_ACTIVATIONS: tuple[str, ...] = tuple(n for n, a in ACTIVATIONS.items() if a.elementwise)
#: Loss names, in shrinking order.
LOSS_NAMES: tuple[str, ...] = tuple(LOSSES)
#: Smallest ``|z|`` a relu unit may have, relative to ``1 + rms(z)`` of its layer, when problems
#: are drawn away from kinks: larger than the widest Richardson step (``64 eps**(1/3)`` of a
#: weight, ~4e-4) times a typical input, so no reference step crosses a kink.
KINK_MARGIN = 1e-2

_ARRAY = NDArray[Any]


class Architecture(NamedTuple):
    """The arguments of :class:`~gradcheck.model.Network`: what :func:`architectures` draws."""

    sizes: tuple[int, ...]
    activations: tuple[str, ...]
    loss: str
    bias: bool

    def network(self) -> Network:
        return Network(self.sizes, self.activations, self.loss, self.bias)


@dataclass(frozen=True, eq=False)
class NetworkProblem:
    """One drawn gradient-checking problem: a network, its parameters and a batch.

    Attributes
    ----------
    network : Network
    params : dict of str to ndarray
    x, y : ndarray
        Inputs ``(n, sizes[0])`` and targets ``(n, sizes[-1])``, in the parameters' dtype.
    saturated : bool
        Whether the parameters were drawn large (saturated units, tiny gradients).
    """

    network: Network
    params: dict[str, _ARRAY]
    x: _ARRAY
    y: _ARRAY
    saturated: bool = False

    @property
    def dtype(self) -> np.dtype[Any]:
        return next(iter(self.params.values())).dtype

    @property
    def depth(self) -> int:
        return self.network.n_layers

    @property
    def n_samples(self) -> int:
        return int(self.x.shape[0])

    def functions(self) -> tuple[Any, Any]:
        """``(loss_fn, grad_fn)`` of the parameters, the network's correct backpropagation."""
        return self.network.functions(self.x, self.y)

    def __repr__(self) -> str:
        net = self.network
        return (
            f"NetworkProblem(sizes={net.sizes}, activations={net.activations}, loss={net.loss!r}, "
            f"bias={net.bias}, dtype={self.dtype}, n_samples={self.n_samples}, "
            f"saturated={self.saturated})"
        )


def _check_range(name_min: str, low: int, name_max: str, high: int, floor: int) -> None:
    for name, value in ((name_min, low), (name_max, high)):
        if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
            raise InvalidParameterError(f"{name}: expected an int, got {value!r}")
    if low < floor:
        raise InvalidParameterError(f"{name_min}: must be >= {floor}, got {low}")
    if high < low:
        raise InvalidParameterError(f"{name_max}: must be >= {name_min} ({low}), got {high}")


def _names(
    name: str, given: Sequence[str] | None, default: tuple[str, ...], registry: dict[str, Any]
) -> tuple[str, ...]:
    if given is None:
        return default
    if isinstance(given, str):
        given = (given,)
    names = tuple(given)
    if not names:
        raise InvalidParameterError(f"{name}: must name at least one")
    unknown = [n for n in names if n not in registry]
    if unknown:
        raise InvalidParameterError(
            f"{name}: unknown {unknown[0]!r}; choose from {', '.join(registry)}"
        )
    return names


def architectures(
    *,
    min_depth: int = 1,
    max_depth: int = 4,
    min_width: int = 1,
    max_width: int = 16,
    activations: Sequence[str] | None = None,
    losses: Sequence[str] | None = None,
    bias: bool | None = None,
) -> st.SearchStrategy[Architecture]:
    """Network architectures: sizes, activations, loss and bias.

    Parameters
    ----------
    min_depth, max_depth : int
        Number of layers with parameters.
    min_width, max_width : int
        Units per layer (inputs and outputs included).  A softmax output gets at least 2.
    activations : sequence of str, optional
        Elementwise activations to draw from (default all of
        :data:`HIDDEN_ACTIVATIONS`); the first is what shrinking prefers.
    losses : sequence of str, optional
        Losses to draw from (default all); ``"cross_entropy"`` comes with a softmax output.
    bias : bool, optional
        Force biases on or off; drawn when None.

    Returns
    -------
    SearchStrategy of Architecture
    """
    _check_range("min_depth", min_depth, "max_depth", max_depth, 1)
    _check_range("min_width", min_width, "max_width", max_width, 1)
    acts = _names("activations", activations, HIDDEN_ACTIVATIONS, ACTIVATIONS)
    if any(not ACTIVATIONS[a].elementwise for a in acts):
        raise InvalidParameterError(
            "activations: only elementwise activations (softmax comes "
            "with losses=('cross_entropy',))"
        )
    loss_names = _names("losses", losses, LOSS_NAMES, LOSSES)
    if bias is not None and not isinstance(bias, bool):
        raise InvalidParameterError(f"bias: expected True, False or None, got {bias!r}")

    @st.composite
    def draw_architecture(draw: st.DrawFn) -> Architecture:
        depth = draw(st.integers(min_depth, max_depth))
        loss = draw(st.sampled_from(loss_names))
        output_activation = LOSSES[loss].output_activation
        widths = [draw(st.integers(min_width, max_width)) for _ in range(depth + 1)]
        if output_activation is not None:
            widths[-1] = max(widths[-1], 2)
        layer_acts = [draw(st.sampled_from(acts)) for _ in range(depth - 1)]
        layer_acts.append(output_activation or draw(st.sampled_from(acts)))
        has_bias = draw(st.booleans()) if bias is None else bias
        return Architecture(tuple(widths), tuple(layer_acts), loss, has_bias)

    return draw_architecture()


def networks(**options: Any) -> st.SearchStrategy[Network]:
    """:class:`~gradcheck.model.network.Network` objects; takes :func:`architectures`' options."""
    return architectures(**options).map(Architecture.network)


def parameters(
    network: Network,
    *,
    dtype: DTypeLike = np.float64,
    saturated: bool = False,
    scale: float | tuple[float, float] = (0.5, 2.0),
    away_from_kinks: bool = True,
) -> st.SearchStrategy[dict[str, _ARRAY]]:
    """Parameters of ``network``: ``init_params`` at a drawn seed and weight scale.

    Parameters
    ----------
    network : Network
    dtype : dtype
        Real floating dtype of the arrays.
    saturated : bool
        Draw large weights (scale 8 to 40) and large biases (5 to 25 in magnitude, random
        sign): sigmoid and tanh units saturate and gradients become tiny (~1e-10 and below),
        relu and identity networks get large losses: both are hard cases for a checker.
    scale : float or (low, high)
        Weight scale (see ``Network.init_params``), drawn log-uniformly from a range.
    away_from_kinks : bool
        Keep biases at least 0.05 from 0.  Pre-activations of relu units can only be kept
        away from the kink against inputs: :func:`network_problems` does that.

    Returns
    -------
    SearchStrategy of dict of str to ndarray
        Seeds shrink toward 0, scales toward the low end of the range.
    """
    if not isinstance(network, Network):
        raise InvalidParameterError(f"network: expected a Network, got {type(network).__name__}")
    dtype = np.dtype(dtype)
    if not np.issubdtype(dtype, np.floating):
        raise InvalidParameterError(f"dtype: expected a real floating dtype, got {dtype}")
    low, high = (float(scale), float(scale)) if np.isscalar(scale) else map(float, scale)  # type: ignore[arg-type]
    if not (0 < low <= high and np.isfinite(high)):
        raise InvalidParameterError(f"scale: expected a positive number or range, got {scale!r}")
    if saturated:
        low, high = 8.0, 40.0

    @st.composite
    def draw_parameters(draw: st.DrawFn) -> dict[str, _ARRAY]:
        seed = draw(st.integers(0, 2**32 - 1))
        fraction = draw(st.floats(0.0, 1.0))
        weight_scale = low * (high / low) ** fraction
        params = network.init_params(rng=seed, scale=weight_scale, dtype=np.float64)
        rng = np.random.default_rng(seed + 1)
        for name, value in params.items():
            if not name.startswith("bias"):
                continue
            if saturated:
                magnitude = rng.uniform(5.0, 25.0, size=value.shape)
                value[...] = np.where(rng.random(value.shape) < 0.5, -magnitude, magnitude)
            elif away_from_kinks:
                value[...] = np.where(value >= 0, np.maximum(value, 0.05), np.minimum(value, -0.05))
        return {name: value.astype(dtype) for name, value in params.items()}

    return draw_parameters()


def inputs_and_targets(
    network: Network, *, min_batch: int = 1, max_batch: int = 16, dtype: DTypeLike = np.float64
) -> st.SearchStrategy[tuple[_ARRAY, _ARRAY]]:
    """A batch ``(x, y)`` for ``network`` (:func:`gradcheck.model.random_data` at a drawn seed).

    Parameters
    ----------
    network : Network
    min_batch, max_batch : int
        Number of samples; shrinks toward ``min_batch``.
    dtype : dtype
        Real floating dtype of ``x`` and ``y``.
    """
    _check_range("min_batch", min_batch, "max_batch", max_batch, 1)

    @st.composite
    def draw_batch(draw: st.DrawFn) -> tuple[_ARRAY, _ARRAY]:
        n = draw(st.integers(min_batch, max_batch))
        seed = draw(st.integers(0, 2**32 - 1))
        return random_data(network, n, rng=seed, dtype=dtype)

    return draw_batch()


def _kink_margin_ok(network: Network, params: dict[str, _ARRAY], x: _ARRAY) -> bool:
    forward = network.forward(
        {k: v.astype(np.float64) for k, v in params.items()}, x.astype(np.float64)
    )
    for name, z in zip(network.activations, forward.z, strict=True):
        if name != "relu":
            continue
        margin = KINK_MARGIN * (1.0 + float(np.sqrt(np.mean(z**2))))
        if np.min(np.abs(z)) < margin:
            return False
    return True


def network_problems(
    *,
    min_depth: int = 1,
    max_depth: int = 3,
    min_width: int = 1,
    max_width: int = 8,
    min_batch: int = 1,
    max_batch: int = 8,
    activations: Sequence[str] | None = None,
    losses: Sequence[str] | None = None,
    bias: bool | None = None,
    dtypes: Sequence[DTypeLike] = (np.float64,),
    saturated: bool | None = False,
    scale: float | tuple[float, float] = (0.5, 2.0),
    away_from_kinks: bool = True,
) -> st.SearchStrategy[NetworkProblem]:
    """Whole problems: a network, its parameters and a batch, as a :class:`NetworkProblem`.

    Parameters
    ----------
    min_depth, max_depth, min_width, max_width, activations, losses, bias
        As in :func:`architectures`.
    min_batch, max_batch : int
        As in :func:`inputs_and_targets`.
    dtypes : sequence of dtype
        Dtypes to draw from (parameters and data share one); the first is preferred.
    saturated : bool or None
        Saturated parameters always (True), never (False) or drawn (None).
    scale : float or (low, high)
        Weight scale of unsaturated parameters.
    away_from_kinks : bool
        Reject draws where a relu unit's pre-activation lies within
        :data:`KINK_MARGIN` (relative) of 0, where a finite difference would cross the kink.
    """
    kinds = [np.dtype(d) for d in dtypes]
    if not kinds:
        raise InvalidParameterError("dtypes: must name at least one dtype")
    architecture = architectures(
        min_depth=min_depth,
        max_depth=max_depth,
        min_width=min_width,
        max_width=max_width,
        activations=activations,
        losses=losses,
        bias=bias,
    )

    @st.composite
    def draw_problem(draw: st.DrawFn) -> NetworkProblem:
        network = draw(architecture).network()
        dtype = draw(st.sampled_from(kinds))
        is_saturated = draw(st.booleans()) if saturated is None else bool(saturated)
        params = draw(
            parameters(
                network,
                dtype=dtype,
                saturated=is_saturated,
                scale=scale,
                away_from_kinks=away_from_kinks,
            )
        )
        x, y = draw(
            inputs_and_targets(network, min_batch=min_batch, max_batch=max_batch, dtype=dtype)
        )
        if away_from_kinks:
            assume(_kink_margin_ok(network, params, x))
        return NetworkProblem(network, params, x, y, is_saturated)

    return draw_problem()


# -- single layers and their backward passes (vector-Jacobian products) -------------------------

#: Layer kinds :func:`layer_problems` draws, in shrinking order.
LAYER_KINDS: tuple[str, ...] = ("affine", "activation", "softmax_cross_entropy", "normalisation")
#: Activations of an ``"activation"`` layer, in shrinking order (relu is drawn off its kink).
LAYER_ACTIVATIONS: tuple[str, ...] = ("tanh", "sigmoid", "relu")
#: Variance floor of a normalised feature: ``1/sqrt(var + eps)`` stays well conditioned.
_NORM_EPS = 1e-5
_MIN_FEATURE_SPREAD = 1e-2


@dataclass(frozen=True, eq=False)
class LayerProblem:
    """One drawn layer: its inputs, a cotangent, and a correct ``forward`` and ``vjp``.

    Attributes
    ----------
    kind : str
        One of :data:`LAYER_KINDS`.
    name : str
        ``kind`` with its variant (``"activation:tanh"``).
    inputs : tuple
        The positional arguments of ``forward`` (softmax-cross-entropy's integer labels
        are held fixed by :func:`gradcheck.check_vjp`).
    cotangent : ndarray
        An array shaped like ``forward(*inputs)``: the ``dout`` of a backward pass.
    forward : callable
        ``forward(*inputs) -> out``.
    vjp : callable
        ``vjp(dout, *inputs)``: the correct backward pass, one gradient per
        floating-point input (a bare array when there is one).
    """

    kind: str
    name: str
    inputs: tuple[Any, ...]
    cotangent: _ARRAY
    forward: Any
    vjp: Any


def _affine(x: _ARRAY, w: _ARRAY, b: _ARRAY) -> _ARRAY:
    return x @ w + b


def _affine_vjp(dout: _ARRAY, x: _ARRAY, w: _ARRAY, b: _ARRAY) -> tuple[_ARRAY, ...]:
    return dout @ w.T, x.T @ dout, dout.sum(axis=0)


def _sigmoid(x: _ARRAY) -> _ARRAY:
    return 1.0 / (1.0 + np.exp(-x))


#: name -> (activation, its derivative as a function of the input)
_ACTIVATION_RULES: dict[str, tuple[Any, Any]] = {
    "tanh": (np.tanh, lambda x: 1.0 - np.tanh(x) ** 2),
    "sigmoid": (_sigmoid, lambda x: _sigmoid(x) * (1.0 - _sigmoid(x))),
    "relu": (lambda x: np.maximum(x, 0.0), lambda x: (x > 0).astype(x.dtype)),
}


def _softmax_ce(logits: _ARRAY, labels: NDArray[np.intp]) -> _ARRAY:
    shifted = logits - logits.max(axis=1, keepdims=True)
    log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    return np.asarray(-log_p[np.arange(len(labels)), labels].mean())


def _softmax_ce_vjp(dout: _ARRAY, logits: _ARRAY, labels: NDArray[np.intp]) -> _ARRAY:
    p = np.exp(logits - logits.max(axis=1, keepdims=True))
    p /= p.sum(axis=1, keepdims=True)
    p[np.arange(len(labels)), labels] -= 1.0
    return dout * p / len(labels)


def _batch_norm(x: _ARRAY, gamma: _ARRAY, beta: _ARRAY) -> _ARRAY:
    x_hat = (x - x.mean(axis=0)) / np.sqrt(x.var(axis=0) + _NORM_EPS)
    return gamma * x_hat + beta


def _batch_norm_vjp(dout: _ARRAY, x: _ARRAY, gamma: _ARRAY, beta: _ARRAY) -> tuple[_ARRAY, ...]:
    # The statistics depend on x: the two sums are their terms (a missing one is a classic bug).
    inv_std = 1.0 / np.sqrt(x.var(axis=0) + _NORM_EPS)
    x_hat = (x - x.mean(axis=0)) * inv_std
    d_hat = dout * gamma
    n = x.shape[0]
    dx = inv_std / n * (n * d_hat - d_hat.sum(axis=0) - x_hat * (d_hat * x_hat).sum(axis=0))
    return dx, (dout * x_hat).sum(axis=0), dout.sum(axis=0)


def _layer(kind: str, variant: str, batch: int, n_in: int, n_out: int, seed: int) -> LayerProblem:
    rng = np.random.default_rng(seed)
    if kind == "affine":
        inputs: tuple[Any, ...] = (
            rng.normal(size=(batch, n_in)),
            rng.normal(size=(n_in, n_out)),
            rng.normal(size=n_out),
        )
        return LayerProblem(
            kind, kind, inputs, rng.normal(size=(batch, n_out)), _affine, _affine_vjp
        )
    if kind == "activation":
        function, derivative = _ACTIVATION_RULES[variant]
        x = rng.normal(size=(batch, n_in))
        x = np.sign(x) * (KINK_MARGIN * 10 + np.abs(x)) + (x == 0)  # off relu's kink
        return LayerProblem(
            kind,
            f"{kind}:{variant}",
            (x,),
            rng.normal(size=x.shape),
            function,
            lambda dout, x: dout * derivative(x),
        )
    if kind == "softmax_cross_entropy":
        n_classes = max(n_out, 2)
        logits = rng.normal(size=(batch, n_classes))
        labels = rng.integers(0, n_classes, size=batch)
        return LayerProblem(
            kind, kind, (logits, labels), rng.normal(size=()), _softmax_ce, _softmax_ce_vjp
        )
    x = rng.normal(size=(max(batch, 2), n_in))
    inputs = (x, rng.normal(size=n_in), rng.normal(size=n_in))
    cotangent = rng.normal(size=x.shape)
    return LayerProblem(
        kind, "normalisation:batch", inputs, cotangent, _batch_norm, _batch_norm_vjp
    )


def layer_problems(
    *,
    kinds: Sequence[str] | None = None,
    activations: Sequence[str] | None = None,
    min_batch: int = 1,
    max_batch: int = 4,
    min_features: int = 1,
    max_features: int = 4,
) -> st.SearchStrategy[LayerProblem]:
    """Single layers with inputs and a cotangent, as :class:`LayerProblem`.

    Each problem carries a correct ``forward`` and ``vjp`` (backward pass), so a
    property test can check a user's own backward pass on the drawn inputs, or the
    checker itself.  Shrinks toward the first kind, the smallest batch and widths, and
    seed 0.

    Parameters
    ----------
    kinds : sequence of str, optional
        Layer kinds from :data:`LAYER_KINDS` (default: all): ``"affine"``
        (``x @ w + b``), ``"activation"`` (elementwise), ``"softmax_cross_entropy"``
        (mean loss over integer labels; a scalar output) and ``"normalisation"``
        (batch norm with ``gamma`` and ``beta``; a batch of at least 2).
    activations : sequence of str, optional
        Activations of an ``"activation"`` layer, from :data:`LAYER_ACTIVATIONS`.
    min_batch, max_batch : int
        Rows of the input batch.
    min_features, max_features : int
        Input and output widths (classes of softmax-cross-entropy: at least 2).

    Returns
    -------
    SearchStrategy of LayerProblem

    Raises
    ------
    InvalidParameterError
        An unknown kind or activation, or a ``min_*``/``max_*`` range that is empty.
    """
    _check_range("min_batch", min_batch, "max_batch", max_batch, 1)
    _check_range("min_features", min_features, "max_features", max_features, 1)
    kind_names = _names("kinds", kinds, LAYER_KINDS, dict.fromkeys(LAYER_KINDS))
    activation_names = _names(
        "activations", activations, LAYER_ACTIVATIONS, dict.fromkeys(LAYER_ACTIVATIONS)
    )

    @st.composite
    def draw_layer(draw: st.DrawFn) -> LayerProblem:
        kind = draw(st.sampled_from(kind_names))
        variant = draw(st.sampled_from(activation_names)) if kind == "activation" else ""
        batch = draw(st.integers(min_batch, max_batch))
        n_in = draw(st.integers(min_features, max_features))
        n_out = draw(st.integers(min_features, max_features))
        seed = draw(st.integers(0, 2**32 - 1))
        problem = _layer(kind, variant, batch, n_in, n_out, seed)
        if kind == "normalisation":
            assume(float(np.min(problem.inputs[0].std(axis=0))) > _MIN_FEATURE_SPREAD)
        return problem

    return draw_layer()
