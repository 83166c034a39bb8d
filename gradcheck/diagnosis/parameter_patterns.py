"""Bug patterns of one parameter's gradient, tried in order on each failing parameter.

:data:`PER_PARAMETER` is the registry, most specific first; :func:`per_parameter` runs it on
every failing parameter and merges what it finds into one diagnosis (it is one of the
whole-check patterns of :mod:`gradcheck.diagnosis.patterns`).  :func:`factor_diagnosis`, the
constant-factor pattern over one or several parameters, is shared with the whole-check factor.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from gradcheck.diagnosis.factors import MIN_INFORMATIVE, describe_factor, fit_factor
from gradcheck.diagnosis.failed_check import ParameterArrays, SplitCheck
from gradcheck.diagnosis.layer_patterns import missing_derivative, normalisation, softmax_diagonal
from gradcheck.results import Diagnosis
from gradcheck.verdict.tolerance import passes

__all__ = ["PER_PARAMETER", "per_parameter", "factor_diagnosis", "PRODUCT_ROUNDING"]

_F64 = NDArray[np.float64]

#: Room, in eps of ``|A| @ |B|``, for rounding a matrix product: a sum of n products rounds by
#: up to about n eps, and 64 covers the batch sizes and fan-ins of a check.
PRODUCT_ROUNDING = 64

_EPS64 = float(np.finfo(np.float64).eps)


def factor_diagnosis(parts: list[ParameterArrays], split: SplitCheck) -> Diagnosis | None:
    """``analytic = c * reference`` over ``parts`` jointly: a sign flip or a constant factor.

    None unless one constant ``c`` fits every checked element within tolerance
    (:func:`~gradcheck.diagnosis.factors.fit_factor`); ``c = 0`` is left to the "zeroed"
    pattern.
    """
    fit = fit_factor(
        np.concatenate([p.analytic[p.checked] for p in parts]),
        np.concatenate([p.reference[p.checked] for p in parts]),
        np.concatenate([p.tolerance[p.checked] for p in parts]),
    )
    if fit is None or not fit.fits or fit.factor == 0:
        return None  # an all-zero gradient is the "zeroed" pattern, not a factor
    c = fit.factor
    names = tuple(p.name for p in parts)
    evidence = (
        f"a least-squares fit of analytic = c x reference over {fit.informative} elements "
        f"gives c = {c:.10g}; every element fits within its tolerance"
    )
    if fit.fraction == -1:
        return Diagnosis(
            "sign-flip",
            f"{', '.join(names)}: the sign is flipped (analytic = "
            "-reference): '+' where '-' belongs (y - a instead of a - y?)",
            evidence,
            names,
            {"factor": c},
        )
    words = describe_factor(c, split.n_samples, split.dimensions)
    return Diagnosis(
        "constant-factor",
        f"{', '.join(names)}: off by a constant factor: {words}",
        evidence,
        names,
        {"factor": c, "n_samples": split.n_samples},
    )


def _transposed(part: ParameterArrays, split: SplitCheck) -> Diagnosis | None:
    analytic = part.analytic
    if analytic.ndim != 2 or analytic.shape[0] != analytic.shape[1] or analytic.shape[0] < 2:
        return None
    if part.matches(analytic.T, np.maximum(part.tolerance, part.tolerance.T)):
        return Diagnosis(
            "transposed",
            f"{part.name}: the gradient is transposed (delta.T @ a_prev instead "
            "of a_prev.T @ delta?)",
            f"analytic.T matches the reference of {part.name} within tolerance",
            (part.name,),
        )
    return None


def _per_sample_delta(part: ParameterArrays, split: SplitCheck) -> Diagnosis | None:
    analytic = part.analytic
    if analytic.ndim != 2:
        return None
    inputs = split.layer_inputs.get(part.name)
    if inputs is not None and inputs.shape == (analytic.shape[0], analytic.shape[0]):
        product = inputs.T @ analytic
        room = part.tolerance + PRODUCT_ROUNDING * _EPS64 * (np.abs(inputs.T) @ np.abs(analytic))
        for sign, words in ((1.0, "the"), (-1.0, "minus the")):
            if part.matches(sign * product, room):
                return Diagnosis(
                    "per-sample-delta",
                    f"{part.name}: {words} per-sample delta (one row per sample) was "
                    "returned as the weight gradient; dL/dW = a_prev.T @ delta sums the outer "
                    "products of each sample's input with its delta",
                    f"{'-' if sign < 0 else ''}a_prev.T @ analytic matches the reference of "
                    f"{part.name}; the shapes only agree because the batch has "
                    f"{inputs.shape[0]} samples and the layer {inputs.shape[0]} inputs",
                    (part.name,),
                    {"sign": sign},
                )
    bias = split.bias_of(part)
    if bias is not None and not bias.failed.any() and analytic.shape[0] > 1:
        room = bias.tolerance + PRODUCT_ROUNDING * _EPS64 * np.abs(analytic).sum(axis=0)
        if bias.matches(analytic.sum(axis=0), room):
            return Diagnosis(
                "per-sample-delta",
                f"{part.name}: the per-sample delta (one row per sample) was "
                "returned as the weight gradient; dL/dW = a_prev.T @ delta",
                f"the rows of the analytic {part.name} sum to the bias gradient {bias.name} "
                "(= the sum of delta over samples), as delta's rows do",
                (part.name,),
            )
    return None


def _missing_samples(part: ParameterArrays, split: SplitCheck) -> Diagnosis | None:
    """The analytic columns lie in the span of a few samples' inputs: the rest were skipped."""
    inputs = split.layer_inputs.get(part.name)
    if inputs is None or part.analytic.ndim != 2 or inputs.shape[1] != part.analytic.shape[0]:
        return None
    n, fan_in = inputs.shape
    if fan_in < 2 or n < 2:
        return None

    def residual(samples: list[int], target: _F64) -> _F64:
        basis, _ = np.linalg.qr(inputs[samples].T)
        return target - basis @ (basis.T @ target)

    room = part.tolerance + PRODUCT_ROUNDING * _EPS64 * np.abs(part.analytic)
    chosen: list[int] = []
    # Greedy: add the sample whose input best explains the analytic columns, until they fit.
    while len(chosen) < min(n - 1, fan_in - 1):
        candidates = [s for s in range(n) if s not in chosen]
        best = min(
            candidates,
            key=lambda s: float(np.linalg.norm(residual(chosen + [s], part.analytic))),
        )
        chosen.append(best)
        if np.all(np.abs(residual(chosen, part.analytic)) <= room):
            if np.all(np.abs(residual(chosen, np.nan_to_num(part.reference))) <= part.tolerance):
                return None  # the reference lies in that span too: no evidence
            samples = sorted(chosen)
            return Diagnosis(
                "missing-samples",
                f"{part.name}: only sample(s) {samples} of {n} contribute to "
                "the gradient (a loop or slice that stops early? delta[:1]?)",
                f"every column of the analytic {part.name} lies in the span of those samples' "
                "layer inputs, the reference's does not",
                (part.name,),
                {"samples": samples},
            )
    return None


