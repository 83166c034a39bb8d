"""An end-to-end reference: does the analytic gradient train as well as SciPy's own?

:func:`train_reference` minimises the loss twice with ``scipy.optimize.minimize``
(L-BFGS-B) from the same starting point: once driven by the user's analytic
gradient and once by SciPy's own finite differences (``jac=None``).  A correct
gradient reaches the same minimum; a gradient that is not a descent direction
stops the line search early, and one whose zeros are in the wrong place
converges somewhere that is not a minimum of the loss.  The functions taken
are plain flat ones (``loss_flat(x) -> float``, ``grad_flat(x) -> ndarray``)
so any model can be wired in; an :class:`~gradcheck.problem.objective.Objective` is
accepted for the loss.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray

from gradcheck.errors import GradientStructureError, InvalidParameterError, ParameterTypeError
from gradcheck.problem.calls import call_user
from gradcheck.problem.objective import Objective, as_real_scalar

__all__ = ["OptimizerRun", "TrainingComparison", "train_reference"]

#: L-BFGS-B's default stopping tolerances (``scipy.optimize.minimize`` documents them).
LBFGSB_FTOL = 2.220446049250313e-09
LBFGSB_GTOL = 1e-05

#: Factor on the derived resolution of two trainings (not the check's ESTIMATE_SAFETY): the
#: curvature is an L-BFGS estimate, and "the last decrease bounds the remaining gap" holds
#: for superlinear convergence only.
CONVERGENCE_SAFETY = 10.0

#: L-BFGS-B's default absolute finite-difference step (its ``eps`` option) in float64.
_LBFGSB_FD_STEP = 1e-08


@dataclass(frozen=True, eq=False)
class OptimizerRun:
    """One L-BFGS-B run.

    Attributes
    ----------
    gradient : str
        ``"analytic"`` or ``"finite differences"``: what drove the run.
    loss : float
        Final loss value.
    x : ndarray
        Final parameters (flat).
    nit : int
        Iterations.
    nfev : int
        Loss evaluations, including those SciPy spent on finite differences.
    njev : int
        Gradient evaluations (analytic calls, or finite-difference gradients).
    success : bool
        SciPy's ``success``.
    message : str
        SciPy's termination message.
    """

    gradient: str
    loss: float
    x: NDArray[np.float64]
    nit: int
    nfev: int
    njev: int
    success: bool
    message: str

    def __str__(self) -> str:
        outcome = "converged" if self.success else "FAILED"
        return (
            f"{self.gradient}: loss {self.loss:.10g} after {self.nit} iterations "
            f"({self.nfev} loss, {self.njev} gradient evaluations), {outcome}: {self.message}"
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields (the final parameters are left out)."""
        return {
            "gradient": self.gradient,
            "loss": self.loss,
            "nit": self.nit,
            "nfev": self.nfev,
            "njev": self.njev,
            "success": self.success,
            "message": self.message,
        }


@dataclass(frozen=True, eq=False)
class TrainingComparison:
    """Two L-BFGS-B runs from the same start, analytic gradient against SciPy's.

    Attributes
    ----------
    analytic : OptimizerRun
        The run driven by the user's gradient.
    finite_difference : OptimizerRun
        The run driven by SciPy's forward differences.
    initial_loss : float
        The loss at the common starting point.
    tolerance : float
        How far apart the two final losses may be and still ``agree``
        (see :func:`train_reference`, Notes).
    agree : bool
        ``|analytic.loss - finite_difference.loss| <= tolerance``.
    distance : float
        ``||x_analytic - x_fd||_2``, for information only: minimisers of a
        network are not unique (hidden units can be permuted), so it is not
        part of ``agree``.
    """

    analytic: OptimizerRun
    finite_difference: OptimizerRun
    initial_loss: float
    tolerance: float
    agree: bool
    distance: float

    @property
    def difference(self) -> float:
        """``analytic.loss - finite_difference.loss`` (positive: the analytic run ended higher)."""
        return self.analytic.loss - self.finite_difference.loss

    @property
    def passed(self) -> bool:
        """The analytic gradient trained to the same minimum as SciPy's (``agree``)."""
        return self.agree

    @property
    def likely_bug(self) -> str | None:
        """A one-line reading of a disagreement, None when the runs agree."""
        if self.agree:
            return None
        if self.difference < 0:
            return (
                "the analytic run reached a lower loss: the two runs found different minima; "
                "this comparison is inconclusive"
            )
        made_progress = self.analytic.loss < self.initial_loss - self.tolerance
        if not made_progress:
            return (
                "the analytic gradient made no progress from the start: it is not a descent "
                "direction (a sign flip or a badly wrong term)"
            )
        if self.analytic.success:
            return (
                "the analytic run converged where the loss is not minimal: its gradient "
                "vanishes where the true one does not (a wrongly scaled or missing term)"
            )
        return (
            "the analytic run stopped early at a higher loss: its gradient stops being a "
            "descent direction along the way (a wrong term)"
        )

    def __str__(self) -> str:
        verdict = "agree" if self.agree else "DISAGREE"
        lines = [
            f"L-BFGS-B training from loss {self.initial_loss:.10g}: final losses {verdict} "
            f"(difference {self.difference:.3g}, tolerance {self.tolerance:.3g})",
            f"  {self.analytic}",
            f"  {self.finite_difference}",
        ]
        if self.likely_bug:
            lines.append(f"  likely bug: {self.likely_bug}")
        return "\n".join(lines)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {
            "passed": self.passed,
            "agree": self.agree,
            "initial_loss": self.initial_loss,
            "difference": self.difference,
            "tolerance": self.tolerance,
            "distance": self.distance,
            "likely_bug": self.likely_bug,
            "analytic": self.analytic.to_dict(),
            "finite_difference": self.finite_difference.to_dict(),
        }


