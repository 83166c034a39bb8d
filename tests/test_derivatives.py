"""VJPs, JVPs, Jacobians, Hessians and HVPs get the scalar check's verdict (issue 13).

Every claim has a correct derivative that must pass and a planted bug that must fail,
named where a name is given.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import gradcheck
from gradcheck.errors import (
    GradientMismatchError,
    GradientStructureError,
    InvalidLossError,
    InvalidParameterError,
    ParameterTypeError,
    UserFunctionError,
)

RNG = np.random.default_rng(7)
X = RNG.standard_normal((4, 3))
W = RNG.standard_normal((3, 5))
B = RNG.standard_normal(5)


def layer(x, w, b):
    return np.tanh(x @ w + b)


def layer_vjp(dout, x, w, b):
    dz = dout * (1 - np.tanh(x @ w + b) ** 2)
    return dz @ w.T, x.T @ dz, dz.sum(axis=0)


# -- VJP --------------------------------------------------------------------------------


@pytest.mark.parametrize("bad", [np.inf, np.nan, complex(1.0, np.inf)])
def test_an_output_that_turns_non_finite_mid_check_is_named(bad: complex) -> None:
    # f's value at a perturbed point takes the single-array fast path: a non-finite element
    # (a complex step's imaginary part too) is still named, never summed into the loss.
    calls = []

    def f(x):
        calls.append(1)
        out = np.sin(x)
        if len(calls) > 3:
            out = out.astype(np.result_type(out, type(bad)))
            out[1] = bad
        return out

    with pytest.raises(InvalidLossError, match=r"f: out\[1\] is .*not finite"):
        gradcheck.check_vjp(f, lambda dout, x: dout * np.cos(x), (np.linspace(0.1, 1, 5),))


def test_a_correct_vjp_passes_with_every_input_named() -> None:
    result = gradcheck.check_vjp(layer, layer_vjp, (X, W, B))
    assert result.passed, str(result)
    assert result.kind == "vjp"
    assert [p.name for p in result.parameters] == ["inputs[0]", "inputs[1]", "inputs[2]"]
    assert result.inputs == ("inputs[0]", "inputs[1]", "inputs[2]")
    assert result.outputs == ("out (4, 5)",)
    assert "vjp of out (4, 5) with respect to inputs[0], inputs[1], inputs[2]" in str(result)


def test_one_wrong_element_is_named_by_input_and_output() -> None:
    def one_wrong(dout, x, w, b):
        dx, dw, db = layer_vjp(dout, x, w, b)
        dw = dw.copy()
        dw[1, 2] += 0.3 * dout[2, 2]  # only output out[2, 2] contributes wrongly
        return dx, dw, db

    result = gradcheck.check_vjp(layer, one_wrong, (X, W, B))
    assert not result.passed
    assert [p.name for p in result.failed_parameters] == ["inputs[1]"]
    assert result["inputs[1]"].worst_index == (1, 2)
    assert [(e.output, e.input) for e in result.entries] == [("out[2, 2]", "inputs[1][1, 2]")]
    entry = result.entries[0]
    assert not entry.passed and abs(entry.analytic - entry.reference - 0.3) < 1e-9
    assert "d out[2, 2] / d inputs[1][1, 2]" in str(result)


def test_keyword_inputs_are_named_by_keyword_and_wrt_selects_them() -> None:
    def f(x, w, b):
        return layer(x, w, b)

    def vjp(dout, x, w, b):
        dx, dw, db = layer_vjp(dout, x, w, b)
        return {"x": dx, "w": 2 * dw, "b": db}

    result = gradcheck.check_vjp(f, vjp, {"x": X, "w": W, "b": B}, wrt=("w", "b"))
    assert not result.passed
    assert [p.name for p in result.parameters] == ["w", "b"]
    assert result.failed_parameters[0].name == "w"
    assert result.diagnosis is not None and "w" in result.diagnosis.parameters
    assert all(e.input.startswith("w[") for e in result.entries)


def test_integer_labels_are_held_fixed_by_default() -> None:
    labels = np.array([0, 2, 1, 2])

    def nll(x, y):
        shifted = x - x.max(axis=1, keepdims=True)
        log_p = shifted - np.log(np.exp(shifted).sum(axis=1, keepdims=True))
        return -log_p[np.arange(len(y)), y]

    def nll_vjp(dout, x, y):
        shifted = x - x.max(axis=1, keepdims=True)
        p = np.exp(shifted) / np.exp(shifted).sum(axis=1, keepdims=True)
        p[np.arange(len(y)), y] -= 1
        return dout[:, None] * p, None  # one per input: the labels' entry is ignored

    result = gradcheck.check_vjp(nll, nll_vjp, (X, labels))
    assert result.passed, str(result)
    assert result.inputs == ("inputs[0]",)
    assert "held fixed: inputs[1]" in result.notes


def test_tree_outputs_and_a_bare_gradient_for_one_input() -> None:
    def f(x):
        return {"sin": np.sin(x), "sq": (x**2).sum(axis=1)}

    def vjp(dout, x):
        return dout["sin"] * np.cos(x) + 2 * x * dout["sq"][:, None]

    def vjp_missing_term(dout, x):
        return dout["sin"] * np.cos(x)

    assert gradcheck.check_vjp(f, vjp, X).passed
    wrong = gradcheck.check_vjp(f, vjp_missing_term, X)
    assert not wrong.passed
    assert wrong.outputs == ("out.sin (4, 3)", "out.sq (4,)")
    assert wrong.entries and all(e.output.startswith("out.sq[") for e in wrong.entries)


def test_a_vjp_at_scale_runs_directionally_with_a_stated_guarantee() -> None:
    big_x, big_w = RNG.standard_normal((64, 40)), RNG.standard_normal((40, 30))

    def f(x, w):
        return np.tanh(x @ w)

    def vjp(dout, x, w):
        dz = dout * (1 - np.tanh(x @ w) ** 2)
        return dz @ w.T, x.T @ dz

    def vjp_bug(dout, x, w):
        dx, dw = vjp(dout, x, w)
        dw = dw.copy()
        dw[3, 4] *= 1.001
        return dx, dw

    right = gradcheck.check_vjp(f, vjp, (big_x, big_w), mode="directional")
    assert right.passed and right.mode == "directional"
    assert "missed with probability" in right.directional["summary"]
    wrong = gradcheck.check_vjp(f, vjp_bug, (big_x, big_w), mode="directional")
    assert not wrong.passed
    assert wrong["inputs[1]"].worst_index == (3, 4)


def test_assert_vjp_raises_the_readable_report() -> None:
    with pytest.raises(GradientMismatchError, match="vjp of out"):
        gradcheck.assert_vjp(
            layer, lambda d, x, w, b: tuple(-g for g in layer_vjp(d, x, w, b)), (X, W, B)
        )


# -- Jacobian and JVP -------------------------------------------------------------------

XV = np.array([0.5, -1.0, 2.0, 0.3])


def vec(x):
    return np.sin(x) * x[0] + np.array([1.0, 2.0, 3.0, 4.0]) * x[-1] ** 2


def vec_jacobian(x):
    jacobian = np.diag(np.cos(x) * x[0])
    jacobian[:, 0] += np.sin(x)
    jacobian[:, -1] += 2 * np.array([1.0, 2.0, 3.0, 4.0]) * x[-1]
    return jacobian


def test_a_correct_jacobian_passes_every_entry_judged_at_n_evaluations() -> None:
    result = gradcheck.check_jacobian(vec, vec_jacobian, (XV,))
    assert result.passed, str(result)
    assert result.kind == "jacobian"
    block = result["d out / d inputs[0]"]
    assert block.shape == (4, 4) and block.checked.all()
    # f: R^30 -> R^30.  Complex step: one evaluation of f per column, captured from the
    # scalar check; besides, a fixed few (the value, the capability probe's 5, the value
    # again at the point 3 times): about n, not n * m = 900.
    n = 30
    matrix = RNG.standard_normal((n, n)) / n

    def f(x):
        return np.tanh(matrix @ x)

    def jacobian(x):
        return (1 - np.tanh(matrix @ x) ** 2)[:, None] * matrix

    big = gradcheck.check_jacobian(f, jacobian, (RNG.standard_normal(n),))
    assert big.passed and big["d out / d inputs[0]"].checked.all()
    assert big.n_evaluations <= n + 10


def test_a_transposed_jacobian_is_named_transposed() -> None:
    result = gradcheck.check_jacobian(vec, lambda x: vec_jacobian(x).T, (XV,))
    assert not result.passed
    assert result.diagnosis is not None and result.diagnosis.kind == "transposed"


def test_one_wrong_jacobian_entry_is_named_by_output_and_input_element() -> None:
    def one_wrong(x):
        jacobian = vec_jacobian(x)
        jacobian[2, 1] += 1e-3
        return jacobian

    result = gradcheck.check_jacobian(vec, one_wrong, (XV,))
    assert not result.passed
    assert [(e.output, e.input) for e in result.entries] == [("out[2]", "inputs[0][1]")]
    assert result["d out / d inputs[0]"].n_failed == 1


def test_a_jacobian_of_a_non_analytic_function_uses_central_columns_at_2n() -> None:
    def f(x):
        return np.abs(x) * x[0]  # abs: no complex step

    def jacobian(x):
        j = np.diag(np.sign(x) * x[0])
        j[:, 0] += np.abs(x)
        return j

    result = gradcheck.check_jacobian(f, jacobian, (XV,))
    assert result.passed, str(result)
    assert "central" in result.parameters[0].method
    noise_probe = 2 * 7  # the outputs' rounding noise, measured along a short line (twice)
    assert result.n_evaluations <= 2 * XV.size + noise_probe + 20


def test_a_correct_jvp_passes_full_and_directional() -> None:
    def jvp(v, x):
        return vec_jacobian(x) @ v

    full = gradcheck.check_jvp(vec, jvp, (XV,))
    assert full.passed and full.mode == "full" and full.kind == "jvp"
    directional = gradcheck.check_jvp(vec, jvp, (XV,), mode="directional")
    assert directional.passed and directional.mode == "directional"
    assert "missed with probability" in directional.directional["summary"]


def test_a_wrong_jvp_fails_full_and_directional_with_entries_named() -> None:
    def jvp_bug(v, x):
        jacobian = vec_jacobian(x)
        jacobian[3, 0] *= 1.01
        return jacobian @ v

    for mode in ("full", "directional"):
        result = gradcheck.check_jvp(vec, jvp_bug, (XV,), mode=mode)
        assert not result.passed, mode
        assert ("out[3]", "inputs[0][0]") in [(e.output, e.input) for e in result.entries], mode


def test_jvp_tangents_come_as_a_tuple_for_several_inputs() -> None:
    def f(x, w):
        return np.tanh(x @ w)

    def jvp(tangents, x, w):
        dx, dw = tangents
        return (1 - np.tanh(x @ w) ** 2) * (dx @ w + x @ dw)

    def jvp_bug(tangents, x, w):
        dx, dw = tangents
        return (1 - np.tanh(x @ w) ** 2) * (dx @ w)  # forgets the weight's tangent

    assert gradcheck.check_jvp(f, jvp, (X, W)).passed
    wrong = gradcheck.check_jvp(f, jvp_bug, (X, W))
    assert not wrong.passed
    assert {p.name for p in wrong.failed_parameters} == {"d out / d inputs[1]"}


# -- Hessian and HVP (SciPy's conventions) ----------------------------------------------

A = np.array([[3.0, 1.0, 0.5], [1.0, 2.0, -0.4], [0.5, -0.4, 1.5]])
X3 = np.array([0.4, -0.3, 0.8])


def grad(x, lam):
    return A @ x + np.sin(x) + lam * x


def hess(x, lam):
    return A + np.diag(np.cos(x)) + lam * np.eye(3)


def test_a_correct_hessian_passes_and_a_missing_regularisation_term_is_named() -> None:
    assert gradcheck.check_hessian(grad, hess, X3, args=(0.1,)).passed
    result = gradcheck.check_hessian(grad, lambda x, lam: hess(x, 0.0), X3, args=(0.1,))
    assert not result.passed and result.kind == "hessian"
    assert result.diagnosis is not None and result.diagnosis.kind == "missing-identity"
    assert "0.1" in result.diagnosis.summary


def test_an_asymmetric_hessian_is_a_hazard_with_the_worst_pair() -> None:
    def lopsided(x, lam):
        h = hess(x, lam)
        h[0, 2] += 0.25
        return h

    result = gradcheck.check_hessian(grad, lopsided, X3, args=(0.1,))
    assert not result.passed
    hazard = next(h for h in result.hazards if h.kind == "asymmetric")
    assert hazard.fails_check and hazard.indices == ((0, 2),)
    assert "x[0], x[2]" in hazard.message

    # When grad itself is not a gradient, hess can match its Jacobian and still be asymmetric.
    def skew_grad(x, lam):
        return grad(x, lam) + np.array([0.25 * x[2], 0.0, 0.0])

    matching = gradcheck.check_hessian(skew_grad, lopsided, X3, args=(0.1,))
    assert matching.status == "hazard"
    assert "grad itself is not the gradient" in str(matching)


def test_a_correct_hvp_passes_full_directional_and_for_trees() -> None:
    def hvp(x, v, lam):
        return hess(x, lam) @ v

    assert gradcheck.check_hvp(grad, hvp, X3, args=(0.1,)).passed
    assert gradcheck.check_hvp(grad, hvp, X3, args=(0.1,), mode="directional").passed

    # L = sum(w**4) + sin(b) sum(w), its gradient and Hessian-vector product as trees.
    def tree_grad(p):
        return {"w": 4 * p["w"] ** 3 + np.sin(p["b"]), "b": np.cos(p["b"]) * p["w"].sum()}

    def tree_hvp(p, v):
        return {
            "w": 12 * p["w"] ** 2 * v["w"] + np.cos(p["b"]) * v["b"],
            "b": -np.sin(p["b"]) * p["w"].sum() * v["b"] + np.cos(p["b"]) * v["w"].sum(),
        }

    def tree_hvp_bug(p, v):
        product = tree_hvp(p, v)
        return {"w": product["w"], "b": product["b"] - np.cos(p["b"]) * v["w"].sum()}

    params = {"w": np.array([1.0, -0.5]), "b": np.array(0.3)}
    result = gradcheck.check_hvp(tree_grad, tree_hvp, params)
    assert result.passed, str(result)
    assert result.kind == "hvp" and result.outputs == ("grad.w (2,)", "grad.b ()")
    wrong = gradcheck.check_hvp(tree_grad, tree_hvp_bug, params)
    assert not wrong.passed
    assert [p.name for p in wrong.failed_parameters] == ["d grad.b / d x.w"]
    assert any(h.kind == "asymmetric" for h in wrong.hazards)


def test_a_wrong_hvp_fails_full_and_directional() -> None:
    def hvp_bug(x, v, lam):
        return hess(x, lam).T @ v * 1.001

    for mode in ("full", "directional"):
        result = gradcheck.check_hvp(grad, hvp_bug, X3, args=(0.1,), mode=mode)
        assert not result.passed, mode


def test_an_asymmetric_hvp_is_found_from_two_products() -> None:
    skew = np.array([[0.0, 0.3, 0.0], [-0.3, 0.0, 0.0], [0.0, 0.0, 0.0]])

    def lopsided(x, v, lam):
        return (hess(x, lam) + skew) @ v

    result = gradcheck.check_hvp(grad, lopsided, X3, args=(0.1,), mode="directional")
    assert any(h.kind == "asymmetric" for h in result.hazards)
    assert not result.passed


# -- results ----------------------------------------------------------------------------


def test_results_are_json_safe_and_written_as_reports(tmp_path) -> None:
    import gradcheck.report

    def jvp_bug(v, x):
        return 2 * vec_jacobian(x) @ v

    results = [
        gradcheck.check_vjp(layer, lambda d, x, w, b: layer_vjp(2 * d, x, w, b), (X, W, B)),
        gradcheck.check_jacobian(vec, vec_jacobian, (XV,)),
        gradcheck.check_jvp(vec, jvp_bug, (XV,), mode="directional"),
        gradcheck.check_hessian(grad, hess, X3, args=(0.1,)),
    ]
    for k, result in enumerate(results):
        data = json.loads(json.dumps(result.to_dict()))
        assert data["kind"] == result.kind and data["inputs"] == list(result.inputs)
        assert data["outputs"] == list(result.outputs)
        assert len(data["entries"]) == len(result.entries)
        path = tmp_path / f"{k}.html"
        gradcheck.report.write(result, path)
        page = path.read_text()
        assert result.kind in page and result.inputs[0] in page


# -- bad input --------------------------------------------------------------------------


def test_a_vjp_with_the_wrong_number_of_gradients_is_named() -> None:
    with pytest.raises(
        GradientStructureError, match=r"vjp: returned 2 gradient\(s\).*3 \(inputs\[0\]"
    ):
        gradcheck.check_vjp(layer, lambda d, x, w, b: layer_vjp(d, x, w, b)[:2], (X, W, B))


def test_a_vjp_with_a_wrong_shape_is_named() -> None:
    def wrong_shape(dout, x, w, b):
        dx, dw, db = layer_vjp(dout, x, w, b)
        return dx, dw.T, db

    with pytest.raises(GradientStructureError, match=r"inputs\[1\] has shape \(5, 3\).*\(3, 5\)"):
        gradcheck.check_vjp(layer, wrong_shape, (X, W, B))


def test_a_jacobian_of_the_wrong_shape_is_named() -> None:
    with pytest.raises(
        GradientStructureError, match=r"jacobian: .*inputs\[0\] has shape \(4,\).*\(4, 4\)"
    ):
        gradcheck.check_jacobian(vec, lambda x: np.ones(4), (XV,))


def test_a_non_square_hessian_is_named() -> None:
    with pytest.raises(GradientStructureError, match=r"hess: .*shape \(3, 2\).*\(3, 3\)"):
        gradcheck.check_hessian(grad, lambda x, lam: hess(x, lam)[:, :2], X3, args=(0.1,))


def test_wrt_naming_a_missing_or_an_integer_input_is_named() -> None:
    with pytest.raises(InvalidParameterError, match=r"wrt: inputs\[5\] does not exist"):
        gradcheck.check_vjp(layer, layer_vjp, (X, W, B), wrt=5)
    with pytest.raises(InvalidParameterError, match=r"wrt: 'z' is not an input"):
        gradcheck.check_vjp(layer, layer_vjp, {"x": X, "w": W, "b": B}, wrt="z")
    with pytest.raises(ParameterTypeError, match=r"wrt: inputs\[1\] has dtype int64"):
        gradcheck.check_vjp(lambda x, y: x * y, lambda d, x, y: d * y, (X, np.ones(3, int)), wrt=1)


def test_args_the_functions_reject_are_named() -> None:
    with pytest.raises(ParameterTypeError, match="args: hess"):
        gradcheck.check_hessian(grad, lambda x: A, X3, args=(0.1,))
    with pytest.raises(InvalidParameterError, match="args: check_vjp passes every argument"):
        gradcheck.check_vjp(layer, layer_vjp, (X, W, B), args=(1,))
    with pytest.raises(UserFunctionError, match="the vjp function raised"):
        gradcheck.check_vjp(layer, lambda d, x: d, (X, W, B))


def test_the_callers_arrays_are_never_modified() -> None:
    x, w, b, x3 = X.copy(), W.copy(), B.copy(), X3.copy()

    def writes(x, w, b):
        x += 1.0  # a function that writes into its input gets gradcheck's copy
        return np.tanh(x @ w + b)

    gradcheck.check_vjp(layer, layer_vjp, (x, w, b))
    gradcheck.check_vjp(writes, layer_vjp, (x, w, b))
    xv = XV.copy()
    gradcheck.check_jacobian(vec, vec_jacobian, (xv,))
    gradcheck.check_jvp(vec, lambda v, x: vec_jacobian(x) @ v, (xv,), mode="directional")
    gradcheck.check_hessian(grad, hess, x3, args=(0.1,))
    gradcheck.check_hvp(grad, lambda x, v, lam: hess(x, lam) @ v, x3, args=(0.1,))
    assert np.array_equal(x, X) and np.array_equal(w, W) and np.array_equal(b, B)
    assert np.array_equal(x3, X3) and np.array_equal(xv, XV)


def test_f_that_writes_into_its_inputs_is_still_called_and_reported_as_the_check_starts() -> None:
    # The value f gave when the outputs were learned is reused as the loss's first value only
    # when f left its inputs alone: one that writes into them is called again by the scalar
    # check, which reports the mutation (and the check fails as a hazard).
    calls = []

    def writes(x, w, b):
        calls.append(1)
        x += 1.0
        return np.tanh(x @ w + b)

    result = gradcheck.check_vjp(writes, layer_vjp, (X, W, B))
    assert "mutation" in {h.kind for h in result.hazards}, str(result)
    assert not result.passed
    calls.clear()

    def clean(x, w, b):
        calls.append(1)
        return layer(x, w, b)

    assert gradcheck.check_vjp(clean, layer_vjp, (X, W, B)).mode == "full"
    # The full check of n = 12 + 15 + 5 = 32 elements calls f n + 9 times: n complex steps,
    # the point once (its value learns the outputs and is the loss's first value; it was
    # called twice), again for determinism, the capability test's 5, two watches.
    assert len(calls) == X.size + W.size + B.size + 9, len(calls)


# -- the documentation's examples (moved there from the README) -----------------------------


def test_the_documented_derivative_examples_run_and_say_what_they_claim(capsys) -> None:
    import re
    import textwrap
    from pathlib import Path

    docs = Path(__file__).resolve().parents[1] / "docs"
    pages = [docs / "tutorial" / "layer-backward.rst", docs / "howto" / "derivatives.rst"]
    blocks = [
        textwrap.dedent(block)
        for page in pages
        for block in re.findall(
            r"\.\. code-block:: python\n\n((?:(?:    .*)?\n)+)", page.read_text()
        )
    ]
    assert len(blocks) == 4
    namespace: dict = {}
    for block in blocks:
        exec(block, namespace)  # noqa: S102 - our own documentation
    out = capsys.readouterr().out
    assert out.count("True") == 6
    assert "FAILED" in out and "wrong entry d out[" in out
    assert "drops the activation derivative" in out
    assert "lacks 0.1 x I" in out


# -- hazards, workers, precision, modes ----------------------------------------------------


def test_a_random_function_makes_the_check_inconclusive_in_its_own_words() -> None:
    rng = np.random.default_rng(3)

    def dropout(x):
        return x * (rng.random(x.shape) > 0.1)

    result = gradcheck.check_vjp(dropout, lambda d, x: d, (XV,))
    assert result.status == "inconclusive" and result.diagnosis.kind == "inconclusive"
    assert any("the loss is <u, f> and the gradient vjp(u)" in h.message for h in result.hazards)


def test_a_vjp_check_runs_in_worker_processes() -> None:
    result = gradcheck.check_vjp(
        np.tanh, _tanh_vjp, (np.linspace(-1.0, 1.0, 7),), workers=2, mode="full"
    )
    assert result.passed and result.mode == "full"


def _tanh_vjp(dout, x):
    return dout * (1 - np.tanh(x) ** 2)


def test_float32_layers_pass_with_their_precision_stated() -> None:
    x, w = X.astype(np.float32), W.astype(np.float32)

    def f(x, w):
        return np.tanh(x @ w)

    def vjp(dout, x, w):
        dz = dout * (1 - np.tanh(x @ w) ** 2)
        return dz @ w.T, x.T @ dz

    result = gradcheck.check_vjp(f, vjp, (x, w))
    assert result.passed, str(result)
    assert any(h.kind == "precision" for h in result.hazards)


def test_a_directional_jacobian_check_names_the_located_entry() -> None:
    def one_wrong(x):
        jacobian = vec_jacobian(x)
        jacobian[1, 2] += 1.0
        return jacobian

    result = gradcheck.check_jacobian(vec, one_wrong, (XV,), mode="directional")
    assert not result.passed and result.mode == "directional"
    assert [(e.output, e.input) for e in result.entries] == [("out[1]", "inputs[0][2]")]
    sampled = gradcheck.check_jacobian(vec, vec_jacobian, (XV,), elements=2)
    assert sampled.passed and sampled.mode == "sampled"
    assert sampled.parameters[0].n_checked == 2 * XV.size  # two whole columns


@settings(max_examples=15)
@given(
    n=st.integers(1, 6),
    m=st.integers(1, 6),
    seed=st.integers(0, 2**16),
    data=st.data(),
)
def test_jacobians_of_random_shapes_pass_and_one_wrong_entry_is_named(n, m, seed, data) -> None:
    rng = np.random.default_rng(seed)
    matrix, x = rng.standard_normal((m, n)), rng.standard_normal(n)

    def f(x):
        return np.tanh(matrix @ x)

    def jacobian(x):
        return (1 - np.tanh(matrix @ x) ** 2)[:, None] * matrix

    assert gradcheck.check_jacobian(f, jacobian, (x,)).passed
    j, i = data.draw(st.integers(0, m - 1)), data.draw(st.integers(0, n - 1))

    def one_wrong(x):
        wrong = jacobian(x)
        wrong[j, i] += 1e-4 * (1 + abs(wrong[j, i]))
        return wrong

    result = gradcheck.check_jacobian(f, one_wrong, (x,))
    assert not result.passed
    assert [(e.output, e.input) for e in result.entries] == [(f"out[{j}]", f"inputs[0][{i}]")]
