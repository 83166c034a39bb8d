"""Hazards are reported as hazards, not as wrong gradients; every verdict states its tolerance.

Cost: ~12 small checks, ~2 s.
"""

from __future__ import annotations

import numpy as np

import gradcheck
from gradcheck.model.network import Network, random_data

Params = dict[str, np.ndarray]


def problem(dtype: type = np.float64) -> tuple[Network, Params, np.ndarray, np.ndarray]:
    net = Network((3, 4, 2), ("tanh", "sigmoid"))
    x, y = random_data(net, 5, rng=1, dtype=dtype)
    return net, net.init_params(rng=2, dtype=dtype), x, y


def kinds(result: gradcheck.CheckResult) -> set[str]:
    return {h.kind for h in result.hazards}


def test_loss_that_mutates_its_input_is_a_hazard_and_user_arrays_are_untouched() -> None:
    net, params, x, y = problem()
    loss, grad = net.functions(x, y)
    before = {k: v.copy() for k, v in params.items()}

    def mutating_loss(p: Params) -> float:
        value = loss(p)
        p["weight1"] -= 0.1  # an SGD step left inside the loss
        return value

    result = gradcheck.check(mutating_loss, grad, params, rng=0)
    assert "mutation" in kinds(result)
    assert result.status != "failed" or result.diagnosis is not None
    assert all(np.array_equal(params[k], before[k]) for k in params)


def test_loss_that_mutates_its_input_fails_as_a_hazard_with_the_gradient_found_right() -> None:
    # Issue 11: the training loop such a loss lives in is wrong, so the check is not passed;
    # the gradient values (checked on fresh copies) are right, and no bug is named in them.
    net, params, x, y = problem()
    loss, grad = net.functions(x, y)

    def mutating_loss(p: Params) -> float:
        value = loss(p)
        p["weight1"] -= 0.1
        return value

    result = gradcheck.check(mutating_loss, grad, params, rng=0)
    assert not result.passed and result.status == "hazard", str(result)
    assert all(p.passed for p in result.parameters)
    assert result.diagnosis is not None and result.diagnosis.kind == "hazard"
    assert "training loop" in str(result)  # the finding named: why passed is False


def test_gradient_that_mutates_its_input_is_a_hazard_and_user_arrays_are_untouched() -> None:
    net, params, x, y = problem()
    loss, grad = net.functions(x, y)
    before = {k: v.copy() for k, v in params.items()}

    def mutating_grad(p: Params) -> Params:
        g = grad(p)
        for k in p:
            p[k] -= 0.5 * g[k]  # the update done in place by the gradient function
        return g

    result = gradcheck.check(loss, mutating_grad, params, rng=0)
    assert "mutation" in kinds(result)
    assert not result.passed and result.status == "hazard", str(result)
    assert all(p.passed for p in result.parameters)
    assert all(np.array_equal(params[k], before[k]) for k in params)


def test_nondeterministic_loss_is_inconclusive_not_a_wrong_gradient() -> None:
    net, params, x, y = problem()
    loss, grad = net.functions(x, y)
    rng = np.random.default_rng(0)

    def dropout_loss(p: Params) -> float:  # dropout left on: a random mask per call
        mask = rng.random(p["weight1"].shape) > 0.1
        return loss({**p, "weight1": p["weight1"] * mask})

    result = gradcheck.check(dropout_loss, grad, params, rng=0)
    assert result.status == "inconclusive"
    assert "nondeterministic" in kinds(result)
    assert result.diagnosis is None or result.diagnosis.kind in ("inconclusive", "unknown")


def test_nondeterministic_gradient_is_inconclusive() -> None:
    net, params, x, y = problem()
    loss, grad = net.functions(x, y)
    rng = np.random.default_rng(0)
    result = gradcheck.check(
        loss,
        lambda p: {k: v + 1e-3 * rng.standard_normal(v.shape) for k, v in grad(p).items()},
        params,
        rng=0,
    )
    assert result.status == "inconclusive"
    hazard = next(h for h in result.hazards if h.kind == "nondeterministic")
    assert hazard.blocking and "gradient" in hazard.message


