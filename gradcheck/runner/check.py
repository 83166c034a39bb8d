"""``gradcheck.check``: the user's gradient against independent references, element by element.

The pipeline for each element checked:

1. **First pass**, one reference for every element: the complex step when the
   loss supports it (tested, not assumed), else a central difference.
2. **Refinement** of every element that fails the first pass or whose
   first-pass tolerance is too coarse to mean anything (saturated networks):
   Richardson extrapolation over a ladder of steps, the candidate with the
   smallest error estimate.  This independent reference decides.
3. **Kinks**: an element that still fails, where the loss's one-sided slopes
   differ by a jump that does not shrink with the step, is a non-differentiable
   point; the analytic value is accepted when it lies between the slopes and
   reported as a hazard, not as a bug.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
from numpy.typing import NDArray

from gradcheck.diagnosis.patterns import validate_layer_inputs
from gradcheck.errors import InvalidParameterError, ParameterTypeError
from gradcheck.problem.calls import call_user, require_callable
from gradcheck.problem.objective import Objective
from gradcheck.problem.space import ParameterSpace
from gradcheck.references.base import Estimate
from gradcheck.references.complex_step import complex_step, complex_step_capability
from gradcheck.references.finite_difference import (
    ROUNDOFF_SIGMAS,
    central_difference,
    default_steps,
    one_sided_slopes,
    richardson,
    with_truncation,
)
from gradcheck.references.noise import NoiseOnDemand
from gradcheck.results import CheckResult, Diagnosis, Hazard, ParameterResult, format_index
from gradcheck.runner.directional import directional_check
from gradcheck.runner.evaluation import (
    Evaluator,
    choose_mode,
    validate_budget,
    validate_mode,
    validate_workers,
)
from gradcheck.verdict.tolerance import derived_tolerance, resolution_target, user_tolerance

__all__ = ["check", "assert_check", "METHODS", "REFERENCES", "as_generator"]

#: Reference methods a user may ask for.  ``auto`` = complex step when usable, else central,
#: with Richardson refinement where needed; the others use that one reference alone.
METHODS = ("auto", "complex", "central", "richardson", "approx_fprime", "differentiate")


def as_generator(rng: Any) -> tuple[np.random.Generator, int | None]:
    """``rng`` as a Generator, and the seed to report (None when a Generator was passed)."""
    if isinstance(rng, np.random.Generator):
        return rng, None
    if rng is None:
        seed = int(np.random.SeedSequence().entropy % (2**31))  # type: ignore[operator]
        return np.random.default_rng(seed), seed
    if isinstance(rng, (int, np.integer)) and not isinstance(rng, bool):
        return np.random.default_rng(int(rng)), int(rng)
    raise ParameterTypeError(
        f"rng: expected a numpy.random.Generator, an int seed or None, got {type(rng).__name__}"
    )


@dataclass(frozen=True)
class _Options:
    method: str
    atol: float | None
    rtol: float | None
    elements: int | None
    diagnose: bool


def _validate(
    loss: Any, grad: Any, method: Any, atol: Any, rtol: Any, elements: Any, diagnose: Any
) -> _Options:
    require_callable(loss, "loss", "loss(params) -> float")
    require_callable(grad, "grad", "grad(params)")
    if method not in METHODS:
        raise InvalidParameterError(f"method: {method!r} is not one of {', '.join(METHODS)}")
    for name, value in (("atol", atol), ("rtol", rtol)):
        if value is None:
            continue
        if isinstance(value, bool) or not isinstance(value, (int, float, np.floating, np.integer)):
            raise ParameterTypeError(
                f"{name}: expected a number or None, got {type(value).__name__}"
            )
        if not np.isfinite(value) or value < 0:
            raise InvalidParameterError(f"{name}: must be finite and >= 0, got {value!r}")
    if elements is not None:
        if isinstance(elements, bool) or not isinstance(elements, (int, np.integer)):
            raise ParameterTypeError(
                f"elements: expected an int or None, got {type(elements).__name__}"
            )
        if elements < 1:
            raise InvalidParameterError(f"elements: must be >= 1, got {elements}")
    return _Options(
        method,
        None if atol is None else float(atol),
        None if rtol is None else float(rtol),
        None if elements is None else int(elements),
        bool(diagnose),
    )


def _choose_indices(
    space: ParameterSpace, elements: int | None, rng: np.random.Generator
) -> NDArray[np.intp]:
    """All flat indices, or ``elements`` random ones of each parameter."""
    if elements is None:
        return np.arange(space.size)
    chosen = []
    for leaf in space.leaves:
        if leaf.size <= elements:
            chosen.append(np.arange(leaf.offset, leaf.offset + leaf.size))
        else:
            local = rng.choice(leaf.size, size=elements, replace=False)
            chosen.append(leaf.offset + np.sort(local))
    return np.concatenate(chosen).astype(np.intp)


#: Reference method names stored per element as small codes (0: not checked).
_METHOD_CODES: dict[str, int] = {}


def _method_code(name: str) -> int:
    return _METHOD_CODES.setdefault(name, len(_METHOD_CODES) + 1)


def _method_name(code: int) -> str:
    return next(name for name, c in _METHOD_CODES.items() if c == code)


class _Cost:
    """Loss evaluations spent per parameter (a few counters, not one per element)."""

    def __init__(self, space: ParameterSpace) -> None:
        self.space = space
        self.per_leaf = np.zeros(len(space.leaves), dtype=np.int64)

    def add(self, indices: NDArray[np.intp], each: int) -> None:
        """``each`` evaluations were spent on every element of ``indices``."""
        leaves = self.space.leaf_of(np.asarray(indices, dtype=np.intp))
        self.per_leaf += each * np.bincount(leaves, minlength=len(self.per_leaf))


class _SparseVector:
    """A flat float vector of length ``n`` that stores only the entries written (NaN elsewhere).

    Supports what :class:`_Comparison` does with its per-element arrays: reading and
    writing at integer index arrays, and :meth:`dense` for the results.
    """

    def __init__(self, n: int) -> None:
        self.n = n
        self.keys = np.empty(0, dtype=np.intp)  # sorted, unique
        self.values = np.empty(0)

    def _find(self, indices: NDArray[np.intp]) -> tuple[NDArray[np.intp], NDArray[np.bool_]]:
        at = np.searchsorted(self.keys, indices)
        found = at < len(self.keys)
        found[found] = self.keys[at[found]] == indices[found]
        return at, found

    def __getitem__(self, indices: Any) -> NDArray[np.float64]:
        indices = np.asarray(indices, dtype=np.intp)
        out = np.full(indices.shape, np.nan)
        at, found = self._find(indices)
        out[found] = self.values[at[found]]
        return out

    def __setitem__(self, indices: Any, values: Any) -> None:
        indices = np.asarray(indices, dtype=np.intp).reshape(-1)
        values = np.broadcast_to(np.asarray(values, dtype=np.float64), indices.shape)
        keys = np.union1d(self.keys, indices).astype(np.intp)
        merged = np.full(len(keys), np.nan)
        merged[np.searchsorted(keys, self.keys)] = self.values
        merged[np.searchsorted(keys, indices)] = values
        self.keys, self.values = keys, merged

    def dense(self) -> NDArray[np.float64]:
        out = np.full(self.n, np.nan)
        out[self.keys] = self.values
        return out


def _dense(vector: NDArray[np.float64] | _SparseVector, n: int) -> NDArray[np.float64]:
    """The full vector of length ``n`` (NaN where nothing was recorded)."""
    if isinstance(vector, _SparseVector):
        return vector.dense()
    return vector if len(vector) == n else np.full(n, np.nan)


class _Comparison:
    """Mutable working state of one elementwise comparison.

    Everything computed from the per-element values (scales, tolerances) runs over the
    elements actually recorded, so a directional or sampled check of a large network
    does O(checked) work per step.  With ``sparse`` (few elements to check) the
    reference, error, step and tolerance are stored for those elements only and become
    full arrays (NaN where unchecked) only for the results.
    """

    def __init__(
        self,
        space: ParameterSpace,
        analytic: NDArray[Any],
        gradient_noise: NDArray[np.float64] | None,
        *,
        sparse: bool = False,
    ) -> None:
        n = space.size
        self.gradient_noise = gradient_noise  # None until measured: no room for jitter yet
        self.space = space
        self.analytic = analytic.astype(np.float64, copy=False)

        self.reference: NDArray[np.float64] | _SparseVector
        self.error: NDArray[np.float64] | _SparseVector
        self.step: NDArray[np.float64] | _SparseVector
        self.tolerance: NDArray[np.float64] | _SparseVector
        if sparse:
            self.reference, self.error, self.step, self.tolerance = (
                _SparseVector(n) for _ in range(4)
            )
        else:
            # Dense reference/error/step start empty: the first record either adopts a full
            # first pass's arrays or allocates them (see record()).
            self.reference = self.error = self.step = np.full(0, np.nan)
            self.tolerance = np.full(n, np.nan)
        # A first estimate of every element, in order, is adopted rather than copied.
        self._adoptable = not sparse
        self.checked = np.zeros(n, dtype=bool)
        self.method = np.zeros(n, dtype=np.int8)  # _METHOD_CODES; 0 where nothing recorded
        self.kink = np.zeros(n, dtype=bool)
        self.recorded = np.array([], dtype=np.intp)  # sorted flat indices with an estimate
        self._tiny = np.array([float(np.finfo(leaf.dtype).tiny) for leaf in space.leaves])

    def eps(self, indices: NDArray[np.intp]) -> NDArray[np.float64]:
        return self.space.eps_at(indices)

    def noise(self, indices: NDArray[np.intp]) -> NDArray[np.float64]:
        """The analytic gradient's measured jitter at ``indices`` (0 while unmeasured)."""
        if self.gradient_noise is None:
            return np.zeros(len(indices))
        return self.gradient_noise[indices]

    def underflow(self, indices: NDArray[np.intp]) -> NDArray[np.float64]:
        """The smallest normal number of each element's dtype."""
        return self._tiny[self.space.leaf_of(indices)]

    def record(self, estimate: Estimate, *, only_if_better: bool = False) -> None:
        """Store an estimate; with ``only_if_better``, only where its error estimate is smaller."""
        i = estimate.indices
        if self._adoptable and self._covers_all(i) and not only_if_better:
            # A full check's first pass: its arrays become the state (no second copy); the
            # estimate must not be read after later records change them.
            self.reference = np.asarray(estimate.derivative, dtype=np.float64)
            self.error = np.asarray(estimate.error, dtype=np.float64)
            self.step = np.asarray(estimate.step, dtype=np.float64)
            self.checked[:] = True
            self.method[:] = _method_code(estimate.method)
            self.recorded = np.asarray(i, dtype=np.intp)
            self._adoptable = False
            return
        self._adoptable = False
        n = self.space.size
        if not isinstance(self.reference, _SparseVector) and len(self.reference) != n:
            self.reference, self.error, self.step = (np.full(n, np.nan) for _ in range(3))
        if only_if_better:
            better = ~(estimate.error >= self.error[i])  # NaN (nothing yet) counts as worse
            keep = np.flatnonzero(better)
            estimate = Estimate(
                i[keep],
                estimate.derivative[keep],
                estimate.error[keep],
                estimate.step[keep],
                estimate.n_evaluations,
                estimate.method,
            )
            i = estimate.indices
        self.reference[i] = estimate.derivative
        self.error[i] = estimate.error
        self.step[i] = estimate.step
        self.checked[i] = True
        self.method[i] = _method_code(estimate.method)
        self.recorded = np.union1d(self.recorded, i).astype(np.intp)

    def _covers_all(self, indices: NDArray[np.intp]) -> bool:
        n = self.space.size
        return len(indices) == n and (n == 0 or bool(np.all(indices == np.arange(n))))

    def _leaf_scales(self) -> NDArray[np.float64]:
        """Per parameter, max |reference| over its recorded finite elements (0 if none)."""
        scales = np.zeros(len(self.space.leaves))
        values = np.abs(self.reference[self.recorded])
        finite = np.isfinite(values)
        np.maximum.at(scales, self.space.leaf_of(self.recorded[finite]), values[finite])
        return scales

    def scale(self, indices: NDArray[np.intp]) -> NDArray[np.float64]:
        """Each element's parameter-wide gradient scale: max |reference| over its parameter."""
        return self._leaf_scales()[self.space.leaf_of(indices)]

    def global_scale(self) -> float:
        """The largest finite reference gradient anywhere in the problem."""
        return float(np.max(self._leaf_scales(), initial=0.0))

    def derived(self, indices: NDArray[np.intp], error: NDArray[np.float64]) -> NDArray[np.float64]:
        """The derived tolerance of ``indices`` for a reference with this error estimate."""
        indices = np.asarray(indices, dtype=np.intp)
        scales = self._leaf_scales()
        global_scale = float(np.max(scales, initial=0.0))
        if len(indices) > 1 and not np.all(indices[1:] >= indices[:-1]):
            return derived_tolerance(
                error,
                self.eps(indices),
                self.scale(indices),
                self.noise(indices),
                self.underflow(indices),
                global_scale,
            )
        # Sorted indices: one run per parameter, whose eps, scale and tiny are numbers, so
        # a full check's tolerance costs a few arrays, not one per term.
        out = np.empty(len(indices))
        bounds = np.searchsorted(
            indices, [leaf.offset for leaf in self.space.leaves] + [self.space.size]
        )
        for k, leaf in enumerate(self.space.leaves):
            run = slice(bounds[k], bounds[k + 1])
            if run.start == run.stop:
                continue
            noise = 0.0 if self.gradient_noise is None else self.gradient_noise[indices[run]]
            out[run] = derived_tolerance(
                error[run],
                float(np.finfo(leaf.dtype).eps),
                float(scales[k]),
                noise,
                float(self._tiny[k]),
                global_scale,
            )
        return out

    def analytic_room(self, indices: NDArray[np.intp]) -> NDArray[np.float64]:
        """The derived tolerance with no reference error: the analytic gradient's own room."""
        return self.derived(indices, np.zeros(len(indices)))

    def judge(self, options: _Options) -> None:
        i = self.recorded
        if options.atol is not None or options.rtol is not None:
            self.tolerance[i] = user_tolerance(self.reference[i], options.atol, options.rtol)
        else:
            self.tolerance[i] = self.derived(i, self.error[i])

    def failing(self, indices: NDArray[np.intp]) -> NDArray[np.bool_]:
        with np.errstate(invalid="ignore"):
            ok = np.abs(self.analytic[indices] - self.reference[indices]) <= self.tolerance[indices]
        return ~ok & ~self.kink[indices]

    def unresolved(self, indices: NDArray[np.intp]) -> NDArray[np.bool_]:
        target = resolution_target(self.eps(indices), self.scale(indices))
        return self.tolerance[indices] > target

    def methods(self, part: slice) -> str:
        """The references that decided the checked elements of ``part``, most used first."""
        counts = np.bincount(self.method[part][self.checked[part]], minlength=1)
        used = [(int(n), _method_name(code)) for code, n in enumerate(counts) if code and n]
        if not used:
            return "none"
        used.sort(key=lambda pair: -pair[0])
        return "+".join(name for _, name in used)


