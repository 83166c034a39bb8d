"""The evaluation engine: many loss evaluations, chunked, vectorized or in parallel, with progress.

Every reference asks :class:`~gradcheck.problem.objective.Objective` for batches of
loss values: ``perturbed_many`` (one element moved per evaluation),
``complex_many`` (one element given an imaginary step) and ``values_at``
(arbitrary flat points: directional probes of a vectorized loss or through an
executor; a plain loss's probes move the working copy in place instead,
:meth:`~gradcheck.problem.objective.Objective.along_block`).  The plain
:class:`~gradcheck.problem.objective.Objective` loops over them one evaluation at a
time, moving one element of its private working copy in place and putting it
back, so memory stays O(N) and no parameter vector is copied per evaluation.
:class:`BatchedObjective` evaluates the same batches

* **vectorized**, when the user's loss takes a stack ``(K, N)`` of flat
  parameter vectors (``vectorized=True``): the batch is cut into chunks of
  ``K`` rows whose size is bounded in bytes (:data:`CHUNK_BYTES`), so memory
  stays ``O(K N)`` with ``K`` fixed, never ``O(N**2)``;
* **in parallel**, through any :class:`concurrent.futures.Executor`
  (a ``ProcessPoolExecutor``, a ``dask.distributed`` client's
  ``get_executor()``...): the batch is cut into a few tasks per worker, each
  task rebuilds the parameters once on its worker and evaluates its part with
  the same in-place (or vectorized) path;
* with a **progress bar** (tqdm) on a terminal, silent otherwise.

The values are the same whichever path computes them: the perturbed element
is rounded to its own dtype and the step really taken is reported in every
path, so a reference's math does not depend on how it was evaluated.
"""

from __future__ import annotations

import contextlib
import os
import pickle
import signal
import sys
import time
import warnings
from collections import deque
from collections.abc import Callable, Iterator
from concurrent.futures import Executor, Future
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.errors import (
    ExecutorError,
    GradcheckError,
    GradcheckWarning,
    InvalidLossError,
    InvalidParameterError,
    UserFunctionError,
)
from gradcheck.options import Budget, validate_executor, validate_flag, validate_progress
from gradcheck.problem.calls import call_user
from gradcheck.problem.objective import Objective, as_real_scalar
from gradcheck.problem.space import ParameterSpace, step_taken, walk_leaves

__all__ = [
    "BatchedObjective",
    "CHUNK_BYTES",
    "PROGRESS_DELAY",
    "available_cpus",
    "choose_mode",
    "usable_workers",
    "worker_pool",
]

#: Largest stack of parameter vectors handed to a vectorized loss at once, in bytes: the
#: memory bound of the stack (``K * N`` elements).  Within it the height is measured, not
#: guessed (:class:`_ChunkTuner`).
CHUNK_BYTES = 16 * 2**20
#: Most rows in one vectorized chunk, however small the parameters.
MAX_CHUNK_ROWS = 256
#: Serial evaluations between two progress-bar updates.
SERIAL_CHUNK = 512
#: Seconds a batch must run before its progress bar appears (tqdm's ``delay``).
PROGRESS_DELAY = 0.5
#: Tasks per executor worker: enough to balance the load, few enough that shipping the
#: parameters to each task stays cheap.
TASKS_PER_WORKER = 4
#: Fewest evaluations worth one executor task.
MIN_TASK = 32
#: Recent evaluations whose median time estimates the cost of one.
TIMED_EVALUATIONS = 32


def available_cpus() -> int:
    """The CPUs this process may run on: its affinity where the system has one, at least 1."""
    try:
        return max(len(os.sched_getaffinity(0)), 1)
    except (AttributeError, OSError):  # pragma: no cover - no affinity (macOS, Windows)
        return os.cpu_count() or 1


def usable_workers(workers: int | None, loss: Any) -> tuple[int, str | None]:
    """The worker processes to run (1 when none asked), and a note when fewer than asked.

    More processes than CPUs only compete for them (each with its own copy of the
    parameters): ``workers`` above :func:`available_cpus` is capped to it, with a
    :class:`~gradcheck.errors.GradcheckWarning` and the returned note for the result.
    The loss is checked to pickle first.

    Raises
    ------
    InvalidParameterError
        The loss cannot be pickled.
    """
    if workers is None:
        return 1, None
    if workers > 1:
        import pickle

        try:
            pickle.dumps(loss)
        except Exception as exc:  # noqa: BLE001 - whatever pickling raises, the cause is the same
            raise InvalidParameterError(
                f"workers: the loss must be picklable to run in worker processes (a "
                f"module-level function or a functools.partial, not a lambda or closure): "
                f"{type(exc).__name__}: {exc}"
            ) from exc
    cpus = available_cpus()
    if workers <= cpus:
        return int(workers), None
    note = f"workers: {workers} requested, {cpus} used (the CPUs this process may run on)"
    warnings.warn(note, GradcheckWarning, stacklevel=3)
    return cpus, note


