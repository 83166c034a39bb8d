"""Targets (``module:function``, ``file.py:function``), parameter files, and parameter trees.

Cost: well under a second (no network checks beyond a few tiny ones).
"""

from __future__ import annotations

import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

import gradcheck
from gradcheck.errors import GradcheckError
from gradcheck.targets import (
    TargetError,
    load_params,
    load_target,
    params_from_names,
    save_params,
)


@pytest.fixture
def module_file(tmp_path: Path) -> Path:
    path = tmp_path / "user_model.py"
    path.write_text(
        textwrap.dedent("""
        import numpy as np
        from helper_module import SCALE

        def loss(p):
            return SCALE * np.sum(p["w"] ** 2)

        def grad(p):
            return {"w": 2 * SCALE * p["w"]}

        class Model:
            @staticmethod
            def loss(p):
                return np.sum(p["w"] ** 2)

        NOT_CALLABLE = 3
    """)
    )
    (tmp_path / "helper_module.py").write_text("SCALE = 1.5\n")
    return path


def test_file_target_imports_with_its_neighbours(module_file: Path) -> None:
    loss = load_target(f"{module_file}:loss", role="loss")
    assert loss({"w": np.array([1.0, 2.0])}) == pytest.approx(7.5)
    assert callable(load_target(f"{module_file}:Model.loss", role="loss"))


def test_module_target() -> None:
    assert load_target("math:sqrt", role="loss")(4.0) == 2.0
    assert load_target("os.path:join", role="loss")("a", "b") == str(Path("a") / "b")


@pytest.mark.parametrize(
    ("spec", "message"),
    [
        ("no_colon_here", "expected MODULE:FUNCTION or FILE.py:FUNCTION"),
        ("math:", "expected MODULE:FUNCTION"),
        ("math:not a name", "is not a Python name"),
        ("surely_not_a_module_xyz:f", "no module named 'surely_not_a_module_xyz'"),
        ("math:nope", "'math' has no attribute 'nope'"),
        ("missing_dir/missing.py:f", "does not exist"),
    ],
)
def test_bad_targets_are_one_line_errors(spec: str, message: str) -> None:
    with pytest.raises(TargetError, match=message) as info:
        load_target(spec, role="loss")
    assert "\n" not in str(info.value)
    assert str(info.value).startswith("loss")
    assert isinstance(info.value, GradcheckError) and isinstance(info.value, ValueError)


def test_not_callable_and_missing_attribute_in_file(module_file: Path) -> None:
    with pytest.raises(TargetError, match="is a int, not a callable"):
        load_target(f"{module_file}:NOT_CALLABLE", role="grad")
    with pytest.raises(TargetError, match="has no attribute 'gard'.*callables there: .*grad"):
        load_target(f"{module_file}:gard", role="grad")


def test_a_file_that_raises_on_import(tmp_path: Path) -> None:
    broken = tmp_path / "broken.py"
    broken.write_text("x = 1\nraise RuntimeError('boom\\non two lines')\n")
    message = "importing .* raised RuntimeError: boom on two lines"
    with pytest.raises(TargetError, match=message) as info:
        load_target(f"{broken}:f", role="loss")
    assert "\n" not in str(info.value)
    assert isinstance(info.value.__cause__, RuntimeError)
    assert not any("broken" in name for name in sys.modules if name.startswith("gradcheck_target"))


# -- parameter files ------------------------------------------------------------------------


def test_params_from_names_rebuilds_nesting() -> None:
    w0, w1, b = np.zeros((2, 2)), np.ones((2, 1)), np.ones(1)
    tree = params_from_names({"layers[0].weight": w0, "layers[1].weight": w1, "out.bias": b})
    assert tree["layers"][0]["weight"] is w0 and tree["layers"][1]["weight"] is w1
    assert tree["out"]["bias"] is b
    assert params_from_names({"params": w0}) is w0
    assert params_from_names({"weight1": w0, "weight2": w1}) == {"weight1": w0, "weight2": w1}


@pytest.mark.parametrize(
    ("names", "message"),
    [
        ({"a[0]": 1, "a[2]": 2}, "has indices \\[0, 2\\]"),
        ({"a": 1, "a.b": 2}, "conflicts"),
        ({"a[0]": 1, "a.b": 2}, "mixes names and indices"),
    ],
)
def test_params_from_names_rejects_inconsistent_paths(names: dict, message: str) -> None:
    with pytest.raises(TargetError, match=message):
        params_from_names(names)