def _largest_eigenvalue(operator: Any, n: int, iterations: int = 100) -> float:
    """Largest eigenvalue of a symmetric positive definite operator, by power iteration."""
    v = np.linspace(1.0, 2.0, n)
    v /= np.linalg.norm(v)
    value = 0.0
    for _ in range(iterations):
        w = np.asarray(operator.matvec(v), dtype=np.float64).reshape(-1)
        norm = float(np.linalg.norm(w))
        if norm == 0.0 or not np.isfinite(norm):
            return value
        if abs(norm - value) <= 1e-6 * norm:
            return norm
        value, v = norm, w / norm
    return value


def _run(
    loss: Callable[[NDArray[np.float64]], float],
    jac: Callable[[NDArray[np.float64]], NDArray[np.float64]] | None,
    x0: NDArray[np.float64],
    options: dict[str, Any],
    label: str,
) -> tuple[OptimizerRun, Any]:
    import scipy.optimize  # here, not at the top: importing the demonstration stays light

    result = scipy.optimize.minimize(loss, x0, jac=jac, method="L-BFGS-B", options=options)
    run = OptimizerRun(
        gradient=label,
        loss=float(result.fun),
        x=np.asarray(result.x, dtype=np.float64),
        nit=int(result.nit),
        nfev=int(result.nfev),
        njev=int(result.njev),
        success=bool(result.success),
        message=str(result.message),
    )
    return run, result


