"""The seed question, asked of the post's own code: is its update gradient descent?

The two-layer network of the post (iamtrask's "neural network in 11 lines"),
unchanged in spirit: the same data, the same initial weights
(``np.random.seed(1)`` then ``np.random.random``), the same forward pass and
the same ``dC_dw`` arrays.  Only the update is wrapped as a function
``step(params) -> new params`` and the loss the post minimises,
``L = 1/2 * sum((a2 - y)^2)``, as ``loss(params)``.  Then
:func:`gradcheck.runner.update.check_update` answers the question:

* the update that works, ``weight + lr * a_prev.T @ dC_dw``, IS gradient descent;
* the textbook update as the post writes it, ``weight - lr * dC_dw``, is not:
  for ``weight1`` it cannot even run, and for ``weight2`` it runs only because
  the number of samples equals the number of hidden units, and it uses the
  per-sample delta (with its sign flipped) where ``a1.T @ delta`` belongs.

Run it: ``python examples/seed_update.py`` (exit status 0 when every verdict
is the expected one).
"""

from __future__ import annotations

import sys

import numpy as np

from gradcheck.runner.update import UpdateResult, check_update

LEARNING_RATE = 1.0
x = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=float)
y = np.array([[0, 1, 1, 0]], dtype=float).T


def initial_weights() -> dict[str, np.ndarray]:
    """The post's ``np.random.seed(1)``; ``weight1``, ``weight2`` drawn as it draws them."""
    legacy = np.random.RandomState(1)  # the same stream as np.random.seed(1), without global state
    return {"weight1": legacy.random_sample((3, 4)), "weight2": legacy.random_sample((4, 1))}


def sigmoid(z: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-z))


def derv_sigmoid(a: np.ndarray) -> np.ndarray:
    return a * (1 - a)


def forward(params: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    a0 = x
    a1 = sigmoid(a0 @ params["weight1"])
    a2 = sigmoid(a1 @ params["weight2"])
    return a0, a1, a2


def loss(params: dict[str, np.ndarray]) -> float:
    """What the post's update minimises: 1/2 * sum((a2 - y)^2)."""
    _, _, a2 = forward(params)
    return float(0.5 * np.sum((a2 - y) ** 2))


def post_arrays(params: dict[str, np.ndarray]) -> tuple[np.ndarray, ...]:
    """The post's backward pass, line for line."""
    weight2 = params["weight2"]
    a0, a1, a2 = forward(params)
    delta2 = y - a2
    dC_dw2 = delta2 * derv_sigmoid(a2)
    dC_dw1 = (np.multiply(dC_dw2, weight2.T)) * derv_sigmoid(a1)
    return a0, a1, dC_dw1, dC_dw2


def working_step(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``this is what works``."""
    a0, a1, dC_dw1, dC_dw2 = post_arrays(params)
    return {
        "weight1": params["weight1"] + LEARNING_RATE * np.dot(a0.T, dC_dw1),
        "weight2": params["weight2"] + LEARNING_RATE * np.dot(a1.T, dC_dw2),
    }


def textbook_step(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """``these are what the textbook tells``: the post's commented-out lines."""
    _, _, dC_dw1, dC_dw2 = post_arrays(params)
    return {
        "weight1": params["weight1"] - LEARNING_RATE * dC_dw1,
        "weight2": params["weight2"] - LEARNING_RATE * dC_dw2,
    }


def textbook_step_where_it_runs(params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """The textbook line for ``weight2`` (it runs: 4 samples, 4 hidden units), the working one
    for ``weight1``."""
    a0, _, dC_dw1, dC_dw2 = post_arrays(params)
    return {
        "weight1": params["weight1"] + LEARNING_RATE * np.dot(a0.T, dC_dw1),
        "weight2": params["weight2"] - LEARNING_RATE * dC_dw2,
    }


def run(*, quiet: bool = False) -> dict[str, UpdateResult]:
    """Check the three updates at the post's initial weights; return the results by name."""
    params = initial_weights()
    _, a1, _ = forward(params)
    results = {
        "working": check_update(working_step, loss, params, LEARNING_RATE, rng=0),
        "textbook": check_update(textbook_step, loss, params, LEARNING_RATE, rng=0),
        "textbook_where_it_runs": check_update(
            textbook_step_where_it_runs,
            loss,
            params,
            LEARNING_RATE,
            rng=0,
            layer_inputs={"weight2": a1},  # a1 is weight2's input, a_prev
        ),
    }
    if not quiet:
        for name, result in results.items():
            print(f"== {name} ==")
            print(result)
            print()
    return results


def main() -> int:
    results = run()
    expected = {
        "working": "descent",
        "textbook": "shape",
        "textbook_where_it_runs": "per_sample_delta",
    }
    wrong = [n for n, kind in expected.items() if results[n].kind != kind]
    if wrong:
        print(f"unexpected verdicts: {wrong}", file=sys.stderr)
    return 1 if wrong else 0


if __name__ == "__main__":
    raise SystemExit(main())
