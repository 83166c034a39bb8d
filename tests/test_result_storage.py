"""The per-element values a result keeps: shared by its parameters, compared elements only.

A check's :class:`~gradcheck.results.ParameterResult` objects read one shared
:class:`~gradcheck.results.ElementValues`; a directional check keeps values at the
elements it compared, not seven full arrays per parameter (issue 12: memory at scale).
The full arrays the properties build must say exactly what the compact values say.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradcheck
from gradcheck.results import ParameterResult


def _sin_problem(shapes: list[tuple[int, ...]], seed: int = 0):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(seed)
    params = {f"p{i}": rng.standard_normal(shape) for i, shape in enumerate(shapes)}

    def loss(p):  # type: ignore[no-untyped-def]
        return sum(np.sum(np.sin(w) ** 2) for w in p.values())

    def grad(p):  # type: ignore[no-untyped-def]
        return {k: 2 * np.sin(w) * np.cos(w) for k, w in p.items()}

    return params, loss, grad


def _consistent(p: ParameterResult) -> None:
    """The dense properties and the compact values describe the same comparison."""
    found = p.compared()
    checked = p.checked
    assert checked.shape == p.shape == p.analytic.shape == p.reference.shape
    assert int(checked.sum()) == p.n_checked == int(found.checked.sum())
    flat = checked.reshape(-1)
    assert set(np.flatnonzero(flat)) <= set(found.indices.tolist())
    np.testing.assert_array_equal(p.reference.reshape(-1)[found.indices], found.reference)
    np.testing.assert_array_equal(p.tolerance.reshape(-1)[found.indices], found.tolerance)
    assert np.isnan(np.delete(p.reference.reshape(-1), found.indices)).all()
    assert int(p.failed.sum()) == p.n_failed
    assert p.passed == (p.n_failed == 0)


def test_a_directional_check_keeps_values_at_compared_elements_only() -> None:
    params, loss, grad = _sin_problem([(300, 400)])
    result = gradcheck.check(loss, grad, params, mode="directional", rng=1)
    assert result.passed
    p = result.parameters[0]
    kept = p.values
    assert kept.keys is not None and 0 < len(kept.keys) < 100  # not 120,000 per field
    assert kept.reference.size == kept.tolerance.size == len(kept.keys)
    _consistent(p)


def test_parameters_of_one_check_share_their_values() -> None:
    params, loss, grad = _sin_problem([(1,)] * 50 + [(3, 4)])
    result = gradcheck.check(loss, grad, params, rng=0)
    assert result.passed
    assert len({id(p.values) for p in result.parameters}) == 1
    for p in result.parameters:
        _consistent(p)
    np.testing.assert_array_equal(result["p50"].analytic, grad(params)["p50"])


def test_a_full_check_hands_over_its_arrays_without_keys() -> None:
    params, loss, grad = _sin_problem([(4, 5), (3,)])
    result = gradcheck.check(loss, grad, params, mode="full", rng=0)
    assert result.parameters[0].values.keys is None  # every element compared: no index array
    for p in result.parameters:
        assert p.n_checked == p.size
        _consistent(p)


@pytest.mark.parametrize("mode", ["full", "directional"])
def test_a_wrong_element_reads_the_same_from_compact_and_dense_values(mode: str) -> None:
    params, loss, grad = _sin_problem([(30, 40), (5,)], seed=2)

    def wrong(p):  # type: ignore[no-untyped-def]
        g = grad(p)
        g["p0"][7, 9] += 0.5
        return g

    result = gradcheck.check(loss, wrong, params, mode=mode, rng=3)
    assert not result.passed
    p = result["p0"]
    assert p.worst_index == (7, 9)
    assert [e.index for e in p.failing_elements()] == [(7, 9)]
    assert np.flatnonzero(p.failed.reshape(-1)).tolist() == [7 * 40 + 9]
    assert p.abs_error[7, 9] == pytest.approx(0.5, rel=1e-6)
    _consistent(p)
    assert result["p1"].passed


def test_float32_analytic_comes_back_in_its_dtype() -> None:
    params, loss, grad = _sin_problem([(6,)])
    params32 = {k: v.astype(np.float32) for k, v in params.items()}
    result = gradcheck.check(loss, grad, params32, rng=0)
    p = result.parameters[0]
    assert p.analytic.dtype == np.float32 and p.dtype == "float32"
    np.testing.assert_array_equal(p.analytic, grad(params32)["p0"].astype(np.float32))


@settings(max_examples=40, deadline=None)
@given(
    shape=st.lists(st.integers(1, 5), min_size=0, max_size=3).map(tuple),
    data=st.data(),
)
def test_from_arrays_round_trips_every_field(shape: tuple[int, ...], data: st.DataObject) -> None:
    n = int(np.prod(shape))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**32 - 1)))
    checked = rng.random(shape) < 0.7
    reference = np.where(checked, rng.standard_normal(shape), np.nan)
    analytic = reference + np.where(rng.random(shape) < 0.2, 1.0, 1e-12)
    analytic = np.where(checked, analytic, rng.standard_normal(shape))
    tolerance = np.where(checked, 1e-6, np.nan)
    p = ParameterResult.from_arrays(
        name="w",
        analytic=analytic,
        reference=reference,
        error_estimate=np.where(checked, 1e-9, np.nan),
        tolerance=tolerance,
        checked=checked,
        step=np.full(shape, np.nan),
        method="central",
        tolerance_source="test",
        n_evaluations=n,
    )
    np.testing.assert_array_equal(p.analytic, analytic)
    np.testing.assert_array_equal(p.reference, reference)
    np.testing.assert_array_equal(p.checked, checked)
    expected = checked & ~(np.abs(analytic - reference) <= tolerance)
    np.testing.assert_array_equal(p.failed, expected)
    assert p.n_failed == int(expected.sum())
    _consistent(p)


def test_from_arrays_refuses_arrays_of_another_size() -> None:
    with pytest.raises(ValueError, match="must have 6 elements"):
        ParameterResult.from_arrays(
            name="w",
            analytic=np.zeros(6),
            reference=np.zeros(5),
            error_estimate=np.zeros(6),
            tolerance=np.zeros(6),
            checked=np.ones(6, bool),
            step=np.zeros(6),
            method="central",
            tolerance_source="test",
            n_evaluations=0,
        )


def test_a_result_cannot_be_changed_through_its_arrays() -> None:
    params, loss, grad = _sin_problem([(3,), (2, 2)])
    result = gradcheck.check(loss, grad, params, rng=0)
    p = result["p0"]
    with pytest.raises(ValueError, match="read-only"):
        p.analytic[0] = 1e9  # the shared values: would change every parameter's record
    copy = p.reference
    copy[0] = 1e9  # a property's full array is the caller's own
    assert p.reference[0] != 1e9 and result.passed
