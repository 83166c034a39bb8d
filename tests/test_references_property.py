"""Backprop against each independent reference, over random architectures (issue: the core).

Depth 1-4, widths 1-16, batch 1-16, every activation and loss, biases on and off: the
hand-written backward pass (``a_prev.T @ delta`` layer by layer) must match every reference
within that reference's own error estimate.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings

import gradcheck
from gradcheck.strategies import NetworkProblem, network_problems

WIDE = network_problems(min_depth=1, max_depth=4, max_width=16, max_batch=16, bias=None)


@pytest.mark.parametrize("method", ["auto", "complex", "central", "richardson", "approx_fprime"])
@given(problem=WIDE)
@settings(max_examples=12)
def test_backprop_matches_each_reference(method: str, problem: NetworkProblem) -> None:
    loss, grad = problem.functions()
    result = gradcheck.check(loss, grad, problem.params, method=method, rng=0)
    assert result.passed, f"{problem!r}\n{result}"


@given(problem=network_problems(max_depth=2, max_width=4, max_batch=4, bias=None))
@settings(max_examples=5)
def test_backprop_matches_scipy_differentiate(problem: NetworkProblem) -> None:
    loss, grad = problem.functions()
    result = gradcheck.check(loss, grad, problem.params, method="differentiate", rng=0)
    assert result.passed, f"{problem!r}\n{result}"


@pytest.mark.parametrize("method", ["complex", "central", "richardson", "approx_fprime"])
@given(problem=network_problems(max_depth=3, max_width=6, max_batch=6))
@settings(max_examples=8)
def test_each_reference_catches_a_sign_flip_in_one_layer(method, problem: NetworkProblem) -> None:
    loss, grad = problem.functions()
    last = f"weight{len(problem.network.sizes) - 1}"

    def flipped(params):
        g = grad(params)
        return {**g, last: -g[last]}

    if np.max(np.abs(grad(problem.params)[last])) == 0:  # nothing to flip
        return
    result = gradcheck.check(loss, flipped, problem.params, method=method, rng=0, diagnose=False)
    assert not result.passed and not result[last].passed, f"{problem!r}\n{result}"
