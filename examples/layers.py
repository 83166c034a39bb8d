"""cs231n-style layers, each backward pass checked with ``gradcheck.check_vjp``.

Every layer is written the way the course writes it, ``forward(x, ...) -> (out, cache)``
and ``backward(dout, cache) -> (dx, ...)``, and each has a planted-bug twin of a
mistake learners make.  ``python examples/layers.py`` checks them all: the correct
ones pass, the twins fail with the wrong element named and, where the pattern
allows, the bug.

A backward pass is a vector-Jacobian product: ``backward(dout)`` is the gradient of
``sum(dout * forward(x))``.  :func:`as_vjp` turns a forward/backward pair into the
``f(*inputs)`` and ``vjp(dout, *inputs)`` that :func:`gradcheck.check_vjp` takes, so no
layer has to be wrapped as a scalar loss by hand.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np

import gradcheck

# -- helpers ----------------------------------------------------------------------------


def as_vjp(
    forward: Callable[..., tuple[Any, Any]], backward: Callable[[Any, Any], Any]
) -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``f(*inputs)`` and ``vjp(dout, *inputs)`` from a cs231n forward/backward pair."""

    def f(*inputs: Any) -> Any:
        return forward(*inputs)[0]

    def vjp(dout: Any, *inputs: Any) -> Any:
        return backward(dout, forward(*inputs)[1])

    return f, vjp


# -- affine -----------------------------------------------------------------------------


def affine_forward(x, w, b):
    out = x.reshape(x.shape[0], -1) @ w + b
    return out, (x, w)


def affine_backward(dout, cache):
    x, w = cache
    dx = (dout @ w.T).reshape(x.shape)
    dw = x.reshape(x.shape[0], -1).T @ dout
    db = dout.sum(axis=0)
    return dx, dw, db


def affine_backward_mean_bias(dout, cache):
    """Bug: the bias gradient averages over the batch where the forward pass adds it to each."""
    dx, dw, _ = affine_backward(dout, cache)
    return dx, dw, dout.mean(axis=0)


def affine_backward_transposed(dout, cache):
    """Bug: ``dout.T @ x`` where ``x.T @ dout`` belongs (runs when the weight is square)."""
    x, w = cache
    dx, _, db = affine_backward(dout, cache)
    return dx, (dout.T @ x.reshape(x.shape[0], -1)), db


# -- relu -------------------------------------------------------------------------------


def relu_forward(x):
    return np.maximum(x, 0), x


def relu_backward(dout, cache):
    return dout * (cache > 0)


def relu_backward_no_mask(dout, cache):
    """Bug: the upstream gradient passed through unmasked."""
    return dout


# -- convolution (naive) ----------------------------------------------------------------


def conv_forward_naive(x, w, b, conv_param):
    stride, pad = conv_param["stride"], conv_param["pad"]
    n, _, height, width = x.shape
    filters, _, hh, ww = w.shape
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    out_h = 1 + (height + 2 * pad - hh) // stride
    out_w = 1 + (width + 2 * pad - ww) // stride
    out = np.zeros((n, filters, out_h, out_w), dtype=np.result_type(x, w, b))
    for i in range(out_h):
        for j in range(out_w):
            window = padded[:, :, i * stride : i * stride + hh, j * stride : j * stride + ww]
            out[:, :, i, j] = np.tensordot(window, w, axes=([1, 2, 3], [1, 2, 3])) + b
    return out, (x, w, b, conv_param)


def conv_backward_naive(dout, cache):
    x, w, b, conv_param = cache
    stride, pad = conv_param["stride"], conv_param["pad"]
    _, _, hh, ww = w.shape
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    dpadded = np.zeros_like(padded)
    dw = np.zeros_like(w)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            rows = slice(i * stride, i * stride + hh)
            cols = slice(j * stride, j * stride + ww)
            window = padded[:, :, rows, cols]
            dw += np.tensordot(dout[:, :, i, j], window, axes=([0], [0]))
            dpadded[:, :, rows, cols] += np.tensordot(dout[:, :, i, j], w, axes=([1], [0]))
    height, width = x.shape[2], x.shape[3]
    dx = dpadded[:, :, pad : pad + height, pad : pad + width]
    return dx, dw, dout.sum(axis=(0, 2, 3))


