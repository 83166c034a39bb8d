"""Realistic bugs in small numpy layers: each is caught, and named rightly or not at all.

A wrong name sends the user hunting in the wrong place, so the rule is: the diagnosis is the
right one or "unknown", never another.  Each row is a layer as people write it, with
``loss = sum(out * R)`` (a fixed random upstream gradient) or a real loss, and one bug.
``right`` is the name the bug deserves (None: no pattern gradcheck knows describes it);
``named`` says whether gradcheck gives that name today, so a name lost or a name gained
shows up here.  Look-alikes of each name sit in the table too, with ``right=None`` or
another name: a pattern must not fire on them.

Cost: 37 small checks, ~3 s on one core.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pytest

import gradcheck

Params = Any
Built = tuple[Callable[[Params], Any], Callable[[Params], Any], Params, dict[str, Any]]

RNG = np.random.default_rng(11)


def draw(*shape: int, scale: float = 1.0) -> np.ndarray:
    return RNG.standard_normal(shape) * scale


def softmax(z: np.ndarray) -> np.ndarray:
    e = np.exp(z - z.max(axis=-1, keepdims=True))
    return e / e.sum(axis=-1, keepdims=True)


# -- linear and piecewise-linear layers: the true gradient does not move --------------------
def transposed_weight() -> Built:
    x, w, r = draw(4, 3), draw(3, 3), draw(4, 3)
    return (lambda p: np.sum((x @ p) * r)), (lambda p: (x.T @ r).T), w, {}


def transposed_weight_in_dx() -> Built:
    x, w, r = draw(4, 3), draw(3, 3), draw(4, 3)

    def grad(p: Params) -> Params:
        return {"x": r @ p["w"], "w": p["x"].T @ r}  # r @ w.T belongs in dx

    return (lambda p: np.sum((p["x"] @ p["w"]) * r)), grad, {"x": x, "w": w}, {}


CONV_STRIDE, CONV_OUT = 2, 5


def conv1d(x: np.ndarray, w: np.ndarray) -> np.ndarray:
    k = len(w)
    return np.array([w @ x[CONV_STRIDE * i : CONV_STRIDE * i + k] for i in range(CONV_OUT)])


def conv1d_backward(x: np.ndarray, w: np.ndarray, r: np.ndarray, stride: int) -> Params:
    dx, dw, k = np.zeros_like(x), np.zeros_like(w), len(w)
    for i in range(CONV_OUT):
        dx[stride * i : stride * i + k] += w * r[i]
        dw += r[i] * x[stride * i : stride * i + k]
    return {"x": dx, "w": dw}


def conv_forgot_stride() -> Built:
    x, w, r = draw(11), draw(3), draw(CONV_OUT)
    loss = lambda p: np.sum(conv1d(p["x"], p["w"]) * r)  # noqa: E731
    return loss, (lambda p: conv1d_backward(p["x"], p["w"], r, 1)), {"x": x, "w": w}, {}


def conv_forgot_stride_input_only() -> Built:
    x, w, r = draw(11), draw(3), draw(CONV_OUT)
    loss = lambda p: np.sum(conv1d(p, w) * r)  # noqa: E731
    return loss, (lambda p: conv1d_backward(p, w, r, 1)["x"]), x, {}


def conv_flipped_kernel() -> Built:
    x, w, r = draw(11), draw(3), draw(CONV_OUT)

    def grad(p: Params) -> Params:
        flipped = conv1d_backward(p["x"], p["w"][::-1], r, CONV_STRIDE)
        return {"x": flipped["x"], "w": conv1d_backward(p["x"], p["w"], r, CONV_STRIDE)["w"]}

    loss = lambda p: np.sum(conv1d(p["x"], p["w"]) * r)  # noqa: E731
    return loss, grad, {"x": x, "w": w}, {}


def maxpool_assigns() -> Built:
    x, window = draw(16), 3
    r = draw(len(x) - window + 1)

    def pool(v: np.ndarray) -> np.ndarray:
        return np.array([v[i : i + window].max() for i in range(len(r))])

    def grad(v: np.ndarray) -> np.ndarray:
        dx = np.zeros_like(v)
        for i in range(len(r)):
            dx[i + int(np.argmax(v[i : i + window]))] = r[i]  # += belongs: windows overlap
        return dx

    return (lambda v: np.sum(pool(v) * r)), grad, x, {}


def upsample_slices() -> Built:
    x, r = draw(3, 4), draw(6, 8)
    loss = lambda v: np.sum(v.repeat(2, 0).repeat(2, 1) * r)  # noqa: E731
    return loss, (lambda v: r[::2, ::2].copy()), x, {}  # the sum over each 2x2 block belongs


def relu_without_dout() -> Built:
    x, r = draw(4, 5), draw(4, 5)
    loss = lambda v: np.sum(np.maximum(v, 0) * r)  # noqa: E731
    return loss, (lambda v: (v > 0).astype(float)), x, {}  # (v > 0) * r belongs


# -- normalisation ------------------------------------------------------------------------------
BN_EPS = 1e-5


def batchnorm(x: np.ndarray, eps: float, axis: int = 0) -> np.ndarray:
    mean, var = x.mean(axis, keepdims=True), x.var(axis, keepdims=True)
    return (x - mean) / np.sqrt(var + eps)


def batchnorm_backward(
    x: np.ndarray,
    dy: np.ndarray,
    eps: float,
    axis: int = 0,
    *,
    mean_term: bool = True,
    var_term: bool = True,
) -> np.ndarray:
    sigma = np.sqrt(x.var(axis, keepdims=True) + eps)
    x_hat = (x - x.mean(axis, keepdims=True)) / sigma
    dx = dy.copy()
    if mean_term:
        dx = dx - dy.mean(axis, keepdims=True)
    if var_term:
        dx = dx - x_hat * (dy * x_hat).mean(axis, keepdims=True)
    return dx / sigma


def norm_case(axis: int = 0, scale: float = 1.0, **bug: Any) -> Built:
    x, r = draw(6, 5, scale=scale), draw(6, 5)
    eps = bug.pop("eps", BN_EPS)
    loss = lambda v: np.sum(batchnorm(v, BN_EPS, axis) * r)  # noqa: E731
    return loss, (lambda v: batchnorm_backward(v, r, eps, axis, **bug)), x, {}


def batchnorm_forgot_eps() -> Built:
    return norm_case(eps=0.0)  # 1/sqrt(var) where 1/sqrt(var + eps) belongs, all float64


def batchnorm_in_float32(eps: float = BN_EPS, scale: float = 1.0) -> Built:
    x, r = draw(6, 5, scale=scale), draw(6, 5)

    def grad(v: np.ndarray) -> np.ndarray:
        low = batchnorm_backward(v.astype(np.float32), r.astype(np.float32), np.float32(eps))
        return low.astype(np.float64)

    return (lambda v: np.sum(batchnorm(v, BN_EPS) * r)), grad, x, {}


# -- factors, signs, penalties ---------------------------------------------------------------
def attention_without_scale() -> Built:
    n, d = 3, 4
    q, k, v, r = draw(n, d), draw(n, d), draw(n, d), draw(n, d)

    def loss(p: Params) -> float:
        return float(np.sum(softmax(p["q"] @ p["k"].T / np.sqrt(d)) @ p["v"] * r))

    def grad(p: Params) -> Params:
        a = softmax(p["q"] @ p["k"].T / np.sqrt(d))
        da = r @ p["v"].T
        ds = a * (da - np.sum(da * a, axis=-1, keepdims=True))  # / sqrt(d) left out
        return {"q": ds @ p["k"], "k": ds.T @ p["q"], "v": a.T @ r}

    return loss, grad, {"q": q, "k": k, "v": v}, {}


def linear_problem(n: int = 2) -> tuple[np.ndarray, np.ndarray, Params]:
    return draw(n, 3), draw(n, 4), {"w": draw(3, 4), "b": draw(4)}


def bias_averaged(layer_inputs: bool) -> Built:
    x, y, params = linear_problem()

    def grad(p: Params) -> Params:
        dz = x @ p["w"] + p["b"] - y
        return {"w": x.T @ dz, "b": dz.mean(axis=0)}  # the loss sums over samples

    loss = lambda p: 0.5 * np.sum((x @ p["w"] + p["b"] - y) ** 2)  # noqa: E731
    return loss, grad, params, {"layer_inputs": {"w": x}} if layer_inputs else {}


def l1_penalty_written_as_l2() -> Built:
    x, y, params = linear_problem(5)
    lam = 0.1

    def loss(p: Params) -> float:
        return float(0.5 * np.sum((x @ p["w"] + p["b"] - y) ** 2) + lam * np.sum(np.abs(p["w"])))

    def grad(p: Params) -> Params:
        dz = x @ p["w"] + p["b"] - y
        return {"w": x.T @ dz + 2 * lam * p["w"], "b": dz.sum(axis=0)}  # lam * sign(w) belongs

    return loss, grad, params, {}


def five_times_the_sign() -> Built:
    """A look-alike of clipping: every element at +-5, also where the true gradient is smaller
    (gradients of a few units: were every one beyond 5, this would be clipping exactly)."""
    x, y, params = linear_problem(5)
    loss = lambda p: 0.5 * np.sum((x @ p["w"] + p["b"] - y) ** 2)  # noqa: E731

    def grad(p: Params) -> Params:
        dz = x @ p["w"] + p["b"] - y
        return {"w": 5 * np.sign(x.T @ dz), "b": 5 * np.sign(dz.sum(axis=0))}

    return loss, grad, params, {}


def norm_clipped() -> Built:
    """Gradient-norm clipping to 1: a constant factor, not elements capped."""
    x, y, params = linear_problem(5)
    loss = lambda p: 0.5 * np.sum((x @ p["w"] + p["b"] - y) ** 2)  # noqa: E731

    def grad(p: Params) -> Params:
        dz = x @ p["w"] + p["b"] - y
        g = {"w": x.T @ dz, "b": dz.sum(axis=0)}
        norm = np.sqrt(sum(np.sum(v**2) for v in g.values()))
        return {k: v / norm for k, v in g.items()}

    return loss, grad, params, {}


def penalty(sign: float, scale: float) -> Built:
    x, y, params = linear_problem(5)
    lam = 0.1

    def loss(p: Params) -> float:
        return float(0.5 * np.sum((x @ p["w"] + p["b"] - y) ** 2) + lam * np.sum(p["w"] ** 2))

    def grad(p: Params) -> Params:
        dz = x @ p["w"] + p["b"] - y
        return {"w": x.T @ dz + sign * scale * lam * p["w"], "b": dz.sum(axis=0)}

    return loss, grad, params, {}


LOGISTIC_X = draw(8, 3)
LOGISTIC_Y = (RNG.random(8) > 0.5).astype(float)


def logistic(p_w: np.ndarray, p_b: Any) -> tuple[float, np.ndarray]:
    z = LOGISTIC_X @ p_w + p_b
    return float(np.mean(np.logaddexp(0, z) - LOGISTIC_Y * z)), 1 / (1 + np.exp(-z))


def logistic_sign_on_weights() -> Built:
    def grad(p: Params) -> Params:
        prob = logistic(p["w"], p["b"])[1]
        return {
            "w": LOGISTIC_X.T @ (LOGISTIC_Y - prob) / 8,  # y - p: the sign of one parameter
            "b": np.array(np.mean(prob - LOGISTIC_Y)),
        }

    loss = lambda p: logistic(p["w"], p["b"])[0]  # noqa: E731
    return loss, grad, {"w": draw(3, scale=0.5), "b": np.array(0.3)}, {}


def logistic_sign_in_one_vector() -> Built:
    def grad(v: np.ndarray) -> np.ndarray:
        prob = logistic(v[:3], v[3])[1]
        return np.append(LOGISTIC_X.T @ (LOGISTIC_Y - prob), np.sum(prob - LOGISTIC_Y)) / 8

    return (lambda v: logistic(v[:3], v[3])[0]), grad, np.append(draw(3, scale=0.5), 0.3), {}


def softmax_regression(flip_class: int | None, scale_class: float = -1.0) -> Built:
    x, labels = draw(6, 4), np.eye(3)[RNG.integers(0, 3, 6)]

    def loss(p: Params) -> float:
        logp = np.log(softmax(x @ p["w"] + p["b"]))
        return float(-np.sum(labels * logp) / 6)

    def grad(p: Params) -> Params:
        dz = (softmax(x @ p["w"] + p["b"]) - labels) / 6
        if flip_class is not None:
            dz[:, flip_class] *= scale_class  # y - p for one class: one term's sign
        return {"w": x.T @ dz, "b": dz.sum(axis=0)}

    return loss, grad, {"w": draw(4, 3), "b": draw(3)}, {}


# -- layers: activation derivatives, softmax Jacobian ----------------------------------------
def mlp(bug: str, layer_inputs: bool, output: str = "identity") -> Built:
    """x -> tanh(x @ w1 + b1) -> out(h @ w2 + b2), half squared error."""
    x, y = draw(4, 3), draw(4, 2)
    params = {"w1": draw(3, 5), "b1": draw(5, scale=0.5), "w2": draw(5, 2), "b2": draw(2)}
    squash = (lambda z: 1 / (1 + np.exp(-z))) if output == "sigmoid" else (lambda z: z)

    def loss(p: Params) -> float:
        h = np.tanh(x @ p["w1"] + p["b1"])
        return float(0.5 * np.sum((squash(h @ p["w2"] + p["b2"]) - y) ** 2))

    def grad(p: Params) -> Params:
        h = np.tanh(x @ p["w1"] + p["b1"])
        z1 = x @ p["w1"] + p["b1"]
        out = squash(h @ p["w2"] + p["b2"])
        d2 = out - y
        if output == "sigmoid" and bug != "output-derivative":
            d2 = d2 * out * (1 - out)
        derivative = {
            "hidden-derivative": np.ones_like(h),
            "derivative-on-z": 1 - z1**2,  # 1 - a**2 written with z
        }.get(bug, 1 - h**2)
        d1 = (d2 @ p["w2"].T) * derivative
        return {"w1": x.T @ d1, "b1": d1.sum(0), "w2": h.T @ d2, "b2": d2.sum(0)}

    h0 = np.tanh(x @ params["w1"] + params["b1"])
    options = {"layer_inputs": {"w1": x, "w2": h0}} if layer_inputs else {}
    return loss, grad, params, options


def softmax_layer(bug: str, layer_inputs: bool) -> Built:
    """x @ w + b -> softmax, with the softmax's backward written on its own."""
    x, r = draw(4, 3), draw(4, 3)

    def loss(p: Params) -> float:
        return float(np.sum(softmax(x @ p["w"] + p["b"]) * r))

    def grad(p: Params) -> Params:
        prob = softmax(x @ p["w"] + p["b"])
        if bug == "diagonal":
            dz = prob * (1 - prob) * r  # the Jacobian's diagonal only
        else:  # the off-diagonal terms with the wrong sign
            dz = prob * (r + np.sum(prob * r, axis=-1, keepdims=True))
        return {"w": x.T @ dz, "b": dz.sum(0)}

    return (
        loss,
        grad,
        {"w": draw(3, 3), "b": draw(3)},
        {"layer_inputs": {"w": x}} if (layer_inputs) else {},
    )


