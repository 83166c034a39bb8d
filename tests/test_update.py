"""``check_update``: a training step is gradient descent, or the report says how it differs.

Every planted bug has its correct twin.  Cost: about 1 s in all.
"""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

from gradcheck.errors import (
    GradientMismatchError,
    InvalidParameterError,
    ParameterTypeError,
    UserFunctionError,
)
from gradcheck.runner.update import UpdateResult, assert_update, check_update

X = np.random.default_rng(3).normal(size=(5, 3))
Y = np.random.default_rng(4).normal(size=(5, 2))


def loss(p):
    """Half sum of squares of a linear model with a tanh: a smooth loss with dict params."""
    return 0.5 * np.sum((np.tanh(X @ p["w"]) + p["b"] - Y) ** 2)


def grad(p):
    a = np.tanh(X @ p["w"])
    r = a + p["b"] - Y
    return {"w": X.T @ (r * (1 - a**2)), "b": r.sum(axis=0)}


def params():
    rng = np.random.default_rng(0)
    return {"w": rng.normal(size=(3, 2)), "b": rng.normal(size=2)}


def descent(lr, *, factor=1.0, sign=-1.0, freeze=()):
    def step(p):
        g = grad(p)
        return {k: v if k in freeze else v + sign * factor * lr * g[k] for k, v in p.items()}

    return step


def test_gradient_descent_passes() -> None:
    result = check_update(descent(0.1), loss, params(), 0.1, rng=0)
    assert result.passed and result.kind == "descent" and bool(result)
    assert "PASSED" in str(result).splitlines()[0]
    assert [p.kind for p in result.parameters] == ["descent", "descent"]


def test_ascent_is_named() -> None:
    result = check_update(descent(0.1, sign=+1.0), loss, params(), 0.1, rng=0)
    assert not result.passed and result.kind == "ascent" and result.factor == -1.0
    assert "climbs the loss" in str(result) and "sign is flipped" in result.explanation


@pytest.mark.parametrize(("factor", "shown"), [(2.0, "2"), (0.2, "1/5"), (0.37, "0.37")])
def test_a_constant_factor_is_measured(factor: float, shown: str) -> None:
    result = check_update(descent(0.05, factor=factor), loss, params(), 0.05, rng=0)
    assert result.kind == "factor" and not result.passed
    assert result.factor == pytest.approx(factor, rel=1e-6)
    assert f"{shown} x the learning rate" in result.explanation


def test_a_frozen_parameter_is_named_and_the_other_passes() -> None:
    result = check_update(descent(0.1, freeze=("b",)), loss, params(), 0.1, rng=0)
    assert result.kind == "frozen"
    assert result["b"].kind == "frozen" and result["w"].passed
    assert "leaves b unchanged" in result.explanation


def test_a_different_direction() -> None:
    def step(p):  # descends a different loss: squares without the tanh
        r = X @ p["w"] + p["b"] - Y
        return {"w": p["w"] - 0.1 * X.T @ r, "b": p["b"] - 0.1 * r.sum(axis=0)}

    result = check_update(step, loss, params(), 0.1, rng=0)
    assert result.kind == "different"
    assert "cosine" in result.explanation and "layer_inputs={'w': a_prev}" in result.explanation


def test_mixed_findings_are_listed_per_parameter() -> None:
    def step(p):
        g = grad(p)
        return {"w": p["w"] + 0.1 * g["w"], "b": p["b"] - 0.2 * g["b"]}

    result = check_update(step, loss, params(), 0.1, rng=0)
    assert result.kind == "mixed"
    assert result["w"].kind == "ascent" and result["b"].kind == "factor"
    assert "w: " in str(result) and "b: " in str(result)


@pytest.mark.parametrize("lr", [1e-3, 1e-6])
def test_a_small_learning_rate_is_no_false_alarm(lr: float) -> None:
    """(params - new) / lr loses digits to rounding of `new`; the tolerance accounts for it."""
    big = {k: v + 50.0 for k, v in params().items()}  # |params| >> lr * |grad|
    result = check_update(descent(lr), loss, big, lr, rng=0)
    assert result.passed, str(result)
    wrong = check_update(descent(lr, factor=1.01), loss, big, lr, rng=0)
    assert wrong.kind == "factor" and wrong.factor == pytest.approx(1.01, rel=1e-4)


def test_in_place_steps_work_and_user_arrays_are_untouched() -> None:
    p = params()
    before = {k: v.copy() for k, v in p.items()}

    def step(q):  # the usual training-loop style: update in place, return nothing
        g = grad(q)
        for k in q:
            q[k] -= 0.1 * g[k]

    assert check_update(step, loss, p, 0.1, rng=0).passed
    for k in p:
        np.testing.assert_array_equal(p[k], before[k])


