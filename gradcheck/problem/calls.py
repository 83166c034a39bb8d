"""Calling the user's functions: one place that turns their exceptions into gradcheck's.

Every call into user code (the loss, the gradient, a step, a backward pass) goes
through :func:`call_user`, so an exception raised there reaches the caller as a
:class:`~gradcheck.errors.UserFunctionError` that says which function raised and
what gradcheck was doing at the time, with the original exception chained.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from numpy.typing import NDArray

from gradcheck.errors import ParameterTypeError, UserFunctionError
from gradcheck.problem.space import ParameterSpace

__all__ = ["require_callable", "call_user", "call_gradient"]


def require_callable(function: Any, role: str, signature: str) -> None:
    """Raise ``ParameterTypeError`` naming ``role`` unless ``function`` is callable."""
    if not callable(function):
        raise ParameterTypeError(
            f"{role}: expected a callable {signature}, got {type(function).__name__}"
        )


def call_user(function: Callable[..., Any], role: str, context: str, *args: Any) -> Any:
    """Call a user's function, re-raising any exception with gradcheck's context."""
    try:
        return function(*args)
    except UserFunctionError:
        raise
    except Exception as exc:  # noqa: BLE001 - reported with context, never swallowed
        raise UserFunctionError(role, context, exc) from exc


def call_gradient(grad: Callable[[Any], Any], space: ParameterSpace, context: str) -> NDArray[Any]:
    """``grad`` at the space's current parameters, checked against its structure, flat."""
    return space.flatten_like(call_user(grad, "grad", context, space.tree))
