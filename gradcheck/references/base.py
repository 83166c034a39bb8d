"""What every reference returns: an estimate of the gradient with its own error estimate."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np
from numpy.typing import NDArray

__all__ = ["Estimate", "concatenate"]


@dataclass(frozen=True, eq=False)
class Estimate:
    """A reference estimate of some gradient elements.

    Attributes
    ----------
    indices : ndarray of int
        Flat indices of the elements estimated.
    derivative : ndarray
        The estimate of dL/dx at each of those elements.
    error : ndarray
        The reference's own estimate of its absolute error there (truncation
        plus roundoff), never negative.
    step : ndarray
        The step used for each element (``nan`` where a method has none).
    n_evaluations : int
        Loss evaluations the estimate cost.
    method : str
        Registry name of the method.
    notes : dict
        Method-specific extras (e.g. one-sided slopes at kinks).
    """

    indices: NDArray[np.intp]
    derivative: NDArray[np.float64]
    error: NDArray[np.float64]
    step: NDArray[np.float64]
    n_evaluations: int
    method: str
    notes: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        n = len(self.indices)
        for name in ("derivative", "error", "step"):
            if np.shape(getattr(self, name)) != (n,):
                raise ValueError(f"Estimate.{name} must have shape ({n},)")


def concatenate(parts: list[Estimate]) -> Estimate:
    """One estimate from estimates of consecutive parts of the same elements by one method."""
    if len(parts) == 1:
        return parts[0]
    return Estimate(
        np.concatenate([p.indices for p in parts]).astype(np.intp),
        np.concatenate([p.derivative for p in parts]),
        np.concatenate([p.error for p in parts]),
        np.concatenate([p.step for p in parts]),
        sum(p.n_evaluations for p in parts),
        parts[0].method,
    )
