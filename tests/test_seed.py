"""The seed question: exact reproduction of the post, the answer's claims, the corrected loop."""

from __future__ import annotations

import contextlib
import io
import json

import numpy as np
import pytest

from gradcheck.demo.seed import (
    SEED_PRINTED_A2,
    SEED_X,
    SEED_Y,
    UPDATE_RULES,
    SeedDemonstration,
    corrected_loop_source,
    demonstrate,
    gradient_descent_step,
    seed_network,
    seed_step,
    seed_weights,
    sign_flipped_step,
    textbook_step,
    textbook_weight2_step,
    train,
)
from gradcheck.errors import InvalidParameterError


@pytest.fixture(scope="module")
def demo() -> SeedDemonstration:
    return demonstrate()


def the_post(hidden: int = 4, iterations: int = 1000):
    """The post's code, transcribed line by line (global seeding replaced by RandomState(1))."""

    def sigmoid(x):
        return 1 / (1 + np.exp(-x))

    def derv_sigmoid(x):
        return x * (1 - x)

    learningRate = 1  # noqa: N806 - the post's names
    x = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]])
    y = np.array([[0, 1, 1, 0]]).T
    legacy = np.random.RandomState(1)
    weight1 = legacy.random((3, hidden))
    weight2 = legacy.random((hidden, 1))
    a0 = x
    for _ in range(iterations):
        z1 = x @ weight1
        a1 = sigmoid(z1)
        z2 = a1 @ weight2
        a2 = sigmoid(z2)
        delta2 = y - a2
        dC_dw2 = delta2 * derv_sigmoid(a2)
        dC_dw1 = (np.multiply(dC_dw2, weight2.T)) * derv_sigmoid(a1)
        weight2 = weight2 + learningRate * np.dot(a1.T, dC_dw2)
        weight1 = weight1 + learningRate * np.dot(a0.T, dC_dw1)
    return a2, weight1, weight2


# -- exact reproduction -----------------------------------------------------------------------
def test_random_state_1_draws_what_np_random_seed_1_draws():
    # The post's global seeding, done here once (and undone) to prove the equivalence.
    state = np.random.get_state()  # noqa: NPY002
    try:
        np.random.seed(1)  # noqa: NPY002
        expected = np.random.random((3, 4)), np.random.random((4, 1))  # noqa: NPY002
    finally:
        np.random.set_state(state)  # noqa: NPY002
    weights = seed_weights()
    np.testing.assert_array_equal(weights["weight1"], expected[0])
    np.testing.assert_array_equal(weights["weight2"], expected[1])


def test_seed_weights_leave_the_global_generator_alone():
    state = np.random.get_state()  # noqa: NPY002
    seed_weights(5)
    after = np.random.get_state()  # noqa: NPY002
    assert state[0] == after[0] and np.array_equal(state[1], after[1]) and state[2:] == after[2:]


def test_train_reproduces_the_post_bit_for_bit():
    a2, weight1, weight2 = the_post()
    run = train("seed")
    np.testing.assert_array_equal(run.final_a2, a2.ravel())
    np.testing.assert_array_equal(run.weights[-1]["weight1"], weight1)
    np.testing.assert_array_equal(run.weights[-1]["weight2"], weight2)


def test_the_post_prints_the_readme_numbers(demo):
    assert tuple(demo.seed_run.final_a2.round(3)) == SEED_PRINTED_A2 == (0.028, 0.925, 0.925, 0.090)
    assert demo.seed_run.learned_xor


def test_constants_are_read_only():
    with pytest.raises(ValueError):
        SEED_X[0, 0] = 5.0
    assert SEED_Y.shape == (4, 1)


# -- the claims -------------------------------------------------------------------------------
def test_every_claim_holds(demo):
    assert demo.passed, str(demo)
    assert len(demo.claims) == 9


def test_the_posts_update_is_gradient_descent_to_rounding(demo):
    for name in ("weight1", "weight2"):
        assert demo.seed_vs_gradient_descent[name].shape == (1000,)
        assert np.max(demo.seed_vs_gradient_descent[name]) < 1e-15
        assert np.max(demo.seed_vs_gradient_descent_relative[name]) < 1e-13
    weights = seed_weights()
    for new, expected in zip(
        seed_step(weights).values(), gradient_descent_step(weights).values(), strict=True
    ):
        np.testing.assert_allclose(new, expected, rtol=1e-14)


def test_the_textbook_step_is_far_from_the_gradient_step(demo):
    relative = demo.textbook_vs_gradient_descent_relative["weight2"]
    assert relative.shape == (1000,) and np.all(relative > 1.0)
    assert np.all(demo.textbook_vs_gradient_descent["weight2"] > 1e-3)


def test_the_minus_sign_is_gradient_ascent(demo):
    flipped = demo.sign_flipped_run
    assert flipped.losses[-1] > flipped.losses[0]
    assert not flipped.learned_xor
    assert not np.array_equal(flipped.predictions, SEED_Y.ravel())
    weights = seed_weights()
    step = {k: v - weights[k] for k, v in sign_flipped_step(weights).items()}
    descent = {k: v - weights[k] for k, v in gradient_descent_step(weights).items()}
    for name in step:
        np.testing.assert_allclose(step[name], -descent[name], rtol=1e-12)


def test_the_wrong_weight2_step_still_trains(demo):
    # The gradient is wrong, yet the loss falls: why a falling loss proves nothing.
    hybrid = demo.textbook_weight2_run
    assert hybrid.losses[-1] < 0.01 * hybrid.losses[0]
    assert hybrid.learned_xor