def train_reference(
    objective_or_loss: Objective | Callable[[NDArray[np.float64]], Any],
    grad_flat: Callable[[NDArray[np.float64]], ArrayLike],
    x0: ArrayLike | None = None,
    *,
    tol: float | None = None,
    maxiter: int = 15000,
) -> TrainingComparison:
    r"""Train with L-BFGS-B twice, analytic gradient against SciPy's finite differences.

    Parameters
    ----------
    objective_or_loss : Objective or callable
        ``loss_flat(x) -> float`` over the flat parameter vector, or an
        :class:`Objective` (whose evaluations are then counted and validated).
    grad_flat : callable
        ``grad_flat(x) -> ndarray`` of shape ``(n,)``: the analytic gradient.
    x0 : array_like, optional
        Starting point (1-D).  Defaults to ``objective.x0``; required for a
        plain loss function.  Its dtype (float32 or float64) sets the
        precision assumed for the loss.
    tol : float, optional
        L-BFGS-B's ``ftol`` and ``gtol`` (as ``minimize(tol=...)`` sets them).
        Default: SciPy's defaults, ``ftol = 2.2e-9``, ``gtol = 1e-5``.
    maxiter : int, default 15000
        Iteration limit of each run (SciPy's default).  The evaluation limit
        ``maxfun`` is raised so that only ``maxiter`` binds, also for the
        finite-difference run, whose every gradient costs ``n`` evaluations.

    Returns
    -------
    TrainingComparison
        Both runs (final loss, ``nit``, ``nfev``, ``njev``, ``success``,
        message), the starting loss, the derived ``tolerance``, ``agree`` and
        ``passed``.

    Raises
    ------
    ParameterTypeError
        If the loss or gradient is not callable, or ``x0`` is not a float vector.
    InvalidParameterError
        If ``x0`` is missing, not 1-D or not finite, or ``tol``/``maxiter`` are out of range.
    GradientStructureError
        If ``grad_flat`` returns an array of the wrong size.
    UserFunctionError
        If the loss or gradient raises.

    See Also
    --------
    gradcheck.references.scipy_refs.differentiate_reference : elementwise reference.

    Notes
    -----
    **What** ``agree`` **means.**  Both runs reach the same *minimum value*
    within the resolution of the optimiser itself: the analytic gradient
    leads L-BFGS-B to a point as low as the one SciPy's own finite
    differences lead it to.  It does not compare the minimisers (a network's
    are not unique) nor the gradients themselves.

    **The tolerance.**  L-BFGS-B stops when the relative decrease
    ``(f_k - f_{k+1}) / max(|f_k|, |f_{k+1}|, 1) <= ftol`` or when
    ``max_i |g_i| <= gtol``.  A correctly driven run therefore stops above
    its local minimum ``f*`` by about

    * ``ftol * max(|f|, 1)`` after the decrease test (with superlinear
      convergence the remaining gap is of the size of the last decrease), or
    * ``f - f* ~ g^T H^{-1} g / 2 <= n g_max^2 lambda_max(H^{-1}) / 2`` after the
      gradient test, with ``g_max = gtol`` for the analytic run and
      ``g_max = gtol + e_fd`` for the finite-difference run, whose gradient
      is only accurate to ``e_fd = 2 eps |f| / h`` (roundoff of a forward
      difference of step ``h``).  ``H^{-1}`` is the L-BFGS inverse-Hessian
      estimate of the finite-difference run (the analytic run's is built
      from the gradient under test and is not trusted).

    Adding both runs' gaps, ``2 eps max|f|`` for the rounding of the two
    final values, and a safety factor of 10 gives

    .. math::

        \mathrm{tol} = 10 \Big(2\,\mathrm{ftol}\,\max(|f_a|, |f_{fd}|, 1)
            + \tfrac{n}{2} \lambda_{\max}(H^{-1}) (\mathrm{gtol}^2 + (\mathrm{gtol} + e_{fd})^2)
            + 2\,\epsilon \max(|f_a|, |f_{fd}|)\Big).

    **What it catches.**  A sign flip stops the first line search at once
    (loss ~ the initial loss).  A wrongly scaled *term* (a missing factor on
    the data term next to a correct penalty term, say) moves the zeros of
    the gradient, so the run converges at a point that is not a minimum; but
    the loss there exceeds the minimum only at *second* order in the
    gradient error, ``delta_g^T H^{-1} delta_g / 2``, so this comparison only
    sees gross errors, and far better in float64 than in float32 (where
    ``e_fd`` is large).  A gradient scaled by one positive factor
    everywhere has the right zeros and usually trains to the same minimum:
    this check is blind to it, the elementwise references are not.  Two
    correct runs may also fall into different basins of a non-convex loss;
    a lower analytic loss is reported as inconclusive.

    The finite-difference run costs ``n + 1`` loss evaluations per gradient:
    meant for small models.

    Examples
    --------
    >>> import numpy as np
    >>> def loss(x):
    ...     return np.sum((x - 1.0) ** 2) + np.sum(x**4)
    >>> def grad(x):
    ...     return 2 * (x - 1.0) + 4 * x**3
    >>> x0 = np.array([2.0, -1.0, 0.5])
    >>> train_reference(loss, grad, x0).agree
    True
    >>> train_reference(loss, lambda x: -grad(x), x0).agree
    False
    """
    loss_function, start = _training_iv(objective_or_loss, grad_flat, x0, tol, maxiter)
    ftol = LBFGSB_FTOL if tol is None else float(tol)
    gtol = LBFGSB_GTOL if tol is None else float(tol)
    loss, gradient = _float64_calls(loss_function, grad_flat, start.dtype, start.size)
    x_start = start.astype(np.float64)
    fd_step = _forward_difference_step(start)
    base = {
        "ftol": ftol,
        "gtol": gtol,
        "maxiter": int(maxiter),
        "maxfun": int(maxiter) * 21 * (start.size + 1),
    }
    initial_loss = loss(x_start)
    analytic, _ = _run(loss, gradient, x_start, dict(base), "analytic")
    reference, reference_result = _run(
        loss, None, x_start, dict(base, eps=fd_step), "finite differences"
    )
    tolerance = _agreement_tolerance(
        analytic, reference, reference_result, ftol, gtol, fd_step, start.dtype
    )
    return TrainingComparison(
        analytic=analytic,
        finite_difference=reference,
        initial_loss=initial_loss,
        tolerance=tolerance,
        agree=bool(abs(analytic.loss - reference.loss) <= tolerance),
        distance=float(np.linalg.norm(analytic.x - reference.x)),
    )


