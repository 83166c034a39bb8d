"""Diagnosis of likely bugs from the pattern of a failed comparison."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
from numpy.typing import NDArray

from .objective import Objective
from .results import Diagnosis
from .tree import ParameterSpace

__all__ = ["Evidence", "diagnose"]


@dataclass(frozen=True, eq=False)
class Evidence:
    """Everything a diagnosis may look at: flat arrays over all elements, and the functions."""

    space: ParameterSpace
    analytic: NDArray[np.float64]
    reference: NDArray[np.float64]
    tolerance: NDArray[np.float64]
    checked: NDArray[np.bool_]
    failed: NDArray[np.bool_]
    objective: Objective
    grad: Callable[[Any], Any]


def diagnose(evidence: Evidence) -> Diagnosis:
    return Diagnosis("unknown", "no known bug pattern fits the errors")
