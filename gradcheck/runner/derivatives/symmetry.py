"""Is a Hessian symmetric?  A hazard when it is not, beyond what rounding allows.

The Hessian of a twice-differentiable function is symmetric.  A hand-written ``hess``
(or ``hessp``) that is not has a term differentiated one way only; and when it
matches the Jacobian of the user's gradient anyway, that gradient is not the
gradient of any function.  Either way the code is wrong even where the entrywise
check passes, so the hazard fails the check (status ``hazard``).
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from numpy.typing import NDArray

from gradcheck.results import Hazard
from gradcheck.runner.derivatives.problem import DerivativeProblem
from gradcheck.verdict.tolerance import derived_tolerance

__all__ = ["matrix_asymmetry", "product_asymmetry"]


def _explain(role: str) -> str:
    return (
        f"the Hessian of a function is symmetric, so {role} has a term differentiated one way "
        "only (if it matches the Jacobian of grad entry by entry, grad itself is not the "
        "gradient of any function: check it with gradcheck.check)"
    )


def matrix_asymmetry(
    problem: DerivativeProblem, matrix: NDArray[np.float64], role: str
) -> list[Hazard]:
    """The worst pair ``H[i, j]`` against ``H[j, i]`` of a square matrix, beyond rounding."""
    if matrix.shape[0] != matrix.shape[1]:
        return []
    eps = float(np.finfo(problem.space.dtype).eps)
    scale = float(np.max(np.abs(matrix), initial=0.0))
    rounding = float(derived_tolerance(np.zeros(1), eps, scale, global_scale=scale)[0])
    gap = np.abs(matrix - matrix.T)
    if not np.any(gap > rounding):
        return []
    i, j = (int(k) for k in np.unravel_index(int(np.argmax(gap)), gap.shape))
    a, b = problem.element_name(i), problem.element_name(j)
    return [
        Hazard(
            "asymmetric",
            f"{role} is not symmetric: the entry for ({a}, {b}) is {matrix[i, j]:.6g} but for "
            f"({b}, {a}) it is {matrix[j, i]:.6g} (|difference| {gap[i, j]:.3g}, "
            f"{gap[i, j] / rounding:.3g} x the {rounding:.2g} rounding allows; "
            f"{int(np.sum(gap > rounding) // 2)} pair(s) differ): {_explain(role)}",
            parameter=problem.space.leaves[0].name if len(problem.space.leaves) == 1 else None,
            indices=((i, j),),
            fails_check=True,
        )
    ]


def product_asymmetry(
    problem: DerivativeProblem,
    call: Callable[[NDArray[np.float64]], NDArray[np.float64]],
    role: str,
    rng: np.random.Generator,
) -> list[Hazard]:
    """``<w, H v>`` against ``<v, H w>`` for random ``v``, ``w`` (two products), beyond rounding."""
    n = problem.space.size
    v, w = rng.standard_normal(n), rng.standard_normal(n)
    hv, hw = call(v), call(w)
    if hv.shape != (n,) or hw.shape != (n,):
        return []
    eps = float(np.finfo(problem.space.dtype).eps)
    left, right = float(w @ hv), float(v @ hw)
    # Each inner product sums n products of the products' size, each rounding once.
    size = float(np.abs(w) @ np.abs(hv) + np.abs(v) @ np.abs(hw))
    rounding = float(derived_tolerance(np.zeros(1), eps, size, global_scale=size)[0])
    if abs(left - right) <= rounding:
        return []
    return [
        Hazard(
            "asymmetric",
            f"{role} is not symmetric: for random v, w, <w, H v> = {left:.6g} but <v, H w> = "
            f"{right:.6g} (|difference| {abs(left - right):.3g}, "
            f"{abs(left - right) / rounding:.3g} x the {rounding:.2g} rounding allows): "
            f"{_explain(role)}",
            fails_check=True,
        )
    ]
