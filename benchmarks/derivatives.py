"""Benchmark ``check_vjp`` against ``torch.autograd.gradcheck`` on two layers, with planted bugs.

Run ``python benchmarks/derivatives.py`` (``--quick`` for a smoke run on tiny layers,
``--render`` to rewrite the markdown from the JSON).  Issue 13, item 8.

The layers, each at about 1e3 and 1e5 differentiated input elements (all of ``x``,
``w``, ``b`` or ``x``, ``gamma``, ``beta``):

* ``conv``: a 3x3 convolution, stride 1, pad 1, written with numpy's sliding windows
  (the same arithmetic as ``examples/layers.py``'s naive loops, which are too slow for
  1e5 elements; ``tests/test_benchmarks.py`` holds the two equal);
* ``batch norm``: ``examples/layers.py``'s training-mode batch norm over ``(N, D)``.

Each layer's backward pass is checked correct and with two planted bugs:

* ``single``: one element of ``dx`` (an interior one) times ``1 + 1e-2``;
* ``factor``: every returned gradient times ``1 + 1e-4``.

The checkers, each in its own child process with one BLAS/torch thread:

* ``gradcheck default``: ``check_vjp(f, vjp, inputs)`` (``mode="auto"``: a full check
  when it fits the budget, else directional probes with a stated miss probability);
* ``gradcheck full``: ``mode="full"``, every input element checked;
* ``gradcheck directional``: ``mode="directional"`` (for reference: what auto picks at scale);
* ``torch gradcheck fast`` / ``slow``: ``torch.autograd.gradcheck`` with ``fast_mode``
  True / False, in float64, on a ``torch.autograd.Function`` whose forward and backward
  call the same numpy code, so torch sees the same bugs.

A checker "catches" a bug when it fails it; the correct backward must pass (a false
alarm is reported).  Correct runs under 0.5 s are repeated and their median reported.
A checker over the time limit is stopped at its next layer call and reported as
"> limit"; its time is extrapolated from the layer calls it made where that can be done
honestly (labelled so).  torch's slow mode builds the dense ``n x m`` numerical
Jacobian, so where that exceeds 2 GiB it is not run and its time is extrapolated from
the calls it makes (``2n`` forward, ``2m`` backward, counted at 1e3) at the per-call
time measured on the layer: a lower bound, torch's own per-element work left out.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import platform
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

import gradcheck  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
#: Shapes of (x, w) for the convolution, (N, D) for batch norm, per size.
SIZES: dict[str, dict[str, tuple[tuple[int, ...], ...]]] = {
    "1e2": {"conv": ((1, 2, 5, 5), (2, 2, 3, 3)), "batch norm": ((10, 8),)},
    "1e3": {"conv": ((2, 3, 12, 12), (4, 3, 3, 3)), "batch norm": ((40, 25),)},
    "1e5": {"conv": ((4, 16, 40, 40), (16, 16, 3, 3)), "batch norm": ((500, 200),)},
}
LAYERS = ("conv", "batch norm")
BUGS = ("single", "factor")
#: The single-element bug: dx at one interior element times 1 + this.
SINGLE_RELATIVE = 1e-2
FACTOR = 1 + 1e-4
CHECKERS = (
    "gradcheck default",
    "gradcheck full",
    "gradcheck directional",
    "torch gradcheck fast",
    "torch gradcheck slow",
)
GRADCHECK_MODES = {
    "gradcheck default": {},
    "gradcheck full": {"mode": "full"},
    "gradcheck directional": {"mode": "directional"},
}
#: torch's slow mode allocates the numerical Jacobian, n x m doubles per input.
TORCH_DENSE_LIMIT_BYTES = 2 * 2**30
#: Correct runs faster than this are repeated and their median reported (as benchmarks/run.py).
REPEAT_BELOW = 0.5
REPEATS = 5
BN_PARAM = {"mode": "train", "eps": 1e-5}


def _example_layers() -> Any:
    spec = importlib.util.spec_from_file_location("example_layers", ROOT / "examples/layers.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


LAYERS_EXAMPLE = _example_layers()


# -- the layers ------------------------------------------------------------------------------
def conv_forward(x: Any, w: Any, b: Any) -> Any:
    """3x3 (any odd square) convolution, stride 1, pad ``kernel // 2``; complex-safe."""
    pad = w.shape[2] // 2
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(padded, w.shape[2:], axis=(2, 3))  # n c h w i j
    out = np.tensordot(windows, w, axes=([1, 4, 5], [1, 2, 3]))  # n h w f
    return out.transpose(0, 3, 1, 2) + b[None, :, None, None]


