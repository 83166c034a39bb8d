"""Property-test your own backprop with the gradcheck pytest plugin and hypothesis strategies.

``my_loss``/``my_backward`` below stand for *your* code: a hand-written
multi-layer network (tanh/sigmoid layers, loss ``1/2 * sum((a - y)^2)``).
:mod:`gradcheck.strategies` draws the architectures, matching parameters and
data; the ``gradcheck`` fixture (from the plugin, active once gradcheck is
installed) checks every drawn case and fails with gradcheck's report, and
hypothesis shrinks a failure to the smallest network that still shows it.

Run it::

    pytest examples/test_backprop_properties.py            # installed gradcheck
    pytest -p gradcheck.plugin examples/test_backprop_properties.py   # from a checkout

Options apply to every check: ``--gradcheck-seed=1``, ``--gradcheck-html=reports/tests``.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings

from gradcheck.strategies import network_problems

# -- your code: forward and backward of a plain MLP, params {"weight1", "bias1", ...} ---------

ACTIVATION = {
    "tanh": (np.tanh, lambda a: 1 - a**2),
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda a: a * (1 - a)),
}


def my_forward(params: dict[str, Any], x: Any, activations: tuple[str, ...]) -> list[Any]:
    """Every layer's output, the input first."""
    outputs = [x]
    for layer, name in enumerate(activations, 1):
        z = outputs[-1] @ params[f"weight{layer}"] + params[f"bias{layer}"]
        outputs.append(ACTIVATION[name][0](z))
    return outputs


def my_loss(params: dict[str, Any], x: Any, y: Any, activations: tuple[str, ...]) -> Any:
    return 0.5 * np.sum((my_forward(params, x, activations)[-1] - y) ** 2)


def my_backward(
    params: dict[str, Any], x: Any, y: Any, activations: tuple[str, ...], *, bug: bool = False
) -> dict[str, Any]:
    """Backprop: delta = dL/dz per sample; dL/dW = a_prev.T @ delta; dL/db = sum of delta."""
    outputs = my_forward(params, x, activations)
    delta = (outputs[-1] - y) * ACTIVATION[activations[-1]][1](outputs[-1])
    grads = {}
    for layer in range(len(activations), 0, -1):
        grads[f"weight{layer}"] = outputs[layer - 1].T @ delta
        grads[f"bias{layer}"] = delta.sum(axis=0)
        if layer > 1:
            delta = delta @ params[f"weight{layer}"].T
            if not bug:  # the planted bug forgets the hidden activation's derivative
                delta = delta * ACTIVATION[activations[layer - 2]][1](outputs[layer - 1])
    return grads


def functions(problem: Any, *, bug: bool = False) -> tuple[Any, Any]:
    acts = problem.network.activations
    return (
        lambda p: my_loss(p, problem.x, problem.y, acts),
        lambda p: my_backward(p, problem.x, problem.y, acts, bug=bug),
    )


PROBLEMS = network_problems(
    max_depth=3,
    max_width=6,
    max_batch=5,
    activations=("tanh", "sigmoid"),
    losses=("half_sse",),
    bias=True,
)

# -- the tests ----------------------------------------------------------------------------


# The fixture holds no per-example state that matters, so hypothesis may reuse it.
@settings(
    max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(problem=PROBLEMS)
def test_my_backward_matches_the_references(gradcheck: Any, problem: Any) -> None:
    loss, grad = functions(problem)
    gradcheck.assert_check(loss, grad, problem.params)


@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(problem=PROBLEMS)
def test_my_training_step_is_gradient_descent(gradcheck: Any, problem: Any) -> None:
    loss, grad = functions(problem)
    lr = 0.1

    def step(params: dict[str, Any]) -> dict[str, Any]:
        g = grad(params)
        return {name: value - lr * g[name] for name, value in params.items()}

    gradcheck.assert_update(step, loss, problem.params, lr)


@pytest.mark.gradcheck(method="central")
@settings(
    max_examples=5, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(
    problem=network_problems(
        min_depth=2,
        max_depth=2,
        max_width=4,
        activations=("tanh",),
        losses=("half_sse",),
        bias=True,
    )
)
def test_the_planted_bug_is_caught(gradcheck: Any, problem: Any) -> None:
    """The buggy twin: forgetting sigma'(z) of a hidden layer must fail, naming a weight."""
    loss, grad = functions(problem, bug=True)
    with pytest.raises(AssertionError, match=r"FAIL (weight|bias)1"):
        gradcheck.assert_check(loss, grad, problem.params, label="planted bug")