def _scipy_approx_fprime(objective: Objective, indices: NDArray[np.intp], sigma: float) -> Estimate:
    from gradcheck.references.scipy_refs import approx_fprime_reference

    return approx_fprime_reference(objective, indices, sigma=sigma)


#: First step of ``scipy.differentiate`` as a reference, relative to ``max(|x|, 1)``.  SciPy's
#: default 0.5 makes its first stencils cross relu kinks, and its error estimate, built from
#: successive iterations, then understates the error; 1/64 keeps the stencil local while its
#: ten halvings still end far above roundoff.
DIFFERENTIATE_FIRST_STEP = 1 / 64


def _scipy_differentiate(objective: Objective, indices: NDArray[np.intp], sigma: float) -> Estimate:
    from gradcheck.references.scipy_refs import differentiate_reference

    x = np.abs(objective.x0[indices].astype(np.float64))
    first = DIFFERENTIATE_FIRST_STEP * 2.0 ** np.ceil(np.log2(np.maximum(x, 1.0)))
    return differentiate_reference(objective, indices, sigma=sigma, initial_step=first)


#: The reference each method computes for every element checked (``auto`` picks one of these).
REFERENCES: dict[str, Callable[[Objective, NDArray[np.intp], float], Estimate]] = {
    "complex": lambda objective, indices, sigma: complex_step(objective, indices),
    # Roundoff-only; the elements it fails get their truncation error (two more
    # evaluations each) before the verdict: two evaluations per element, not four.
    "central": lambda objective, indices, sigma: central_difference(
        objective, indices, sigma=sigma
    ),
    "richardson": lambda objective, indices, sigma: richardson(objective, indices, sigma=sigma),
    "approx_fprime": _scipy_approx_fprime,
    "differentiate": _scipy_differentiate,
}


