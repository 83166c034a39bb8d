"""The seed question, reproduced and answered with numbers.

A Q&A post trains the classic 3-4-1 sigmoid network on XOR (after iamtrask's "A neural
network in 11 lines of Python") with

.. code-block:: python

    delta2 = y - a2
    dC_dw2 = delta2 * a2 * (1 - a2)
    dC_dw1 = (dC_dw2 * weight2.T) * a1 * (1 - a1)
    weight2 = weight2 + lr * a1.T @ dC_dw2        # "this is what works"
    weight1 = weight1 + lr * x.T @ dC_dw1

and asks why this works while the textbook's ``weight -= lr * dC_dw`` does not: why ``+``,
and where ``a_prev.T @`` comes from.  This module reproduces the post exactly
(:func:`seed_weights`, :func:`seed_step`, :func:`train`) and :func:`demonstrate` measures the
answer:

* for ``L = 1/2 * sum((a2 - y)**2)`` the post's ``dC_dw`` arrays are ``-dL/dz`` ("minus
  delta"), so adding ``lr * a_prev.T @ dC_dw`` *is* ``W - lr * dL/dW``, gradient descent
  (:class:`~gradcheck.model.network.Network` computes ``dL/dW``; they agree to rounding);
* ``dL/dW = a_prev.T @ delta`` is the sum over samples of outer(layer input, delta); it has
  ``W``'s shape while ``delta`` has one row per sample;
* with 4 hidden units and 4 samples ``dC_dw2`` happens to have ``weight2``'s shape, so the
  textbook line for ``weight2`` runs and silently does the wrong thing; with 5 hidden units
  it raises.

The post's own arithmetic (its sigmoid, its operation order) is kept so that its printed
numbers come out bit for bit; :func:`corrected_loop_source` is the same loop written the
textbook way, and :func:`run_corrected_loop` runs it (the demonstration carries what it
prints, so the HTML report shows it without running anything).
"""

from __future__ import annotations

import functools
import io
import numbers
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

from gradcheck.errors import InvalidParameterError, ParameterTypeError
from gradcheck.model.network import Network

__all__ = [
    "SEED_X",
    "SEED_Y",
    "SEED_LR",
    "SEED_ITERATIONS",
    "SEED_PRINTED_A2",
    "UPDATE_RULES",
    "seed_network",
    "seed_weights",
    "seed_step",
    "textbook_step",
    "sign_flipped_step",
    "textbook_weight2_step",
    "gradient_descent_step",
    "train",
    "TrainingRun",
    "demonstrate",
    "SeedDemonstration",
    "corrected_loop_source",
    "CorrectedLoop",
    "run_corrected_loop",
]

Array = NDArray[Any]
Weights = dict[str, Array]
StepRule = Callable[[Mapping[str, Array], float], Weights]


def _constant(values: Any) -> Array:
    array = np.array(values, dtype=np.float64)
    array.flags.writeable = False
    return array


#: The post's inputs: XOR of the first two columns, the third is a constant 1 (a bias input).
SEED_X: Array = _constant([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]])
#: The post's targets, one row per sample.
SEED_Y: Array = _constant([[0, 1, 1, 0]]).T
#: The post's learning rate and number of iterations.
SEED_LR = 1.0
SEED_ITERATIONS = 1000
#: What the post's code prints after its 1000 iterations, at 3 decimals.
SEED_PRINTED_A2 = (0.028, 0.925, 0.925, 0.090)

#: Tolerances of the demonstration's claims.
_ROUNDING_RTOL = 1e-13  # "equal to rounding": some hundred ulps of the terms summed
_LARGE_RTOL = 0.5  # "differs": the textbook step is off by more than half the gradient step
_CENTRAL_ATOL = 1e-9  # central difference with h = 1e-6: truncation ~h^2, roundoff ~eps/h
_CENTRAL_STEP = 1e-6


def seed_network(hidden: int = 4) -> Network:
    """The post's network: 3 inputs, ``hidden`` sigmoid units, 1 sigmoid output, no biases.

    Parameters
    ----------
    hidden : int, optional
        Number of hidden units (the post has 4).

    Returns
    -------
    Network
        ``Network((3, hidden, 1), ("sigmoid", "sigmoid"), "half_sse", bias=False)``: its loss
        ``1/2 * sum((a2 - y)**2)`` is the one the post's ``delta2 = y - a2`` belongs to.
    """
    return Network(
        (3, _check_positive_int("hidden", hidden), 1),
        ("sigmoid", "sigmoid"),
        "half_sse",
        bias=False,
    )


