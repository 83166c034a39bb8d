"""Benchmark gradcheck's modes against the peers on three networks, with planted bugs.

Run ``python benchmarks/run.py`` (``--quick`` for a short run).  Every (checker, network)
pair runs in its own child process with a time limit, so a slow peer is recorded as
"> limit" instead of stalling the run and peak memory is measured per pair.  Writes
``benchmarks/results/latest.json`` and ``benchmarks/results/latest.md``.

Measured for each pair, on the correct gradient:

* ``seconds`` to a verdict (or to the reference gradient, for peers that return one);
* ``evaluations`` of the loss;
* ``peak_mib``: tracemalloc's peak (numpy and Python allocations; torch's own allocator is
  invisible to it) and ``rss_mib``: growth of the process's peak resident memory.

Planted bugs (each checked separately; the correct gradient must pass):

* ``single``: one element of ``weight1`` off by ``1e-3`` of the largest gradient element;
* ``factor``: the whole gradient times ``1 + 1e-4``;
* ``saturated-sign``: the sign of the gradient column of a saturated hidden unit flipped.

A checker with a verdict (gradcheck, torch.autograd.gradcheck) "catches" a bug when it
fails it.  Peers that only return a reference gradient (scipy.optimize.check_grad,
scipy.differentiate.jacobian, numdifftools) catch it when ``|g_bug - ref|`` exceeds 10x
``|g_ok - ref|``: a threshold that knows the peer's own noise, which a user would not.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import signal
import subprocess
import sys
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from gradcheck import check  # noqa: E402
from gradcheck.model.network import Network, random_data  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
NETWORKS = {
    "seed 3-4-1": ((3, 4, 1), 4),
    "64-32-10": ((64, 32, 10), 16),
    "784-128-10": ((784, 128, 10), 16),
}
BUGS = ("single", "factor", "saturated-sign")
CHECKERS = (
    "gradcheck default",
    "gradcheck directional",
    "gradcheck full",
    "gradcheck full (real-only loss)",
    "gradcheck full (central)",
    "gradcheck full (central, vectorized)",
    "gradcheck full (central, 2 processes)",
    "gradcheck full (central, vectorized, 2 processes)",
    "torch gradcheck fast",
    "torch gradcheck slow",
    "scipy check_grad",
    "scipy differentiate",
    "numdifftools",
)
#: scipy.differentiate.jacobian evaluates all N perturbed vectors at once: N x N doubles.
DIFFERENTIATE_LIMIT_BYTES = 2 * 2**30


# -- problems --------------------------------------------------------------------------------
class Problem:
    """A network, its data, the correct gradient and the planted bugs."""

    def __init__(self, name: str) -> None:
        sizes, samples = NETWORKS[name]
        self.name = name
        self.net = Network(sizes, ("sigmoid", "sigmoid"))
        if name.startswith("seed"):
            x = np.array([[0, 0, 1], [0, 1, 1], [1, 0, 1], [1, 1, 1]], dtype=float)
            y = np.array([[0], [1], [1], [0]], dtype=float)
        else:
            x, y = random_data(self.net, samples, rng=1)
        params = self.net.init_params(rng=0)
        params["weight1"][:, 0] *= 40.0  # hidden unit 0 saturates: tiny gradients
        self.params = params
        self.x, self.y = x, y
        self.loss, self.grad = self.net.functions(x, y)
        self.vloss = self.net.vectorized_loss(x, y)
        self.x0 = self.net.flatten(params)
        self.n = self.x0.size
        flat = self.net.flatten(self.grad(params))
        column = np.zeros(self.net.param_shapes()["weight1"], dtype=bool)
        column[:, 0] = True
        self.saturated = np.concatenate([column.ravel(), np.zeros(self.n - column.size, bool)])
        self.gradients = {"ok": flat}
        single = flat.copy()
        single[min(5000, column.size - 1) if column.size > 1 else 0] += 1e-3 * np.abs(flat).max()
        self.gradients["single"] = single
        self.gradients["factor"] = flat * (1 + 1e-4)
        flipped = flat.copy()
        flipped[self.saturated] *= -1
        self.gradients["saturated-sign"] = flipped

    def flat_loss(self, theta: np.ndarray) -> float:
        return float(self.loss(self.net.unflatten(theta)))

    def grad_fn(self, bug: str):  # noqa: ANN201
        vector = self.gradients[bug]
        return lambda params: self.net.unflatten(vector)


#: Loss evaluations of the run in progress (read when it times out, to extrapolate).
DONE = [0]


class Counter:
    """Counts evaluations (rows, for a vectorized loss) of the wrapped loss."""

    def __init__(self, function, *, rows: bool = False) -> None:  # noqa: ANN001
        self.function = function
        self.rows = rows
        self.calls = 0

    def reset(self) -> None:
        self.calls = 0

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        count = len(args[0]) if self.rows else 1
        self.calls += count
        DONE[0] += count
        return self.function(*args, **kwargs)


# -- checkers (run in the child) -------------------------------------------------------------
def _gradcheck(problem: Problem, **options: Any) -> dict[str, Any]:
    loss = problem.vloss if options.get("vectorized") else problem.loss
    if options.pop("real_only", False):
        # float() of a complex value raises: no complex step, so central differences first
        # and Richardson only where their verdict is doubtful (a plain numpy loss's path).
        plain = problem.loss
        loss = lambda params: float(plain(params))  # noqa: E731
    if options.get("executor"):
        pass  # the network's bound losses are picklable; evaluations are counted by the check
    else:
        loss = Counter(loss, rows=bool(options.get("vectorized")))
    _warm_up(**options)
    out: dict[str, Any] = {}
    for bug in ("ok", *BUGS):
        DONE[0] = 0
        try:
            result, seconds = timed(
                check,
                loss,
                problem.grad_fn(bug),
                problem.params,
                rng=0,
                progress=False,
                repeat=bug == "ok",
                **options,
            )
        except _Timeout:
            if bug == "ok":
                raise
            out[bug] = None
            continue
        if bug == "ok":
            out.update(
                seconds=seconds,
                evaluations=result.n_evaluations,
                passed=result.passed,
                mode=result.mode,
            )
            if result.directional:
                out["guarantee"] = result.directional["guarantee"]["statement"]
        else:
            out[bug] = not result.passed
            out[f"{bug}_seconds"] = seconds
    return out


def _warm_up(**options: Any) -> None:
    """One check of a tiny problem first, as torch gets one call first: first-call costs
    (lazy imports, caches) are not what the timed runs measure."""
    tiny = Problem("seed 3-4-1")
    loss = tiny.vloss if options.get("vectorized") else tiny.loss
    check(loss, tiny.grad, tiny.params, rng=0, progress=False, **options)


def _with_pool(problem: Problem, **options: Any) -> dict[str, Any]:
    from concurrent.futures import ProcessPoolExecutor

    with ProcessPoolExecutor(max_workers=2) as pool:
        pool.map(int, range(2))  # start the workers outside the timed runs
        return _gradcheck(problem, mode="full", method="central", executor=pool, **options)


def _torch(problem: Problem, fast: bool) -> dict[str, Any]:
    import torch

    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "1")))
    warm = torch.zeros(3, dtype=torch.float64, requires_grad=True)
    torch.autograd.gradcheck(lambda t: (t**2).sum(), (warm,), fast_mode=fast)  # first-call costs
    out: dict[str, Any] = {}
    for bug in ("ok", *BUGS):
        counter = Counter(problem.flat_loss)
        vector = problem.gradients[bug]

        class Loss(torch.autograd.Function):
            @staticmethod
            def forward(ctx, theta):  # noqa: ANN001, ANN205
                return torch.tensor(counter(theta.detach().numpy()), dtype=torch.float64)  # noqa: B023

            @staticmethod
            def backward(ctx, grad_output):  # noqa: ANN001, ANN205
                return grad_output * torch.from_numpy(vector)  # noqa: B023

        theta = torch.tensor(problem.x0, dtype=torch.float64, requires_grad=True)
        DONE[0] = 0
        try:
            passed, seconds = timed(
                torch.autograd.gradcheck,
                Loss.apply,
                (theta,),
                fast_mode=fast,
                raise_exception=False,
                repeat=bug == "ok",
                reset=counter.reset,
            )
        except _Timeout:
            if bug == "ok":
                raise
            out[bug] = None
            continue
        if bug == "ok":
            out.update(seconds=seconds, evaluations=counter.calls, passed=bool(passed))
        else:
            out[bug] = not passed
    return out


def _reference_peer(problem: Problem, which: str) -> dict[str, Any]:
    import numdifftools as nd
    from scipy.differentiate import jacobian
    from scipy.optimize import approx_fprime

    counter = Counter(problem.flat_loss)
    DONE[0] = 0

    def batched(points: np.ndarray) -> np.ndarray:
        counter.calls += int(np.prod(points.shape[1:]))
        DONE[0] += int(np.prod(points.shape[1:]))
        stack = points.reshape(problem.n, -1).T
        return problem.vloss(stack).reshape(points.shape[1:])

    def reference_gradient() -> np.ndarray:
        if which == "check_grad":
            # check_grad(f, g, x0) is |g(x0) - approx_fprime(x0, f)|: the same evaluations.
            return approx_fprime(problem.x0, counter, np.sqrt(np.finfo(float).eps))
        if which == "differentiate":
            return jacobian(batched, problem.x0).df
        return nd.Gradient(counter)(problem.x0)

    reference, seconds = timed(reference_gradient, reset=counter.reset)
    noise = float(np.linalg.norm(problem.gradients["ok"] - reference))
    out: dict[str, Any] = {"seconds": seconds, "evaluations": counter.calls, "error_ok": noise}
    for bug in BUGS:
        error = float(np.linalg.norm(problem.gradients[bug] - reference))
        out[bug] = bool(error > 10 * noise)
        out[f"error_{bug}"] = error
    out["passed"] = True
    return out


class _Timeout(BaseException):  # not an Exception: gradcheck must not wrap it
    pass


def _on_alarm(signum: int, frame: Any) -> None:
    raise _Timeout


LIMIT = 90.0


#: Runs of the correct gradient faster than this are repeated and their median reported:
#: at this scale first-call costs and timer noise matter.  Every checker is timed this way.
REPEAT_BELOW = 0.5
REPEATS = 5


def timed(
    function,
    *args: Any,
    repeat: bool = True,
    reset: Any = None,
    **kwargs: Any,  # noqa: ANN001
) -> tuple[Any, float]:
    """``function(*args, **kwargs)`` under the time limit, and its (median) seconds."""
    started = time.perf_counter()
    result = limited(function, *args, **kwargs)
    times = [time.perf_counter() - started]
    while repeat and times[0] < REPEAT_BELOW and len(times) < REPEATS:
        if reset is not None:
            reset()
        started = time.perf_counter()
        result = limited(function, *args, **kwargs)
        times.append(time.perf_counter() - started)
    return result, float(np.median(times))


def limited(function, *args: Any, **kwargs: Any) -> Any:  # noqa: ANN001
    """``function(*args, **kwargs)``, or raise ``_Timeout`` after :data:`LIMIT` seconds."""
    signal.signal(signal.SIGALRM, _on_alarm)
    signal.setitimer(signal.ITIMER_REAL, LIMIT)
    try:
        return function(*args, **kwargs)
    finally:
        signal.setitimer(signal.ITIMER_REAL, 0)


def run_child(network: str, checker: str, *, limit: float) -> dict[str, Any]:
    global LIMIT
    LIMIT = limit
    problem = Problem(network)
    if checker == "scipy differentiate" and problem.n**2 * 8 > DIFFERENTIATE_LIMIT_BYTES:
        return {"skipped": f"would allocate {problem.n**2 * 8 / 2**30:.0f} GiB"}
    runners = {
        "gradcheck default": lambda: _gradcheck(problem),
        "gradcheck directional": lambda: _gradcheck(problem, mode="directional"),
        "gradcheck full": lambda: _gradcheck(problem, mode="full"),
        "gradcheck full (real-only loss)": lambda: _gradcheck(problem, mode="full", real_only=True),
        "gradcheck full (central)": lambda: _gradcheck(problem, mode="full", method="central"),
        "gradcheck full (central, 2 processes)": lambda: _with_pool(problem),
        "gradcheck full (central, vectorized, 2 processes)": lambda: _with_pool(
            problem, vectorized=True
        ),
        "gradcheck full (central, vectorized)": lambda: _gradcheck(
            problem, mode="full", method="central", vectorized=True
        ),
        "torch gradcheck fast": lambda: _torch(problem, True),
        "torch gradcheck slow": lambda: _torch(problem, False),
        "scipy check_grad": lambda: _reference_peer(problem, "check_grad"),
        "scipy differentiate": lambda: _reference_peer(problem, "differentiate"),
        "numdifftools": lambda: _reference_peer(problem, "numdifftools"),
    }
    if checker.startswith("torch"):
        try:
            import torch  # noqa: F401
        except ImportError:
            return {"skipped": "torch not installed"}
    rss_before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    try:
        out = runners[checker]()
    except _Timeout:
        return {"timeout": limit, "evaluations_done": DONE[0], "n_params": problem.n}
    out["rss_mib"] = (resource.getrusage(resource.RUSAGE_SELF).ru_maxrss - rss_before) / 1024
    traced = "processes" not in checker  # tracemalloc cannot see the workers' memory
    if os.environ.get("GRADCHECK_BENCH_MEMORY", "1") == "1" and out["seconds"] < 30 and traced:
        # A second run of the correct gradient only, traced: tracemalloc slows Python down.
        tracemalloc.start()
        if checker.startswith("gradcheck"):
            options: dict[str, Any] = {
                "gradcheck default": {},
                "gradcheck full": {"mode": "full"},
                "gradcheck full (real-only loss)": {"mode": "full", "real_only": True},
                "gradcheck directional": {"mode": "directional"},
                "gradcheck full (central)": {"mode": "full", "method": "central"},
                "gradcheck full (central, vectorized)": {
                    "mode": "full",
                    "method": "central",
                    "vectorized": True,
                },
            }[checker]
            loss = problem.vloss if options.get("vectorized") else problem.loss
            if options.pop("real_only", False):
                plain = problem.loss
                loss = lambda params: float(plain(params))  # noqa: E731
            check(loss, problem.grad, problem.params, rng=0, progress=False, **options)
        else:
            runners[checker]()
        out["peak_mib"] = tracemalloc.get_traced_memory()[1] / 2**20
        tracemalloc.stop()
    out["params_mib"] = problem.n * 8 / 2**20
    out["n_params"] = problem.n
    return out


# -- parent ----------------------------------------------------------------------------------
def run_pair(network: str, checker: str, limit: float, threads: int) -> dict[str, Any]:
    command = [sys.executable, __file__, "--child", network, checker, "--limit", str(limit)]
    env = dict(os.environ, GRADCHECK_BENCH_LIMIT=str(limit))
    for name in ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS"):
        env[name] = str(threads)
    try:
        done = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=5 * limit + 60,
            check=False,
            env=env,
        )
    except subprocess.TimeoutExpired:
        return {"timeout": limit}
    if done.returncode != 0:
        return {"error": done.stderr.strip().splitlines()[-1] if done.stderr else "failed"}
    return json.loads(done.stdout.strip().splitlines()[-1])


def _seconds(entry: dict[str, Any]) -> str:
    if "timeout" in entry:
        text = f"> {entry['timeout']:g} s"
        if entry.get("estimated_seconds"):
            text += (
                f" (~{entry['estimated_seconds']:.0f} s: {entry['evaluations_done']:,} of "
                f"~{entry['evaluations_needed']:,.0f} evaluations done)"
            )
        return text
    if "skipped" in entry:
        return entry["skipped"]
    if "error" in entry:
        return "error"
    return f"{entry['seconds']:.3g} s"


def _caught(entry: dict[str, Any]) -> str:
    if "seconds" not in entry:
        return "n/a"
    marks = []
    for bug in BUGS:
        value = entry.get(bug)
        marks.append("timeout" if value is None else "yes" if value else "**no**")
    ok = "" if entry.get("passed", True) else " (correct gradient FAILED)"
    return " / ".join(marks) + ok


def markdown(results: dict[str, Any]) -> str:
    lines = [
        "# gradcheck benchmarks",
        "",
        f"{results['machine']}; {results['date']}. Generated by `python benchmarks/run.py"
        f"{' --quick' if results['quick'] else ''}`; time limit {results['limit']:g} s per "
        "checker and network.",
        "",
        "Caught = single element off by 1e-3 of the largest / whole gradient x (1 + 1e-4) / "
        "sign of a saturated unit's column flipped.  Peers without a verdict count as catching "
        "a bug when their error for it exceeds 10x their error for the correct gradient.",
        "",
    ]
    for network, entries in results["networks"].items():
        n = next((e["n_params"] for e in entries.values() if "n_params" in e), None)
        lines += [f"## {network} ({n:,} parameters)" if n else f"## {network}", ""]
        lines += [
            "| checker | seconds | loss evaluations | peak memory (tracemalloc) | caught | mode |",
            "|---|---:|---:|---:|---|---|",
        ]
        for checker, entry in entries.items():
            evaluations = f"{entry['evaluations']:,}" if "evaluations" in entry else ""
            peak = f"{entry['peak_mib']:.1f} MiB" if "peak_mib" in entry else ""
            if peak and "params_mib" in entry:
                peak += f" ({entry['peak_mib'] / entry['params_mib']:.1f}x params)"
            lines.append(
                f"| {checker} | {_seconds(entry)} | {evaluations} | {peak} | {_caught(entry)} "
                f"| {entry.get('mode', '')} |"
            )
        ratios = results["ratios"].get(network, {})
        if ratios:
            lines += ["", "Time relative to the default check (peer / gradcheck default):", ""]
            lines += [f"- {peer}: {value}" for peer, value in ratios.items()]
        guarantee = entries.get("gradcheck default", {}).get("guarantee")
        if guarantee:
            lines += ["", f"Default check's guarantee: {guarantee}."]
        if n and n >= 100_000:
            found = targets(entries)
            if found:
                lines += ["", "Targets on this network (all times in this run, 2 CPUs):", ""]
                lines += found
        lines.append("")
    return "\n".join(lines)


def _time(entry: dict[str, Any] | None) -> float | None:
    """Seconds of a finished run, or the extrapolated seconds of one that hit the limit."""
    if not entry:
        return None
    if "seconds" in entry:
        return float(entry["seconds"])
    return entry.get("estimated_seconds")


def targets(entries: dict[str, Any]) -> list[str]:
    """Issue 6's targets on this network, each with the measured ratio and a verdict."""

    def verdict(ok: bool) -> str:
        return "**met**" if ok else "**not met**"

    lines = []
    default = entries.get("gradcheck default", {})
    fast = entries.get("torch gradcheck fast", {})
    if "seconds" in default and "seconds" in fast:
        ratio = default["seconds"] / fast["seconds"]
        missed = [bug for bug in BUGS if fast.get(bug) is False and default.get(bug)]
        lines.append(
            f"- default check / torch fast mode: {ratio:.2f}x (target <= 3x) "
            f"{verdict(ratio <= 3)}; it catches {len(missed)} planted bug(s) fast mode misses "
            f"({', '.join(missed) or 'none'})"
        )
    per_element = [
        _time(entries.get(name))
        for name in (
            "scipy check_grad",
            "numdifftools",
            "torch gradcheck slow",
            "scipy differentiate",
        )
    ]
    per_element = [t for t in per_element if t]
    if "seconds" in default and per_element:
        ratio = min(per_element) / default["seconds"]
        lines.append(
            f"- fastest per-element peer / default check: {ratio:.0f}x (target > 100x) "
            f"{verdict(ratio > 100)}"
        )
    reference = _time(entries.get("scipy check_grad"))
    if reference:
        for name, bound, text in (
            ("gradcheck full (central)", 1.0, "check_grad"),
            ("gradcheck full (central, 2 processes)", 1.0, "check_grad"),
            ("gradcheck full (central, vectorized)", 0.5, "check_grad / 2"),
            ("gradcheck full (central, vectorized, 2 processes)", 0.5, "check_grad / 2"),
        ):
            mine = _time(entries.get(name))
            if mine:
                ratio = mine / reference
                approx = "~" if "seconds" not in entries[name] else ""
                cores = "2 processes" if "processes" in name else "one process"
                lines.append(
                    f"- {name} / check_grad: {approx}{ratio:.2f}x (target <= {bound:g}x, "
                    f"i.e. <= {text}) {verdict(ratio <= bound)} ({cores})"
                )
    if "peak_mib" in default and "params_mib" in default:
        ratio = default["peak_mib"] / default["params_mib"]
        lines.append(
            f"- default check's peak memory: {ratio:.1f}x the parameters (target < 10x) "
            f"{verdict(ratio < 10)}"
        )
    return lines


