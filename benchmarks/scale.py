"""The default check at scale: many parameter arrays, one huge array, and networks.

**Shapes.**  Runs ``gradcheck.check`` (default options, 5 s budget) on a correct gradient of
``sum(scale_p * sin(w_p)**2)`` for each shape, with a loss that takes complex input
(complex-step probes) and one that drops it (Richardson probes), each in its own
process, and records loss evaluations, seconds, and the peak memory traced by
tracemalloc in a second, identical run: relative to the parameters' data bytes, relative
to their footprint (what the parameter dict, its keys and its arrays occupy, traced by
tracemalloc while they are made), per array, and the part of it the returned result
keeps (one small object per parameter and the compared elements' values, shared).  A
one-element array holds 8 bytes of data, but numpy alone spends ~100 bytes on the array
object: for tiny arrays the multiple of the data bytes measures bookkeeping that the
caller's own dict already pays, and the footprint is the fair measure.

**Networks.**  ``gradcheck.model.network`` with sigmoid layers (784-128-10, and
784-1260-10: 1.0e6 parameters), 16 samples, checked in directional mode: the correct
gradient, a dense bug (the whole gradient times ``1 + 1e-4``) and a one-element bug
(one element of ``weight1`` off by ``1e-3`` of the largest), evaluations and seconds.

Writes ``benchmarks/results/scale.json`` and ``scale.md``.

    python benchmarks/scale.py            # everything (~10 minutes on a quiet machine)
    python benchmarks/scale.py --quick    # the small shapes and 784-128-10 only
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import time
import tracemalloc
from pathlib import Path
from typing import Any

import numpy as np

SHAPES = {
    "1000 arrays x 1": (1000, 1),
    "200 arrays x 100": (200, 100),
    "20,000 arrays x 1": (20_000, 1),
    "1 array x 1e7": (1, 10_000_000),
}
NETWORKS = {"784-128-10": (784, 128, 10), "784-1260-10 (1.0e6)": (784, 1260, 10)}
QUICK = ("1000 arrays x 1", "200 arrays x 100", "784-128-10")
BUGS = ("correct", "dense 1+1e-4", "one element")


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


def _run_shape(name: str, complex_ok: bool, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    import gradcheck

    _problem(*SHAPES[name], complex_ok)  # once untraced, so first-call caches are not counted
    tracemalloc.start()  # what the parameters occupy as Python holds them (arrays, dict, keys)
    params, loss, grad = _problem(*SHAPES[name], complex_ok)
    footprint = tracemalloc.get_traced_memory()[0]
    tracemalloc.stop()
    size = sum(v.nbytes for v in params.values())
    started = time.perf_counter()  # timed without tracemalloc, which slows every allocation
    result = gradcheck.check(loss, grad, params, progress=False)
    seconds = time.perf_counter() - started
    del result
    tracemalloc.start()
    before = tracemalloc.get_traced_memory()[0]
    result = gradcheck.check(loss, grad, params, progress=False)
    kept, peak = tracemalloc.get_traced_memory()
    tracemalloc.stop()
    queue.put(
        {
            "shape": name,
            "loss": "complex-capable" if complex_ok else "real-only",
            "status": result.status,
            "mode": result.mode,
            "evaluations": result.n_evaluations,
            "seconds": round(seconds, 2),
            "peak_memory_x_params": round((peak - before) / size, 1),
            "peak_memory_x_footprint": round((peak - before) / footprint, 1),
            "peak_bytes_per_array": round((peak - before) / len(params)),
            "result_bytes_per_array": round((kept - before) / len(params)),
            "rho": result.directional["guarantee"]["rho"] if result.directional else None,
            "note": next((h.kind for h in result.hazards if h.blocking), ""),
        }
    )


def _network_problem(sizes: tuple[int, ...]) -> tuple[Any, ...]:
    from gradcheck.model.network import Network, random_data

    net = Network(sizes, ("sigmoid",) * (len(sizes) - 1))
    x, y = random_data(net, 16, rng=1)
    params = net.init_params(rng=0)
    loss, grad = net.functions(x, y)
    flat = net.flatten(grad(params))
    one = flat.copy()
    one[min(5000, flat.size - 1)] += 1e-3 * np.abs(flat).max()
    gradients = {"correct": flat, "dense 1+1e-4": flat * (1 + 1e-4), "one element": one}
    return net, params, loss, gradients


def _run_network(name: str, bug: str, queue: multiprocessing.Queue) -> None:  # type: ignore[type-arg]
    import gradcheck

    net, params, loss, gradients = _network_problem(NETWORKS[name])
    vector = gradients[bug]
    started = time.perf_counter()
    result = gradcheck.check(
        loss, lambda p: net.unflatten(vector), params, mode="directional", progress=False
    )
    queue.put(
        {
            "network": name,
            "parameters": net.n_params,
            "gradient": bug,
            "status": result.status,
            "evaluations": result.n_evaluations,
            "probe_evaluations": result.directional["n_evaluations"],
            "seconds": round(time.perf_counter() - started, 2),
            "diagnosis": result.diagnosis.kind if result.diagnosis else "",
        }
    )


def _in_child(target: Any, *args: Any) -> dict[str, Any]:
    queue: multiprocessing.Queue = multiprocessing.Queue()  # type: ignore[type-arg]
    process = multiprocessing.Process(target=target, args=(*args, queue))
    process.start()
    row: dict[str, Any] = queue.get()
    process.join()
    print(row, flush=True)
    return row


def _tables(shapes: list[dict[str, Any]], networks: list[dict[str, Any]]) -> list[str]:
    lines = [
        f"Measured {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, load average "
        f"{os.getloadavg()[0]:.1f} on {os.cpu_count()} CPUs (seconds scale with the load).",
        "",
        "| shape | loss | status | mode | loss evaluations | seconds | peak memory / data "
        "| peak memory / footprint | peak per array | result per array | rho |",
        "|---|---|---|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for r in shapes:
        rho = "" if r["rho"] is None else f"{float(r['rho']):.2g}"
        status = r["status"] + (f" ({r['note']})" if r["note"] else "")
        lines.append(
            f"| {r['shape']} | {r['loss']} | {status} | {r['mode']} | {r['evaluations']:,} | "
            f"{r['seconds']} | {r['peak_memory_x_params']}x | {r['peak_memory_x_footprint']}x "
            f"| {r['peak_bytes_per_array']:,} B "
            f"| {r['result_bytes_per_array']:,} B | {rho} |"
        )
    if networks:
        lines += [
            "",
            "| network | parameters | gradient | status | loss evaluations (probes) | seconds "
            "| diagnosis |",
            "|---|---:|---|---|---:|---:|---|",
        ]
        for r in networks:
            lines.append(
                f"| {r['network']} | {r['parameters']:,} | {r['gradient']} | {r['status']} | "
                f"{r['evaluations']:,} ({r['probe_evaluations']}) | {r['seconds']} | "
                f"{r['diagnosis']} |"
            )
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="the small shapes only")
    args = parser.parse_args()
    shapes = [
        _in_child(_run_shape, name, complex_ok)
        for name in SHAPES
        if not args.quick or name in QUICK
        for complex_ok in (True, False)
    ]
    networks = [
        _in_child(_run_network, name, bug)
        for name in NETWORKS
        if not args.quick or name in QUICK
        for bug in BUGS
    ]
    out = Path(__file__).parent / "results"
    out.mkdir(exist_ok=True)
    (out / "scale.json").write_text(
        json.dumps({"shapes": shapes, "networks": networks}, indent=2) + "\n"
    )
    lines = _tables(shapes, networks)
    (out / "scale.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