def seed_weights(hidden: int = 4) -> Weights:
    """The post's initial weights, as ``np.random.seed(1); np.random.random(...)`` draws them.

    Parameters
    ----------
    hidden : int, optional
        Number of hidden units (the post has 4).

    Returns
    -------
    dict of str to ndarray
        ``{"weight1": (3, hidden), "weight2": (hidden, 1)}``, uniform in [0, 1).  A private
        ``RandomState(1)`` gives the same numbers as seeding numpy's global generator, which
        is left alone.

    Examples
    --------
    >>> seed_weights()["weight1"][0].round(3)
    array([0.417, 0.72 , 0.   , 0.302])
    """
    hidden = _check_positive_int("hidden", hidden)
    legacy = np.random.RandomState(1)
    weight1 = legacy.random_sample((3, hidden))
    weight2 = legacy.random_sample((hidden, 1))
    return {"weight1": weight1, "weight2": weight2}


# -- the post's arithmetic ----------------------------------------------------------------------
def _post_sigmoid(x: Array) -> Array:
    return 1 / (1 + np.exp(-x))  # the post's own, kept so its numbers come out bit for bit


def _post_derv_sigmoid(x: Array) -> Array:
    return x * (1 - x)  # the post's: sigmoid' written in terms of the output


class _PostPass(NamedTuple):
    """One iteration of the post's code up to its update lines, with its names."""

    a1: Array
    a2: Array
    dC_dw2: Array
    dC_dw1: Array

    def dC_dw(self) -> Weights:
        """The post's "dC/dw" arrays by the weight they are used to update."""
        return {"weight1": self.dC_dw1, "weight2": self.dC_dw2}

    def layer_inputs(self) -> Weights:
        """``a_prev`` of each weight: the input of the layer it belongs to."""
        return {"weight1": SEED_X, "weight2": self.a1}


def _post_pass(weights: Mapping[str, Array]) -> _PostPass:
    weight1, weight2 = weights["weight1"], weights["weight2"]
    z1 = SEED_X @ weight1
    a1 = _post_sigmoid(z1)
    z2 = a1 @ weight2
    a2 = _post_sigmoid(z2)
    delta2 = SEED_Y - a2  # = -dL/da2 for L = 1/2 sum (a2 - y)^2
    dC_dw2 = delta2 * _post_derv_sigmoid(a2)  # = -dL/dz2, one row per sample: not dL/dW2
    dC_dw1 = np.multiply(dC_dw2, weight2.T) * _post_derv_sigmoid(a1)  # = -dL/dz1
    return _PostPass(a1, a2, dC_dw2, dC_dw1)


def _seed_increments(post: _PostPass, lr: float) -> Weights:
    # The post's "lr * a_prev.T @ dC_dw": the amount its update adds to each weight.
    inputs = post.layer_inputs()
    return {name: lr * np.dot(inputs[name].T, dC) for name, dC in post.dC_dw().items()}


def _textbook_update(weight: Array, dC_dw: Array, lr: float) -> Array:
    updated = weight.copy()
    updated -= lr * dC_dw  # the textbook's line with the post's dC_dw: raises unless shapes fit
    return updated


# -- update rules -------------------------------------------------------------------------------
def seed_step(weights: Mapping[str, Array], lr: float = SEED_LR) -> Weights:
    """One iteration of the post's update: ``weight + lr * a_prev.T @ dC_dw``.

    Parameters
    ----------
    weights : mapping
        ``{"weight1": (3, hidden), "weight2": (hidden, 1)}``.
    lr : float, optional
        Learning rate (the post's 1).

    Returns
    -------
    dict of str to ndarray
        The updated weights (new arrays).

    See Also
    --------
    gradient_descent_step : the same update computed as ``W - lr * dL/dW``.
    """
    post = _post_pass(weights)
    increments = _seed_increments(post, lr)
    return {name: weights[name] + increments[name] for name in ("weight1", "weight2")}


def textbook_step(weights: Mapping[str, Array], lr: float = SEED_LR) -> Weights:
    """The textbook line applied to the post's arrays: ``weight -= lr * dC_dw``.

    Parameters
    ----------
    weights : mapping
        ``{"weight1": (3, hidden), "weight2": (hidden, 1)}``.
    lr : float, optional
        Learning rate.

    Returns
    -------
    dict of str to ndarray
        The updated weights, if every update ran.

    Raises
    ------
    ValueError
        Always, from numpy broadcasting: ``dC_dw1`` has shape (4 samples, hidden) and
        ``weight1`` (3, hidden).  ``weight2``'s line runs when ``hidden`` is 4, the number
        of samples (``dC_dw2`` is (4, 1), like ``weight2``); otherwise it raises too.
    """
    dC_dw = _post_pass(weights).dC_dw()
    return {name: _textbook_update(weights[name], dC_dw[name], lr) for name in dC_dw}


def sign_flipped_step(weights: Mapping[str, Array], lr: float = SEED_LR) -> Weights:
    """The post's update with the textbook's minus sign: ``weight - lr * a_prev.T @ dC_dw``.

    Since the post's ``dC_dw`` is minus ``delta``, this is ``W + lr * dL/dW``: gradient
    ascent.  Parameters and returns as :func:`seed_step`.
    """
    increments = _seed_increments(_post_pass(weights), lr)
    return {name: weights[name] - increments[name] for name in ("weight1", "weight2")}


