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


# -- longdouble parameters: resolved to float64's precision, which the references compute in --

LONG = {"w": np.array([0.3, -1.2, 2.0], dtype=np.longdouble), "b": np.linspace(-1, 1, 7)}


def _long_loss(params):
    return np.sum(np.sin(params["w"]) ** 2) + np.sum(np.cos(params["b"]) * params["b"])


def _long_real_loss(params):  # drops the imaginary part: no complex step
    return _long_loss({key: np.real(value) for key, value in params.items()})


def _long_grad(params):
    w, b = params["w"], params["b"]
    return {"w": 2 * np.sin(w) * np.cos(w), "b": np.cos(b) - b * np.sin(b)}


def _long_factor_bug(params):
    g = _long_grad(params)
    return {**g, "w": g["w"] * (1 + 1e-4)}


@pytest.mark.parametrize("loss", [_long_loss, _long_real_loss], ids=["complex", "real-only"])
@pytest.mark.parametrize("mode", ["auto", "directional"])
def test_longdouble_parameters_pass_a_correct_gradient_and_fail_a_factor(loss, mode) -> None:
    # Loss values and steps reach the references as float64: a longdouble parameter's step,
    # noise floor and rounding room sized for its own eps (1e-19) failed a correct gradient
    # by 3e-11 against a tolerance of 6.5e-13.
    params = {**LONG, "b": LONG["b"].astype(np.longdouble)}
    right = gradcheck.check(loss, _long_grad, params, mode=mode)
    assert right.passed, str(right)
    wrong = gradcheck.check(loss, _long_factor_bug, params, mode=mode)
    assert wrong.status == "failed", str(wrong)
    assert "w" in {p.name for p in wrong.failed_parameters}, str(wrong)
    assert wrong.diagnosis is not None and wrong.diagnosis.kind == "constant-factor", str(wrong)


def test_a_longdouble_step_is_taken_exactly() -> None:
    from gradcheck.problem.space import step_taken, working_eps

    x = np.longdouble(0.3)
    moved = x + np.longdouble(1e-6)
    assert step_taken(moved, x) == float(moved - x)  # float64 rounding first would lose ~1e-22
    assert working_eps(np.longdouble) == working_eps(np.float64) == np.finfo(np.float64).eps
    assert working_eps(np.float32) == np.finfo(np.float32).eps
