"""Trust: the same verdict every run, and no false pass from a loss that changes under the check.

Cost: ~30 small checks, ~3 s.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

import gradcheck
from gradcheck.verdict.jitter import float32_cell_ends

W = {"w": np.array([0.3, -0.7, 1.1, 2.0])}


def real_only(w: np.ndarray) -> np.ndarray:
    return np.real(w)  # the complex step cannot be used: central differences decide


def true_grad(p: dict) -> dict:
    return {"w": 2 * np.sin(p["w"]) * np.cos(p["w"])}


GRADIENTS = {
    "correct": true_grad,
    "zero": lambda p: {"w": np.zeros_like(p["w"])},
    "sign flip": lambda p: {"w": -true_grad(p)["w"]},
    "doubled": lambda p: {"w": 2 * true_grad(p)["w"]},
}


def drifting_loss(after: int, relative: float):
    """A loss that is deterministic for ``after`` calls, then drifts by ``relative``."""
    calls = {"n": 0}

    def loss(p: dict) -> float:
        calls["n"] += 1
        value = float(np.sum(np.sin(real_only(p["w"])) ** 2))
        if calls["n"] > after:
            value *= 1 + relative * np.random.default_rng(calls["n"]).standard_normal()
        return value

    return loss


@pytest.mark.parametrize("after", [2, 5, 20])
@pytest.mark.parametrize("name", list(GRADIENTS))
def test_a_loss_that_starts_drifting_is_inconclusive_never_passed(after: int, name: str) -> None:
    result = gradcheck.check(drifting_loss(after, 1e-6), GRADIENTS[name], W)
    assert not result.passed
    assert result.status == "inconclusive"
    assert any(h.kind == "nondeterministic" and h.blocking for h in result.hazards)
    assert result.diagnosis is not None and result.diagnosis.kind == "inconclusive"


def test_a_deterministic_real_only_loss_still_gets_its_verdict() -> None:
    loss = drifting_loss(10**9, 0.0)
    assert gradcheck.check(loss, true_grad, W).passed
    for name in ("zero", "sign flip", "doubled"):
        result = gradcheck.check(loss, GRADIENTS[name], W)
        assert result.status == "failed", name


def test_the_default_check_is_reproducible_and_records_its_seed() -> None:
    from gradcheck.model import Network, random_data

    net = Network((6, 5, 3), ("tanh", "softmax"), "cross_entropy")
    x, y = random_data(net, 4, rng=1)
    loss, grad = net.functions(x, y)
    params = net.init_params(rng=2)
    first = gradcheck.check(loss, grad, params, mode="directional")
    second = gradcheck.check(loss, grad, params, mode="directional")
    assert first.seed == second.seed == 0
    assert first.directional == second.directional
    assert first.n_evaluations == second.n_evaluations
    sampled = [gradcheck.check(loss, grad, params, elements=3) for _ in range(2)]
    assert [p.checked.tolist() for p in sampled[0].parameters] == [
        p.checked.tolist() for p in sampled[1].parameters
    ]


def test_kink_acceptance_needs_stable_one_sided_slopes() -> None:
    """A noisy loss has slopes that wander by the jump: no band may absorb a zero gradient."""
    from gradcheck.problem.objective import Objective
    from gradcheck.problem.space import ParameterSpace
    from gradcheck.verdict.comparison import Comparison
    from gradcheck.verdict.kinks import accepted_kinks

    rng = np.random.default_rng(0)

    def noisy(w: np.ndarray) -> float:  # |w| plus noise far above its rounding
        return float(np.sum(np.abs(real_only(w)))) + 1e-3 * rng.standard_normal()

    def kink(w: np.ndarray) -> float:
        return float(np.sum(np.abs(real_only(w))))

    x = np.array([0.0, 0.0])
    for loss, expected in ((kink, True), (noisy, False)):
        space = ParameterSpace(x)
        objective = Objective(loss, space)
        state = Comparison(space, np.zeros(2), None)
        accepted, reference, tolerance = accepted_kinks(objective, state, np.arange(2), sigma=1e-16)
        assert bool(accepted.all()) is expected, loss.__name__
        if expected:  # |w| at 0: slopes -1 and 1, the band [-1, 1] around the analytic 0
            assert np.allclose(reference, 0.0, atol=1e-6) and np.allclose(tolerance, 1.0, atol=1e-3)


def late_writer(after: int):
    """A loss that starts writing into its argument after ``after`` calls."""
    calls = {"n": 0}

    def loss(p: dict) -> float:
        calls["n"] += 1
        if calls["n"] > after:
            p["w"] += 0.1
        return float(np.sum(np.sin(real_only(p["w"])) ** 2))

    return loss


@pytest.mark.parametrize("after", [3, 10])
@pytest.mark.parametrize("name", list(GRADIENTS))
def test_a_loss_that_starts_writing_is_inconclusive_and_named_a_mutation(after, name) -> None:
    result = gradcheck.check(late_writer(after), GRADIENTS[name], W)
    assert not result.passed and result.status == "inconclusive"
    assert any(h.kind == "mutation" and h.blocking for h in result.hazards)
    assert not any(h.kind == "nondeterministic" for h in result.hazards)  # not "randomness"


def test_a_gradient_with_an_sgd_step_inside_fails_as_a_hazard() -> None:
    def loss(p: dict) -> float:
        return float(np.sum(np.sin(p["w"]) ** 2))

    def grad_that_steps(p: dict) -> dict:
        g = true_grad(p)
        p["w"] -= 0.1 * g["w"]  # would update the weights twice per training step
        return g

    params = {"w": W["w"].copy()}
    result = gradcheck.check(loss, grad_that_steps, params)
    assert result.status == "hazard" and not result.passed
    assert np.array_equal(params["w"], W["w"])  # the caller's arrays are never modified
    flipped = gradcheck.check(loss, lambda p: {"w": -grad_that_steps(p)["w"]}, params)
    assert flipped.status == "failed"  # a wrong gradient is still called wrong


# -- the complex step's own rounding, measured where its bound decides -------------------------
def _tiny_parameter_problem() -> tuple[Any, dict[str, np.ndarray]]:
    """``b``'s gradient is 1e-18, ``w``'s up to 4: the complex step's bound (8 eps x 4)
    would cover all of ``b``'s gradient; its measured rounding does not."""
    params = {"w": np.array([1.0, 2.0]), "b": np.array([0.5, -0.3])}

    def loss(p: dict[str, np.ndarray]) -> Any:
        return np.sum(p["w"] ** 2) + 1e-18 * np.sum(np.sin(p["b"]))

    return loss, params


