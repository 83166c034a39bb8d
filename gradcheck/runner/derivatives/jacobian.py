"""``check_jacobian`` and ``check_jvp``: whole Jacobians and forward-mode products.

Both reduce to the scalar check of ``<u, f>`` (:mod:`.projection`), whose gradient
``J^T u`` is a contraction of the user's Jacobian (or ``n`` JVPs, one per input
element).  A full check then judges every entry ``J[j, i]`` on its own
(:mod:`.entries`): the reference columns are the scalar check's own evaluations of
``f`` (one complex step, or one central difference, per input element gives a whole
column), so the entries cost no extra evaluation of ``f`` beyond the scalar check's
``n`` (complex) or ``2n`` (central): not ``n * m``.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.errors import GradientStructureError, InvalidParameterError, raise_unless_passed
from gradcheck.problem.calls import require_callable
from gradcheck.results import CheckResult, JacobianEntry
from gradcheck.runner.derivatives.columns import (
    Columns,
    central_columns,
    complex_columns,
    output_noise,
)
from gradcheck.runner.derivatives.entries import (
    SHOWN_ENTRIES,
    Blocks,
    block_results,
    central_error,
    complex_error,
    diagnose_entries,
    excuse_kinks,
    judge_entries,
    second_reference,
    wrong_entries,
)
from gradcheck.runner.derivatives.locate import failing_elements, reference_columns
from gradcheck.runner.derivatives.problem import DerivativeProblem, derivative_options, unwrapped
from gradcheck.runner.derivatives.projection import Capture, ProjectedGradient
from gradcheck.runner.derivatives.symmetry import matrix_asymmetry, product_asymmetry
from gradcheck.verdict.tolerance import derived_tolerance, passes

__all__ = ["check_jacobian", "assert_jacobian", "check_jvp", "assert_jvp", "entrywise"]


def _unit(size: int, index: int) -> NDArray[np.float64]:
    direction = np.zeros(size)
    direction[index] = 1.0
    return direction


def _checked_columns(problem: DerivativeProblem, result: CheckResult) -> NDArray[np.intp]:
    """The input elements the scalar check compared elementwise (flat indices)."""
    found = []
    for parameter in result.parameters:
        leaf = next(leaf for leaf in problem.space.leaves if leaf.name == parameter.name)
        found.append(leaf.offset + np.flatnonzero(parameter.checked))
    return np.concatenate(found).astype(np.intp) if found else np.empty(0, np.intp)


def _kink_columns(problem: DerivativeProblem, result: CheckResult) -> NDArray[np.intp]:
    found = [np.empty(0, np.intp)]
    for parameter in result.parameters:
        if parameter.kink_mask is not None and parameter.kink_mask.any():
            leaf = next(leaf for leaf in problem.space.leaves if leaf.name == parameter.name)
            found.append(leaf.offset + np.flatnonzero(parameter.kink_mask))
    return np.concatenate(found).astype(np.intp)


class _Noise:
    """The outputs' rounding noise, measured when a central difference first needs it."""

    def __init__(self, problem: DerivativeProblem) -> None:
        self.problem = problem
        self.sigma: NDArray[np.float64] | None = None
        self.n_evaluations = 0

    def __call__(self) -> NDArray[np.float64]:
        if self.sigma is None:
            function = self.problem.function()
            rng = np.random.default_rng(self.problem.seed).spawn(2)[1]
            self.sigma, self.n_evaluations = output_noise(function, rng)
        return self.sigma


def _first_columns(
    problem: DerivativeProblem,
    capture: Capture,
    columns: NDArray[np.intp],
    complex_ok: bool,
    noise: _Noise,
) -> tuple[Columns, str]:
    """The reference columns: captured from the scalar check, else computed."""
    function = problem.function()
    captured, method = capture.columns(columns, problem.outputs.size)
    if captured is not None and method == "complex":
        return complex_error(captured, function.eps), "captured from the scalar check"
    if captured is not None:
        return central_error(captured, noise()), "captured from the scalar check"
    directions = [_unit(problem.space.size, int(i)) for i in columns]
    scales = function.scales(columns)
    if complex_ok:
        return complex_columns(function, directions, scales), "computed"
    return central_columns(function, directions, scales, noise()), "computed"


