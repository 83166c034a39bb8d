"""Result objects: what a check found, as data.

A gradient that does not match is not an exception: :func:`gradcheck.check`
returns a :class:`CheckResult` whose ``passed`` is False, whose ``str()``
names the parameter, the element, the values there, the tolerance and the
likely bug, and whose ``to_dict()`` is JSON-safe.

A result may also carry :class:`CheckEvidence`: what extra loss evaluations
showed about a few of its elements (the error of a central difference across
step sizes, :class:`StepSweep`; every reference side by side,
:class:`ReferenceAgreement`).  The core gathers it on request
(:func:`gradcheck.runner.evidence.with_evidence`) and the HTML report renders
it; this module only holds it, so the report needs nothing but these classes.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from functools import cached_property
from typing import TYPE_CHECKING, Any, NamedTuple

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:  # pragma: no cover - an annotation only: results import nothing of the core
    from gradcheck.references.base import Estimate

__all__ = [
    "Hazard",
    "Diagnosis",
    "ParameterResult",
    "ElementValues",
    "Compared",
    "StepSweep",
    "ReferenceAgreement",
    "CheckEvidence",
    "OUTLIER_ERROR_FACTOR",
    "JacobianEntry",
    "CheckResult",
    "FailingElement",
    "FAILING_SHOWN",
    "FAILING_LIMIT",
    "format_index",
    "printable",
    "json_float",
]


def printable(text: str) -> str:
    """``text`` with its control characters escaped as ``repr`` writes them (``\\r``, ``\\x1b``).

    Parameter names are made printable once, where they are made
    (:mod:`gradcheck.problem.space`), so a name cannot move a terminal's cursor and
    overwrite a verdict (``"w\\r  ok"``); other text from outside (an exception's message)
    goes through it before it is printed.
    """
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else repr(c)[1:-1] for c in text)


def format_index(index: tuple[int, ...]) -> str:
    """``(2, 0)`` -> ``"[2, 0]"``; a scalar parameter's ``()`` -> ``""`` (it is named alone).

    Appended to a parameter's name, a scalar's element reads ``lr``, not ``lr[]``.
    """
    if not len(index):
        return ""
    return "[" + ", ".join(str(int(i)) for i in index) + "]"


def json_float(value: float) -> float | str | None:
    """``value`` for JSON: NaN becomes None, infinities the strings ``"inf"``/``"-inf"``."""
    value = float(value)
    if math.isnan(value):
        return None
    if math.isinf(value):
        return "inf" if value > 0 else "-inf"
    return value


def _json_array(array: NDArray[Any]) -> Any:
    return [json_float(v) for v in np.asarray(array, dtype=np.float64).ravel()]


#: Failing elements ``str(result)`` lists per parameter (beside the worst; the rest are counted).
FAILING_SHOWN = 3
#: Most failing elements listed in all by ``to_dict()``, ``gradcheck check --verbose`` and the
#: HTML report: every element of any bug a reader can take in, bounded for a dense bug in a
#: large parameter.
FAILING_LIMIT = 1000


@dataclass(frozen=True)
class FailingElement:
    """One element whose error exceeds its tolerance.

    Attributes
    ----------
    parameter : str
        The parameter's path in the tree.
    index : tuple of int
        The element's index in the parameter.
    analytic, reference : float
        The user's gradient and the reference there.
    error, tolerance : float
        ``|analytic - reference|`` and the tolerance it exceeds.
    method : str
        The reference that decided the parameter (``complex``, ``richardson``...).
    """

    parameter: str
    index: tuple[int, ...]
    analytic: float
    reference: float
    error: float
    tolerance: float
    method: str

    @property
    def label(self) -> str:
        """``"weight1[0, 2]"``."""
        return self.parameter + format_index(self.index)

    def __str__(self) -> str:
        return (
            f"{self.label}: analytic {self.analytic:.6g}, {self.method} {self.reference:.6g}, "
            f"|error| {self.error:.3g} > tolerance {self.tolerance:.3g}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "parameter": self.parameter,
            "index": list(self.index),
            "analytic": json_float(self.analytic),
            "reference": json_float(self.reference),
            "error": json_float(self.error),
            "tolerance": json_float(self.tolerance),
        }


@dataclass(frozen=True)
class Hazard:
    """A problem that makes a check unreliable or needs attention, but is not a wrong gradient.

    Attributes
    ----------
    kind : str
        ``"mutation"``, ``"nondeterministic"``, ``"kink"``, ``"precision"``,
        ``"cancellation"``, ``"complex-step"``, ``"unresolved"`` or ``"budget"``.
    message : str
        Plain words, with the evidence.
    parameter : str or None
        The parameter concerned, if one.
    indices : tuple of tuple of int
        Elements concerned (may be empty).
    blocking : bool
        True when the hazard makes the verdict impossible (the check fails
        without blaming the gradient): status ``inconclusive``.
    fails_check : bool
        True when the gradient may be right but the code around it is not (a
        loss or gradient that writes into its arguments would corrupt the
        training loop it lives in): the check fails with status ``hazard``.
    """

    kind: str
    message: str
    parameter: str | None = None
    indices: tuple[tuple[int, ...], ...] = ()
    blocking: bool = False
    fails_check: bool = False

    def __str__(self) -> str:
        return f"{self.kind}: {self.message}"

    def to_dict(self) -> dict[str, Any]:
        return {
            "kind": self.kind,
            "message": self.message,
            "parameter": self.parameter,
            "indices": [list(i) for i in self.indices],
            "blocking": self.blocking,
            "fails_check": self.fails_check,
        }


@dataclass(frozen=True)
class Diagnosis:
    """The likely cause of a failed check, in plain words, with the evidence.

    Attributes
    ----------
    kind : str
        A stable code: ``"sign-flip"``, ``"constant-factor"``, ``"transposed"``,
        ``"per-sample-delta"``, ``"swapped"``, ``"missing-samples"``,
        ``"non-finite"``, ``"few-elements"``, ``"precision"``,
        ``"different-point"``, ``"unknown"``...
    summary : str
        One sentence a learner can act on.
    evidence : str
        The numbers that support it.
    parameters : tuple of str
        Parameters it concerns.
    details : dict
        Machine-readable extras (the factor, the elements...).
    """

    kind: str
    summary: str
    evidence: str = ""
    parameters: tuple[str, ...] = ()
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        text = self.summary
        if self.evidence:
            text += f" ({self.evidence})"
        return text

    def to_dict(self) -> dict[str, Any]:
        def clean(value: Any) -> Any:
            if isinstance(value, (np.generic,)):
                return value.item()
            if isinstance(value, np.ndarray):
                return value.tolist()
            if isinstance(value, (list, tuple)):
                return [clean(v) for v in value]
            if isinstance(value, dict):
                return {str(k): clean(v) for k, v in value.items()}
            if isinstance(value, float):
                return json_float(value)
            return value

        return {
            "kind": self.kind,
            "summary": self.summary,
            "evidence": self.evidence,
            "parameters": list(self.parameters),
            "details": clean(self.details),
        }


def _scattered(size: int, indices: NDArray[np.intp], values: NDArray[Any]) -> NDArray[Any]:
    """A full flat array of ``size`` holding ``values`` at ``indices``: NaN elsewhere for
    floats, False (zero) for the rest."""
    out = np.full(size, np.nan) if values.dtype.kind == "f" else np.zeros(size, values.dtype)
    out[indices] = values
    return out


class Compared(NamedTuple):
    """One parameter's elements that carry values, in row-major order.

    What :meth:`ParameterResult.compared` returns: the per-element values at the
    elements a check estimated or compared, without full-size arrays, so that a
    directional check of a huge parameter (a handful of elements compared) is read
    in O(compared).  ``indices`` holds flat (row-major) indices into the parameter;
    every other field is aligned with it.
    """

    indices: NDArray[np.intp]
    analytic: NDArray[np.float64]
    reference: NDArray[np.float64]
    error_estimate: NDArray[np.float64]
    tolerance: NDArray[np.float64]
    step: NDArray[np.float64]
    checked: NDArray[np.bool_]
    kink: NDArray[np.bool_]

    @property
    def abs_error(self) -> NDArray[np.float64]:
        """``|analytic - reference|`` (NaN where no reference, inf where analytic is not finite)."""
        with np.errstate(invalid="ignore"):
            error = np.array(np.abs(self.analytic - self.reference), dtype=np.float64)
        error[self.checked & ~np.isfinite(self.analytic)] = np.inf
        return error

    @property
    def failed(self) -> NDArray[np.bool_]:
        """Checked elements whose error exceeds their tolerance (accepted kinks excepted)."""
        with np.errstate(invalid="ignore"):
            bad = ~(self.abs_error <= self.tolerance)
        return bad & self.checked & ~self.kink

    @property
    def ratio(self) -> NDArray[np.float64]:
        """``error / tolerance`` (inf where undefined, 0 at accepted kinks, -inf unchecked)."""
        with np.errstate(divide="ignore", invalid="ignore"):
            ratio = np.array(self.abs_error / self.tolerance, dtype=np.float64)
        ratio[np.isnan(ratio) & self.checked] = np.inf
        ratio[self.kink] = 0.0
        ratio[~self.checked] = -np.inf
        return ratio


@dataclass(frozen=True, eq=False)
class ElementValues:
    """A check's per-element values, flat over every parameter (row-major, tree order).

    Shared by the check's :class:`ParameterResult` objects, each of which reads its own
    range ``starts[p]:starts[p + 1]``: one set of arrays for the whole check instead of
    seven per parameter, so a model of 20,000 tiny arrays keeps ~20,000 small objects
    rather than 140,000 arrays.  ``analytic`` holds every element (as float64); the
    reference, error estimate, tolerance, step, checked and kink values are held at
    ``keys`` only (the sorted flat indices that carry an estimate or were compared), or
    at every element when ``keys`` is None (a full check).  A directional check of
    1e7 elements compares a few dozen and so keeps a few dozen of each.
    """

    analytic: NDArray[np.float64]
    starts: NDArray[np.intp]
    keys: NDArray[np.intp] | None
    reference: NDArray[np.float64]
    error_estimate: NDArray[np.float64]
    tolerance: NDArray[np.float64]
    step: NDArray[np.float64]
    checked: NDArray[np.bool_]
    kink: NDArray[np.bool_]

    def __post_init__(self) -> None:
        # Read-only views: a result is a record of what was compared, and every parameter
        # reads these arrays (a caller writing into one ``analytic`` would change them all).
        stored = ("analytic", "starts", "keys", "reference", "error_estimate", "tolerance")
        for name in (*stored, "step", "checked", "kink"):
            self._freeze(name)

    def _freeze(self, name: str) -> None:
        array = getattr(self, name)
        if array is not None:
            view = np.asarray(array).view()
            view.setflags(write=False)
            object.__setattr__(self, name, view)

    def span(self, position: int) -> slice:
        """Where parameter ``position``'s values lie in the stored (``keys``-aligned) arrays."""
        start, stop = int(self.starts[position]), int(self.starts[position + 1])
        if self.keys is None:
            return slice(start, stop)
        lo, hi = np.searchsorted(self.keys, (start, stop))
        return slice(int(lo), int(hi))

    def compared(self, position: int) -> Compared:
        """Parameter ``position``'s stored values, indexed within the parameter."""
        at, start = self.span(position), int(self.starts[position])
        if self.keys is None:
            index = np.arange(at.stop - at.start, dtype=np.intp)
            analytic = self.analytic[at]
        else:
            index = self.keys[at] - start
            analytic = self.analytic[self.keys[at]]
        return Compared(
            index,
            analytic,
            self.reference[at],
            self.error_estimate[at],
            self.tolerance[at],
            self.step[at],
            self.checked[at],
            self.kink[at],
        )

    def dense(self, name: str, position: int) -> NDArray[Any]:
        """One stored field of parameter ``position`` as a full flat array (NaN/False elsewhere)."""
        stored = getattr(self, name)
        at = self.span(position)
        if self.keys is None:
            return np.array(stored[at])
        start, stop = int(self.starts[position]), int(self.starts[position + 1])
        return _scattered(stop - start, self.keys[at] - start, stored[at])

    def widened(self, extra: NDArray[np.float64]) -> ElementValues:
        """These values with ``extra`` (one value per element, flat) added to checked tolerances."""
        at = slice(None) if self.keys is None else self.keys
        tolerance = self.tolerance + np.where(self.checked, extra[at], 0.0)
        return replace(self, tolerance=tolerance)

    @cached_property
    def failures(self) -> NDArray[np.intp]:
        """Failing elements per parameter (computed once for the whole check)."""
        if self.keys is None:
            analytic = self.analytic
        else:
            analytic = self.analytic[self.keys]
        values = Compared(
            np.empty(0, np.intp),
            analytic,
            self.reference,
            self.error_estimate,
            self.tolerance,
            self.step,
            self.checked,
            self.kink,
        )
        running = np.concatenate([[0], np.cumsum(values.failed, dtype=np.intp)])
        bounds = self.starts if self.keys is None else np.searchsorted(self.keys, self.starts)
        return np.diff(running[bounds])

    @classmethod
    def of_arrays(
        cls,
        analytic: NDArray[Any],
        reference: NDArray[Any],
        error_estimate: NDArray[Any],
        tolerance: NDArray[Any],
        checked: NDArray[Any],
        step: NDArray[Any],
        kink: NDArray[Any] | None = None,
    ) -> ElementValues:
        """The values of one parameter given as full arrays of its shape."""
        n = np.size(analytic)

        def flat(values: Any, dtype: Any) -> NDArray[Any]:
            out = np.array(values, dtype=dtype).reshape(-1)
            if out.size != n:
                raise ValueError(f"per-element arrays must have {n} elements, got {out.size}")
            return out

        return cls(
            analytic=flat(analytic, np.float64),
            starts=np.array([0, n], dtype=np.intp),
            keys=None,
            reference=flat(reference, np.float64),
            error_estimate=flat(error_estimate, np.float64),
            tolerance=flat(tolerance, np.float64),
            step=flat(step, np.float64),
            checked=flat(checked, bool),
            kink=np.zeros(n, dtype=bool) if kink is None else flat(kink, bool),
        )


def _dense_field(name: str, doc: str) -> Any:
    """A :class:`ParameterResult` property: stored field ``name`` of its
    :class:`ElementValues` as a new full array of the parameter's shape."""

    def full(self: ParameterResult) -> NDArray[Any]:
        return self.values.dense(name, self.position).reshape(self.shape)

    return property(full, doc=doc)


@dataclass(frozen=True, eq=False, slots=True)  # one small object per parameter array
class ParameterResult:
    """The check of one parameter array.

    The per-element values live in the check's shared :class:`ElementValues`;
    ``analytic``, ``reference``, ``error_estimate``, ``tolerance``, ``checked``,
    ``step`` and ``kink_mask`` build full arrays of the parameter's shape when asked
    (each call a new array), and :meth:`compared` gives the compared elements alone.
    Build one from full arrays with :meth:`from_arrays`.

    Attributes
    ----------
    name : str
        The parameter's path in the tree (``weight1``, ``layers[1].weight``).
    values : ElementValues
        The check's per-element values (shared by its parameters).
    position : int
        This parameter's place in ``values``.
    shape : tuple of int
        The parameter's shape.
    method : str
        The reference that decided (``complex``, ``central``, ``richardson``...).
    tolerance_source : str
        Where the tolerance came from, in words.
    n_evaluations : int
        Loss evaluations spent on this parameter.
    kinks : tuple of tuple of int
        Elements at a non-differentiable point where the analytic value lay
        between the one-sided slopes (accepted).
    dtype : str
        The parameter's dtype.
    """

    name: str
    values: ElementValues
    position: int
    shape: tuple[int, ...]
    method: str
    tolerance_source: str
    n_evaluations: int
    kinks: tuple[tuple[int, ...], ...] = ()
    dtype: str = "float64"

    @classmethod
    def from_arrays(
        cls,
        *,
        name: str,
        analytic: NDArray[Any],
        reference: NDArray[Any],
        error_estimate: NDArray[Any],
        tolerance: NDArray[Any],
        checked: NDArray[Any],
        step: NDArray[Any],
        method: str,
        tolerance_source: str,
        n_evaluations: int,
        kinks: tuple[tuple[int, ...], ...] = (),
        kink_mask: NDArray[Any] | None = None,
        dtype: str | None = None,
    ) -> ParameterResult:
        """One parameter's result from full arrays of its shape (tests, other front ends)."""
        analytic = np.asarray(analytic)
        values = ElementValues.of_arrays(
            analytic, reference, error_estimate, tolerance, checked, step, kink_mask
        )
        return cls(
            name=name,
            values=values,
            position=0,
            shape=tuple(analytic.shape),
            method=method,
            tolerance_source=tolerance_source,
            n_evaluations=n_evaluations,
            kinks=kinks,
            dtype=str(analytic.dtype) if dtype is None else dtype,
        )

    @property
    def size(self) -> int:
        return int(self.values.starts[self.position + 1] - self.values.starts[self.position])

    def compared(self) -> Compared:
        """The elements with values (estimated or compared), without full-size arrays."""
        return self.values.compared(self.position)

    @property
    def analytic(self) -> NDArray[Any]:
        """The user's gradient, in the parameter's dtype where its values are finite."""
        start = int(self.values.starts[self.position])
        flat = self.values.analytic[start : start + self.size].reshape(self.shape)
        dtype = np.dtype(self.dtype)
        if dtype == flat.dtype or dtype.kind != "f" or not np.isfinite(flat).all():
            return flat
        return flat.astype(dtype)

    reference = _dense_field("reference", "The reference estimate (NaN where none was made).")
    error_estimate = _dense_field(
        "error_estimate", "The reference's own error estimate (NaN where none)."
    )
    tolerance = _dense_field(
        "tolerance", "The tolerance each element was judged against (NaN where unchecked)."
    )
    checked = _dense_field("checked", "Elements compared elementwise.")
    step = _dense_field("step", "Step used at each element (NaN where none).")
    kink_mask = _dense_field(
        "kink", "The accepted kinks (:attr:`kinks`) as a mask of the parameter's shape."
    )

    @property
    def abs_error(self) -> NDArray[np.float64]:
        """``|analytic - reference|`` per element (NaN where unchecked, inf where non-finite)."""
        found = self.compared()
        return _scattered(self.size, found.indices, found.abs_error).reshape(self.shape)

    @property
    def failed(self) -> NDArray[np.bool_]:
        """Elements whose error exceeds their tolerance (accepted kinks excepted)."""
        found = self.compared()
        return _scattered(self.size, found.indices, found.failed).reshape(self.shape)

    @property
    def passed(self) -> bool:
        return self.n_failed == 0

    @property
    def n_checked(self) -> int:
        return int(self.values.checked[self.values.span(self.position)].sum())

    @property
    def n_failed(self) -> int:
        return int(self.values.failures[self.position])

    def _worst(self) -> tuple[Compared, int] | None:
        """The compared values and the position (in them) of the worst checked element."""
        found = self.compared()
        if not found.checked.any():
            return None
        return found, int(np.argmax(found.ratio))

    def _index(self, flat: int) -> tuple[int, ...]:
        return tuple(int(i) for i in np.unravel_index(flat, self.shape))

    @property
    def worst_index(self) -> tuple[int, ...]:
        """Index of the element with the largest error relative to its tolerance."""
        worst = self._worst()
        if worst is None:
            return ()
        found, k = worst
        return self._index(int(found.indices[k]))

    @property
    def worst_ratio(self) -> float:
        """``error / tolerance`` at the worst element (above 1 means failed)."""
        worst = self._worst()
        if worst is None:
            return 0.0
        found, k = worst
        return float(found.ratio[k])

    @property
    def max_abs_error(self) -> float:
        found = self.compared()
        if not found.checked.any():
            return 0.0
        return float(np.max(found.abs_error[found.checked]))

    @property
    def max_rel_error(self) -> float:
        """``max |a - r| / max(|a|, |r|)`` over checked elements whose values are not both zero."""
        found = self.compared()
        if not found.checked.any():
            return 0.0
        a = np.abs(found.analytic[found.checked])
        r = np.abs(found.reference[found.checked])
        denominator = np.maximum(a, r)
        error = found.abs_error[found.checked]
        nonzero = denominator > 0
        if not nonzero.any():
            return 0.0
        with np.errstate(invalid="ignore"):
            rel = error[nonzero] / denominator[nonzero]
        return float(np.nanmax(rel)) if np.isfinite(rel).any() else float("inf")

    def summary_line(self) -> str:
        """One line: verdict, name, worst element, values there, error against tolerance."""
        worst = self._worst()
        if worst is None:  # "ok" would claim what no element comparison showed
            return f"--   {self.name} {self.shape}: no element compared"
        found, k = worst
        verdict = "ok  " if self.passed else "FAIL"
        index = self._index(int(found.indices[k]))
        a, r = float(found.analytic[k]), float(found.reference[k])
        error, tol = float(found.abs_error[k]), float(found.tolerance[k])
        text = (
            f"{verdict} {self.name}{format_index(index)}: analytic {a:.6g}, {self.method} "
            f"{r:.6g}, |error| {error:.3g} {'<=' if error <= tol else '>'} tolerance {tol:.3g}"
        )
        if not self.passed:
            text += f"  ({self.n_failed} of {self.n_checked} elements fail)"
        return text

    def failing_elements(self, limit: int | None = None) -> tuple[FailingElement, ...]:
        """The failing elements in index order (row-major), at most ``limit`` of them."""
        found = self.compared()
        error = found.abs_error
        return tuple(
            FailingElement(
                self.name,
                self._index(int(found.indices[k])),
                float(found.analytic[k]),
                float(found.reference[k]),
                float(error[k]),
                float(found.tolerance[k]),
                self.method,
            )
            for k in np.flatnonzero(found.failed)[:limit]
        )

    def to_dict(self, *, arrays: bool = False) -> dict[str, Any]:
        worst = self._worst()
        found = self.compared()
        k = None if worst is None else worst[1]
        steps = found.step[np.isfinite(found.step)]
        data: dict[str, Any] = {
            "name": self.name,
            "shape": list(self.shape),
            "dtype": self.dtype,
            "passed": self.passed,
            "method": self.method,
            "tolerance_source": self.tolerance_source,
            "n_evaluations": self.n_evaluations,
            "n_checked": self.n_checked,
            "n_failed": self.n_failed,
            "max_abs_error": json_float(self.max_abs_error),
            "max_rel_error": json_float(self.max_rel_error),
            "worst_index": list(self.worst_index),
            "worst_analytic": None if k is None else json_float(found.analytic[k]),
            "worst_reference": None if k is None else json_float(found.reference[k]),
            "worst_tolerance": None if k is None else json_float(found.tolerance[k]),
            "worst_ratio": json_float(self.worst_ratio),
            "step": json_float(np.median(steps)) if steps.size else None,
            "kinks": [list(i) for i in self.kinks],
        }
        if arrays:
            for name in ("analytic", "reference", "error_estimate", "tolerance", "step"):
                data[name] = _json_array(getattr(self, name))
            data["checked"] = self.checked.ravel().tolist()
        return data


@dataclass(frozen=True, eq=False)
class StepSweep:
    """Central-difference errors over a ladder of steps, for a few elements.

    Attributes
    ----------
    indices : ndarray of int, shape (k,)
        Flat indices of the elements swept.
    steps : ndarray, shape (m,)
        Relative steps; element ``i`` was moved by ``steps * max(|x_i|, 1)``.
    absolute_steps : ndarray, shape (k, m)
        The steps really taken (half the width of each stencil).
    derivative : ndarray, shape (k, m)
        Central difference at each step.
    truth : ndarray, shape (k,)
        The most accurate reference available for each element.
    truth_method : str
        Which reference ``truth`` is (``complex`` or ``richardson``).
    roundoff : ndarray, shape (k, m)
        The roundoff bound ``ROUNDOFF_SIGMAS * sigma / h`` at each step.
    default_step : ndarray, shape (k,)
        The step :func:`~gradcheck.references.finite_difference.default_steps` would choose.
    n_evaluations : int
        Loss evaluations spent.

    See Also
    --------
    gradcheck.references.sweep.step_sweep : Measures it.
    """

    indices: NDArray[np.intp]
    steps: NDArray[np.float64]
    absolute_steps: NDArray[np.float64]
    derivative: NDArray[np.float64]
    truth: NDArray[np.float64]
    truth_method: str
    roundoff: NDArray[np.float64]
    default_step: NDArray[np.float64]
    n_evaluations: int

    @property
    def error(self) -> NDArray[np.float64]:
        """``|central(h) - truth|``, shape (k, m)."""
        return np.abs(self.derivative - self.truth[:, None])

    @property
    def best_step(self) -> NDArray[np.float64]:
        """The absolute step with the smallest error, per element."""
        error = np.where(np.isfinite(self.error), self.error, np.inf)
        return self.absolute_steps[np.arange(len(self.indices)), np.argmin(error, axis=1)]


@dataclass(frozen=True, eq=False)
class ReferenceAgreement:
    """Every reference on the same elements.

    Attributes
    ----------
    indices : ndarray of int
        Flat indices of the elements.
    estimates : dict of str to Estimate
        One per reference that ran, by display name (``"central difference"``,
        ``"Richardson"``, ``"complex step"``, ``"SciPy approx_fprime"``...).
    skipped : dict of str to str
        References that did not run, and why.

    See Also
    --------
    gradcheck.references.sweep.reference_agreement : Measures it.
    """

    indices: NDArray[np.intp]
    estimates: dict[str, Estimate]
    skipped: dict[str, str] = field(default_factory=dict)

    @property
    def consensus(self) -> NDArray[np.float64]:
        """The estimate with the smallest own error at each element."""
        values = np.array([e.derivative for e in self.estimates.values()])
        errors = np.array([e.error for e in self.estimates.values()])
        errors = np.where(np.isfinite(errors), errors, np.inf)
        best = np.argmin(errors, axis=0)
        return values[best, np.arange(values.shape[1])]


#: How many of its own error estimates a reference may stray from the consensus (beyond the
#: tolerance) before it is flagged: an error estimate is itself an estimate, so allow slack.
OUTLIER_ERROR_FACTOR = 2.0


@dataclass(frozen=True, eq=False)
class CheckEvidence:
    """What extra loss evaluations showed about a few elements of a check.

    :func:`gradcheck.check` spends as few loss evaluations as it can.  Showing
    *why* a step was chosen, or that the references agree with each other,
    takes more (about 80 per element), so it is gathered only on request, by
    :func:`gradcheck.runner.evidence.gather_evidence`, and carried in
    :attr:`CheckResult.evidence`.

    Attributes
    ----------
    labels : tuple of str
        The elements sampled, by name (``"W1[0, 2]"``): the worst element of
        each parameter (failed parameters first), then random checked ones.
    indices : ndarray of int, shape (k,)
        Their flat indices in the parameter vector (tree order).
    analytic : ndarray, shape (k,)
        The user's gradient at those elements.
    tolerance : ndarray, shape (k,)
        The tolerance the check judged each against.
    used_step : ndarray, shape (k,)
        The step of the reference that decided (NaN where the complex step
        decided: its step is not on a central difference's axis).
    sweep : StepSweep or None
        Central differences across step sizes; None when no element was sampled.
    agreement : ReferenceAgreement or None
        Every reference on the same elements; None when no element was sampled.
    noise : float
        The loss's rounding noise the sweeps assumed: the check's estimate, or
        measured anew when the check did not measure it.
    complex_step_usable : bool
        Whether the loss passed the complex-step capability probe.
    n_evaluations : int
        Loss evaluations spent (not counted in the check's).
    seconds : float
        Time spent gathering.
    """

    labels: tuple[str, ...]
    indices: NDArray[np.intp]
    analytic: NDArray[np.float64]
    tolerance: NDArray[np.float64]
    used_step: NDArray[np.float64]
    sweep: StepSweep | None
    agreement: ReferenceAgreement | None
    noise: float
    complex_step_usable: bool
    n_evaluations: int
    seconds: float

    @property
    def truth_method(self) -> str:
        """The reference the step sweep measured errors against (``""`` without a sweep)."""
        return self.sweep.truth_method if self.sweep is not None else ""

    @property
    def reference_names(self) -> tuple[str, ...]:
        """The references that ran, in the order they ran."""
        return tuple(self.agreement.estimates) if self.agreement is not None else ()

    @property
    def consensus(self) -> NDArray[np.float64]:
        """The most accurate reference at each element (NaN where no reference ran)."""
        if self.agreement is None or not self.agreement.estimates:
            return np.full(len(self.labels), np.nan)
        return self.agreement.consensus

    @property
    def difference(self) -> NDArray[np.float64]:
        """``analytic - consensus`` per element."""
        return np.asarray(self.analytic - self.consensus, dtype=np.float64)

    @property
    def analytic_wrong(self) -> NDArray[np.bool_]:
        """Elements whose analytic value is further from the consensus than the tolerance."""
        return np.abs(self.difference) > self.tolerance

    @property
    def far_from_consensus(self) -> dict[str, NDArray[np.bool_]]:
        """Per reference, the elements where it strays from the consensus.

        A reference strays when it is further from the consensus than
        :data:`OUTLIER_ERROR_FACTOR` times its own error estimate plus the tolerance.
        """
        estimates = self.agreement.estimates if self.agreement is not None else {}
        return {
            name: np.abs(estimate.derivative - self.consensus)
            > OUTLIER_ERROR_FACTOR * np.maximum(estimate.error, 0.0) + self.tolerance
            for name, estimate in estimates.items()
        }

    def to_dict(self) -> dict[str, Any]:
        """A JSON-safe summary: per element the references, the best step and the verdict."""
        agreement = self.agreement
        estimates = agreement.estimates if agreement is not None else {}
        sweep = self.sweep
        return {
            "elements": list(self.labels),
            "analytic": _json_array(self.analytic),
            "tolerance": _json_array(self.tolerance),
            "references": {
                name: {"derivative": _json_array(e.derivative), "error": _json_array(e.error)}
                for name, e in estimates.items()
            },
            "skipped": dict(agreement.skipped) if agreement is not None else {},
            "analytic_wrong": self.analytic_wrong.tolist(),
            "truth_method": self.truth_method,
            "default_step": _json_array(sweep.default_step) if sweep is not None else [],
            "best_step": _json_array(sweep.best_step) if sweep is not None else [],
            "used_step": _json_array(self.used_step),
            "noise": json_float(self.noise),
            "complex_step_usable": self.complex_step_usable,
            "n_evaluations": self.n_evaluations,
            "seconds": json_float(self.seconds),
        }


@dataclass(frozen=True)
class JacobianEntry:
    """One entry ``d output[j] / d input[i]`` of a derivative check, compared on its own.

    Attributes
    ----------
    output : str
        The output element, ``out[3, 1]``.
    input : str
        The input element, ``inputs[0][2, 4]`` (or ``x[2, 4]`` for keyword inputs).
    analytic, reference : float
        The entry as the user's derivative implies it, and the reference.
    tolerance : float
        The derived tolerance it was judged against.
    method : str
        The reference (``complex``, ``central``, ``richardson``).
    """

    output: str
    input: str
    analytic: float
    reference: float
    tolerance: float
    method: str

    @property
    def passed(self) -> bool:
        return bool(abs(self.analytic - self.reference) <= self.tolerance)

    def __str__(self) -> str:
        error = abs(self.analytic - self.reference)
        return (
            f"d {self.output} / d {self.input}: analytic {self.analytic:.6g}, {self.method} "
            f"{self.reference:.6g}, |error| {error:.3g} {'<=' if self.passed else '>'} "
            f"tolerance {self.tolerance:.3g}"
        )

    def to_dict(self) -> dict[str, Any]:
        return {
            "output": self.output,
            "input": self.input,
            "analytic": json_float(self.analytic),
            "reference": json_float(self.reference),
            "tolerance": json_float(self.tolerance),
            "method": self.method,
            "passed": self.passed,
        }


@dataclass(frozen=True, eq=False)
class CheckResult:
    """The outcome of :func:`gradcheck.check`.

    Attributes
    ----------
    parameters : tuple of ParameterResult
        One per parameter array, in tree order.
    diagnosis : Diagnosis or None
        The likely cause when the check failed.
    hazards : tuple of Hazard
        Reliability problems found on the way (kinks, mutation, noise...).
    mode : str
        ``"full"``, ``"sampled"`` or ``"directional"``.
    method : str
        The reference method requested (``"auto"`` resolves per element).
    n_evaluations : int
        Loss evaluations in all.
    n_grad_evaluations : int
        Gradient evaluations in all.
    loss_value : float
        The loss at the given parameters.
    noise : float
        The loss's estimated rounding noise (standard deviation); NaN when no
        reference divided a difference of loss values by a step (complex step
        throughout), so it was not measured.
    seed : int or None
        Seed of the random draws, to reproduce the check.
    notes : tuple of str
        How the check was run, in words (methods, probes, guarantees).
    directional : dict or None
        Directional mode's probes and guarantee, when used.
    seconds : float
        Wall time of the check.
    evidence : CheckEvidence or None
        Step sweeps and the agreement of every reference on a few elements,
        when gathered (:func:`gradcheck.runner.evidence.with_evidence`); the
        HTML report shows it.
    kind : str
        What was checked: ``"gradient"`` (:func:`gradcheck.check`), ``"vjp"``,
        ``"jvp"``, ``"jacobian"``, ``"hessian"`` or ``"hvp"``.
    inputs : tuple of str
        The differentiated inputs, by name (``inputs[0]``, or the keyword), for
        the kinds other than ``"gradient"`` (whose parameters name themselves).
    outputs : tuple of str
        The function's outputs with their shapes (``out (4, 3)``), where known.
    entries : tuple of JacobianEntry
        Wrong entries named by output and input element (the worst few).
    """

    parameters: tuple[ParameterResult, ...]
    diagnosis: Diagnosis | None = None
    hazards: tuple[Hazard, ...] = ()
    mode: str = "full"
    method: str = "auto"
    n_evaluations: int = 0
    n_grad_evaluations: int = 0
    loss_value: float = float("nan")
    noise: float = float("nan")
    seed: int | None = None
    notes: tuple[str, ...] = ()
    directional: dict[str, Any] | None = None
    seconds: float = float("nan")
    evidence: CheckEvidence | None = None
    kind: str = "gradient"
    inputs: tuple[str, ...] = ()
    outputs: tuple[str, ...] = ()
    entries: tuple[JacobianEntry, ...] = ()

    @property
    def passed(self) -> bool:
        """True when every parameter passed and no hazard blocked or failed the check."""
        if any(h.blocking or h.fails_check for h in self.hazards):
            return False
        if self.directional is not None and not self.directional.get("passed", True):
            return False
        return all(p.passed for p in self.parameters)

    @property
    def status(self) -> str:
        """``"passed"``, ``"failed"`` (the gradient is wrong), ``"inconclusive"`` (no verdict
        possible) or ``"hazard"`` (the gradient is right, the code around it is not)."""
        if any(h.blocking for h in self.hazards):
            return "inconclusive"
        if self.directional is not None and not self.directional.get("passed", True):
            return "failed"
        if not all(p.passed for p in self.parameters):
            return "failed"
        return "hazard" if any(h.fails_check for h in self.hazards) else "passed"

    @property
    def failed_parameters(self) -> tuple[ParameterResult, ...]:
        return tuple(p for p in self.parameters if not p.passed)

    @property
    def n_failing_elements(self) -> int:
        """Elements that fail, over every parameter."""
        return sum(p.n_failed for p in self.parameters)

    def failing_elements(self, limit: int | None = FAILING_LIMIT) -> tuple[FailingElement, ...]:
        """Every failing element, parameter by parameter in index order; ``limit`` in all."""
        found: list[FailingElement] = []
        for parameter in self.failed_parameters:
            room = None if limit is None else limit - len(found)
            if room is not None and room <= 0:
                break
            found += parameter.failing_elements(room)
        return tuple(found)

    def __getitem__(self, name: str) -> ParameterResult:
        for parameter in self.parameters:
            if parameter.name == name:
                return parameter
        raise KeyError(
            f"no parameter named {name!r}; parameters are {[p.name for p in self.parameters]}"
        )

    def __bool__(self) -> bool:
        return self.passed

    def __str__(self) -> str:
        return self.text()

    def text(self, *, elements: int | None = FAILING_SHOWN) -> str:
        """The report ``str(result)`` is, listing ``elements`` failing elements per parameter.

        ``elements=None`` lists every failing element, up to :data:`FAILING_LIMIT` in all,
        and says so when the cap cuts the list (``gradcheck check --verbose``).  A parameter
        with a single failing element shows it on its own line only.
        """
        head = {
            "passed": "gradcheck: PASSED",
            "failed": "gradcheck: FAILED",
            "inconclusive": "gradcheck: INCONCLUSIVE",
            "hazard": "gradcheck: FAILED (hazard)",
        }[self.status]
        n = sum(p.size for p in self.parameters)
        lines = [
            f"{head} ({len(self.parameters)} parameter(s), {n} element(s), mode {self.mode}, "
            f"{self.n_evaluations} loss evaluations)"
        ]
        if self.kind != "gradient":
            lines.append(
                f"  {self.kind} of {', '.join(self.outputs) or 'f'} with respect to "
                f"{', '.join(self.inputs)}"
            )
        shown = (
            self.parameters
            if len(self.parameters) <= 12
            else (self.failed_parameters or self.parameters[:12])
        )
        listed = 0
        for p in shown:
            lines.append("  " + p.summary_line())
            if p.n_failed > 1:
                room = elements if elements is not None else max(FAILING_LIMIT - listed, 0)
                failing = p.failing_elements(room)
                listed += len(failing)
                lines += [f"      {e}" for e in failing]
                if len(failing) < p.n_failed:
                    lines.append("      ... " + _more_failing(p.n_failed, len(failing), elements))
        lines += [f"  wrong entry {entry}" for entry in self.entries]
        if self.directional is not None:
            lines.append("  directional: " + str(self.directional.get("summary", "")))
        if self.diagnosis is not None:
            lines.append(f"  likely cause: {self.diagnosis}")
        for hazard in self.hazards:
            lines.append(f"  hazard: {hazard}")
        if not self.passed and self.parameters:
            sources = sorted({p.tolerance_source for p in self.failed_parameters} or {""})
            if sources and sources[0]:
                lines.append("  tolerance: " + "; ".join(sources))
        return "\n".join(lines)

    def to_dict(self, *, arrays: bool = False) -> dict[str, Any]:
        """A JSON-safe dict; ``arrays=True`` adds every element's values.

        ``evidence`` is a summary of :attr:`evidence` (None when not gathered).
        ``failing_elements`` lists the failing elements (parameter, index, analytic,
        reference, error, tolerance), at most ``failing_elements_cap`` of the
        ``n_failing_elements``.
        """
        return {
            "passed": self.passed,
            "status": self.status,
            "kind": self.kind,
            "inputs": list(self.inputs),
            "outputs": list(self.outputs),
            "entries": [entry.to_dict() for entry in self.entries],
            "mode": self.mode,
            "method": self.method,
            "n_evaluations": self.n_evaluations,
            "n_grad_evaluations": self.n_grad_evaluations,
            "loss_value": json_float(self.loss_value),
            "noise": json_float(self.noise),
            "seed": self.seed,
            "seconds": json_float(self.seconds),
            "notes": list(self.notes),
            "parameters": [p.to_dict(arrays=arrays) for p in self.parameters],
            "diagnosis": self.diagnosis.to_dict() if self.diagnosis else None,
            "hazards": [h.to_dict() for h in self.hazards],
            "directional": _clean_directional(self.directional),
            "evidence": self.evidence.to_dict() if self.evidence is not None else None,
            "n_failing_elements": self.n_failing_elements,
            "failing_elements": [e.to_dict() for e in self.failing_elements()],
            "failing_elements_cap": FAILING_LIMIT,
        }


def _more_failing(n_failed: int, n_listed: int, shown: int | None) -> str:
    """The line after a cut list of failing elements: how many more, and where to see them all."""
    n_more = n_failed - n_listed
    if shown is None:
        return f"and {n_more} more (the list stops at {FAILING_LIMIT} failing elements in all)"
    return (
        f"and {n_more} more (all {n_failed} in gradcheck check --verbose, "
        "result.failing_elements() and the HTML report)"
    )


def _clean_directional(directional: dict[str, Any] | None) -> dict[str, Any] | None:
    if directional is None:
        return None
    out: dict[str, Any] = {}
    for key, value in directional.items():
        if isinstance(value, np.ndarray):
            out[key] = _json_array(value)
        elif isinstance(value, (float, np.floating)):
            out[key] = json_float(float(value))
        elif isinstance(value, np.generic):
            out[key] = value.item()
        else:
            out[key] = value
    return out
