"""The bug catalogue: backprop bugs people really write, each caught beside its correct twin.

Every bug is the correct backward pass of :class:`gradcheck.model.network.Network` with one thing
changed (:func:`backprop` below, switched by the bug's name).  Each bug runs on several
architectures, both on ordinary parameters and on a saturated network whose output units sit
at ``z ~ -22`` so that every gradient is ~1e-10; the correct twin on the same problem must
pass.  Where the bug has a recognisable pattern the diagnosis must name it.

Cost: 110 checks, ~25 s on one core (~15 s with -n 2).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from typing import Any

import numpy as np
import pytest

import gradcheck
from gradcheck.model.activations import ACTIVATIONS
from gradcheck.model.losses import LOSSES
from gradcheck.model.network import Network, random_data

Params = dict[str, np.ndarray]
Grad = Callable[[Params], Params]

SEED_X = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=float)
SEED_Y = np.array([[0], [1], [1], [0]], dtype=float)


# -- problems --------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class Problem:
    name: str
    network: Network
    params: Params
    x: np.ndarray
    y: np.ndarray

    def functions(self) -> tuple[Callable[[Params], Any], Grad]:
        return self.network.functions(self.x, self.y)


ARCHITECTURES: dict[str, tuple[Network, int]] = {
    # the seed question: 3-4-1 sigmoid, no bias, 4 samples (hidden width = batch size)
    "seed": (Network((3, 4, 1), ("sigmoid", "sigmoid"), bias=False), 4),
    "tanh": (Network((3, 5, 2), ("tanh", "sigmoid")), 5),
    "square": (Network((4, 4, 4, 2), ("sigmoid", "tanh", "sigmoid")), 6),
    "deep": (Network((3, 5, 5, 4, 2), ("tanh", "sigmoid", "tanh", "sigmoid")), 5),
    "mse": (Network((3, 4, 1), ("tanh", "sigmoid"), loss="mse"), 5),
    "wide": (Network((3, 5, 1), ("sigmoid", "sigmoid")), 4),
}


def _saturate(network: Network, params: Params, x: np.ndarray) -> Params:
    """Push every output pre-activation to about -22: sigmoid' ~ 3e-10, no cancellation."""
    params = {k: v.copy() for k, v in params.items()}
    forward = network.forward(params, x)
    last = network.n_layers
    z_out = forward.z[-1]
    if network.bias:
        params[f"bias{last}"] += -22.0 - z_out.mean(axis=0)
    else:  # sigmoid hidden units are positive: a large negative weight row saturates the output
        weight = np.abs(params[f"weight{last}"])
        reach = (forward.a_prev[-1] @ weight).mean(axis=0)
        params[f"weight{last}"] = -weight * (22.0 / reach)
    return params


@cache
def problem(arch: str, saturated: bool) -> Problem:
    network, n = ARCHITECTURES[arch]
    if arch == "seed":
        x, y = SEED_X, SEED_Y
        params = {
            "weight1": np.random.default_rng(1).random((3, 4)),
            "weight2": np.random.default_rng(2).random((4, 1)),
        }
    else:
        x, y = random_data(network, n, rng=3)
        params = network.init_params(rng=4)
    if saturated:
        params = _saturate(network, params, x)
    return Problem(f"{arch}{'-saturated' if saturated else ''}", network, params, x, y)


def test_saturated_problems_have_tiny_gradients() -> None:
    for arch in ARCHITECTURES:
        p = problem(arch, True)
        grads = p.network.backward(p.params, p.x, p.y)
        largest = max(float(np.max(np.abs(g))) for g in grads.values())
        assert largest < 1e-8, (arch, largest)


