"""The report of one :class:`~gradcheck.results.CheckResult`."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.errors import InvalidParameterError
from gradcheck.report import plots
from gradcheck.report._render import environment, render
from gradcheck.results import CheckResult, ParameterResult, format_index

__all__ = ["Evidence", "gather_evidence", "render_check_report"]

STATUS_TEXT = {
    "passed": "The gradient matches the references",
    "failed": "The gradient is wrong",
    "inconclusive": "No verdict is possible",
}


@dataclass(frozen=True)
class Evidence:
    """What the loss itself can show beyond the check: the V curves and the agreement table."""

    curves_svg: str | None
    agreement: list[dict[str, Any]]
    reference_names: list[str]
    skipped: dict[str, str]
    truth_method: str
    n_evaluations: int
    seconds: float


def _checked_flat(parameter: ParameterResult) -> NDArray[np.intp]:
    return np.flatnonzero(parameter.checked.ravel())


def _sample(
    result: CheckResult, offsets: dict[str, int], count: int, rng: np.random.Generator
) -> list[tuple[ParameterResult, int]]:
    """Up to ``count`` elements: the worst of each parameter (failed first), then random ones."""
    chosen: list[tuple[ParameterResult, int]] = []
    ordered = sorted(result.parameters, key=lambda p: (p.passed, -p.worst_ratio))
    for p in ordered:
        if len(chosen) >= count:
            break
        if p.checked.any():
            index = p.worst_index
            local = int(np.ravel_multi_index(index, p.shape)) if p.shape else 0
            chosen.append((p, local))
    pool = [
        (p, int(k))
        for p in result.parameters
        for k in _checked_flat(p)
        if (p, int(k)) not in chosen
    ]
    while len(chosen) < count and pool:
        chosen.append(pool.pop(int(rng.integers(len(pool)))))
    return chosen


def gather_evidence(
    result: CheckResult,
    loss: Callable[[Any], Any],
    params: Any,
    *,
    samples: int = 4,
    rng: Any = None,
) -> Evidence:
    """Spend extra loss evaluations on a few elements: step sweeps and every reference."""
    from gradcheck.problem.objective import Objective
    from gradcheck.problem.space import ParameterSpace
    from gradcheck.references.complex_step import complex_step_capability
    from gradcheck.references.noise import estimate_noise
    from gradcheck.references.sweep import reference_agreement, step_sweep

    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise InvalidParameterError(f"samples: expected a positive int, got {samples!r}")
    started = time.perf_counter()
    space = ParameterSpace(params)
    shapes = {leaf.name: leaf.shape for leaf in space.leaves}
    for p in result.parameters:
        if shapes.get(p.name) != p.shape:
            raise InvalidParameterError(
                f"params: do not match the checked result (parameter {p.name!r} of shape "
                f"{p.shape} is {'missing' if p.name not in shapes else shapes[p.name]})"
            )
    generator = (
        rng
        if isinstance(rng, np.random.Generator)
        else np.random.default_rng(result.seed if rng is None else rng)
    )
    objective = Objective(loss, space)
    # A check decided by the complex step did not measure the loss's noise; the sweeps
    # and the agreement table divide differences by steps, so they need it.
    if np.isfinite(result.noise) and result.noise > 0:
        sigma = float(result.noise)
    else:
        sigma = estimate_noise(objective, rng=generator).sigma
    capability = complex_step_capability(objective, sigma=sigma, rng=generator)
    offsets = {leaf.name: leaf.offset for leaf in space.leaves}
    sample = _sample(result, offsets, samples, generator)
    if not sample:
        return Evidence(
            None, [], [], {}, "", objective.n_evaluations, time.perf_counter() - started
        )
    flat = np.array([offsets[p.name] + k for p, k in sample], dtype=np.intp)
    labels = [
        p.name + format_index(tuple(int(i) for i in np.unravel_index(k, p.shape)))
        for p, k in sample
    ]
    agreement = reference_agreement(objective, flat, sigma=sigma, complex_ok=capability.usable)
    truth = agreement.estimates.get("complex step") or agreement.estimates.get("Richardson")
    sweep = step_sweep(objective, flat, sigma=sigma, truth=truth)
    analytic = np.array([float(p.analytic.ravel()[k]) for p, k in sample])
    tolerance = np.array([float(p.tolerance.ravel()[k]) for p, k in sample])
    used = np.array(
        [float(p.step.ravel()[k]) if "complex" not in p.method else np.nan for p, k in sample]
    )
    curves = plots.step_curves(sweep, labels, analytic, tolerance, used)

    names = list(agreement.estimates)
    rows = []
    consensus = agreement.consensus
    for i, label in enumerate(labels):
        cells = []
        for name in names:
            estimate = agreement.estimates[name]
            value, error = float(estimate.derivative[i]), float(estimate.error[i])
            # A reference disagrees when it is further from the consensus than its own error
            # bound and the tolerance allow.
            off = abs(value - consensus[i]) > 2 * max(error, 0.0) + tolerance[i]
            cells.append({"value": value, "error": error, "off": bool(off)})
        wrong = abs(analytic[i] - consensus[i]) > tolerance[i]
        rows.append(
            {
                "label": label,
                "analytic": analytic[i],
                "analytic_wrong": bool(wrong),
                "difference": analytic[i] - consensus[i],
                "tolerance": tolerance[i],
                "cells": cells,
            }
        )
    return Evidence(
        curves_svg=curves,
        agreement=rows,
        reference_names=names,
        skipped=agreement.skipped,
        truth_method=sweep.truth_method,
        n_evaluations=objective.n_evaluations,
        seconds=time.perf_counter() - started,
    )


def _parameter_rows(result: CheckResult) -> list[dict[str, Any]]:
    rows = []
    for p in result.parameters:
        steps = p.step[np.isfinite(p.step)]
        index = p.worst_index
        has = p.checked.any()
        rows.append(
            {
                "name": p.name,
                "shape": "×".join(str(s) for s in p.shape) or "scalar",
                "dtype": p.dtype,
                "method": p.method,
                "step": float(np.median(steps)) if steps.size else None,
                "step_range": (float(steps.min()), float(steps.max())) if steps.size else None,
                "max_abs": p.max_abs_error if has else None,
                "max_rel": p.max_rel_error if has else None,
                "worst": p.name + format_index(index) if has else "",
                "worst_analytic": float(p.analytic[index]) if has else None,
                "worst_reference": float(p.reference[index]) if has else None,
                "tolerance": float(p.tolerance[index]) if has else None,
                "ratio": p.worst_ratio if has else None,
                "source": p.tolerance_source,
                "evaluations": p.n_evaluations,
                "checked": p.n_checked,
                "size": p.analytic.size,
                "failed": p.n_failed,
                "passed": p.passed,
                "kinks": len(p.kinks),
            }
        )
    return rows


#: Parameters up to this many elements are drawn cell by cell as SVG by the template (fast,
#: crisp, with a tooltip per element); larger ones as a matplotlib image.
SVG_CELLS_MAX = 4096
#: Up to this many elements each cell gets a tooltip with its numbers.
TOOLTIPS_MAX = 1024


def _heatmap_panels(result: CheckResult) -> tuple[list[dict[str, Any]], list[ParameterResult]]:
    """Cell-by-cell heatmaps for the template, and the parameters too large for them."""
    panels = []
    large = []
    for p in result.parameters:
        if p.analytic.size == 0:
            continue
        if p.analytic.size > SVG_CELLS_MAX:
            large.append(p)
            continue
        picture = plots.ratio_picture(p)
        rows, cols = picture.shape
        cell = float(np.clip(min(30.0, 520.0 / cols, 320.0 / rows), 4.0, 30.0))
        colors = plots.ratio_colors(picture)
        abs_error = p.abs_error.ravel()
        cells = []
        tooltips = p.analytic.size <= TOOLTIPS_MAX
        for k, value in enumerate(picture.ravel()):
            i, j = divmod(k, cols)
            index = tuple(int(v) for v in np.unravel_index(k, p.shape)) if p.shape else ()
            title = ""
            if tooltips:
                title = f"{p.name}{format_index(index)}: "
                if np.isnan(value):
                    title += "not compared"
                else:
                    title += (
                        f"analytic {float(p.analytic.ravel()[k]):.6g}, reference "
                        f"{float(p.reference.ravel()[k]):.6g}, |error| "
                        f"{float(abs_error[k]):.2g}, tolerance "
                        f"{float(p.tolerance.ravel()[k]):.2g}"
                    )
            label = ""
            if cell >= 20 and np.isfinite(value) and value > plots.RATIO_RANGE[0]:
                label = f"{value:.0f}".replace("-", "−")
            cells.append(
                {
                    "x": j * cell,
                    "y": i * cell,
                    "color": colors[k],
                    "title": title,
                    "label": label,
                    "dark": bool(np.isfinite(value) and value > 1.5),
                }
            )
        worst = None
        if p.checked.any():
            flat = int(np.ravel_multi_index(p.worst_index, p.shape)) if p.shape else 0
            worst = ((flat % cols) * cell, (flat // cols) * cell)
        panels.append(
            {
                "name": p.name,
                "shape": "×".join(str(v) for v in p.shape) or "scalar",
                "passed": p.passed,
                "verdict": "ok" if p.passed else f"{p.n_failed} of {p.n_checked} fail",
                "rows": rows,
                "cols": cols,
                "cell": cell,
                "width": cols * cell,
                "height": rows * cell,
                "cells": cells,
                "worst": worst,
                "row_ticks": rows > 1 or p.analytic.ndim > 1,
            }
        )
    return panels, large


def _headline(result: CheckResult) -> str:
    if result.status == "passed":
        worst = max((p.worst_ratio for p in result.parameters), default=0.0)
        return (
            f"Every checked element lies within its tolerance; the worst uses "
            f"{100 * worst:.2g}% of it."
        )
    if result.status == "inconclusive":
        blocking = [h for h in result.hazards if h.blocking]
        return blocking[0].message if blocking else "A hazard prevents a verdict."
    failed = result.failed_parameters
    parts = [f"{p.name}: {p.n_failed} of {p.n_checked} elements" for p in failed[:4]]
    more = f" and {len(failed) - 4} more" if len(failed) > 4 else ""
    return "Wrong elements in " + "; ".join(parts) + more + "."


def render_check_report(
    result: CheckResult,
    *,
    title: str | None = None,
    evidence: Evidence | None = None,
    back_link: str | None = None,
) -> str:
    """The HTML text of a check report (see :func:`gradcheck.report.write_check_report`)."""
    if not isinstance(result, CheckResult):
        from gradcheck.errors import ParameterTypeError

        raise ParameterTypeError(
            f"result: expected a gradcheck CheckResult, not {type(result).__name__}"
        )
    rows = _parameter_rows(result)
    panels, large = _heatmap_panels(result)
    sources = sorted({row["source"] for row in rows})
    dtypes = sorted({p.dtype for p in result.parameters})
    n_elements = sum(p.analytic.size for p in result.parameters)
    return render(
        "check.html.j2",
        title=title or "Gradient check",
        result=result,
        status=result.status,
        status_text=STATUS_TEXT[result.status],
        headline=_headline(result),
        rows=rows,
        common_source=sources[0] if len(sources) == 1 else None,
        n_elements=n_elements,
        n_checked=sum(p.n_checked for p in result.parameters),
        heatmap_panels=panels,
        heatmaps=plots.error_heatmaps(large) if large else None,
        ratio_gradient=plots.ratio_gradient_css(),
        evidence=evidence,
        back_link=back_link,
        env=environment(
            **{
                "dtype": ", ".join(dtypes),
                "seed (rng)": result.seed,
                "mode": result.mode,
                "method requested": result.method,
                "check time": f"{result.seconds:.3f} s" if np.isfinite(result.seconds) else None,
            }
        ),
    )
