"""A constant factor between two gradients: fitted, tested against the tolerance, named.

The diagnosis of a failed check (:mod:`gradcheck.diagnosis.patterns`) and the classification
of a training step (:mod:`gradcheck.runner.update`) ask the same question: is
``analytic = c * reference`` for one constant ``c``, and which ``c`` is it?  Both answer it here,
with one fit, one acceptance test and one set of names:

* :func:`fit_factor`: the least-squares ``c``, snapped to a simple fraction when that fits as
  well, and whether every element fits (:func:`within_tolerance`).
* :func:`simple_fraction`: ``2``, ``1/2``, ``1/n``, ``3/4``... when a number is one.
* :func:`factor_candidates`, :func:`describe_factor`: the factor in plain words, with every
  common cause that fits it (1/N, 1/2 of a square, 1/sqrt(d)...), none asserted.

Notes
-----
The acceptance test allows ``|analytic - c * reference| <= tolerance * max(1, |c|)``: the
tolerance bounds the reference's error, which ``c`` scales, plus the analytic value's own
rounding, which it does not; ``max(1, |c|)`` covers both without a second bound.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from fractions import Fraction

import numpy as np
from numpy.typing import NDArray

from gradcheck.verdict.tolerance import passes

__all__ = [
    "FactorFit",
    "fit_factor",
    "within_tolerance",
    "simple_fraction",
    "nearest_fraction",
    "describe_factor",
    "factor_candidates",
    "MAX_TERM",
    "FRACTION_RTOL",
    "MIN_INFORMATIVE",
    "NEAR_ONE",
]

#: Largest numerator and denominator of a "simple" fraction: bugs give 2, 1/2, n or 1/n for a
#: batch or output count, and a check's batches are small; past 64 a fraction explains nothing.
MAX_TERM = 64

#: A bare number is named a fraction only when it is one to 8 digits, closer than a reference
#: measures: a fitted factor is snapped by the tolerance first, so this only reads exact values.
FRACTION_RTOL = 1e-8

#: A constant fitted to one element always fits it: a factor is evidence of a cause only when at
#: least two elements whose reference stands out of its tolerance (``|r| > tol``) constrain it.
MIN_INFORMATIVE = 2

#: Within 1% of 1 a factor is no formula's constant (those are 2, 1/2, n...): a slip such as
#: 1.0001, or rounding in a saturated derivative.
NEAR_ONE = 1e-2


@dataclass(frozen=True)
class FactorFit:
    """The constant ``c`` of ``analytic = c * reference``, as fitted by :func:`fit_factor`.

    Attributes
    ----------
    factor : float
        ``c``: a simple fraction (exactly, e.g. ``0.5``) when that fits as well as the
        least-squares value, the least-squares value otherwise.
    fits : bool
        Every element satisfies :func:`within_tolerance` with ``factor``.
    informative : int
        How many elements constrain ``c``: their reference stands out of the tolerance.
    """

    factor: float
    fits: bool
    informative: int

    @property
    def fraction(self) -> Fraction | None:
        """``factor`` as a simple fraction (see :func:`simple_fraction`), or None."""
        return simple_fraction(self.factor)


def within_tolerance(
    analytic: NDArray[np.float64],
    reference: NDArray[np.float64],
    tolerance: NDArray[np.float64],
    factor: float = 1.0,
) -> bool:
    """Whether ``analytic = factor * reference`` holds within tolerance at every element.

    Parameters
    ----------
    analytic, reference, tolerance : ndarray
        Same shape; the elements to test (unchecked ones left out by the caller).
    factor : float, optional
        ``c``; the tolerance is widened by ``max(1, |c|)`` (see the module notes).

    Returns
    -------
    bool
        True when ``|analytic - c reference| <= tolerance max(1, |c|)`` everywhere (the pass
        rule, :func:`gradcheck.verdict.tolerance.passes`); a NaN anywhere fails.
    """
    room = tolerance * max(1.0, abs(factor))
    return bool(np.all(passes(analytic, factor * reference, room)))


def nearest_fraction(value: float) -> Fraction | None:
    """The fraction nearest ``value`` with a denominator up to :data:`MAX_TERM`.

    None when that fraction's numerator exceeds :data:`MAX_TERM` (or ``value`` is not finite):
    then no simple fraction is near.  The sign is ``value``'s.
    """
    if not math.isfinite(value):
        return None
    fraction = Fraction(abs(value)).limit_denominator(MAX_TERM)
    if fraction.numerator > MAX_TERM:
        return None
    return fraction if value >= 0 else -fraction


def simple_fraction(value: float) -> Fraction | None:
    """``value`` as a simple fraction (terms up to :data:`MAX_TERM`), or None if it is none.

    Examples
    --------
    >>> simple_fraction(0.25), simple_fraction(-3.0), simple_fraction(0.37)
    (Fraction(1, 4), Fraction(-3, 1), None)
    """
    fraction = nearest_fraction(value)
    if fraction is None or abs(float(fraction) - value) > FRACTION_RTOL * abs(value):
        return None
    return fraction


def fit_factor(
    analytic: NDArray[np.float64],
    reference: NDArray[np.float64],
    tolerance: NDArray[np.float64],
    *,
    min_informative: int = MIN_INFORMATIVE,
) -> FactorFit | None:
    """Fit ``analytic = c * reference`` by least squares and test it against the tolerance.

    Parameters
    ----------
    analytic, reference, tolerance : ndarray
        Flat, over the checked elements.  Elements with a non-finite reference carry no
        information and are left out; a non-finite analytic value makes the fit fail.
    min_informative : int, optional, keyword-only
        How many elements must constrain ``c`` (``|reference| > tolerance``).  The default,
        :data:`MIN_INFORMATIVE`, is what naming a *cause* needs; describing a step on a
        one-element parameter needs 1 (see :mod:`gradcheck.runner.update`).

    Returns
    -------
    FactorFit or None
        None when fewer than ``min_informative`` elements constrain ``c``.  Otherwise
        ``c = <analytic, reference> / <reference, reference>``, replaced by the nearest simple
        fraction when that fits within tolerance too: a fraction that fits is the better
        explanation, since the reference may be good to only a few digits.

    Examples
    --------
    >>> import numpy as np
    >>> r = np.array([1.0, -2.0, 3.0])
    >>> fit_factor(0.5 * r + 1e-9, r, np.full(3, 1e-6))
    FactorFit(factor=0.5, fits=True, informative=3)
    """
    known = np.isfinite(reference)
    a, r, tol = analytic[known], reference[known], tolerance[known]
    informative = int(np.sum(np.abs(r) > tol))
    denominator = float(np.dot(r, r))
    if informative < max(1, min_informative) or denominator == 0:
        return None
    c = float(np.dot(a, r) / denominator)
    if not math.isfinite(c):
        return FactorFit(c, False, informative)
    fraction = nearest_fraction(c)
    if fraction is not None and fraction != 0 and within_tolerance(a, r, tol, float(fraction)):
        return FactorFit(float(fraction), True, informative)
    return FactorFit(c, within_tolerance(a, r, tol, c), informative)


def factor_candidates(
    fraction: Fraction, n_samples: int | None = None, dimensions: tuple[int, ...] = ()
) -> list[str]:
    """Every common cause a simple, positive factor fits, in words; empty when none does.

    A factor is a number: which formula's constant it is cannot be told from the gradients.
    So every cause that gives this number is listed, none is asserted.

    Parameters
    ----------
    fraction : Fraction
        ``|c|`` in ``analytic = c * reference``.
    n_samples : int, optional
        The batch size, when known (``layer_inputs`` tell it).
    dimensions : tuple of int, optional
        Sizes of the parameters' axes: the ``d`` of a ``1/sqrt(d)`` or the count of a mean.

    Examples
    --------
    >>> from fractions import Fraction
    >>> for cause in factor_candidates(Fraction(1, 2), n_samples=2):
    ...     print(cause)
    1/N for the batch of N = 2: averaged where the loss sums
    a missing 2: the derivative of a square written without its 2, or an extra 1/2
    """
    found: list[str] = []
    if n_samples is not None and n_samples > 1:
        if fraction == n_samples:
            found.append(f"N for the batch of N = {n_samples}: summed where the loss averages")
        elif fraction == Fraction(1, n_samples):
            found.append(f"1/N for the batch of N = {n_samples}: averaged where the loss sums")
    if fraction == 2:
        found.append(
            "an extra 2: a square differentiated where the loss has 1/2 of it (the 1/2 of "
            "1/2 (a - y)**2 left out)"
        )
    elif fraction == Fraction(1, 2):
        found.append(
            "a missing 2: the derivative of a square written without its 2, or an extra 1/2"
        )
    for d in dimensions:
        if fraction * fraction == d:
            found.append(f"a missing 1/sqrt(d) with d = {d} (a scaled dot product?)")
        elif fraction * fraction == Fraction(1, d):
            found.append(f"an extra 1/sqrt(d) with d = {d} (applied twice?)")
    count = fraction.numerator if fraction.denominator == 1 else fraction.denominator
    if fraction.numerator == 1 or fraction.denominator == 1:
        if count > 1 and count != n_samples:
            axis = f"an axis of size {count}" if count in dimensions else "samples? outputs?"
            if fraction.denominator == 1:
                found.append(f"a sum over {count} items where the loss takes their mean ({axis})")
            else:
                found.append(f"a mean over {count} items where the loss sums them ({axis})")
    return found


def describe_factor(
    factor: float, n_samples: int | None = None, dimensions: tuple[int, ...] = ()
) -> str:
    """Plain words for a constant factor between analytic and reference gradients.

    Parameters
    ----------
    factor : float
        ``c`` in ``analytic = c * reference``.
    n_samples : int, optional
        The batch size, when known: a factor ``N`` or ``1/N`` is then a candidate.
    dimensions : tuple of int, optional
        Sizes of the parameters' axes (see :func:`factor_candidates`).

    Returns
    -------
    str
        The factor, then the causes that fit it (:func:`factor_candidates`), listed as
        candidates: one number has several explanations, and naming one would be a guess.

    Examples
    --------
    >>> describe_factor(0.25, n_samples=4)
    '1/4 of the true gradient; causes that fit: 1/N for the batch of N = 4: averaged where the \
loss sums'
    >>> describe_factor(2 / 3)
    '2/3 times the true gradient (no common cause of this factor known: a hard-coded constant?)'
    """
    sign = "" if factor > 0 else "the sign flipped and "
    c = abs(factor)
    fraction = simple_fraction(c)
    if fraction is None:
        return sign + _describe_number(c)
    head = _fraction_words(fraction)
    candidates = factor_candidates(fraction, n_samples, dimensions)
    if candidates:
        return sign + f"{head}; causes that fit: " + "; or ".join(candidates)
    return sign + f"{head} (no common cause of this factor known: a hard-coded constant?)"


def _fraction_words(fraction: Fraction) -> str:
    if fraction == 2:
        return "twice the true gradient"
    if fraction == Fraction(1, 2):
        return "half the true gradient"
    if fraction.numerator == 1:
        return f"1/{fraction.denominator} of the true gradient"
    return f"{fraction} times the true gradient"


def _describe_number(c: float) -> str:
    """Words for a factor that is no simple fraction."""
    if abs(c - 1) < NEAR_ONE:
        return (
            f"{c:.8g} times the true gradient: not a simple fraction, slightly off "
            "everywhere (a constant such as 1.0001? or, when every gradient is tiny, "
            "a derivative formula like a * (1 - a) or 1 - a**2 evaluated where a "
            "rounds near 1: saturation)"
        )
    return (
        f"{c:.8g} times the true gradient: not a simple fraction (a hard-coded "
        "constant? a learning rate or regularisation strength multiplying the whole gradient? "
        "gradient-norm clipping?)"
    )