# -- the buggy backward passes ---------------------------------------------------------------
def backprop(net: Network, params: Params, x: np.ndarray, y: np.ndarray, bug: str = "") -> Params:
    """``Network.backward`` written out, with the bug named ``bug`` planted (none if "")."""
    forward = net.forward(params, x)
    acts = [ACTIVATIONS[name] for name in net.activations]
    n_layers = net.n_layers
    delta = LOSSES[net.loss].delta(forward.z[-1], forward.output, y, acts[-1])  # dL/dz_L
    if bug == "sign-flip":
        delta = -delta  # (y - a) where (a - y) belongs: the seed question
    elif bug == "missing-half":
        delta = 2 * delta  # d/da of (a - y)**2 for a loss 1/2 (a - y)**2
    elif bug == "sum-vs-mean":
        delta = delta * x.shape[0]  # mse averages over samples; the gradient sums
    grads: Params = {}
    for i in reversed(range(n_layers)):
        layer, a_prev = i + 1, forward.a_prev[i]
        if bug == "first-sample":
            weight_grad, bias_grad = a_prev[:1].T @ delta[:1], delta[:1].sum(axis=0)
        else:
            weight_grad, bias_grad = a_prev.T @ delta, delta.sum(axis=0)
        if bug == "per-sample-delta" and layer == n_layers:
            weight_grad = delta  # delta is not dL/dW: a_prev.T @ delta is
        if bug == "transposed" and layer == 2:
            weight_grad = delta.T @ a_prev
        if bug == "bias-mean":
            bias_grad = delta.mean(axis=0)  # weights summed over samples, bias averaged
        if bug == "bias-wrong-axis" and layer == 1:
            bias_grad = delta.sum(axis=1)  # over units instead of samples (n == units)
        grads[f"weight{layer}"] = weight_grad
        if net.bias:
            grads[f"bias{layer}"] = bias_grad
        if i == 0:
            continue
        act, z, a = acts[i - 1], forward.z[i - 1], forward.a[i - 1]
        derivative = act.derivative
        assert derivative is not None
        if bug == "derivative-on-z" and i == n_layers - 1:
            sigma_prime = ON_Z[act.name](z)  # a (1 - a) written with z in place of a
        elif bug == "missing-derivative" and i == n_layers - 1:
            sigma_prime = np.ones_like(z)
        elif bug == "derivative-ignores-bias" and i == n_layers - 1:
            z_nobias = a_prev_of(forward, i - 1) @ params[f"weight{i}"]
            sigma_prime = derivative(z_nobias, act.forward(z_nobias))
        else:
            sigma_prime = derivative(z, a)
        weight = params[f"weight{layer}"]
        if bug == "w-not-wt" and layer == 2:
            delta = (delta @ weight) * sigma_prime  # runs only because weight2 is square
        else:
            delta = (delta @ weight.T) * sigma_prime
    grads = {name: grads[name] for name in net.param_shapes()}
    return grads


ON_Z: dict[str, Callable[[np.ndarray], np.ndarray]] = {
    "sigmoid": lambda z: z * (1 - z),  # should be a * (1 - a)
    "tanh": lambda z: 1 - z**2,  # should be 1 - a**2
}


def a_prev_of(forward: Any, i: int) -> np.ndarray:
    return forward.a_prev[i]


def _scaled_element(grads: Params, name: str, index: tuple[int, ...], relative: float) -> Params:
    grads = {k: v.copy() for k, v in grads.items()}
    scale = max(float(np.max(np.abs(v))) for v in grads.values())
    grads[name][index] += relative * scale
    return grads


def _post(grads: Params, bug: str, net: Network) -> Params:
    grads = {k: np.array(v, dtype=np.float64) for k, v in grads.items()}
    last = net.n_layers
    if bug == "swapped":
        grads["weight1"], grads["weight2"] = grads["weight2"], grads["weight1"]
    elif bug == "nan":
        grads["weight1"][1, 2] = np.nan
    elif bug == "inf":
        grads[f"weight{last}"][0, 0] = np.inf
    elif bug == "single-element":
        grads = _scaled_element(grads, "weight1", (1, 0), 0.05)
    elif bug == "off-by-1e-4":
        grads = {k: v * (1 + 1e-4) for k, v in grads.items()}
    elif bug == "zero-row":
        grads["weight3"][1, :] = 0.0
    return grads


def make_grad(bug: str, p: Problem) -> Grad:
    net, x, y = p.network, p.x, p.y
    if bug == "float32-backprop":

        def grad(params: Params) -> Params:
            low = {k: v.astype(np.float32) for k, v in params.items()}
            grads = backprop(net, low, x.astype(np.float32), y.astype(np.float32))
            return {k: v.astype(np.float64) for k, v in grads.items()}

        return grad
    if bug == "stale-weights":
        rng = np.random.default_rng(5)
        stale = {k: v * (1 + 0.02 * rng.standard_normal(v.shape)) for k, v in p.params.items()}
        cached = _post(backprop(net, stale, x, y), "", net)
        return lambda params: {k: v.copy() for k, v in cached.items()}
    return lambda params: _post(backprop(net, params, x, y, bug), bug, net)


