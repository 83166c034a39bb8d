"""The options of a check, defined once: :func:`gradcheck.check`, :func:`gradcheck.check_update`,
the command line and the pytest plugin all read them from here.

Two layers:

* :class:`CheckOptions`, the keyword options of :func:`gradcheck.check` with their
  defaults, and :meth:`CheckOptions.from_keywords`, the one validation of them:
  each value is checked by its validator in :data:`VALIDATORS`, which raises
  gradcheck's own :class:`~gradcheck.errors.ParameterTypeError` or
  :class:`~gradcheck.errors.InvalidParameterError` naming the option;
* :class:`Option`, the same options as text: how ``--method`` or the ini key
  ``gradcheck_method`` is turned into a Python value (then validated by the same
  validator) and its help.  :mod:`gradcheck.cli` turns them into ``--method``,
  ``--atol``...; :mod:`gradcheck.plugin` into ``--gradcheck-method``... and ini keys.

This module imports nothing heavy: the reference registry is imported only when a
method name is validated, so the plugin stays cheap to load.
"""

from __future__ import annotations

import math
import numbers
import sys
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, fields
from typing import Any

from gradcheck.errors import InvalidParameterError, ParameterTypeError

__all__ = [
    "MODES",
    "DEFAULT_BUDGET_SECONDS",
    "Budget",
    "CheckOptions",
    "VALIDATORS",
    "Option",
    "OPTIONS",
    "CHECK_OPTIONS",
    "method_choices",
    "parse_option",
    "check_kwargs",
    "describe",
]

#: Check modes: ``auto`` picks one of the others from the problem's size and the budget.
MODES = ("auto", "full", "sampled", "directional")
#: The time ``mode="auto"`` lets a full elementwise check take before it probes instead.
DEFAULT_BUDGET_SECONDS = 5.0


def method_choices() -> tuple[str, ...]:
    """The reference methods :func:`gradcheck.check` accepts (the registry, imported lazily)."""
    from gradcheck.references.registry import METHODS

    return tuple(METHODS)


@dataclass(frozen=True)
class Budget:
    """What a check may spend: seconds or loss evaluations (exactly one is set)."""

    seconds: float | None = None
    evaluations: int | None = None

    def evaluations_for(self, seconds_per_evaluation: float) -> float:
        """The budget in loss evaluations, at the measured cost of one."""
        if self.evaluations is not None:
            return float(self.evaluations)
        assert self.seconds is not None
        return self.seconds / max(seconds_per_evaluation, 1e-9)

    def __str__(self) -> str:
        if self.evaluations is not None:
            return f"{self.evaluations} loss evaluations"
        return f"{self.seconds:g} s"


# -- validators: one per option, ``validate(value, name) -> clean value`` ---------------------


def _numpy_type(value: Any, name: str) -> bool:
    """Whether ``value`` is an instance of ``numpy.<name>``, without importing numpy.

    A value can only be a numpy object if numpy is already loaded, so this module (read
    by the pytest plugin at start-up) never imports it.
    """
    numpy = sys.modules.get("numpy")
    return numpy is not None and isinstance(value, getattr(numpy, name))


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool) or _numpy_type(value, "bool_")


def _is_number(value: Any) -> bool:
    return not _is_bool(value) and isinstance(value, numbers.Real)


def _is_int(value: Any) -> bool:
    return not _is_bool(value) and isinstance(value, numbers.Integral)


def validate_method(value: Any, name: str = "method") -> str:
    """One of :func:`method_choices`."""
    choices = method_choices()
    if not isinstance(value, str):
        raise ParameterTypeError(
            f"{name}: expected one of {', '.join(choices)}, got {type(value).__name__}"
        )
    if value not in choices:
        raise InvalidParameterError(f"{name}: {value!r} is not one of {', '.join(choices)}")
    return value


