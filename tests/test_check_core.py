"""The core check on small analytic functions: verdicts, error messages, the user's arrays."""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

import gradcheck
from gradcheck import (
    GradientMismatchError,
    GradientStructureError,
    InvalidLossError,
    InvalidParameterError,
    ParameterTypeError,
    UserFunctionError,
)

RNG = np.random.default_rng(1234)
A = RNG.standard_normal((6, 4))
Y = RNG.standard_normal(6)


def loss(p):
    z = np.tanh(A @ p["w"] + p["b"])
    return 0.5 * np.sum((z - Y) ** 2)


def grad(p):
    z = np.tanh(A @ p["w"] + p["b"])
    delta = (z - Y) * (1 - z**2)
    return {"w": A.T @ delta, "b": delta.sum()}


def real_loss(p):
    """The same loss, but it drops complex input (``float``), so no complex step."""
    return float(np.real(loss(p)))


PARAMS = {"w": RNG.standard_normal(4), "b": np.array(0.3)}


def scaled(factor):
    return lambda p: {k: v * factor for k, v in grad(p).items()}


@pytest.mark.parametrize("f", [loss, real_loss], ids=["complex-capable", "real-only"])
def test_correct_gradient_passes_and_planted_bugs_fail(f):
    assert gradcheck.check(f, grad, PARAMS, rng=0).passed
    assert not gradcheck.check(f, scaled(1 + 1e-4), PARAMS, rng=0).passed
    assert not gradcheck.check(f, scaled(-1.0), PARAMS, rng=0).passed

    def one_element(p):
        g = grad(p)
        g["w"] = g["w"].copy()
        g["w"][2] += 1e-3 * np.max(np.abs(g["w"]))
        return g

    result = gradcheck.check(f, one_element, PARAMS, rng=0, diagnose=False)
    assert not result.passed
    assert result["w"].worst_index == (2,)
    assert result["b"].passed


def test_method_choice_is_reported():
    assert gradcheck.check(loss, grad, PARAMS, rng=0)["w"].method == "complex"
    result = gradcheck.check(real_loss, grad, PARAMS, rng=0)
    assert result["w"].method.startswith("central")
    assert any("complex step not used" in note for note in result.notes)
    assert (
        gradcheck.check(loss, grad, PARAMS, method="richardson", rng=0)["w"].method == "richardson"
    )
    with pytest.raises(InvalidParameterError, match="method: 'complex' cannot be used"):
        gradcheck.check(real_loss, grad, PARAMS, method="complex")


def test_report_names_parameter_element_values_and_tolerance():
    def bad(p):
        g = grad(p)
        g["w"] = g["w"].copy()
        g["w"][1] *= 1.5
        return g

    text = str(gradcheck.check(loss, bad, PARAMS, rng=0, diagnose=False))
    assert "FAILED" in text
    assert "w[1]" in text
    assert "analytic" in text and "tolerance" in text and ">" in text


def test_to_dict_is_json_safe_and_complete():
    result = gradcheck.check(loss, grad, PARAMS, rng=0)
    data = json.loads(json.dumps(result.to_dict(arrays=True)))
    assert data["passed"] is True
    names = [p["name"] for p in data["parameters"]]
    assert names == ["w", "b"]
    for entry in data["parameters"]:
        for key in (
            "max_abs_error",
            "max_rel_error",
            "worst_index",
            "method",
            "step",
            "n_evaluations",
            "tolerance_source",
        ):
            assert key in entry


def test_user_arrays_are_never_modified():
    params = {"w": PARAMS["w"].copy(), "b": PARAMS["b"].copy()}
    before = {k: v.copy() for k, v in params.items()}

    def mutating_loss(p):
        value = loss(p)
        p["w"] += 1.0  # a hazard gradcheck must survive
        return value

    gradcheck.check(mutating_loss, grad, params, rng=0, diagnose=False)
    gradcheck.check(loss, grad, params, rng=0)
    for k in params:
        np.testing.assert_array_equal(params[k], before[k])