def textbook_weight2_step(weights: Mapping[str, Array], lr: float = SEED_LR) -> Weights:
    """The textbook line where it runs (``weight2``, 4 hidden units), the post's for ``weight1``.

    This is the update the shape coincidence lets through: ``weight2 -= lr * dC_dw2`` pairs
    sample ``n``'s row of ``dC_dw2`` with hidden unit ``n``'s weight.  Parameters and returns as
    :func:`seed_step`; raises ``ValueError`` when ``hidden`` is not 4.
    """
    post = _post_pass(weights)
    increments = _seed_increments(post, lr)
    return {
        "weight1": weights["weight1"] + increments["weight1"],
        "weight2": _textbook_update(weights["weight2"], post.dC_dw2, lr),
    }


def gradient_descent_step(weights: Mapping[str, Array], lr: float = SEED_LR) -> Weights:
    """Plain gradient descent, ``W - lr * dL/dW``, with ``dL/dW`` from :class:`Network`.

    Parameters and returns as :func:`seed_step`.
    """
    hidden = np.shape(weights["weight2"])[0]
    grads = seed_network(hidden).backward(dict(weights), SEED_X, SEED_Y)
    return {name: weights[name] - lr * grads[name] for name in ("weight1", "weight2")}


#: The update rules :func:`train` knows by name.
UPDATE_RULES: dict[str, StepRule] = {
    "seed": seed_step,
    "textbook": textbook_step,
    "sign_flipped": sign_flipped_step,
    "textbook_weight2": textbook_weight2_step,
    "gradient_descent": gradient_descent_step,
}