@contextlib.contextmanager
def worker_pool(workers: int) -> Iterator[Executor]:
    """A ``ProcessPoolExecutor`` of ``workers`` processes that an interruption cannot orphan.

    Ctrl-C reaches every process of the terminal's group; the workers ignore SIGINT, so
    only this process reacts, instead of each worker printing its own traceback, and
    die quietly on SIGTERM whatever handler they inherited (both signals are blocked
    from before the workers are forked until their initializer has set them).  When
    the block is left by an exception (``KeyboardInterrupt`` included) the workers are
    terminated at once, not awaited: a slow loss cannot hold the exit, and no process
    outlives the check.
    """
    from concurrent.futures import ProcessPoolExecutor

    _quiet_broken_pool_thread()
    pool = ProcessPoolExecutor(max_workers=workers, initializer=_ignore_interrupts)
    try:
        with _interrupts_blocked():
            pool.submit(int).result()  # with fork, the workers start now, inheriting the mask
        yield pool
    except BaseException:
        _terminate(pool)
        raise
    pool.shutdown(wait=True)


@contextlib.contextmanager
def _interrupts_blocked() -> Iterator[None]:
    if not hasattr(signal, "pthread_sigmask"):  # pragma: no cover - Windows
        yield
        return
    previous = signal.pthread_sigmask(signal.SIG_BLOCK, _WORKER_SIGNALS)
    try:
        yield
    finally:
        signal.pthread_sigmask(signal.SIG_SETMASK, previous)


#: Signals a worker sets for itself before it runs anything.
_WORKER_SIGNALS = {signal.SIGINT, signal.SIGTERM}


def _ignore_interrupts() -> None:
    """A worker's initializer: Ctrl-C is for the parent, which stops the workers itself."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_DFL)  # not a handler inherited from the parent
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_UNBLOCK, _WORKER_SIGNALS)


def _quiet_broken_pool_thread() -> None:
    """Silence one traceback of Python's own pool thread (installed once).

    After the workers of an interrupted check are terminated, the pool's thread marks
    the pending tasks broken; on Python 3.11 it raises ``InvalidStateError`` for a task
    already cancelled (``Executor.map`` cancels what is left when its caller stops) and
    prints that traceback under the one-line message (seen: 5 SIGTERMs in 100).  Only
    that exception of that thread is dropped; every other goes to the previous hook.
    """
    import threading

    if not getattr(threading.excepthook, "_gradcheck", False):
        threading.excepthook = _silencing(threading.excepthook)


def _silencing(previous: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``previous`` (a ``threading.excepthook``) except for the pool thread's
    ``InvalidStateError``."""
    from concurrent.futures import InvalidStateError
    from concurrent.futures.process import _ExecutorManagerThread

    def hook(args: Any) -> None:
        if isinstance(args.thread, _ExecutorManagerThread) and issubclass(
            args.exc_type, InvalidStateError
        ):
            return
        previous(args)

    hook._gradcheck = True  # type: ignore[attr-defined]
    return hook


def _terminate(pool: Executor) -> None:
    """Stop a process pool now: running workers terminated, pending tasks never run.

    The pool's call queue feeds the workers from a thread of this process, which blocks
    writing to a full pipe that terminated workers no longer read; at exit Python joins
    that thread and would wait for ever (seen: 1 SIGTERM in 31 at random moments, under
    load), so it is never joined.
    """
    processes = list((getattr(pool, "_processes", None) or {}).values())
    manager = getattr(pool, "_executor_manager_thread", None)
    call_queue = getattr(pool, "_call_queue", None)
    if call_queue is not None:
        call_queue.cancel_join_thread()
    # Pending tasks are not cancelled here: the pool's own thread fails them as broken once
    # the workers are gone, and (Python 3.11) a cancelled one made it print a traceback.
    pool.shutdown(wait=False)
    for process in processes:
        process.terminate()
    for process in processes:
        process.join(timeout=10)
        if process.is_alive():  # pragma: no cover - a worker stuck in uninterruptible code
            process.kill()
            process.join()
    # Let the pool's thread finish its cleanup now: at exit Python wakes it through a pipe
    # that this cleanup closes, and the two racing printed "Bad file descriptor".
    if manager is not None:
        manager.join(timeout=10)


