"""The error maps of a check page and the table of its worst failing elements.

A map shows ``|error| / tolerance`` per element on a log colour scale.  A parameter
larger than :data:`~gradcheck.report.plots.MAP_CELLS_MAX` a side is aggregated to
blocks, each coloured by its worst element, so one wrong element of a 784x128 weight
is one red cell (and outlined), not a pixel lost in a strip.  Beside the maps, the
top failing elements by ``|error| / tolerance`` with their values; for the derivative
kinds (VJP, JVP, Jacobian, Hessian, HVP) each row names its input element and the
output it is the derivative of, as ``str(result)`` does.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

from gradcheck.report import plots
from gradcheck.results import CheckResult, ParameterResult, format_index

__all__ = ["TOP_FAILING", "heatmap_panels", "top_failing", "block_naming", "element_names"]

#: Rows of the top-failing table (the full list, in index order, follows it).
TOP_FAILING = 20
#: Up to this many cells each cell gets a tooltip with its element's numbers.
TOOLTIPS_MAX = 1024
#: Failing cells outlined (and titled with their worst element) on an aggregated map, when there
#: are at most this many; beyond, the failure is dense and the red of the cells shows it.
MARKS_MAX = 256
#: Largest side of a map in CSS px: a 390 px phone's column is 362 px, so a map never has
#: to shrink there, and its 9 px tick labels stay 9 px.
MAP_SIDE_PX = 320.0

_OUTPUT = re.compile(r"^(?P<name>.+) \((?P<shape>[0-9, ]*)\)$")
_BLOCK = re.compile(r"^d (?P<output>.+?) / d (?P<input>.+)$")


def _output_shapes(result: CheckResult) -> dict[str, tuple[int, ...]]:
    """``{"out": (4, 2)}`` from ``result.outputs`` (``"out (4, 2)"``)."""
    shapes = {}
    for text in result.outputs:
        match = _OUTPUT.match(text)
        if match:
            sizes = match["shape"].replace(" ", "").split(",")
            shapes[match["name"]] = tuple(int(s) for s in sizes if s)
    return shapes


def block_naming(result: CheckResult, parameter: ParameterResult) -> Any:
    """For a Jacobian block ``d out / d x`` (shape ``out.shape + x.shape``) of a derivative
    check: ``(output, input, output shape)``; None for any other parameter."""
    if result.kind == "gradient":
        return None
    match = _BLOCK.match(parameter.name)
    shape = _output_shapes(result).get(match["output"]) if match else None
    if match is None or shape is None or parameter.shape[: len(shape)] != shape:
        return None
    return match["output"], match["input"], shape


def element_names(result: CheckResult, parameter: ParameterResult, index: tuple[int, ...]) -> Any:
    """``(output element, input element)`` of one element, as ``str(result)`` names them: an
    entry ``d out[j] / d x[i]`` of a Jacobian block as ``("out[j]", "x[i]")``, an element of a
    gradient as ``(None, "w[i]")``, an input's element of a VJP as ``("<u, out>", "x[i]")``."""
    block = block_naming(result, parameter)
    if block is not None:
        output, name, shape = block
        k = len(shape)
        return output + format_index(index[:k]), name + format_index(index[k:])
    if result.kind == "gradient":
        return None, parameter.name + format_index(index)
    role = ", ".join(text.split(" (")[0] for text in result.outputs) or "f"
    return f"<u, {role}>", parameter.name + format_index(index)


def top_failing(result: CheckResult, limit: int = TOP_FAILING) -> dict[str, Any]:
    """The ``limit`` failing elements (and, for derivative kinds, wrong entries) with the
    largest ``|error| / tolerance``, worst first, without building every failing element."""
    rows = []
    for p in result.failed_parameters:
        flat = np.flatnonzero(p.failed)
        error = p.abs_error.reshape(-1)[flat]
        tolerance = p.tolerance.reshape(-1)[flat]
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.where(tolerance > 0, error / tolerance, np.inf)
        ratio = np.nan_to_num(ratio, nan=np.inf)
        keep = np.argsort(-ratio, kind="stable")[:limit]
        for k in keep:
            index = tuple(int(i) for i in np.unravel_index(int(flat[k]), p.shape))
            output, element = element_names(result, p, index)
            rows.append(
                {
                    "output": output,
                    "element": element,
                    "analytic": float(p.analytic.reshape(-1)[flat[k]]),
                    "reference": float(p.reference.reshape(-1)[flat[k]]),
                    "method": p.method,
                    "error": float(error[k]),
                    "tolerance": float(tolerance[k]),
                    "ratio": float(ratio[k]),
                }
            )
    count = result.n_failing_elements
    seen = {(row["output"], row["element"]) for row in rows}
    for entry in result.entries:
        if entry.passed or (entry.output, entry.input) in seen:
            continue  # a Jacobian or Hessian block's element is already listed as this entry
        gap = abs(entry.analytic - entry.reference)
        count += 1
        rows.append(
            {
                "output": entry.output,
                "element": entry.input,
                "analytic": entry.analytic,
                "reference": entry.reference,
                "method": entry.method,
                "error": gap,
                "tolerance": entry.tolerance,
                "ratio": gap / entry.tolerance if entry.tolerance > 0 else float("inf"),
            }
        )
    rows.sort(key=lambda row: -row["ratio"])
    return {
        "rows": rows[:limit],
        "count": count,
        "cap": limit,
        "derivative": result.kind != "gradient",
    }