def entrywise(
    problem: DerivativeProblem, result: CheckResult, capture: Capture, matrix: NDArray[Any]
) -> CheckResult:
    """``result`` (the scalar check) with its elements replaced by every entry of ``matrix``.

    Only for a full or sampled scalar check (a directional one has no columns); the
    scalar check's hazards, notes and kinks are kept, its per-element verdict is
    superseded by the finer entrywise one.
    """
    if result.status == "inconclusive":
        return result
    if result.mode == "directional":
        return replace(result, entries=_located_entries(problem, result, matrix))
    settings = problem.settings
    columns = _checked_columns(problem, result)
    complex_ok = any("complex" in p.method for p in result.parameters)
    noise = _Noise(problem)
    with unwrapped():
        first, origin = _first_columns(problem, capture, columns, complex_ok, noise)
        check = judge_entries(
            Blocks(problem.outputs, problem.space), matrix, columns, first, settings
        )
        spent = first.n_evaluations
        function = problem.function()
        second_reference(check, function, noise, settings)
    excuse_kinks(check, _kink_columns(problem, result))
    source = (
        f"entrywise against reference columns ({first.method}, {origin}); "
        f"{result.parameters[0].tolerance_source if result.parameters else ''}"
    )
    results = block_results(check, source)
    extra = check.n_evaluations - first.n_evaluations + spent + noise.n_evaluations
    note = (
        f"every entry of {len(columns)} column(s) x {problem.outputs.size} output(s) compared "
        f"on its own; {extra} evaluations of {problem.role} beyond the scalar check's"
    )
    checked = replace(
        result,
        parameters=results,
        diagnosis=None,
        n_evaluations=result.n_evaluations + extra,
        notes=tuple(result.notes) + (note,),
    )
    entries = wrong_entries(check, results)
    if checked.status == "failed" and settings.diagnose:
        with unwrapped():
            found = diagnose_entries(check, results, result.diagnosis)
            checked = replace(checked, diagnosis=found)
    return replace(checked, entries=entries)


def _located_entries(
    problem: DerivativeProblem, result: CheckResult, matrix: NDArray[np.float64]
) -> tuple[JacobianEntry, ...]:
    """After a directional check, the wrong entries of the input elements it located.

    The bisection names input elements; their reference columns (one complex-step
    evaluation each, or a Richardson ladder) name the outputs, entry by entry.
    """
    if result.status != "failed":
        return ()
    indices = failing_elements(problem, result)
    if not len(indices):
        return ()
    complex_ok = result.directional is not None and result.directional.get("method") == "complex"
    with unwrapped():
        columns = reference_columns(problem, indices, complex_ok=complex_ok)
    eps = problem.function().eps
    analytic = matrix[:, indices]
    scale = float(np.max(np.abs(columns.derivative), initial=0.0))
    tolerance = derived_tolerance(columns.error, eps, scale, global_scale=scale)
    found = []
    for j, k in zip(*np.nonzero(~passes(analytic, columns.derivative, tolerance)), strict=True):
        found.append(
            JacobianEntry(
                problem.outputs.element_name(int(j)),
                problem.element_name(int(indices[k])),
                float(analytic[j, k]),
                float(columns.derivative[j, k]),
                float(tolerance[j, k]),
                columns.method,
            )
        )
    return tuple(found[:SHOWN_ENTRIES])


# -- check_jacobian --------------------------------------------------------------------


