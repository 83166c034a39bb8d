"""A researcher's custom gradient with a planted bug, found from the command line.

Softmax regression with an L2 penalty, written by hand: ``loss(params)`` and
``grad(params)`` over ``{"weight": W, "bias": b}``.  ``grad`` carries a classic
bug: the penalty is ``lam * sum(W**2)`` but its gradient is written ``lam * W``
(the 2 is missing).  ``grad_fixed`` is the correct twin.

Find the bug with the command line (exit status 1, the report names
``weight``, the element, both values and the tolerance)::

    gradcheck check examples/custom_gradient.py:loss examples/custom_gradient.py:grad \\
        --params examples/custom_gradient.py:params

and see the fix pass (exit status 0)::

    gradcheck check examples/custom_gradient.py:loss examples/custom_gradient.py:grad_fixed \\
        --params examples/custom_gradient.py:params

``python examples/custom_gradient.py params.npz`` writes the parameters to a
``.npz`` for ``--params params.npz``.
"""

from __future__ import annotations

import sys

import numpy as np

LAMBDA = 0.1
_data = np.random.default_rng(7)
X = _data.normal(size=(6, 4))  # 6 samples, 4 features
LABELS = np.array([0, 2, 1, 2, 0, 1])  # 3 classes
ONE_HOT = np.eye(3)[LABELS]


def params() -> dict[str, np.ndarray]:
    """Where to check: small random weights, a nonzero bias."""
    rng = np.random.default_rng(0)
    return {"weight": rng.normal(scale=0.5, size=(4, 3)), "bias": rng.normal(scale=0.1, size=3)}


def _probabilities(p: dict[str, np.ndarray]) -> np.ndarray:
    logits = X @ p["weight"] + p["bias"]
    logits = logits - logits.max(axis=1, keepdims=True)
    e = np.exp(logits)
    return e / e.sum(axis=1, keepdims=True)


def loss(p: dict[str, np.ndarray]) -> float:
    """Mean cross-entropy plus ``LAMBDA * sum(W**2)``."""
    probabilities = _probabilities(p)
    data_term = -np.mean(np.log(probabilities[np.arange(len(X)), LABELS]))
    return float(data_term + LAMBDA * np.sum(p["weight"] ** 2))


def grad(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The planted bug: the penalty's gradient lacks its factor 2."""
    d_logits = (_probabilities(p) - ONE_HOT) / len(X)
    return {"weight": X.T @ d_logits + LAMBDA * p["weight"], "bias": d_logits.sum(axis=0)}


def grad_fixed(p: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The correct twin."""
    d_logits = (_probabilities(p) - ONE_HOT) / len(X)
    return {"weight": X.T @ d_logits + 2 * LAMBDA * p["weight"], "bias": d_logits.sum(axis=0)}


def main(argv: list[str]) -> int:
    if argv:
        from gradcheck.targets import save_params

        print(f"wrote {save_params(argv[0], params())}")
        return 0
    import gradcheck

    buggy = gradcheck.check(loss, grad, params(), rng=0)
    fixed = gradcheck.check(loss, grad_fixed, params(), rng=0)
    print(buggy, fixed, sep="\n\n")
    return 0 if (not buggy.passed and fixed.passed) else 1


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
