"""gradcheck: verify hand-written gradients against independent references.

The public API lives here; the modules behind it are implementation detail.
"""

from .check import assert_check, check
from .errors import (
    GradcheckError,
    GradientMismatchError,
    GradientStructureError,
    InvalidLossError,
    InvalidParameterError,
    ParameterTypeError,
    UserFunctionError,
)
from .results import CheckResult, Diagnosis, Hazard, ParameterResult

__version__ = "0.1.0"

__all__ = [
    "check",
    "assert_check",
    "CheckResult",
    "ParameterResult",
    "Diagnosis",
    "Hazard",
    "GradcheckError",
    "GradientMismatchError",
    "GradientStructureError",
    "InvalidLossError",
    "InvalidParameterError",
    "ParameterTypeError",
    "UserFunctionError",
]