@pytest.mark.parametrize(
    ("b_gradient", "passed"),
    [
        (lambda b: 1e-18 * np.cos(b), True),
        (np.zeros_like, False),
        (lambda b: -1e-18 * np.cos(b), False),
    ],
    ids=["correct", "zeroed", "sign-flipped"],
)
def test_a_parameter_1e18_below_the_largest_gradient_is_still_checked(b_gradient, passed) -> None:
    loss, params = _tiny_parameter_problem()

    def grad(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"w": 2 * p["w"], "b": b_gradient(p["b"])}

    result = gradcheck.check(loss, grad, params, mode="full")
    assert result.passed is passed, str(result)
    assert result.status == ("passed" if passed else "failed")


@pytest.mark.parametrize("seed", range(5))
def test_a_small_difference_of_huge_terms_is_judged_by_the_complex_steps_measured_rounding(
    seed: int,
) -> None:
    """``1e9 w**2 - (1e9 w) w`` is zero in exact arithmetic; the complex step rounds its
    imaginary part at ~1e9 eps, far above ``8 eps |d|``: a correct gradient passes (it was
    failed before the rounding was measured), a 1e-4 factor still fails."""
    params = {"w": np.random.default_rng(1).standard_normal(20)}

    def loss(p: dict[str, np.ndarray]) -> Any:
        w = p["w"]
        return np.sum(1e9 * w**2) - np.sum((1e9 * w) * w) + np.sum(np.sin(w))

    def correct(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"w": np.cos(p["w"])}

    def factor(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"w": np.cos(p["w"]) * (1 + 1e-4)}

    for mode in ("auto", "full"):
        assert gradcheck.check(loss, correct, params, rng=seed, mode=mode).passed
        assert gradcheck.check(loss, factor, params, rng=seed, mode=mode).status == "failed"


# -- the float32 probe of the jitter: two points in one float32 rounding cell, far apart -------
@given(
    values=hnp.arrays(
        np.float64,
        hnp.array_shapes(max_dims=2, max_side=5),
        elements=st.floats(-1e30, 1e30, allow_nan=False, allow_subnormal=False),
    ),
    seed=st.integers(0, 2**32 - 1),
)
def test_float32_cell_ends_round_alike_and_lie_most_of_an_ulp_apart(values, seed) -> None:
    before = values.copy()
    low, high = float32_cell_ends(values, np.random.default_rng(seed))
    assert np.array_equal(values, before)  # the caller's array is not modified
    assert low.dtype == high.dtype == values.dtype
    assert np.array_equal(low.astype(np.float32), high.astype(np.float32))
    center = high.astype(np.float32)
    ulp = np.minimum(
        center - np.nextafter(center, np.float32(-np.inf)),
        np.nextafter(center, np.float32(np.inf)) - center,
    ).astype(np.float64)
    assert np.all(high - low >= 0.8 * ulp)