def extrapolate(entries: dict[str, Any], done: dict[str, Any]) -> None:
    """Estimate the time of runs that hit the limit from the evaluations they managed.

    The evaluations a run needs are ``N + 1`` for check_grad, else the evaluations per
    parameter the same checker used on the largest network that finished, times ``N``.
    """
    for checker, entry in entries.items():
        if "timeout" not in entry or not entry.get("evaluations_done"):
            continue
        n = entry["n_params"]
        if checker == "scipy check_grad":
            needed = n + 1
        else:
            finished = [
                e[checker]
                for e in done.values()
                if checker in e and "seconds" in e[checker] and e[checker].get("n_params")
            ]
            if not finished:
                continue
            largest = max(finished, key=lambda e: e["n_params"])
            needed = largest["evaluations"] / largest["n_params"] * n
        entry["evaluations_needed"] = needed
        entry["estimated_seconds"] = entry["timeout"] * needed / entry["evaluations_done"]


def ratios(entries: dict[str, Any]) -> dict[str, str]:
    base = entries.get("gradcheck default", {}).get("seconds")
    out = {}
    if not base:
        return out
    for checker, entry in entries.items():
        if checker == "gradcheck default":
            continue
        if "seconds" in entry and "over_limit" not in entry:
            out[checker] = f"{entry['seconds'] / base:.3g}x"
        elif entry.get("estimated_seconds"):
            out[checker] = f"~{entry['estimated_seconds'] / base:.3g}x (extrapolated)"
        elif "timeout" in entry:
            out[checker] = f"> {entry['timeout'] / base:.3g}x"
    return out


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="smaller time limit, fewer peers")
    parser.add_argument("--limit", type=float, default=None, help="seconds per checker (90)")
    parser.add_argument("--child", nargs=2, metavar=("NETWORK", "CHECKER"), help=argparse.SUPPRESS)
    parser.add_argument(
        "--render",
        action="store_true",
        help="only rewrite latest.md from latest.json (no runs)",
    )
    parser.add_argument("--networks", nargs="*", default=list(NETWORKS))
    parser.add_argument("--checkers", nargs="*", default=list(CHECKERS))
    parser.add_argument(
        "--threads",
        type=int,
        default=1,
        help="BLAS/torch threads per checker (1: every checker single-threaded, comparable)",
    )
    args = parser.parse_args(argv)
    if args.child:
        print(json.dumps(run_child(*args.child, limit=args.limit or 90.0)))
        return 0
    if args.render:
        results = json.loads((RESULTS / "latest.json").read_text())
        (RESULTS / "latest.md").write_text(markdown(results))
        print(f"wrote {RESULTS / 'latest.md'}")
        return 0
    limit = args.limit or (15.0 if args.quick else 90.0)
    checkers = args.checkers
    if args.quick:
        checkers = [c for c in checkers if c not in ("numdifftools", "torch gradcheck slow")]
    results: dict[str, Any] = {
        "machine": f"{platform.machine()}, {os.cpu_count()} CPUs, {args.threads} BLAS "
        f"thread(s) per checker, Python {platform.python_version()}, numpy {np.__version__}",
        "date": time.strftime("%Y-%m-%d %H:%M"),
        "quick": args.quick,
        "limit": limit,
        "networks": {},
        "ratios": {},
    }
    for network in args.networks:
        entries: dict[str, Any] = {}
        for checker in checkers:
            print(f"{network:>12}  {checker:<38}", end="", flush=True)
            entries[checker] = run_pair(network, checker, limit, args.threads)
            print(f" {_seconds(entries[checker]):>14}  {_caught(entries[checker])}", flush=True)
        results["networks"][network] = entries
        extrapolate(entries, results["networks"])
        results["ratios"][network] = ratios(entries)
    RESULTS.mkdir(parents=True, exist_ok=True)
    (RESULTS / "latest.json").write_text(json.dumps(results, indent=2) + "\n")
    (RESULTS / "latest.md").write_text(markdown(results))
    print(f"wrote {RESULTS / 'latest.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
