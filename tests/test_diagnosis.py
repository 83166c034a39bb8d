"""Each diagnosis, on a planted bug that shows exactly that pattern, with its evidence.

Cost: ~45 checks on small problems, ~5 s.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import numpy as np
import pytest

import gradcheck
from gradcheck.diagnosis import describe_factor
from gradcheck.model.network import Network, random_data

Params = dict[str, np.ndarray]


def setup(
    sizes: tuple[int, ...],
    acts: tuple[str, ...],
    *,
    n: int = 5,
    bias: bool = True,
    loss: str = "half_sse",
) -> tuple[Network, Params, np.ndarray, np.ndarray]:
    net = Network(sizes, acts, loss=loss, bias=bias)
    x, y = random_data(net, n, rng=1)
    return net, net.init_params(rng=2), x, y


def run(
    net: Network,
    params: Params,
    x: np.ndarray,
    y: np.ndarray,
    change: Callable[[Params], Params],
    **options: Any,
) -> gradcheck.CheckResult:
    loss, grad = net.functions(x, y)
    result = gradcheck.check(loss, lambda p: change(grad(p)), params, rng=0, **options)
    assert not result.passed
    assert result.diagnosis is not None
    json.dumps(result.to_dict())
    return result


def scaled(factor: float, names: tuple[str, ...] | None = None) -> Callable[[Params], Params]:
    return lambda g: {k: v * factor if names is None or k in names else v for k, v in g.items()}


NET = ((3, 4, 2), ("tanh", "sigmoid"))


def test_sign_flip() -> None:
    result = run(*setup(*NET), scaled(-1.0))
    assert result.diagnosis.kind == "sign-flip"
    assert result.diagnosis.details["factor"] == -1.0
    assert "sign" in result.diagnosis.summary and "-reference" in result.diagnosis.summary
    assert set(result.diagnosis.parameters) == {"weight1", "bias1", "weight2", "bias2"}


@pytest.mark.parametrize(
    ("factor", "words"),
    [
        (2.0, "twice the true gradient; causes that fit: an extra 2"),
        (0.5, "half the true gradient; causes that fit: a missing 2"),
        (3.0, "3 times"),
        (1 / 7, "1/7 of"),
        (1.0001, "not a simple fraction"),
        (-2.0, "sign flipped and twice"),
    ],
)
def test_constant_factor_is_fitted_and_named(factor: float, words: str) -> None:
    result = run(*setup(*NET), scaled(factor))
    diagnosis = result.diagnosis
    assert diagnosis.kind == "constant-factor", str(result)
    assert diagnosis.details["factor"] == pytest.approx(factor, rel=1e-9)
    assert words in diagnosis.summary
    assert "least-squares" in diagnosis.evidence


def test_factor_n_is_named_as_the_batch_size_when_layer_inputs_tell_n() -> None:
    net, params, x, y = setup(*NET, n=6)
    forward = net.forward(params, x)
    result = run(net, params, x, y, scaled(6.0), layer_inputs={"weight1": forward.a_prev[0]})
    assert result.diagnosis.kind == "constant-factor"
    assert "6 times the true gradient" in result.diagnosis.summary
    assert "N for the batch of N = 6: summed where the loss averages" in result.diagnosis.summary
    result = run(net, params, x, y, scaled(1 / 6), layer_inputs={"weight2": forward.a_prev[1]})
    assert "1/N for the batch of N = 6" in result.diagnosis.summary


def test_a_factor_lists_every_cause_that_fits_and_asserts_none() -> None:
    """Attention missing 1/sqrt(d) with d = 4 is off by 2, as is a missing 1/2 of a square."""
    net, params, x, y = setup((4, 4, 2), ("tanh", "sigmoid"), n=2)
    forward = net.forward(params, x)
    result = run(net, params, x, y, scaled(2.0), layer_inputs={"weight1": forward.a_prev[0]})
    summary = result.diagnosis.summary
    assert "twice the true gradient; causes that fit:" in summary
    assert "N for the batch of N = 2" in summary
    assert "the 1/2 of 1/2 (a - y)**2 left out" in summary
    assert "a missing 1/sqrt(d) with d = 4" in summary
    half = run(net, params, x, y, scaled(0.5, ("bias1",)))  # a bias averaged over 2 samples
    assert "a mean over 2 items where the loss sums them" in half.diagnosis.summary
    assert "a missing 2" in half.diagnosis.summary


def test_factor_on_some_parameters_only() -> None:
    result = run(*setup(*NET), scaled(0.2, ("bias1", "bias2")))
    assert result.diagnosis.kind == "constant-factor"
    assert set(result.diagnosis.parameters) == {"bias1", "bias2"}
    assert "1/5" in result.diagnosis.summary


def test_transposed() -> None:
    net, params, x, y = setup((4, 4, 2), ("tanh", "sigmoid"))
    result = run(net, params, x, y, lambda g: {**g, "weight1": g["weight1"].T})
    assert result.diagnosis.kind == "transposed"
    assert result.diagnosis.parameters == ("weight1",)


def test_swapped() -> None:
    net, params, x, y = setup((4, 4, 4, 2), ("tanh", "sigmoid", "sigmoid"))
    result = run(
        net, params, x, y, lambda g: {**g, "weight1": g["weight2"], "weight2": g["weight1"]}
    )
    assert result.diagnosis.kind == "swapped"
    assert set(result.diagnosis.parameters) == {"weight1", "weight2"}


def test_per_sample_delta_with_layer_inputs_the_seed_case() -> None:
    net, params, x, y = setup((3, 4, 1), ("sigmoid", "sigmoid"), n=4, bias=False)
    loss, grad = net.functions(x, y)

    def seed_grad(p: Params) -> Params:  # the post's "textbook" update: delta as dC/dW2
        forward = net.forward(p, x)
        a2 = forward.output
        return {**grad(p), "weight2": (a2 - y) * a2 * (1 - a2)}

    a1 = net.forward(params, x).a_prev[1]
    result = gradcheck.check(loss, seed_grad, params, rng=0, layer_inputs={"weight2": a1})
    assert result.diagnosis is not None and result.diagnosis.kind == "per-sample-delta"
    assert "a_prev.T @ delta" in result.diagnosis.summary
    assert "4 samples" in result.diagnosis.evidence


def test_per_sample_delta_detected_from_the_bias_without_hints() -> None:
    net, params, x, y = setup((3, 4, 2), ("tanh", "identity"), n=4)
    loss, grad = net.functions(x, y)

    def bad(p: Params) -> Params:
        forward = net.forward(p, x)
        return {**grad(p), "weight2": forward.output - y}  # identity output: delta = a - y

    result = gradcheck.check(loss, bad, params, rng=0)
    assert result.diagnosis is not None and result.diagnosis.kind == "per-sample-delta"
    assert "bias2" in result.diagnosis.evidence


def test_only_some_samples_counted_with_layer_inputs() -> None:
    net, params, x, y = setup((6, 3, 2), ("tanh", "sigmoid"), n=5)
    loss, grad = net.functions(x, y)
    forward = net.forward(params, x)

    def first_two(p: Params) -> Params:
        return net.functions(x[:2], y[:2])[1](p)

    result = gradcheck.check(
        loss, first_two, params, rng=0, layer_inputs={"weight1": forward.a_prev[0]}
    )
    assert result.diagnosis is not None and result.diagnosis.kind == "missing-samples"
    assert result.diagnosis.details["samples"] == [0, 1]


def test_non_finite_elements_are_listed() -> None:
    def change(g: Params) -> Params:
        g = {k: v.copy() for k, v in g.items()}
        g["weight1"][2, 1] = np.nan
        g["bias2"][0] = -np.inf
        return g

    result = run(*setup(*NET), change)
    assert result.diagnosis.kind == "non-finite"
    assert "weight1[2, 1]" in result.diagnosis.summary and "bias2[0]" in result.diagnosis.summary
    assert result.diagnosis.details["elements"]["weight1"] == [[2, 1]]


def test_a_few_wrong_elements_are_listed() -> None:
    def change(g: Params) -> Params:
        g = {k: v.copy() for k, v in g.items()}
        g["weight1"][1, 3] += 0.01
        return g

    result = run(*setup(*NET), change)
    assert result.diagnosis.kind == "few-elements"
    assert "weight1[1, 3]" in result.diagnosis.summary


def test_zeroed_row() -> None:
    def change(g: Params) -> Params:
        g = {k: v.copy() for k, v in g.items()}
        g["weight2"][2, :] = 0.0
        return g

    result = run(*setup((3, 4, 3), ("tanh", "sigmoid")), change)
    assert result.diagnosis.kind == "zeroed"
    assert "row 2 of weight2" in result.diagnosis.summary


def test_precision_float32_backprop_on_float64_problem() -> None:
    net, params, x, y = setup(*NET)
    grad32 = net.functions(x.astype(np.float32), y.astype(np.float32))[1]
    loss = net.functions(x, y)[0]

    def grad(p: Params) -> Params:
        low = grad32({k: v.astype(np.float32) for k, v in p.items()})
        return {k: v.astype(np.float64) for k, v in low.items()}

    result = gradcheck.check(loss, grad, params, rng=0)
    assert result.diagnosis is not None and result.diagnosis.kind == "precision"
    assert result.diagnosis.details["float32_exact"]
    assert "float32" in result.diagnosis.summary


def test_precision_when_the_gradient_only_sees_float32_parameters() -> None:
    """A float32 backward pass whose output is rescaled in float64: not float32 numbers."""
    net, params, x, y = setup(*NET)
    grad32 = net.functions(x.astype(np.float32), y.astype(np.float32))[1]
    loss = net.functions(x, y)[0]

    def grad(p: Params) -> Params:
        low = grad32({k: v.astype(np.float32) for k, v in p.items()})
        return {k: v.astype(np.float64) / 3 * 3.0000000000000004 for k, v in low.items()}

    result = gradcheck.check(loss, grad, params, rng=0)
    assert result.diagnosis is not None and result.diagnosis.kind == "precision"
    assert not result.diagnosis.details["float32_exact"]
    assert "rounded to float32" in result.diagnosis.evidence


def test_small_errors_alone_are_not_called_float32() -> None:
    """A fixed relative error of ~3e-7 is float32-sized but systematic, in float64."""

    def change(g: Params) -> Params:
        rng = np.random.default_rng(0)
        return {k: v * (1 + 3e-7 * rng.standard_normal(v.shape)) for k, v in g.items()}

    result = run(*setup(*NET), change)
    assert result.diagnosis.kind != "precision", str(result)


def test_gradient_at_a_stale_point() -> None:
    net, params, x, y = setup(*NET)
    loss, grad = net.functions(x, y)
    stale = grad({k: v + 0.05 for k, v in params.items()})  # computed before an update
    result = gradcheck.check(loss, lambda p: stale, params, rng=0)
    assert result.diagnosis is not None and result.diagnosis.kind == "different-point"
    assert "does not follow the parameters" in result.diagnosis.summary
    assert "the same at twice the step" in result.diagnosis.evidence


@pytest.mark.parametrize("cached", [True, False])
def test_no_stale_point_where_the_true_gradient_does_not_move(cached: bool) -> None:
    """loss = sum((x @ W) * R) is linear in W: any gradient of it is constant, right or not."""
    rng = np.random.default_rng(5)
    x, w, r = rng.standard_normal((4, 3)), rng.standard_normal((3, 2)), rng.standard_normal((4, 2))
    frozen = x.T @ r + 0.5

    def grad(p: np.ndarray) -> np.ndarray:
        return frozen if cached else x.T @ r * np.where(p > 0, 1.0, 2.0)

    result = gradcheck.check(lambda p: np.sum((x @ p) * r), grad, w, rng=0)
    assert not result.passed and result.diagnosis is not None
    assert result.diagnosis.kind != "different-point", str(result)


def test_no_known_pattern_says_so() -> None:
    net, params, x, y = setup(*NET)
    loss, grad = net.functions(x, y)

    def tanh_derivative_on_z(p: Params) -> Params:  # 1 - z**2 where 1 - a**2 belongs
        forward = net.forward(p, x)
        out = forward.output
        delta2 = (out - y) * out * (1 - out)
        delta1 = (delta2 @ p["weight2"].T) * (1 - forward.z[0] ** 2)
        return {
            "weight1": x.T @ delta1,
            "bias1": delta1.sum(0),
            "weight2": forward.a_prev[1].T @ delta2,
            "bias2": delta2.sum(0),
        }

    result = gradcheck.check(loss, tanh_derivative_on_z, params, rng=0)
    assert result.diagnosis is not None and result.diagnosis.kind == "unknown"
    assert "no known bug pattern" in result.diagnosis.summary
    assert "likely cause: no known bug pattern" in str(result)


def test_no_diagnosis_when_passed_or_disabled() -> None:
    net, params, x, y = setup(*NET)
    loss, grad = net.functions(x, y)
    assert gradcheck.check(loss, grad, params, rng=0).diagnosis is None
    off = gradcheck.check(loss, lambda p: scaled(2.0)(grad(p)), params, rng=0, diagnose=False)
    assert not off.passed and off.diagnosis is None


def test_describe_factor() -> None:
    assert describe_factor(0.25, n_samples=4) == (
        "1/4 of the true gradient; causes that fit: 1/N for the batch of N = 4: averaged where "
        "the loss sums"
    )
    assert describe_factor(0.25).startswith("1/4 of the true gradient; causes that fit: a mean")
    assert "a missing 1/sqrt(d) with d = 9" in describe_factor(3.0, dimensions=(9,))
    assert "no common cause" in describe_factor(2 / 3)
    assert "not a simple fraction" in describe_factor(1.0001)


@pytest.mark.parametrize(
    ("layer_inputs", "error", "match"),
    [
        ([1, 2], gradcheck.ParameterTypeError, "layer_inputs"),
        ({"weight9": np.ones((4, 3))}, gradcheck.InvalidParameterError, "weight9"),
        ({"weight1": np.ones((4, 5))}, gradcheck.InvalidParameterError, "weight1"),
        ({"bias1": np.ones((4, 3))}, gradcheck.InvalidParameterError, "bias1"),
        (
            {"weight1": np.ones((4, 3)), "weight2": np.ones((5, 4))},
            gradcheck.InvalidParameterError,
            "different numbers of samples",
        ),
    ],
)
def test_bad_layer_inputs_raise_naming_the_argument(
    layer_inputs: Any, error: type, match: str
) -> None:
    net, params, x, y = setup(*NET)
    loss, grad = net.functions(x, y)
    with pytest.raises(error, match=match):
        gradcheck.check(loss, grad, params, rng=0, layer_inputs=layer_inputs)


def test_penalty_gradient_missing_its_factor_two_is_named() -> None:
    rng = np.random.default_rng(3)
    x, y, lam = rng.standard_normal((5, 3)), rng.standard_normal(5), 0.1

    def loss(w):
        return 0.5 * np.sum((x @ w - y) ** 2) + lam * np.sum(w**2)

    def data_grad(w):
        return x.T @ (x @ w - y)

    w = rng.standard_normal(3)
    good = gradcheck.check(loss, lambda v: data_grad(v) + 2 * lam * v, w, rng=0)
    assert good.passed
    bad = gradcheck.check(loss, lambda v: data_grad(v) + lam * v, w, rng=0)
    assert not bad.passed
    assert bad.diagnosis is not None and bad.diagnosis.kind == "parameter-proportional"
    summary = bad.diagnosis.summary
    assert "-0.1 x params" in summary
    # lam * W for 2 * lam * W (lam = 0.1) and 2 * lam * W left out (lam = 0.05) both fit
    assert "lam * params written for it with lam = 0.1" in summary
    assert "2 * lam * params left out with lam = 0.05" in summary


def test_an_all_zero_gradient_is_zeroed_not_a_factor_of_zero() -> None:
    result = gradcheck.check(
        lambda w: np.sum(np.sin(w)), lambda w: np.zeros(3), np.arange(3.0), rng=0
    )
    assert result.diagnosis is not None and result.diagnosis.kind == "zeroed"


# -- check_update: the headline and the check of the implied gradient agree -------------------
LOGISTIC_X = np.random.default_rng(21).standard_normal((8, 3))
LOGISTIC_Y = (np.random.default_rng(22).random(8) > 0.5).astype(float)


def logistic_loss(p: Params) -> float:
    z = LOGISTIC_X @ p["w"] + p["b"]
    return float(np.mean(np.logaddexp(0, z) - LOGISTIC_Y * z))


def logistic_step(sign: float, decay: float = 0.0) -> Callable[[Params], Params]:
    """Gradient descent on the logistic loss; ``sign=-1`` writes y - p for w's term."""

    def step(p: Params) -> Params:
        prob = 1 / (1 + np.exp(-(LOGISTIC_X @ p["w"] + p["b"])))
        dw = sign * LOGISTIC_X.T @ (prob - LOGISTIC_Y) / 8 + decay * p["w"]
        return {"w": p["w"] - 0.1 * dw, "b": p["b"] - 0.1 * np.mean(prob - LOGISTIC_Y)}

    return step