def choose_mode(
    requested: str,
    *,
    n_elements: int,
    n_parameters: int,
    elements: int | None,
    seconds_per_evaluation: float,
    evaluations_per_element: float,
    budget: Budget,
    user_tolerance: bool,
) -> tuple[str, int | None, str]:
    """Resolve ``mode``: which one runs, how many elements per parameter if sampled, and why.

    ``auto`` runs the full elementwise check when its estimated cost,
    ``n_elements * evaluations_per_element`` evaluations, fits the budget;
    otherwise directional probes (whose cost does not grow with ``N``), or,
    when the user fixed ``atol``/``rtol`` (an elementwise criterion), as many
    sampled elements per parameter as the budget allows.  ``elements`` given
    means sampled.

    Returns
    -------
    mode : str
        ``"full"``, ``"sampled"`` or ``"directional"``.
    elements : int or None
        Elements per parameter for ``"sampled"``.
    note : str
        The reason, in words, for the result's notes.

    Raises
    ------
    InvalidParameterError
        ``mode="directional"`` together with ``atol``/``rtol``.
    """
    full = n_elements * evaluations_per_element
    allowed = budget.evaluations_for(seconds_per_evaluation)
    cost = (
        f"a full check needs ~{full:,.0f} loss evaluations "
        f"(~{full * seconds_per_evaluation:.3g} s at {seconds_per_evaluation * 1e3:.3g} ms each)"
    )

    def sampled_k() -> int:
        return max(1, int(allowed // max(n_parameters * evaluations_per_element, 1e-9)))

    if requested == "directional" and user_tolerance:
        raise InvalidParameterError(
            "mode: 'directional' derives its tolerance from the probes' error estimates; "
            "atol/rtol are elementwise criteria (use mode='full' or 'sampled' with them)"
        )
    if requested == "full":
        return "full", None, "mode full (requested)"
    if requested == "directional":
        return "directional", None, "mode directional (requested)"
    if requested == "sampled":
        k = elements if elements is not None else sampled_k()
        return "sampled", k, f"mode sampled (requested): {k} element(s) per parameter"
    if elements is not None:
        return "sampled", elements, f"mode sampled: elements={elements} per parameter"
    if full <= allowed:
        return "full", None, f"mode full (auto): {cost}, within the budget of {budget}"
    if user_tolerance:
        k = sampled_k()
        return (
            "sampled",
            k,
            (
                f"mode sampled (auto): {cost}, over the budget of {budget}; atol/rtol given, so "
                f"{k} element(s) per parameter instead of directional probes"
            ),
        )
    return "directional", None, f"mode directional (auto): {cost}, over the budget of {budget}"


def _flat_of_tree(space: ParameterSpace, tree: Any) -> NDArray[Any]:
    """The leaves of a tree of this space's structure, concatenated (complex kept)."""
    parts = [np.asarray(value).reshape(-1) for _, value in walk_leaves(tree, "")]
    dtype = np.result_type(*parts) if parts else space.dtype
    return np.concatenate([p.astype(dtype, copy=False) for p in parts])


def _batch_values(values: Any, rows: int, context: str, *, allow_complex: bool) -> NDArray[Any]:
    """Validate a vectorized loss's output: ``rows`` finite numbers (real unless allowed)."""
    try:
        array = np.asarray(values)
    except Exception as exc:  # noqa: BLE001
        raise InvalidLossError(
            f"loss: with vectorized=True it returned {type(values).__name__}, not an array "
            f"({context})"
        ) from exc
    if array.shape != (rows,):
        raise InvalidLossError(
            f"loss: with vectorized=True the loss must return one value per row of its "
            f"(K, N) input, shape ({rows},); got shape {array.shape} ({context})"
        )
    if not np.issubdtype(array.dtype, np.number):
        raise InvalidLossError(f"loss: returned dtype {array.dtype}, not numbers ({context})")
    if np.iscomplexobj(array) and not allow_complex:
        if np.any(array.imag != 0):
            raise InvalidLossError(f"loss: returned complex values ({context})")
        array = array.real
    bad = ~np.isfinite(array)
    if bad.any():
        k = int(np.flatnonzero(bad)[0])
        raise InvalidLossError(
            f"loss: returned {array[k]!r} for row {k}, not a finite value ({context})"
        )
    return array


class BatchedObjective(Objective):
    """An :class:`~gradcheck.problem.objective.Objective` whose batches run chunked or in parallel.

    Parameters
    ----------
    loss : callable
        ``loss(params) -> float`` on the user's structure, or with
        ``vectorized=True`` ``loss(thetas) -> values``: ``thetas`` a stack of
        shape ``(K, N)`` of flat parameter vectors (leaves ravelled and
        concatenated in the tree's order), ``values`` of shape ``(K,)``.
    space : ParameterSpace
        The parameters.
    vectorized : bool, keyword-only
        Whether ``loss`` takes stacks of flat vectors.
    executor : concurrent.futures.Executor, optional, keyword-only
        Where to run batches; ``loss`` must then be picklable by it (a module
        level function or a ``functools.partial`` for processes; dask's
        cloudpickle also takes closures).
    progress : bool or None, keyword-only
        ``None`` shows a progress bar when stderr is a terminal, ``True``
        always, ``False`` never.  A bar appears only once a batch has run for
        :data:`PROGRESS_DELAY` seconds.
    chunk_bytes : int, keyword-only
        Size bound of one vectorized stack.

    Raises
    ------
    ParameterTypeError
        ``executor`` is not an executor, or ``vectorized``/``progress`` not booleans.
    """

    def __init__(
        self,
        loss: Callable[[Any], Any],
        space: ParameterSpace,
        *,
        vectorized: bool = False,
        executor: Executor | None = None,
        progress: bool | None = None,
        chunk_bytes: int = CHUNK_BYTES,
    ) -> None:
        self.vectorized = validate_flag(vectorized, "vectorized")
        progress = validate_progress(progress)
        self.batch_loss = loss if self.vectorized else None
        self.executor = validate_executor(executor)
        self.show_progress = sys.stderr.isatty() if progress is None else bool(progress)
        self._bar: Any = None
        itemsize = np.dtype(np.complex128).itemsize
        self.chunk_rows = int(
            np.clip(chunk_bytes // max(space.size * itemsize, 1), 1, MAX_CHUNK_ROWS)
        )
        self._tuner = _ChunkTuner(self.chunk_rows)
        self._user_loss = loss
        self._real_times: deque[float] = deque(maxlen=TIMED_EVALUATIONS)
        self._complex_times: deque[float] = deque(maxlen=TIMED_EVALUATIONS)
        super().__init__(loss, space)

    # -- single evaluations through a vectorized loss -------------------------------------
    def _value(self, tree: Any, context: str, *, allow_complex: bool = False) -> Any:
        if not self.vectorized:
            started = time.perf_counter()
            value = super()._value(tree, context, allow_complex=allow_complex)
            self._timed(time.perf_counter() - started, 1, complex_=allow_complex)
            return value
        flat = _flat_of_tree(self.space, tree)
        value = self._batch(flat[np.newaxis, :], context, allow_complex=True)[0]
        return as_real_scalar(value, context=context, allow_complex=allow_complex)

    def _timed(self, seconds: float, count: int, *, complex_: bool) -> None:
        times = self._complex_times if complex_ else self._real_times
        times.append(seconds / max(count, 1))

    @property
    def seconds_per_evaluation(self) -> float:
        """Median time of the recent real loss evaluations (warm-up outliers do not count)."""
        return float(np.median(self._real_times)) if self._real_times else 0.0

    @property
    def complex_cost(self) -> float:
        """A complex evaluation's time in units of a real one (1 when none was timed)."""
        real = self.seconds_per_evaluation
        if not self._complex_times or real <= 0:
            return 1.0
        return max(float(np.median(self._complex_times)) / real, 1.0)

    def __call__(self, x: NDArray[Any]) -> float:
        if not self.vectorized:
            return super().__call__(x)
        return float(
            self._batch(
                np.asarray(x, dtype=self.space.dtype)[np.newaxis, :],
                "evaluating the loss at a perturbed point",
            )[0]
        )

    def _batch(
        self, stack: NDArray[Any], context: str, *, allow_complex: bool = False
    ) -> NDArray[Any]:
        """The vectorized loss on a stack, counted and validated."""
        assert self.batch_loss is not None
        self.n_evaluations += len(stack)
        started = time.perf_counter()
        try:
            values = call_user(self.batch_loss, "loss", context, stack)
        except UserFunctionError as exc:
            # A loss that writes into its input gets a private copy of the read-only stack.
            writes = isinstance(exc.original, ValueError) and "read-only" in str(exc.original)
            if stack.flags.writeable or not writes:
                raise
            values = call_user(self.batch_loss, "loss", context, stack.copy())
        self._timed(time.perf_counter() - started, len(stack), complex_=np.iscomplexobj(stack))
        return _batch_values(values, len(stack), context, allow_complex=allow_complex)

    # -- progress --------------------------------------------------------------------------
    def _advance(self, n: int) -> None:
        if not self.show_progress or n <= 0:
            return
        if self._bar is None:
            from tqdm.auto import tqdm

            self._bar = tqdm(
                total=None,
                unit="eval",
                desc="gradcheck",
                delay=PROGRESS_DELAY,
                file=sys.stderr,
                leave=False,
                dynamic_ncols=True,
            )
        self._bar.update(n)

    def close(self) -> None:
        """Close the progress bar, if one was opened."""
        if self._bar is not None:
            self._bar.close()
            self._bar = None

    # -- steps in each element's dtype ----------------------------------------------------
    def _moved(
        self, indices: NDArray[np.intp], steps: NDArray[np.float64]
    ) -> tuple[NDArray[Any], NDArray[np.float64]]:
        """The perturbed values ``fl(x_i + fl(h))`` in each element's dtype, and the steps taken."""
        moved = np.empty(len(indices), dtype=self.space.dtype)
        taken = np.empty(len(indices))
        leaf_of = self.space.leaf_of(indices)
        for k, leaf in enumerate(self.space.leaves):
            mine = leaf_of == k
            if not mine.any():
                continue
            original = self.x0[indices[mine]].astype(leaf.dtype)
            new = original + steps[mine].astype(leaf.dtype)
            moved[mine] = new
            taken[mine] = step_taken(new, original)
        return moved, taken

    # -- batches ---------------------------------------------------------------------------
    def perturbed_many(
        self, indices: NDArray[np.intp], steps: NDArray[np.float64]
    ) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
        indices = np.asarray(indices, dtype=np.intp)
        steps = np.asarray(steps, dtype=np.float64)
        if self.executor is not None and len(indices) >= 2 * MIN_TASK:
            values, taken = self._parallel("perturbed", indices, steps)
            return values.real.astype(np.float64), taken
        if not self.vectorized:
            values = np.empty(len(indices))
            taken = np.empty(len(indices))
            for start, stop in _chunks(len(indices), SERIAL_CHUNK):
                values[start:stop], taken[start:stop] = super().perturbed_many(
                    indices[start:stop], steps[start:stop]
                )
                self._advance(stop - start)
            return values, taken
        moved, taken = self._moved(indices, steps)
        values = np.empty(len(indices))
        stack = _Stack(self.x0, min(self.chunk_rows, len(indices)), self.space.dtype)
        for start, stop in self._tuner.chunks(len(indices)):
            rows = stack.moved(indices[start:stop], moved[start:stop])
            values[start:stop] = self._batch(rows, "evaluating the loss with elements moved")
            self._advance(stop - start)
        return values, taken

    def complex_many(
        self, indices: NDArray[np.intp], steps: NDArray[np.float64]
    ) -> NDArray[np.complex128]:
        indices = np.asarray(indices, dtype=np.intp)
        steps = np.asarray(steps, dtype=np.float64)
        if self.executor is not None and len(indices) >= 2 * MIN_TASK:
            values, _ = self._parallel("complex", indices, steps)
            return values.astype(np.complex128)
        if not self.vectorized:
            out = np.empty(len(indices), dtype=np.complex128)
            for start, stop in _chunks(len(indices), SERIAL_CHUNK):
                out[start:stop] = super().complex_many(indices[start:stop], steps[start:stop])
                self._advance(stop - start)
            return out
        dtype = np.result_type(self.space.dtype, np.complex64)
        out = np.empty(len(indices), dtype=np.complex128)
        stack = _Stack(self.x0, min(self.chunk_rows, len(indices)), dtype)
        for start, stop in self._tuner.chunks(len(indices)):
            at = indices[start:stop]
            rows = stack.moved(at, self.x0[at] + 1j * steps[start:stop])
            out[start:stop] = self._batch(
                rows, "evaluating the loss at complex-step points", allow_complex=True
            )
            self._advance(stop - start)
        return out

    def values_at(self, points: NDArray[Any]) -> NDArray[np.float64]:
        points = np.asarray(points)
        if self.executor is not None and len(points) >= 2 * MIN_TASK:
            values, _ = self._parallel("points", points, None)
            return values.real.astype(np.float64)
        if not self.vectorized:
            values = super().values_at(points)
            self._advance(len(points))
            return values
        values = np.empty(len(points))
        for start, stop in _chunks(len(points), self.chunk_rows):
            values[start:stop] = self._batch(
                points[start:stop].astype(self.space.dtype, copy=False),
                "evaluating the loss at probe points",
            )
            self._advance(stop - start)
        return values

    # -- executor --------------------------------------------------------------------------
    @property
    def parallelism(self) -> int:
        """Evaluations that run at once: the executor's workers, else 1."""
        return 1 if self.executor is None else self._workers()

    def _workers(self) -> int:
        workers = getattr(self.executor, "_max_workers", None)
        if isinstance(workers, int) and workers > 0:
            return workers
        return os.cpu_count() or 1

    def _parallel(
        self, kind: str, items: NDArray[Any], steps: NDArray[np.float64] | None
    ) -> tuple[NDArray[Any], NDArray[np.float64]]:
        """Run a batch as executor tasks: the values (complex for ``complex``) and steps taken."""
        assert self.executor is not None
        n = len(items)
        size = max(MIN_TASK, -(-n // (TASKS_PER_WORKER * self._workers())))
        params = self.space.build(self.space.originals)
        futures: list[tuple[int, int, Future[Any]]] = []
        for start, stop in _chunks(n, size):
            payload = (
                kind,
                self._user_loss,
                params,
                self.vectorized,
                self.chunk_rows,
                items[start:stop],
                None if steps is None else steps[start:stop],
            )
            try:
                future = self.executor.submit(_run_task, payload)
            except Exception as exc:  # noqa: BLE001 - e.g. the loss cannot be pickled
                raise InvalidParameterError(
                    f"executor: could not submit a task ({type(exc).__name__}: {exc}); with "
                    "processes the loss must be picklable (a module-level function or a "
                    "functools.partial, not a lambda or closure)"
                ) from exc
            futures.append((start, stop, future))
        values = np.empty(n, dtype=np.complex128)
        taken = np.full(n, np.nan)
        try:
            for start, stop, future in futures:
                try:
                    outcome = future.result()
                except Exception as exc:  # noqa: BLE001 - pickling, a dead worker...
                    raise _task_failure(exc) from exc
                if outcome[0] == "error":
                    _raise_remote(outcome)
                _, chunk_values, chunk_taken, evaluations = outcome
                values[start:stop] = chunk_values
                if chunk_taken is not None:
                    taken[start:stop] = chunk_taken
                self.n_evaluations += int(evaluations)
                self._advance(stop - start)
        finally:
            for _, _, future in futures:
                future.cancel()
        return values, taken


class _ChunkTuner:
    """Rows per call of a vectorized loss, chosen by measuring.

    A vectorized loss may run fastest on a short stack that stays in cache, or on a tall
    one that amortises its per-call work (a shared first-layer product, Python
    overhead).  Each height from 1 up to the memory bound ``cap`` (powers of two, and
    ``cap``) is timed on two chunks; the rest of the batch, and later batches, use the
    height with the lowest time per row.
    """

    TRIALS = 2

    def __init__(self, cap: int) -> None:
        self.cap = max(int(cap), 1)
        # Heights 2, 4, 8... (one row at a time is what vectorizing avoids), and the cap.
        heights = {1 << p for p in range(1, self.cap.bit_length()) if 1 << p <= self.cap}
        self.heights = sorted(heights | {self.cap})
        self.times: dict[int, list[float]] = {h: [] for h in self.heights}
        self.best: int | None = None if len(self.heights) > 1 else self.cap

    def next(self) -> int:
        if self.best is not None:
            return self.best
        for height in self.heights:
            if len(self.times[height]) < self.TRIALS:
                return height
        self.best = min(self.heights, key=lambda h: min(self.times[h]))
        return self.best

    def record(self, height: int, seconds: float, rows: int) -> None:
        if self.best is None and rows == height:
            self.times[height].append(seconds / rows)

    def chunks(self, n: int) -> Iterator[tuple[int, int]]:
        """``(start, stop)`` chunks of ``range(n)``, timing the work done on each."""
        start = 0
        while start < n:
            height = self.next()
            stop = min(start + height, n)
            began = time.perf_counter()
            yield start, stop
            self.record(height, time.perf_counter() - began, stop - start)
            start = stop


class _Stack:
    """Rows of ``x0`` with one element moved per row, rebuilt cheaply from chunk to chunk.

    Writing ``x0`` into every row of every chunk streams the whole stack through memory
    each time, which costs as much as a small loss evaluation.  Here each row is filled
    once; afterwards only the element moved in the previous chunk is put back.  The loss
    receives a read-only view, so it cannot change the rows behind gradcheck's back.
    """

    def __init__(self, x0: NDArray[Any], rows: int, dtype: Any) -> None:
        self.x0 = x0
        self.stack = np.empty((rows, x0.size), dtype=dtype)
        self.stack[...] = x0
        self.last = np.full(rows, -1, dtype=np.intp)  # the element moved in each row

    def moved(self, indices: NDArray[np.intp], values: NDArray[Any]) -> NDArray[Any]:
        """The stack with ``values[r]`` at element ``indices[r]`` of row ``r`` (read-only)."""
        n = len(indices)
        rows = np.arange(n)
        previous = self.last[:n]
        done = previous >= 0
        self.stack[rows[done], previous[done]] = self.x0[previous[done]]
        self.stack[rows, indices] = values
        self.last[:n] = indices
        view = self.stack[:n].view()
        view.setflags(write=False)
        return view


def _chunks(n: int, size: int) -> Iterator[tuple[int, int]]:
    for start in range(0, n, max(size, 1)):
        yield start, min(start + size, n)


def _run_task(payload: tuple[Any, ...]) -> tuple[Any, ...]:
    """One executor task (runs on a worker): rebuild the parameters, evaluate a slice of a batch.

    Exceptions come back as data, so that they cross process boundaries even when
    they cannot be pickled themselves.
    """
    kind, loss, params, vectorized, chunk_rows, items, steps = payload
    try:
        space = ParameterSpace(params)
        worker = BatchedObjective(
            loss,
            space,
            vectorized=vectorized,
            progress=False,
            chunk_bytes=chunk_rows * max(space.size, 1) * np.dtype(np.complex128).itemsize,
        )
        taken = None
        values: NDArray[Any]
        if kind == "perturbed":
            values, taken = worker.perturbed_many(items, steps)
        elif kind == "complex":
            values = worker.complex_many(items, steps)
        else:
            values = worker.values_at(items)
        return ("ok", values, taken, worker.n_evaluations)
    except UserFunctionError as exc:
        original: BaseException = exc.original
        try:
            import pickle

            pickle.dumps(original)
        except Exception:  # noqa: BLE001
            original = RuntimeError(f"{type(exc.original).__name__}: {exc.original}")
        return ("error", "user", exc.function, exc.context, original)
    except Exception as exc:  # noqa: BLE001
        return ("error", "other", type(exc).__name__, str(exc), None)


def _task_failure(exc: BaseException) -> GradcheckError:
    """The error of an executor task that returned no outcome: unpicklable, or lost."""
    found = f"{type(exc).__name__}: {' '.join(str(exc).split())}"
    if isinstance(exc, pickle.PicklingError) or "pickle" in str(exc).lower():
        return InvalidParameterError(
            f"executor: a task failed ({found}); with processes the loss must be picklable "
            "(a module-level function or a functools.partial, not a lambda or closure)"
        )
    # No verdict from part of the evaluations: the check stops rather than guess.
    return ExecutorError(
        f"executor: a task was lost ({found}): a worker died while evaluating the loss "
        "(killed, out of memory, or the loss ended its process), or the executor shut down; "
        "no verdict is given"
    )


def _raise_remote(outcome: tuple[Any, ...]) -> None:
    if outcome[1] == "user":
        _, _, function, context, original = outcome
        raise UserFunctionError(
            function, f"{context}, on an executor worker", original
        ) from original
    _, _, name, message, _ = outcome
    if name == "InvalidLossError":
        raise InvalidLossError(f"{message} (on an executor worker)")
    raise InvalidParameterError(f"executor: a task failed with {name}: {message}")
