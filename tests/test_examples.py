"""Every example in ``examples/`` runs, and says what it claims.

Cost: ~1 s for the two scripts, a few seconds for the property-test example
(hypothesis, 25 drawn networks).
"""

from __future__ import annotations

import importlib.util
import os
import subprocess
import sys
from importlib.metadata import entry_points
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

import gradcheck.plugin  # noqa: F401 - loaded before pytester's in-process run (numpy once)
import gradcheck.strategies  # noqa: F401

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "examples"

pytest_plugins = ["pytester"]


def load(name: str) -> ModuleType:
    path = EXAMPLES / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"gradcheck_example_{name}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_seed_update_script_runs_and_prints_the_answer() -> None:
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(ROOT), env.get("PYTHONPATH")]))
    result = subprocess.run(
        [sys.executable, str(EXAMPLES / "seed_update.py")],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    out = result.stdout
    assert "== working ==\ngradcheck update: PASSED: gradient descent" in out
    assert "== textbook ==\ngradcheck update: FAILED" in out and "combines weight1" in out
    assert "minus the layer's delta" in out and "a_prev.T @ delta" in out


def test_seed_update_matches_the_post() -> None:
    """The wrapped functions are the post's code: 1000 working steps give its printed a2."""
    seed = load("seed_update")
    weights = seed.initial_weights()
    for _ in range(1000):
        weights = seed.working_step(weights)
    _, _, a2 = seed.forward(weights)
    np.testing.assert_allclose(a2.ravel(), [0.028, 0.925, 0.925, 0.090], atol=5e-4)
    results = seed.run(quiet=True)
    assert {name: r.kind for name, r in results.items()} == {
        "working": "descent",
        "textbook": "shape",
        "textbook_where_it_runs": "per_sample_delta",
    }


def test_custom_gradient_example(tmp_path: Path) -> None:
    example = load("custom_gradient")
    assert example.main([]) == 0  # the bug fails, the fix passes
    import gradcheck

    buggy = gradcheck.check(example.loss, example.grad, example.params(), rng=0)
    assert [p.name for p in buggy.failed_parameters] == ["weight"]
    assert example.main([str(tmp_path / "p.npz")]) == 0
    from gradcheck.targets import load_params

    loaded = load_params(tmp_path / "p.npz")
    np.testing.assert_array_equal(loaded["weight"], example.params()["weight"])


def test_property_test_example_with_the_plugin(pytester: pytest.Pytester) -> None:
    source = (EXAMPLES / "test_backprop_properties.py").read_text()
    pytester.makepyfile(test_backprop_properties=source)
    installed = any(e.name == "gradcheck" for e in entry_points(group="pytest11"))
    args = [] if installed else ["-p", "gradcheck.plugin"]
    result = pytester.runpytest(*args, "-p", "no:cacheprovider")
    result.assert_outcomes(passed=3)
    result.stdout.fnmatch_lines(["*check(s) made through the gradcheck fixture:*"])