def test_save_and_load_round_trip(tmp_path: Path) -> None:
    params = {
        "layers": [
            {"weight": np.arange(6.0).reshape(2, 3), "bias": np.zeros(3)},
            {"weight": np.ones((3, 1)), "bias": np.zeros(1)},
        ]
    }
    path = save_params(tmp_path / "p.npz", params)
    loaded = load_params(path)
    assert list(loaded) == ["layers"] and len(loaded["layers"]) == 2
    np.testing.assert_array_equal(loaded["layers"][0]["weight"], params["layers"][0]["weight"])
    np.save(tmp_path / "one.npy", np.arange(3.0))
    np.testing.assert_array_equal(load_params(tmp_path / "one.npy"), np.arange(3.0))


def test_load_params_errors(tmp_path: Path) -> None:
    with pytest.raises(TargetError, match="does not exist"):
        load_params(tmp_path / "nope.npz")
    (tmp_path / "junk.npz").write_text("not a zip")
    with pytest.raises(TargetError, match="cannot read"):
        load_params(tmp_path / "junk.npz")
    np.save(tmp_path / "objects.npy", np.array([{"a": 1}], dtype=object), allow_pickle=True)
    with pytest.raises(TargetError, match="cannot read"):
        load_params(tmp_path / "objects.npy")  # pickles are refused


# -- arrays from elsewhere: parameter trees and readable paths ---------------------------------


class ForeignArray:
    """An array from another library: only ``__array__``."""

    def __init__(self, values: list[float]) -> None:
        self._values = values

    def __array__(self, dtype=None, copy=None):  # noqa: ANN001 - numpy protocol
        return np.asarray(self._values, dtype=dtype or float)


def _nested_problem(bug: bool):
    def loss(p):
        w0 = np.asarray(p["layers"][0]["weight"])
        w1 = np.asarray(p["layers"][1]["weight"])
        s = np.asarray(p["scale"][1])
        return np.sum(np.tanh(w0) ** 2) + np.sum(w1**3) * s[0]

    def grad(p):
        w0 = np.asarray(p["layers"][0]["weight"])
        w1 = np.asarray(p["layers"][1]["weight"])
        s = np.asarray(p["scale"][1])
        dw1 = 3 * w1**2 * s[0]
        if bug:
            dw1 = dw1.copy()
            dw1[1] *= -1  # one element with the wrong sign
        return {
            "layers": [{"weight": 2 * np.tanh(w0) * (1 - np.tanh(w0) ** 2)}, {"weight": dw1}],
            "scale": (np.zeros(1), np.array([np.sum(w1**3)])),
        }

    return loss, grad


def _nested_params():
    return {
        "layers": [
            {"weight": [[0.1, -0.4], [0.3, 0.2]]},
            {"weight": ForeignArray([0.5, -1.0, 2.0])},
        ],
        "scale": (np.zeros(1), [1.5]),
    }


@pytest.mark.parametrize("bug", [False, True])
def test_nested_lists_tuples_and_foreign_arrays_are_named_by_path(bug: bool) -> None:
    loss, grad = _nested_problem(bug)
    result = gradcheck.check(loss, grad, _nested_params(), rng=0)
    names = [p.name for p in result.parameters]
    assert names == ["layers[0].weight", "layers[1].weight", "scale[0]", "scale[1]"]
    assert result.passed is (not bug)
    if bug:
        assert [p.name for p in result.failed_parameters] == ["layers[1].weight"]
        assert result["layers[1].weight"].worst_index == (1,)
        assert "layers[1].weight[1]" in str(result)


def test_user_arrays_are_never_modified() -> None:
    weight = np.array([[0.1, -0.4], [0.3, 0.2]])
    before = weight.copy()

    def loss(p):
        p["w"] += 1.0  # a careless in-place loss
        return np.sum(p["w"] ** 2)

    gradcheck.check(loss, lambda p: {"w": 2 * p["w"]}, {"w": weight}, rng=0)
    np.testing.assert_array_equal(weight, before)


def test_integer_parameters_are_refused_by_name() -> None:
    with pytest.raises(gradcheck.ParameterTypeError, match="'layers\\[0\\]'"):
        gradcheck.check(lambda p: 0.0, lambda p: p, {"layers": [np.arange(3)]})