def _jacobian_matrix(
    problem: DerivativeProblem, returned: Any, role: str = "jacobian"
) -> NDArray[np.float64]:
    """The user's Jacobian, one array ``out.shape + input.shape`` per input, as ``m x n``."""
    per_input = problem.inputs.per_input(returned, role, "array")
    out_shape = problem.outputs.shapes[0]
    matrix = np.empty((problem.outputs.size, problem.space.size))
    for leaf in problem.space.leaves:
        value = per_input[leaf.name]
        try:
            block = np.asarray(value)
        except Exception as exc:  # noqa: BLE001 - named below
            raise GradientStructureError(
                f"{role}: the entry for {leaf.name} is a {type(value).__name__}, not an array"
            ) from exc
        expected = tuple(out_shape) + tuple(leaf.shape)
        if block.shape != expected:
            out = problem.outputs.prefix
            raise GradientStructureError(
                f"{role}: the entry for {leaf.name} has shape {block.shape}; expected "
                f"{out}.shape + {leaf.name}.shape = {out_shape} + {leaf.shape} = {expected}"
            )
        if not np.issubdtype(block.dtype, np.number) or np.iscomplexobj(block):
            raise GradientStructureError(
                f"{role}: the entry for {leaf.name} has dtype {block.dtype}; expected real"
            )
        matrix[:, leaf.slice] = block.reshape(problem.outputs.size, leaf.size)
    return matrix


def _require_arrays(problem: DerivativeProblem, function: str) -> None:
    if len(problem.outputs.names) != 1 or problem.outputs.names[0] != problem.outputs.prefix:
        raise InvalidParameterError(
            f"{function}: f must return one array (it returned {problem.outputs.describe()}); "
            "check trees of outputs with check_vjp or check_jvp"
        )
    for name in problem.inputs.differentiated_names:
        if isinstance(problem.inputs.tree[name], (Mapping, list, tuple)):
            raise InvalidParameterError(
                f"{function}: {name} is a tree; a Jacobian is one array per input array "
                "(check trees with check_vjp or check_jvp)"
            )


def check_jacobian(
    f: Callable[..., Any],
    jacobian: Callable[..., Any],
    inputs: Any,
    *,
    wrt: Any = None,
    **options: Any,
) -> CheckResult:
    """Check a Jacobian, entry by entry, against the function it differentiates.

    Parameters
    ----------
    f : callable
        ``f(*inputs)`` (``f(**inputs)`` for a dict) returning one array.
    jacobian : callable
        ``jacobian(*inputs)`` returning, per differentiated input, an array of shape
        ``out.shape + input.shape`` (``J[j..., i...] = d out[j...] / d input[i...]``):
        a tuple (one per differentiated input, or one per input), a bare array when
        one input is differentiated, or a dict for keyword inputs.
    inputs : tuple, dict or ndarray
        The point, as for :func:`check_vjp`.  Never modified.
    wrt : int, str or sequence of them, optional
        The differentiated inputs; by default every floating-point array.

    Other Parameters
    ----------------
    **options
        The options of :func:`gradcheck.check`, except ``vectorized`` and ``args``.

    Returns
    -------
    CheckResult
        ``kind == "jacobian"``.  After a full check ``parameters`` are the blocks
        ``d out / d inputs[k]`` (shape ``out.shape + input.shape``), every entry
        judged, and ``entries`` the worst wrong ones by output and input element;
        after a directional check (large problems), the inputs, probed through
        ``J^T u``.

    Raises
    ------
    GradientStructureError
        A Jacobian of the wrong shape, or the wrong number of them.
    InvalidParameterError
        ``f`` returning a tree, tree inputs, bad ``wrt`` or options.
    UserFunctionError
        ``f`` or ``jacobian`` raised.

    See Also
    --------
    check_vjp, check_jvp

    Notes
    -----
    The scalar check of ``<u, f>`` with gradient ``tensordot(u, J)`` gives the
    hazards, kinks, noise and mode.  Its evaluations of ``f`` at ``x0 + i h e_i``
    (complex step) or ``x0 +- h e_i`` (central) are the reference columns
    ``J[:, i]``; each entry is judged by the derived tolerance of its own
    reference error, failing entries re-judged by Richardson extrapolation.  A
    full check costs about ``n`` evaluations of ``f`` (complex) or ``2n``
    (central) and a few calls of ``jacobian``.

    Examples
    --------
    >>> import numpy as np, gradcheck
    >>> f = lambda x: np.sin(x) * x[0]
    >>> def jacobian(x):
    ...     J = np.diag(np.cos(x) * x[0])
    ...     J[:, 0] += np.sin(x)
    ...     return J
    >>> gradcheck.check_jacobian(f, jacobian, (np.array([0.5, 1.0, 2.0]),)).passed
    True
    """
    settings = derivative_options(options, "check_jacobian")
    require_callable(jacobian, "jacobian", "jacobian(*inputs)")
    problem = DerivativeProblem.build(f, inputs, wrt, settings)
    _require_arrays(problem, "check_jacobian")
    return _check_matrix(problem, jacobian, "jacobian", "jacobian")


