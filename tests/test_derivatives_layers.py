"""cs231n-style layers checked with ``check_vjp`` (issue 13, items 6 and 7).

Each layer of ``examples/layers.py`` passes; its planted-bug twin fails, with the
wrong input element named and, where a name is given, the right one (a wrong name
is worse than none).  A property test draws affine and activation layers of random
shapes.  Cost: about 5 s for the layers, a few seconds for the properties.
"""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import ModuleType

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradcheck

EXAMPLE = Path(__file__).resolve().parents[1] / "examples" / "layers.py"


def _load() -> ModuleType:
    spec = importlib.util.spec_from_file_location("gradcheck_example_layers", EXAMPLE)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


layers = _load()
NAMES = list(layers.problems())
_checked: dict[tuple[str, bool], gradcheck.CheckResult] = {}


def check_layer(name: str, *, bug: bool = False) -> gradcheck.CheckResult:
    """``layers.check_layer``, each layer checked once per test session."""
    if (name, bug) not in _checked:
        _checked[name, bug] = _original(name, bug=bug)
    return _checked[name, bug]


_original = layers.check_layer
layers.check_layer = check_layer  # the example script's main() reuses the checks made

#: What each planted bug's diagnosis may say: the kinds that are right for it (None: any
#: kind whose name is right, checked by the words below).
RIGHT_NAMES = {
    "affine": {"constant-factor"},
    "affine (square weight)": {"transposed"},
    "relu": {"missing-derivative", "unknown"},
    "conv": {"unknown", "few-elements"},
    "max pool (overlapping)": {"nonlinear-vjp", "unknown"},
    "batch norm": {"normalisation", "unknown"},
    "softmax loss": {"sign-flip"},
}


@pytest.mark.parametrize("name", NAMES)
def test_each_layer_passes_and_its_planted_bug_fails_with_a_right_name(name: str) -> None:
    right = check_layer(name)
    assert right.passed, str(right)
    wrong = check_layer(name, bug=True)
    assert not wrong.passed and wrong.status == "failed", str(wrong)
    assert wrong.diagnosis is not None
    assert wrong.diagnosis.kind in RIGHT_NAMES[name], str(wrong)


def test_the_affine_bias_bug_is_a_mean_over_the_batch() -> None:
    wrong = check_layer("affine", bug=True)
    assert [p.name for p in wrong.failed_parameters] == ["inputs[2]"]
    assert "1/4" in wrong.diagnosis.summary and "mean" in wrong.diagnosis.summary


def test_the_overlapping_max_pool_bug_is_an_overwrite_not_a_wrong_entry() -> None:
    # Every one-hot cotangent gives the right entries: only overlapping windows together
    # are wrong, and the full check's diagnosis says so instead of naming a wrong entry.
    wrong = _original("max pool (overlapping)", bug=True, mode="full")
    assert wrong.entries == ()
    assert wrong.diagnosis.kind == "nonlinear-vjp"
    assert "+=" in wrong.diagnosis.summary
    # The default (directional probes above 64 input elements) fails it too, and names
    # nothing it has not tested.  The error is spread thinly (overwritten windows beside
    # zero gradients), so a random sample can miss every wrong element: a failing spot
    # block is halved down to one, which is located at every seed, and named when its
    # restricted cotangent shows the overwrite (7 seeds in 12), else "unknown".
    for seed in (0, 1, 2, 3):
        default = _original("max pool (overlapping)", bug=True, rng=seed, progress=False)
        assert default.mode == "directional" and default.status == "failed"
        assert [p.name for p in default.failed_parameters] == ["inputs[0]"]
        assert default.entries == () and default.diagnosis.kind in ("nonlinear-vjp", "unknown")


def test_the_batch_norm_bug_fails_on_the_input_only() -> None:
    wrong = check_layer("batch norm", bug=True)
    assert [p.name for p in wrong.failed_parameters] == ["inputs[0]"]
    assert "inputs[3]" in " ".join(wrong.notes)  # bn_param held fixed


def test_the_example_script_reports_every_layer() -> None:
    assert layers.main() == 0


# -- property: affine + activation layers of random shapes ---------------------------------

ACTIVATIONS = {
    "tanh": (np.tanh, lambda z: 1 - np.tanh(z) ** 2),
    "sigmoid": (lambda z: 1 / (1 + np.exp(-z)), lambda z: np.exp(-z) / (1 + np.exp(-z)) ** 2),
    "softplus": (lambda z: np.log1p(np.exp(z)), lambda z: 1 / (1 + np.exp(-z))),
}


@st.composite
def dense_layers(draw: st.DrawFn) -> tuple[str, tuple[np.ndarray, ...]]:
    batch = draw(st.integers(1, 5))
    fan_in = draw(st.integers(1, 5))
    fan_out = draw(st.integers(1, 5))
    activation = draw(st.sampled_from(sorted(ACTIVATIONS)))
    seed = draw(st.integers(0, 2**16))
    rng = np.random.default_rng(seed)
    inputs = (
        rng.standard_normal((batch, fan_in)),
        rng.standard_normal((fan_in, fan_out)),
        rng.standard_normal(fan_out),
    )
    return activation, inputs


def _dense(activation: str):
    function, derivative = ACTIVATIONS[activation]

    def f(x, w, b):
        return function(x @ w + b)

    def vjp(dout, x, w, b):
        dz = dout * derivative(x @ w + b)
        return dz @ w.T, x.T @ dz, dz.sum(axis=0)

    def vjp_no_derivative(dout, x, w, b):
        return dout @ w.T, x.T @ dout, dout.sum(axis=0)

    return f, vjp, vjp_no_derivative