def test_a_wrong_shape_is_reported_not_raised() -> None:
    def step(p):  # a per-sample term (5 samples x 3) where w (3 x 2) belongs: cannot broadcast
        g = grad(p)
        return {"w": p["w"] - 0.1 * np.ones((5, 3)), "b": p["b"] - 0.1 * g["b"]}

    result = check_update(step, loss, params(), 0.1, rng=0)
    assert result.kind == "shape" and not result.passed and result.check is None
    assert "combines w (shape (3, 2)) with a term of shape (5, 3)" in result.explanation
    assert result["w"].kind == "shape"

    def step_broadcasting_silently(p):  # b (2,) - (5, 2) broadcasts to the wrong shape
        g = grad(p)
        return {"w": p["w"] - 0.1 * g["w"], "b": p["b"] - 0.1 * np.ones((5, 2))}

    result = check_update(step_broadcasting_silently, loss, params(), 0.1, rng=0)
    assert result.kind == "shape" and "'b' has shape (5, 2)" in result.explanation
    assert result["b"].kind == "shape"


def test_other_exceptions_of_the_step_are_raised_with_context() -> None:
    def step(p):
        raise KeyError("weight3")

    with pytest.raises(UserFunctionError, match="the step function raised KeyError") as info:
        check_update(step, loss, params(), 0.1)
    assert info.value.function == "step"


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"lr": 0.0}, InvalidParameterError, "lr: must be finite and > 0"),
        ({"lr": float("nan")}, InvalidParameterError, "lr:"),
        ({"lr": "0.1"}, ParameterTypeError, "lr: expected a positive number"),
        ({"step": 3}, ParameterTypeError, "step: expected a callable"),
        (
            {"layer_inputs": {"nope": np.ones((2, 2))}},
            InvalidParameterError,
            "layer_inputs: 'nope'",
        ),
        ({"layer_inputs": {"w": np.ones(3)}}, InvalidParameterError, "must be a 2-D"),
        ({"method": "magic"}, InvalidParameterError, "method:"),
    ],
)
def test_bad_arguments_name_the_argument(kwargs: dict, error: type, message: str) -> None:
    arguments = {"step": descent(0.1), "loss": loss, "params": params(), "lr": 0.1}
    arguments.update(kwargs)
    with pytest.raises(error, match=message):
        check_update(
            arguments.pop("step"),
            arguments.pop("loss"),
            arguments.pop("params"),
            arguments.pop("lr"),
            **arguments,
        )


def test_to_dict_is_json_and_assert_update_raises_the_report() -> None:
    good = check_update(descent(0.1), loss, params(), 0.1, rng=0)
    bad = check_update(descent(0.1, sign=1.0), loss, params(), 0.1, rng=0)
    for result in (good, bad):
        data = json.loads(json.dumps(result.to_dict(), allow_nan=False))
        assert data["passed"] is result.passed and data["kind"] == result.kind
        assert data["check"]["parameters"][0]["name"] == "w"
    assert isinstance(assert_update(descent(0.1), loss, params(), 0.1, rng=0), UpdateResult)
    with pytest.raises(GradientMismatchError, match="ascent") as info:
        assert_update(descent(0.1, sign=1.0), loss, params(), 0.1, rng=0)
    assert isinstance(info.value, AssertionError)
    assert info.value.result.kind == "ascent"


def _load_example(name: str) -> ModuleType:
    path = Path(__file__).resolve().parent.parent / "examples" / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"gradcheck_example_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_the_seed_question() -> None:
    """The post's working step is descent; the textbook step uses the per-sample delta."""
    seed = _load_example("seed_update")
    weights = seed.initial_weights()
    _, a1, _ = seed.forward(weights)
    assert check_update(seed.working_step, seed.loss, weights, 1.0, rng=0).passed
    textbook = check_update(seed.textbook_step, seed.loss, weights, 1.0, rng=0)
    assert textbook.kind == "shape" and "weight1 (shape (3, 4))" in textbook.explanation
    where_it_runs = check_update(
        seed.textbook_step_where_it_runs,
        seed.loss,
        weights,
        1.0,
        rng=0,
        layer_inputs={"weight2": a1},
    )
    assert where_it_runs.kind == "per_sample_delta"
    assert where_it_runs["weight1"].passed
    text = where_it_runs.explanation
    assert "a_prev.T @ delta" in text and "number of samples (4)" in text and "sign" in text
    # The nested check was given the layer inputs too: its diagnosis names the same bug.
    assert where_it_runs.check is not None
    assert "per-sample delta" in str(where_it_runs.check.diagnosis)
    without_inputs = check_update(seed.textbook_step_where_it_runs, seed.loss, weights, 1.0, rng=0)
    assert without_inputs.kind == "different" and "layer_inputs" in without_inputs.explanation
