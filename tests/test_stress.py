"""Stress: a thousand correct gradients never fail; a thousand planted bugs never pass.

Problems come from a seeded numpy loop over a grid (no hypothesis here: shrinking would cost
more than the checks), each a tiny network (2-6 units, 1-3 layers) checked in ``mode="full"``:

* activations sigmoid, tanh, relu and identity; hidden and output derivatives written the model's
  stable way (``sigmoid(z) * sigmoid(-z)``, ``sech(z)**2``) or the textbook way by hand
  (``a * (1 - a)``, ``1 - a**2``, which lose digits to cancellation once ``a`` nears 1);
* losses ``half_sse``, ``mse`` and softmax cross-entropy, multiplied by 1, 1e6 or 1e-6;
* float64 and float32 (parameters and data);
* ordinary weights; saturated units, ``1 - a`` of the most saturated unit drawn down to 1e-10
  in float64 (where float64 still resolves the gradient) and 1e-4 in float32; relu units
  near their kink, the smallest ``|z|`` 1e-3 to 1e-2 of ``1 + rms(z)``;
* parameters as a flat dict or a tree (``{"layers": [{"weight": W, "bias": b}, ...]}``), the
  loss called point by point or vectorized.

**Correct gradients**: the status must be ``passed``.  None of these losses is random or
writes into its input, so the only blocking hazard that can be true is ``unresolved`` (a
parameter's whole gradient within the tolerance of zero, :func:`declined`): allowed in
float32, where a saturated layer's gradients can fall below what float32 resolves, and
counted as wrong in float64.

**Planted bugs** (:data:`BUGS`, every kind of the catalogue, rotating over the same problems):
the status must be ``failed`` whenever the bug is larger than what the result says it can
resolve, unless the bug lies only at elements the result accepted as kinks, within the
tolerance it states for them (:func:`at_stated_kinks`).  The bug's size is
``max |buggy - correct| / max |correct|`` over each parameter (the largest over
parameters); the stated resolution is the precision hazard's "errors below ~X of
a parameter's gradient scale cannot be resolved" for float32, and 0 for float64 (which states
no limit, so every float64 miss counts).

**Seed stability** (issue 11, item 2): a subset of correct and buggy problems is checked at
:data:`STABILITY_SEEDS` seeds and must get the same status at each.

Cases the thorough set found are fixed, each with its minimal reproducer as a test of its
own; a case found later would be pinned as a strict xfail beside its reproducer, so the
suite stays green and the case stays visible.

Cost: 1000 problems, ~2400 checks, ~55 s of CPU (~30 s with ``-n 2`` on two idle cores).
``GRADCHECK_HYPOTHESIS_PROFILE=thorough`` draws 10x more; ``GRADCHECK_STRESS_PROBLEMS=N``
draws N.  ``python tests/test_stress.py`` prints the counts ``docs/verdict.rst`` quotes.
"""

from __future__ import annotations

import math
import os
import re
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass, replace
from functools import cache
from typing import Any

import numpy as np
import pytest
from hypothesis import Phase, given, settings
from hypothesis import strategies as st

import gradcheck
from gradcheck.model.activations import ACTIVATIONS, Activation
from gradcheck.model.losses import LOSSES
from gradcheck.model.network import Network, random_data
from gradcheck.problem.space import ParameterSpace
from gradcheck.verdict.jitter import sees_float32_parameters

Params = dict[str, np.ndarray]

THOROUGH = os.environ.get("GRADCHECK_HYPOTHESIS_PROFILE") == "thorough"
#: Problems drawn: each is checked once correct and once with a planted bug.
N_PROBLEMS = int(os.environ.get("GRADCHECK_STRESS_PROBLEMS", 10_000 if THOROUGH else 1000))
#: Problems per test item, so that ``pytest -n 2`` shares them out.
CHUNK = 100
#: Seeds each problem of the stability subset is checked at.
STABILITY_SEEDS = range(10)
#: Base of every problem's seed: problem ``i`` is drawn from ``default_rng([BASE_SEED, i])``.
BASE_SEED = 11


# -- the grid -----------------------------------------------------------------------------------
#: (activation, derivative style, regime), rotated over the problems.
FAMILIES: tuple[tuple[str, str, str], ...] = (
    ("sigmoid", "stable", "ordinary"),
    ("sigmoid", "textbook", "ordinary"),
    ("tanh", "stable", "ordinary"),
    ("tanh", "textbook", "ordinary"),
    ("sigmoid", "stable", "saturated"),
    ("sigmoid", "textbook", "saturated"),
    ("tanh", "stable", "saturated"),
    ("tanh", "textbook", "saturated"),
    ("relu", "stable", "ordinary"),
    ("relu", "stable", "near-kink"),
    ("identity", "stable", "ordinary"),
)
LOSS_SCALES = (1.0, 1e6, 1e-6)
#: Largest spread of a saturated unit's pre-activation over the samples (see :func:`_saturate`).
SATURATION_SPREAD = 1.0
#: Smallest ``1 - a`` of a saturated unit, by dtype: where the dtype still resolves the gradient.
SATURATION_FLOOR = {"float64": 1e-10, "float32": 1e-4}
#: Smallest relu pre-activation, relative to ``1 + rms(z)`` of its layer, near a kink...
KINK_MARGINS = (1e-3, 1e-2)
#: ...and away from one (ordinary relu problems).
ORDINARY_MARGIN = 1e-2
#: Draws of a problem's parameters and data before its regime must hold (a relu network of
#: three layers, no biases and six samples can take 80 draws to keep every unit off its kink).
ATTEMPTS = 500

