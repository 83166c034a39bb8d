"""``args`` and value-and-gradient functions, bound so the scalar check sees ``loss(params)``.

SciPy's conventions, which users of ``scipy.optimize`` already write to:

* ``args``: ``loss(params, *args)`` and ``grad(params, *args)``, as
  ``scipy.optimize.check_grad(func, grad, x0, *args)`` and ``minimize(args=...)``;
* ``grad=True``: ``fun(params, *args)`` returns ``(value, gradient)``, as
  ``minimize(fun, x0, jac=True)``.

The wrappers are module-level classes, so a bound loss still pickles for
``workers=N`` (as long as the function and the arguments do).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable
from typing import Any

import numpy as np

from gradcheck.errors import InvalidLossError, ParameterTypeError

__all__ = ["WithArguments", "ValueAndGradient", "bind_arguments", "require_accepts"]


class WithArguments:
    """``function(params, *args)`` seen as a function of ``params`` alone (picklable)."""

    def __init__(self, function: Callable[..., Any], args: tuple[Any, ...]) -> None:
        self.function = function
        self.args = args

    def __call__(self, params: Any) -> Any:
        return self.function(params, *self.args)

    def __repr__(self) -> str:
        return f"{getattr(self.function, '__name__', self.function)!r} with {len(self.args)} args"


class ValueAndGradient:
    """``fun(params, *args) -> (value, gradient)`` split into a loss and a gradient.

    The loss part is what the references differentiate.  The gradient of the
    last real point the loss was evaluated at is kept, so the check's first
    gradient call (at the point the loss was just evaluated at) costs no extra
    call of ``fun``; any other point calls ``fun`` again.
    """

    def __init__(self, fun: Callable[..., Any], args: tuple[Any, ...] = ()) -> None:
        self.fun = fun
        self.args = args
        self._point: list[Any] | None = None
        self._gradient: Any = None

    def _pair(self, params: Any) -> tuple[Any, Any]:
        pair = self.fun(params, *self.args)
        if not isinstance(pair, (tuple, list)) or len(pair) != 2:
            # Raised from inside the loss's call: the check reports it as the loss's
            # error (UserFunctionError), this one as its cause.
            raise InvalidLossError(
                "loss: with grad=True the function must return (value, gradient), as "
                f"scipy.optimize.minimize(jac=True) expects; it returned {type(pair).__name__}"
                + (f" of length {len(pair)}" if isinstance(pair, (tuple, list)) else "")
            )
        return pair[0], pair[1]

    def value(self, params: Any) -> Any:
        """The value part (what the references differentiate); remembers the gradient."""
        value, gradient = self._pair(params)
        leaves = _leaves(params)
        if any(np.iscomplexobj(leaf) for leaf in leaves):
            self._point = None  # a complex-step point: its gradient is not the one checked
        else:
            self._point = [np.array(leaf, copy=True) for leaf in leaves]
            self._gradient = gradient
        return value

    def gradient(self, params: Any) -> Any:
        """The gradient part at ``params`` (from the last value call when at the same point)."""
        if self._point is not None:
            leaves = _leaves(params)
            if len(leaves) == len(self._point) and all(
                np.array_equal(a, b) for a, b in zip(leaves, self._point, strict=True)
            ):
                self._point = None  # once: later calls measure jitter, they must really call
                return self._gradient
        return self._pair(params)[1]

    def __getstate__(self) -> dict[str, Any]:
        # Workers get the function and arguments, not the cache.
        return {"fun": self.fun, "args": self.args, "_point": None, "_gradient": None}


def _leaves(params: Any) -> list[Any]:
    from gradcheck.problem.space import walk_leaves

    return [value for _, value in walk_leaves(params, "")]


def require_accepts(function: Any, role: str, leading: int, args: tuple[Any, ...]) -> None:
    """Raise ``ParameterTypeError`` naming ``args`` when ``function``'s signature rejects them.

    ``leading`` arguments come before ``*args`` (``params``; ``x, v`` for ``hessp``).
    Functions whose signature Python cannot read are not judged here: their own
    error, if any, is reported when they are called.
    """
    if not args:
        return
    try:
        signature = inspect.signature(function)
    except (TypeError, ValueError):
        return
    try:
        signature.bind(*([None] * leading), *args)
    except TypeError as exc:
        name = getattr(function, "__name__", role)
        raise ParameterTypeError(
            f"args: {role} {name}{signature} cannot take the {len(args)} extra argument(s) "
            f"given in args ({exc})"
        ) from None


def bind_arguments(
    loss: Callable[..., Any], grad: Callable[..., Any] | bool, args: tuple[Any, ...]
) -> tuple[Callable[[Any], Any], Callable[[Any], Any] | Any]:
    """``loss`` and ``grad`` as functions of the parameters alone.

    ``grad=True`` splits ``loss`` as a value-and-gradient function; ``args`` are
    appended to every call.  Anything else is returned for the caller to validate.
    """
    if grad is True:
        require_accepts(loss, "loss", 1, args)
        split = ValueAndGradient(loss, args)
        return split.value, split.gradient
    if isinstance(grad, (bool, np.bool_)):
        raise ParameterTypeError(
            "grad: expected a callable grad(params) or True (the loss returns (value, "
            "gradient), as scipy's jac=True), got False"
        )
    if not args:
        return loss, grad
    if callable(loss):
        require_accepts(loss, "loss", 1, args)
        loss = WithArguments(loss, args)
    if callable(grad):
        require_accepts(grad, "grad", 1, args)
        grad = WithArguments(grad, args)
    return loss, grad