@pytest.mark.parametrize("size", [1e-6, 1e-8, 1e-10, 1e-12, 1e-14])
def test_a_zeroed_tiny_gradient_never_gets_a_better_verdict_than_the_correct_one(size) -> None:
    """A loss that takes no complex input, with ``b``'s gradient ``size`` beside ``w``'s of
    order 1: whatever finite differences can show, the zeroed gradient's verdict is never
    better than the correct one's (passed > inconclusive > failed), and a zeroed gradient
    the differences do see is never passed."""
    params = {"w": np.array([1.0, 2.0]), "b": np.array([0.5, -0.2])}

    def loss(p: dict[str, np.ndarray]) -> float:  # float(): no complex step
        return float(np.sum(p["w"] ** 2) + size * np.sum(np.sin(p["b"])))

    def correct(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"w": 2 * p["w"], "b": size * np.cos(p["b"])}

    def zeroed(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
        return {"w": 2 * p["w"], "b": np.zeros(2)}

    rank = {"failed": 0, "inconclusive": 1, "passed": 2}
    right = gradcheck.check(loss, correct, params, mode="full")
    wrong = gradcheck.check(loss, zeroed, params, mode="full")
    assert right.status != "failed", str(right)
    assert rank[wrong.status] <= rank[right.status], f"{right}\n{wrong}"
    if wrong.status == "passed":  # only when the differences saw nothing of b at all
        assert np.all(wrong["b"].reference == 0) and np.all(wrong["b"].tolerance >= size)


def test_a_textbook_derivative_that_loses_digits_passes_and_says_how_many_it_keeps() -> None:
    """A tanh unit at ``1 - |a|`` ~ 5e-10: ``1 - a**2`` keeps ~7 of float64's 16 digits.
    The check passes it (the measured jitter is room), names the loss and the cure; the
    same gradient computed from ``z`` keeps its digits and gets no such note."""
    x = np.array([[-1.05, -0.36], [0.81, -1.25]])
    y = np.array([[-1.28, 1.07], [1.18, 1.74]])
    params = {"W": np.array([[-0.053, 0.284], [0.161, 0.071]]), "b": np.array([-10.94, 11.37])}

    def loss(p: dict[str, np.ndarray]) -> Any:
        return 0.5 * np.sum((np.tanh(x @ p["W"] + p["b"]) - y) ** 2)

    def backward(derivative: Any) -> Any:
        def grad(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
            z = x @ p["W"] + p["b"]
            delta = (np.tanh(z) - y) * derivative(z)
            return {"W": x.T @ delta, "b": delta.sum(axis=0)}

        return grad

    textbook = gradcheck.check(loss, backward(lambda z: 1 - np.tanh(z) ** 2), params)
    stable = gradcheck.check(loss, backward(lambda z: 1 / np.cosh(z) ** 2), params)
    assert textbook.passed and stable.passed
    notes = [h.message for h in textbook.hazards if h.kind == "cancellation"]
    assert len(notes) == 2
    assert all("keeps about" in n and "sigmoid(z) * sigmoid(-z)" in n for n in notes)
    assert not [h for h in stable.hazards if h.kind == "cancellation"]


def test_difference_tables_in_chunks_give_every_column_the_same_noise() -> None:
    # A jitter measurement at 1e7 elements held ~30 copies of the table's temporaries (53x
    # the parameters' memory); columns are independent, so chunks must change nothing.
    from gradcheck.references import noise

    rng = np.random.default_rng(4)
    n = noise.NOISE_COLUMNS * 2 + 123
    smooth = np.cumsum(rng.standard_normal((8, n)), axis=0) * 1e-3
    values = smooth + rng.standard_normal((8, n)) * 10.0 ** rng.uniform(-14, -9, n)
    values[:, :50] = 1.0  # constant columns: noise 0, accepted
    nodes = np.arange(8) + rng.uniform(-0.35, 0.35, 8)
    nodes[0] = 0.0
    chunked, accepted = noise.difference_table_noise(values, nodes)
    whole, whole_accepted = noise._difference_table_noise(values, nodes)
    np.testing.assert_array_equal(chunked, whole)
    np.testing.assert_array_equal(accepted, whole_accepted)
    assert accepted[:50].all() and (chunked[:50] == 0).all()
    assert accepted[50:].mean() > 0.5  # the planted noise is mostly found