def _first_pass(
    objective: Objective,
    indices: NDArray[np.intp],
    method: str,
    noise: NoiseOnDemand,
    complex_ok: bool,
) -> Estimate:
    if method in ("auto", "complex") and complex_ok:
        return complex_step(objective, indices)
    if method == "auto":
        # Roundoff-only first pass: the refinement estimates truncation where it matters.
        return central_difference(objective, indices, sigma=noise.sigma)
    return REFERENCES[method](objective, indices, noise.sigma)


def _below_zero_loss_quantum(
    state: _Comparison, objective: Objective, indices: NDArray[np.intp]
) -> NDArray[np.bool_]:
    """Elements whose gradient a loss that is exactly 0.0 cannot show.

    A loss that evaluates to exactly zero everywhere near ``x`` (measured:
    the noise probe saw identical values) carries no scale of its own.  Such
    a value is a difference of terms that cancelled exactly, like a softmax
    cross-entropy ``logsumexp(z) - z_y`` fit perfectly; terms scale with the
    parameters, so their quantum is about ``eps * T`` with
    ``T = ZERO_LOSS_TERMS * max(max|x|, 1)``.  A gradient ``g`` with
    ``|g| * max(|x_i|, 1) <= eps * T`` changes such a loss by less than that
    quantum even for a move as large as the parameter itself, so it cannot be
    checked from loss values at all.
    """
    x = np.abs(objective.x0.astype(np.float64))
    terms = ZERO_LOSS_TERMS * max(float(np.max(x, initial=0.0)), 1.0)
    predicted = np.abs(state.analytic[indices]) * np.maximum(x[indices], 1.0)
    return (state.reference[indices] == 0.0) & (predicted <= state.eps(indices) * terms)