@settings(max_examples=15)
@given(dense_layers())
def test_dense_layers_of_random_shapes_pass_and_a_missing_derivative_fails(problem) -> None:
    activation, inputs = problem
    f, vjp, vjp_bug = _dense(activation)
    right = gradcheck.check_vjp(f, vjp, inputs)
    assert right.passed, str(right)
    wrong = gradcheck.check_vjp(f, vjp_bug, inputs)
    assert not wrong.passed, str(wrong)
    assert wrong.entries, str(wrong)  # the wrong entries are named
    assert wrong.diagnosis is not None and wrong.diagnosis.kind not in (
        "sign-flip",
        "transposed",
        "swapped",
    )


# -- the logistic regression example: grad, hess, hessp verified, then trust-ncg -----------


def test_logistic_regression_derivatives_are_verified_and_drive_trust_ncg(capsys) -> None:
    spec = importlib.util.spec_from_file_location(
        "gradcheck_example_logistic", EXAMPLE.with_name("logistic_regression.py")
    )
    assert spec is not None and spec.loader is not None
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    assert example.main() == 0
    out = capsys.readouterr().out
    assert out.count(" verified\n") == 3
    assert "hessp without the penalty: WRONG" in out and "lacks 0.1 x I" in out
    assert "trust-ncg with the verified hessp: Optimization terminated successfully" in out


def test_a_default_vjp_check_of_a_three_input_layer_costs_three_complex_forwards() -> None:
    # A training-mode batch norm of 1,050 input elements (x 40 x 25, gamma, beta): the default
    # check is directional.  gamma and beta (root mean square gradient elements within 4x of
    # each other) share their probes; x, with gradients some 10x smaller per element, has its
    # own; a derivative check probes each group once with the complex step; and a passing
    # directional VJP check spends nothing on illustrating samples.  So f runs on complex
    # input 3 times (the complex step's capability test, one probe for each of the 2 groups;
    # it was 10: 3 groups, 2 probes each and 3 samples), and 7 times on real input (at the
    # point, to learn the outputs and as the loss's first value; again to see that it is
    # deterministic; 4 times along the capability test's line; once to watch it at the end,
    # the watch after a first pass that compared nothing being the same watch; it was 9:
    # the loss's first value called f again, and the two watches).  Both planted bugs of
    # benchmarks/derivatives.py are still caught.
    rng = np.random.default_rng(0)
    x = rng.standard_normal((40, 25)) * 2 + 1
    gamma, beta = 1 + 0.5 * rng.standard_normal(25), rng.standard_normal(25)
    bn_param = {"mode": "train", "eps": 1e-5}
    calls = {"complex": 0, "real": 0}

    def forward(x, gamma, beta):
        calls["complex" if np.iscomplexobj(x) or np.iscomplexobj(gamma) else "real"] += 1
        return layers.batchnorm_forward(x, gamma, beta, bn_param)[0]

    def backward(dout, x, gamma, beta, bug=None):
        grads = layers.batchnorm_backward(
            dout, layers.batchnorm_forward(x, gamma, beta, bn_param)[1]
        )
        grads = tuple(np.array(g) for g in grads)
        if bug == "single":
            grads[0][19, 11] *= 1 + 1e-2
        elif bug == "factor":
            grads = tuple(g * (1 + 1e-4) for g in grads)
        return grads

    right = gradcheck.check_vjp(forward, backward, (x, gamma, beta), progress=False)
    assert right.passed and right.mode == "directional", str(right)
    assert calls == {"complex": 3, "real": 7}, calls
    probes = right.directional["probes"]
    assert [tuple(p["covers"]) for p in probes] == [("inputs[0]",), ("inputs[1]", "inputs[2]")]
    # No element was compared, and the result says so rather than showing one.
    assert all(int(p.checked.sum()) == 0 for p in right.parameters)
    assert str(right).count("no element compared") == 3
    assert "missed with probability <= 1e-06" in right.directional["summary"]
    for bug in ("single", "factor"):
        wrong = gradcheck.check_vjp(
            forward, lambda *a, bug=bug: backward(*a, bug=bug), (x, gamma, beta), progress=False
        )
        assert wrong.status == "failed", (bug, str(wrong))
    single = gradcheck.check_vjp(
        forward, lambda *a: backward(*a, bug="single"), (x, gamma, beta), progress=False
    )
    assert [p.name for p in single.failed_parameters] == ["inputs[0]"]
    assert single["inputs[0]"].worst_index == (19, 11)


def test_an_input_with_a_zero_gradient_keeps_its_own_probes_and_hides_no_bug() -> None:
    # f ignores b: b's gradient is zero.  Pooled with x and w, its weight (1 / |g_b|, floored)
    # would swamp their part of every shared direction; alone, it leaves x's probes as exact
    # as they are without it, and a 1e-6 relative bug in dx is still caught.
    rng = np.random.default_rng(0)
    x, w, b = rng.standard_normal((50, 20)), rng.standard_normal(20), rng.standard_normal(20)

    def f(x, w, b):
        return np.tanh(x * w)

    def vjp(dout, x, w, b, factor=1.0):
        dz = dout * (1 - np.tanh(x * w) ** 2)
        return factor * dz * w, (dz * x).sum(axis=0), np.zeros_like(b)

    right = gradcheck.check_vjp(f, vjp, (x, w, b), progress=False)
    assert right.passed and right.mode == "directional", str(right)
    assert ("inputs[2]",) in {tuple(p["covers"]) for p in right.directional["probes"]}
    wrong = gradcheck.check_vjp(f, lambda *a: vjp(*a, factor=1 + 1e-6), (x, w, b), progress=False)
    assert wrong.status == "failed", str(wrong)
    assert "inputs[0]" in [p.name for p in wrong.failed_parameters]