def _own_factor(part: ParameterArrays, split: SplitCheck) -> Diagnosis | None:
    return factor_diagnosis([part], split)


def _partial_sign_flip(part: ParameterArrays, split: SplitCheck) -> Diagnosis | None:
    """``a = -r`` at the failing elements, ``a = r`` at the rest: one term's sign is flipped.

    Every checked element matches ``r`` or ``-r`` within tolerance; at least two that match
    only ``-r`` (one is any element) and at least one that matches only ``r`` (else the whole
    parameter is flipped: the sign-flip pattern).
    """
    mask = part.checked & np.isfinite(part.reference)
    same = passes(part.analytic, part.reference, part.tolerance)
    flipped = passes(part.analytic, -part.reference, part.tolerance)
    if not np.all((same | flipped)[mask]):
        return None
    only_flipped, only_same = mask & flipped & ~same, mask & same & ~flipped
    if only_flipped.sum() < MIN_INFORMATIVE or not only_same.any():
        return None
    return Diagnosis(
        "partial-sign-flip",
        f"{part.name}: the sign is flipped at {_region(part, only_flipped, split)}, right "
        "elsewhere: one term of the gradient enters with the wrong sign ('+' where '-' "
        "belongs, y - a for a - y, in the term these elements get)",
        f"analytic = -reference within tolerance at the {int(only_flipped.sum())} failing "
        f"elements, analytic = reference at {int(only_same.sum())} other(s)",
        (part.name,),
        {"elements": [list(map(int, i)) for i in np.argwhere(only_flipped)]},
    )


def _region(part: ParameterArrays, mask: NDArray[np.bool_], split: SplitCheck) -> str:
    """``mask`` as whole rows or columns of a 2-D parameter when it is that, else listed."""
    if mask.ndim == 2:
        for axis, word in ((1, "row"), (0, "column")):
            full = np.all(mask | ~part.checked, axis=axis) & np.any(mask, axis=axis)
            lines = np.flatnonzero(full)
            expected = np.zeros_like(mask)
            if axis == 1:
                expected[lines, :] = True
            else:
                expected[:, lines] = True
            if lines.size and np.array_equal(mask, expected & part.checked):
                listed = ", ".join(str(int(i)) for i in lines)
                return f"{word}{'s' if lines.size > 1 else ''} {listed} of {part.name}"
    return split.where(part, mask)


def _zeroed(part: ParameterArrays, split: SplitCheck) -> Diagnosis | None:
    if not np.all(part.analytic[part.failed] == 0):
        return None
    text = split.where(part, part.failed)
    if part.analytic.ndim == 2:
        rows = np.unique(np.argwhere(part.failed)[:, 0])
        if len(rows) == 1:
            text = f"row {int(rows[0])} of {part.name} ({text})"
    return Diagnosis(
        "zeroed",
        f"{part.name}: the gradient is zero where it should not be: {text} (never "
        "written, or masked out?)",
        "the analytic value is exactly 0 at every failing element, the reference is not",
        (part.name,),
        {"elements": [list(map(int, i)) for i in np.argwhere(part.failed)]},
    )