def _cells(
    result: CheckResult, p: ParameterResult, bm: plots.BlockMap, cell: float
) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """The map's coloured rectangles (equal neighbours merged when untitled) and the outlined
    failing cells with their worst element in the tooltip."""
    exponent = bm.exponent
    picture = np.clip(exponent, *plots.RATIO_RANGE)
    titled = not bm.aggregated and p.analytic.size <= TOOLTIPS_MAX
    if not titled:  # 1/8 of a decade is finer than the eye tells apart, and merges runs
        picture = np.round(picture * 8) / 8
    colors = np.array(plots.ratio_colors(picture)).reshape(picture.shape)
    labelled = cell >= 20
    rects: list[dict[str, Any]] = []
    for i in range(picture.shape[0]):
        j = 0
        while j < picture.shape[1]:
            run = 1
            if not titled and not labelled:
                while j + run < picture.shape[1] and colors[i, j + run] == colors[i, j]:
                    run += 1
            value, k = float(picture[i, j]), int(bm.worst[i, j])
            label = ""
            if labelled and np.isfinite(value) and value > plots.RATIO_RANGE[0]:
                power = float(exponent[i, j])  # the true power, beyond the clipping
                label = "∞" if np.isinf(power) else f"{power:.0f}".replace("-", "−")
            rects.append(
                {
                    "x": j * cell,
                    "y": i * cell,
                    "w": run * cell,
                    "color": str(colors[i, j]),
                    "title": _tooltip(result, p, k) if titled else "",
                    "label": label,
                    "dark": bool(np.isfinite(value) and value > 1.5),
                    "failing": bool(bm.failing[i, j]) and titled,
                }
            )
            j += run
    marks = []
    if not titled and bm.failing.sum() <= MARKS_MAX:
        for i, j in np.argwhere(bm.failing):
            marks.append(
                {"x": j * cell, "y": i * cell, "title": _tooltip(result, p, int(bm.worst[i, j]))}
            )
    return rects, marks


def _tooltip(result: CheckResult, p: ParameterResult, flat: int) -> str:
    if flat < 0:
        return "not compared"
    index = tuple(int(i) for i in np.unravel_index(flat, p.shape)) if p.shape else ()
    output, element = element_names(result, p, index)
    name = f"d {output} / d {element}" if output and not output.startswith("<") else element
    if not p.checked.reshape(-1)[flat]:
        return f"{name}: not compared"
    return (
        f"{name}: analytic {float(p.analytic.reshape(-1)[flat]):.6g}, reference "
        f"{float(p.reference.reshape(-1)[flat]):.6g}, |error| "
        f"{float(p.abs_error.reshape(-1)[flat]):.2g}, tolerance "
        f"{float(p.tolerance.reshape(-1)[flat]):.2g}"
    )


def heatmap_panels(result: CheckResult) -> list[dict[str, Any]]:
    """One map per parameter, for the template (``_macros.html.j2``'s ``heatmap``)."""
    panels = []
    for p in result.parameters:
        if p.analytic.size == 0:
            continue
        block = block_naming(result, p)
        rows = int(np.prod(block[2])) if block is not None else None
        bm = plots.block_map(p, rows)
        n_rows, n_cols = bm.exponent.shape
        cell = float(np.clip(min(30.0, MAP_SIDE_PX / n_cols, MAP_SIDE_PX / n_rows), 2.0, 30.0))
        rects, marks = _cells(result, p, bm, cell)
        row_ticks = n_rows > 1 or p.analytic.ndim > 1
        widest = str(bm.layout[0] - 1 if cell < 12 or bm.aggregated else n_rows - 1)
        worst = None
        if p.checked.any():
            flat = int(np.ravel_multi_index(p.worst_index, p.shape)) if p.shape else 0
            i, j = bm.cell_of(flat)
            worst = (j * cell, i * cell)
        panels.append(
            {
                "name": p.name,
                "shape": "×".join(str(v) for v in p.shape) or "scalar",
                "passed": p.passed,
                "verdict": "ok" if p.passed else f"{p.n_failed} of {p.n_checked} fail",
                "rows": n_rows,
                "cols": n_cols,
                "layout": bm.layout,
                "block": bm.block if bm.aggregated else None,
                "axes": ("output element", "input element") if block is not None else None,
                "cell": cell,
                "width": n_cols * cell,
                "height": n_rows * cell,
                "cells": rects,
                "marks": marks,
                "n_failing_cells": int(bm.failing.sum()),
                "worst": worst,
                "row_ticks": row_ticks,
                "left": 8.0 + 6.0 * len(widest) if row_ticks else 4.0,
                "grid": cell >= 8 and not bm.aggregated and p.analytic.size <= TOOLTIPS_MAX,
            }
        )
    return panels
