"""The default check at scale: many parameter arrays, and one huge array.

Runs ``gradcheck.check`` (default options, 5 s budget) on a correct gradient of
``sum(scale_p * sin(w_p)**2)`` for each shape, with a loss that takes complex input
(complex-step probes) and one that drops it (Richardson probes), each in its own
process, and prints loss evaluations, seconds, and the peak memory traced by
tracemalloc in a second, identical run (relative to the parameters' size, and per
array: small arrays cost a fixed few kilobytes of bookkeeping each).  Writes
``benchmarks/results/scale.json`` and ``scale.md``.

    python benchmarks/scale.py            # all shapes
    python benchmarks/scale.py --quick    # the small shapes only
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import time
import tracemalloc
from pathlib import Path

import numpy as np

SHAPES = {
    "1000 arrays x 1": (1000, 1),
    "200 arrays x 100": (200, 100),
    "20,000 arrays x 1": (20_000, 1),
    "1 array x 1e7": (1, 10_000_000),
}
QUICK = ("1000 arrays x 1", "200 arrays x 100")


def _problem(n_arrays: int, size: int, complex_ok: bool):  # type: ignore[no-untyped-def]
    rng = np.random.default_rng(0)
    scales = 10.0 ** rng.uniform(-1, 1, n_arrays)
    params = {f"p{i}": rng.standard_normal(size) for i in range(n_arrays)}

    def loss(p):  # type: ignore[no-untyped-def]
        total = 0.0
        for scale, w in zip(scales, p.values(), strict=True):
            total = total + scale * np.sum(np.sin(w if complex_ok else np.real(w)) ** 2)
        return total

    def grad(p):  # type: ignore[no-untyped-def]
        return {
            k: s * 2 * np.sin(w) * np.cos(w) for s, (k, w) in zip(scales, p.items(), strict=True)
        }

    return params, loss, grad


def _run(name: str, complex_ok: bool, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    import gradcheck

    params, loss, grad = _problem(*SHAPES[name], complex_ok)
    size = sum(v.nbytes for v in params.values())
    started = time.perf_counter()  # timed without tracemalloc, which slows every allocation
    result = gradcheck.check(loss, grad, params, progress=False)
    seconds = time.perf_counter() - started
    tracemalloc.start()
    gradcheck.check(loss, grad, params, progress=False)
    peak = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    queue.put(
        {
            "shape": name,
            "loss": "complex-capable" if complex_ok else "real-only",
            "status": result.status,
            "mode": result.mode,
            "evaluations": result.n_evaluations,
            "seconds": round(seconds, 2),
            "peak_memory_x_params": round(peak / size, 1),
            "peak_bytes_per_array": round(peak / len(params)),
            "rho": result.directional["guarantee"]["rho"] if result.directional else None,
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the small shapes only")
    args = parser.parse_args()
    rows = []
    for name in QUICK if args.quick else SHAPES:
        for complex_ok in (True, False):
            queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
            process = multiprocessing.Process(target=_run, args=(name, complex_ok, queue))
            process.start()
            row = queue.get()
            process.join()
            rows.append(row)
            print(row, flush=True)
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "scale.json").write_text(json.dumps(rows, indent=2) + "\n")
    lines = [
        "| shape | loss | status | mode | loss evaluations | seconds | peak memory | per array "
        "| rho |",
        "|---|---|---|---|---:|---:|---:|---:|---:|",
    ]
    for r in rows:
        rho = "" if r["rho"] is None else f"{r['rho']:.2g}"
        lines.append(
            f"| {r['shape']} | {r['loss']} | {r['status']} | {r['mode']} | "
            f"{r['evaluations']:,} | {r['seconds']} | {r['peak_memory_x_params']}x | "
            f"{r['peak_bytes_per_array']:,} B | {rho} |"
        )
    (out / "scale.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