def softmax_on_logits() -> Built:
    r = draw(4, 3)
    loss = lambda z: np.sum(softmax(z) * r)  # noqa: E731
    return loss, (lambda z: softmax(z) * (1 - softmax(z)) * r), draw(4, 3), {}


def log_softmax_without_normaliser() -> Built:
    r = draw(4, 5)

    def loss(z: np.ndarray) -> float:
        return float(np.sum((z - np.log(np.sum(np.exp(z), axis=-1, keepdims=True))) * r))

    return loss, (lambda z: r.copy()), draw(4, 5), {}  # - softmax(z) * sum(r) left out


# -- whole-gradient slips ----------------------------------------------------------------------
def rnn_clipped() -> Built:
    """min-char-rnn: tanh RNN over 25 steps, softmax cross-entropy; the gradient clipped."""
    vocab, hidden, steps = 4, 5, 25
    inputs = RNG.integers(0, vocab, steps)
    targets = RNG.integers(0, vocab, steps)
    params = {
        "wxh": draw(hidden, vocab, scale=0.8),
        "whh": draw(hidden, hidden, scale=0.3),
        "why": draw(vocab, hidden, scale=2.0),
        "bh": np.zeros(hidden),
        "by": np.zeros(vocab),
    }

    def forward(p: Params) -> tuple[float, list[np.ndarray], list[np.ndarray]]:
        h, hs, ps, loss = np.zeros(hidden), [np.zeros(hidden)], [], 0.0
        for t in range(steps):
            h = np.tanh(p["wxh"][:, inputs[t]] + p["whh"] @ h + p["bh"])
            prob = softmax(p["why"] @ h + p["by"])
            hs.append(h)
            ps.append(prob)
            loss -= np.log(prob[targets[t]])
        return float(loss), hs, ps

    def grad(p: Params) -> Params:
        _, hs, ps = forward(p)
        g = {k: np.zeros_like(v) for k, v in p.items()}
        dh_next = np.zeros(hidden)
        for t in reversed(range(steps)):
            dy = ps[t].copy()
            dy[targets[t]] -= 1
            g["why"] += np.outer(dy, hs[t + 1])
            g["by"] += dy
            dh = p["why"].T @ dy + dh_next
            dhraw = (1 - hs[t + 1] ** 2) * dh
            g["bh"] += dhraw
            g["wxh"][:, inputs[t]] += dhraw
            g["whh"] += np.outer(dhraw, hs[t])
            dh_next = p["whh"].T @ dhraw
        for v in g.values():
            np.clip(v, -5, 5, out=v)  # min-char-rnn does this before returning
        return g

    return (lambda p: forward(p)[0]), grad, params, {}