def conv_backward_unflipped(dout, cache):
    """Bug: each filter's gradient taken from the window rotated by 180 degrees."""
    dx, dw, db = conv_backward_naive(dout, cache)
    return dx, dw[:, :, ::-1, ::-1], db


# -- max pooling (overlapping windows) --------------------------------------------------


def max_pool_forward_naive(x, pool_param):
    size, stride = pool_param["pool_height"], pool_param["stride"]
    n, c, height, width = x.shape
    out_h = 1 + (height - size) // stride
    out_w = 1 + (width - size) // stride
    out = np.zeros((n, c, out_h, out_w), dtype=x.dtype)
    for i in range(out_h):
        for j in range(out_w):
            window = x[:, :, i * stride : i * stride + size, j * stride : j * stride + size]
            out[:, :, i, j] = window.reshape(n, c, -1).max(axis=2)
    return out, (x, pool_param)


def _pool_backward(dout, cache, *, accumulate: bool):
    x, pool_param = cache
    size, stride = pool_param["pool_height"], pool_param["stride"]
    n, c = x.shape[:2]
    dx = np.zeros_like(x)
    for i in range(dout.shape[2]):
        for j in range(dout.shape[3]):
            rows = slice(i * stride, i * stride + size)
            cols = slice(j * stride, j * stride + size)
            window = x[:, :, rows, cols].reshape(n, c, -1)
            where = np.argmax(window, axis=2)
            mask = np.zeros_like(window)
            np.put_along_axis(mask, where[..., None], 1.0, axis=2)
            routed = (mask * dout[:, :, i, j][..., None]).reshape(n, c, size, size)
            if accumulate:
                dx[:, :, rows, cols] += routed
            else:  # overwrites what an overlapping window already routed there
                dx[:, :, rows, cols] = np.where(routed != 0, routed, dx[:, :, rows, cols])
    return (dx,)


def max_pool_backward_naive(dout, cache):
    return _pool_backward(dout, cache, accumulate=True)[0]


def max_pool_backward_overwrites(dout, cache):
    """Bug: ``dx[window] = ...`` where ``+=`` belongs; wrong only where windows overlap."""
    return _pool_backward(dout, cache, accumulate=False)[0]


# -- batch normalisation (training mode) ------------------------------------------------


def batchnorm_forward(x, gamma, beta, bn_param):
    eps = bn_param.get("eps", 1e-5)
    mu = x.mean(axis=0)
    var = ((x - mu) ** 2).mean(axis=0)  # not x.var(): that takes |x|, and the complex step
    std = np.sqrt(var + eps)
    x_hat = (x - mu) / std
    return gamma * x_hat + beta, (x_hat, gamma, std)


def batchnorm_backward(dout, cache):
    x_hat, gamma, std = cache
    n = dout.shape[0]
    dx_hat = dout * gamma
    dx = (n * dx_hat - dx_hat.sum(axis=0) - x_hat * (dx_hat * x_hat).sum(axis=0)) / (n * std)
    return dx, (dout * x_hat).sum(axis=0), dout.sum(axis=0)


def batchnorm_backward_constant_statistics(dout, cache):
    """Bug: the batch mean and variance treated as constants (their terms missing from dx)."""
    x_hat, gamma, std = cache
    return dout * gamma / std, (dout * x_hat).sum(axis=0), dout.sum(axis=0)


# -- softmax loss -----------------------------------------------------------------------


def softmax_loss(x, y):
    shifted = x - x.max(axis=1, keepdims=True)
    log_probs = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
    n = x.shape[0]
    loss = -log_probs[np.arange(n), y].sum() / n
    dx = np.exp(log_probs)
    dx[np.arange(n), y] -= 1
    return loss, dx / n


def softmax_loss_forward(x, y):
    return softmax_loss(x, y)[0], (x, y)


def softmax_loss_backward(dout, cache):
    return dout * softmax_loss(*cache)[1]


