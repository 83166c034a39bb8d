"""``gradcheck.check``: the user's gradient against independent references, element by element.

:func:`check` reads as its pipeline; each phase lives in :mod:`gradcheck.runner.phases`:
validate and prepare -> plan (complex-step capability, mode, elements) -> first pass ->
second reference (Richardson) -> kinks -> the functions watched again for drift and mutation
-> assemble (results, hazards, diagnosis).  The options are defined once, in
:class:`gradcheck.options.CheckOptions`.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import replace
from typing import Any

from gradcheck.errors import raise_unless_passed
from gradcheck.options import CheckOptions
from gradcheck.references.registry import METHODS
from gradcheck.results import CheckResult
from gradcheck.runner.evaluation import usable_workers, worker_pool
from gradcheck.runner.phases import (
    accept_kinks,
    assemble,
    first_pass,
    plan,
    prepare,
    second_reference,
    watch_the_functions,
)

__all__ = ["check", "assert_check", "METHODS"]


def check(
    loss: Callable[..., Any], grad: Callable[..., Any] | bool, params: Any, **options: Any
) -> CheckResult:
    """Check ``grad`` against references computed from ``loss`` alone.

    Parameters
    ----------
    loss : callable
        ``loss(params, *args) -> float``.  It receives gradcheck's own copies of the
        parameters in the structure given.
    grad : callable or True
        ``grad(params, *args)`` returning the gradient in the same structure; or
        ``True`` when ``loss`` returns ``(value, gradient)`` (SciPy's ``jac=True``):
        the value is what the references differentiate.
    params : array_like or nested dict/list/tuple of array_like
        Where to check.  Never modified.

    Other Parameters
    ----------------
    **options
        Keyword-only, defined and validated once in
        :class:`gradcheck.options.CheckOptions` (an unknown keyword is a
        :class:`~gradcheck.errors.ParameterTypeError`):
    method : {"auto", "complex", "central", "richardson", "approx_fprime", "differentiate"}
        The reference.  ``auto`` uses the complex step when the loss supports
        it, else central differences, refines doubtful elements with
        Richardson extrapolation and accepts kinks.  ``complex`` forces the
        complex step (an error if the loss does not support it), with the same
        Richardson arbitration of failing elements.  Any other name uses that
        reference alone, judged by its own error estimate
        (``approx_fprime``: SciPy's forward differences; ``differentiate``:
        ``scipy.differentiate.derivative`` elementwise).
    atol, rtol : float, optional
        Override the derived tolerance with ``atol + rtol * |reference|``.
    elements : int, optional
        Check only this many random elements of each parameter (all by default).
    rng : numpy.random.Generator, int or None
        Randomness (noise probe direction, sampled elements, probe directions).
        ``None`` is the fixed seed 0, so the same call gives the same verdict
        every run; the seed used is recorded in ``result.seed``.
    diagnose : bool
        Name the likely bug when the check fails.
    mode : {"auto", "full", "sampled", "directional"}
        ``full`` compares every element; ``sampled`` ``elements`` random ones
        per parameter; ``directional`` probes random directions with a stated
        miss probability and bisects to the wrong elements when a probe
        disagrees (see :mod:`gradcheck.runner.directional`).  ``auto`` (default) runs
        ``full`` when its estimated cost fits ``budget``, else ``directional``
        (``sampled`` when ``elements``, or ``atol``/``rtol``, are given); the
        result's ``mode`` and ``notes`` say which ran and why.
    vectorized : bool
        ``loss`` takes a stack ``(K, N)`` of flat parameter vectors (leaves
        ravelled and concatenated in tree order) and returns ``K`` values;
        perturbations are then evaluated many per call.
    executor : concurrent.futures.Executor, optional
        Evaluate batches of perturbations in parallel on it (e.g. a
        ``ProcessPoolExecutor``, or a ``dask.distributed`` client's
        ``get_executor()``); ``loss`` must be picklable by it.
    workers : int, optional
        Run the evaluations in this many worker processes (a
        ``ProcessPoolExecutor`` made and shut down by the check); ``loss`` must
        be picklable (a module-level function, a ``functools.partial``...).
        At most the CPUs this process may run on: more are capped, with a
        :class:`~gradcheck.errors.GradcheckWarning` and a note in the result.
        Ctrl-C stops the workers at once.  Not together with ``executor``.
    budget : float or int, optional
        What ``mode="auto"`` may spend on a full check: seconds (a float;
        5.0 by default) or loss evaluations (an int).
    progress : bool or None
        Progress bar (tqdm) for long evaluations: ``None`` shows it on a
        terminal only, ``False`` never, ``True`` always.
    args : tuple, optional
        Extra arguments of ``loss`` and ``grad`` (SciPy's ``args``; a non-tuple is one
        argument).  A signature that cannot take them is a ``ParameterTypeError``.
    layer_inputs : mapping of str to array_like, optional
        Only for the diagnosis: each weight parameter's layer input ``a_prev``
        (shape ``(n_samples, fan_in)``), e.g. ``{"weight2": a1}``.  With it a
        failed check can tell a per-sample delta returned as ``dW`` (when the
        shapes happen to match) and gradients that count only some samples,
        and name a factor equal to the batch size.

    Returns
    -------
    CheckResult
        ``passed``, per-parameter results with errors, tolerances, worst
        elements and evaluation counts, the diagnosis and hazards.

    Raises
    ------
    GradientStructureError
        The gradient misses a parameter, has an extra one, or a wrong shape.
    InvalidLossError
        The loss returned something other than one finite real number.
    ParameterTypeError, InvalidParameterError
        Bad ``params`` (integer dtype, non-finite values...) or options.
    UserFunctionError
        ``loss`` or ``grad`` raised; the original exception is chained.

    See Also
    --------
    assert_check : raise ``GradientMismatchError`` instead of returning a failed result.

    Notes
    -----
    The tolerance of each element is derived in :mod:`gradcheck.verdict.tolerance`
    from the reference's own error estimate and the dtype.

    Examples
    --------
    >>> import numpy as np, gradcheck
    >>> loss = lambda p: float(np.sum(np.sin(p["w"]) ** 2))
    >>> grad = lambda p: {"w": 2 * np.sin(p["w"]) * np.cos(p["w"])}
    >>> gradcheck.check(loss, grad, {"w": np.arange(3.0)}).passed
    True
    """
    settings = CheckOptions.from_keywords(options, function="check")
    workers, capped = usable_workers(settings.workers, loss)
    if workers > 1 or capped:
        keywords = {**settings.keywords(), "workers": None}
        if workers > 1:
            with worker_pool(workers) as pool:
                result = check(loss, grad, params, **{**keywords, "executor": pool})
        else:
            result = check(loss, grad, params, **keywords)
        return replace(result, notes=(*result.notes, capped)) if capped else result
    run = prepare(loss, grad, params, settings)
    chosen = plan(run)
    state, first, chosen = first_pass(run, chosen)
    if len(chosen.indices):  # (with nothing compared, the watch at the end follows at once)
        watch_the_functions(run, "after the first pass")
    second_reference(run, chosen, state, first)
    accept_kinks(run, chosen, state)
    watch_the_functions(run, "at the end of the check")
    return assemble(run, chosen, state)


def assert_check(
    loss: Callable[..., Any], grad: Callable[..., Any] | bool, params: Any, **options: Any
) -> CheckResult:
    """Like :func:`check`, but raise :class:`~gradcheck.errors.GradientMismatchError` on failure.

    Returns
    -------
    CheckResult
        The passing result.

    Raises
    ------
    GradientMismatchError
        An ``AssertionError`` whose message is the readable report.
    """
    return raise_unless_passed(check(loss, grad, params, **options))