#: Size of the cancelled terms of an exactly-zero loss, in units of the largest parameter.
ZERO_LOSS_TERMS = 16.0


def _subset(estimate: Estimate, mask: NDArray[np.bool_]) -> Estimate:
    return Estimate(
        estimate.indices[mask],
        estimate.derivative[mask],
        estimate.error[mask],
        estimate.step[mask],
        estimate.n_evaluations,
        estimate.method,
    )


def _kinks(
    objective: Objective, state: _Comparison, indices: NDArray[np.intp], sigma: float
) -> NDArray[np.bool_]:
    """Which of ``indices`` sit at a kink with the analytic value between the one-sided slopes.

    For a smooth loss the forward and backward slopes differ by ``h f''``,
    which halves when ``h`` halves; at a kink they differ by the jump in
    slope, which does not.  A spread that keeps at least 3/4 of its size from
    ``h`` to ``h/2`` and exceeds the roundoff bound is a kink.
    """
    steps = default_steps(objective, indices)
    forward, backward = one_sided_slopes(objective, indices, steps)
    forward2, backward2 = one_sided_slopes(objective, indices, steps / 2)
    spread = np.abs(forward - backward)
    spread2 = np.abs(forward2 - backward2)
    roundoff = 2 * ROUNDOFF_SIGMAS * sigma / (steps / 2)
    is_kink = (spread2 > 0.75 * spread) & (spread2 > 4 * roundoff)
    # The band is the slopes' own error: roundoff, the change of each slope from h to h/2
    # (its truncation on a smooth side), and the analytic gradient's own rounding room;
    # not the element's tolerance, which a straddled kink has inflated.
    truncation = np.abs(forward2 - forward) + np.abs(backward2 - backward)
    room = roundoff + truncation + state.analytic_room(indices)
    low = np.minimum(forward2, backward2) - room
    high = np.maximum(forward2, backward2) + room
    analytic = state.analytic[indices]
    return is_kink & (analytic >= low) & (analytic <= high)


def _on_copies(function: Callable[[Any], Any]) -> Callable[[Any], Any]:
    """``function`` called on a deep copy of its argument: what it writes goes nowhere."""

    def guarded(tree: Any) -> Any:
        return function(copy.deepcopy(tree))

    return guarded


def _call_grad(grad: Callable[[Any], Any], space: ParameterSpace, context: str) -> NDArray[Any]:
    return space.flatten_like(call_user(grad, "grad", context, space.tree))


#: Gradient evaluations at ulp-perturbed parameters that measure the analytic gradient's noise.
GRADIENT_NOISE_SAMPLES = 3
#: Size of those perturbations, in units of each element's eps (relative).
GRADIENT_NOISE_ULPS = 4.0