def softmax_loss_backward_sign(dout, cache):
    """Bug: ``1 - p`` at the true class where ``p - 1`` belongs (the sign of every entry)."""
    return -dout * softmax_loss(*cache)[1]


# -- the problems -----------------------------------------------------------------------


def problems(seed: int = 0) -> dict[str, dict[str, Any]]:
    """Every layer at a small random point: forward, backward, its buggy twin, inputs."""
    rng = np.random.default_rng(seed)
    pre = rng.standard_normal((4, 5))
    pre[np.abs(pre) < 0.05] = 0.5  # away from relu's kink
    pooled = rng.permutation(2 * 2 * 5 * 5).reshape(2, 2, 5, 5) / 10.0  # no ties in a window
    return {
        "affine": {
            "forward": affine_forward,
            "backward": affine_backward,
            "bug": affine_backward_mean_bias,
            "inputs": (
                rng.standard_normal((4, 2, 3)),
                rng.standard_normal((6, 5)),
                rng.standard_normal(5),
            ),
            "bug_kind": "constant-factor",
        },
        "affine (square weight)": {
            "forward": affine_forward,
            "backward": affine_backward,
            "bug": affine_backward_transposed,
            "inputs": (
                rng.standard_normal((5, 4)),
                rng.standard_normal((4, 4)),
                rng.standard_normal(4),
            ),
            "bug_kind": "transposed",
        },
        "relu": {
            "forward": relu_forward,
            "backward": relu_backward,
            "bug": relu_backward_no_mask,
            "inputs": (pre,),
            "bug_kind": None,
        },
        "conv": {
            "forward": conv_forward_naive,
            "backward": conv_backward_naive,
            "bug": conv_backward_unflipped,
            "inputs": (
                rng.standard_normal((1, 2, 4, 4)),
                rng.standard_normal((2, 2, 3, 3)),
                rng.standard_normal(2),
                {"stride": 1, "pad": 1},
            ),
            "bug_kind": None,
        },
        "max pool (overlapping)": {
            "forward": max_pool_forward_naive,
            "backward": lambda dout, cache: (max_pool_backward_naive(dout, cache),),
            "bug": lambda dout, cache: (max_pool_backward_overwrites(dout, cache),),
            "inputs": (pooled, {"pool_height": 3, "pool_width": 3, "stride": 1}),
            "bug_kind": None,
        },
        "batch norm": {
            "forward": batchnorm_forward,
            "backward": batchnorm_backward,
            "bug": batchnorm_backward_constant_statistics,
            "inputs": (
                rng.standard_normal((6, 4)) * 2 + 1,
                rng.standard_normal(4),
                rng.standard_normal(4),
                {"mode": "train", "eps": 1e-5},
            ),
            "bug_kind": None,
        },
        "softmax loss": {
            "forward": softmax_loss_forward,
            "backward": softmax_loss_backward,
            "bug": softmax_loss_backward_sign,
            "inputs": (rng.standard_normal((5, 4)), rng.integers(0, 4, size=5)),
            "bug_kind": "sign-flip",
        },
    }


def check_layer(name: str, *, bug: bool = False, **options: Any) -> gradcheck.CheckResult:
    """``check_vjp`` of one layer's backward pass (or of its buggy twin)."""
    problem = problems()[name]
    f, vjp = as_vjp(problem["forward"], problem["bug" if bug else "backward"])
    return gradcheck.check_vjp(f, vjp, problem["inputs"], **options)


def main() -> int:
    failures = 0
    for name in problems():
        right, wrong = check_layer(name), check_layer(name, bug=True)
        cause = wrong.diagnosis.summary if wrong.diagnosis else "-"
        print(f"{name:24s} backward {'PASSED' if right.passed else 'FAILED'}; ", end="")
        print(f"planted bug {'caught' if not wrong.passed else 'MISSED'}: {cause[:90]}")
        if wrong.entries:
            print(f"{'':26s}first wrong entry: {wrong.entries[0]}")
        failures += (not right.passed) + wrong.passed
    return int(failures > 0)


if __name__ == "__main__":
    raise SystemExit(main())