def test_float32_parameters_pass_with_float32_sized_tolerance():
    p32 = {k: np.asarray(v, dtype=np.float32) for k, v in PARAMS.items()}
    result = gradcheck.check(real_loss, grad, p32, rng=0)
    assert result.passed
    assert result["w"].dtype == "float32"
    # float32 cannot resolve far below sqrt(eps32) relative; float64 must resolve far better.
    tol32 = np.max(result["w"].tolerance) / np.max(np.abs(result["w"].reference))
    tol64 = np.max(gradcheck.check(real_loss, grad, PARAMS, rng=0)["w"].tolerance)
    assert tol32 > 1e3 * tol64


def test_loss_scaled_by_a_million_passes_and_scaled_bug_fails():
    big = lambda p: 1e6 * loss(p)  # noqa: E731
    assert gradcheck.check(big, scaled(1e6), PARAMS, rng=0).passed
    assert not gradcheck.check(big, scaled(1e6 * (1 + 1e-4)), PARAMS, rng=0).passed


def test_user_tolerance_override():
    loose = gradcheck.check(loss, scaled(1 + 1e-4), PARAMS, rng=0, rtol=1e-3)
    assert loose.passed
    assert "user: atol=0 + rtol=0.001" in loose["w"].tolerance_source
    assert not gradcheck.check(loss, scaled(1 + 1e-4), PARAMS, rng=0, rtol=1e-6).passed


def test_sampled_elements():
    params = {"w": RNG.standard_normal((30, 4))}
    B = RNG.standard_normal((5, 30))
    f = lambda p: float(np.sum(np.sin(B @ p["w"])))  # noqa: E731
    g = lambda p: {"w": B.T @ np.cos(B @ p["w"])}  # noqa: E731
    result = gradcheck.check(f, g, params, elements=10, rng=0)
    assert result.passed and result.mode == "sampled"
    assert result["w"].n_checked == 10


def test_assert_check_raises_assertion_with_the_report():
    gradcheck.assert_check(loss, grad, PARAMS, rng=0)
    with pytest.raises(GradientMismatchError) as info:
        gradcheck.assert_check(loss, scaled(2.0), PARAMS, rng=0)
    assert isinstance(info.value, AssertionError)
    assert "FAILED" in str(info.value) and "w[" in str(info.value)
    assert info.value.result.passed is False


# -- bad input: one clear error naming the parameter ---------------------------------------


def test_missing_parameter_in_gradient():
    with pytest.raises(GradientStructureError, match="'b' is missing"):
        gradcheck.check(loss, lambda p: {"w": grad(p)["w"]}, PARAMS)


def test_extra_parameter_in_gradient():
    with pytest.raises(GradientStructureError, match="'c' is not a parameter"):
        gradcheck.check(loss, lambda p: {**grad(p), "c": 1.0}, PARAMS)


def test_gradient_of_wrong_shape():
    with pytest.raises(GradientStructureError, match=r"'w' has shape \(4, 1\).*shape \(4,\)"):
        gradcheck.check(loss, lambda p: {"w": grad(p)["w"][:, None], "b": grad(p)["b"]}, PARAMS)


def test_non_scalar_loss():
    with pytest.raises(InvalidLossError, match="shape"):
        gradcheck.check(lambda p: p["w"] * 2, grad, PARAMS)


def test_non_finite_loss():
    with pytest.raises(InvalidLossError, match="not a finite value"):
        gradcheck.check(lambda p: np.nan, grad, PARAMS)


def test_integer_parameters():
    with pytest.raises(ParameterTypeError, match="parameter 'w'.*int"):
        gradcheck.check(loss, grad, {"w": np.arange(4), "b": np.array(0.3)})
    with pytest.raises(TypeError):
        gradcheck.check(loss, grad, {"w": np.arange(4), "b": np.array(0.3)})


