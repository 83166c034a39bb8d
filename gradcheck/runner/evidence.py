"""Evidence beyond the verdict: step sweeps and every reference, on a few elements of a check.

:func:`gradcheck.check` spends as few loss evaluations as it can.  Showing *why* a
step was chosen (the error of a central difference across step sizes: the "V" of
truncation against roundoff) and that independent references agree with each other
takes more, about 80 loss evaluations per element.  :func:`gather_evidence` spends
them on request, on the worst element of each parameter and a few random ones, and
returns a :class:`~gradcheck.results.CheckEvidence`; :func:`with_evidence` returns the
result with it attached, which is what the HTML report renders.

Examples
--------
>>> import numpy as np, gradcheck
>>> loss = lambda p: float(np.sum(np.sin(p["w"]) ** 2))
>>> grad = lambda p: {"w": 2 * np.sin(p["w"]) * np.cos(p["w"])}
>>> params = {"w": np.arange(3.0)}
>>> result = with_evidence(gradcheck.check(loss, grad, params), loss, params, samples=2)
>>> result.evidence.labels
('w[2]', 'w[0]')
>>> result.evidence.analytic_wrong.any()
np.False_
"""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Callable
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.errors import InvalidParameterError, ParameterTypeError
from gradcheck.problem.objective import Objective
from gradcheck.problem.space import ParameterSpace
from gradcheck.references.complex_step import complex_step_capability
from gradcheck.references.noise import estimate_noise
from gradcheck.references.sweep import reference_agreement, step_sweep
from gradcheck.results import CheckEvidence, CheckResult, ParameterResult, format_index

__all__ = ["gather_evidence", "with_evidence"]


def with_evidence(
    result: CheckResult,
    loss: Callable[[Any], Any],
    params: Any,
    *,
    samples: int = 4,
    rng: Any = None,
) -> CheckResult:
    """``result`` with :func:`gather_evidence`'s evidence attached as ``result.evidence``.

    Parameters and raised errors are those of :func:`gather_evidence`.

    Returns
    -------
    CheckResult
        A copy of ``result`` (the parameters' results are shared, not copied)
        whose ``evidence`` is set.
    """
    evidence = gather_evidence(result, loss, params, samples=samples, rng=rng)
    return dataclasses.replace(result, evidence=evidence)


def gather_evidence(
    result: CheckResult,
    loss: Callable[[Any], Any],
    params: Any,
    *,
    samples: int = 4,
    rng: Any = None,
) -> CheckEvidence:
    """Spend extra loss evaluations on a few elements: step sweeps and every reference.

    Parameters
    ----------
    result : CheckResult
        The check to add evidence to.
    loss : callable
        The loss that was checked.
    params : array_like or tree of array_like
        The parameters the check was run at.
    samples : int, keyword-only
        Elements to sweep and compare: the worst of each parameter (failed
        parameters first), then random checked ones.  Each costs about 80 loss
        evaluations.
    rng : numpy.random.Generator, int or None, keyword-only
        Draws the extra sample elements and the noise probes; default the
        check's own seed, so the evidence of a result is reproducible.

    Returns
    -------
    CheckEvidence
        The sampled elements, the step sweep, the agreement of every reference,
        the noise assumed and the loss evaluations spent.

    Raises
    ------
    ParameterTypeError
        ``result`` is not a CheckResult.
    InvalidParameterError
        ``loss`` or ``params`` is missing, ``params`` do not match the result,
        or ``samples`` is not a positive int.

    See Also
    --------
    with_evidence : The result with this evidence attached.
    gradcheck.references.sweep.step_sweep, gradcheck.references.sweep.reference_agreement
    """
    space = _validate(result, loss, params, samples)
    started = time.perf_counter()
    generator = (
        rng
        if isinstance(rng, np.random.Generator)
        else np.random.default_rng(result.seed if rng is None else rng)
    )
    objective = Objective(loss, space)
    sigma, complex_ok = _noise_and_capability(result, objective, generator)
    sample = _sample(result, samples, generator)
    offsets = {leaf.name: leaf.offset for leaf in space.leaves}
    indices = np.array([offsets[p.name] + k for p, k in sample], dtype=np.intp)
    sweep = agreement = None
    if sample:
        agreement = reference_agreement(objective, indices, sigma=sigma, complex_ok=complex_ok)
        truth = agreement.estimates.get("complex step") or agreement.estimates.get("Richardson")
        sweep = step_sweep(objective, indices, sigma=sigma, truth=truth)
    return CheckEvidence(
        labels=tuple(_label(p, k) for p, k in sample),
        indices=indices,
        analytic=_at(sample, lambda p: p.analytic),
        tolerance=_at(sample, lambda p: p.tolerance),
        # The complex step's step is not on a central difference's axis: nothing to mark.
        used_step=_at(sample, lambda p: p.step if "complex" not in p.method else None),
        sweep=sweep,
        agreement=agreement,
        noise=sigma,
        complex_step_usable=complex_ok,
        n_evaluations=objective.n_evaluations,
        seconds=time.perf_counter() - started,
    )


