"""Directional mode: probes with a stated miss probability, bisection, automatic mode choice.

Every bug claimed caught has its correct twin that must pass.  Networks are small or medium
(64-32-10: 2,410 parameters); the whole file runs in a few seconds.  Speed is measured by
``benchmarks/run.py``, never asserted here.
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
import pytest

import gradcheck
from gradcheck.errors import InvalidParameterError, ParameterTypeError
from gradcheck.model.network import Network, random_data
from gradcheck.options import Budget
from gradcheck.problem.space import ParameterSpace
from gradcheck.references.noise import estimate_noise
from gradcheck.runner.directional import (
    MISS_TARGET,
    POOL_COARSENING,
    _pooled_groups,
    directional_check,
    miss_probability,
)
from gradcheck.runner.evaluation import BatchedObjective, choose_mode


def _network(sizes=(64, 32, 10), activations=("tanh", "sigmoid"), *, dtype=np.float64, seed=0):
    net = Network(sizes, activations)
    params = net.init_params(rng=seed, dtype=dtype)
    x, y = random_data(net, 16, rng=seed + 1, dtype=dtype)
    loss, grad = net.functions(x, y)
    return net, params, loss, grad


def _planted(net, grad, change):
    """A gradient function whose flat gradient is ``change(flat)``."""

    def wrong(params):
        flat = net.flatten(grad(params)).astype(np.float64)
        return {k: v.astype(params[k].dtype) for k, v in net.unflatten(change(flat)).items()}

    return wrong


def _one_element(index, relative):
    def change(flat):
        flat = flat.copy()
        flat[index] += relative * np.abs(flat).max()
        return flat

    return change


# -- the probability bound -------------------------------------------------------------------
def test_miss_probability_is_the_gaussian_probability_of_a_small_projection():
    # One probe with slack c against |e| = 1: P(|N(0, 1)| <= c) = erf(c / sqrt 2).
    assert miss_probability([1.0], 1.0) == pytest.approx(math.erf(1 / math.sqrt(2)))
    # k probes: the product.
    assert miss_probability([1.0, 2.0], 1.0) == pytest.approx(
        math.erf(1 / math.sqrt(2)) * math.erf(2 / math.sqrt(2))
    )
    assert miss_probability([1.0], 0.0) == 1.0


def test_miss_probability_matches_monte_carlo_for_a_single_wrong_element():
    # e has one nonzero element: e . v = e_i v_i, so the bound is exact, not just an upper bound.
    rng = np.random.default_rng(0)
    e = np.zeros(500)
    e[17] = 3.0
    slack = 1.5
    v = rng.standard_normal((20000, 500))
    missed = np.mean(np.abs(v @ e) <= slack)
    assert missed == pytest.approx(miss_probability([slack], 3.0), abs=0.01)


# -- verdicts and their twins -----------------------------------------------------------------
@pytest.mark.parametrize("activations", [("tanh", "sigmoid"), ("sigmoid", "identity")])
def test_correct_gradient_passes_with_a_stated_guarantee(activations):
    net, params, loss, grad = _network(activations=activations)
    result = gradcheck.check(loss, grad, params, mode="directional", rng=1)
    assert result.passed, str(result)
    assert result.mode == "directional"
    info = result.directional
    assert info["passed"] and info["n_probes"] >= 2 * len(params)
    assert info["guarantee"]["rho"] < 1e-6
    assert info["guarantee"]["miss_probability"] == MISS_TARGET
    assert "would be missed with probability" in str(result)
    json.dumps(result.to_dict())


@pytest.mark.parametrize("method", ["auto", "central"])  # complex-step probes, Richardson probes
def test_single_element_off_by_1e_3_of_the_largest_is_caught_and_located(method):
    net, params, loss, grad = _network()
    index = 1234  # inside weight1 (64 x 32 = 2048 elements)
    wrong = _planted(net, grad, _one_element(index, 1e-3))
    result = gradcheck.check(loss, wrong, params, mode="directional", method=method, rng=2)
    assert not result.passed
    assert not result.directional["passed"]
    failed = result["weight1"].failed
    assert failed.sum() == 1
    assert np.ravel_multi_index(np.argwhere(failed)[0], failed.shape) == index
    # Located with far fewer evaluations than an elementwise check of 2,410 parameters.
    assert result.n_evaluations < net.n_params / 2
    twin = gradcheck.check(loss, grad, params, mode="directional", method=method, rng=2)
    assert twin.passed, str(twin)


@pytest.mark.parametrize("method", ["auto", "central"])
def test_factor_1e_4_error_is_caught_as_spread(method):
    net, params, loss, grad = _network()
    wrong = _planted(net, grad, lambda flat: flat * (1 + 1e-4))
    result = gradcheck.check(loss, wrong, params, mode="directional", method=method, rng=3)
    assert not result.passed
    assert all(not p.passed for p in result.parameters)
    assert result.diagnosis is not None and result.diagnosis.kind == "constant-factor"


def test_sign_flip_on_a_saturated_unit_is_caught():
    net, params, loss, grad = _network(activations=("sigmoid", "sigmoid"))
    params = {k: v.copy() for k, v in params.items()}
    params["bias1"][5] = 12.0  # hidden unit 5 saturated: its gradients are ~1e-5 of the others
    saturated = net.param_shapes()
    column = np.zeros(saturated["weight1"], dtype=bool)
    column[:, 5] = True
    mask = np.concatenate([column.ravel(), np.zeros(net.n_params - column.size, dtype=bool)])

    def flip(flat):
        flat = flat.copy()
        flat[mask] = -flat[mask]
        return flat

    g = net.flatten(grad(params))
    assert np.abs(g[mask]).max() < 1e-3 * np.abs(g).max()
    result = gradcheck.check(loss, _planted(net, grad, flip), params, mode="directional", rng=4)
    assert not result.passed
    assert result["weight1"].failed[:, 5].any() and not result["weight1"].failed[:, :5].any()
    assert gradcheck.check(loss, grad, params, mode="directional", rng=4).passed


def test_non_finite_analytic_elements_are_reported():
    net, params, loss, grad = _network()

    def nan_at_7(flat):
        flat = flat.copy()
        flat[7] = np.nan
        return flat

    result = gradcheck.check(loss, _planted(net, grad, nan_at_7), params, mode="directional", rng=5)
    assert not result.passed
    assert result["weight1"].failed.ravel()[7]
    assert "non-finite" in result.directional["summary"]


def test_relu_network_passes_without_false_alarm():
    net, params, loss, grad = _network(activations=("relu", "identity"))
    result = gradcheck.check(loss, grad, params, mode="directional", rng=6)
    assert result.passed, str(result)
    wrong = _planted(net, grad, _one_element(100, 1e-3))
    assert not gradcheck.check(loss, wrong, params, mode="directional", rng=6).passed


def test_float32_network():
    net, params, loss, grad = _network(dtype=np.float32)
    assert gradcheck.check(loss, grad, params, mode="directional", rng=7).passed
    wrong = _planted(net, grad, lambda flat: -flat)
    assert not gradcheck.check(loss, wrong, params, mode="directional", rng=7).passed


def test_directional_check_directly_and_the_user_params_untouched():
    net, params, loss, grad = _network()
    before = {k: v.copy() for k, v in params.items()}
    space = ParameterSpace(params)
    objective = BatchedObjective(loss, space)
    sigma = estimate_noise(objective, rng=np.random.default_rng(0)).sigma
    analytic = net.flatten(grad(params))
    outcome = directional_check(
        objective, analytic, sigma=sigma, use_complex=True, rng=np.random.default_rng(1)
    )
    assert outcome.passed
    assert len(outcome.top) == 2 * len(params)  # two complex-step probes per parameter
    assert outcome.n_evaluations == len(outcome.top)  # one complex evaluation per probe
    assert all(p.passed for p in outcome.probes)
    for key in params:
        np.testing.assert_array_equal(params[key], before[key])


# -- the automatic mode choice ----------------------------------------------------------------
def test_auto_mode_runs_full_on_small_problems_and_directional_over_budget():
    net, params, loss, grad = _network()
    # A budget in evaluations, not seconds: a loaded machine must not make it directional.
    small = gradcheck.check(loss, grad, params, rng=0, budget=1_000_000)
    assert small.mode == "full"
    assert any("mode full (auto)" in note for note in small.notes)
    tight = gradcheck.check(loss, grad, params, rng=0, budget=100)  # 100 loss evaluations
    assert tight.mode == "directional" and tight.passed
    assert any("over the budget of 100 loss evaluations" in note for note in tight.notes)
    sampled = gradcheck.check(loss, grad, params, rng=0, elements=3)
    assert sampled.mode == "sampled"
    forced = gradcheck.check(loss, grad, params, rng=0, mode="sampled", budget=200)
    assert forced.mode == "sampled" and forced.passed
    assert forced["weight1"].n_checked < net.param_shapes()["weight1"][0] * 32


def test_choose_mode_rules():
    common = dict(
        n_elements=100_000,
        n_parameters=4,
        elements=None,
        seconds_per_evaluation=1e-4,
        evaluations_per_element=2.0,
        user_tolerance=False,
    )
    assert choose_mode("auto", budget=Budget(seconds=100.0), **common)[0] == "full"
    assert choose_mode("auto", budget=Budget(seconds=1.0), **common)[0] == "directional"
    mode, k, note = choose_mode(
        "auto", budget=Budget(seconds=1.0), **{**common, "user_tolerance": True}
    )
    assert mode == "sampled" and k == 1250 and "atol/rtol" in note
    assert choose_mode("auto", budget=Budget(evaluations=10), **{**common, "elements": 5})[:2] == (
        "sampled",
        5,
    )
    with pytest.raises(InvalidParameterError, match="mode"):
        choose_mode("directional", budget=Budget(seconds=1.0), **{**common, "user_tolerance": True})


@pytest.mark.parametrize(
    ("options", "error", "name"),
    [
        ({"mode": "fast"}, InvalidParameterError, "mode"),
        ({"mode": 3}, ParameterTypeError, "mode"),
        ({"budget": -1.0}, InvalidParameterError, "budget"),
        ({"budget": "1s"}, ParameterTypeError, "budget"),
        ({"budget": True}, ParameterTypeError, "budget"),
        ({"mode": "directional", "atol": 1e-6}, InvalidParameterError, "mode"),
        ({"executor": "pool"}, ParameterTypeError, "executor"),
        ({"vectorized": "yes"}, ParameterTypeError, "vectorized"),
        ({"progress": "loud"}, ParameterTypeError, "progress"),
    ],
)
def test_bad_options_name_the_argument(options, error, name):
    net, params, loss, grad = _network(sizes=(3, 2, 1))
    with pytest.raises(error, match=f"^{name}"):
        gradcheck.check(loss, grad, params, **options)


def test_richardson_probes_of_a_plain_loss_move_the_working_copies_in_place(monkeypatch):
    # A plain loss is evaluated point by point: each probe point is written into gradcheck's
    # working copies and put back, so no point is built (a stack of K full parameter vectors,
    # or even one, would only cost memory); a vectorized loss gets stacks.
    net, params, loss, grad = _network()
    heights = []
    original = BatchedObjective.values_at

    def spy(self, points):
        heights.append(len(points))
        return original(self, points)

    monkeypatch.setattr(BatchedObjective, "values_at", spy)
    seen = []

    def watching(p):
        seen.append(p["weight1"])
        return loss(p)

    result = gradcheck.check(watching, grad, params, mode="directional", method="richardson", rng=0)
    assert result.passed and not heights
    assert len({id(w) for w in seen}) == 1  # one working array, moved and put back each time
    assert np.array_equal(seen[0], params["weight1"])  # put back bitwise
    heights.clear()
    x, y = random_data(net, 16, rng=1)
    vloss = net.vectorized_loss(x, y)
    stacked = gradcheck.check(
        vloss, grad, params, mode="directional", method="richardson", rng=0, vectorized=True
    )
    assert stacked.passed and max(heights) > 1


# -- many parameter arrays: the cost per array is shared ----------------------------------------
def _many_arrays(n_arrays: int, size: int, *, real_only: bool):
    rng = np.random.default_rng(0)
    scales = 10.0 ** rng.uniform(-1, 1, n_arrays)  # gradients of different sizes
    params = {f"p{i}": rng.standard_normal(size) for i in range(n_arrays)}

    def loss(p):
        total = 0.0
        for scale, value in zip(scales, p.values(), strict=True):
            w = np.real(value) if real_only else value
            total = total + scale * np.sum(np.sin(w) ** 2)
        return total

    def grad(p):
        return {
            k: s * 2 * np.sin(v) * np.cos(v) for s, (k, v) in zip(scales, p.items(), strict=True)
        }

    return params, loss, grad, scales


@pytest.mark.parametrize("real_only", [False, True])
def test_many_arrays_share_their_probes_and_a_bug_in_one_is_located(real_only):
    params, loss, grad, scales = _many_arrays(120, 10, real_only=real_only)
    result = gradcheck.check(loss, grad, params, mode="directional", progress=False)
    assert result.passed, str(result)
    # A few groups of arrays share the top-level probes: the cost does not grow per array.
    per_array = 2 if not real_only else 40  # what a probe per array used to cost, at least
    assert result.n_evaluations < per_array * len(params) / 4
    assert result.directional["guarantee"]["rho"] < 1e-2
    small = f"p{int(np.argmin(scales))}"  # the array with the smallest gradients

    def flipped(p):
        g = grad(p)
        return {**g, small: -g[small]}

    bad = gradcheck.check(loss, flipped, params, mode="directional", progress=False)
    assert not bad.passed
    assert [p.name for p in bad.parameters if not p.passed] == [small]
    assert bad.n_evaluations < 10 * result.n_evaluations  # locating costs O(log #arrays)


def test_a_loss_that_slows_down_is_re_planned_within_about_twice_the_budget():
    calls = {"n": 0}

    def loss(w):
        calls["n"] += 1
        if calls["n"] > 40:  # fast while the budget is planned, slow afterwards
            time.sleep(0.02)
        return float(np.sum(np.sin(np.real(w)) ** 2))

    def grad(w):
        return 2 * np.sin(w) * np.cos(w)

    w = np.random.default_rng(0).standard_normal(2000)
    # 1 s: room for the directional probes (~50 evaluations at 20 ms) on a loaded machine.
    result = gradcheck.check(loss, grad, w, budget=1.0, progress=False)
    assert result.passed, str(result)
    assert result.mode == "directional"
    if any(note.startswith("mode full (auto)") for note in result.notes):  # (a loaded machine
        # may find even the first calls too slow and plan directional from the start)
        assert any(note.startswith("re-planned after 32 of 2,000") for note in result.notes)
    # A full check would have needed ~4,000 evaluations at 20 ms: ~80 s.
    assert result.n_evaluations < 400
    calls["n"] = 0
    flipped = gradcheck.check(loss, lambda w: -grad(w), w, budget=1.0, progress=False)
    assert flipped.status == "failed"


def _slow_problem(seconds: float):
    def loss(p):
        time.sleep(seconds)
        return float(sum(np.sum(np.sin(np.real(w)) ** 2) for w in p.values()))

    def grad(p):
        return {k: 2 * np.sin(w) * np.cos(w) for k, w in p.items()}

    rng = np.random.default_rng(0)
    return loss, grad, {f"p{i}": rng.standard_normal(500) for i in range(3)}


def test_directional_probes_stop_within_about_twice_the_budget():
    # Each Richardson probe costs 14 evaluations (0.14 s here): three parameters with three
    # probes each would take ~1.5 s; the check stops near twice its budget of 0.2 s instead.
    loss, grad, params = _slow_problem(0.01)
    started = time.perf_counter()
    result = gradcheck.check(loss, grad, params, budget=0.2, mode="auto", progress=False)
    elapsed = time.perf_counter() - started
    assert result.mode == "directional"
    assert elapsed < 2 * 0.2 + 0.45, (elapsed, str(result))  # + one probe's overshoot
    assert "probing stopped after" in result.directional["summary"]
    if result.status == "inconclusive":  # the parameters not reached are named, no verdict
        (budget,) = [h for h in result.hazards if h.kind == "budget"]
        assert budget.blocking and "no verdict" in budget.message
    else:  # the probes that fit reached every parameter: their weaker guarantee is stated
        assert result.passed, str(result)
    # A wrong gradient is not passed for lack of time: failed, or no verdict.
    wrong = gradcheck.check(
        loss, lambda p: {k: -g for k, g in grad(p).items()}, params, budget=0.2, progress=False
    )
    assert wrong.status in ("failed", "inconclusive"), str(wrong)


def test_an_evaluation_budget_caps_the_directional_probes():
    loss, grad, params = _slow_problem(0.0)
    result = gradcheck.check(loss, grad, params, budget=20, progress=False)
    assert result.mode == "directional"
    assert result.n_evaluations <= 2 * 20 + 16, str(result)  # + the illustrating elements
    assert result.status in ("passed", "inconclusive"), str(result)


def _k_wrong(k):
    def change(flat):
        flat = flat.copy()
        for i in np.linspace(7, flat.size - 7, k).astype(int):
            flat[i] += 1e-3 * np.abs(flat).max()
        return flat

    return change


@pytest.mark.parametrize("method", ["auto", "central"])
def test_a_dense_error_costs_at_most_about_ten_passing_checks(method):
    # Once the probes show the error spread over a parameter, localising stops and a sample
    # describes it (enough to name the factor): no bisection tree, no elementwise leaf blocks.
    net, params, loss, grad = _network()
    right = gradcheck.check(loss, grad, params, mode="directional", method=method, rng=3)
    wrong = _planted(net, grad, lambda flat: flat * (1 + 1e-4))
    dense = gradcheck.check(loss, wrong, params, mode="directional", method=method, rng=3)
    assert right.passed and dense.status == "failed", str(dense)
    assert dense.diagnosis is not None and dense.diagnosis.kind == "constant-factor"
    assert dense.n_evaluations <= 10 * right.n_evaluations, (dense.n_evaluations, str(dense))
    assert "stopped localising" in dense.directional["summary"]


def test_k_wrong_elements_are_located_at_a_cost_linear_in_k():
    net, params, loss, grad = _network()
    right = gradcheck.check(loss, grad, params, mode="directional", rng=3)
    extra = {}
    for k in (1, 4):
        found = gradcheck.check(loss, _planted(net, grad, _k_wrong(k)), params, mode="directional")
        assert sum(int(p.failed.sum()) for p in found.parameters) == k, str(found)
        extra[k] = found.n_evaluations - right.n_evaluations
    # O(k log N): each wrong element costs a bisection path (~2 log2 N probes) and its own
    # elementwise references; four cost about four times one, not a sweep of N = 2,410.
    assert extra[4] <= 6 * extra[1], extra
    assert extra[4] < net.n_params / 4, extra


# -- grouping: arrays probed alone, arrays pooled ----------------------------------------------
def test_an_array_probed_alone_has_a_guarantee_independent_of_the_other_arrays_scales():
    # Six arrays: the large one is a group of its own, the five small ones share probes.  A
    # lone array's direction is unweighted (weight 1), and its group's bound uses its own
    # |g_p|: it used to be weighted typical / |g_p| (the median over every array) while the
    # bound ignored the weight, so its stated guarantee moved with the other arrays' scales
    # (here 7.2e-10 against 5.6e-10; the right one is 1.9e-9).
    def stated(small):
        rng = np.random.default_rng(3)
        sizes, scales = (100_000, 10, 12, 9, 11, 8), (0.03, small, small, 2.0, small, small)
        params = {f"p{k}": rng.standard_normal(n) for k, n in enumerate(sizes)}

        def loss(p):
            return sum(s * np.sum(np.sin(p[f"p{k}"])) for k, s in enumerate(scales))

        def grad(p):
            return {f"p{k}": s * np.cos(p[f"p{k}"]) for k, s in enumerate(scales)}

        result = gradcheck.check(loss, grad, params, mode="directional", progress=False)
        assert result.passed
        covers = {tuple(p["covers"]) for p in result.directional["probes"]}
        assert covers == {("p0",), ("p1", "p2", "p3", "p4", "p5")}
        return result.directional["guarantee"]["rho"]

    assert stated(1.0) == stated(0.25)  # the lone, least resolved array sets it: unchanged


def _groups_of(sizes_and_rms, dtypes=None):
    dtypes = dtypes or [np.float64] * len(sizes_and_rms)
    params = {
        f"a{k}": np.ones(n, dtype=dtype)
        for k, ((n, _), dtype) in enumerate(zip(sizes_and_rms, dtypes, strict=True))
    }
    space = ParameterSpace(params)
    norms = np.array([r * math.sqrt(n) for n, r in sizes_and_rms])
    groups = _pooled_groups(space, norms, POOL_COARSENING)
    return [
        tuple(
            space.leaves[k].name
            for k in range(len(space.leaves))
            if b.start <= space.leaves[k].offset < b.stop
        )
        for b in groups
    ]


def test_pooled_groups_share_probes_only_where_no_array_loses_more_than_the_bound():
    # A batch norm's x (rms gradient element 0.56) beside gamma and beta (22.7, 20.6): gamma
    # and beta share probes (each resolved 1.5x more coarsely), x keeps its own (beside them
    # gamma would be resolved 40x more coarsely).
    assert _groups_of([(100_000, 0.56), (200, 22.7), (200, 20.6)]) == [("a0",), ("a1", "a2")]
    # Equal arrays pool up to 16 (sqrt(16) = 4, the bound); a 4x gap in rms stops it.
    assert _groups_of([(10, 1.0)] * 3) == [("a0", "a1", "a2")]
    assert _groups_of([(10, 1.0), (10, 4.0)]) == [("a0",), ("a1",)]
    # An array with a zero gradient is never pooled (its weight would swamp the others').
    assert _groups_of([(10, 1.0), (10, 0.0), (10, 1.0), (10, 1.0)]) == [
        ("a0",),
        ("a1",),
        ("a2", "a3"),
    ]
    # Nor are arrays of different dtypes.
    mixed = _groups_of([(10, 1.0), (10, 1.0)], dtypes=[np.float64, np.float32])
    assert mixed == [("a0",), ("a1",)]
    # Beyond MAX_TOP_GROUPS groups, the many-array rule (about equal numbers of elements).
    spread = [(10, 4.0**k) for k in range(6)]
    assert len(_groups_of(spread)) <= 4


def test_a_loss_with_an_unrelated_probing_attribute_gets_the_scalar_checks_probes():
    # The scalar check reads a loss's .probing (a derivative check's <u, f> carries one); a
    # user's loss object with an attribute of that name for its own purposes is not one.
    net, params, loss, grad = _network()

    class Loss:
        probing = "the user's own"

        def __call__(self, p):
            return loss(p)

    plain = gradcheck.check(loss, grad, params, mode="directional", rng=1)
    odd = gradcheck.check(Loss(), grad, params, mode="directional", rng=1)
    assert odd.passed and odd.n_evaluations == plain.n_evaluations
    assert all(int(p.checked.sum()) >= 1 for p in odd.parameters)  # illustrated, as usual


def test_past_the_budget_a_dense_error_hands_two_elements_to_the_elementwise_pipeline() -> None:
    # Each failing element costs a second reference and a kink test (~20 evaluations): a
    # bisection stopped by the budget used to hand 16 of them on (~320 evaluations).
    w = np.random.default_rng(5).standard_normal(50_000)

    def loss(p):  # type: ignore[no-untyped-def]
        return np.sum(np.sin(p["w"]) ** 2)

    def factor(p):  # type: ignore[no-untyped-def]
        return {"w": 2 * np.sin(p["w"]) * np.cos(p["w"]) * 1.1}

    result = gradcheck.check(loss, factor, {"w": w}, rng=1, budget=10)  # 10 evaluations
    assert result.status == "failed" and result.mode == "directional"
    assert "budget is spent" in result.directional["summary"]
    assert sum(p.n_checked for p in result.parameters) == 2
    assert result.diagnosis is not None and result.diagnosis.kind == "constant-factor"
    assert result.n_evaluations <= 70
    # Past the budget the jitter is not measured (16 gradient calls): the most it could be
    # stands in, and a 10% error fails even so.
    assert result.n_grad_evaluations == 2
    assert "not measured: past the budget" in result.parameters[0].tolerance_source


def test_past_the_budget_an_error_within_the_jitter_bound_is_inconclusive_not_failed() -> None:
    # A 1e-4 factor disagrees by more than rounding but less than the most the gradient's
    # jitter could be (1e-3 of its largest value): without measuring the jitter, which the
    # budget does not allow, no verdict; with the default budget it is measured and fails.
    w = np.random.default_rng(5).standard_normal(50_000)

    def loss(p):  # type: ignore[no-untyped-def]
        return np.sum(np.sin(p["w"]) ** 2)

    def factor(p):  # type: ignore[no-untyped-def]
        return {"w": 2 * np.sin(p["w"]) * np.cos(p["w"]) * (1 + 1e-4)}

    tight = gradcheck.check(loss, factor, {"w": w}, rng=1, budget=10)
    assert tight.status == "inconclusive"
    assert [h.kind for h in tight.hazards if h.blocking] == ["budget"]
    assert "raise budget=" in str(tight) and tight.n_grad_evaluations == 2
    default = gradcheck.check(loss, factor, {"w": w}, rng=1)
    assert default.status == "failed" and default.n_grad_evaluations > 2


def test_past_the_budget_a_correct_but_jittery_gradient_is_never_failed() -> None:
    # The textbook a * (1 - a) at saturated units needs the jitter's room; under a budget
    # too small to measure it, the bound stands in: passed or inconclusive, never failed.
    def sig(z):  # type: ignore[no-untyped-def]
        return 1 / (1 + np.exp(-z))

    x = np.random.default_rng(2).standard_normal(400)

    def sat_loss(p):  # type: ignore[no-untyped-def]
        return 0.5 * np.sum(sig(15.5 + p["w"] * x) ** 2)

    def sat_grad(p):  # type: ignore[no-untyped-def]
        a = sig(15.5 + p["w"] * x)
        return {"w": a * a * (1 - a) * x}

    params = {"w": np.random.default_rng(3).uniform(-0.3, 0.3, 400)}
    for budget in (5, 20, 60):
        result = gradcheck.check(sat_loss, sat_grad, params, rng=0, budget=budget)
        assert result.status in ("passed", "inconclusive"), (budget, str(result))
