"""Exceptions raised by gradcheck.

Caller mistakes raise subclasses of :class:`GradcheckError` that are also the
matching built-in (``ValueError`` or ``TypeError``), so ``except ValueError``
keeps working.  A gradient that does not match is *data* (a
:class:`~gradcheck.CheckResult` with ``passed == False``); only the opt-in
``assert_*`` helpers raise :class:`GradientMismatchError`, an ``AssertionError``.
"""

from __future__ import annotations

from typing import Any

__all__ = [
    "GradcheckError",
    "InvalidParameterError",
    "ParameterTypeError",
    "GradientStructureError",
    "InvalidLossError",
    "UserFunctionError",
    "GradientMismatchError",
    "raise_unless_passed",
    "ExecutorError",
    "GradcheckWarning",
]


class GradcheckError(Exception):
    """Base class of every exception gradcheck raises on its own account."""


class InvalidParameterError(GradcheckError, ValueError):
    """An argument or a parameter array has an invalid value (wrong shape, NaN, ...)."""


class ParameterTypeError(GradcheckError, TypeError):
    """An argument or a parameter array has an invalid type (integer dtype, not an array, ...)."""


class GradientStructureError(GradcheckError, ValueError):
    """The user's gradient does not have the structure of the parameters.

    Raised when a parameter is missing from the gradient, an extra one appears,
    or a gradient array has a shape other than its parameter's.
    """


class InvalidLossError(GradcheckError, ValueError):
    """The user's loss returned something other than one finite real number."""


class UserFunctionError(GradcheckError, RuntimeError):
    """An exception escaped from the user's loss, gradient or update function.

    The original exception is chained as ``__cause__``; ``function`` names the
    role of the function that raised (``"loss"``, ``"grad"``, ``"step"``) and
    ``context`` says what gradcheck was doing at the time.
    """

    def __init__(self, function: str, context: str, original: BaseException) -> None:
        self.function = function
        self.context = context
        self.original = original
        super().__init__(
            f"the {function} function raised {type(original).__name__}: {original} "
            f"(while {context})"
        )


class GradientMismatchError(GradcheckError, AssertionError):
    """Raised by :func:`gradcheck.assert_check` when a gradient check fails.

    The message is the human report of the failed check; the full result is in
    ``result``.
    """

    def __init__(self, result: object) -> None:
        self.result = result
        super().__init__(str(result))


def raise_unless_passed(result: Any) -> Any:
    """``result`` when it passed; else :class:`GradientMismatchError` with its report.

    The one body of every ``assert_*`` helper (checks, update checks, derivative checks,
    the pytest fixture).
    """
    __tracebackhide__ = True  # pytest shows the caller's line, not this one
    if not result.passed:
        raise GradientMismatchError(result)
    return result


class ExecutorError(GradcheckError, RuntimeError):
    """The executor evaluating the loss lost a task: a worker died, or it shut down.

    Raised instead of a verdict when part of the loss evaluations never came back (a
    worker killed or out of memory, a loss that ended its process, a cluster gone):
    gradcheck does not guess the values that are missing.
    """


class GradcheckWarning(UserWarning):
    """A warning gradcheck issues: it did something other than asked, and says why.

    For example ``workers`` above the number of CPUs available is capped to it (the
    result's ``notes`` say so too).  Filter it like any warning:
    ``warnings.simplefilter("ignore", gradcheck.errors.GradcheckWarning)``.
    """