def _training_iv(
    objective_or_loss: Objective | Callable[[NDArray[np.float64]], Any],
    grad_flat: Callable[[NDArray[np.float64]], ArrayLike],
    x0: ArrayLike | None,
    tol: float | None,
    maxiter: int,
) -> tuple[Callable[[NDArray[np.float64]], Any], NDArray[np.floating[Any]]]:
    """:func:`train_reference`'s arguments checked: the loss to call and the start vector."""
    function = "train_reference"
    if isinstance(objective_or_loss, Objective):
        objective = objective_or_loss
        loss_function: Callable[[NDArray[np.float64]], Any] = objective
        if x0 is None:
            x0 = objective.x0
    elif callable(objective_or_loss):
        loss_function = objective_or_loss
        if x0 is None:
            raise InvalidParameterError(f"{function}: x0 is required with a plain loss function")
    else:
        raise ParameterTypeError(
            f"{function}: objective_or_loss must be an Objective or a callable, "
            f"not {type(objective_or_loss).__name__}"
        )
    if not callable(grad_flat):
        raise ParameterTypeError(
            f"{function}: grad_flat must be a callable grad(x) -> ndarray, "
            f"not {type(grad_flat).__name__}"
        )
    start = np.asarray(x0)
    if not np.issubdtype(start.dtype, np.floating):
        raise ParameterTypeError(f"{function}: x0 must be a float array, not dtype {start.dtype}")
    if start.ndim != 1 or start.size == 0:
        raise InvalidParameterError(
            f"{function}: x0 must be a non-empty 1-D vector, not {start.shape}"
        )
    if not np.all(np.isfinite(start)):
        raise InvalidParameterError(f"{function}: x0 contains non-finite values")
    if isinstance(maxiter, bool) or not isinstance(maxiter, (int, np.integer)) or maxiter < 1:
        raise InvalidParameterError(f"{function}: maxiter must be a positive int, not {maxiter!r}")
    if tol is not None and not (np.isfinite(tol) and tol > 0):
        raise InvalidParameterError(f"{function}: tol must be positive and finite, not {tol!r}")
    return loss_function, start


def _float64_calls(
    loss_function: Callable[[NDArray[np.float64]], Any],
    grad_flat: Callable[[NDArray[np.float64]], ArrayLike],
    dtype: np.dtype[Any],
    n: int,
) -> tuple[
    Callable[[NDArray[np.float64]], float], Callable[[NDArray[np.float64]], NDArray[np.float64]]
]:
    """The user's loss and gradient as SciPy calls them: float64 in and out, the parameters
    handed over in their own ``dtype``, the gradient's size checked."""

    def loss(x: NDArray[np.float64]) -> float:
        x = np.asarray(x, dtype=dtype)
        value = call_user(loss_function, "loss", "training with L-BFGS-B", x)
        return float(as_real_scalar(value, context="training with L-BFGS-B"))

    def gradient(x: NDArray[np.float64]) -> NDArray[np.float64]:
        x = np.asarray(x, dtype=dtype)
        value = call_user(grad_flat, "grad", "training with L-BFGS-B", x)
        array = np.asarray(value, dtype=np.float64).reshape(-1)
        if array.size != n:
            raise GradientStructureError(
                f"train_reference: grad_flat returned {array.size} elements for {n} parameters"
            )
        return array

    return loss, gradient


def _forward_difference_step(start: NDArray[np.floating[Any]]) -> Any:
    """L-BFGS-B's ``eps`` option: its forward-difference step, per element or for all."""
    # The step is absolute (1e-8 by default); a float32 loss cannot resolve that, so scale
    # it to sqrt(eps) of the parameters' dtype.
    if start.dtype == np.float64:
        return _LBFGSB_FD_STEP
    eps = float(np.finfo(start.dtype).eps)
    return np.sqrt(eps) * np.maximum(np.abs(start.astype(np.float64)), 1.0)


def _agreement_tolerance(
    analytic: OptimizerRun,
    reference: OptimizerRun,
    reference_result: Any,
    ftol: float,
    gtol: float,
    fd_step: Any,
    dtype: np.dtype[Any],
) -> float:
    """How far apart two correctly driven final losses may be (:func:`train_reference`, Notes)."""
    eps = float(np.finfo(dtype).eps)
    n = analytic.x.size
    scale = max(abs(analytic.loss), abs(reference.loss))
    h_min = float(np.min(fd_step))
    fd_error = 2.0 * eps * max(abs(reference.loss), float(np.finfo(dtype).tiny)) / h_min
    curvature = _largest_eigenvalue(reference_result.hess_inv, n)
    tolerance = CONVERGENCE_SAFETY * (
        2.0 * ftol * max(scale, 1.0)
        + 0.5 * n * curvature * (gtol**2 + (gtol + fd_error) ** 2)
        + 2.0 * eps * scale
    )
    return float(tolerance)
