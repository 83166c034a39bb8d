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
from markupsafe import Markup

from gradcheck.errors import ParameterTypeError
from gradcheck.report import errormap, plots
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
        return {"gathered": evidence is not None, "curves": [], "agreement": []}
    curves = []
    if evidence.sweep is not None:
        curves = [
            plots.step_curve(
                evidence.sweep,
                i,
                label,
                float(evidence.analytic[i]),
                float(evidence.tolerance[i]),
                float(evidence.used_step[i]),
            )
            for i, label in enumerate(evidence.labels)
        ]
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
        "curves": curves,
        "legend": plots.STEP_CURVE_LEGEND,
        "agreement": rows,
        "reference_names": list(evidence.reference_names),
        "skipped": evidence.agreement.skipped if evidence.agreement is not None else {},
        "truth_method": evidence.truth_method,
        "n_evaluations": evidence.n_evaluations,
        "seconds": evidence.seconds,
    }


def _worst_name(result: CheckResult, p: ParameterResult, index: tuple[int, ...]) -> str:
    """The worst element's name: ``w[2, 0]``, or a Jacobian block's entry ``d out[1] / d x[0]``."""
    output, element = errormap.element_names(result, p, index)
    if output is None or output.startswith("<"):
        return p.name + format_index(index)
    return f"d {output} / d {element}"


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
                "worst": _worst_name(result, p, index) if has else "",
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


#: The page's title per kind of check (:attr:`CheckResult.kind`).
TITLES = {
    "gradient": "Gradient check",
    "vjp": "VJP check",
    "jvp": "JVP check",
    "jacobian": "Jacobian check",
    "hessian": "Hessian check",
    "hvp": "Hessian-vector product check",
}


#: What each kind checks, in the user's own convention (the functions as they are called).
CONVENTIONS = {
    "vjp": (
        "vector-Jacobian product",
        "vjp(dout, *inputs) returns J<sup>T</sup> dout, one gradient per input (as a "
        "backward pass returns dx, dw, db)",
        "checked as the gradient of ⟨u, out⟩ for a random cotangent u, then entry by entry "
        "d out[j] / d input[i] with one-hot cotangents",
    ),
    "jvp": (
        "Jacobian-vector product",
        "jvp(tangents, *inputs) returns J v, one tangent per input, in the output's shape",
        "checked entry by entry, d out[j] / d input[i], against reference columns of f",
    ),
    "jacobian": (
        "Jacobian",
        "jacobian(*inputs) returns d out / d input of shape out.shape + input.shape, per input",
        "checked entry by entry, d out[j] / d input[i], against reference columns of f",
    ),
    "hessian": (
        "Hessian",
        "SciPy's hess(x, *args): H[i, j] = d grad[i] / d x[j], the derivative of your grad",
        "checked entry by entry against reference columns of grad",
    ),
    "hvp": (
        "Hessian-vector product",
        "SciPy's hessp(x, p, *args) returns H p, the derivative of your grad along p",
        "checked entry by entry, d grad[i] / d x[j], against reference columns of grad",
    ),
}


def _derivative_context(result: CheckResult) -> dict[str, Any] | None:
    """What a derivative check (not a plain gradient) was of, in which convention."""
    if result.kind == "gradient":
        return None
    what, convention, how = CONVENTIONS.get(result.kind, (result.kind, "", ""))
    return {
        "kind": result.kind,
        "what": what,
        "convention": Markup(convention),
        "how": how,
        "outputs": list(result.outputs),
        "inputs": list(result.inputs),
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
        top=errormap.top_failing(result),
        heatmap_panels=errormap.heatmap_panels(result),
        map_cells_max=plots.MAP_CELLS_MAX,
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