#: Textbook derivatives, written from the output ``a`` as a learner writes them.
TEXTBOOK: dict[str, Activation] = {
    "sigmoid": Activation("sigmoid", ACTIVATIONS["sigmoid"].forward, lambda z, a: a * (1 - a)),
    "tanh": Activation("tanh", ACTIVATIONS["tanh"].forward, lambda z, a: 1 - a**2),
}


@dataclass(frozen=True)
class Spec:
    """One drawn problem, in words: enough to rebuild it and to read a failure."""

    index: int
    family: tuple[str, str, str]
    sizes: tuple[int, ...]
    activations: tuple[str, ...]
    loss: str
    bias: bool
    dtype: str
    n_samples: int
    loss_scale: float
    tree: bool
    vectorized: bool

    @property
    def derivative(self) -> str:
        return self.family[1]

    @property
    def regime(self) -> str:
        return self.family[2]

    def network(self) -> Network:
        return Network(self.sizes, self.activations, self.loss, self.bias)


def draw_spec(index: int) -> Spec:
    """Problem ``index`` of the grid: its family rotates, everything else is drawn."""
    rng = np.random.default_rng([BASE_SEED, index])
    family = FAMILIES[index % len(FAMILIES)]
    activation, _, regime = family
    loss = ("half_sse", "mse", "cross_entropy")[rng.integers(3)]
    depth = int(rng.choice([1, 2, 3], p=[0.25, 0.6, 0.15]))
    if loss == "cross_entropy" or regime == "near-kink":
        depth = max(depth, 2)  # the family's activation must sit in a hidden layer
    sizes = [int(s) for s in rng.integers(2, 7, size=depth + 1)]
    if rng.random() < 0.5:  # a square weight, so that a transposed gradient fits its shape
        k = int(rng.integers(depth))
        sizes[k + 1] = sizes[k]
    if loss == "cross_entropy":
        output = "softmax"
    elif regime == "near-kink":
        output = "identity"
    else:
        output = (activation, "identity", "sigmoid", "tanh")[rng.integers(4)]
    # A batch as wide as the last layer's input, half the time: a per-sample delta then fits
    # the last weight's shape (the seed question's accident).
    n_samples = sizes[-2] if rng.random() < 0.5 else int(rng.integers(1, 7))
    return Spec(
        index=index,
        family=family,
        sizes=tuple(sizes),
        activations=(activation,) * (depth - 1) + (output,),
        loss=loss,
        bias=bool(regime != "ordinary" or rng.random() < 0.8),
        dtype=("float64", "float32")[int(rng.random() < 0.4)],
        n_samples=n_samples,
        loss_scale=LOSS_SCALES[rng.integers(3)],
        tree=bool(rng.random() < 0.3),
        vectorized=bool(rng.random() < 0.85),
    )


# -- parameters and data ------------------------------------------------------------------------
def _pre_activation(net: Network, params: Params, x: np.ndarray, layer: int) -> np.ndarray:
    return net.forward(params, x).z[layer]


def _saturate(spec: Spec, net: Network, params: Params, x: np.ndarray, rng: Any) -> float:
    """Saturate some sigmoid/tanh layers, every unit and every sample of each together.

    A chosen layer gets a level ``1 - |a|`` (log-uniform from the dtype's floor to 1e-2), each
    unit a level up to ``e`` times less saturated; the weights into a unit are scaled so that
    its pre-activation spreads over at most :data:`SATURATION_SPREAD` across the samples, and its
    bias puts the most extreme sample at the level.  So a whole parameter's gradient passes
    through ``1 - a`` near the level (a textbook derivative keeps ``-log10(level / eps)`` digits
    of it), not just one sample's share.  Returns the smallest level set.
    """
    floor = SATURATION_FLOOR[spec.dtype]
    smallest = 1.0
    layers = [i for i, a in enumerate(net.activations) if a in ("sigmoid", "tanh")]
    chosen = [i for i in layers if rng.random() < 0.7] or layers[-1:]
    for i in chosen:
        weight, bias = f"weight{i + 1}", f"bias{i + 1}"
        inputs = net.forward(params, x).a_prev[i]
        spread = np.ptp(inputs @ params[weight], axis=0)
        params[weight] = params[weight] * np.minimum(1.0, SATURATION_SPREAD / (spread + 1e-300))
        u = inputs @ params[weight]  # the pre-activation without the bias
        units = u.shape[1]
        layer_level = np.exp(rng.uniform(np.log(floor), np.log(1e-2)))
        level = np.minimum(layer_level * np.exp(rng.uniform(0, 1, size=units)), 1e-2)
        if net.activations[i] == "sigmoid":
            reach = np.log((1 - level) / level)  # sigmoid(reach) = 1 - level
        else:
            reach = np.arctanh(1 - level)
        up = rng.random(units) < 0.5
        extreme = np.where(up, u.max(axis=0), u.min(axis=0))
        params[bias] = np.where(up, reach, -reach) - extreme
        smallest = min(smallest, float(level.min()))
    return smallest