def _validate(
    result: CheckResult, loss: Callable[[Any], Any], params: Any, samples: Any
) -> ParameterSpace:
    """Check the arguments of :func:`gather_evidence`; return the parameters' space."""
    if not isinstance(result, CheckResult):
        raise ParameterTypeError(
            f"result: expected a gradcheck CheckResult, not {type(result).__name__}"
        )
    if loss is None or params is None:
        missing = "loss" if loss is None else "params"
        raise InvalidParameterError(
            f"loss, params: evidence needs the loss and the parameters that were checked "
            f"({missing} is None)"
        )
    if isinstance(samples, bool) or not isinstance(samples, (int, np.integer)) or samples < 1:
        raise InvalidParameterError(f"samples: expected a positive int, got {samples!r}")
    space = ParameterSpace(params)
    shapes = {leaf.name: leaf.shape for leaf in space.leaves}
    for p in result.parameters:
        if shapes.get(p.name) != p.shape:
            raise InvalidParameterError(
                f"params: do not match the checked result (parameter {p.name!r} of shape "
                f"{p.shape} is {'missing' if p.name not in shapes else shapes[p.name]})"
            )
    return space


def _noise_and_capability(
    result: CheckResult, objective: Objective, rng: np.random.Generator
) -> tuple[float, bool]:
    """The loss's rounding noise, and whether the complex step can be trusted on it."""
    # A check decided by the complex step did not measure the loss's noise; the sweeps
    # and the agreement table divide differences by steps, so they need it.
    if np.isfinite(result.noise) and result.noise > 0:
        sigma = float(result.noise)
    else:
        sigma = estimate_noise(objective, rng=rng).sigma
    capability = complex_step_capability(objective, sigma=sigma, rng=rng)
    return sigma, capability.usable


def _checked_flat(parameter: ParameterResult) -> NDArray[np.intp]:
    return np.flatnonzero(parameter.checked.ravel())


def _sample(
    result: CheckResult, count: int, rng: np.random.Generator
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


def _label(parameter: ParameterResult, local: int) -> str:
    """``"W1[0, 2]"``: the parameter's name and the element's index."""
    index = tuple(int(i) for i in np.unravel_index(local, parameter.shape))
    return parameter.name + format_index(index)


def _at(
    sample: list[tuple[ParameterResult, int]],
    field: Callable[[ParameterResult], NDArray[Any] | None],
) -> NDArray[np.float64]:
    """One array field of each sampled element's parameter, at that element (NaN for None)."""
    values = []
    for p, k in sample:
        array = field(p)
        values.append(float(array.ravel()[k]) if array is not None else np.nan)
    return np.array(values, dtype=np.float64)
