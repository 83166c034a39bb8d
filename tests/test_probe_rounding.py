"""Directional probes along the gradient: the rounding of the sums they compare.

A probe compares ``a . v`` with the loss's ``D_v f``; both sum ``n`` products.  When ``v``
lies along the gradient (the first probe direction is gradcheck's first Gaussian draw,
and parameters drawn by the user from the same seed make it exactly so) the terms share
one sign and their rounding is the whole gap.  It used to fail the probe, after which
the check measured the gradient's jitter (16 more gradient calls; at 1e7 elements 26 s
and 53x the parameters' memory) and probed again.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import gradcheck
from gradcheck.runner.directional import SUMMATION_ROUNDING, _pairwise_dot

N = 300_000  # large enough for a BLAS dot's rounding to exceed the per-element model


def _aligned(seed: int) -> dict[str, np.ndarray]:
    """Parameters equal to gradcheck's first probe direction at ``rng=seed``."""
    return {"w": np.random.default_rng(seed).standard_normal(N)}


def _dot_loss(p):  # type: ignore[no-untyped-def]
    return 0.5 * p["w"] @ p["w"]  # a BLAS (complex) dot: sqrt(n) eps of rounding


def _sequential_loss(p):  # type: ignore[no-untyped-def]
    return 0.5 * np.cumsum(p["w"] * p["w"])[-1]  # summed in order: rounds even more


def _grad(p):  # type: ignore[no-untyped-def]
    return {"w": p["w"].copy()}


def _factor(p):  # type: ignore[no-untyped-def]
    return {"w": p["w"] * (1 + 1e-9)}


@pytest.mark.parametrize("loss", [_dot_loss, _sequential_loss])
@pytest.mark.parametrize("seed", [0, 1])
def test_a_probe_along_the_gradient_passes_a_correct_gradient_at_once(loss, seed) -> None:  # type: ignore[no-untyped-def]
    result = gradcheck.check(loss, _grad, _aligned(seed), rng=seed, mode="directional")
    assert result.passed, str(result)
    assert result.n_grad_evaluations == 2  # no failing probe, so no jitter measured
    assert result.n_evaluations <= 15  # at most the three steps of a measured rounding


@pytest.mark.parametrize("loss", [_dot_loss, _sequential_loss])
def test_a_factor_of_one_plus_1e9_still_fails_along_the_gradient(loss) -> None:  # type: ignore[no-untyped-def]
    result = gradcheck.check(loss, _factor, _aligned(0), rng=0, mode="directional")
    assert result.status == "failed"
    assert not result.passed


@settings(max_examples=60, deadline=None)
@given(
    a=arrays(np.float64, st.integers(0, 3000), elements=st.floats(-1e3, 1e3)),
    data=st.data(),
)
def test_pairwise_dot_is_within_its_stated_rounding(a: np.ndarray, data: st.DataObject) -> None:
    v = data.draw(arrays(np.float64, a.shape, elements=st.floats(-1e3, 1e3)))
    exact = math.fsum((a * v).tolist())  # the same rounded products, summed exactly
    bound = SUMMATION_ROUNDING * np.finfo(float).eps * np.linalg.norm(a) * np.linalg.norm(v)
    assert abs(_pairwise_dot(a, v) - exact) <= bound


def test_pairwise_dot_of_a_million_terms_of_one_sign_keeps_to_an_eps() -> None:
    a = np.random.default_rng(3).standard_normal(1_000_000)
    exact = math.fsum((a * a).tolist())
    assert abs(_pairwise_dot(a, a) - exact) <= 2 * np.finfo(float).eps * exact
