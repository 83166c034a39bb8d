"""Parameter trees: readable paths, copies, structure validation."""

from __future__ import annotations

import numpy as np
import pytest

import gradcheck
from gradcheck import GradientStructureError, InvalidParameterError, ParameterTypeError
from gradcheck.problem.space import ParameterSpace


class ArrayLike:
    """An array from 'another library': only ``__array__``."""

    def __init__(self, data):
        self._data = np.asarray(data, dtype=float)

    def __array__(self, dtype=None, copy=None):
        return self._data if dtype is None else self._data.astype(dtype)


def test_nested_paths_are_readable():
    params = {
        "layers": [{"weight": np.ones((2, 3)), "bias": np.zeros(3)}, {"weight": np.ones((3, 1))}]
    }
    space = ParameterSpace(params)
    assert space.names == ("layers[0].weight", "layers[0].bias", "layers[1].weight")
    assert space.size == 12
    leaf, index = space.leaf_index(7)
    assert leaf.name == "layers[0].bias" and index == (1,)


def test_bare_array_lists_tuples_and_array_likes():
    assert ParameterSpace(np.ones(3)).names == ("params",)
    assert ParameterSpace([1.0, 2.0]).names == ("params",)
    space = ParameterSpace((np.ones(2), [np.zeros((2, 2)), ArrayLike([1, 2, 3])]))
    assert space.names == ("[0]", "[1][0]", "[1][1]")
    assert isinstance(space.tree, tuple) and isinstance(space.tree[1], list)


def test_parameters_are_copied():
    w = np.ones(3)
    space = ParameterSpace({"w": w})
    space.arrays[0][0] = 5.0
    assert w[0] == 1.0
    assert space.restore() is True
    assert space.arrays[0][0] == 1.0


def test_gradient_structure_is_validated():
    space = ParameterSpace({"a": np.ones(2), "b": np.ones((2, 2))})
    flat = space.flatten_like({"a": [1, 2], "b": np.eye(2)})
    np.testing.assert_array_equal(flat, [1, 2, 1, 0, 0, 1])
    with pytest.raises(GradientStructureError, match="'b' is missing"):
        space.flatten_like({"a": np.ones(2)})
    with pytest.raises(GradientStructureError, match=r"'b' has shape \(4,\)"):
        space.flatten_like({"a": np.ones(2), "b": np.ones(4)})


def test_bad_parameters():
    with pytest.raises(ParameterTypeError, match="'w'.*complex"):
        ParameterSpace({"w": np.ones(2, dtype=complex)})
    with pytest.raises(ParameterTypeError, match="'w'.*object"):
        ParameterSpace({"w": np.array([None, 1.0])})
    with pytest.raises(InvalidParameterError, match="empty"):
        ParameterSpace({})


# -- working copies: views of one buffer; the structure check off the hot path ---------------


def test_working_copies_are_views_of_one_buffer_and_put_back_bitwise():
    params = {"a": np.arange(3.0), "b": [np.ones((2, 2)), np.full(1, -0.5)]}
    space = ParameterSpace(params)
    assert len(space.buffers) == 1 and all(a.base is not None for a in space.arrays)
    list(space.move(1, np.ones(5), 0.25))  # elements 1..5 moved in place
    assert space.tree["a"][1] == 1.25 and space.tree["b"][0][1, 0] == 1.25
    space.put_back(0, space.size)
    assert not space.restore()  # nothing left changed
    assert np.array_equal(space.tree["b"][0], params["b"][0])
    mixed = ParameterSpace({"a": np.ones(2, dtype=np.float32), "b": np.ones(3)})
    assert len(mixed.buffers) == 2 and mixed.arrays[0].dtype == np.float32
    list(mixed.move(1, np.full(2, 1e-9), 1.0))  # rounded to each element's own dtype
    assert mixed.arrays[0][1] == np.float32(1.0) and mixed.arrays[1][0] == 1.0 + 1e-9


def test_the_full_structure_check_runs_at_watch_points_not_per_evaluation(monkeypatch):
    # Comparing every entry of a tree is O(arrays): ~1 ms per call at 20,000 arrays.  Before
    # each call only the containers' lengths are compared; the full check runs at restore().
    full = []
    original = ParameterSpace.structure_changed

    def counted(self):
        full.append(1)
        return original(self)

    monkeypatch.setattr(ParameterSpace, "structure_changed", counted)
    params = {f"p{i}": np.full(3, 0.1 * i) for i in range(300)}

    def loss(p):
        return float(sum(np.sum(np.sin(np.real(w)) ** 2) for w in p.values()))

    def grad(p):
        return {k: 2 * np.sin(w) * np.cos(w) for k, w in p.items()}

    result = gradcheck.check(loss, grad, params, mode="directional", progress=False)
    assert result.passed, str(result)
    # At restore(): after the first calls, at the watch points, around gradient calls.
    assert len(full) <= 8 + 2 * result.n_grad_evaluations < result.n_evaluations / 4


def test_an_entry_replaced_mid_check_by_something_that_breaks_the_loss_is_a_mutation():
    calls = {"n": 0}

    def loss(p):
        calls["n"] += 1
        value = float(np.sum(np.sin(p["w"]) ** 2) + np.sum(p["b"] ** 2))
        if calls["n"] == 6:
            p["w"] = None  # the same length: only the full check, run when a call raises, sees it
        return value

    def grad(p):
        return {"w": 2 * np.sin(p["w"]) * np.cos(p["w"]), "b": 2 * p["b"]}

    params = {"w": np.linspace(-1, 1, 5), "b": np.ones(2)}
    result = gradcheck.check(loss, grad, params)  # no TypeError from loss(None)
    assert result.status == "inconclusive", str(result)
    assert any(h.kind == "mutation" and "replaced 'w'" in h.message for h in result.hazards)