def _check_matrix(
    problem: DerivativeProblem,
    jacobian: Callable[..., Any],
    role: str,
    kind: str,
    *,
    symmetric: bool = False,
) -> CheckResult:
    """A Jacobian given whole: one array per input from ``jacobian(*inputs)``."""

    def matrix_at(tree: Any) -> NDArray[np.float64]:
        returned = problem.inputs.call(jacobian, role, f"calling {role}", tree)
        return _jacobian_matrix(problem, returned, role)

    return _check_full(problem, matrix_at, role, kind, symmetric=symmetric)


def _check_full(
    problem: DerivativeProblem,
    matrix_at: Callable[[Any], NDArray[np.float64]],
    role: str,
    kind: str,
    *,
    symmetric: bool = False,
    notes: tuple[str, ...] = (),
    **overrides: Any,
) -> CheckResult:
    """The scalar check of ``<u, f>`` with ``J^T u`` from ``matrix_at``, then every entry.

    The Jacobian at the given point is the one the scalar check's first gradient call
    computed (kept, not asked for again); ``symmetric`` adds the asymmetry hazard.
    """
    kept: list[NDArray[np.float64]] = []

    def transpose(cotangent_tree: Any, tree: Any) -> Any:
        matrix = matrix_at(tree)
        if not kept:  # the scalar check's first call is at the given point
            kept.append(matrix)
        return problem.space.split(problem.cotangent @ matrix)

    gradient = ProjectedGradient(
        transpose,
        problem.inputs,
        problem.outputs,
        problem.space,
        problem.cotangent,
        role,
        by_name=True,
    )
    capture = Capture(problem.space)
    result = problem.run(gradient, capture=capture, **overrides)
    if not kept:
        with unwrapped():
            kept.append(matrix_at(problem.space.tree))
        problem.space.restore()
    result = replace(result, notes=notes + tuple(result.notes))
    result = entrywise(problem, result, capture, kept[0])
    if symmetric:
        result = replace(
            result, hazards=tuple(result.hazards) + tuple(matrix_asymmetry(problem, kept[0], role))
        )
    return problem.finish(result, kind, entries=result.entries)


def assert_jacobian(
    f: Callable[..., Any], jacobian: Callable[..., Any], inputs: Any, **options: Any
) -> CheckResult:
    """Like :func:`check_jacobian`, but raise ``GradientMismatchError`` on failure."""
    return raise_unless_passed(check_jacobian(f, jacobian, inputs, **options))


# -- check_jvp -------------------------------------------------------------------------


