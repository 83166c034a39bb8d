"""The report of one :class:`~gradcheck.results.CheckResult`.

The page renders what the result carries and spends no loss evaluation: the
step-size curves and the agreement of every reference come from
``result.evidence``, gathered beforehand by
:func:`gradcheck.runner.evidence.with_evidence`; without it those sections say
the evidence was not gathered.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from gradcheck.errors import ParameterTypeError
from gradcheck.report import plots
from gradcheck.report._render import environment, render
from gradcheck.results import (
    FAILING_LIMIT,
    CheckEvidence,
    CheckResult,
    ParameterResult,
    format_index,
)

__all__ = ["render_check_report"]

STATUS_TEXT = {
    "passed": "The gradient matches the references",
    "failed": "The gradient is wrong",
    "inconclusive": "No verdict is possible",
    "hazard": "The gradient is right, the code around it is not",
}


def _evidence_context(evidence: CheckEvidence | None) -> dict[str, Any]:
    """What the step-size and agreement sections show of ``result.evidence`` (None if absent)."""
    if evidence is None or not evidence.labels:
        return {"gathered": evidence is not None, "curves_svg": None, "agreement": []}
    curves = None
    if evidence.sweep is not None:
        curves = plots.step_curves(
            evidence.sweep,
            evidence.labels,
            evidence.analytic,
            evidence.tolerance,
            evidence.used_step,
        )
    estimates = evidence.agreement.estimates if evidence.agreement is not None else {}
    far = evidence.far_from_consensus
    rows = []
    for i, label in enumerate(evidence.labels):
        cells = [
            {
                "value": float(estimate.derivative[i]),
                "error": float(estimate.error[i]),
                "off": bool(far[name][i]),
            }
            for name, estimate in estimates.items()
        ]
        rows.append(
            {
                "label": label,
                "analytic": float(evidence.analytic[i]),
                "analytic_wrong": bool(evidence.analytic_wrong[i]),
                "difference": float(evidence.difference[i]),
                "tolerance": float(evidence.tolerance[i]),
                "cells": cells,
            }
        )
    return {
        "gathered": True,
        "curves_svg": curves,
        "agreement": rows,
        "reference_names": list(evidence.reference_names),
        "skipped": evidence.agreement.skipped if evidence.agreement is not None else {},
        "truth_method": evidence.truth_method,
        "n_evaluations": evidence.n_evaluations,
        "seconds": evidence.seconds,
    }


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


def _failing_context(result: CheckResult) -> dict[str, Any]:
    """The failing-elements table: every failing element, up to :data:`FAILING_LIMIT`."""
    elements = result.failing_elements(FAILING_LIMIT)
    rows = [
        {
            "label": e.label,
            "analytic": e.analytic,
            "reference": e.reference,
            "method": e.method,
            "error": e.error,
            "tolerance": e.tolerance,
            "ratio": e.error / e.tolerance if e.tolerance > 0 else float("inf"),
        }
        for e in elements
    ]
    return {"rows": rows, "count": result.n_failing_elements, "cap": FAILING_LIMIT}


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
        exponents = plots.ratio_exponents(p).ravel()  # the true powers, beyond the clipping
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
                exponent = float(exponents[k])
                label = "∞" if np.isinf(exponent) else f"{exponent:.0f}".replace("-", "−")
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


#: The page's title per kind of check (:attr:`CheckResult.kind`).
TITLES = {
    "gradient": "Gradient check",
    "vjp": "VJP check",
    "jvp": "JVP check",
    "jacobian": "Jacobian check",
    "hessian": "Hessian check",
    "hvp": "Hessian-vector product check",
}


def _derivative_context(result: CheckResult) -> dict[str, Any] | None:
    """What a derivative check (not a plain gradient) was of, and its wrong entries named."""
    if result.kind == "gradient":
        return None
    return {
        "kind": result.kind,
        "outputs": list(result.outputs),
        "inputs": list(result.inputs),
        "entries": [
            {
                "output": e.output,
                "input": e.input,
                "analytic": e.analytic,
                "reference": e.reference,
                "method": e.method,
                "error": abs(e.analytic - e.reference),
                "tolerance": e.tolerance,
            }
            for e in result.entries
        ],
    }


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
    if result.status == "hazard":
        return next(h.message for h in result.hazards if h.fails_check)
    failed = result.failed_parameters
    parts = [f"{p.name}: {p.n_failed} of {p.n_checked} elements" for p in failed[:4]]
    more = f" and {len(failed) - 4} more" if len(failed) > 4 else ""
    return "Wrong elements in " + "; ".join(parts) + more + "."


def render_check_report(
    result: CheckResult,
    *,
    title: str | None = None,
    back_link: str | None = None,
) -> str:
    """The HTML text of a check report (see :func:`gradcheck.report.write`)."""
    if not isinstance(result, CheckResult):
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
        title=title or TITLES.get(result.kind, "Gradient check"),
        result=result,
        derivative=_derivative_context(result),
        status=result.status,
        status_text=STATUS_TEXT[result.status],
        headline=_headline(result),
        rows=rows,
        common_source=sources[0] if len(sources) == 1 else None,
        n_elements=n_elements,
        n_checked=sum(p.n_checked for p in result.parameters),
        failing=_failing_context(result),
        heatmap_panels=panels,
        heatmaps=plots.error_heatmaps(large) if large else None,
        ratio_gradient=plots.ratio_gradient_css(),
        evidence=_evidence_context(result.evidence),
        back_link=back_link,
        env=environment(
            **{
                "dtype": ", ".join(dtypes),
                "seed (rng)": "a Generator (no seed)" if result.seed is None else result.seed,
                "mode": result.mode,
                "method requested": result.method,
                "check time": f"{result.seconds:.3f} s" if np.isfinite(result.seconds) else None,
            }
        ),
    )