def _relu_margin(net: Network, params: Params, x: np.ndarray) -> float:
    """Smallest ``|z| / (1 + rms(z))`` over the relu layers (inf without one)."""
    forward = net.forward(params, x)
    margins = [
        float(np.min(np.abs(z)) / (1 + np.sqrt(np.mean(z**2))))
        for name, z in zip(net.activations, forward.z, strict=True)
        if name == "relu"
    ]
    return min(margins, default=math.inf)


def _near_kink(net: Network, params: Params, x: np.ndarray, rng: Any) -> bool:
    """One relu unit of one sample at a drawn margin from its kink; False if another is closer."""
    margin = float(np.exp(rng.uniform(*np.log(KINK_MARGINS))))
    for i, name in enumerate(net.activations):
        if name != "relu":
            continue
        z = _pre_activation(net, params, x, i)
        sample, unit = int(rng.integers(z.shape[0])), int(rng.integers(z.shape[1]))
        target = margin * (1 + np.sqrt(np.mean(z**2))) * rng.choice([-1.0, 1.0])
        params[f"bias{i + 1}"][unit] += target - z[sample, unit]
    return _relu_margin(net, params, x) >= 0.99 * margin


@dataclass(frozen=True, eq=False)
class Problem:
    """A spec made concrete: network, parameters (float64 and in the problem's dtype), data."""

    spec: Spec
    network: Network
    params: Params
    x: np.ndarray
    y: np.ndarray
    level: float  # 1 - |a| of the most saturated unit, or the smallest relu margin

    @property
    def dtype(self) -> np.dtype[Any]:
        return np.dtype(self.spec.dtype)


@cache
def build(index: int) -> Problem:
    """Problem ``index``: redrawn (a few times at most) until its regime holds."""
    spec = draw_spec(index)
    net = spec.network()
    for attempt in range(ATTEMPTS):
        rng = np.random.default_rng([BASE_SEED, index, attempt])
        params = net.init_params(rng, scale=float(np.exp(rng.uniform(np.log(0.5), np.log(2)))))
        x, y = random_data(net, spec.n_samples, rng)
        level = _relu_margin(net, params, x)
        if spec.regime == "saturated":
            level = _saturate(spec, net, params, x, rng)
        elif spec.regime == "near-kink":
            if not _near_kink(net, params, x, rng):
                continue
            level = _relu_margin(net, params, x)
        elif level < ORDINARY_MARGIN:
            continue
        dtype = spec.dtype
        narrow = {k: v.astype(dtype) for k, v in params.items()}
        return Problem(spec, net, narrow, x.astype(dtype), y.astype(dtype), level)
    raise AssertionError(f"no problem drawn for {spec}")


# -- gradients: correct and with a planted bug -----------------------------------------------
#: Every kind of bug in the catalogue (``gradcheck run``'s planted bugs, and more).
BUGS: tuple[str, ...] = (
    "sign-flip",  # delta = y - a for a - y
    "factor",  # every element times 1 + 1e-4
    "per-sample-delta",  # the last layer's delta returned as its dW (shapes match by accident)
    "mean-for-sum",  # averaged over samples where the loss sums
    "one-element",  # one element off by 1e-3 of the largest gradient
    "float32-backprop",  # backprop silently in float32 on a float64 problem
    "zeroed",  # one parameter's gradient left at zero
    "transposed",  # a square weight's gradient transposed
)
FACTOR = 1 + 1e-4
ONE_ELEMENT = 1e-3


def _activation(name: str, style: str) -> Activation:
    return TEXTBOOK[name] if style == "textbook" and name in TEXTBOOK else ACTIVATIONS[name]


def _square_layer(net: Network) -> int | None:
    """The first layer whose weight is square (and more than one element), if any."""
    for layer, (fan_in, fan_out) in enumerate(zip(net.sizes, net.sizes[1:], strict=False), 1):
        if fan_in == fan_out > 1:
            return layer
    return None