def conv_backward(dout: Any, x: Any, w: Any, b: Any) -> tuple[Any, Any, Any]:
    """``dx, dw, db``: dx is the convolution of ``dout`` with the flipped filters."""
    pad = w.shape[2] // 2
    padded = np.pad(x, ((0, 0), (0, 0), (pad, pad), (pad, pad)))
    windows = sliding_window_view(padded, w.shape[2:], axis=(2, 3))
    dw = np.tensordot(dout, windows, axes=([0, 2, 3], [0, 2, 3]))
    back = w.shape[2] - 1 - pad
    dpadded = np.pad(dout, ((0, 0), (0, 0), (back, back), (back, back)))
    dwindows = sliding_window_view(dpadded, w.shape[2:], axis=(2, 3))  # n f h w i j
    flipped = w[:, :, ::-1, ::-1]
    dx = np.tensordot(dwindows, flipped, axes=([1, 4, 5], [0, 2, 3])).transpose(0, 3, 1, 2)
    return np.ascontiguousarray(dx), dw, dout.sum(axis=(0, 2, 3))


def batchnorm_forward(x: Any, gamma: Any, beta: Any) -> Any:
    return LAYERS_EXAMPLE.batchnorm_forward(x, gamma, beta, BN_PARAM)[0]


def batchnorm_backward(dout: Any, x: Any, gamma: Any, beta: Any) -> tuple[Any, Any, Any]:
    cache = LAYERS_EXAMPLE.batchnorm_forward(x, gamma, beta, BN_PARAM)[1]
    return LAYERS_EXAMPLE.batchnorm_backward(dout, cache)


def layer_inputs(layer: str, size: str) -> tuple[np.ndarray, ...]:
    """The point, from a fixed seed: ``(x, w, b)`` or ``(x, gamma, beta)``."""
    rng = np.random.default_rng(0)
    if layer == "conv":
        x_shape, w_shape = SIZES[size][layer]
        w = rng.standard_normal(w_shape) / np.sqrt(np.prod(w_shape[1:]))
        return rng.standard_normal(x_shape), w, rng.standard_normal(w_shape[0])
    (x_shape,) = SIZES[size][layer]
    x = rng.standard_normal(x_shape) * 2 + 1
    return x, 1 + 0.5 * rng.standard_normal(x_shape[1]), rng.standard_normal(x_shape[1])


