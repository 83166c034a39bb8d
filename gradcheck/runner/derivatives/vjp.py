"""``check_vjp``: a layer's backward pass (a vector-Jacobian product) against its forward.

A backward pass ``vjp(dout, *inputs) -> (dx, dw, db)`` is the gradient of the scalar
``<dout, f(*inputs)>``: :func:`check_vjp` draws a random cotangent ``u`` and hands
``<u, f>`` and ``vjp(u)`` to :func:`gradcheck.check`, so a VJP gets the verdict a
gradient gets.  When an input element fails a full check, the output elements it is
wrong for are found with a reference column and a few more VJP calls
(:mod:`.locate`).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from gradcheck.errors import raise_unless_passed
from gradcheck.problem.calls import require_callable
from gradcheck.results import CheckResult, JacobianEntry
from gradcheck.runner.derivatives.locate import (
    failing_elements,
    locate_outputs,
    nonlinear_diagnosis,
    reference_columns,
    transposed_rows,
)
from gradcheck.runner.derivatives.problem import (
    AUTO_DIRECTIONAL_NOTE,
    DerivativeProblem,
    derivative_options,
    directional_by_default,
    unwrapped,
)
from gradcheck.runner.derivatives.projection import ProjectedGradient

__all__ = ["check_vjp", "assert_vjp"]


def check_vjp(
    f: Callable[..., Any],
    vjp: Callable[..., Any],
    inputs: Any,
    *,
    wrt: Any = None,
    **options: Any,
) -> CheckResult:
    """Check a vector-Jacobian product (a backward pass) against the function it differentiates.

    Parameters
    ----------
    f : callable
        ``f(*inputs)`` (``f(**inputs)`` for a dict) returning an array or a tree of
        arrays.
    vjp : callable
        ``vjp(cotangent, *inputs)`` returning the gradient of ``<cotangent, f>`` for
        each differentiated input: a tuple with one entry per differentiated input
        (or one per input, the fixed ones ignored, as a cs231n ``backward`` returns
        ``dx, dw, db``), a bare array when one input is differentiated, or a dict
        for keyword inputs.  ``cotangent`` has ``f``'s structure.
    inputs : tuple, dict or ndarray
        The point: positional arguments of ``f`` (a bare array is one), or keyword
        arguments.  Never modified.
    wrt : int, str or sequence of them, optional
        The differentiated inputs, by position (keyword for a dict); by default
        every floating-point array.  The others (integer labels, a
        ``conv_param`` dict, Python floats such as ``eps``) are held fixed.

    Other Parameters
    ----------------
    **options
        The options of :func:`gradcheck.check` (``method``, ``mode``, ``rng``,
        ``atol``/``rtol``, ``budget``, ``workers``...), except ``vectorized``
        and ``args`` (every argument of ``f`` is in ``inputs``).

    Returns
    -------
    CheckResult
        ``kind == "vjp"``; ``parameters`` named by input (``inputs[0]``, or the
        keyword), ``inputs`` and ``outputs`` named, and, for a failed full or
        sampled check, ``entries``: the wrong entries ``d out[j] / d inputs[k][i]``.

    Raises
    ------
    GradientStructureError
        ``vjp`` returns the wrong number of gradients or a wrong shape.
    ParameterTypeError, InvalidParameterError
        Bad ``inputs``, ``wrt`` (a missing or integer input) or options.
    InvalidLossError
        ``f`` returns something other than finite floating-point arrays.
    UserFunctionError
        ``f`` or ``vjp`` raised; the original exception is chained.

    See Also
    --------
    check_jvp, check_jacobian : forward-mode products and whole Jacobians.
    gradcheck.check : the scalar check this reduces to.

    Notes
    -----
    With ``u ~ N(0, I)`` over the outputs, ``phi(x) = <u, f(x)>`` (no conjugation, so
    a complex step through ``f`` is one through ``phi``) has gradient ``J^T u``,
    which is ``vjp(u)``.  A wrong column ``e_i`` of the VJP's Jacobian shows as
    ``<u, e_i> ~ N(0, |e_i|^2)``: it passes with probability at most
    ``sqrt(2/pi) tolerance / |e_i|``.  A full check costs what checking one
    gradient of ``n`` elements costs: about ``n`` evaluations of ``f`` (complex
    step) or ``2n`` (central), and a few VJP calls.

    Examples
    --------
    >>> import numpy as np, gradcheck
    >>> f = lambda x, w: np.tanh(x @ w)
    >>> def vjp(dout, x, w):
    ...     dz = dout * (1 - np.tanh(x @ w) ** 2)
    ...     return dz @ w.T, x.T @ dz
    >>> x, w = np.ones((4, 3)), np.full((3, 2), 0.1)
    >>> gradcheck.check_vjp(f, vjp, (x, w)).passed
    True
    """
    settings = derivative_options(options, "check_vjp")
    require_callable(vjp, "vjp", "vjp(cotangent, *inputs)")
    problem = DerivativeProblem.build(f, inputs, wrt, settings)

    def transpose(cotangent_tree: Any, tree: Any) -> Any:
        return problem.inputs.call(vjp, "vjp", "calling vjp", tree, cotangent_tree)

    gradient = ProjectedGradient(
        transpose, problem.inputs, problem.outputs, problem.space, problem.cotangent, "vjp"
    )
    notes = [problem.cotangent_note("vjp(u)")]
    if directional_by_default(settings, problem.space.size):
        result = problem.run(gradient, mode="directional")
        notes.append(AUTO_DIRECTIONAL_NOTE.format(n=problem.space.size, kind="VJP"))
    else:
        result = problem.run(gradient)
    entries: tuple[JacobianEntry, ...] = ()
    indices = failing_elements(problem, result) if result.status == "failed" else None
    if indices is not None and len(indices):  # (a directional check: those it located)
        complex_ok = any("complex" in p.method for p in result.parameters)
        with unwrapped():
            columns = reference_columns(problem, indices, complex_ok=complex_ok)
            rows = transposed_rows(problem, gradient.at, "vjp")
            located = locate_outputs(problem, rows, indices, columns)
        entries = located.entries
        notes.append(located.note)
        unnamed = result.diagnosis is None or result.diagnosis.kind == "unknown"
        if located.combined and not entries and unnamed and settings.diagnose:
            result = replace(
                result, diagnosis=nonlinear_diagnosis(problem, located, indices, "vjp")
            )
    return problem.finish(result, "vjp", entries=entries, notes=tuple(notes))


def assert_vjp(
    f: Callable[..., Any], vjp: Callable[..., Any], inputs: Any, **options: Any
) -> CheckResult:
    """Like :func:`check_vjp`, but raise :class:`~gradcheck.errors.GradientMismatchError`.

    Raises
    ------
    GradientMismatchError
        An ``AssertionError`` whose message is the readable report.
    """
    return raise_unless_passed(check_vjp(f, vjp, inputs, **options))