def backprop(problem: Problem, params: Params, bug: str = "") -> Params:
    """The backward pass written out (textbook derivatives if the spec says so), ``bug`` planted."""
    net, x, y = problem.network, problem.x, problem.y
    if bug == "float32-backprop":
        params = {k: v.astype(np.float32) for k, v in params.items()}
        x, y = x.astype(np.float32), y.astype(np.float32)
    forward = net.forward(params, x)
    acts = [_activation(name, problem.spec.derivative) for name in net.activations]
    delta = LOSSES[net.loss].delta(forward.z[-1], forward.output, y, acts[-1])  # dL/dz_L
    if bug == "sign-flip":
        delta = -delta
    elif bug == "mean-for-sum":
        delta = delta / len(x)
    grads: Params = {}
    for i in reversed(range(net.n_layers)):
        layer, a_prev = i + 1, forward.a_prev[i]
        grads[f"weight{layer}"] = a_prev.T @ delta  # dL/dW_l = a_{l-1}^T delta_l
        if bug == "transposed" and layer == _square_layer(net):
            grads[f"weight{layer}"] = delta.T @ a_prev
        if bug == "per-sample-delta" and layer == net.n_layers:
            grads[f"weight{layer}"] = delta
        if net.bias:
            grads[f"bias{layer}"] = delta.sum(axis=0)
        if i > 0:  # delta_{l-1} = (delta_l W_l^T) * sigma'(z_{l-1})
            derivative = acts[i - 1].derivative
            assert derivative is not None
            sigma_prime = derivative(forward.z[i - 1], forward.a[i - 1])
            delta = (delta @ params[f"weight{layer}"].T) * sigma_prime
    return {name: grads[name].astype(problem.dtype) for name in net.param_shapes()}


def applicable_bugs(problem: Problem) -> tuple[str, ...]:
    """The bugs that fit the problem's shapes and dtype (a wrong shape is not a silent bug)."""
    spec, net = problem.spec, problem.network
    fits = {
        "per-sample-delta": spec.n_samples == spec.sizes[-2],
        "float32-backprop": spec.dtype == "float64",
        "transposed": _square_layer(net) is not None,
    }
    return tuple(bug for bug in BUGS if fits.get(bug, True))


@dataclass(frozen=True)
class Planted:
    """The bug planted in a problem, and where (for the bugs that pick a parameter)."""

    bug: str
    parameter: str = ""
    element: int = 0


