"""The registry of reference methods: every name a user may pass as ``method``.

:data:`REFERENCES` maps a name to the function that computes that reference for
the elements asked, with its own error estimate.  :data:`METHODS` is what
``check(method=...)`` accepts: ``auto`` (the pipeline's own choice: the complex
step when the loss supports it, else central differences, Richardson where
needed) followed by every registered reference.  The SciPy references import
SciPy only when they run.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from gradcheck.problem.objective import Objective
from gradcheck.references.base import Estimate
from gradcheck.references.complex_step import complex_step
from gradcheck.references.finite_difference import central_difference, richardson

__all__ = ["METHODS", "REFERENCES", "DIFFERENTIATE_FIRST_STEP", "Reference"]

#: ``reference(objective, indices, sigma) -> Estimate``; ``sigma`` is the loss's noise.
Reference = Callable[[Objective, NDArray[np.intp], float], Estimate]

#: First step of ``scipy.differentiate`` as a reference, relative to ``max(|x|, 1)``.  SciPy's
#: default 0.5 makes its first stencils cross relu kinks, and its error estimate, built from
#: successive iterations, then understates the error; 1/64 keeps the stencil local while its
#: ten halvings still end far above roundoff.
DIFFERENTIATE_FIRST_STEP = 1 / 64


def _complex(objective: Objective, indices: NDArray[np.intp], sigma: float) -> Estimate:
    return complex_step(objective, indices)


def _central(objective: Objective, indices: NDArray[np.intp], sigma: float) -> Estimate:
    # Roundoff-only; the elements it fails get their truncation error (two more
    # evaluations each) before the verdict: two evaluations per element, not four.
    return central_difference(objective, indices, sigma=sigma)


def _richardson(objective: Objective, indices: NDArray[np.intp], sigma: float) -> Estimate:
    return richardson(objective, indices, sigma=sigma)


def _approx_fprime(objective: Objective, indices: NDArray[np.intp], sigma: float) -> Estimate:
    from gradcheck.references.scipy_refs import approx_fprime_reference

    return approx_fprime_reference(objective, indices, sigma=sigma)


def _differentiate(objective: Objective, indices: NDArray[np.intp], sigma: float) -> Estimate:
    from gradcheck.references.scipy_refs import differentiate_reference

    x = np.abs(objective.x0[indices].astype(np.float64))
    first = DIFFERENTIATE_FIRST_STEP * 2.0 ** np.ceil(np.log2(np.maximum(x, 1.0)))
    return differentiate_reference(objective, indices, sigma=sigma, initial_step=first)


#: The reference each method computes for every element checked (``auto`` picks among these).
REFERENCES: dict[str, Reference] = {
    "complex": _complex,
    "central": _central,
    "richardson": _richardson,
    "approx_fprime": _approx_fprime,
    "differentiate": _differentiate,
}

#: Reference methods a user may ask for: ``auto``, then every registered reference.
METHODS: tuple[str, ...] = ("auto", *REFERENCES)
