"""The options of a check are defined once (gradcheck.options) and every entry point reads them."""

from __future__ import annotations

import dataclasses
import inspect

import numpy as np
import pytest

import gradcheck
from gradcheck.errors import GradcheckError, InvalidParameterError, ParameterTypeError
from gradcheck.options import OPTIONS, VALIDATORS, Budget, CheckOptions, parse_option


def loss(p):
    return float(np.sum(np.sin(p) ** 2))


def grad(p):
    return 2 * np.sin(p) * np.cos(p)


X = np.array([0.3, -0.7, 1.1])


def test_every_field_has_one_validator_and_every_text_option_feeds_a_field() -> None:
    fields = {f.name for f in dataclasses.fields(CheckOptions)}
    assert fields == set(VALIDATORS)
    for option in OPTIONS.values():
        assert option.check_kwarg is None or option.check_kwarg in fields, option.name


def test_text_defaults_agree_with_the_check_defaults() -> None:
    defaults = CheckOptions()
    for option in OPTIONS.values():
        if option.check_kwarg in ("method", "mode"):
            assert option.default == getattr(defaults, option.check_kwarg)


def test_check_takes_exactly_the_defined_options() -> None:
    signature = inspect.signature(gradcheck.check)
    assert list(signature.parameters)[:3] == ["loss", "grad", "params"]
    with pytest.raises(ParameterTypeError, match="unexpected keyword argument 'metod'"):
        gradcheck.check(loss, grad, X, metod="central")
    for name in VALIDATORS:  # every defined option is accepted by check at its default
        default = getattr(CheckOptions(), name)
        if name != "budget":
            assert gradcheck.check(loss, grad, X, **{name: default}).passed, name


@pytest.mark.parametrize(
    ("name", "value", "error"),
    [
        ("method", "forward", InvalidParameterError),
        ("method", np.array(["auto"]), ParameterTypeError),
        ("atol", -1.0, InvalidParameterError),
        ("atol", "1e-6", ParameterTypeError),
        ("rtol", float("nan"), InvalidParameterError),
        ("elements", 0, InvalidParameterError),
        ("elements", 2.5, ParameterTypeError),
        ("rng", -1, InvalidParameterError),
        ("rng", "seed", ParameterTypeError),
        ("mode", "fast", InvalidParameterError),
        ("vectorized", "yes", ParameterTypeError),
        ("executor", object(), ParameterTypeError),
        ("workers", 0, InvalidParameterError),
        ("budget", -2.0, InvalidParameterError),
        ("budget", True, ParameterTypeError),
        ("progress", "no", ParameterTypeError),
        ("layer_inputs", [1, 2], ParameterTypeError),
    ],
)
def test_a_bad_option_is_one_clear_error_naming_it(name: str, value: object, error: type) -> None:
    with pytest.raises(error, match=f"^{name}: ") as info:
        gradcheck.check(loss, grad, X, **{name: value})
    assert isinstance(info.value, GradcheckError)


def test_the_same_validation_behind_check_update_the_cli_and_the_plugin() -> None:
    with pytest.raises(InvalidParameterError, match="^method: "):
        gradcheck.check_update(lambda w: w - 0.1 * grad(w), loss, X, 0.1, method="forward")
    with pytest.raises(InvalidParameterError, match="^--method: "):
        parse_option("method", "forward", label="--method")
    with pytest.raises(InvalidParameterError, match="^--budget: must be positive"):
        parse_option("budget", "-3", label="--budget")
    assert parse_option("budget", "2.5s") == 2.5 and parse_option("budget", "20000") == 20000
    assert CheckOptions.from_keywords({"budget": 20000}).budget == Budget(evaluations=20000)


def test_workers_and_executor_together_are_refused() -> None:
    from concurrent.futures import ThreadPoolExecutor

    with ThreadPoolExecutor(1) as pool, pytest.raises(InvalidParameterError, match="^workers: "):
        gradcheck.check(loss, grad, X, workers=2, executor=pool)