def validate_tolerance(value: Any, name: str) -> float | None:
    """A finite number >= 0, or None."""
    if value is None:
        return None
    if not _is_number(value):
        raise ParameterTypeError(f"{name}: expected a number or None, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise InvalidParameterError(f"{name}: must be finite and >= 0, got {value!r}")
    return float(value)


def validate_count(value: Any, name: str, *, minimum: int = 1) -> int | None:
    """An int >= ``minimum``, or None."""
    if value is None:
        return None
    if not _is_int(value):
        raise ParameterTypeError(f"{name}: expected an int or None, got {type(value).__name__}")
    if value < minimum:
        raise InvalidParameterError(f"{name}: must be >= {minimum}, got {value}")
    return int(value)


def validate_workers(value: Any, name: str = "workers") -> int | None:
    """A positive int, or None (evaluations in this process)."""
    if value is None:
        return None
    if not _is_int(value):
        raise ParameterTypeError(f"{name}: expected a positive int, got {value!r}")
    if value < 1:
        raise InvalidParameterError(f"{name}: must be >= 1, got {value}")
    return int(value)


def validate_rng(value: Any, name: str = "rng") -> Any:
    """A :class:`numpy.random.Generator`, an int seed >= 0, or None."""
    numpy = sys.modules.get("numpy")
    if value is None or (numpy is not None and isinstance(value, numpy.random.Generator)):
        return value
    if _is_int(value):
        if value < 0:
            raise InvalidParameterError(f"{name}: a seed must be >= 0, got {value}")
        return int(value)
    raise ParameterTypeError(
        f"{name}: expected a numpy.random.Generator, an int seed or None, got "
        f"{type(value).__name__}"
    )


def validate_mode(value: Any, name: str = "mode") -> str:
    """One of :data:`MODES`."""
    if not isinstance(value, str):
        raise ParameterTypeError(
            f"{name}: expected one of {', '.join(MODES)}, got {type(value).__name__}"
        )
    if value not in MODES:
        raise InvalidParameterError(f"{name}: {value!r} is not one of {', '.join(MODES)}")
    return value


def validate_budget(value: Any, name: str = "budget") -> Budget:
    """A :class:`Budget` from ``None`` (the default), seconds (a float) or evaluations (an int).

    Raises
    ------
    ParameterTypeError
        ``budget`` is not a number (or is a bool).
    InvalidParameterError
        ``budget`` is not positive and finite.
    """
    if value is None:
        return Budget(seconds=DEFAULT_BUDGET_SECONDS)
    if isinstance(value, Budget):
        return value
    if not _is_number(value):
        raise ParameterTypeError(
            f"{name}: expected seconds (a float) or loss evaluations (an int), got "
            f"{type(value).__name__}"
        )
    try:
        finite = math.isfinite(value)
    except OverflowError:  # an int too large for a float
        finite = False
    if not finite or value <= 0:
        raise InvalidParameterError(f"{name}: must be positive and finite, got {value!r}")
    if _is_int(value):
        return Budget(evaluations=int(value))
    return Budget(seconds=float(value))


def validate_flag(value: Any, name: str) -> bool:
    """True or False."""
    if not _is_bool(value):
        raise ParameterTypeError(f"{name}: expected True or False, got {value!r}")
    return bool(value)


def validate_progress(value: Any, name: str = "progress") -> bool | None:
    """True, False or None (a progress bar on a terminal only)."""
    if value is None:
        return None
    if not _is_bool(value):
        raise ParameterTypeError(f"{name}: expected True, False or None, got {value!r}")
    return bool(value)


def validate_executor(value: Any, name: str = "executor") -> Any:
    """None or a :class:`concurrent.futures.Executor` (or anything with ``submit``, e.g. dask's)."""
    from concurrent.futures import Executor

    if value is None or isinstance(value, Executor) or callable(getattr(value, "submit", None)):
        return value
    raise ParameterTypeError(
        f"{name}: expected a concurrent.futures.Executor (e.g. ProcessPoolExecutor, or a dask "
        f"client's get_executor()), got {type(value).__name__}"
    )


def validate_layer_inputs(value: Any, name: str = "layer_inputs") -> Any:
    """None or a mapping; its names and shapes are checked against the parameters later."""
    if value is not None and not isinstance(value, Mapping):
        raise ParameterTypeError(
            f"{name}: expected a mapping {{parameter name: a_prev}}, got {type(value).__name__}"
        )
    return value


def validate_args(value: Any, name: str = "args") -> tuple[Any, ...]:
    """Extra positional arguments of the user's functions, as SciPy takes them.

    A tuple is used as given; any other value is one argument (``args=X`` is
    ``args=(X,)``), as ``scipy.optimize.minimize`` does.
    """
    if value is None:
        return ()
    return value if isinstance(value, tuple) else (value,)


def _truthy(value: Any, name: str) -> bool:
    return bool(value)


#: The validator of every :class:`CheckOptions` field.
VALIDATORS: dict[str, Callable[[Any, str], Any]] = {
    "method": validate_method,
    "atol": validate_tolerance,
    "rtol": validate_tolerance,
    "elements": validate_count,
    "rng": validate_rng,
    "diagnose": _truthy,
    "mode": validate_mode,
    "vectorized": validate_flag,
    "executor": validate_executor,
    "workers": validate_workers,
    "budget": validate_budget,
    "progress": validate_progress,
    "layer_inputs": validate_layer_inputs,
    "args": validate_args,
}


@dataclass(frozen=True)
class CheckOptions:
    """The keyword options of :func:`gradcheck.check`, validated (see its docstring).

    Attributes
    ----------
    method : str
        The reference (``auto``, ``complex``, ``central``, ``richardson``,
        ``approx_fprime``, ``differentiate``).
    atol, rtol : float or None
        Replace the derived tolerance with ``atol + rtol * |reference|``.
    elements : int or None
        Elements checked per parameter (sampled mode).
    rng : Generator, int or None
        Randomness of the check.
    diagnose : bool
        Name the likely bug of a failed check.
    mode : str
        ``auto``, ``full``, ``sampled`` or ``directional``.
    vectorized : bool
        The loss takes a stack of flat parameter vectors.
    executor : Executor or None
        Where batches of evaluations run.
    workers : int or None
        Worker processes made by the check.
    budget : Budget
        What ``mode="auto"`` may spend on a full check.
    progress : bool or None
        Progress bar: on a terminal (None), always, never.
    layer_inputs : mapping or None
        Each weight's layer input ``a_prev``, for the diagnosis.
    args : tuple
        Extra positional arguments: ``loss(params, *args)``, ``grad(params, *args)``.
    """

    method: str = "auto"
    atol: float | None = None
    rtol: float | None = None
    elements: int | None = None
    rng: Any = None
    diagnose: bool = True
    mode: str = "auto"
    vectorized: bool = False
    executor: Any = None
    workers: int | None = None
    budget: Budget = Budget(seconds=DEFAULT_BUDGET_SECONDS)
    progress: bool | None = None
    layer_inputs: Any = None
    args: tuple[Any, ...] = ()

    @classmethod
    def from_keywords(cls, keywords: Mapping[str, Any], *, function: str = "check") -> CheckOptions:
        """Validate the keywords a user passed to ``function``; the one validation of options.

        Raises
        ------
        ParameterTypeError
            An unknown keyword, or a value of the wrong type.
        InvalidParameterError
            A value out of range, or options that contradict each other.
        """
        known = [f.name for f in fields(cls)]
        for name in keywords:
            if name not in VALIDATORS:
                raise ParameterTypeError(
                    f"{function}() got an unexpected keyword argument {name!r} "
                    f"(options are {', '.join(known)})"
                )
        clean = {name: VALIDATORS[name](value, name) for name, value in keywords.items()}
        options = cls(**clean)
        if options.executor is not None and (options.workers or 1) > 1:
            raise InvalidParameterError("workers: give either workers or executor, not both")
        return options

    @property
    def user_tolerance(self) -> bool:
        """True when ``atol``/``rtol`` replace the derived tolerance."""
        return self.atol is not None or self.rtol is not None

    def keywords(self) -> dict[str, Any]:
        """The options as keywords of :func:`gradcheck.check` (to forward them)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


# -- the same options as text: command line and pytest ---------------------------------------


def _number_from_text(value: Any, name: str) -> Any:
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            raise InvalidParameterError(f"{name}: expected a number, got {value!r}") from None
    return value


def _int_from_text(value: Any, name: str) -> Any:
    if isinstance(value, str):
        try:
            return int(value)
        except ValueError:
            raise InvalidParameterError(f"{name}: expected an integer, got {value!r}") from None
    return value


def _budget_from_text(value: Any, name: str) -> Any:
    """Seconds (``2.5``, ``2.5s``) or a number of loss evaluations (``20000``)."""
    if not isinstance(value, str):
        return value
    text = value.strip().lower()
    try:
        return float(text.rstrip("s")) if ("." in text or text.endswith("s")) else int(text)
    except ValueError:
        raise InvalidParameterError(
            f"{name}: expected seconds (e.g. 2.5) or evaluations (e.g. 20000), got {value!r}"
        ) from None


def _as_given(value: Any, name: str) -> Any:
    return value


def _path(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ParameterTypeError(f"{name}: expected a path, got {value!r}")
    return value


def _flag_from_text(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off", ""):
        return False
    raise InvalidParameterError(f"{name}: expected true or false, got {value!r}")


@dataclass(frozen=True)
class Option:
    """One option as text: a command-line flag, a pytest flag and ini key, a marker keyword.

    Attributes
    ----------
    name : str
        The option's name: ``--NAME`` on the command line, ``--gradcheck-NAME``
        and ini ``gradcheck_NAME`` in pytest, a keyword of the marker.
    from_text : callable
        ``from_text(value, label) -> value``: turns text (or passes a Python value
        through) before the field's validator in :data:`VALIDATORS` checks it.
    help : str
        One sentence for ``--help``.
    default : object
        The value when the option is not given.
    metavar : str or None
        Placeholder in help; None for a flag.
    check_kwarg : str or None
        The :class:`CheckOptions` field (keyword of :func:`gradcheck.check`) it feeds.
    """

    name: str
    from_text: Callable[[Any, str], Any]
    help: str
    default: Any = None
    metavar: str | None = "VALUE"
    check_kwarg: str | None = None

    def parse(self, value: Any, label: str) -> Any:
        """``value`` (text or a Python value) converted and validated."""
        value = self.from_text(value, label)
        if self.check_kwarg is None:
            return value
        validated = VALIDATORS[self.check_kwarg](value, label)
        # Keep the user's spelling of a budget (2.5 s or 20000 evaluations) for display.
        return value if isinstance(validated, Budget) else validated

    @property
    def is_flag(self) -> bool:
        return self.metavar is None

    @property
    def cli_flag(self) -> str:
        return "--" + self.name

    @property
    def pytest_flag(self) -> str:
        return "--gradcheck-" + self.name

    @property
    def ini_name(self) -> str:
        return "gradcheck_" + self.name.replace("-", "_")

    @property
    def dest(self) -> str:
        return self.name.replace("-", "_")


#: Every option, in help order.
OPTIONS: dict[str, Option] = {
    option.name: option
    for option in (
        Option(
            "method",
            _as_given,
            "reference derivative: auto (complex step when the loss supports it, else central "
            "differences, Richardson refinement of doubtful elements) or one reference: "
            "complex, central, richardson, approx_fprime (SciPy), differentiate (SciPy)",
            default="auto",
            metavar="METHOD",
            check_kwarg="method",
        ),
        Option(
            "atol",
            _number_from_text,
            "absolute tolerance; with --rtol replaces the derived tolerance by "
            "atol + rtol * |reference|",
            metavar="ATOL",
            check_kwarg="atol",
        ),
        Option(
            "rtol",
            _number_from_text,
            "relative tolerance (see --atol)",
            metavar="RTOL",
            check_kwarg="rtol",
        ),
        Option(
            "seed",
            _int_from_text,
            "seed of the random draws (noise probe, sampled elements); printed with every "
            "result so a check can be reproduced",
            default=0,
            metavar="SEED",
            check_kwarg="rng",
        ),
        Option(
            "elements",
            _int_from_text,
            "check only this many random elements of each parameter (default: all)",
            metavar="N",
            check_kwarg="elements",
        ),
        Option(
            "mode",
            _as_given,
            "full (every element), sampled (--elements per parameter), directional (random "
            "probes with a stated miss probability, then bisection to the wrong elements) or "
            "auto (full when it fits the budget, else directional)",
            default="auto",
            metavar="MODE",
            check_kwarg="mode",
        ),
        Option(
            "budget",
            _budget_from_text,
            "what auto mode may spend on a full check: seconds (2.5) or loss evaluations "
            "(20000); default 5 seconds",
            metavar="BUDGET",
            check_kwarg="budget",
        ),
        Option(
            "workers",
            _int_from_text,
            "evaluate in this many worker processes (the loss must be a module-level "
            "function); 1 by default",
            metavar="N",
            check_kwarg="workers",
        ),
        Option(
            "html",
            _path,
            "write a self-contained HTML report to this path (a directory in pytest)",
            metavar="PATH",
        ),
        Option(
            "quiet", _flag_from_text, "print only the verdict line", default=False, metavar=None
        ),
    )
}

#: The options that are keywords of :func:`gradcheck.check`.
CHECK_OPTIONS: tuple[str, ...] = tuple(n for n, o in OPTIONS.items() if o.check_kwarg)


def parse_option(name: str, value: Any, *, label: str | None = None) -> Any:
    """Validate ``value`` for the option ``name``; ``None`` passes through as "not given".

    Raises
    ------
    InvalidParameterError
        Unknown option name, or a value out of range.
    ParameterTypeError
        A value of the wrong type.
    """
    if name not in OPTIONS:
        raise InvalidParameterError(
            f"{label or name}: unknown gradcheck option {name!r} (options are {', '.join(OPTIONS)})"
        )
    if value is None:
        return None
    return OPTIONS[name].parse(value, label or name)


def check_kwargs(values: Mapping[str, Any]) -> dict[str, Any]:
    """The keywords of :func:`gradcheck.check` from option values (``None`` = not given)."""
    kwargs: dict[str, Any] = {}
    for name in CHECK_OPTIONS:
        value = values.get(name)
        if value is not None:
            kwarg = OPTIONS[name].check_kwarg
            assert kwarg is not None
            kwargs[kwarg] = value
    return kwargs


def describe(values: Mapping[str, Any], names: Iterable[str] | None = None) -> str:
    """``method=auto, tolerance=derived, seed=0`` for headers and reports."""
    parts = [f"method={values.get('method') or 'auto'}"]
    atol, rtol = values.get("atol"), values.get("rtol")
    if atol is None and rtol is None:
        parts.append("tolerance=derived")
    else:
        parts.append(f"atol={atol or 0:g}, rtol={rtol or 0:g}")
    parts.append(f"seed={values.get('seed')}")
    if values.get("elements") is not None:
        parts.append(f"elements={values['elements']}")
    for name in names or ():
        if values.get(name) is not None:
            parts.append(f"{name}={values[name]}")
    return ", ".join(parts)