def _proportional_to_parameter(part: ParameterArrays, split: SplitCheck) -> Diagnosis | None:
    """``a - r = c * x``: the error is a multiple of the parameter itself (a penalty's gradient)."""
    x = split.values(part)
    mask = part.checked & np.isfinite(part.reference) & np.isfinite(part.analytic)
    difference = (part.analytic - part.reference)[mask]
    values = x[mask]
    denominator = float(np.dot(values, values))
    # Like a factor (fit_factor), one coefficient needs two elements to be evidence; here the
    # parameter values are exact, so every nonzero one constrains it.
    if denominator == 0 or int(np.sum(np.abs(values) > 0)) < MIN_INFORMATIVE:
        return None
    c = float(np.dot(difference, values) / denominator)
    # x is exact: only the reference's error, the tolerance, separates a - r from c x.
    if not np.all(passes(difference, c * values, part.tolerance[mask])):
        return None
    return Diagnosis(
        "parameter-proportional",
        f"{part.name}: the error is {c:.6g} x {part.name} itself: a term proportional to "
        f"{part.name} is missing, mis-scaled or of the wrong sign (a penalty or weight decay: "
        f"lam * sum({part.name}**2) contributes 2 * lam * {part.name}; the error fits "
        f"{_penalty_candidates(c, part.name)})",
        f"analytic - reference = c x parameter, least squares c = {c:.10g}, within tolerance at "
        f"all {int(mask.sum())} checked elements",
        (part.name,),
        {"coefficient": c},
    )


def _penalty_candidates(c: float, x: str) -> str:
    """The penalty slips that leave ``analytic - reference = c x``, for ``lam * sum(x**2)``."""
    lam = abs(c)
    if c < 0:
        return (
            f"2 * lam * {x} left out with lam = {lam / 2:.6g}, lam * {x} written for it with "
            f"lam = {lam:.6g}, or its sign flipped with lam = {lam / 4:.6g}"
        )
    return (
        f"an extra {lam:.6g} * {x} (weight decay the loss lacks), or 2 * lam * {x} where the "
        f"loss has lam/2 * sum({x}**2), lam = {lam:.6g}"
    )


#: The per-parameter patterns, most specific first; the first that fits explains the parameter.
PER_PARAMETER: dict[str, Callable[[ParameterArrays, SplitCheck], Diagnosis | None]] = {
    "transposed": _transposed,
    "per-sample-delta": _per_sample_delta,
    "missing-samples": _missing_samples,
    "constant-factor": _own_factor,
    "partial-sign-flip": _partial_sign_flip,
    "zeroed": _zeroed,
    "parameter-proportional": _proportional_to_parameter,
    "normalisation": normalisation,
    "missing-derivative": missing_derivative,
    "softmax-diagonal": softmax_diagonal,
}


def _explain(part: ParameterArrays, split: SplitCheck) -> Diagnosis | None:
    """The first per-parameter pattern that fits ``part``, or None."""
    for pattern in PER_PARAMETER.values():
        diagnosis = pattern(part, split)
        if diagnosis is not None:
            return diagnosis
    return None


def per_parameter(split: SplitCheck) -> Diagnosis | None:
    """Each failing parameter explained on its own by :data:`PER_PARAMETER`, then merged.

    Returns
    -------
    Diagnosis or None
        None when no failing parameter fits a pattern; the one finding when there is one
        failing parameter; otherwise the first finding's kind, every summary (with the
        unexplained parameters named) and ``details["per_parameter"]``, the kind of each.
    """
    found: list[tuple[ParameterArrays, Diagnosis | None]] = []
    covered: set[str] = set()  # a layer's finding covers its bias too
    for part in split.failing:
        if part.name in covered:
            continue
        diagnosis = _explain(part, split)
        found.append((part, diagnosis))
        covered.update(diagnosis.parameters if diagnosis is not None else ())
    known = [d for _, d in found if d is not None]
    if not known:
        return None
    if len(known) == 1 and len(found) == 1:
        return known[0]
    unexplained = [p.name for p, d in found if d is None]
    summary = "; ".join(d.summary for d in known)
    if unexplained:
        summary += f"; {', '.join(unexplained)}: no known pattern"
    return Diagnosis(
        known[0].kind,
        summary,
        " / ".join(d.evidence for d in known),
        tuple(dict.fromkeys(n for p, d in found for n in (d.parameters if d else (p.name,)))),
        {
            **{k: v for d in known for k, v in d.details.items()},
            "per_parameter": {
                n: (d.kind if d else "unknown")
                for p, d in found
                for n in (d.parameters if d else (p.name,))
            },
            "summaries": {n: d.summary for _, d in found if d for n in d.parameters},
        },
    )
