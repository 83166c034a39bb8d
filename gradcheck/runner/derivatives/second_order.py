"""``check_hessian`` and ``check_hvp``: second derivatives in SciPy's conventions.

``scipy.optimize.minimize(fun, x0, args=..., jac=grad, hess=hess)`` takes
``hess(x, *args)``, an ``(n, n)`` array for a 1-D ``x``, or ``hessp(x, p, *args)``,
the product ``H p``.  Both are derivatives of the user's gradient, which is a vector
function like any other: the Hessian is the Jacobian of ``grad``
(:func:`~gradcheck.runner.derivatives.jacobian.check_jacobian`'s machinery, output
``grad``, input ``x``), the HVP its JVP
(:func:`~gradcheck.runner.derivatives.jacobian.check_jvp`'s).
The references differentiate ``grad``, so what is checked is that ``hess`` is the
derivative of *this* ``grad`` (check ``grad`` itself with :func:`gradcheck.check`).
Both also report an asymmetric Hessian (:mod:`.symmetry`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

import numpy as np

from gradcheck.errors import InvalidParameterError, raise_unless_passed
from gradcheck.problem.calls import require_callable
from gradcheck.results import CheckResult, Diagnosis
from gradcheck.runner.derivatives.binding import WithArguments, require_accepts
from gradcheck.runner.derivatives.jacobian import _check_matrix, run_jvp
from gradcheck.runner.derivatives.problem import DerivativeProblem, derivative_options
from gradcheck.verdict.tolerance import passes

__all__ = ["check_hessian", "assert_hessian", "check_hvp", "assert_hvp"]


class _Product:
    """SciPy's ``hessp(x, p, *args)`` as a JVP ``jvp(p, x)`` of ``grad``."""

    def __init__(self, hvp: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.hvp = hvp
        self.args = args

    def __call__(self, tangent: Any, x: Any) -> Any:
        return self.hvp(x, tangent, *self.args)


def _identity(result: CheckResult, role: str) -> CheckResult:
    """Name a Hessian off by ``c * I`` (a regularisation term's Hessian), when nothing else fits.

    Only with its own evidence: one square block, ``analytic - reference = c I`` within
    tolerance at every checked entry, ``c`` beyond the diagonal's tolerance.
    """
    unnamed = result.diagnosis is None or result.diagnosis.kind == "unknown"
    if result.status != "failed" or not unnamed or len(result.parameters) != 1:
        return result
    block = result.parameters[0]
    if block.analytic.ndim != 2 or block.shape[0] != block.shape[1]:
        return result
    difference = np.asarray(block.analytic, dtype=np.float64) - block.reference
    c = float(np.mean(np.diag(difference)))
    expected = c * np.eye(block.shape[0])
    fits = passes(difference, expected, block.tolerance)[block.checked]
    if not fits.all() or abs(c) <= float(np.max(np.diag(block.tolerance))):
        return result
    missing = "lacks" if c < 0 else "has an extra"
    diagnosis = Diagnosis(
        "missing-identity",
        f"{role} {missing} {abs(c):.6g} x I: the Hessian of a regularisation term "
        f"lam/2 |x|^2 is lam I (lam = {abs(c):.6g}): missing, doubled or left out of {role}",
        f"analytic - reference = c I with c = {c:.10g}, within tolerance at all "
        f"{int(block.checked.sum())} checked entries",
        (block.name,),
        {"coefficient": c},
    )
    return replace(result, diagnosis=diagnosis)


def _args(args: Any) -> tuple[Any, ...]:
    if args is None:
        return ()
    return args if isinstance(args, tuple) else (args,)


def check_hessian(
    grad: Callable[..., Any],
    hess: Callable[..., Any],
    x: Any,
    *,
    args: Any = (),
    **options: Any,
) -> CheckResult:
    """Check a Hessian, entry by entry, against the Jacobian of the gradient it belongs to.

    Parameters
    ----------
    grad : callable
        ``grad(x, *args)`` returning the gradient, shape ``(n,)`` (SciPy's ``jac``).
    hess : callable
        ``hess(x, *args)`` returning the Hessian, shape ``(n, n)`` (SciPy's ``hess``).
    x : array_like, shape (n,)
        The point.  Never modified.
    args : tuple, optional
        Extra arguments of ``grad`` and ``hess`` (a non-tuple is one argument).

    Other Parameters
    ----------------
    **options
        The options of :func:`gradcheck.check`, except ``vectorized``.

    Returns
    -------
    CheckResult
        ``kind == "hessian"``; after a full check ``parameters`` is the block
        ``d grad / d x`` (shape ``(n, n)``) with every entry judged, ``entries``
        the worst wrong ones; an ``asymmetric`` hazard (which fails the check) when
        ``hess`` is not symmetric beyond rounding.

    Raises
    ------
    InvalidParameterError
        ``x`` not 1-D.
    GradientStructureError
        ``hess`` not of shape ``(n, n)`` (a non-square Hessian).
    ParameterTypeError
        ``args`` that ``grad`` or ``hess`` cannot take.
    UserFunctionError
        ``grad`` or ``hess`` raised.

    See Also
    --------
    check_hvp : Hessian-vector products (SciPy's ``hessp``), also for trees.

    Notes
    -----
    The reference is the Jacobian of ``grad``: one complex-step evaluation of ``grad``
    per element of ``x`` gives a column (two central-difference evaluations when
    ``grad`` does not take complex input).  A full check costs about ``n`` (or
    ``2n``) calls of ``grad`` and a few of ``hess``.

    Examples
    --------
    >>> import numpy as np, gradcheck
    >>> A = np.array([[2.0, 1.0], [1.0, 3.0]])
    >>> grad = lambda x, lam: A @ x + lam * x
    >>> hess = lambda x, lam: A + lam * np.eye(2)
    >>> gradcheck.check_hessian(grad, hess, np.array([1.0, -1.0]), args=(0.1,)).passed
    True
    """
    settings = derivative_options(options, "check_hessian")
    args = _args(args)
    require_callable(grad, "grad", "grad(x, *args)")
    require_callable(hess, "hess", "hess(x, *args)")
    require_accepts(grad, "grad", 1, args)
    require_accepts(hess, "hess", 1, args)
    point = np.asarray(x) if not isinstance(x, np.ndarray) else x
    if point.ndim != 1:
        raise InvalidParameterError(
            f"x: check_hessian takes a 1-D x, as scipy.optimize.minimize does, got shape "
            f"{point.shape}; use check_hvp for other shapes and trees"
        )
    problem = DerivativeProblem.build(
        WithArguments(grad, args),
        (point,),
        None,
        settings,
        role="grad",
        prefix="grad",
        signature="grad(x, *args)",
        names=("x",),
    )
    if problem.outputs.shapes != (point.shape,) or problem.outputs.names != ("grad",):
        raise InvalidParameterError(
            f"grad: returned {problem.outputs.describe()}; the gradient of a 1-D x of shape "
            f"{point.shape} has that shape"
        )
    result = _check_matrix(problem, WithArguments(hess, args), "hess", "hessian", symmetric=True)
    return _identity(result, "hess") if settings.diagnose else result


def assert_hessian(
    grad: Callable[..., Any], hess: Callable[..., Any], x: Any, **options: Any
) -> CheckResult:
    """Like :func:`check_hessian`, but raise ``GradientMismatchError`` on failure."""
    return raise_unless_passed(check_hessian(grad, hess, x, **options))


def check_hvp(
    grad: Callable[..., Any],
    hvp: Callable[..., Any],
    params: Any,
    *,
    args: Any = (),
    **options: Any,
) -> CheckResult:
    """Check a Hessian-vector product (SciPy's ``hessp``) against the gradient it belongs to.

    Parameters
    ----------
    grad : callable
        ``grad(x, *args)`` returning the gradient in ``x``'s structure.
    hvp : callable
        ``hvp(x, v, *args)`` returning ``H v`` in ``x``'s structure (SciPy's
        ``hessp(x, p, *args)``; ``v`` has ``x``'s structure).
    params : array_like or nested dict/list/tuple of array_like
        The point ``x``: a 1-D array as SciPy has it, or any parameter tree.
        Never modified.
    args : tuple, optional
        Extra arguments of ``grad`` and ``hvp`` (a non-tuple is one argument).

    Other Parameters
    ----------------
    **options
        The options of :func:`gradcheck.check`, except ``vectorized`` and
        ``mode="sampled"``/``elements``.

    Returns
    -------
    CheckResult
        ``kind == "hvp"``.  A full check (``n`` products, one per element of
        ``x``) judges every entry of ``H`` (the blocks ``d grad / d x``); a
        directional one compares ``H v`` with the directional derivative of
        ``grad`` along random ``v`` and states its miss probability.  An
        ``asymmetric`` hazard when ``H`` is not symmetric beyond rounding.

    Raises
    ------
    GradientStructureError, InvalidLossError
        ``hvp`` or ``grad`` returning another structure than ``x``.
    ParameterTypeError
        ``args`` that ``grad`` or ``hvp`` cannot take.
    UserFunctionError
        ``grad`` or ``hvp`` raised.

    See Also
    --------
    check_hessian, check_jvp

    Notes
    -----
    ``H v`` is the JVP of ``grad`` along ``v``: the check is :func:`check_jvp`'s, with
    ``grad`` as the function.  Symmetry is tested on the whole matrix after a full
    check, else on ``<w, H v>`` against ``<v, H w>`` for random ``v``, ``w``.

    Examples
    --------
    >>> import numpy as np, gradcheck
    >>> grad = lambda x: 4 * x**3
    >>> hessp = lambda x, p: 12 * x**2 * p
    >>> gradcheck.check_hvp(grad, hessp, np.array([1.0, -0.5, 2.0])).passed
    True
    """
    settings = derivative_options(options, "check_hvp")
    if settings.mode == "sampled" or settings.elements is not None:
        raise InvalidParameterError(
            "mode: check_hvp checks whole columns (mode='full') or random vectors "
            "(mode='directional'); 'sampled' and elements= do not apply"
        )
    args = _args(args)
    require_callable(grad, "grad", "grad(x, *args)")
    require_callable(hvp, "hvp", "hvp(x, v, *args)")
    require_accepts(grad, "grad", 1, args)
    require_accepts(hvp, "hvp", 2, args)
    problem = DerivativeProblem.build(
        WithArguments(grad, args),
        (params,),
        0,
        settings,
        role="grad",
        prefix="grad",
        signature="grad(x, *args)",
        names=("x",),
    )
    result = run_jvp(problem, _Product(hvp, args), "hvp", "hvp", symmetric=True)
    return _identity(result, "hvp") if settings.diagnose else result


def assert_hvp(
    grad: Callable[..., Any], hvp: Callable[..., Any], params: Any, **options: Any
) -> CheckResult:
    """Like :func:`check_hvp`, but raise ``GradientMismatchError`` on failure."""
    return raise_unless_passed(check_hvp(grad, hvp, params, **options))