def single_element(x: np.ndarray) -> int:
    """An interior element of ``x`` (away from a convolution's padded border)."""
    return int(np.ravel_multi_index(tuple(max(s // 2 - 1, 0) for s in x.shape), x.shape))


def backward_pass(layer: str, bug: str, index: int) -> Callable[..., tuple[Any, ...]]:
    """``vjp(dout, *inputs)``: the correct backward pass or one with a planted bug."""
    correct = conv_backward if layer == "conv" else batchnorm_backward

    def vjp(dout: Any, *inputs: Any) -> tuple[Any, ...]:
        grads = tuple(np.array(g, dtype=np.float64) for g in correct(dout, *inputs))
        if bug == "single":
            grads[0].reshape(-1)[index] *= 1 + SINGLE_RELATIVE
        elif bug == "factor":
            grads = tuple(g * FACTOR for g in grads)
        return grads

    return vjp


# -- counting and the time limit -------------------------------------------------------------
class OverLimit(BaseException):  # noqa: N818 - not an Exception: no checker may swallow it
    """Raised at a layer call once the checker's time is up."""


class Calls:
    """Counts the layer's forward and backward calls and stops the run at the deadline."""

    def __init__(self) -> None:
        self.forward = 0
        self.backward = 0
        self.deadline = float("inf")

    def start(self, limit: float) -> None:
        self.forward = self.backward = 0
        self.deadline = time.perf_counter() + limit

    def wrap(self, function: Callable[..., Any], which: str) -> Callable[..., Any]:
        def counted(*args: Any) -> Any:
            if time.perf_counter() > self.deadline:
                raise OverLimit
            setattr(self, which, getattr(self, which) + 1)
            return function(*args)

        return counted


def timed(run: Callable[[], Any], calls: Calls, limit: float, *, repeat: bool) -> tuple[Any, float]:
    """``run()`` within ``limit`` seconds, and its (median, when fast and ``repeat``) time."""
    times: list[float] = []
    while True:
        calls.start(limit)
        started = time.perf_counter()
        result = run()
        times.append(time.perf_counter() - started)
        if not repeat or times[0] >= REPEAT_BELOW or len(times) >= REPEATS:
            return result, float(np.median(times))


# -- checkers (run in the child) -------------------------------------------------------------
def layer_forward(layer: str) -> Callable[..., Any]:
    return conv_forward if layer == "conv" else batchnorm_forward


def run_gradcheck(layer: str, size: str, checker: str, limit: float) -> dict[str, Any]:
    inputs = layer_inputs(layer, size)
    index = single_element(inputs[0])
    calls = Calls()
    f = calls.wrap(layer_forward(layer), "forward")
    options = GRADCHECK_MODES[checker]
    tiny = layer_inputs(layer, "1e2")  # first-call costs (imports, caches) not timed
    gradcheck.check_vjp(layer_forward(layer), backward_pass(layer, "ok", 0), tiny, **options)

    def check_of(bug: str) -> Callable[[], Any]:
        vjp = calls.wrap(backward_pass(layer, bug, index), "backward")
        return lambda: gradcheck.check_vjp(f, vjp, inputs, progress=False, **options)

    out, correct = each_backward(check_of, lambda result: result.passed, calls, limit)
    if correct is not None:
        out["mode"] = correct.mode
        if correct.directional:
            out["guarantee"] = correct.directional["guarantee"]["statement"]
    return out


def each_backward(
    check_of: Callable[[str], Callable[[], Any]],
    passed: Callable[[Any], bool],
    calls: Calls,
    limit: float,
) -> tuple[dict[str, Any], Any]:
    """One checker on the correct backward pass (timed: median of repeats when fast) and on
    each planted bug: the entry, and the correct run's own result (None past the limit)."""
    out: dict[str, Any] = {}
    correct = None
    for bug in ("ok", *BUGS):
        try:
            result, seconds = timed(check_of(bug), calls, limit, repeat=bug == "ok")
        except OverLimit:
            if bug == "ok":
                return over_limit(limit, calls), None
            out[bug] = None
            continue
        if bug == "ok":
            correct = result
            out.update(seconds=seconds, passed=passed(result))
            out.update(forward_calls=calls.forward, backward_calls=calls.backward)
        else:
            out[bug] = not passed(result)
            out[f"{bug}_seconds"] = seconds
    return out, correct


def over_limit(limit: float, calls: Calls) -> dict[str, Any]:
    return {"timeout": limit, "forward_calls_done": calls.forward}


def torch_layer(layer: str, bug: str, index: int, calls: Calls) -> Callable[..., Any]:
    """The layer as a ``torch.autograd.Function`` over the same numpy forward and backward."""
    import torch

    forward = calls.wrap(layer_forward(layer), "forward")
    backward = calls.wrap(backward_pass(layer, bug, index), "backward")

    class Layer(torch.autograd.Function):
        @staticmethod
        def forward(ctx, *inputs):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN205
            ctx.save_for_backward(*inputs)
            return torch.from_numpy(np.asarray(forward(*(t.detach().numpy() for t in inputs))))

        @staticmethod
        def backward(ctx, dout):  # type: ignore[no-untyped-def]  # noqa: ANN001, ANN205
            arrays = (t.detach().numpy() for t in ctx.saved_tensors)
            grads = backward(dout.detach().numpy(), *arrays)
            return tuple(torch.from_numpy(np.ascontiguousarray(g)) for g in grads)

    return Layer.apply


def run_torch(layer: str, size: str, fast: bool, limit: float) -> dict[str, Any]:
    import torch

    torch.set_num_threads(1)
    inputs = layer_inputs(layer, size)
    index = single_element(inputs[0])
    calls = Calls()
    n, m = inputs[0].size, layer_forward(layer)(*inputs).size
    if not fast and n * m * 8 > TORCH_DENSE_LIMIT_BYTES:
        seconds, text = slow_mode_model(layer, inputs)
        return {
            "skipped": f"not run: its dense numerical Jacobian needs {n * m * 8 / 2**30:.0f} GiB",
            "estimated_seconds": seconds,
            "estimate": f"extrapolated: {text} (a lower bound)",
        }
    tensors = [torch.tensor(a, requires_grad=True) for a in inputs]
    tiny = [torch.tensor(a, requires_grad=True) for a in layer_inputs(layer, "1e2")]
    warm = torch_layer(layer, "ok", 0, Calls())
    torch.autograd.gradcheck(warm, tiny, fast_mode=fast)  # first-call costs not timed

    def check_of(bug: str) -> Callable[[], bool]:
        apply = torch_layer(layer, bug, index, calls)
        return lambda: bool(
            torch.autograd.gradcheck(apply, tensors, fast_mode=fast, raise_exception=False)
        )

    out, _ = each_backward(check_of, bool, calls, limit)
    if not fast and "seconds" in out:  # how much of the measured time the model explains
        model, text = slow_mode_model(layer, inputs)
        out["estimate"] = (
            f"the model used to extrapolate at 1e5, {text} = {model:.3g} s, is "
            f"{model / out['seconds']:.0%} of the time measured here"
        )
    return out


def slow_mode_model(layer: str, inputs: tuple[np.ndarray, ...]) -> tuple[float, str]:
    """Seconds of torch's slow mode from its calls (``2n`` forward, ``2m`` backward, as
    counted at 1e3) times the measured seconds of one call: a lower bound (torch's own
    work per element is left out), checked against the measured time where it runs."""
    import torch

    apply = torch_layer(layer, "ok", 0, Calls())
    tensors = [torch.tensor(a, requires_grad=True) for a in inputs]
    forward, backward = [], []
    for _ in range(REPEATS):
        started = time.perf_counter()
        out = apply(*tensors)
        forward.append(time.perf_counter() - started)
        dout = torch.randn_like(out)
        started = time.perf_counter()
        torch.autograd.grad(out, tensors, dout)
        backward.append(time.perf_counter() - started)
    n = sum(a.size for a in inputs)
    m = out.numel()
    t_forward, t_backward = float(np.median(forward)), float(np.median(backward))
    text = (
        f"2n = {2 * n:,} forward calls x {t_forward * 1e3:.3g} ms + 2m = {2 * m:,} backward "
        f"calls x {t_backward * 1e3:.3g} ms"
    )
    return 2 * n * t_forward + 2 * m * t_backward, text


def run_child(layer: str, size: str, checker: str, limit: float) -> dict[str, Any]:
    inputs = layer_inputs(layer, size)
    info = {"n_inputs": int(sum(a.size for a in inputs))}
    info["n_outputs"] = int(np.size(layer_forward(layer)(*inputs)))
    if checker.startswith("torch"):
        out = run_torch(layer, size, checker.endswith("fast"), limit)
    else:
        out = run_gradcheck(layer, size, checker, limit)
    return {**out, **info}


# -- parent ----------------------------------------------------------------------------------
def run_pair(layer: str, size: str, checker: str, limit: float) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", layer, size, checker, "--limit", str(limit)]
    env = dict(os.environ)
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = "1"
    done = subprocess.run(
        command, capture_output=True, text=True, timeout=6 * limit + 120, check=False, env=env
    )
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return dict(json.loads(done.stdout.strip().splitlines()[-1]))


def torch_available() -> bool:
    try:
        import torch  # noqa: F401
    except ImportError:
        return False
    return True


def extrapolate(entries: dict[str, Any], smaller: dict[str, Any] | None) -> None:
    """The time of a gradcheck run over the limit, from the layer calls it made in it.

    A full check makes a number of forward calls proportional to the input elements:
    the calls it needs are the calls per element it made on the smaller size of the
    same layer, times this size's elements.
    """
    for checker, entry in entries.items():
        if "timeout" not in entry or not entry.get("forward_calls_done") or not smaller:
            continue
        finished = smaller.get(checker, {})
        if "forward_calls" not in finished:
            continue
        needed = finished["forward_calls"] / finished["n_inputs"] * entry["n_inputs"]
        entry["forward_calls_needed"] = needed
        entry["estimated_seconds"] = entry["timeout"] * needed / entry["forward_calls_done"]
        entry["estimate"] = (
            f"{entry['forward_calls_done']:,} of ~{needed:,.0f} forward calls done in "
            f"{entry['timeout']:g} s"
        )


def seconds_of(entry: dict[str, Any] | None) -> tuple[float | None, bool]:
    """Measured seconds, or extrapolated ones (then True), or None."""
    if not entry:
        return None, False
    if "seconds" in entry:
        return float(entry["seconds"]), False
    if entry.get("estimated_seconds"):
        return float(entry["estimated_seconds"]), True
    return None, False


def ratios(entries: dict[str, Any]) -> dict[str, Any]:
    """default / torch fast and full / torch slow, and the goals' verdicts."""
    out: dict[str, Any] = {}
    for mine, peer, goal, label in (
        ("gradcheck default", "torch gradcheck fast", 3.0, "default / torch fast"),
        ("gradcheck full", "torch gradcheck slow", 1.0, "full / torch slow"),
        ("gradcheck directional", "torch gradcheck fast", 3.0, "directional / torch fast"),
    ):
        a, a_estimated = seconds_of(entries.get(mine))
        b, b_estimated = seconds_of(entries.get(peer))
        if a is None or b is None:
            continue
        done = "seconds" in entries[mine]
        caught = all(entries[mine].get(bug) for bug in BUGS) if done else None
        right = bool(entries[mine].get("passed", True))
        out[label] = {
            "ratio": a / b,
            "extrapolated": a_estimated or b_estimated,
            "goal": goal,
            "catches_both": caught,
            "met": a / b <= goal and caught is not False and right,
        }
    return out


def _seconds(entry: dict[str, Any]) -> str:
    if "timeout" in entry:
        text = f"> {entry['timeout']:g} s (limit)"
        if entry.get("estimated_seconds"):
            text += f"; extrapolated ~{entry['estimated_seconds']:,.0f} s"
        return text
    if "skipped" in entry:
        text = entry["skipped"]
        if entry.get("estimated_seconds"):
            text += f"; extrapolated >= {entry['estimated_seconds']:,.0f} s"
        return text
    if "error" in entry:
        return f"error: {entry['error']}"
    return f"{entry['seconds']:.3g} s"


def _caught(entry: dict[str, Any]) -> str:
    if "seconds" not in entry:
        return "n/a"
    marks = []
    for bug in BUGS:
        value = entry.get(bug)
        marks.append("> limit" if value is None else "yes" if value else "**no**")
    verdict = "passes" if entry.get("passed") else "**FAILS (false alarm)**"
    return f"{verdict} | " + " / ".join(marks)


def _calls(entry: dict[str, Any]) -> str:
    if "forward_calls" in entry:
        return f"{entry['forward_calls']:,} / {entry['backward_calls']:,}"
    if "forward_calls_done" in entry:
        return f"{entry['forward_calls_done']:,} / - (in the limit)"
    return ""


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# check_vjp against torch.autograd.gradcheck (issue 13, item 8)",
        "",
        f"{results['machine']}; {results['date']}, commit {results.get('commit', 'unknown')}. "
        f"Generated by `python benchmarks/derivatives.py{' --quick' if results['quick'] else ''}`"
        f" in one run; time limit {results['limit']:g} s per checker and layer"
        + _load_text(results)
        + ".",
        "",
        *summary(results),
        f"Bugs planted in the numpy backward pass (torch's Function calls the same one): "
        f"single = one interior element of dx times (1 + {SINGLE_RELATIVE:g}); factor = every "
        f"gradient times (1 + {FACTOR - 1:g}).  Calls = the layer's forward / backward calls "
        "of the correct check.",
        "",
    ]
    for key, entries in results["rows"].items():
        some = next((e for e in entries.values() if "n_inputs" in e), {})
        size = f" ({some['n_inputs']:,} input elements, {some['n_outputs']:,} outputs)"
        lines += [f"## {key}{size if some else ''}", ""]
        lines += [
            "| checker | seconds | calls | correct backward | caught: single / factor | mode |",
            "|---|---:|---:|---|---|---|",
        ]
        for checker, entry in entries.items():
            lines.append(
                f"| {checker} | {_seconds(entry)} | {_calls(entry)} | {_caught(entry)} "
                f"| {entry.get('mode', '')} |"
            )
        lines += _ratio_lines(results["ratios"].get(key, {}))
        notes = [f"- {c}: {e['estimate']}" for c, e in entries.items() if e.get("estimate")]
        notes += [f"- {c}: {e['guarantee']}" for c, e in entries.items() if e.get("guarantee")]
        if notes:
            lines += ["", *notes]
        lines.append("")
    return "\n".join(lines)


def _load_text(results: dict[str, Any]) -> str:
    """The machine's 1-minute load average around the run: the machine may be shared."""
    if "load_before" not in results:
        return ""
    return (
        f"; load average {results['load_before']:.1f} before and "
        f"{results.get('load_after', float('nan')):.1f} after the run (other work shared the "
        "CPUs when above 1)"
    )


def summary(results: dict[str, Any]) -> list[str]:
    """The goals' ratios, one row per layer and size (what the README states)."""
    labels = ("default / torch fast", "full / torch slow", "directional / torch fast")
    rows = []
    for key, found in results["ratios"].items():
        cells = []
        for label in labels:
            r = found.get(label)
            if r is None:
                cells.append("")
                continue
            approx = "~" if r["extrapolated"] else ""
            cells.append(f"{approx}{r['ratio']:.3g}x ({'met' if r['met'] else '**not met**'})")
        rows.append(f"| {key} | {' | '.join(cells)} |")
    if not any(results["ratios"].values()):
        return []
    return [
        "Goals: the default check within 3x torch fast mode's time while catching both bugs; "
        "the full check no slower than torch slow mode (~ = extrapolated past the limit).",
        "",
        "| layer | default / torch fast | full / torch slow | directional / torch fast "
        "(not a goal) |",
        "|---|---|---|---|",
        *rows,
        "",
    ]


def _ratio_lines(found: dict[str, Any]) -> list[str]:
    lines = []
    for label, r in found.items():
        approx = "~" if r["extrapolated"] else ""
        state = "**met**" if r["met"] else "**not met**"
        if r["catches_both"] is None:
            state += " (bugs not run: over the limit)"
        elif not r["catches_both"]:
            state += " (misses a planted bug)"
        lines.append(f"- {label}: {approx}{r['ratio']:.3g}x (goal <= {r['goal']:g}x) {state}")
    return ["", *lines] if lines else []


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="tiny layers (~1e2), limit 15 s")
    parser.add_argument("--limit", type=float, default=None, help="seconds per checker (90)")
    parser.add_argument("--render", action="store_true", help="only rewrite the markdown")
    parser.add_argument("--output", type=Path, default=RESULTS, help="results directory")
    parser.add_argument("--layers", nargs="*", default=list(LAYERS), choices=LAYERS)
    parser.add_argument("--sizes", nargs="*", default=None, choices=list(SIZES))
    parser.add_argument("--checkers", nargs="*", default=list(CHECKERS), choices=CHECKERS)
    parser.add_argument("--child", nargs=3, metavar=("LAYER", "SIZE", "CHECKER"), help="internal")
    args = parser.parse_args(argv)
    limit = args.limit or (15.0 if args.quick else 90.0)
    if args.child:
        print(json.dumps(run_child(*args.child, limit=limit)))
        return 0
    if args.render:
        results = json.loads((args.output / "derivatives.json").read_text())
        (args.output / "derivatives.md").write_text(markdown(results))
        print(f"wrote {args.output / 'derivatives.md'}")
        return 0
    sizes = args.sizes or (["1e2"] if args.quick else ["1e3", "1e5"])
    checkers = list(args.checkers)
    if not torch_available():
        checkers = [c for c in checkers if not c.startswith("torch")]
        print("torch is not installed: its rows are left out")
    results = run_all(args.layers, sizes, checkers, limit, quick=args.quick)
    args.output.mkdir(parents=True, exist_ok=True)
    (args.output / "derivatives.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.output / "derivatives.md").write_text(markdown(results))
    print(f"wrote {args.output / 'derivatives.md'}")
    return 0


def run_all(
    layers: list[str], sizes: list[str], checkers: list[str], limit: float, *, quick: bool
) -> dict[str, Any]:
    """Every (layer, size, checker) in its own process, in one run."""
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, 1 BLAS/torch thread per "
        f"checker, Python {platform.python_version()}, numpy {np.__version__}"
        + (f", torch {_torch_version()}" if any(c.startswith("torch") for c in checkers) else ""),
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "commit": _commit(),
        "load_before": os.getloadavg()[0],
        "quick": quick,
        "limit": limit,
        "rows": {},
        "ratios": {},
    }
    for layer in layers:
        smaller = None
        for size in sizes:
            key = f"{layer}, ~{size} input elements"
            entries: dict[str, Any] = {}
            for checker in checkers:
                print(f"{key:>32}  {checker:<24}", end="", flush=True)
                entries[checker] = run_pair(layer, size, checker, limit)
                print(f" {_seconds(entries[checker]):>16}  {_caught(entries[checker])}", flush=True)
            extrapolate(entries, smaller)
            results["rows"][key] = entries
            results["ratios"][key] = ratios(entries)
            smaller = entries
    results["load_after"] = os.getloadavg()[0]
    return results


def _commit() -> str:
    """The commit measured (``GRADCHECK_BENCH_COMMIT`` when run from an exported copy)."""
    if os.environ.get("GRADCHECK_BENCH_COMMIT"):
        return os.environ["GRADCHECK_BENCH_COMMIT"]
    done = subprocess.run(
        ["git", "-C", str(ROOT), "describe", "--always", "--dirty"],
        capture_output=True,
        text=True,
        check=False,
    )
    return done.stdout.strip() or "unknown"


def _torch_version() -> str:
    import torch

    return str(torch.__version__)


if __name__ == "__main__":
    raise SystemExit(main())