def measure_gradient_noise(
    grad: Callable[[Any], Any],
    space: ParameterSpace,
    analytic: NDArray[Any],
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """How much the analytic gradient jitters when the parameters barely move.

    A parameter is only known to within its last bits, so a gradient formula
    whose value jumps by ``d`` under such moves is only determined to within
    ``d``.  This is how rounding amplified by cancellation inside the user's
    backward pass shows itself, and it is measured rather than assumed, so a
    correct but ill-conditioned formula is not called a bug.  Two scales:

    * a few ulps (``GRADIENT_NOISE_ULPS``), ``GRADIENT_NOISE_SAMPLES`` times:
      the largest change;
    * ``sqrt(eps)`` relative, as a second difference
      ``(g(x + d) + g(x - d) - 2 g(x)) / 2``, which cancels the gradient's true
      (linear) change and leaves its rounding.  This scale is what unfreezes
      rounding that ulp moves cannot reach: a saturated sigmoid's ``a * (1 - a)``
      with ``1 - a = 1e-10`` loses ten digits, yet ``a`` itself does not move
      under ulp perturbations of the weights.

    A gradient whose values are all exactly float32 numbers while the
    parameters are wider was computed in float32; its float32 rounding is the
    bug under test, so it gets no second-difference room.

    Returns
    -------
    ndarray
        Per element, the larger of the two measurements.
    """
    reference = analytic.astype(np.float64)
    spread = np.zeros(space.size)

    def moved_by(relative: Callable[[Any], NDArray[np.float64]]) -> NDArray[np.float64]:
        for leaf, array in zip(space.leaves, space.arrays, strict=True):
            array[...] = array * (1 + relative(leaf)).astype(leaf.dtype)
        try:
            moved = _call_grad(grad, space, "evaluating the gradient at slightly moved parameters")
        finally:
            space.restore()
        return moved.astype(np.float64)

    for _ in range(GRADIENT_NOISE_SAMPLES):
        moved = moved_by(
            lambda leaf: (
                rng.uniform(-GRADIENT_NOISE_ULPS, GRADIENT_NOISE_ULPS, size=leaf.shape)
                * np.finfo(leaf.dtype).eps
            )
        )
        with np.errstate(invalid="ignore"):
            change = np.abs(moved - reference)
        spread = np.fmax(spread, np.where(np.isfinite(change), change, 0.0))

    if not _float32_valued(analytic, space):
        signs = {leaf.name: rng.choice([-1.0, 1.0], size=leaf.shape) for leaf in space.leaves}
        scale = {leaf.name: np.sqrt(np.finfo(leaf.dtype).eps) for leaf in space.leaves}
        plus = moved_by(lambda leaf: signs[leaf.name] * scale[leaf.name])
        minus = moved_by(lambda leaf: -signs[leaf.name] * scale[leaf.name])
        with np.errstate(invalid="ignore"):
            second = np.abs(plus + minus - 2 * reference) / 2
        spread = np.fmax(spread, np.where(np.isfinite(second), second, 0.0))
    return spread


class _Jitter:
    """The analytic gradient's jitter, measured only once a comparison needs its room.

    The derived tolerance grows with the jitter, so an element (or a directional probe)
    that passes without that room passes with it: the extra gradient calls of
    :func:`measure_gradient_noise` are made only when something fails without it.
    The measurement draws from its own random stream, so whether it ran does not
    change the probes or samples drawn after it.
    """

    def __init__(
        self,
        grad: Callable[[Any], Any],
        space: ParameterSpace,
        analytic: NDArray[Any],
        rng: np.random.Generator,
        *,
        enabled: bool,
    ) -> None:
        self.grad, self.space, self.analytic, self.rng = grad, space, analytic, rng
        self.enabled = enabled
        self.values: NDArray[np.float64] | None = None
        self.grad_calls = 0

    def measure(self) -> NDArray[np.float64] | None:
        """The jitter (measured on the first call), or None when the tolerance does not use it."""
        if self.enabled and self.values is None:
            counter = _Counted(self.grad)
            self.values = measure_gradient_noise(counter, self.space, self.analytic, self.rng)
            self.grad_calls = counter.calls
        return self.values


class _Counted:
    """A function wrapper that counts its calls."""

    def __init__(self, function: Callable[[Any], Any]) -> None:
        self.function = function
        self.calls = 0
        self.__name__ = getattr(function, "__name__", "grad")

    def __call__(self, tree: Any) -> Any:
        self.calls += 1
        return self.function(tree)


def _float32_valued(analytic: NDArray[Any], space: ParameterSpace) -> bool:
    """True when the parameters are wider than float32 but every gradient value is a float32."""
    if np.finfo(space.dtype).eps >= np.finfo(np.float32).eps:
        return False
    values = analytic.astype(np.float64)
    finite = values[np.isfinite(values)]
    interesting = finite[finite != np.round(finite)]  # zeros and small integers prove nothing
    if interesting.size < 3:
        return False
    return bool(np.all(interesting.astype(np.float32).astype(np.float64) == interesting))


def check(
    loss: Callable[[Any], Any],
    grad: Callable[[Any], Any],
    params: Any,
    *,
    method: str = "auto",
    atol: float | None = None,
    rtol: float | None = None,
    elements: int | None = None,
    rng: Any = None,
    diagnose: bool = True,
    mode: str = "auto",
    vectorized: bool = False,
    executor: Any = None,
    workers: int | None = None,
    budget: float | int | None = None,
    progress: bool | None = None,
    layer_inputs: Any = None,
) -> CheckResult:
    """Check ``grad`` against references computed from ``loss`` alone.

    Parameters
    ----------
    loss : callable
        ``loss(params) -> float``.  It receives gradcheck's own copies of the
        parameters in the structure given.
    grad : callable
        ``grad(params)`` returning the gradient in the same structure.
    params : array_like or nested dict/list/tuple of array_like
        Where to check.  Never modified.
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
        Randomness (noise probe direction, sampled elements).
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
        Not together with ``executor``.
    budget : float or int, optional
        What ``mode="auto"`` may spend on a full check: seconds (a float;
        5.0 by default) or loss evaluations (an int).
    progress : bool or None
        Progress bar (tqdm) for long evaluations: ``None`` shows it on a
        terminal only, ``False`` never, ``True`` always.
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
    if validate_workers(workers, executor, loss) > 1:
        from concurrent.futures import ProcessPoolExecutor

        with ProcessPoolExecutor(max_workers=workers) as pool:
            return check(
                loss,
                grad,
                params,
                method=method,
                atol=atol,
                rtol=rtol,
                elements=elements,
                rng=rng,
                diagnose=diagnose,
                mode=mode,
                vectorized=vectorized,
                executor=pool,
                budget=budget,
                progress=progress,
                layer_inputs=layer_inputs,
            )
    started = time.perf_counter()
    options = _validate(loss, grad, method, atol, rtol, elements, diagnose)
    generator, seed = as_generator(rng)
    space = ParameterSpace(params)
    layer_inputs = validate_layer_inputs(layer_inputs, space)
    hazards: list[Hazard] = []
    notes: list[str] = []

    mode = validate_mode(mode)
    spend = validate_budget(budget)
    objective = Evaluator(loss, space, vectorized=vectorized, executor=executor, progress=progress)
    if space.restore():
        hazards.append(
            Hazard(
                "mutation",
                "the loss function modifies its input arrays in place; "
                "gradcheck hands it a fresh copy at every evaluation",
            )
        )
        loss = _on_copies(loss)
        objective = Evaluator(
            loss, space, vectorized=vectorized, executor=executor, progress=progress
        )
    analytic = _call_grad(grad, space, "evaluating the gradient at the given parameters")
    if space.restore():
        hazards.append(
            Hazard(
                "mutation",
                "the gradient function modifies its input arrays in place; "
                "gradcheck hands it a fresh copy at every evaluation",
            )
        )
        grad = _on_copies(grad)
    hazards += _determinism(objective, grad, space, analytic)
    # The user's atol/rtol replace the derived tolerance, which alone uses the jitter.
    jitter = _Jitter(
        grad,
        space,
        analytic,
        generator.spawn(1)[0],
        enabled=options.atol is None and options.rtol is None,
    )

    # Measured only if a finite difference needs it (a complex-step check never does).
    noise = NoiseOnDemand(objective, generator.spawn(1)[0])
    capability = None
    line = None  # the capability test's random line, reused as the first probe directions
    if options.method in ("auto", "complex"):
        line = generator.standard_normal(space.size)
        capability = complex_step_capability(
            objective,
            sigma=noise.lower_bound,
            measure_sigma=lambda: noise.sigma,
            rng=generator,
            direction=line,
        )
        if not capability.usable:
            if options.method == "complex":
                raise InvalidParameterError(
                    f"method: 'complex' cannot be used: {capability.reason}"
                )
            notes.append(f"complex step not used: {capability.reason}")
    complex_ok = bool(capability and capability.usable)

    chosen, sample, why = choose_mode(
        mode,
        n_elements=space.size,
        n_parameters=len(space.leaves),
        elements=options.elements,
        seconds_per_evaluation=objective.seconds_per_evaluation / objective.parallelism,
        evaluations_per_element=objective.complex_cost if complex_ok else 3.0,
        budget=spend,
        user_tolerance=options.atol is not None or options.rtol is not None,
    )
    notes.append(why)
    directional = None
    if chosen == "directional":
        directional = directional_check(
            objective,
            analytic,
            sigma=lambda: noise.sigma,
            rng=generator,
            measure_noise=jitter.measure,
            use_complex=complex_ok and options.method in ("auto", "complex"),
            initial=line,
        )
        indices = directional.suspects
    else:
        indices = _choose_indices(space, sample, generator)
    line = None  # its parts were the first probe directions; free it
    # Few elements to check (directional, sampled): per-element state for those only.
    state = _Comparison(space, analytic, jitter.values, sparse=8 * len(indices) < space.size)
    cost = _Cost(space)

    first = _first_pass(objective, indices, options.method, noise, complex_ok)
    state.record(first)
    cost.add(indices, first.n_evaluations // max(len(indices), 1))
    state.judge(options)
    if jitter.values is None and state.failing(indices).any() and jitter.measure() is not None:
        state.gradient_noise = jitter.values
        state.judge(options)
    if options.method == "central":
        doubtful = state.failing(indices)
        if doubtful.any():
            widened = with_truncation(objective, _subset(first, doubtful), sigma=noise.sigma)
            cost.add(widened.indices, 2)
            state.record(widened)
            state.judge(options)

    if options.atol is None and options.rtol is None and options.method in ("auto", "complex"):
        # Richardson over a ladder of larger steps is a second, real-arithmetic reference
        # for every element the first pass failed and, after a central first pass, for
        # every element whose tolerance was too coarse to mean anything (saturated
        # networks).  After a complex-step failure the two references are compared first:
        # when they agree within Richardson's error the complex step's extra digits decide
        # (in float64); when they disagree the loss is not complex-analytic at that element
        # and Richardson decides.
        doubtful = state.failing(indices)
        unresolved = np.zeros_like(doubtful)
        if options.method == "auto" and first.method == "central":
            unresolved = state.unresolved(indices) & ~doubtful
        if (doubtful | unresolved).any():
            pick = doubtful | unresolved
            again = indices[pick]
            base = None
            if first.method == "central":
                base = Estimate(
                    again, first.derivative[pick], first.error[pick], first.step[pick], 0, "central"
                )
            refined = richardson(objective, again, sigma=noise.sigma, first=base)
            cost.add(again, refined.n_evaluations // max(len(again), 1))
            if first.method == "complex":
                disagree = np.abs(refined.derivative - state.reference[again]) > state.derived(
                    again, refined.error
                )
                # Below float64, the complex step resolves derivatives far finer than the loss
                # itself can show (a float32 sigmoid that rounds to 1 is flat in the loss, yet
                # its complex step still has the slope): there Richardson, which sees what the
                # loss sees, decides, as the precision hazard states.
                narrow = state.eps(again) > np.finfo(np.float64).eps
                state.record(_subset(refined, disagree | narrow))
            else:
                fail_mask = doubtful[pick]
                state.record(_subset(refined, fail_mask))
                state.record(_subset(refined, ~fail_mask), only_if_better=True)
            state.judge(options)
    if options.atol is None and options.rtol is None:
        still = indices[state.failing(indices)]
        if len(still) and float(objective.value0) == 0.0 and noise.estimate.measured == 0.0:
            hidden = _below_zero_loss_quantum(state, objective, still)
            if hidden.any():
                state.checked[still[hidden]] = False
                hazards.append(
                    Hazard(
                        "unresolved",
                        "the loss is exactly 0.0 and constant near the parameters, so "
                        f"{int(hidden.sum())} gradient element(s) too small to change it by one "
                        "rounding quantum were not "
                        "checked (e.g. a perfectly fit softmax, whose tiny gradients round away)",
                    )
                )
                still = still[~hidden]
        # Elements that pass only because a difference straddling a kink inflated their error
        # estimate are probed too: the kink is reported, not silently absorbed.  A complex
        # step takes no real step, so its error estimate cannot have been inflated that way.
        inflatable = state.checked[indices] & (state.method[indices] != _method_code("complex"))
        still = np.union1d(still, indices[state.unresolved(indices) & inflatable])
        if len(still) and options.method in ("auto", "complex", "richardson"):
            accepted = _kinks(objective, state, still, noise.sigma)
            cost.add(still, 8)
            if accepted.any():
                at = still[accepted]
                state.kink[at] = True
                for leaf in space.leaves:
                    mine = at[(at >= leaf.offset) & (at < leaf.offset + leaf.size)]
                    if len(mine):
                        where = tuple(space.leaf_index(int(i))[1] for i in mine)
                        hazards.append(
                            Hazard(
                                "kink",
                                f"non-differentiable point (kink) at element(s) "
                                f"{', '.join(format_index(w) for w in where[:5])}"
                                f"{' ...' if len(where) > 5 else ''} of {leaf.name}: the one-sided "
                                "slopes differ and the analytic value lies between them (accepted)",
                                parameter=leaf.name,
                                indices=where,
                            )
                        )
    if space.restore():
        hazards.append(
            Hazard(
                "mutation",
                "the loss function modified its input during the check; gradcheck restored it",
            )
        )

    objective.close()
    tolerance_source = _tolerance_source(
        options, noise.estimate.source if noise.measured_yet else None, complex_ok, jitter.values
    )
    objective.release_complex()  # the diagnosis rebuilds it if it needs it
    results = _parameter_results(space, state, cost.per_leaf, tolerance_source)
    hazards += _low_precision(results)
    result = CheckResult(
        parameters=results,
        hazards=tuple(_dedupe(hazards)),
        mode=chosen,
        method=options.method,
        n_evaluations=objective.n_evaluations,
        n_grad_evaluations=2 + jitter.grad_calls,
        loss_value=float(objective.value0),
        noise=noise.sigma if noise.measured_yet else float("nan"),
        seed=seed,
        notes=tuple(notes),
        directional=None if directional is None else directional.to_dict(),
        seconds=time.perf_counter() - started,
    )
    if options.diagnose and result.status == "inconclusive":
        blocking = "; ".join(h.message for h in result.hazards if h.blocking)
        result = replace(
            result,
            diagnosis=Diagnosis(
                "inconclusive",
                "no bug is named: a hazard withholds the verdict",
                blocking,
            ),
        )
    elif options.diagnose and not result.passed:
        result = _with_diagnosis(result, objective, grad, space, state, layer_inputs)
    return result


def _low_precision(results: tuple[ParameterResult, ...]) -> list[Hazard]:
    """One note when parameters are narrower than float64: the accuracy the check can reach."""
    narrow, achievable = [], 0.0
    for result in results:
        dtype = np.dtype(result.dtype)
        if not np.issubdtype(dtype, np.floating) or np.finfo(dtype).eps <= np.finfo(np.float64).eps:
            continue
        narrow.append(result)
        mask = result.checked & np.isfinite(result.reference) & np.isfinite(result.tolerance)
        scale = float(np.max(np.abs(result.reference[mask]), initial=0.0))
        if scale > 0:
            achievable = max(achievable, float(np.max(result.tolerance[mask])) / scale)
    if not narrow:
        return []
    dtypes = sorted({r.dtype for r in narrow})
    eps = max(float(np.finfo(np.dtype(d)).eps) for d in dtypes)
    return [
        Hazard(
            "precision",
            f"{', '.join(r.name for r in narrow)} {'is' if len(narrow) == 1 else 'are'} "
            f"{'/'.join(dtypes)} (eps {eps:.2g}): checked at the precision that allows; errors "
            f"below ~{achievable:.2g} of a parameter's gradient scale cannot be resolved (a bug "
            "smaller than that passes)",
        )
    ]


def _tolerance_source(
    options: _Options, noise_source: str | None, complex_ok: bool, jitter: NDArray[Any] | None
) -> str:
    if options.atol is not None or options.rtol is not None:
        return f"user: atol={options.atol or 0:g} + rtol={options.rtol or 0:g} * |reference|"
    first = "complex step (8 eps |d|)" if complex_ok else "central difference roundoff (3 sigma/h)"
    room = (
        "4 x measured gradient jitter"
        if jitter is not None
        else "no jitter room (every comparison passed without it, so it was not measured)"
    )
    return (
        f"2 x ({first} or Richardson error estimate + 32 eps x gradient scale "
        f"+ {room} + eps^(2/3) x largest gradient); "
        + (f"sigma from {noise_source}" if noise_source else "no finite difference, so no sigma")
    )


def _determinism(
    objective: Objective, grad: Callable[[Any], Any], space: ParameterSpace, analytic: NDArray[Any]
) -> list[Hazard]:
    hazards = []
    again = objective._value(space.tree, "re-evaluating the loss to test that it is deterministic")
    if again != objective.value0:
        hazards.append(
            Hazard(
                "nondeterministic",
                "two calls of the loss at the same parameters gave "
                f"{float(objective.value0)!r} and {float(again)!r}: randomness (dropout, noise, "
                "sampling) left on? Finite differences of "
                "a random function are meaningless, so no verdict is possible",
                blocking=True,
            )
        )
    analytic_again = _call_grad(
        grad, space, "re-evaluating the gradient to test that it is deterministic"
    )
    space.restore()
    # The NaN-aware comparison is ~10x slower; it is only needed when the plain one fails.
    same = np.array_equal(analytic, analytic_again) or np.array_equal(
        analytic, analytic_again, equal_nan=True
    )
    if not same:
        diff = np.abs(analytic.astype(np.float64) - analytic_again.astype(np.float64))
        k = int(np.nanargmax(diff))
        leaf, where = space.leaf_index(k)
        hazards.append(
            Hazard(
                "nondeterministic",
                "two calls of the gradient at the same parameters differ "
                f"(by {float(diff[k]):.3g} at "
                f"{leaf.name}{format_index(where)}): randomness left on in the backward pass?",
                parameter=leaf.name,
                blocking=True,
            )
        )
    return hazards


def _parameter_results(
    space: ParameterSpace, state: _Comparison, cost: NDArray[np.int64], source: str
) -> tuple[ParameterResult, ...]:
    results = []
    n = space.size
    reference, error = _dense(state.reference, n), _dense(state.error, n)
    tolerance, step = _dense(state.tolerance, n), _dense(state.step, n)
    for k, leaf in enumerate(space.leaves):
        s = leaf.slice
        method = state.methods(s)
        kinks = tuple(
            tuple(int(i) for i in np.unravel_index(k, leaf.shape))
            for k in np.flatnonzero(state.kink[s])
        )
        results.append(
            ParameterResult(
                name=leaf.name,
                analytic=state.analytic[s].reshape(leaf.shape).astype(leaf.dtype, copy=False)
                if np.all(np.isfinite(state.analytic[s]))
                else state.analytic[s].reshape(leaf.shape),
                reference=reference[s].reshape(leaf.shape),
                error_estimate=error[s].reshape(leaf.shape),
                tolerance=tolerance[s].reshape(leaf.shape),
                checked=state.checked[s].reshape(leaf.shape),
                step=step[s].reshape(leaf.shape),
                method=method,
                tolerance_source=source,
                n_evaluations=int(cost[k]),
                kinks=kinks,
                kink_mask=state.kink[s].reshape(leaf.shape),
                dtype=str(leaf.dtype),
            )
        )
    return tuple(results)


def _dedupe(hazards: list[Hazard]) -> list[Hazard]:
    seen: set[tuple[str, str]] = set()
    out = []
    for hazard in hazards:
        key = (hazard.kind, hazard.message)
        if key not in seen:
            seen.add(key)
            out.append(hazard)
    return out


def _with_diagnosis(
    result: CheckResult,
    objective: Objective,
    grad: Callable[[Any], Any],
    space: ParameterSpace,
    state: _Comparison,
    layer_inputs: Any = None,
) -> CheckResult:
    from dataclasses import replace

    from gradcheck.diagnosis.patterns import Evidence, diagnose

    evidence = Evidence(
        space=space,
        analytic=state.analytic,
        reference=_dense(state.reference, space.size),
        tolerance=_dense(state.tolerance, space.size),
        checked=state.checked,
        failed=result_failed_mask(result, space),
        objective=objective,
        grad=grad,
        layer_inputs=layer_inputs,
    )
    diagnosis: Diagnosis = diagnose(evidence)
    return replace(result, diagnosis=diagnosis, n_evaluations=objective.n_evaluations)


def result_failed_mask(result: CheckResult, space: ParameterSpace) -> NDArray[np.bool_]:
    """The flat mask of failed elements of ``result``."""
    return np.concatenate([p.failed.ravel() for p in result.parameters])


def assert_check(
    loss: Callable[[Any], Any], grad: Callable[[Any], Any], params: Any, **options: Any
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
    from gradcheck.errors import GradientMismatchError

    result = check(loss, grad, params, **options)
    if not result.passed:
        raise GradientMismatchError(result)
    return result