def test_relu_kink_hit_by_the_check_is_a_hazard_and_the_analytic_value_is_accepted() -> None:
    net = Network((2, 3, 1), ("relu", "identity"))
    params = net.init_params(rng=3)
    x, y = random_data(net, 4, rng=4)
    # put sample 0 exactly on unit 1's kink: z = x W + b = 0
    params["bias1"][1] = -float(x[0] @ params["weight1"][:, 1])
    assert net.forward(params, x).z[0][0, 1] == 0.0
    loss, grad = net.functions(x, y)

    def grad_with_subgradient_one(p: Params) -> Params:  # relu'(0) taken as 1: also valid
        forward = net.forward(p, x)
        delta2 = forward.output - y
        delta1 = (delta2 @ p["weight2"].T) * (forward.z[0] >= 0)
        return {
            "weight1": x.T @ delta1,
            "bias1": delta1.sum(0),
            "weight2": forward.a_prev[1].T @ delta2,
            "bias2": delta2.sum(0),
        }

    result = gradcheck.check(loss, grad_with_subgradient_one, params, rng=0)
    assert result.passed, str(result)
    kink = next(h for h in result.hazards if h.kind == "kink")
    assert "kink" in kink.message and "accepted" in kink.message
    assert result["bias1"].kinks == ((1,),)


def test_abs_kink_with_a_value_outside_the_one_sided_slopes_still_fails() -> None:
    w = np.array([0.0, 1.0, -2.0])
    loss = lambda p: float(np.sum(np.abs(p)))  # noqa: E731
    result = gradcheck.check(loss, lambda p: np.where(p >= 0, 3.0, -1.0), w, rng=0)
    assert not result.passed  # 3 is no slope of |w| anywhere


def test_float32_problem_is_checked_at_float32_precision_with_the_accuracy_stated() -> None:
    net, params, x, y = problem(np.float32)
    loss, grad = net.functions(x, y)
    result = gradcheck.check(loss, grad, params, rng=0)
    assert result.passed, str(result)
    hazard = next(h for h in result.hazards if h.kind == "precision")
    assert "float32" in hazard.message and "cannot be resolved" in hazard.message
    assert not hazard.blocking
    # and a real bug is still caught at that precision
    bad = gradcheck.check(loss, lambda p: {k: v * 1.01 for k, v in grad(p).items()}, params, rng=0)
    assert not bad.passed


def test_float64_problem_has_no_precision_hazard() -> None:
    net, params, x, y = problem()
    loss, grad = net.functions(x, y)
    assert "precision" not in kinds(gradcheck.check(loss, grad, params, rng=0))


def test_every_verdict_states_its_tolerance_and_where_it_came_from() -> None:
    net, params, x, y = problem()
    loss, grad = net.functions(x, y)
    for g in (grad, lambda p: {k: -v for k, v in grad(p).items()}):
        result = gradcheck.check(loss, g, params, rng=0)
        for parameter in result.parameters:
            assert "tolerance" in parameter.summary_line()
            assert parameter.tolerance_source
            assert "eps" in parameter.tolerance_source and "sigma" in parameter.tolerance_source
            assert np.all(parameter.tolerance[parameter.checked] > 0)
            data = parameter.to_dict()
            assert data["tolerance_source"] and data["worst_tolerance"] is not None
    assert "tolerance:" in str(result)  # the failed report says where its tolerance came from
    user = gradcheck.check(loss, grad, params, rng=0, atol=1e-9, rtol=1e-6)
    assert user.parameters[0].tolerance_source.startswith("user: atol=1e-09")


def test_a_kink_in_a_scalar_parameter_is_named_without_an_index() -> None:
    result = gradcheck.check(
        lambda p: float(np.maximum(p["s"], 0.0)),
        lambda p: {"s": np.array(float(p["s"] > 0))},
        {"s": np.array(0.0)},
    )
    assert result.passed
    assert "kink) in s:" in result.hazards[0].message