# bug -> (architectures it applies to, the diagnosis it must get). "unknown" where no pattern
# gradcheck knows describes the bug on these problems (no layer_inputs are passed): a wrong name
# is worse than none, so "unknown" is asserted as firmly as a name.
CATALOGUE: dict[str, tuple[tuple[str, ...], str]] = {
    "per-sample-delta": (("seed",), "unknown"),
    "sign-flip": (("seed", "tanh", "deep"), "sign-flip"),
    "derivative-on-z": (("seed", "tanh", "square"), "unknown"),
    "missing-derivative": (("seed", "tanh", "deep"), "unknown"),
    "derivative-ignores-bias": (("tanh", "square"), "unknown"),
    "sum-vs-mean": (("mse", "tanh"), "constant-factor"),
    "missing-half": (("seed", "tanh", "deep"), "constant-factor"),
    "w-not-wt": (("square",), "unknown"),
    "transposed": (("square",), "transposed"),
    "single-element": (("seed", "tanh", "deep"), "few-elements"),
    "off-by-1e-4": (("seed", "tanh", "deep"), "constant-factor"),
    "first-sample": (("seed", "tanh", "deep"), "unknown"),
    "bias-mean": (("tanh", "deep"), "constant-factor"),
    "bias-wrong-axis": (("tanh",), "unknown"),
    "swapped": (("square",), "swapped"),
    "nan": (("seed", "tanh"), "non-finite"),
    "inf": (("seed", "deep"), "non-finite"),
    "stale-weights": (("seed", "tanh", "deep"), "different-point"),
    "float32-backprop": (("seed", "tanh", "deep"), "precision"),
    "zero-row": (("deep",), "zeroed"),
}

CASES = [
    pytest.param(bug, arch, saturated, id=f"{bug}-{arch}{'-saturated' if saturated else ''}")
    for bug, (archs, _) in CATALOGUE.items()
    for arch in archs
    for saturated in (False, True)
]


def test_catalogue_has_at_least_20_kinds() -> None:
    assert len(CATALOGUE) + 1 >= 20  # + the per-sample delta whose shapes differ, below


@pytest.mark.parametrize(
    ("arch", "saturated"),
    [
        pytest.param(arch, sat, id=f"{arch}{'-saturated' if sat else ''}")
        for arch in ARCHITECTURES
        for sat in (False, True)
    ],
)
def test_correct_twin_passes(arch: str, saturated: bool) -> None:
    p = problem(arch, saturated)
    loss, grad = p.functions()
    result = gradcheck.check(loss, grad, p.params, rng=0)
    assert result.passed, str(result)
    # the planted-bug harness with no bug is the correct backward pass
    twin = make_grad("", p)
    assert gradcheck.check(loss, twin, p.params, rng=0).passed


@pytest.mark.parametrize(("bug", "arch", "saturated"), CASES)
def test_bug_is_caught(bug: str, arch: str, saturated: bool) -> None:
    p = problem(arch, saturated)
    loss, _ = p.functions()
    result = gradcheck.check(loss, make_grad(bug, p), p.params, rng=0)
    assert not result.passed, f"{bug} on {p.name} was not caught:\n{result}"
    assert result.status == "failed"
    assert result.diagnosis is not None
    assert result.diagnosis.kind == CATALOGUE[bug][1], str(result)


@pytest.mark.parametrize("saturated", [False, True])
def test_per_sample_delta_with_mismatched_shapes_raises_naming_the_parameter(
    saturated: bool,
) -> None:
    p = problem("wide", saturated)  # 5 hidden units, 4 samples: delta2 is (4, 1), weight2 (5, 1)
    loss, _ = p.functions()
    grad = make_grad("per-sample-delta", p)
    with pytest.raises(gradcheck.GradientStructureError, match="weight2"):
        gradcheck.check(loss, grad, p.params, rng=0)


@pytest.mark.parametrize(
    ("bug", "expected"),
    [("missing-derivative", "missing-derivative"), ("derivative-on-z", "unknown")],
)
@pytest.mark.parametrize(
    ("arch", "saturated"),
    [("seed", False), ("seed", True), ("tanh", False), ("tanh", True)],
)
def test_a_dropped_derivative_is_named_given_the_layer_inputs(
    bug: str, expected: str, arch: str, saturated: bool
) -> None:
    """With its layer's input, the layer whose f'(z) was dropped is found; a derivative
    evaluated at the wrong place (z for a) is no dropped derivative, and is not called one."""
    p = problem(arch, saturated)
    assert arch in CATALOGUE[bug][0]
    loss, _ = p.functions()
    layer = p.network.n_layers - 1  # the bug is planted in the last hidden layer's derivative
    a_prev = p.network.forward(p.params, p.x).a_prev[layer - 1]
    result = gradcheck.check(
        loss, make_grad(bug, p), p.params, rng=0, layer_inputs={f"weight{layer}": a_prev}
    )
    assert result.status == "failed" and result.diagnosis is not None
    assert result.diagnosis.kind == expected, str(result)
    if expected == "missing-derivative":
        assert f"weight{layer}" in result.diagnosis.parameters
