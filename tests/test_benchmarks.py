"""``benchmarks/derivatives.py`` runs, and its layers are the layers they claim to be.

The benchmark's numbers are not asserted (they are measured, in
``benchmarks/results/derivatives.md``); what is asserted is that a quick run works
without torch (torch is not a test dependency: it is hidden here even where it is
installed), that gradcheck passes the correct backward passes and catches both planted
bugs there, and that the vectorised convolution computes what ``examples/layers.py``'s
naive loops compute.  Cost: about 4 s (four child processes).
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest

ROOT = Path(__file__).resolve().parent.parent
SCRIPT = ROOT / "benchmarks" / "derivatives.py"


def load(path: Path, name: str) -> ModuleType:
    spec = importlib.util.spec_from_file_location(name, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@pytest.fixture(scope="module")
def bench() -> ModuleType:
    return load(SCRIPT, "derivatives_benchmark")


def test_quick_run_without_torch(tmp_path: Path) -> None:
    hidden = tmp_path / "no_torch" / "torch"
    hidden.mkdir(parents=True)
    (hidden / "__init__.py").write_text("raise ImportError('torch hidden by the test')\n")
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(hidden.parent), env.get("PYTHONPATH")]))
    checkers = ["gradcheck default", "gradcheck full", "torch gradcheck fast"]
    command = [sys.executable, str(SCRIPT), "--quick", "--output", str(tmp_path), "--checkers"]
    done = subprocess.run(
        [*command, *checkers], env=env, capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 0, done.stderr
    assert "torch is not installed" in done.stdout
    results = json.loads((tmp_path / "derivatives.json").read_text())
    assert set(results["rows"]) == {"conv, ~1e2 input elements", "batch norm, ~1e2 input elements"}
    for entries in results["rows"].values():
        assert set(entries) == {"gradcheck default", "gradcheck full"}
        for entry in entries.values():
            assert entry["passed"] is True  # no false alarm on the correct backward pass
            assert entry["single"] is True and entry["factor"] is True  # both bugs caught
        # The full check evaluates f at every element; the default (directional above 64
        # input elements) a few dozen times, whatever the size.
        assert entries["gradcheck full"]["forward_calls"] > entries["gradcheck full"]["n_inputs"]
        assert entries["gradcheck default"]["forward_calls"] < 40
    written = (tmp_path / "derivatives.md").read_text()
    assert "| gradcheck full |" in written and "torch" not in written.split("##", 1)[1]
    (tmp_path / "derivatives.md").unlink()
    render = [sys.executable, str(SCRIPT), "--render", "--output", str(tmp_path)]
    assert subprocess.run(render, capture_output=True, timeout=60, check=False).returncode == 0
    assert (tmp_path / "derivatives.md").read_text() == written


def test_the_vectorised_convolution_is_the_examples_convolution(bench: ModuleType) -> None:
    layers = load(ROOT / "examples" / "layers.py", "example_layers_for_test")
    rng = np.random.default_rng(3)
    x, w, b = rng.standard_normal((2, 3, 6, 5)), rng.standard_normal((4, 3, 3, 3)), rng.random(4)
    out, cache = layers.conv_forward_naive(x, w, b, {"stride": 1, "pad": 1})
    np.testing.assert_allclose(bench.conv_forward(x, w, b), out, rtol=1e-12, atol=1e-12)
    dout = rng.standard_normal(out.shape)
    for mine, theirs in zip(
        bench.conv_backward(dout, x, w, b), layers.conv_backward_naive(dout, cache), strict=True
    ):
        np.testing.assert_allclose(mine, theirs, rtol=1e-12, atol=1e-12)


def test_the_planted_bugs_are_what_they_say(bench: ModuleType) -> None:
    inputs = bench.layer_inputs("batch norm", "1e2")
    dout = np.random.default_rng(0).standard_normal(bench.batchnorm_forward(*inputs).shape)
    index = bench.single_element(inputs[0])
    right = bench.backward_pass("batch norm", "ok", index)(dout, *inputs)
    single = bench.backward_pass("batch norm", "single", index)(dout, *inputs)
    factor = bench.backward_pass("batch norm", "factor", index)(dout, *inputs)
    changed = np.flatnonzero(single[0] != right[0])
    assert changed.tolist() == [index]
    assert single[0].flat[index] == pytest.approx(right[0].flat[index] * (1 + 1e-2), rel=1e-15)
    for wrong, good in zip(factor, right, strict=True):
        np.testing.assert_allclose(wrong, good * (1 + 1e-4), rtol=1e-15)