LOGISTIC_PARAMS = {"w": np.array([0.3, -0.5, 0.2]), "b": np.array(0.3)}


def test_update_sign_flip_of_one_parameter_is_a_sign_flip_in_both_parts() -> None:
    from gradcheck.runner.update import check_update

    result = check_update(logistic_step(-1.0), logistic_loss, LOGISTIC_PARAMS, 0.1, rng=0)
    assert result.kind == "ascent" and result["w"].kind == "ascent" and result["b"].passed
    assert result.check is not None and result.check.diagnosis is not None
    assert result.check.diagnosis.kind == "sign-flip"
    assert "not a sign flip" not in str(result)


def test_update_with_weight_decay_quotes_the_checks_finding() -> None:
    """Not 'the gradient of another function' in the headline and 'weight decay' below it."""
    from gradcheck.runner.update import check_update

    result = check_update(logistic_step(1.0, 0.01), logistic_loss, LOGISTIC_PARAMS, 0.1, rng=0)
    assert result.kind == "different"
    assert result.check is not None and result.check.diagnosis is not None
    assert result.check.diagnosis.kind == "parameter-proportional"
    text = result["w"].explanation
    assert "another function" not in text
    assert "The check of the implied gradient finds: w: the error is 0.01 x w" in text
    assert "weight decay the loss lacks" in text