@cache
def planted(index: int) -> Planted:
    """The bug of problem ``index``: the kinds rotate, the place is drawn."""
    problem = build(index)
    bugs = applicable_bugs(problem)
    bug = bugs[(index // len(FAMILIES)) % len(bugs)]
    rng = np.random.default_rng([BASE_SEED, index, len(BUGS)])
    correct = backprop(problem, problem.params)
    names = [name for name, g in correct.items() if np.any(g)] or list(correct)
    name = names[rng.integers(len(names))]
    return Planted(bug, name, int(rng.integers(correct[name].size)))


def gradient(problem: Problem, params: Params, plant: Planted | None) -> Params:
    """The correct gradient, or the one with ``plant``'s bug."""
    grads = backprop(problem, params, plant.bug if plant else "")
    if plant is None:
        return grads
    if plant.bug == "factor":
        grads = {k: v * problem.dtype.type(FACTOR) for k, v in grads.items()}
    elif plant.bug == "zeroed":
        grads[plant.parameter] = np.zeros_like(grads[plant.parameter])
    elif plant.bug == "one-element":
        largest = max(float(np.max(np.abs(g))) for g in grads.values())
        wrong = grads[plant.parameter].copy()
        wrong.flat[plant.element] += ONE_ELEMENT * largest
        grads[plant.parameter] = wrong
    return grads


def as_tree(spec: Spec, params: Params) -> Any:
    """``params`` in the spec's structure: a flat dict, or ``{"layers": [{"weight", "bias"}]}``."""
    if not spec.tree:
        return dict(params)
    layers = [
        {
            kind: params[f"{kind}{layer}"]
            for kind in ("weight", "bias")
            if f"{kind}{layer}" in params
        }
        for layer in range(1, len(spec.sizes))
    ]
    return {"layers": layers}


def as_dict(tree: Any) -> Params:
    if "layers" not in tree:
        return dict(tree)
    return {
        f"{kind}{i}": v for i, layer in enumerate(tree["layers"], 1) for kind, v in layer.items()
    }


def functions(problem: Problem, plant: Planted | None) -> tuple[Callable, Callable, Any]:
    """``(loss, grad, params)`` as a user hands them to :func:`gradcheck.check`."""
    spec, net = problem.spec, problem.network
    scale = spec.loss_scale
    if spec.vectorized:  # a stack of flat vectors, in tree order (= the network's order)
        batched = net.vectorized_loss(problem.x, problem.y)

        def loss(thetas: np.ndarray) -> Any:
            return scale * batched(thetas)

    else:
        bound, _ = net.functions(problem.x, problem.y)

        def loss(tree: Any) -> Any:
            return scale * bound(as_dict(tree))

    def grad(tree: Any) -> Any:
        grads = gradient(problem, as_dict(tree), plant)
        return as_tree(spec, {k: v * problem.dtype.type(scale) for k, v in grads.items()})

    return loss, grad, as_tree(spec, problem.params)


# -- checking and judging -----------------------------------------------------------------------
_RESOLUTION = re.compile(r"errors below ~(\S+) of a parameter's gradient scale")


def stated_resolution(result: gradcheck.CheckResult) -> float:
    """What the result says it cannot resolve, relative to a parameter's gradient scale."""
    for hazard in result.hazards:
        if hazard.kind == "precision":
            found = _RESOLUTION.search(hazard.message)
            assert found, hazard.message
            return float(found.group(1))
    return 0.0


def bug_size(correct: Params, buggy: Params) -> float:
    """``max |buggy - correct| / max |correct|`` per parameter, the largest over parameters."""
    sizes = []
    for name, good in correct.items():
        good64, bad64 = good.astype(np.float64), buggy[name].astype(np.float64)
        scale, diff = float(np.max(np.abs(good64))), float(np.max(np.abs(bad64 - good64)))
        sizes.append(diff / scale if scale > 0 else (math.inf if diff > 0 else 0.0))
    return max(sizes)


def declined(result: gradcheck.CheckResult) -> bool:
    """Inconclusive only because a parameter's whole gradient is within tolerance of zero."""
    blocking = [h for h in result.hazards if h.blocking]
    return bool(blocking) and all(h.kind == "unresolved" for h in blocking)


def at_stated_kinks(
    result: gradcheck.CheckResult, correct: Params, buggy: Params, scale: float
) -> bool:
    """Whether the bug (in gradients of the loss times ``scale``) is only at elements the
    result accepted as kinks, within the tolerance it states for them (a kinked element is
    checked only to its one-sided slopes' error)."""
    found = False
    for checked, name in zip(result.parameters, correct, strict=True):  # same order
        diff = scale * np.abs(buggy[name].astype(np.float64) - correct[name].astype(np.float64))
        wrong = diff > 0
        if not wrong.any():
            continue
        kinks = checked.kink_mask if checked.kink_mask is not None else np.zeros_like(wrong)
        if not np.all(kinks[wrong]) or np.any(diff[wrong] > checked.tolerance[wrong]):
            return False
        found = True
    return found


@dataclass(frozen=True)
class Outcome:
    """One check of the stress set, judged."""

    index: int
    bug: str  # "" for the correct gradient
    status: str
    size: float  # the bug's relative size (0 for the correct gradient)
    resolution: float  # what the result says it cannot resolve
    declined: bool = False  # inconclusive: a parameter the dtype cannot resolve (see above)
    text: str = ""  # str(result) when the outcome is wrong

    @property
    def wrong(self) -> bool:
        """A false alarm (correct: not passed) or a miss (buggy: not failed, above resolution).

        Declining a verdict (``inconclusive``, a parameter's whole gradient within the
        tolerance of zero) is neither, in float32, where it happens: there the dtype cannot
        resolve such a gradient.  In float64 it counts as wrong.
        """
        if self.declined and build(self.index).spec.dtype == "float32":
            return False
        if not self.bug:
            return self.status != "passed"
        return self.status != "failed" and self.size > self.resolution

    def describe(self) -> str:
        what = f"bug {self.bug} (size {self.size:.3g}, resolution {self.resolution:.3g})"
        head = f"#{self.index} {what if self.bug else 'correct'}: {self.status}"
        return f"{head}\n  {build(self.index).spec}\n{self.text}"


def run(index: int, buggy: bool, **options: Any) -> Outcome:
    """Check problem ``index``, correct or with its planted bug, in ``mode="full"``."""
    problem = build(index)
    plant = planted(index) if buggy else None
    loss, grad, params = functions(problem, plant)
    result = gradcheck.check(
        loss, grad, params, mode="full", vectorized=problem.spec.vectorized, **options
    )
    size = 0.0
    if plant is not None:
        correct = backprop(problem, problem.params)
        buggy = gradient(problem, problem.params, plant)
        scale = problem.spec.loss_scale  # the checked functions are scaled; these are not
        kinked = at_stated_kinks(result, correct, buggy, scale)
        size = 0.0 if kinked else bug_size(correct, buggy)
    bug = plant.bug if plant else ""
    outcome = Outcome(index, bug, result.status, size, stated_resolution(result), declined(result))
    return replace(outcome, text=str(result)) if outcome.wrong else outcome


def chunk_indices(chunk: int) -> range:
    return range(chunk * CHUNK, min((chunk + 1) * CHUNK, N_PROBLEMS))


# -- cases found by the thorough set --------------------------------------------------------
# ``GRADCHECK_STRESS_PROBLEMS=10000`` (the thorough set) once found 6 false alarms and 10
# misses; each was fixed and has its minimal reproducer below (the frozen textbook tanh, the
# float32 relu near its kink, the parameters far below the largest gradient).  It now finds
# none: 10 000 correct problems passed, no planted bug missed above the stated resolution.  A
# case found later is pinned the same way: a strict xfail beside its reproducer.


# -- the tests ----------------------------------------------------------------------------------
CHUNKS = range(math.ceil(N_PROBLEMS / CHUNK))


def _wrong(outcomes: list[Outcome]) -> str:
    return "\n\n".join(o.describe() for o in outcomes if o.wrong)


@pytest.mark.parametrize("chunk", CHUNKS)
def test_correct_gradients_never_fail(chunk: int) -> None:
    outcomes = [run(i, buggy=False) for i in chunk_indices(chunk)]
    assert not any(o.wrong for o in outcomes), _wrong(outcomes)


@pytest.mark.parametrize("chunk", CHUNKS)
def test_planted_bugs_fail_above_the_stated_resolution(chunk: int) -> None:
    outcomes = [run(i, buggy=True) for i in chunk_indices(chunk)]
    assert not any(o.wrong for o in outcomes), _wrong(outcomes)


#: A one-layer tanh network, 2 samples, |z| ~ 11 (1 - |a| ~ 5e-10), whose hand-written
#: ``(a - y) * (1 - a**2)`` is right to ~5e-8 (sech(z)**2 gives the exact slope).
FROZEN_X = [[-1.0512243535238837, -0.3619874275365686], [0.8116259196764026, -1.2512308147872921]]
FROZEN_Y = [[-1.2758971463181288, 1.073779434785835], [1.1801655972128011, 1.7434452131360432]]
FROZEN_W = [
    [-0.053061610655745585, 0.28432639231360624],
    [0.16068872975536427, 0.07134128038536947],
]
FROZEN_B = [-10.94458458647899, 11.371117085449232]


def test_a_textbook_tanh_output_at_saturation_passes_at_every_seed() -> None:
    """Seed 0 used to fail it (every element, ``|error|`` 9.1e-17 against a tolerance of
    1.4e-19): the float32 probe of the jitter compared two points half a float32 ulp apart
    at random, too close for this saturated gradient to change, took the correct float64
    backward pass for a float32 one and gave it no jitter room.  The probe's two points
    now lie ~0.9 float32 ulp apart (``float32_cell_ends``)."""
    x, y = np.array(FROZEN_X), np.array(FROZEN_Y)
    params = {"W": np.array(FROZEN_W), "b": np.array(FROZEN_B)}

    def loss(p: Params) -> Any:
        return 0.5 * np.sum((np.tanh(x @ p["W"] + p["b"]) - y) ** 2)

    def textbook(p: Params) -> Params:
        a = np.tanh(x @ p["W"] + p["b"])
        delta = (a - y) * (1 - a**2)
        return {"W": x.T @ delta, "b": delta.sum(axis=0)}

    statuses = [gradcheck.check(loss, textbook, params, rng=seed).status for seed in range(10)]
    assert statuses == ["passed"] * 10, statuses


def test_the_float32_probe_does_not_take_the_saturated_tanh_for_a_float32_backward_pass() -> None:
    """The cause of the reproducer above: at 200 seeds, the probe's two points never give
    this saturated float64 gradient bit for bit (two points half a float32 ulp apart at
    random did, at ~1 seed in 50), while a backward pass that casts its parameters to
    float32 is recognised at every seed."""
    x, y = np.array(FROZEN_X), np.array(FROZEN_Y)

    def textbook(p: Params) -> Params:
        a = np.tanh(x @ p["W"] + p["b"])
        delta = (a - y) * (1 - a**2)
        return {"W": x.T @ delta, "b": delta.sum(axis=0)}

    def narrow(p: Params) -> Params:
        return textbook({k: v.astype(np.float32).astype(np.float64) for k, v in p.items()})

    space = ParameterSpace({"W": np.array(FROZEN_W), "b": np.array(FROZEN_B)})
    fooled = [
        s for s in range(200) if sees_float32_parameters(textbook, space, np.random.default_rng(s))
    ]
    assert fooled == []
    assert all(sees_float32_parameters(narrow, space, np.random.default_rng(s)) for s in range(20))


#: A 6-2-1 relu network in float32, one sample: hidden unit 1 sits at z = 0.0035 (1.7e-3 of
#: 1 + rms(z)) from its kink (found at #3100, shrunk).
STRADDLED_X = [[1.9902713, -0.15515548, -0.73036057, 0.08632212, 2.2404630, -1.6151351]]
STRADDLED_Y = [[0.52957624]]


def _straddled_params() -> Params:
    rng = np.random.default_rng(3100)  # anything but unit 1 is incidental: drawn
    w1 = rng.standard_normal((6, 2)).astype(np.float32)
    w1[:, 1] = [-0.13418494, 0.13636112, -0.09926262, -0.55455464, 0.10595533, 0.79116672]
    x = np.array(STRADDLED_X, np.float32)
    b1 = np.array([0.1, 0.0035], np.float32) - np.array([0.0, (x @ w1)[0, 1]], np.float32)
    w2 = np.array([[-1.6888938], [1.8017184]], np.float32)
    return {"weight1": w1, "bias1": b1, "weight2": w2, "bias2": np.array([0.1], np.float32)}


@pytest.mark.parametrize(("bug", "passed"), [(1.0, True), (1.05, False)], ids=["correct", "5%"])
def test_a_float32_relu_unit_near_its_kink_passes(bug: float, passed: bool) -> None:
    """Seeds 0 (the default), 5 and 6 used to fail it: ``weight1[4, 1]`` analytic -40.769
    (the unit is active), reference -21.92 (Richardson, straddling the kink at 0.3 of a
    step), ``|error|`` 18.8 against a tolerance of 1.79.  The kink test now also accepts a
    kink within a step on one side when the other side's slopes are clean and the analytic
    value matches them; a 5% error of the unit's column still fails at every seed."""
    x, y = np.array(STRADDLED_X, np.float32), np.array(STRADDLED_Y, np.float32)

    def loss(p: Params) -> Any:
        z = x @ p["weight1"] + p["bias1"]
        return 0.5 * np.sum((np.where(z.real > 0, z, 0) @ p["weight2"] + p["bias2"] - y) ** 2)

    def grad(p: Params) -> Params:
        z = x @ p["weight1"] + p["bias1"]
        h = np.maximum(z, 0)
        delta2 = h @ p["weight2"] + p["bias2"] - y
        delta1 = (delta2 @ p["weight2"].T) * (z > 0)
        return {
            "weight1": x.T @ delta1 * np.array([1.0, bug], np.float32),
            "bias1": delta1.sum(0),
            "weight2": h.T @ delta2,
            "bias2": delta2.sum(0),
        }

    params = _straddled_params()
    assert abs((x @ params["weight1"] + params["bias1"])[0, 1] - 0.0035) < 1e-6
    statuses = [gradcheck.check(loss, grad, params, rng=seed).status for seed in range(10)]
    assert statuses == ["passed" if passed else "failed"] * 10, statuses


def test_float64_a_parameter_far_below_the_largest_gradient_is_still_checked() -> None:
    """``b``'s gradient is 1e-12, ``w``'s up to 4: tolerance 2.9e-10, so zeroing it passes.

    The complex step has ``b``'s derivative to the last digit (error 0); finite differences of
    a loss of ~5 cannot see it.  Either verdict is honest, failed or an unresolved hazard, but
    not a silent pass.
    """
    params = {"w": np.array([1.0, 2.0]), "b": np.array([0.5])}

    def loss(p: Params) -> Any:
        return np.sum(p["w"] ** 2) + 1e-12 * np.sum(p["b"])

    def zeroed(p: Params) -> Params:
        return {"w": 2 * p["w"], "b": np.zeros(1)}

    result = gradcheck.check(loss, zeroed, params, mode="full")
    assert not result.passed, str(result)


def test_float32_a_parameter_far_below_the_largest_gradient_is_not_passed_silently() -> None:
    """``b``'s gradient is 1, ``w``'s up to 4e4: a zeroed ``b`` gets a tolerance of ~1.8.

    It used to pass, with a precision hazard stating a resolution of ~2 times ``b``'s whole
    gradient.  Now its whole gradient within the tolerance of zero is an ``unresolved``
    hazard that blocks the verdict: ``inconclusive``, with the remedy (float64).
    """
    params = {"w": np.array([1.0, 2.0], np.float32), "b": np.array([0.5], np.float32)}

    def loss(p: Params) -> Any:
        return 1e4 * np.sum(p["w"] ** 2) + p["b"][0]

    def correct(p: Params) -> Params:
        return {"w": 2e4 * p["w"], "b": np.ones(1, np.float32)}

    def zeroed(p: Params) -> Params:
        return {"w": 2e4 * p["w"], "b": np.zeros(1, np.float32)}

    right = gradcheck.check(loss, correct, params, mode="full")
    assert right.passed and stated_resolution(right) <= 1, str(right)
    wrong = gradcheck.check(loss, zeroed, params, mode="full")
    assert wrong.status == "inconclusive" and declined(wrong), str(wrong)
    assert "b: its analytic and reference gradients" in str(wrong) and "float64" in str(wrong)


@settings(phases=[Phase.explicit, Phase.reuse, Phase.generate])  # shrinking an index: no use
@given(index=st.integers(min_value=N_PROBLEMS, max_value=2**32 - 1))
def test_any_problem_of_the_grid_gets_its_verdict(index: int) -> None:
    """Problems beyond the loop's range: new ones at every thorough run (not derandomized)."""
    for buggy in (False, True):
        outcome = run(index, buggy)
        assert not outcome.wrong, outcome.describe()


def stability_set() -> list[int]:
    """The first problem of every family in each dtype (more under the thorough profile)."""
    wanted = 10 if THOROUGH else 1
    seen: Counter[tuple[tuple[str, str, str], str]] = Counter()
    chosen = []
    for i in range(N_PROBLEMS):
        key = (draw_spec(i).family, draw_spec(i).dtype)
        if seen[key] < wanted:
            seen[key] += 1
            chosen.append(i)
    return chosen


@pytest.mark.parametrize("buggy", [False, True], ids=["correct", "buggy"])
@pytest.mark.parametrize("index", stability_set())
def test_the_status_is_the_same_at_every_seed(index: int, buggy: bool) -> None:
    outcomes = [run(index, buggy, rng=seed) for seed in STABILITY_SEEDS]
    statuses = Counter(o.status for o in outcomes)
    assert len(statuses) == 1, f"{dict(statuses)}\n{build(index).spec}\n" + "\n".join(
        f"seed {seed}: {o.status}" for seed, o in zip(STABILITY_SEEDS, outcomes, strict=True)
    )


def test_the_grid_covers_every_family_dtype_loss_scale_structure_and_bug() -> None:
    specs = [draw_spec(i) for i in range(N_PROBLEMS)]
    assert Counter(s.family for s in specs).keys() == set(FAMILIES)
    combos = Counter((s.family, s.dtype) for s in specs)
    assert len(combos) == 2 * len(FAMILIES) and min(combos.values()) >= 25, combos
    assert {s.loss for s in specs} == set(LOSSES)
    assert {s.loss_scale for s in specs} == set(LOSS_SCALES)
    assert {(s.tree, s.vectorized) for s in specs} == {(t, v) for t in (0, 1) for v in (0, 1)}
    bugs = Counter(planted(i).bug for i in range(N_PROBLEMS))
    assert bugs.keys() == set(BUGS) and min(bugs.values()) >= N_PROBLEMS // 20, bugs
    for i in range(0, N_PROBLEMS, 10):  # the regimes hold where they are claimed
        problem = build(i)
        if problem.spec.regime == "saturated":
            assert SATURATION_FLOOR[problem.spec.dtype] <= problem.level <= 1e-2
        elif problem.spec.regime == "near-kink":
            # (the unit was placed against its layer's rms before the move, hence the slack)
            assert KINK_MARGINS[0] * 0.99 <= problem.level <= KINK_MARGINS[1] * 1.5
    deepest = min(build(i).level for i in range(N_PROBLEMS) if build(i).spec.regime == "saturated")
    assert deepest < 2 * SATURATION_FLOOR["float64"]


def main() -> None:
    """Every problem, correct and buggy, with the counts (``python tests/test_stress.py``)."""
    import time

    started = time.perf_counter()
    outcomes: list[Outcome] = []
    for i in range(N_PROBLEMS):
        now = [run(i, buggy) for buggy in (False, True)]
        outcomes += now
        for outcome in now:
            if outcome.wrong:
                print(outcome.describe(), flush=True)
        if (i + 1) % 1000 == 0:
            wrong = sum(o.wrong for o in outcomes)
            print(f"{i + 1} problems, {wrong} wrong, {time.perf_counter() - started:.0f} s")
    correct = [o for o in outcomes if not o.bug]
    bugs = [o for o in outcomes if o.bug]
    print(f"{len(correct)} correct problems: {dict(Counter(o.status for o in correct))}")
    print(f"{len(bugs)} planted bugs: {dict(Counter(o.status for o in bugs))}")
    print(f"  by kind: {dict(Counter(o.bug for o in bugs))}")
    passed = [o for o in bugs if o.status != "failed"]
    below = Counter(
        "no change" if o.size == 0 else f"{o.bug} {build(o.index).spec.dtype}"
        for o in passed
        if not o.wrong
    )
    print(f"  {len(passed)} not failed, {sum(o.wrong for o in passed)} above the stated resolution")
    print(f"  below it: {dict(below)}")
    absurd = sorted({(o.index, o.resolution) for o in outcomes if o.resolution > 1})
    n_float32 = sum(build(i).spec.dtype == "float32" for i in range(N_PROBLEMS))
    print(
        f"  stated resolution above 1: {len({i for i, _ in absurd})} of {n_float32} float32 "
        f"problems, up to {max((r for _, r in absurd), default=0):.2g}"
    )
    declines = Counter(
        f"{'buggy' if o.bug else 'correct'} {build(o.index).spec.dtype}"
        for o in outcomes
        if o.declined
    )
    print(f"  inconclusive (a parameter within tolerance of zero): {dict(declines)}")
    print(f"  wrong: {[(o.index, o.bug or 'correct') for o in outcomes if o.wrong]}")
    print(f"{time.perf_counter() - started:.1f} s")


if __name__ == "__main__":
    main()
