"""Parameter trees: readable paths, copies, structure validation."""

from __future__ import annotations

import numpy as np
import pytest

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
