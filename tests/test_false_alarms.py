"""Zero false alarms, and minimal failing cases.

Correct backpropagation (``Network.backward``) over hypothesis-drawn shapes, activations,
losses, biases, float32 and float64, saturated and scaled parameters must never fail.  The CI
profile (tests/conftest.py) runs 50 examples per property, ~15 s in all;
``GRADCHECK_HYPOTHESIS_PROFILE=thorough`` runs 1000 each.

Known core false alarms, reported and not drawn here: float32 *saturated* problems (weights
~40, biases ~25) can fail when (a) Richardson's widest float32 step (``64 eps32**(1/3)`` ~ 0.3
relative) crosses a relu kink the small-step kink probe does not see, or (b) softmax
gradients are float32 subnormals (~1e-43) whose absolute spacing the tolerance ignores.

The last test shows that hypothesis shrinks a failing property over a buggy gradient to the
smallest network that shows the bug.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

import gradcheck
from gradcheck.model.network import Network
from gradcheck.strategies import NetworkProblem, network_problems


def _explain(problem: NetworkProblem, result: gradcheck.CheckResult) -> str:
    return f"false alarm on a correct network: {problem!r}\n{result}"


def _assert_passes(problem: NetworkProblem) -> None:
    loss, grad = problem.functions()
    result = gradcheck.check(loss, grad, problem.params, rng=0)
    assert result.passed, _explain(problem, result)
    assert result.status == "passed" and result.diagnosis is None


@given(network_problems(max_depth=3, max_width=6, max_batch=6, dtypes=(np.float64, np.float32)))
def test_correct_networks_never_fail(problem: NetworkProblem) -> None:
    _assert_passes(problem)


@given(network_problems(max_depth=3, max_width=6, max_batch=6, saturated=True))
def test_correct_saturated_networks_never_fail(problem: NetworkProblem) -> None:
    _assert_passes(problem)


@given(network_problems(max_depth=2, max_width=5, max_batch=5, scale=(1e-3, 1e3)))
def test_correct_networks_at_any_weight_scale_never_fail(problem: NetworkProblem) -> None:
    _assert_passes(problem)


@given(
    network_problems(
        max_depth=2,
        max_width=4,
        max_batch=4,
        activations=("sigmoid", "tanh"),
        losses=("half_sse",),
        dtypes=(np.float32,),
        saturated=True,
    )
)
def test_correct_saturated_float32_smooth_networks_never_fail(problem: NetworkProblem) -> None:
    _assert_passes(problem)


def _missing_hidden_derivative(problem: NetworkProblem):  # type: ignore[no-untyped-def]
    """The correct backward pass without ``* sigma'(z)`` between layers: only deep nets show it."""
    net, x, y = problem.network, problem.x, problem.y
    from gradcheck.model.activations import ACTIVATIONS
    from gradcheck.model.losses import LOSSES

    def grad(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        forward = net.forward(params, x)
        delta = LOSSES[net.loss].delta(
            forward.z[-1], forward.output, y, ACTIVATIONS[net.activations[-1]]
        )
        grads = {}
        for i in reversed(range(net.n_layers)):
            grads[f"weight{i + 1}"] = forward.a_prev[i].T @ delta
            if net.bias:
                grads[f"bias{i + 1}"] = delta.sum(axis=0)
            delta = delta @ params[f"weight{i + 1}"].T  # BUG: * sigma'(z_{l-1}) forgotten
        return {name: grads[name] for name in net.param_shapes()}

    return grad


def test_a_buggy_gradient_shrinks_to_the_smallest_network_that_shows_it() -> None:
    seen: list[NetworkProblem] = []

    @settings(
        max_examples=60,
        database=None,
        derandomize=True,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow],
    )
    @given(
        network_problems(
            min_depth=1, max_depth=4, max_width=8, max_batch=8, activations=("tanh", "sigmoid")
        )
    )
    def property_over_user_gradient(problem: NetworkProblem) -> None:
        loss, _ = problem.functions()
        result = gradcheck.check(loss, _missing_hidden_derivative(problem), problem.params, rng=0)
        if not result.passed:
            seen.append(problem)
        assert result.passed, str(result)

    with pytest.raises(AssertionError):
        property_over_user_gradient()
    minimal = seen[-1]  # hypothesis replays the shrunk example last
    network: Network = minimal.network
    assert network.n_layers == 2, minimal  # one layer cannot show a missing hidden derivative
    assert max(network.sizes) <= 2, minimal
    assert minimal.n_samples == 1, minimal