def test_non_finite_parameter():
    with pytest.raises(InvalidParameterError, match=r"parameter 'w'.*index \(2,\)"):
        gradcheck.check(loss, grad, {"w": np.array([0.0, 1.0, np.inf, 2.0]), "b": np.array(0.3)})


def test_exception_in_user_code_is_reported_with_context():
    def broken_grad(p):
        raise KeyError("weight3")

    with pytest.raises(UserFunctionError, match="grad function raised KeyError") as info:
        gradcheck.check(loss, broken_grad, PARAMS)
    assert isinstance(info.value.__cause__, KeyError)
    assert "evaluating the gradient" in str(info.value)


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"method": "forward"}, "method: 'forward' is not one of"),
        ({"atol": -1.0}, "atol: must be finite and >= 0"),
        ({"rtol": "1e-3"}, "rtol: expected a number"),
        ({"elements": 0}, "elements: must be >= 1"),
        ({"rng": "seed"}, "rng: expected"),
    ],
)
def test_bad_options(kwargs, message):
    with pytest.raises((InvalidParameterError, ParameterTypeError), match=message):
        gradcheck.check(loss, grad, PARAMS, **kwargs)


def test_callables_are_validated():
    with pytest.raises(ParameterTypeError, match="loss: expected a callable"):
        gradcheck.check(1.0, grad, PARAMS)


def test_exactly_zero_loss_tiny_gradients_are_unresolved_not_wrong():
    x = -0.65179115

    def loss_fn(w):  # a naive softmax cross-entropy, fit so well it rounds to exactly 0.0
        z = w * x
        return np.log(np.sum(np.exp(z))) - z[1]

    def grad_fn(w):
        z = w * x
        p = np.exp(z - np.log(np.sum(np.exp(z))))
        return (p - np.array([0.0, 1.0])) * x

    w = np.array([21.85310556, -36.82543896])
    assert loss_fn(w) == 0.0 and 0 < abs(grad_fn(w)[0]) < 1e-16
    assert gradcheck.check(loss_fn, grad_fn, w, rng=0).passed
    # From loss values alone (no complex step) the gradient is invisible: unresolved, not wrong.
    result = gradcheck.check(loss_fn, grad_fn, w, rng=0, method="central")
    assert result.passed, str(result)
    assert any(h.kind == "unresolved" for h in result.hazards)
    assert not gradcheck.check(loss_fn, lambda v: grad_fn(v) + 1e-3, w, rng=0).passed


def _textbook_sigmoid_net():
    """Two sigmoid layers with the textbook derivative ``a * (1 - a)`` (as in the seed)."""
    rng = np.random.default_rng(0)
    x = rng.standard_normal((6, 4))
    y = rng.random((6, 2))

    def sigmoid(z):
        return 1 / (1 + np.exp(-z))

    def loss(p):
        return 0.5 * np.sum((sigmoid(sigmoid(x @ p["w1"]) @ p["w2"]) - y) ** 2)

    def grad(p, dtype=np.float64):
        w1, w2, xx = p["w1"].astype(dtype), p["w2"].astype(dtype), x.astype(dtype)
        a1 = sigmoid(xx @ w1)
        a2 = sigmoid(a1 @ w2)
        delta2 = (a2 - y) * a2 * (1 - a2)
        delta1 = (delta2 @ w2.T) * a1 * (1 - a1)
        return {"w1": (xx.T @ delta1).astype(np.float64), "w2": (a1.T @ delta2).astype(np.float64)}

    return loss, grad


