"""gradcheck: verify hand-written gradients against independent references.

The public API lives here; the modules behind it are implementation detail.
Every name but the errors is imported on first use, so ``import gradcheck``
(and the pytest plugin, which pytest imports at start-up) stays cheap: not even
numpy until something is used, and never SciPy, matplotlib or jinja2 before a
feature needs them (``tests/test_import_cost.py``).

>>> import numpy as np, gradcheck
>>> loss = lambda w: float(np.sum(w ** 3))
>>> gradcheck.check(loss, lambda w: 3 * w ** 2, np.arange(3.0)).passed
True
"""

from __future__ import annotations

from importlib import import_module
from typing import TYPE_CHECKING, Any

from gradcheck.errors import (
    ExecutorError,
    GradcheckError,
    GradcheckWarning,
    GradientMismatchError,
    GradientStructureError,
    InvalidLossError,
    InvalidParameterError,
    ParameterTypeError,
    UserFunctionError,
)

__version__ = "0.1.0"

#: public name -> module that defines it (relative to the package)
_LAZY = {
    "check": "runner.check",
    "assert_check": "runner.check",
    "METHODS": "references.registry",
    "CheckOptions": "options",
    "CheckResult": "results",
    "CheckEvidence": "results",
    "with_evidence": "runner.evidence",
    "ParameterResult": "results",
    "Diagnosis": "results",
    "Hazard": "results",
    "check_update": "runner.update",
    "assert_update": "runner.update",
    "UpdateResult": "runner.update",
    "ParameterUpdate": "runner.update",
    "Network": "model.network",
    "random_data": "model.network",
    "demonstrate": "demo.seed",
    "SeedDemonstration": "demo.seed",
    "run_battery": "demo.battery",
    "BatteryResult": "demo.battery",
    "load_params": "targets",
    "save_params": "targets",
    "TargetError": "targets",
    "write_check_report": "report",
    "check_vjp": "runner.derivatives.vjp",
    "assert_vjp": "runner.derivatives.vjp",
    "check_jvp": "runner.derivatives.jacobian",
    "assert_jvp": "runner.derivatives.jacobian",
    "check_jacobian": "runner.derivatives.jacobian",
    "assert_jacobian": "runner.derivatives.jacobian",
    "check_hessian": "runner.derivatives.second_order",
    "assert_hessian": "runner.derivatives.second_order",
    "check_hvp": "runner.derivatives.second_order",
    "assert_hvp": "runner.derivatives.second_order",
    "JacobianEntry": "results",
}

__all__ = [
    *_LAZY,
    "ExecutorError",
    "GradcheckError",
    "GradcheckWarning",
    "GradientMismatchError",
    "GradientStructureError",
    "InvalidLossError",
    "InvalidParameterError",
    "ParameterTypeError",
    "UserFunctionError",
    "__version__",
]


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'gradcheck' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))


if TYPE_CHECKING:  # pragma: no cover - for type checkers and IDEs
    from gradcheck.demo.battery import BatteryResult, run_battery
    from gradcheck.demo.seed import SeedDemonstration, demonstrate
    from gradcheck.model.network import Network, random_data
    from gradcheck.options import CheckOptions
    from gradcheck.references.registry import METHODS
    from gradcheck.report import write_check_report
    from gradcheck.results import (
        CheckEvidence,
        CheckResult,
        Diagnosis,
        Hazard,
        JacobianEntry,
        ParameterResult,
    )
    from gradcheck.runner.check import assert_check, check
    from gradcheck.runner.derivatives.jacobian import (
        assert_jacobian,
        assert_jvp,
        check_jacobian,
        check_jvp,
    )
    from gradcheck.runner.derivatives.second_order import (
        assert_hessian,
        assert_hvp,
        check_hessian,
        check_hvp,
    )
    from gradcheck.runner.derivatives.vjp import assert_vjp, check_vjp
    from gradcheck.runner.evidence import with_evidence
    from gradcheck.runner.update import ParameterUpdate, UpdateResult, assert_update, check_update
    from gradcheck.targets import TargetError, load_params, save_params
