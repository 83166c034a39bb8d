"""The main job's battery: random networks checked against every reference."""

from __future__ import annotations

import json

import numpy as np
import pytest

from gradcheck.demo.battery import DEFAULT_CASES, BatteryCase, run_battery, run_case
from gradcheck.model.network import Network


def test_every_default_case_verifies_against_every_reference():
    result = run_battery(rng=0, quick=True, seed_demo=False)
    assert result.passed, str(result)
    assert len(result.cases) == len(DEFAULT_CASES)
    table = result.table()
    for case in DEFAULT_CASES:
        assert case.name in table
    for method in ("auto", "complex", "central", "richardson", "approx_fprime"):
        assert method in table
    json.dumps(result.to_dict())


def test_saturated_case_really_is_saturated():
    case = next(c for c in DEFAULT_CASES if "saturated" in c.name)
    params, x, y = case.problem(np.random.default_rng(0))
    grads = np.concatenate([g.ravel() for g in case.network.backward(params, x, y).values()])
    assert np.median(np.abs(grads)) < 1e-9


def test_a_broken_backward_pass_fails_the_battery(monkeypatch):
    original = Network._backward

    def scaled(self, params, y, forward):
        return {k: v * (1 + 1e-4) for k, v in original(self, params, y, forward).items()}

    monkeypatch.setattr(Network, "_backward", scaled)
    case = BatteryCase("tanh", Network((3, 4, 2), ("tanh", "identity"), "mse"))
    result = run_case(case, rng=np.random.default_rng(0), methods=("auto", "central", "richardson"))
    assert not result.passed
    assert all(not r.passed for r in result.checks.values())


@pytest.mark.parametrize("method", ["differentiate"])
def test_scipy_differentiate_reference_on_a_small_case(method):
    case = BatteryCase("small", Network((2, 3, 1), ("sigmoid", "sigmoid"), "half_sse"), n_samples=4)
    result = run_case(case, rng=np.random.default_rng(1), methods=(method,))
    assert result.passed, str(result.checks[method])


def test_every_planted_bug_is_caught_and_named():
    from gradcheck.demo.battery import PLANTED_BUGS, run_planted_bugs

    bugs = run_planted_bugs(DEFAULT_CASES[0], rng=np.random.default_rng(0))
    assert [b.bug for b in bugs] == list(PLANTED_BUGS)
    assert all(b.caught for b in bugs), "\n".join(str(b.result) for b in bugs if not b.caught)
    kinds = {b.bug: b.result.diagnosis.kind for b in bugs}
    assert kinds["sign flipped (y - a2 for a2 - y)"] == "sign-flip"
    assert kinds["per-sample delta returned as dW (the textbook update)"] == "per-sample-delta"
    assert kinds["mean over samples where the loss sums"] == "constant-factor"
    assert kinds["backprop silently in float32"] == "precision"


def test_a_missed_planted_bug_fails_the_job(monkeypatch):
    import gradcheck.demo.battery as battery

    honest = battery.PLANTED_BUGS["sign flipped (y - a2 for a2 - y)"]
    monkeypatch.setitem(
        battery.PLANTED_BUGS, "not a bug at all", lambda n, p, x, y: n.backward(p, x, y)
    )
    result = run_battery(
        rng=0, quick=True, seed_demo=False, cases=DEFAULT_CASES[:1], methods=("auto",)
    )
    assert honest is not None
    assert not result.passed
    assert "MISSED  not a bug at all" in str(result)


def test_run_pages_carry_evidence_and_the_index_lists_every_check(tmp_path):
    from gradcheck.cli import write_run_report

    battery = run_battery(
        rng=0,
        quick=True,
        seed_demo=False,
        cases=DEFAULT_CASES[:1],
        methods=("auto", "central"),
        planted_bugs=False,
    )
    case = battery.cases[0]
    assert case.loss is not None and case.params is not None  # kept for the report's evidence
    index = write_run_report(battery, tmp_path).read_text()
    pages = list((tmp_path / "checks").glob("*.html"))
    assert [page.name for page in pages] == ["seed-like-3-4-1-sigmoid-auto.html"]
    assert f"{case.case.name} / central" in index  # listed without a page of its own
    page = pages[0].read_text()
    assert "Not computed" not in page and "SciPy differentiate" in page