@pytest.mark.parametrize("scale", [1.0, 20.0, 40.0, 80.0])
@pytest.mark.parametrize("seed", [0, 1, 3, 4])
def test_textbook_sigmoid_derivative_passes_saturated_and_bugs_still_fail(scale, seed):
    # a * (1 - a) loses digits once a rounds near 1 (frozen cancellation): no false alarm,
    # while float32 arithmetic and a 1e-4 factor are still caught at every saturation level.
    loss, grad = _textbook_sigmoid_net()
    r = np.random.default_rng(seed)
    params = {"w1": scale * r.standard_normal((4, 5)), "w2": scale * r.standard_normal((5, 2))}
    with np.errstate(over="ignore"):
        assert gradcheck.check(loss, grad, params, rng=0).passed
        factor = lambda p: {k: v * (1 + 1e-4) for k, v in grad(p).items()}  # noqa: E731
        assert not gradcheck.check(loss, factor, params, rng=0, diagnose=False).passed
        float32 = lambda p: grad(p, np.float32)  # noqa: E731
        assert not gradcheck.check(loss, float32, params, rng=0, diagnose=False).passed


@pytest.mark.parametrize("method", ["auto", "richardson"])
def test_kink_is_a_hazard_not_a_bug(method):
    w = np.array([0.0, 1.0, -1.0])

    def loss(v):
        return float(np.sum(np.maximum(v, 0.0)))

    result = gradcheck.check(loss, lambda v: (v > 0).astype(float), w, method=method, rng=0)
    assert result.passed
    assert [h.kind for h in result.hazards] == ["kink"]
    assert result["params"].kinks == ((0,),)
    outside = gradcheck.check(loss, lambda v: np.array([2.0, 1.0, 0.0]), w, method=method, rng=0)
    assert not outside.passed  # 2 is not between the one-sided slopes 0 and 1


def test_jitter_and_noise_are_measured_only_when_a_comparison_needs_them():
    calls = {"grad": 0}

    def counted(p):
        calls["grad"] += 1
        return grad(p)

    # Complex step decides everything and everything passes: no jitter gradient calls, no
    # noise measurement (the tolerance needed neither).
    result = gradcheck.check(loss, counted, PARAMS, rng=0)
    assert result.passed and result.n_grad_evaluations == calls["grad"] == 2
    assert np.isnan(result.noise)
    assert "not measured" in result.parameters[0].tolerance_source
    # A failing element makes the check measure the jitter (and then still fail).
    calls["grad"] = 0
    bad = gradcheck.check(loss, lambda p: scaled(1 + 1e-4)(p), PARAMS, rng=0)
    assert not bad.passed and bad.n_grad_evaluations > 2
    # Central differences divide by a step: the loss's noise is measured.
    central = gradcheck.check(real_loss, grad, PARAMS, rng=0)
    assert central.passed and np.isfinite(central.noise) and central.noise > 0


def test_jitter_room_rescues_a_correct_but_ill_conditioned_gradient():
    # The textbook a * (1 - a) at a saturated unit loses digits to cancellation; without the
    # measured jitter's room it would fail, with it (measured on demand) it passes.
    def sig(z):
        return 1 / (1 + np.exp(-z))

    x = np.array([1.0, -2.0, 0.5])

    def sat_loss(p):
        return 0.5 * np.sum(sig(15.5 + p["w"] * x) ** 2)

    def sat_grad(p):
        a = sig(15.5 + p["w"] * x)
        return {"w": a * a * (1 - a) * x}

    params = {"w": np.array([0.1, 0.2, -0.3])}
    result = gradcheck.check(sat_loss, sat_grad, params, rng=0)
    assert result.passed, str(result)
    assert result.n_grad_evaluations > 2  # the jitter was measured: it was needed
    assert "measured gradient jitter" in result.parameters[0].tolerance_source
    # ... and a real bug of the same gradient still fails with that room.
    bad = gradcheck.check(sat_loss, lambda p: {"w": sat_grad(p)["w"] * (1 + 1e-4)}, params, rng=0)
    assert not bad.passed