def test_analytic_gradient_matches_a_central_difference(demo):
    errors = demo.central_difference_error
    assert errors["weight2"] < 2e-10 and errors["weight1"] < 2e-10
    assert errors["weight2"] > 0  # a real comparison, not the same numbers twice
    weights = seed_weights()
    a1 = 1 / (1 + np.exp(-(SEED_X @ weights["weight1"])))
    a2 = 1 / (1 + np.exp(-(a1 @ weights["weight2"])))
    delta2 = (a2 - SEED_Y) * a2 * (1 - a2)
    np.testing.assert_allclose(demo.analytic_gradient["weight2"], a1.T @ delta2, rtol=1e-13)


def test_shapes_coincide_only_for_weight2(demo):
    shapes = demo.shapes
    assert shapes["dC_dw2"] == shapes["weight2"] == shapes["dL_dW2"] == (4, 1)
    assert shapes["dC_dw1"] == (4, 4) != shapes["weight1"] == shapes["dL_dW1"] == (3, 4)


# -- the textbook line with 4 and with 5 hidden units -------------------------------------------
def test_textbook_line_runs_for_weight2_only_with_4_hidden_units(demo):
    assert demo.textbook_errors["weight2"] is None
    assert "could not be broadcast" in demo.textbook_errors["weight1"]
    with pytest.raises(ValueError, match="broadcast"):
        textbook_step(seed_weights())
    new = textbook_weight2_step(seed_weights())
    assert new["weight2"].shape == (4, 1)


def test_five_hidden_units_break_the_textbook_line_but_not_the_posts(demo):
    assert demo.hidden_alt == 5
    assert all("could not be broadcast" in message for message in demo.alt_textbook_errors.values())
    with pytest.raises(ValueError, match="broadcast"):
        textbook_weight2_step(seed_weights(5))
    with pytest.raises(ValueError, match="broadcast"):
        train("textbook", iterations=1, hidden=5)
    run = demo.alt_seed_run
    assert run.hidden == 5 and run.losses[-1] < run.losses[0]
    a2, _, _ = the_post(hidden=5)
    np.testing.assert_array_equal(run.final_a2, a2.ravel())


def test_update_rules_registry_and_custom_rules():
    assert set(UPDATE_RULES) == {
        "seed",
        "textbook",
        "sign_flipped",
        "textbook_weight2",
        "gradient_descent",
    }
    run = train(gradient_descent_step, iterations=50)
    np.testing.assert_allclose(run.losses, train("seed", iterations=50).losses, rtol=1e-12)
    assert run.rule == "gradient_descent_step"
    assert len(run.weights) == 51 and run.losses.shape == (51,)


def test_seed_network_is_the_posts():
    net = seed_network()
    assert net.sizes == (3, 4, 1) and net.activations == ("sigmoid", "sigmoid")
    assert net.loss == "half_sse" and net.bias is False


@pytest.mark.parametrize(
    ("call", "argument"),
    [
        (lambda: train("adam"), "rule"),
        (lambda: train("seed", iterations=0), "iterations"),
        (lambda: seed_weights(0), "hidden"),
        (lambda: demonstrate(hidden_alt=4), "hidden_alt"),
        (lambda: demonstrate(iterations=-1), "iterations"),
    ],
)
def test_bad_arguments_name_themselves(call, argument):
    with pytest.raises(InvalidParameterError, match=f"^{argument}:"):
        call()


# -- reporting --------------------------------------------------------------------------------
def test_str_answers_the_question_with_numbers(demo):
    text = str(demo)
    for needle in (
        "[0.028 0.925 0.925 0.090]",
        "Why + and not -",
        "Where a_prev.T comes from",
        "shape coincidence",
        "a1.T @ delta2",
        "(3,4) (4,4)",
        "5 hidden units",
        "All 9 claims hold.",
    ):
        assert needle in text, needle


def test_to_dict_is_json_safe(demo):
    data = json.loads(json.dumps(demo.to_dict()))
    assert data["passed"] is True
    assert data["seed_run"]["final_a2"] == demo.seed_run.final_a2.tolist()
    assert data["shapes"]["dC_dw2"] == [4, 1]
    assert data["textbook_errors"]["weight2"] is None


def test_a_failed_claim_is_reported_not_raised(demo):
    broken = SeedDemonstration(
        **{**vars(demo), "textbook_errors": {"weight1": None, "weight2": None}}
    )
    assert not broken.passed
    assert "FAILED: 1 of 9 claims" in str(broken)


def test_short_runs_skip_the_printed_a2_claim():
    short = demonstrate(iterations=20)
    assert "the post's printed a2 is reproduced" not in short.claims
    assert short.seed_vs_gradient_descent["weight1"].shape == (20,)


# -- the corrected loop -----------------------------------------------------------------------
def test_corrected_loop_runs_and_gives_the_posts_a2():
    namespace: dict = {}
    printed = io.StringIO()
    with contextlib.redirect_stdout(printed):
        exec(corrected_loop_source(), namespace)  # noqa: S102 - our own source text
    assert printed.getvalue().strip() == "a2 = [0.028 0.925 0.925 0.09 ]"
    np.testing.assert_allclose(namespace["a2"].ravel(), train("seed").final_a2, rtol=1e-12)
    assert "weight2 -= lr * dL_dW2" in corrected_loop_source()
    assert "a1.T @ delta2" in corrected_loop_source()


def test_the_demonstration_carries_the_corrected_loops_output(demo):
    # The report shows this output and runs nothing: the demonstration ran the loop.
    assert demo.corrected_loop.source == corrected_loop_source()
    assert demo.corrected_loop.output == "a2 = [0.028 0.925 0.925 0.09 ]"
    np.testing.assert_allclose(demo.corrected_loop.a2.ravel(), train("seed").final_a2, rtol=1e-12)
    assert json.loads(json.dumps(demo.to_dict()))["corrected_loop"]["output"].startswith("a2 =")