def stale_forward_pass() -> Built:
    built = mlp("", False)
    loss, grad, params, _ = built
    cached = grad({k: v * (1 + 0.03 * draw(*v.shape)) for k, v in params.items()})
    return loss, (lambda p: cached), params, {}


def tiny_systematic_error() -> Built:
    loss, grad, params, _ = mlp("", False)
    wobble = {k: 1 + 3e-7 * draw(*v.shape) for k, v in params.items()}
    return loss, (lambda p: {k: v * wobble[k] for k, v in grad(p).items()}), params, {}


# -- the table ---------------------------------------------------------------------------------
@dataclass(frozen=True)
class Case:
    bug: str
    build: Callable[[], Built]
    right: str | None  # the name the bug deserves; None: no known pattern describes it
    named: bool = True  # gradcheck gives ``right`` today (False: it says "unknown")
    # Other true findings: "few-elements" when few fail; "different-point" for a gradient that
    # really does not move with the parameters while the true one does (the summary says
    # that, and lists a left-out term among the causes).
    also_right: tuple[str, ...] = field(default=())


CASES = [
    Case("transposed weight, linear layer", transposed_weight, "transposed"),
    Case("transposed weight in dx, bilinear", transposed_weight_in_dx, None),
    Case("conv backward forgot its stride", conv_forgot_stride, None),
    Case("conv backward forgot its stride (dx only)", conv_forgot_stride_input_only, None),
    Case("conv backward with a flipped kernel", conv_flipped_kernel, None),
    Case("max pooling with = for +=", maxpool_assigns, None, also_right=("few-elements",)),
    Case("upsampling backward slices, not sums", upsample_slices, None),
    Case("relu backward missing * dout", relu_without_dout, None),
    Case("batch norm forgot eps (float64)", batchnorm_forgot_eps, None),
    Case("batch norm backward in float32", batchnorm_in_float32, "precision"),
    Case(
        "batch norm in float32 that forgot eps",
        lambda: batchnorm_in_float32(eps=0.0, scale=0.3),
        None,
    ),
    Case("batch norm without the mean term", lambda: norm_case(mean_term=False), "normalisation"),
    Case(
        "batch norm without the variance term", lambda: norm_case(var_term=False), "normalisation"
    ),
    Case(
        "layer norm without both terms",
        lambda: norm_case(axis=1, mean_term=False, var_term=False),
        "normalisation",
    ),
    Case("attention missing 1/sqrt(d)", attention_without_scale, "constant-factor"),
    Case("bias averaged over a batch of 2", lambda: bias_averaged(False), "constant-factor"),
    Case("bias averaged, layer inputs given", lambda: bias_averaged(True), "constant-factor"),
    Case("penalty term left out", lambda: penalty(0.0, 0.0), "parameter-proportional"),
    Case("penalty term's sign flipped", lambda: penalty(-1.0, 2.0), "parameter-proportional"),
    Case("L1 penalty's gradient written as L2's", l1_penalty_written_as_l2, None),
    Case("logistic regression y - p on w", logistic_sign_on_weights, "sign-flip"),
    Case("logistic regression y - p, one vector", logistic_sign_in_one_vector, "partial-sign-flip"),
    Case(
        "softmax regression, one class flipped", lambda: softmax_regression(0), "partial-sign-flip"
    ),
    Case("softmax regression, one class doubled", lambda: softmax_regression(0, 2.0), None),
    Case(
        "hidden tanh derivative missing",
        lambda: mlp("hidden-derivative", True),
        "missing-derivative",
    ),
    Case(
        "hidden tanh derivative missing, no inputs", lambda: mlp("hidden-derivative", False), None
    ),
    Case(
        "sigmoid output derivative missing",
        lambda: mlp("output-derivative", True, "sigmoid"),
        "missing-derivative",
    ),
    Case("tanh derivative written with z", lambda: mlp("derivative-on-z", True), None),
    Case(
        "softmax Jacobian diagonal only",
        lambda: softmax_layer("diagonal", True),
        "softmax-diagonal",
    ),
    Case("softmax Jacobian diagonal, on logits", softmax_on_logits, "softmax-diagonal"),
    Case("softmax Jacobian off-diagonal sign", lambda: softmax_layer("sign", True), None),
    Case(
        "log-softmax without its normaliser",
        log_softmax_without_normaliser,
        None,
        also_right=("different-point",),
    ),
    Case("min-char-rnn clips to +-5", rnn_clipped, "clipping"),
    Case(
        "sign of the gradient times 5", five_times_the_sign, None, also_right=("different-point",)
    ),
    Case("gradient-norm clipping to 1", norm_clipped, "constant-factor"),
    Case("gradient from a cached forward pass", stale_forward_pass, "different-point"),
    Case("tiny systematic error (3e-7)", tiny_systematic_error, None),
]


def outcome(case: Case) -> gradcheck.CheckResult:
    """The case's check, on data drawn from the case's own seed (whatever ran before)."""
    global RNG
    RNG = np.random.default_rng(zlib.crc32(case.bug.encode()))
    loss, grad, params, options = case.build()
    return gradcheck.check(loss, grad, params, rng=0, **options)


@pytest.mark.parametrize("case", CASES, ids=[c.bug for c in CASES])
def test_bug_is_caught_and_named_rightly_or_not_at_all(case: Case) -> None:
    result = outcome(case)
    assert result.status == "failed", f"{case.bug}: not caught\n{result}"
    assert result.diagnosis is not None
    kind = result.diagnosis.kind
    acceptable = {"unknown", *case.also_right} | ({case.right} if case.right else set())
    assert kind in acceptable, f"{case.bug}: wrongly named {kind!r}\n{result}"
    if case.right is not None and case.named:
        assert kind == case.right, f"{case.bug}: the name {case.right!r} was lost\n{result}"


def test_the_table_has_twenty_realistic_bugs_and_their_look_alikes() -> None:
    assert len(CASES) >= 20
    named = [c for c in CASES if c.right is not None]
    assert len({c.right for c in named}) >= 10  # every name has a planted bug here