def test_complex_step_capability_measures_the_noise_only_to_confirm_a_disagreement():
    from gradcheck.problem.objective import Objective
    from gradcheck.problem.space import ParameterSpace
    from gradcheck.references.complex_step import complex_step_capability

    asked = []

    def measure():
        asked.append(1)
        return 1e-15

    clean = Objective(loss, ParameterSpace(PARAMS))
    ok = complex_step_capability(
        clean, sigma=1e-17, measure_sigma=measure, rng=np.random.default_rng(0)
    )
    assert ok.usable and not asked  # agreement under the lower bound stands

    def absolute(p):  # abs() is not complex-analytic: the slopes disagree
        return loss(p) + np.sum(np.abs(p["w"]))

    bad = complex_step_capability(
        Objective(absolute, ParameterSpace(PARAMS)),
        sigma=1e-17,
        measure_sigma=measure,
        rng=np.random.default_rng(0),
    )
    assert not bad.usable and asked == [1]  # judged again with the measured noise


def test_central_method_spends_two_evaluations_per_element_and_truncation_only_where_needed():
    params = {"w": np.linspace(-1.0, 1.0, 40)}

    def curved(p):  # a large third derivative: central differences carry truncation error
        return np.sum(np.exp(20.0 * p["w"]))

    def curved_grad(p):
        return {"w": 20.0 * np.exp(20.0 * p["w"])}

    result = gradcheck.check(curved, curved_grad, params, rng=0, method="central", mode="full")
    assert result.passed, str(result)
    # 2 per element, plus the few that needed a truncation estimate (2 more each), plus the
    # check's fixed costs (value, determinism, noise probe): far below 4 per element.
    fixed = 1 + 1 + 7  # value, determinism, noise probe
    assert 2 * 40 + fixed < result.n_evaluations < 3 * 40 + fixed
    assert result.parameters[0].method == "central"
    bad = gradcheck.check(
        curved,
        lambda p: {"w": curved_grad(p)["w"] * (1 + 1e-4)},
        params,
        rng=0,
        method="central",
        mode="full",
    )
    assert not bad.passed


@given(
    writes=st.lists(
        st.tuples(
            st.lists(st.integers(0, 49), min_size=1, max_size=8, unique=True),
            st.floats(-1e3, 1e3, allow_nan=False),
        ),
        max_size=6,
    ),
    reads=st.lists(st.integers(0, 49), max_size=12),
)
def test_sparse_state_behaves_like_a_dense_nan_filled_vector(writes, reads):
    from gradcheck.verdict.comparison import SparseVector

    sparse, dense = SparseVector(50), np.full(50, np.nan)
    for indices, value in writes:
        values = value + np.arange(len(indices), dtype=float)
        sparse[np.array(indices)] = values
        dense[np.array(indices)] = values
    np.testing.assert_array_equal(sparse[np.array(reads, dtype=np.intp)], dense[reads])
    np.testing.assert_array_equal(sparse.dense(), dense)


def test_directional_check_matches_the_full_verdicts_with_sparse_state():
    rng = np.random.default_rng(5)
    a = rng.standard_normal((30, 50))
    target = rng.standard_normal(30)
    params = {"w": rng.standard_normal(50) * 0.1, "b": np.zeros(30)}

    def big_loss(p):
        return 0.5 * np.sum(np.tanh(a @ p["w"] + p["b"]) ** 2 * target)

    def big_grad(p):
        z = np.tanh(a @ p["w"] + p["b"])
        delta = z * target * (1 - z**2)
        return {"w": a.T @ delta, "b": delta}

    def one_wrong(p):
        g = big_grad(p)
        g["w"] = g["w"].copy()
        g["w"][17] += 1e-3 * np.max(np.abs(g["w"]))
        return g

    for mode in ("full", "directional"):
        assert gradcheck.check(big_loss, big_grad, params, mode=mode, rng=0).passed
        bad = gradcheck.check(big_loss, one_wrong, params, mode=mode, rng=0)
        assert not bad.passed
        w = next(p for p in bad.parameters if p.name == "w")
        assert w.worst_index == (17,) and w.failed.sum() == 1
