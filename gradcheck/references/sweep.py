"""Evidence beyond a check: a central difference across step sizes; all references side by side.

:func:`gradcheck.check` spends as few loss evaluations as it can.  A report
that shows *why* a step was chosen, or that the references agree with each
other, needs more: :func:`step_sweep` evaluates central differences over a
ladder of steps (the "V" of truncation against roundoff), and
:func:`reference_agreement` runs every reference on the same few elements.
Both are called only when evidence is asked for
(:func:`gradcheck.runner.evidence.gather_evidence`), so checks stay fast.  What they
return, :class:`~gradcheck.results.StepSweep` and
:class:`~gradcheck.results.ReferenceAgreement`, is plain data in
:mod:`gradcheck.results`, so the report can render it without importing the references.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import NDArray

from gradcheck.problem.objective import Objective
from gradcheck.references.base import Estimate
from gradcheck.references.finite_difference import (
    ROUNDOFF_SIGMAS,
    central_difference,
    default_steps,
    richardson,
)
from gradcheck.references.registry import REFERENCES as REGISTERED
from gradcheck.references.registry import Reference
from gradcheck.results import ReferenceAgreement, StepSweep

__all__ = ["step_sweep", "DISPLAY_NAMES", "REFERENCES", "reference_agreement"]


def step_sweep(
    objective: Objective,
    indices: NDArray[np.intp],
    *,
    sigma: float,
    steps: NDArray[np.float64] | None = None,
    truth: Estimate | None = None,
) -> StepSweep:
    """Central differences of each element over a ladder of steps.

    Parameters
    ----------
    objective : Objective
        The loss over the flat parameter vector.
    indices : array of int
        Flat indices of the elements (a handful: each costs ``2 * len(steps)``
        evaluations).
    sigma : float
        The loss's rounding noise, for the roundoff bound.
    steps : array of float, optional
        Relative steps; default ``logspace(-14, -1, 27)`` for float64 (the
        range is scaled to the dtype's epsilon otherwise).
    truth : Estimate, optional
        The reference to measure errors against; by default a Richardson
        estimate is made.

    Returns
    -------
    StepSweep
    """
    indices = np.asarray(indices, dtype=np.intp)
    if steps is None:
        eps = float(np.max(objective.space.eps_at(indices), initial=np.finfo(np.float64).eps))
        low = np.log10(eps) + 1.5
        steps = np.logspace(low, -1.0, int(round((-1.0 - low) * 2)) + 1)
    steps = np.asarray(steps, dtype=np.float64)
    before = objective.n_evaluations
    if truth is None:
        truth = richardson(objective, indices, sigma=sigma)
    scale = np.maximum(np.abs(objective.x0[indices]).astype(np.float64), 1.0)
    derivative = np.empty((len(indices), len(steps)))
    absolute = np.empty_like(derivative)
    for j, step in enumerate(steps):
        estimate = central_difference(objective, indices, steps=step * scale, sigma=sigma)
        derivative[:, j] = estimate.derivative
        absolute[:, j] = estimate.step
    return StepSweep(
        indices=indices,
        steps=steps,
        absolute_steps=absolute,
        derivative=derivative,
        truth=np.asarray(truth.derivative, dtype=np.float64),
        truth_method=truth.method,
        roundoff=ROUNDOFF_SIGMAS * sigma / absolute,
        default_step=default_steps(objective, indices),
        n_evaluations=objective.n_evaluations - before,
    )


#: How a report names each registered reference.  ``complex step`` is only run when the
#: loss passed the complex-step capability probe.
DISPLAY_NAMES = {
    "central": "central difference",
    "richardson": "Richardson",
    "complex": "complex step",
    "approx_fprime": "SciPy approx_fprime",
    "differentiate": "SciPy differentiate",
}

#: The references a report compares, by display name: the registry's, nothing of its own.
REFERENCES: dict[str, Reference] = {
    display: REGISTERED[method] for method, display in DISPLAY_NAMES.items()
}


def reference_agreement(
    objective: Objective,
    indices: NDArray[np.intp],
    *,
    sigma: float,
    complex_ok: bool,
    references: dict[str, Reference] | None = None,
) -> ReferenceAgreement:
    """Run each reference of ``references`` (default :data:`REFERENCES`) on ``indices``.

    A reference that cannot run (complex step on a loss that is not
    complex-analytic, SciPy raising) is listed in ``skipped`` with the reason
    instead of failing the report.
    """
    indices = np.asarray(indices, dtype=np.intp)
    estimates: dict[str, Estimate] = {}
    skipped: dict[str, str] = {}
    for name, function in (references or REFERENCES).items():
        if name == "complex step" and not complex_ok:
            skipped[name] = "the loss does not propagate complex perturbations analytically"
            continue
        try:
            estimates[name] = function(objective, indices, sigma)
        except Exception as exc:  # noqa: BLE001 - a report shows what failed, it does not crash
            skipped[name] = f"{type(exc).__name__}: {exc}"
    return ReferenceAgreement(indices=indices, estimates=estimates, skipped=skipped)