def check_jvp(
    f: Callable[..., Any],
    jvp: Callable[..., Any],
    inputs: Any,
    *,
    wrt: Any = None,
    **options: Any,
) -> CheckResult:
    """Check a Jacobian-vector product (forward mode) against the function it differentiates.

    Parameters
    ----------
    f : callable
        ``f(*inputs)`` (``f(**inputs)`` for a dict) returning an array or a tree.
    jvp : callable
        ``jvp(tangents, *inputs)`` returning the output tangent ``J v`` in ``f``'s
        structure.  ``tangents`` is one array (a tree for a tree input) when one
        input is differentiated, else a tuple with one per differentiated input
        (a dict for keyword inputs).
    inputs : tuple, dict or ndarray
        The point, as for :func:`check_vjp`.  Never modified.
    wrt : int, str or sequence of them, optional
        The differentiated inputs; by default every floating-point array.

    Other Parameters
    ----------------
    **options
        The options of :func:`gradcheck.check`, except ``vectorized``, ``args``
        and ``mode="sampled"``/``elements`` (a JVP is checked by whole columns or
        by random tangents).

    Returns
    -------
    CheckResult
        ``kind == "jvp"``.  A full check (``n`` JVP calls, one per input element)
        judges every entry ``J[j, i]``, with the blocks ``d out / d input`` as
        ``parameters`` and ``entries`` naming the wrong ones; a directional check
        compares ``jvp(v)`` with the directional derivative of ``f`` along random
        tangents ``v``, output by output, and states its miss probability.

    Raises
    ------
    GradientStructureError, InvalidLossError
        ``jvp`` returns another structure or shape than ``f``.
    InvalidParameterError, ParameterTypeError
        Bad ``inputs``, ``wrt`` or options.
    UserFunctionError
        ``f`` or ``jvp`` raised.

    See Also
    --------
    check_vjp, check_jacobian

    Notes
    -----
    Full: ``jvp(e_i)`` is the column ``J[:, i]``; the columns make the Jacobian, checked
    as :func:`check_jacobian` checks one (the reference columns come from the scalar
    check's ``n`` or ``2n`` evaluations of ``f``).  Directional (when ``n`` JVP calls
    do not fit the budget): for Gaussian ``v``, a wrong row ``E_j`` of the JVP's
    Jacobian shows as ``(E v)_j ~ N(0, |E_j|^2)``; see
    :mod:`gradcheck.runner.derivatives.jvp_directional`.

    Examples
    --------
    >>> import numpy as np, gradcheck
    >>> f = lambda x: np.sin(x) * x.sum()
    >>> jvp = lambda v, x: np.cos(x) * v * x.sum() + np.sin(x) * v.sum()
    >>> gradcheck.check_jvp(f, jvp, (np.array([0.5, 1.0, 2.0]),)).passed
    True
    """
    settings = derivative_options(options, "check_jvp")
    if settings.mode == "sampled" or settings.elements is not None:
        raise InvalidParameterError(
            "mode: check_jvp checks whole columns (mode='full') or random tangents "
            "(mode='directional'); 'sampled' and elements= do not apply"
        )
    require_callable(jvp, "jvp", "jvp(tangents, *inputs)")
    problem = DerivativeProblem.build(f, inputs, wrt, settings)
    return run_jvp(problem, jvp, "jvp", "jvp")


def run_jvp(
    problem: DerivativeProblem,
    jvp: Callable[..., Any],
    role: str,
    kind: str,
    *,
    symmetric: bool = False,
) -> CheckResult:
    """Full (``n`` calls of ``jvp``, then every entry) or directional, as the budget allows.

    ``symmetric`` adds the asymmetry hazard of a Hessian (from the whole matrix, or
    from two products).
    """
    from gradcheck.runner.derivatives.jvp_directional import (
        check_jvp_directional,
        jvp_at,
        jvp_mode,
    )

    mode, why = jvp_mode(problem, jvp, role)
    if mode != "directional":
        return _check_columns(problem, jvp, role, kind, why, symmetric)

    def extra(prober: Any) -> list[Any]:
        if not symmetric:
            return []

        def call(v: NDArray[np.float64]) -> NDArray[np.float64]:
            prober.jvp_calls += 1
            out = jvp_at(problem, jvp, role, v, problem.space.tree)
            problem.space.restore()
            return out

        return product_asymmetry(problem, call, role, prober.rng)

    return check_jvp_directional(problem, jvp, why, role=role, kind=kind, extra=extra)


def _check_columns(
    problem: DerivativeProblem,
    jvp: Callable[..., Any],
    role: str,
    kind: str,
    why: str,
    symmetric: bool,
) -> CheckResult:
    """A full JVP check: ``jvp(e_i)`` for every input element makes the Jacobian."""
    from gradcheck.runner.derivatives.jvp_directional import jvp_at

    def matrix_at(tree: Any) -> NDArray[np.float64]:
        n = problem.space.size
        matrix = np.empty((problem.outputs.size, n))
        for i in range(n):
            matrix[:, i] = jvp_at(problem, jvp, role, _unit(n, i), tree)
        return matrix

    return _check_full(
        problem, matrix_at, role, kind, symmetric=symmetric, notes=(why,), mode="full"
    )


def assert_jvp(
    f: Callable[..., Any], jvp: Callable[..., Any], inputs: Any, **options: Any
) -> CheckResult:
    """Like :func:`check_jvp`, but raise ``GradientMismatchError`` on failure."""
    return raise_unless_passed(check_jvp(f, jvp, inputs, **options))