def test_update_factor_lists_the_same_causes_as_the_check() -> None:
    from gradcheck.runner.update import check_update

    def doubled(p: Params) -> Params:
        prob = 1 / (1 + np.exp(-(LOGISTIC_X @ p["w"] + p["b"])))
        dw = LOGISTIC_X.T @ (prob - LOGISTIC_Y) / 8
        return {"w": p["w"] - 0.2 * dw, "b": p["b"] - 0.2 * np.mean(prob - LOGISTIC_Y)}

    result = check_update(doubled, logistic_loss, LOGISTIC_PARAMS, 0.1, rng=0)
    assert result.kind == "factor" and result.factor == 2.0
    cause = "an extra 2: a square differentiated where the loss has 1/2 of it"
    assert cause in result.explanation
    assert result.check is not None and result.check.diagnosis is not None
    assert cause in result.check.diagnosis.summary


def test_minus_the_per_sample_delta_is_named_with_layer_inputs() -> None:
    """The seed's textbook step on weight2, as a gradient: minus delta, 4 samples = 4 units."""
    net, params, x, y = setup((3, 4, 1), ("sigmoid", "sigmoid"), n=4, bias=False)
    loss, grad = net.functions(x, y)

    def minus_delta(p: Params) -> Params:
        a2 = net.forward(p, x).output
        return {**grad(p), "weight2": (y - a2) * a2 * (1 - a2)}

    a1 = net.forward(params, x).a_prev[1]
    named = gradcheck.check(loss, minus_delta, params, rng=0, layer_inputs={"weight2": a1})
    assert named.diagnosis is not None and named.diagnosis.kind == "per-sample-delta"
    assert "weight2: minus the per-sample delta" in named.diagnosis.summary
    unnamed = gradcheck.check(loss, minus_delta, params, rng=0)
    assert unnamed.diagnosis is not None and unnamed.diagnosis.kind == "unknown"
    assert "per-sample delta" not in str(unnamed.diagnosis)  # says neither yes nor no