# -- training -----------------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class TrainingRun:
    """The post's training loop run with one update rule.

    Attributes
    ----------
    rule : str
        Name of the update rule.
    lr : float
        Learning rate.
    weights : tuple of dict
        The weights before each iteration and after the last: ``iterations + 1`` entries,
        ``weights[0]`` the initial ones.
    losses : ndarray
        ``L = 1/2 * sum((a2 - y)**2)`` at each entry of ``weights``.
    final_a2 : ndarray
        What the post prints after its loop: the ``a2`` of the last iteration's forward
        pass, computed *before* that iteration's update.  Shape (4,).
    """

    rule: str
    lr: float
    weights: tuple[Weights, ...]
    losses: Array
    final_a2: Array

    @property
    def iterations(self) -> int:
        return len(self.weights) - 1

    @property
    def hidden(self) -> int:
        return int(self.weights[0]["weight2"].shape[0])

    @property
    def predictions(self) -> Array:
        """``final_a2`` rounded to 0 or 1."""
        return np.round(self.final_a2)

    @property
    def learned_xor(self) -> bool:
        """True if the rounded predictions are the targets."""
        return bool(np.array_equal(self.predictions, SEED_Y.ravel()))

    def __str__(self) -> str:
        return (
            f"rule {self.rule!r}, {self.hidden} hidden units, {self.iterations} iterations: "
            f"L {self.losses[0]:.4f} -> {self.losses[-1]:.4f}, a2 = {_fmt(self.final_a2)}, "
            f"{'learned' if self.learned_xor else 'did not learn'} XOR"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe summary: the losses and the initial and final weights, not every step."""
        return {
            "rule": self.rule,
            "lr": self.lr,
            "hidden": self.hidden,
            "iterations": self.iterations,
            "losses": self.losses.tolist(),
            "final_a2": self.final_a2.tolist(),
            "learned_xor": self.learned_xor,
            "initial_weights": {k: v.tolist() for k, v in self.weights[0].items()},
            "final_weights": {k: v.tolist() for k, v in self.weights[-1].items()},
        }


def train(
    rule: str | StepRule = "seed",
    iterations: int = SEED_ITERATIONS,
    lr: float = SEED_LR,
    hidden: int = 4,
) -> TrainingRun:
    """Run the post's training loop from its initial weights with an update rule.

    Parameters
    ----------
    rule : str or callable, optional
        A name in :data:`UPDATE_RULES` (``"seed"``, ``"textbook"``, ``"sign_flipped"``,
        ``"textbook_weight2"``, ``"gradient_descent"``) or ``step(weights, lr) -> weights``.
    iterations : int, optional
        Number of updates (the post's 1000).
    lr : float, optional
        Learning rate (the post's 1).
    hidden : int, optional
        Number of hidden units (the post's 4).

    Returns
    -------
    TrainingRun
        Weight history, losses and the ``a2`` the post would print.

    Raises
    ------
    InvalidParameterError
        If ``rule`` is an unknown name or a number is out of range.
    ValueError
        From the rule itself: the textbook rules raise numpy's broadcasting error when the
        post's ``dC_dw`` does not have the weight's shape.

    Examples
    --------
    >>> train("seed").final_a2.round(3)
    array([0.028, 0.925, 0.925, 0.09 ])
    """
    if isinstance(rule, str):
        if rule not in UPDATE_RULES:
            raise InvalidParameterError(
                f"rule: unknown update rule {rule!r}; choose one of "
                f"{', '.join(map(repr, UPDATE_RULES))} or pass a function step(weights, lr)"
            )
        name, step = rule, UPDATE_RULES[rule]
    elif callable(rule):
        name, step = getattr(rule, "__name__", "custom"), rule
    else:
        raise ParameterTypeError(f"rule: expected a name or a callable, got {rule!r}")
    iterations = _check_positive_int("iterations", iterations)
    if not (isinstance(lr, numbers.Real) and np.isfinite(lr)):
        raise InvalidParameterError(f"lr: expected a finite number, got {lr!r}")
    network = seed_network(hidden)
    history = [seed_weights(hidden)]
    for _ in range(iterations):
        history.append(step(history[-1], float(lr)))
    stacked = np.stack([network.flatten(weights) for weights in history])
    losses = network.vectorized_loss(SEED_X, SEED_Y)(stacked)  # all iterations in one pass
    final_a2 = _post_pass(history[-2]).a2.ravel()
    return TrainingRun(name, float(lr), tuple(history), losses, final_a2)


# -- the demonstration --------------------------------------------------------------------------
@dataclass(frozen=True, eq=False)
class SeedDemonstration:
    """The seed question answered with measurements.

    Attributes
    ----------
    seed_run : TrainingRun
        The post's code as written.
    seed_vs_gradient_descent : dict of str to ndarray
        Per iteration of ``seed_run`` and per weight, ``max |seed step - (-lr * dL/dW)|``
        (``dL/dW`` by :class:`Network` backpropagation).  Rounding level.
    seed_vs_gradient_descent_relative : dict of str to ndarray
        The same divided by ``max(lr * |a_prev|.T @ |delta|)``, the size of the terms the
        sum over samples adds up: the scale rounding is relative to (dividing by
        ``max |dL/dW|`` instead inflates it wherever those terms cancel).
    textbook_vs_gradient_descent : dict of str to ndarray
        Per iteration of ``seed_run``, ``max |textbook step - gradient step|`` for
        ``weight2``, the only weight whose textbook step has the right shape.
    textbook_vs_gradient_descent_relative : dict of str to ndarray
        The same divided by ``max |lr * dL/dW2|``.
    sign_flipped_run : TrainingRun
        The post's update with the textbook's minus sign: gradient ascent.
    textbook_weight2_run : TrainingRun
        The textbook line where it runs (``weight2``) with the post's ``weight1`` update.
    textbook_errors : dict of str to (str or None)
        At the initial weights with 4 hidden units: per weight, numpy's error message from
        ``weight -= lr * dC_dw``, or None if it ran.
    analytic_gradient, central_difference : dict of str to ndarray
        ``dL/dW`` at the initial weights by backpropagation (``a_prev.T @ delta``) and by a
        central difference of L with step ``h = 1e-6``.
    shapes : dict of str to tuple
        Shapes of ``weight1, dC_dw1, dL_dW1, weight2, dC_dw2, dL_dW2`` (4 hidden units).
    hidden_alt : int
        The other hidden size tried.
    alt_textbook_errors : dict of str to (str or None)
        As ``textbook_errors`` with ``hidden_alt`` hidden units.
    alt_seed_run : TrainingRun
        The post's code with ``hidden_alt`` hidden units.
    alt_seed_vs_gradient_descent_relative : dict of str to ndarray
        As ``seed_vs_gradient_descent_relative`` along ``alt_seed_run``.
    corrected_loop : CorrectedLoop
        The post's loop written the textbook way, and what it printed when run.
    """

    seed_run: TrainingRun
    seed_vs_gradient_descent: dict[str, Array]
    seed_vs_gradient_descent_relative: dict[str, Array]
    textbook_vs_gradient_descent: dict[str, Array]
    textbook_vs_gradient_descent_relative: dict[str, Array]
    sign_flipped_run: TrainingRun
    textbook_weight2_run: TrainingRun
    textbook_errors: dict[str, str | None]
    analytic_gradient: dict[str, Array]
    central_difference: dict[str, Array]
    shapes: dict[str, tuple[int, ...]]
    hidden_alt: int
    alt_textbook_errors: dict[str, str | None]
    alt_seed_run: TrainingRun
    alt_seed_vs_gradient_descent_relative: dict[str, Array]
    corrected_loop: CorrectedLoop

    @property
    def iterations(self) -> int:
        return self.seed_run.iterations

    @property
    def central_difference_error(self) -> dict[str, float]:
        """``max |analytic - central difference|`` per weight at the initial weights."""
        return {
            name: float(np.max(np.abs(self.analytic_gradient[name] - reference)))
            for name, reference in self.central_difference.items()
        }

    @property
    def claims(self) -> dict[str, bool]:
        """Each claim of the answer and whether the measurements bear it out."""
        claims: dict[str, bool] = {}
        if self.iterations == SEED_ITERATIONS and self.seed_run.lr == SEED_LR:
            claims["the post's printed a2 is reproduced"] = bool(
                np.array_equal(self.seed_run.final_a2.round(3), SEED_PRINTED_A2)
            )
        claims["the post's update is gradient descent, to rounding"] = all(
            _worst(d) < _ROUNDING_RTOL for d in self.seed_vs_gradient_descent_relative.values()
        )
        claims["the textbook step for weight2 is not the gradient step"] = all(
            float(np.min(d)) > _LARGE_RTOL
            for d in self.textbook_vs_gradient_descent_relative.values()
        )
        flipped = self.sign_flipped_run
        claims["with the minus sign the loss grows and XOR is not learned"] = bool(
            flipped.losses[-1] > flipped.losses[0] and not flipped.learned_xor
        )
        claims["a_prev.T @ delta matches a central difference of L"] = all(
            error < _CENTRAL_ATOL for error in self.central_difference_error.values()
        )
        shapes = self.shapes
        claims["dC_dw2 has weight2's shape only because hidden units = samples = 4"] = (
            shapes["dC_dw2"] == shapes["weight2"]
            and shapes["dC_dw1"] != shapes["weight1"]
            and shapes["dL_dW1"] == shapes["weight1"]
        )
        claims["with 4 hidden units the textbook line runs for weight2, fails for weight1"] = (
            self.textbook_errors["weight2"] is None and self.textbook_errors["weight1"] is not None
        )
        claims[f"with {self.hidden_alt} hidden units the textbook line fails for both"] = all(
            message is not None for message in self.alt_textbook_errors.values()
        )
        claims[f"with {self.hidden_alt} hidden units the post's update runs and descends"] = bool(
            np.all(np.isfinite(self.alt_seed_run.losses))
            and self.alt_seed_run.losses[-1] < self.alt_seed_run.losses[0]
            and all(
                _worst(d) < _ROUNDING_RTOL
                for d in self.alt_seed_vs_gradient_descent_relative.values()
            )
        )
        return claims

    @property
    def passed(self) -> bool:
        """True if every claim holds."""
        return all(self.claims.values())

    def __str__(self) -> str:
        run, flipped, hybrid, alt = (
            self.seed_run,
            self.sign_flipped_run,
            self.textbook_weight2_run,
            self.alt_seed_run,
        )
        abs_diff = {k: _worst(v) for k, v in self.seed_vs_gradient_descent.items()}
        rel_diff = max(_worst(v) for v in self.seed_vs_gradient_descent_relative.values())
        textbook = self.textbook_vs_gradient_descent_relative["weight2"]
        fd = self.central_difference_error
        shapes = self.shapes
        lines = [
            "Why `weight + lr * a_prev.T @ dC_dw` works and `weight - lr * dC_dw` does not",
            f"(3-{run.hidden}-1 sigmoid network on XOR, np.random.seed(1), lr = {run.lr:g}, "
            f"{run.iterations} iterations)",
            "",
            f"The post's code, reproduced: a2 = {_fmt(run.final_a2)} "
            f"(the post: {_fmt(np.array(SEED_PRINTED_A2))}).",
            "",
            "1. Why + and not -.  For L = 1/2 * sum((a2 - y)**2), dL/da2 = a2 - y, so the post's",
            "   delta2 = y - a2 is -dL/da2 and its dC_dw2 = (y - a2) * a2 * (1 - a2) is -dL/dz2:",
            "   minus 'delta'.  Adding lr * a1.T @ dC_dw2 therefore subtracts lr * a1.T @ dL/dz2 =",
            "   lr * dL/dW2.  The post's update is plain gradient descent.  Measured against",
            "   W - lr * dL/dW with dL/dW by backpropagation, at every one of the "
            f"{run.iterations} iterations:",
            f"   max difference {abs_diff['weight1']:.1e} (weight1), {abs_diff['weight2']:.1e} "
            f"(weight2), {rel_diff:.1e} of the terms summed: rounding.",
            "   With the textbook's minus sign instead (weight - lr * a_prev.T @ dC_dw) the",
            f"   update climbs the loss: L {flipped.losses[0]:.3f} -> {flipped.losses[-1]:.3f}, "
            f"a2 = {_fmt(flipped.final_a2)}, XOR "
            f"{'learned' if flipped.learned_xor else 'not learned'}.",
            "",
            "2. Where a_prev.T comes from.  z2 = a1 @ W2, so dL/dW2[j, k] = sum over samples n of",
            "   a1[n, j] * delta2[n, k]: dL/dW2 = a1.T @ delta2, the sum over samples of the outer",
            "   product of the layer's input with its delta.  It has W2's shape; delta2 = dL/dz2",
            "   has one row per sample.  The same for W1: dL/dW1 = x.T @ delta1 with",
            "   delta1 = (delta2 @ W2.T) * a1 * (1 - a1).  (The post's dC_dw2 * weight2.T is",
            "   delta2 @ W2.T by broadcasting, which holds because there is one output unit.)",
            "   At the initial weights a central difference of L (h = 1e-6) agrees with",
            f"   a1.T @ delta2 to {fd['weight2']:.1e} and with x.T @ delta1 to "
            f"{fd['weight1']:.1e} (absolute).",
            "",
            "3. Why the shape coincidence hid the bug.  dC_dw2 has shape (samples, outputs) = "
            f"{shapes['dC_dw2']};",
            f"   with 4 hidden units that is weight2's shape {shapes['weight2']}, so",
            "   `weight2 -= lr * dC_dw2` runs without complaint, pairing sample n's row of",
            "   dC_dw2 with hidden unit n's weight.  It is not the gradient step: it differs by "
            f"{np.min(textbook):.0%} to {np.max(textbook):.0%}",
            "   (relative) along the post's run.  weight1's textbook line does not even run,",
            f"   as dC_dw1 is {shapes['dC_dw1']} and weight1 {shapes['weight1']}:",
            f"     {self.textbook_errors['weight1']}",
            "   The wrong weight2 step combined with the post's weight1 step still trains: "
            f"L {hybrid.losses[0]:.3f} -> {hybrid.losses[-1]:.3f},",
            f"   a2 = {_fmt(hybrid.final_a2)}.  A falling loss does not show a gradient is right;",
            "   a gradient check does.",
            f"   With {self.hidden_alt} hidden units the coincidence is gone, neither line runs:",
            f"     weight2: {self.alt_textbook_errors['weight2']}",
            f"     weight1: {self.alt_textbook_errors['weight1']}",
            f"   while the post's update runs: L {alt.losses[0]:.3f} -> {alt.losses[-1]:.3f}, "
            f"a2 = {_fmt(alt.final_a2)}.",
            "",
            "The corrected loop: delta2 = (a2 - y) * a2 * (1 - a2); dL_dW2 = a1.T @ delta2;",
            "delta1 = (delta2 @ weight2.T) * a1 * (1 - a1); dL_dW1 = x.T @ delta1;",
            "weight2 -= lr * dL_dW2; weight1 -= lr * dL_dW1 (see corrected_loop_source()).",
            "",
        ]
        failed = [claim for claim, holds in self.claims.items() if not holds]
        if failed:
            lines.append(f"FAILED: {len(failed)} of {len(self.claims)} claims do not hold:")
            lines += [f"  - {claim}" for claim in failed]
        else:
            lines.append(f"All {len(self.claims)} claims hold.")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-safe form: every measurement, the claims and ``passed``."""

        def arrays(mapping: Mapping[str, Array]) -> dict[str, Any]:
            return {name: np.asarray(value).tolist() for name, value in mapping.items()}

        return {
            "passed": self.passed,
            "claims": self.claims,
            "iterations": self.iterations,
            "seed_run": self.seed_run.to_dict(),
            "seed_vs_gradient_descent": arrays(self.seed_vs_gradient_descent),
            "seed_vs_gradient_descent_relative": arrays(self.seed_vs_gradient_descent_relative),
            "textbook_vs_gradient_descent": arrays(self.textbook_vs_gradient_descent),
            "textbook_vs_gradient_descent_relative": arrays(
                self.textbook_vs_gradient_descent_relative
            ),
            "sign_flipped_run": self.sign_flipped_run.to_dict(),
            "textbook_weight2_run": self.textbook_weight2_run.to_dict(),
            "textbook_errors": dict(self.textbook_errors),
            "analytic_gradient": arrays(self.analytic_gradient),
            "central_difference": arrays(self.central_difference),
            "central_difference_error": self.central_difference_error,
            "shapes": {name: list(shape) for name, shape in self.shapes.items()},
            "hidden_alt": self.hidden_alt,
            "alt_textbook_errors": dict(self.alt_textbook_errors),
            "alt_seed_run": self.alt_seed_run.to_dict(),
            "alt_seed_vs_gradient_descent_relative": arrays(
                self.alt_seed_vs_gradient_descent_relative
            ),
            "corrected_loop": self.corrected_loop.to_dict(),
        }


def demonstrate(iterations: int = SEED_ITERATIONS, hidden_alt: int = 5) -> SeedDemonstration:
    """Reproduce the post and measure every claim of the answer.

    Parameters
    ----------
    iterations : int, optional
        Iterations of each training run (the post's 1000; the claim about the printed
        ``a2`` is only made for 1000).
    hidden_alt : int, optional
        A hidden size other than 4 (the number of samples), where the textbook line
        cannot run.

    Returns
    -------
    SeedDemonstration
        The measurements; ``passed`` says whether every claim holds, ``str()`` answers the
        question in words and numbers.

    Raises
    ------
    InvalidParameterError
        If ``iterations`` is not a positive int or ``hidden_alt`` is 4 or not positive.

    Examples
    --------
    >>> demo = demonstrate()
    >>> demo.passed
    True
    >>> demo.seed_run.final_a2.round(3)
    array([0.028, 0.925, 0.925, 0.09 ])
    """
    iterations = _check_positive_int("iterations", iterations)
    hidden_alt = _check_positive_int("hidden_alt", hidden_alt)
    n_samples = SEED_X.shape[0]
    if hidden_alt == n_samples:
        raise InvalidParameterError(
            f"hidden_alt: must differ from the number of samples ({n_samples}), where the "
            "shapes coincide"
        )
    lr = SEED_LR
    network = seed_network(4)
    weights = seed_weights(4)
    post = _post_pass(weights)
    analytic = network.backward(weights, SEED_X, SEED_Y)

    seed_run = train("seed", iterations, lr)
    seed_vs_gd, seed_vs_gd_rel, textbook_vs_gd, textbook_vs_gd_rel = _compare_steps(seed_run)
    alt_seed_run = train("seed", iterations, lr, hidden=hidden_alt)
    _, alt_rel, _, _ = _compare_steps(alt_seed_run)

    return SeedDemonstration(
        seed_run=seed_run,
        seed_vs_gradient_descent=seed_vs_gd,
        seed_vs_gradient_descent_relative=seed_vs_gd_rel,
        textbook_vs_gradient_descent=textbook_vs_gd,
        textbook_vs_gradient_descent_relative=textbook_vs_gd_rel,
        sign_flipped_run=train("sign_flipped", iterations, lr),
        textbook_weight2_run=train("textbook_weight2", iterations, lr),
        textbook_errors=_textbook_errors(weights, lr),
        analytic_gradient=analytic,
        central_difference=_central_difference(network, weights, _CENTRAL_STEP),
        shapes={
            "weight1": weights["weight1"].shape,
            "dC_dw1": post.dC_dw1.shape,
            "dL_dW1": analytic["weight1"].shape,
            "weight2": weights["weight2"].shape,
            "dC_dw2": post.dC_dw2.shape,
            "dL_dW2": analytic["weight2"].shape,
        },
        hidden_alt=hidden_alt,
        alt_textbook_errors=_textbook_errors(seed_weights(hidden_alt), lr),
        alt_seed_run=alt_seed_run,
        alt_seed_vs_gradient_descent_relative=alt_rel,
        corrected_loop=run_corrected_loop(),
    )


def _compare_steps(
    run: TrainingRun,
) -> tuple[dict[str, Array], dict[str, Array], dict[str, Array], dict[str, Array]]:
    """Per iteration of ``run``: the post's and the textbook's steps against gradient descent.

    Returns ``max |step - (-lr * dL/dW)|`` for the post's step (both weights) and the same
    relative to the terms summed; then for the textbook's ``-lr * dC_dw`` (``weight2``, where
    the shapes agree; NaN where they do not) absolute and relative to ``max |lr * dL/dW2|``.
    """
    network = seed_network(run.hidden)
    names = ("weight1", "weight2")
    seed_abs = {name: np.empty(run.iterations) for name in names}
    terms = {name: np.empty(run.iterations) for name in names}
    textbook_abs = np.full(run.iterations, np.nan)
    descent2 = np.empty(run.iterations)
    for k, weights in enumerate(run.weights[:-1]):
        post = _post_pass(weights)
        seed = _seed_increments(post, run.lr)
        inputs, dC_dw = post.layer_inputs(), post.dC_dw()
        grads = network.backward(weights, SEED_X, SEED_Y)
        descent = {name: -run.lr * grad for name, grad in grads.items()}
        for name in names:
            seed_abs[name][k] = np.max(np.abs(seed[name] - descent[name]))
            terms[name][k] = np.max(run.lr * np.abs(inputs[name]).T @ np.abs(dC_dw[name]))
        descent2[k] = np.max(np.abs(descent["weight2"]))
        textbook = -run.lr * post.dC_dw2
        if textbook.shape == descent["weight2"].shape:
            textbook_abs[k] = np.max(np.abs(textbook - descent["weight2"]))
    seed_rel = {name: seed_abs[name] / terms[name] for name in names}
    return seed_abs, seed_rel, {"weight2": textbook_abs}, {"weight2": textbook_abs / descent2}


def _textbook_errors(weights: Mapping[str, Array], lr: float) -> dict[str, str | None]:
    """Per weight: numpy's error from ``weight -= lr * dC_dw``, or None if the line runs."""
    dC_dw = _post_pass(weights).dC_dw()
    errors: dict[str, str | None] = {}
    for name in ("weight1", "weight2"):
        try:
            _textbook_update(weights[name], dC_dw[name], lr)
        except ValueError as exc:  # the outcome being measured, not a failure of ours
            errors[name] = str(exc).strip()
        else:
            errors[name] = None
    return errors


def _central_difference(
    network: Network, weights: Mapping[str, Array], h: float
) -> dict[str, Array]:
    """``(L(w + h e) - L(w - h e)) / 2h`` for every element: the simplest independent check."""
    result: dict[str, Array] = {}
    for name, weight in weights.items():
        derivative = np.empty_like(weight)
        for index in np.ndindex(weight.shape):
            plus, minus = weight.copy(), weight.copy()
            plus[index] += h
            minus[index] -= h
            loss_plus = network.loss_value({**weights, name: plus}, SEED_X, SEED_Y)
            loss_minus = network.loss_value({**weights, name: minus}, SEED_X, SEED_Y)
            derivative[index] = (loss_plus - loss_minus) / (2 * h)
        result[name] = derivative
    return result


# -- the corrected loop -------------------------------------------------------------------------
_CORRECTED_LOOP = """\
import numpy as np


def sigmoid(z):
    return 1 / (1 + np.exp(-z))


x = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]])  # one row per sample
y = np.array([[0, 1, 1, 0]]).T
rng = np.random.RandomState(1)  # the same numbers as np.random.seed(1); np.random.random
weight1 = rng.random_sample((3, 4))
weight2 = rng.random_sample((4, 1))
lr = 1.0

# L = 1/2 * sum((a2 - y)**2).  delta = dL/dz has one row per sample; dL/dW has W's shape.
for iteration in range(1000):
    # forward pass: keep each layer's input, the backward pass needs it
    a0 = x
    z1 = a0 @ weight1
    a1 = sigmoid(z1)
    z2 = a1 @ weight2
    a2 = sigmoid(z2)

    # backward pass
    delta2 = (a2 - y) * a2 * (1 - a2)  # dL/dz2 = dL/da2 * sigmoid'(z2)
    dL_dW2 = a1.T @ delta2  # sum over samples of outer(a1, delta2)
    delta1 = (delta2 @ weight2.T) * a1 * (1 - a1)  # dL/dz1: delta2 sent back through weight2
    dL_dW1 = a0.T @ delta1  # sum over samples of outer(a0, delta1)

    # gradient descent: step against the gradient
    weight2 -= lr * dL_dW2
    weight1 -= lr * dL_dW1

print("a2 =", a2.ravel().round(3))
"""


def corrected_loop_source() -> str:
    """The post's loop written the textbook way, as runnable, self-contained code.

    Returns
    -------
    str
        Python source: ``delta = dL/dz`` with the right sign, ``dL/dW = a_prev.T @ delta``,
        and ``weight -= lr * dL/dW``.  Running it prints the same ``a2`` as the post.

    Examples
    --------
    >>> namespace = {}
    >>> exec(corrected_loop_source(), namespace)
    a2 = [0.028 0.925 0.925 0.09 ]
    """
    return _CORRECTED_LOOP


@dataclass(frozen=True, eq=False)
class CorrectedLoop:
    """The corrected loop's source and what running it printed.

    Attributes
    ----------
    source : str
        :func:`corrected_loop_source`.
    output : str
        What it printed (``"a2 = [0.028 0.925 0.925 0.09 ]"``), without the final newline.
    a2 : ndarray
        Its final output layer, the value the post's loop prints too.
    """

    source: str
    output: str
    a2: Array

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "output": self.output, "a2": self.a2.tolist()}


def run_corrected_loop() -> CorrectedLoop:
    """Run :func:`corrected_loop_source` and keep what it printed.

    The report shows the source with its output; running the very text shown (rather
    than a copy of its arithmetic) is what makes "it prints this" true of that text.

    Returns
    -------
    CorrectedLoop

    Examples
    --------
    >>> run_corrected_loop().output
    'a2 = [0.028 0.925 0.925 0.09 ]'
    """
    printed = io.StringIO()
    # Its own print, not a swapped sys.stdout: other threads keep printing where they did.
    namespace: dict[str, Any] = {
        "__name__": "__corrected_loop__",
        "print": functools.partial(print, file=printed),
    }
    code = compile(_CORRECTED_LOOP, "<corrected loop>", "exec")
    exec(code, namespace)  # noqa: S102 - our own constant source, the text the report shows
    return CorrectedLoop(_CORRECTED_LOOP, printed.getvalue().strip(), np.asarray(namespace["a2"]))


# -- helpers ------------------------------------------------------------------------------------
def _check_positive_int(name: str, value: Any) -> int:
    if isinstance(value, (bool, np.bool_)) or not isinstance(value, numbers.Integral):
        raise InvalidParameterError(f"{name}: expected a positive int, got {value!r}")
    if value < 1:
        raise InvalidParameterError(f"{name}: expected a positive int, got {value!r}")
    return int(value)


def _worst(values: Array) -> float:
    return float(np.max(values))


def _fmt(values: Array) -> str:
    return np.array2string(np.asarray(values).ravel(), precision=3, floatmode="fixed")
