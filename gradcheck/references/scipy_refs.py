"""SciPy-based references: ``scipy.optimize.approx_fprime`` and ``scipy.differentiate.derivative``.

These references are independent of any analytic gradient: they see the loss
only through an :class:`~gradcheck.problem.objective.Objective` and let SciPy's own
differencing code do the arithmetic.  Each returns an
:class:`~gradcheck.references.base.Estimate` whose error estimate comes from
floating-point reasoning (truncation plus roundoff), so a comparison can ask
whether a user's gradient lies within the reference's own uncertainty.

:func:`scipy_check_grad` is different: it returns the single number that
``scipy.optimize.check_grad`` reports, so a report can show what SciPy alone
would have said.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import numpy as np
import scipy.differentiate
import scipy.optimize
from numpy.typing import ArrayLike, NDArray

from gradcheck.errors import InvalidParameterError, ParameterTypeError
from gradcheck.problem.objective import Objective
from gradcheck.problem.space import working_eps
from gradcheck.references.base import Estimate

__all__ = [
    "approx_fprime_reference",
    "differentiate_reference",
    "scipy_check_grad",
]

#: ``scipy.differentiate.derivative`` reduces its step by this factor per iteration (its default).
_STEP_FACTOR = 2.0


# -- validation ---------------------------------------------------------------------------


def _check_objective(objective: Any, function: str) -> None:
    if not isinstance(objective, Objective):
        raise ParameterTypeError(
            f"{function}: objective must be a gradcheck Objective, not {type(objective).__name__}"
        )


def _check_indices(
    objective: Objective, indices: ArrayLike | None, function: str
) -> NDArray[np.intp]:
    """Flat indices as a 1-D ``intp`` array, every one inside the parameter vector."""
    size = objective.space.size
    if indices is None:
        return np.arange(size, dtype=np.intp)
    array = np.asarray(indices)
    if array.dtype == bool or not np.issubdtype(array.dtype, np.integer):
        raise ParameterTypeError(
            f"{function}: indices must be integers (flat element indices), not dtype {array.dtype}"
        )
    if array.ndim > 1:
        raise InvalidParameterError(
            f"{function}: indices must be one-dimensional, not of shape {array.shape}"
        )
    array = array.reshape(-1).astype(np.intp)
    bad = (array < 0) | (array >= size)
    if np.any(bad):
        raise InvalidParameterError(
            f"{function}: index {int(array[bad][0])} is outside the {size} parameter elements"
        )
    return array


def _check_positive_int(value: Any, name: str, function: str) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise ParameterTypeError(f"{function}: {name} must be an int, not {type(value).__name__}")
    if value < 1:
        raise InvalidParameterError(f"{function}: {name} must be at least 1, not {value}")
    return int(value)


def _check_steps(value: ArrayLike, n: int, name: str, function: str) -> NDArray[np.float64]:
    """A positive finite step per element (a scalar is broadcast)."""
    try:
        array = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise ParameterTypeError(
            f"{function}: {name} must be a float or an array of floats"
        ) from exc
    if array.ndim > 1 or (array.ndim == 1 and array.shape != (n,)):
        raise InvalidParameterError(
            f"{function}: {name} must be a scalar or have shape ({n},) like indices, "
            f"not {array.shape}"
        )
    array = np.broadcast_to(array, (n,)).copy()
    if not np.all(np.isfinite(array) & (array > 0)):
        raise InvalidParameterError(f"{function}: {name} must be positive and finite")
    return array


def _check_sigma(sigma: float | None, function: str) -> float | None:
    if sigma is None:
        return None
    sigma = float(sigma)
    if not (np.isfinite(sigma) and sigma >= 0):
        raise InvalidParameterError(f"{function}: sigma must be a finite number >= 0, not {sigma}")
    return sigma


# -- shared floating-point facts ----------------------------------------------------------


def _noise(
    objective: Objective, indices: NDArray[np.intp], sigma: float | None
) -> NDArray[np.float64]:
    """Rounding noise of one loss value, per element: ``sigma`` or ``eps * max(|f(x0)|, tiny)``.

    ``eps`` is that of each element's own dtype, which is the parameters' dtype
    when all leaves share one and the conservative (narrower) choice otherwise.
    """
    if sigma is not None:
        return np.full(len(indices), sigma)
    eps = objective.space.eps_at(indices)
    tiny = float(np.finfo(objective.x0.dtype).tiny)
    return eps * max(abs(float(objective.value0)), tiny)


def _leaf_masks(
    objective: Objective, indices: NDArray[np.intp]
) -> list[tuple[Any, NDArray[np.bool_]]]:
    """``(leaf dtype, mask over indices)`` for each leaf."""
    masks = []
    for leaf in objective.space.leaves:
        mask = (indices >= leaf.offset) & (indices < leaf.offset + leaf.size)
        if np.any(mask):
            masks.append((leaf.dtype, mask))
    return masks


def _representable_steps(
    objective: Objective, indices: NDArray[np.intp], steps: NDArray[np.float64]
) -> NDArray[np.float64]:
    """Steps ``h'`` with ``x0 + h'`` exactly representable in each element's own dtype.

    SciPy forms ``x0 + h`` in float64 and divides by ``(x0 + h) - x0``; a
    float32 leaf would then round ``x0 + h`` again, and the loss would be
    evaluated at a point other than the one SciPy divides by.  Rounding
    ``x0 + h`` to the element's dtype first removes that mismatch.
    """
    x = objective.x0[indices].astype(np.float64)
    rounded = steps.copy()
    for dtype, mask in _leaf_masks(objective, indices):
        target = (x[mask] + steps[mask]).astype(dtype).astype(np.float64)
        rounded[mask] = target - x[mask]
    if np.any(rounded <= 0):
        k = int(np.flatnonzero(rounded <= 0)[0])
        raise InvalidParameterError(
            f"approx_fprime_reference: step {steps[k]!r} is too small to move element "
            f"{int(indices[k])} (value {x[k]!r}) in its dtype"
        )
    return rounded


def _central_weight_sum(order: int, factor: float = _STEP_FACTOR) -> float:
    """``sum |w_j|`` of ``scipy.differentiate.derivative``'s central stencil for a unit step.

    The stencil is ``x +- h / factor**j`` for ``j = 0 .. order/2 - 1`` (plus
    ``x`` itself with weight 0) and ``df = sum_j w_j f_j / h``; independent
    errors ``|e_j| <= e`` in the ``f_j`` thus move ``df`` by at most
    ``e * sum |w_j| / h``.  The weights solve the same Vandermonde system as
    SciPy's.
    """
    n = (order + 1) // 2
    i = np.arange(-n, n + 1)
    offsets = np.sign(i) / factor ** (np.abs(i) - 1.0)
    rhs = np.zeros(2 * n + 1)
    rhs[1] = 1.0
    weights = np.linalg.solve(np.vander(offsets, increasing=True).T, rhs)
    weights[n] = 0.0
    return float(np.sum(np.abs(weights)))


# -- approx_fprime ------------------------------------------------------------------------


def approx_fprime_reference(
    objective: Objective,
    indices: ArrayLike | None = None,
    *,
    step: ArrayLike | None = None,
    sigma: float | None = None,
) -> Estimate:
    r"""Forward differences by ``scipy.optimize.approx_fprime``, with an error estimate.

    Parameters
    ----------
    objective : Objective
        The loss over the flat parameter vector.
    indices : array_like of int, optional
        Flat indices of the elements to estimate; all elements by default.
        Only those elements are handed to SciPy, through a function of the
        subset alone (the other elements stay at ``x0``).
    step : float or array_like of float, optional
        The forward step of each element.  Default ``sqrt(eps) * max(|x_i|, 1)``
        with ``eps`` of the element's own dtype.
    sigma : float, optional
        Rounding noise of one loss value (e.g. from
        :func:`gradcheck.references.noise.estimate_noise`).  Default
        ``eps * max(|f(x0)|, tiny)``, which underestimates the noise of a loss
        that sums terms which cancel (``|f|`` much smaller than the sum of
        the terms' magnitudes); pass a measured ``sigma`` for such losses.

    Returns
    -------
    Estimate
        ``method="scipy-approx-fprime"``; ``derivative`` is SciPy's forward
        difference with step ``h``; ``error`` is ``truncation + roundoff``
        (see Notes); ``step`` is ``h``; ``notes`` holds ``"derivative_2h"``
        (the second forward difference), ``"truncation"`` and ``"roundoff"``.
        ``n_evaluations`` is ``2 * (len(indices) + 1)``: SciPy evaluates
        ``f(x0)`` once per call and there are two calls.

    Raises
    ------
    ParameterTypeError
        If ``objective`` is not an :class:`Objective` or ``indices`` are not integers.
    InvalidParameterError
        If an index is out of range, or a step is not positive or too small to
        move its element.

    See Also
    --------
    differentiate_reference : high-order central differences, far more accurate.
    scipy_check_grad : the single number ``scipy.optimize.check_grad`` reports.

    Notes
    -----
    The forward difference ``D(h) = (f(x + h e_i) - f(x)) / h`` has error

    .. math::

        D(h) - f'(x) = \frac{f''(x)}{2} h + O(h^2) + \frac{e_1 - e_0}{h},

    where ``|e_j| <= sigma`` is the rounding noise of each loss value.  The
    roundoff part is bounded by ``2 sigma / h``.  For the truncation part we
    choose to *measure* ``f''`` rather than guess it: SciPy is called a second
    time with steps ``h2 ~ 2h``, and since
    ``D(h2) - D(h) = f'' (h2 - h) / 2 + O(h^2)``,

    .. math::

        |f''| \frac{h}{2} \approx |D(h_2) - D(h)| \frac{h}{h_2 - h}.

    The noise of ``D(h2) - D(h)`` is at most
    ``sigma (1/h2 + (1/h - 1/h2) + 1/h) = 2 sigma / h`` (``f(x)`` is the same
    value in both), and could hide that much truncation by cancellation, so
    the error estimate is

    .. math::

        \text{error} = \frac{h}{h_2 - h}\left(|D(h_2) - D(h)| + \frac{2\sigma}{h}\right)
                      + \frac{2\sigma}{h}.

    Measuring ``f''`` costs one more evaluation per element and is exact for
    quadratics.  The default step
    ``sqrt(eps) max(|x|, 1)`` balances ``|f''| h / 2`` against ``2 sigma / h``
    when ``sigma ~ eps |f|`` and ``f''`` is of the order of ``f`` on the
    parameter's scale.  Steps are first rounded so that ``x + h`` is exactly
    representable in the element's dtype, so float32 parameters are
    evaluated exactly where SciPy assumes.

    Examples
    --------
    >>> import numpy as np
    >>> from gradcheck.problem.objective import Objective
    >>> from gradcheck.problem.space import ParameterSpace
    >>> objective = Objective(lambda p: np.sum(p**2), ParameterSpace(np.array([1.0, -2.0])))
    >>> estimate = approx_fprime_reference(objective)
    >>> bool(np.all(np.abs(estimate.derivative - [2.0, -4.0]) <= estimate.error))
    True
    """
    function = "approx_fprime_reference"
    _check_objective(objective, function)
    idx = _check_indices(objective, indices, function)
    noise = _noise(objective, idx, _check_sigma(sigma, function))
    n = len(idx)
    empty = np.empty(0)
    if n == 0:
        return Estimate(idx, empty, empty, empty, 0, "scipy-approx-fprime")

    base = objective.x0.astype(np.float64)
    z0 = base[idx].copy()
    if step is None:
        eps = objective.space.eps_at(idx)
        wanted = np.sqrt(eps) * np.maximum(np.abs(z0), 1.0)
    else:
        wanted = _check_steps(step, n, "step", function)
    h1 = _representable_steps(objective, idx, wanted)
    h2 = _representable_steps(objective, idx, 2.0 * h1)

    def subset_loss(z: NDArray[np.float64]) -> float:
        x = base.copy()
        x[idx] = z
        return objective(x)

    before = objective.n_evaluations
    d1 = np.asarray(scipy.optimize.approx_fprime(z0, subset_loss, h1), dtype=np.float64)
    d2 = np.asarray(scipy.optimize.approx_fprime(z0, subset_loss, h2), dtype=np.float64)
    spent = objective.n_evaluations - before

    ratio = h1 / (h2 - h1)
    # The measured truncation carries the noise of both quotients, up to 2 sigma / h1; it may
    # hide that much truncation by cancellation, so that much is added back.
    truncation = (np.abs(d2 - d1) + 2.0 * noise / h1) * ratio
    roundoff = 2.0 * noise / h1
    return Estimate(
        indices=idx,
        derivative=d1,
        error=truncation + roundoff,
        step=h1,
        n_evaluations=spent,
        method="scipy-approx-fprime",
        notes={"derivative_2h": d2, "step_2h": h2, "truncation": truncation, "roundoff": roundoff},
    )


# -- check_grad ---------------------------------------------------------------------------


def scipy_check_grad(
    objective: Objective,
    grad_flat: ArrayLike | Callable[[NDArray[Any]], ArrayLike],
    *,
    epsilon: float | None = None,
) -> float:
    """What ``scipy.optimize.check_grad`` reports for this gradient: one 2-norm.

    Parameters
    ----------
    objective : Objective
        The loss over the flat parameter vector.
    grad_flat : array_like or callable
        The analytic gradient at ``x0`` as a flat vector, or a function
        ``grad(x) -> flat vector`` (only called at ``x0``).
    epsilon : float, optional
        SciPy's forward step.  Default ``sqrt(eps)`` of the parameters' dtype,
        which is SciPy's own default for float64; for float32 SciPy's default
        (``1.5e-8``) would not move the parameters at all.

    Returns
    -------
    float
        ``|| grad - approx_fprime(x0) ||_2`` exactly as ``check_grad`` computes
        it (absolute, unscaled, with SciPy's fixed step): a single number with
        no error estimate, shown for comparison with the elementwise verdict.

    Raises
    ------
    ParameterTypeError
        If ``objective`` is not an :class:`Objective`.
    InvalidParameterError
        If the gradient does not have one element per parameter.
    """
    function = "scipy_check_grad"
    _check_objective(objective, function)
    x0 = objective.x0.astype(np.float64)
    if callable(grad_flat):
        grad = grad_flat
    else:
        vector = np.asarray(grad_flat, dtype=np.float64).reshape(-1)
        if vector.shape != x0.shape:
            raise InvalidParameterError(
                f"{function}: grad_flat has {vector.size} elements, the parameters {x0.size}"
            )

        def grad(x: NDArray[Any]) -> NDArray[np.float64]:
            return vector

    if epsilon is None:
        epsilon = float(np.sqrt(working_eps(objective.x0.dtype)))
    return float(scipy.optimize.check_grad(objective, grad, x0, epsilon=epsilon))


# -- scipy.differentiate ------------------------------------------------------------------


def differentiate_reference(
    objective: Objective,
    indices: ArrayLike | None = None,
    *,
    initial_step: ArrayLike | None = None,
    order: int = 8,
    maxiter: int = 10,
    rtol: float | None = None,
    atol: float | None = None,
    sigma: float | None = None,
) -> Estimate:
    r"""Adaptive high-order central differences by ``scipy.differentiate.derivative``.

    Every element is differentiated as its own scalar function
    ``phi_i(t) = f(x0 + t e_i)`` at ``t = 0``; SciPy vectorises over the
    elements, and no ``N x N`` matrix is ever formed: each requested
    ``(element, t)`` pair costs one loss evaluation with only that element moved.

    Parameters
    ----------
    objective : Objective
        The loss over the flat parameter vector.
    indices : array_like of int, optional
        Flat indices of the elements to estimate; all elements by default.
    initial_step : float or array_like of float, optional
        The first (largest) step of each element, absolute.  Default
        ``0.5 * s_i`` with ``s_i`` the smallest power of two ``>= max(|x_i|, 1)``:
        SciPy's default ``0.5`` for parameters of magnitude up to 1, growing
        with larger ones so the steps stay resolvable (this assumes the loss
        varies on the scale of the parameter; pass a step otherwise).  SciPy's first stencil
        spans ``+-initial_step``, so at the default it crosses any ReLU kink
        within 0.5 of the parameter; the estimate then only converges once
        the steps shrink past the kink.  Pass a smaller step (e.g. ``1e-3``)
        for piecewise-linear models.
    order : int, default 8
        Order of SciPy's finite-difference formula (odd values round up).
    maxiter : int, default 10
        SciPy's maximum number of step halvings.
    rtol, atol : float, optional
        SciPy's stopping tolerances on the derivative.  Defaults:
        ``rtol = sqrt(eps)`` (SciPy's own default) and
        ``atol = max(eps**0.75 * max(|f(x0)|, tiny), 10 sum|w_j| sigma / h0)``
        (the second term is ten times the roundoff of the first stencil, see
        Notes), with ``eps`` of the parameters' dtype, so float32 parameters
        get float32-sized tolerances, not float64 ones they can never meet.
        SciPy's default ``atol`` (the smallest normal number) is never met
        where the derivative is exactly zero, e.g. the weights of a dead ReLU;
        the status is then not 0 although the estimate is fine.
    sigma : float, optional
        Rounding noise of one loss value; default ``eps * max(|f(x0)|, tiny)``
        (see :func:`approx_fprime_reference` for when to measure it instead).

    Returns
    -------
    Estimate
        ``method="scipy-differentiate"``; ``derivative`` is SciPy's ``df``;
        ``error`` is SciPy's ``error`` plus a roundoff floor (see Notes);
        ``step`` is the largest step ``h`` of the last stencil; ``notes``
        holds ``"status"`` (SciPy's status per element, 0 where it converged,
        -1 where the error grew, -2 where ``maxiter`` ran out), ``"nit"``,
        ``"nfev"`` (loss evaluations per element), ``"scipy_error"``,
        ``"roundoff"`` and ``"not_converged"`` (flat indices whose status is not 0).

    Raises
    ------
    ParameterTypeError
        If ``objective`` is not an :class:`Objective` or an argument has the wrong type.
    InvalidParameterError
        If an index is out of range or a knob is out of range.

    See Also
    --------
    approx_fprime_reference : SciPy's first-order forward differences.

    Notes
    -----
    With step factor ``c = 2`` and ``n = order / 2``, SciPy evaluates
    ``f`` at ``x +- h / c^j`` (``j < n``) and forms ``df = sum_j w_j f_j / h``;
    its ``error`` is ``|df_k - df_{k-1}|`` between successive halvings of
    ``h``, which bounds the truncation error of the latest estimate
    conservatively once the iteration converges.  It says nothing reliable
    about roundoff (two noisy estimates may agree by chance), so we add a
    floor

    .. math::

        \frac{\sum_j |w_j|}{h} \left(\sigma + |df| \, \delta_{\max}\right),

    where ``sigma`` bounds the noise of each loss value and ``delta_max`` is
    the largest difference between the abscissa SciPy asked for and the one
    the loss was evaluated at: a float32 element cannot hold ``x0 + t``
    exactly, so ``phi(t)`` is really evaluated at ``t + delta`` with
    ``delta = fl(x0 + t) - x0 - t``, which shifts ``f_j`` by about
    ``f' delta``.  Each ``delta`` is measured exactly from the step that
    :meth:`Objective.perturbed` reports as taken.  The default steps are
    powers of two, so in float64 ``delta`` is usually 0.

    SciPy's first call (at ``t = 0``, for input validation) is answered
    with ``f(x0)`` without a new evaluation.

    Examples
    --------
    >>> import numpy as np
    >>> from gradcheck.problem.objective import Objective
    >>> from gradcheck.problem.space import ParameterSpace
    >>> objective = Objective(lambda p: np.sum(np.sin(p)), ParameterSpace(np.array([0.5, 1.0])))
    >>> estimate = differentiate_reference(objective)
    >>> bool(np.all(np.abs(estimate.derivative - np.cos([0.5, 1.0])) <= estimate.error))
    True
    """
    function = "differentiate_reference"
    _check_objective(objective, function)
    idx = _check_indices(objective, indices, function)
    order = _check_positive_int(order, "order", function)
    maxiter = _check_positive_int(maxiter, "maxiter", function)
    noise = _noise(objective, idx, _check_sigma(sigma, function))
    if len(idx) == 0:
        return _no_derivatives(idx)

    h0 = _first_steps(objective, idx, initial_step, function)
    weight_sum = _central_weight_sum(order)
    tolerances = _stopping_tolerances(objective, noise / h0, weight_sum, rtol, atol, function)
    lines = _ElementLines(objective, idx)
    before = objective.n_evaluations
    result = scipy.differentiate.derivative(
        lines,
        np.zeros(len(idx)),
        args=(np.arange(len(idx)),),
        initial_step=h0,
        step_factor=_STEP_FACTOR,
        order=order,
        maxiter=maxiter,
        tolerances=tolerances,
    )
    spent = objective.n_evaluations - before
    return _differentiate_estimate(result, idx, h0, weight_sum, noise, lines.delta_max, spent)


def _no_derivatives(idx: NDArray[np.intp]) -> Estimate:
    """The estimate of no elements, with every note present (and empty)."""
    empty = np.empty(0)
    nothing = np.empty(0, dtype=np.int64)
    notes: dict[str, Any] = {key: nothing for key in ("status", "nit", "nfev", "not_converged")}
    notes.update(scipy_error=empty, roundoff=empty)
    return Estimate(idx, empty, empty, empty, 0, "scipy-differentiate", notes)


def _first_steps(
    objective: Objective, idx: NDArray[np.intp], initial_step: ArrayLike | None, function: str
) -> NDArray[np.float64]:
    """``initial_step`` checked, or half the smallest power of two ``>= max(|x_i|, 1)``."""
    if initial_step is not None:
        return _check_steps(initial_step, len(idx), "initial_step", function)
    x = objective.x0[idx].astype(np.float64)
    return 0.5 * 2.0 ** np.ceil(np.log2(np.maximum(np.abs(x), 1.0)))


def _stopping_tolerances(
    objective: Objective,
    noise_per_step: NDArray[np.float64],
    weight_sum: float,
    rtol: float | None,
    atol: float | None,
    function: str,
) -> dict[str, float]:
    """SciPy's ``tolerances``: the given ones checked, the defaults sized to the dtype."""
    eps = working_eps(objective.x0.dtype)
    tiny = float(np.finfo(objective.x0.dtype).tiny)
    if atol is None:
        # Successive estimates cannot agree better than the noise of the first stencil,
        # sum|w| sigma / h0; below 10 times that, differences are rounding, not truncation.
        atol = max(
            eps**0.75 * max(abs(float(objective.value0)), tiny),
            10.0 * weight_sum * float(np.max(noise_per_step)),
        )
    tolerances = {
        "rtol": float(np.sqrt(eps)) if rtol is None else float(rtol),
        "atol": float(atol),
    }
    for name, value in tolerances.items():
        if not (np.isfinite(value) and value >= 0):
            raise InvalidParameterError(f"{function}: {name} must be finite and >= 0, not {value}")
    return tolerances


class _ElementLines:
    """``phi_k(t) = f(x0 + t e_idx[k])`` for SciPy, recording how far each abscissa moved.

    ``delta_max[k]`` is the largest ``|taken - t|`` of element ``k``: the step the
    loss was really evaluated at (rounded to the element's dtype) minus the asked one.
    """

    def __init__(self, objective: Objective, idx: NDArray[np.intp]) -> None:
        self.objective = objective
        self.idx = idx
        self.f0 = float(objective.value0)
        self.delta_max = np.zeros(len(idx))

    def __call__(self, t: NDArray[np.float64], position: NDArray[Any]) -> NDArray[np.float64]:
        # SciPy passes the element positions as an argument broadcastable with t: compressed to
        # the still-active elements, with a trailing axis over the stencil points.
        t, position = np.broadcast_arrays(t, position)
        out = np.empty(t.shape, dtype=np.float64)
        for where in np.ndindex(t.shape):
            step = float(t[where])
            k = int(position[where])
            if step == 0.0:
                out[where] = self.f0
                continue
            value, taken = self.objective.perturbed(int(self.idx[k]), step)
            self.delta_max[k] = max(self.delta_max[k], abs(taken - step))
            out[where] = value
        return out


def _differentiate_estimate(
    result: Any,
    idx: NDArray[np.intp],
    h0: NDArray[np.float64],
    weight_sum: float,
    noise: NDArray[np.float64],
    delta_max: NDArray[np.float64],
    spent: int,
) -> Estimate:
    """SciPy's result as an :class:`Estimate`, its error given the roundoff floor (Notes)."""
    n = len(idx)
    df = np.asarray(result.df, dtype=np.float64).reshape(n)
    scipy_error = np.asarray(result.error, dtype=np.float64).reshape(n)
    status = np.asarray(result.status, dtype=np.int64).reshape(n)
    nit = np.asarray(result.nit, dtype=np.int64).reshape(n)
    # SciPy's count includes its first call at t = 0, answered by _ElementLines without a loss call.
    nfev = np.asarray(result.nfev, dtype=np.int64).reshape(n) - 1
    # Iteration k (1-based) used the largest step h0 / c**(k-1).
    h_last = h0 / _STEP_FACTOR ** np.maximum(nit - 1, 0)
    roundoff = weight_sum * (noise + np.abs(df) * delta_max) / h_last
    error = np.where(np.isfinite(df) & np.isfinite(scipy_error), scipy_error + roundoff, np.inf)
    return Estimate(
        indices=idx,
        derivative=df,
        error=error,
        step=h_last,
        n_evaluations=spent,
        method="scipy-differentiate",
        notes={
            "status": status,
            "nit": nit,
            "nfev": nfev,
            "scipy_error": scipy_error,
            "roundoff": roundoff,
            "not_converged": idx[status != 0],
        },
    )
