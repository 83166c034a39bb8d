"""``gradcheck.strategies.layer_problems``: drawn layers whose built-in backward passes pass
``check_vjp``, and whose planted bugs fail it.

Cost: a few seconds (few examples under the ``ci`` profile).
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given, settings

import gradcheck
from gradcheck.errors import InvalidParameterError
from gradcheck.strategies import LAYER_KINDS, LayerProblem, layer_problems

FEW = settings(max_examples=12, deadline=None)


@FEW
@given(layer_problems())
def test_built_in_backward_passes_pass(problem: LayerProblem) -> None:
    result = gradcheck.check_vjp(problem.forward, problem.vjp, problem.inputs, rng=0)
    assert result.passed, f"{problem.name}\n{result}"
    out = np.asarray(problem.forward(*problem.inputs))
    assert problem.cotangent.shape == out.shape


@FEW
@given(layer_problems(kinds=["affine", "normalisation"]))
def test_a_sign_flipped_weight_gradient_fails(problem: LayerProblem) -> None:
    def wrong(dout: Any, *inputs: Any) -> Any:
        dx, dw, db = problem.vjp(dout, *inputs)
        return dx, -dw, db

    dw = problem.vjp(problem.cotangent, *problem.inputs)[1]
    if np.max(np.abs(dw)) < 1e-6:
        return  # a zero gradient has no sign to flip
    result = gradcheck.check_vjp(problem.forward, wrong, problem.inputs, rng=0)
    assert not result.passed


def test_every_kind_is_drawn() -> None:
    seen: set[str] = set()

    @settings(max_examples=40, deadline=None)
    @given(layer_problems(max_batch=2, max_features=2))
    def collect(problem: LayerProblem) -> None:
        seen.add(problem.kind)

    collect()
    assert seen == set(LAYER_KINDS)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        ({"kinds": ["conv"]}, "kinds: unknown 'conv'"),
        ({"activations": []}, "activations: must name at least one"),
        ({"min_batch": 0}, "min_batch: must be >= 1"),
        ({"min_features": 3, "max_features": 2}, "max_features: must be >= min_features"),
    ],
)
def test_bad_options(options: dict[str, Any], message: str) -> None:
    with pytest.raises(InvalidParameterError, match=message) as info:
        layer_problems(**options)
    assert isinstance(info.value, ValueError)
