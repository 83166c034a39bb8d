"""``args`` and value-and-gradient functions, in SciPy's conventions (issue 13, item 4)."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck
from gradcheck.errors import InvalidLossError, ParameterTypeError, UserFunctionError

X = np.random.default_rng(0).standard_normal((6, 3))
Y = np.random.default_rng(1).standard_normal(6)
W = np.array([0.3, -0.2, 0.5])


def loss(w, X, y):
    return 0.5 * float(np.sum((np.tanh(X @ w) - y) ** 2))


def grad(w, X, y):
    a = np.tanh(X @ w)
    return X.T @ ((a - y) * (1 - a**2))


def fun(w, X, y):
    return loss(w, X, y), grad(w, X, y)


def fun_wrong(w, X, y):
    return loss(w, X, y), -grad(w, X, y)


def test_args_are_passed_to_the_loss_and_the_gradient() -> None:
    assert gradcheck.check(loss, grad, W, args=(X, Y)).passed
    wrong = gradcheck.check(loss, lambda w, X, y: 2 * grad(w, X, y), W, args=(X, Y))
    assert not wrong.passed and wrong.diagnosis is not None
    assert wrong.diagnosis.kind in ("constant-factor", "factor")


def test_a_single_non_tuple_argument_is_one_argument_as_scipy_takes_it() -> None:
    result = gradcheck.check(
        lambda w, X: np.sum((X @ w) ** 2), lambda w, X: 2 * X.T @ (X @ w), W, args=X
    )
    assert result.passed


def test_value_and_gradient_functions_are_split_and_the_value_is_what_is_differentiated() -> None:
    assert gradcheck.check(fun, True, W, args=(X, Y)).passed
    result = gradcheck.check(fun_wrong, True, W, args=(X, Y))
    assert not result.passed
    assert result.diagnosis is not None and result.diagnosis.kind == "sign-flip"


def test_value_and_gradient_costs_no_extra_call_for_the_gradient_at_the_same_point() -> None:
    from gradcheck.runner.derivatives.binding import ValueAndGradient

    calls = []

    def counted(w):
        calls.append(np.array(w, copy=True))
        return np.sum(w**2), 2 * w

    split = ValueAndGradient(counted)
    assert split.value(W) == np.sum(W**2)
    assert np.array_equal(split.gradient(W), 2 * W) and len(calls) == 1  # kept from value()
    split.gradient(W)  # asked again (the determinism check): really called
    assert len(calls) == 2
    split.value(W)
    split.gradient(W + 1.0)  # another point: called
    assert len(calls) == 4
    assert gradcheck.check(counted, True, W, method="complex").passed


def test_args_the_functions_cannot_take_are_one_clear_error_naming_args() -> None:
    with pytest.raises(ParameterTypeError, match=r"args: loss .*cannot take the 1 extra"):
        gradcheck.check(loss, grad, W, args=(X,))
    with pytest.raises(ParameterTypeError, match=r"args: grad"):
        gradcheck.check(loss, lambda w, X: grad(w, X, Y), W, args=(X, Y))


def test_a_value_and_gradient_function_that_returns_one_value_is_named() -> None:
    with pytest.raises(UserFunctionError, match=r"grad=True.*\(value, gradient\)") as raised:
        gradcheck.check(loss, True, W, args=(X, Y))
    assert isinstance(raised.value.original, InvalidLossError)
    with pytest.raises(ParameterTypeError, match="grad: expected a callable"):
        gradcheck.check(loss, False, W, args=(X, Y))


def test_args_work_in_worker_processes_and_leave_the_callers_arrays_alone() -> None:
    X_before, Y_before, W_before = X.copy(), Y.copy(), W.copy()
    result = gradcheck.check(loss, grad, W, args=(X, Y), workers=2, mode="full")
    assert result.passed
    assert np.array_equal(X, X_before) and np.array_equal(Y, Y_before)
    assert np.array_equal(W, W_before)


def test_a_loss_that_raises_with_its_args_is_the_loss_error() -> None:
    def broken(w, X, y):
        return float(np.sum(X @ w[:2]))

    with pytest.raises(UserFunctionError, match="loss function raised"):
        gradcheck.check(broken, grad, W, args=(X, Y))


def test_check_update_passes_args_to_the_step_and_the_loss() -> None:
    def linear_loss(w, X, y):
        return 0.5 * float(np.sum((X @ w - y) ** 2))

    def descent(w, X, y):
        return w - 0.1 * X.T @ (X @ w - y)

    def ascent(w, X, y):
        return w + 0.1 * X.T @ (X @ w - y)

    assert gradcheck.check_update(descent, linear_loss, W, 0.1, args=(X, Y)).passed
    assert gradcheck.check_update(ascent, linear_loss, W, 0.1, args=(X, Y)).kind == "ascent"
    with pytest.raises(ParameterTypeError, match="args: step"):
        gradcheck.check_update(lambda w: w, linear_loss, W, 0.1, args=(X, Y))
