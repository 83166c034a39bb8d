"""Small targets for the ``gradcheck vjp/jvp/jacobian/hessian/hvp`` commands.

A tanh layer ``y = tanh(x @ w + b)`` with its backward pass (and a sign-flipped twin),
its JVP, the Jacobian of an elementwise tanh, and a regularised cubic with its
gradient, Hessian and Hessian-vector product in SciPy's conventions::

    gradcheck vjp examples/layer_targets.py:forward examples/layer_targets.py:backward \\
        --inputs examples/layer_targets.py:inputs
    gradcheck hessian examples/layer_targets.py:grad examples/layer_targets.py:hess \\
        --params examples/layer_targets.py:x0 --args examples/layer_targets.py:args
"""

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import NDArray

Array = NDArray[np.float64]


def inputs() -> tuple[Array, Array, Array]:
    """The layer's inputs ``(x, w, b)``: a batch of 4 rows of 3 features, 2 outputs."""
    rng = np.random.default_rng(0)
    return rng.normal(size=(4, 3)), rng.normal(size=(3, 2)), rng.normal(size=2)


def forward(x: Array, w: Array, b: Array) -> Array:
    return np.tanh(x @ w + b)


def backward(dout: Array, x: Array, w: Array, b: Array) -> tuple[Array, Array, Array]:
    """The VJP: ``dx, dw, db`` of ``sum(dout * forward(x, w, b))``."""
    delta = dout * (1 - forward(x, w, b) ** 2)
    return delta @ w.T, x.T @ delta, delta.sum(axis=0)


def backward_sign_flip(dout: Array, x: Array, w: Array, b: Array) -> tuple[Array, Array, Array]:
    """A planted bug: ``dw`` with the wrong sign."""
    dx, dw, db = backward(dout, x, w, b)
    return dx, -dw, db


def jvp(tangents: tuple[Array, Array, Array], x: Array, w: Array, b: Array) -> Array:
    dx, dw, db = tangents
    return (1 - forward(x, w, b) ** 2) * (dx @ w + x @ dw + db)


def tanh_inputs() -> tuple[Array]:
    return (np.linspace(-1.0, 1.0, 5),)


def tanh_jacobian(x: Array) -> Array:
    return np.diag(1 - np.tanh(x) ** 2)


def x0() -> Array:
    return np.array([0.3, -0.4, 0.8])


def args() -> tuple[Any, ...]:
    """SciPy's ``args``: the matrix ``A`` and the regularisation ``lam``."""
    return (np.array([[2.0, 0.5, 0.0], [0.5, 1.0, 0.2], [0.0, 0.2, 3.0]]), 0.1)


def grad(x: Array, a: Array, lam: float) -> Array:
    """Gradient of ``x @ a @ x / 2 + sum(x**4) / 4 + lam * x @ x / 2``."""
    return a @ x + x**3 + lam * x


def hess(x: Array, a: Array, lam: float) -> Array:
    return a + np.diag(3 * x**2) + lam * np.eye(x.size)


def hess_no_regulariser(x: Array, a: Array, lam: float) -> Array:
    """A planted bug: the regularisation term forgotten."""
    return a + np.diag(3 * x**2)


def hvp(x: Array, v: Array, a: Array, lam: float) -> Array:
    return hess(x, a, lam) @ v
