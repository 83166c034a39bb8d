"""The options of a check, defined once and shared by the command line and the pytest plugin.

Each :class:`Option` knows its name, how to parse and validate a value given as
text (command line, ini file) or as a Python value (a pytest marker), its
default and its help.  :mod:`gradcheck.cli` turns them into ``--method``,
``--atol``...; :mod:`gradcheck.plugin` into ``--gradcheck-method``,
``--gradcheck-atol``... and the ini keys ``gradcheck_method``,
``gradcheck_atol``....  The check machinery is imported only when a method
name is validated, so the plugin stays cheap to load.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from gradcheck.errors import InvalidParameterError, ParameterTypeError

__all__ = [
    "Option",
    "OPTIONS",
    "CHECK_OPTIONS",
    "method_choices",
    "parse_option",
    "check_kwargs",
    "describe",
]


def method_choices() -> tuple[str, ...]:
    """The reference methods :func:`gradcheck.check` accepts (imported when first needed)."""
    from gradcheck.runner.check import METHODS

    return tuple(METHODS)


def _method(value: Any, name: str) -> str:
    choices = method_choices()
    if not isinstance(value, str):
        raise ParameterTypeError(
            f"{name}: expected one of {', '.join(choices)}, got {type(value).__name__}"
        )
    if value not in choices:
        raise InvalidParameterError(f"{name}: {value!r} is not one of {', '.join(choices)}")
    return value


def _tolerance(value: Any, name: str) -> float:
    if isinstance(value, str):
        try:
            value = float(value)
        except ValueError:
            raise InvalidParameterError(f"{name}: expected a number, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ParameterTypeError(f"{name}: expected a number, got {type(value).__name__}")
    if not math.isfinite(value) or value < 0:
        raise InvalidParameterError(f"{name}: must be finite and >= 0, got {value!r}")
    return float(value)


def _positive_float(value: Any, name: str) -> float:
    number = _tolerance(value, name)
    if number <= 0:
        raise InvalidParameterError(f"{name}: must be > 0, got {value!r}")
    return number


def _int(value: Any, name: str, *, minimum: int) -> int:
    if isinstance(value, str):
        try:
            value = int(value)
        except ValueError:
            raise InvalidParameterError(f"{name}: expected an integer, got {value!r}") from None
    if isinstance(value, bool) or not isinstance(value, int):
        raise ParameterTypeError(f"{name}: expected an integer, got {type(value).__name__}")
    if value < minimum:
        raise InvalidParameterError(f"{name}: must be >= {minimum}, got {value}")
    return value


def _seed(value: Any, name: str) -> int:
    return _int(value, name, minimum=0)


def _elements(value: Any, name: str) -> int:
    return _int(value, name, minimum=1)


def _workers(value: Any, name: str) -> int:
    return _int(value, name, minimum=1)


def _mode(value: Any, name: str) -> str:
    from gradcheck.runner.evaluation import MODES

    if value not in MODES:
        raise InvalidParameterError(f"{name}: {value!r} is not one of {', '.join(MODES)}")
    return str(value)


def _budget(value: Any, name: str) -> float | int:
    """Seconds (``2.5``, ``2.5s``) or a number of loss evaluations (``20000``)."""
    if isinstance(value, bool):
        raise ParameterTypeError(f"{name}: expected seconds or a number of evaluations")
    if isinstance(value, (int, float)):
        number: float | int = value
    else:
        text = str(value).strip().lower()
        try:
            number = float(text.rstrip("s")) if ("." in text or text.endswith("s")) else int(text)
        except ValueError:
            raise InvalidParameterError(
                f"{name}: expected seconds (e.g. 2.5) or evaluations (e.g. 20000), got {value!r}"
            ) from None
    if not math.isfinite(number) or number <= 0:
        raise InvalidParameterError(f"{name}: must be > 0, got {value!r}")
    return number


def _path(value: Any, name: str) -> str:
    if not isinstance(value, str) or not value:
        raise ParameterTypeError(f"{name}: expected a path, got {value!r}")
    return value


def _flag(value: Any, name: str) -> bool:
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.strip().lower() in ("1", "true", "yes", "on"):
        return True
    if isinstance(value, str) and value.strip().lower() in ("0", "false", "no", "off", ""):
        return False
    raise InvalidParameterError(f"{name}: expected true or false, got {value!r}")


@dataclass(frozen=True)
class Option:
    """One option of a check.

    Attributes
    ----------
    name : str
        The option's name: ``--NAME`` on the command line, ``--gradcheck-NAME``
        and ini ``gradcheck_NAME`` in pytest, a keyword of the marker.
    parse : callable
        ``parse(value, label) -> value``: validates text or a Python value,
        raising :class:`~gradcheck.errors.InvalidParameterError` or
        :class:`~gradcheck.errors.ParameterTypeError` naming ``label``.
    help : str
        One sentence for ``--help``.
    default : object
        The value when the option is not given.
    metavar : str or None
        Placeholder in help; None for a flag.
    check_kwarg : str or None
        The keyword of :func:`gradcheck.check` this option feeds.
    """

    name: str
    parse: Callable[[Any, str], Any]
    help: str
    default: Any = None
    metavar: str | None = "VALUE"
    check_kwarg: str | None = None

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
            _method,
            "reference derivative: auto (complex step when the loss supports it, else central "
            "differences, Richardson refinement of doubtful elements) or one reference: "
            "complex, central, richardson, approx_fprime (SciPy), differentiate (SciPy)",
            default="auto",
            metavar="METHOD",
            check_kwarg="method",
        ),
        Option(
            "atol",
            _tolerance,
            "absolute tolerance; with --rtol replaces the derived tolerance by "
            "atol + rtol * |reference|",
            metavar="ATOL",
            check_kwarg="atol",
        ),
        Option(
            "rtol",
            _tolerance,
            "relative tolerance (see --atol)",
            metavar="RTOL",
            check_kwarg="rtol",
        ),
        Option(
            "seed",
            _seed,
            "seed of the random draws (noise probe, sampled elements); printed with every "
            "result so a check can be reproduced",
            default=0,
            metavar="SEED",
            check_kwarg="rng",
        ),
        Option(
            "elements",
            _elements,
            "check only this many random elements of each parameter (default: all)",
            metavar="N",
            check_kwarg="elements",
        ),
        Option(
            "mode",
            _mode,
            "full (every element), sampled (--elements per parameter), directional (random "
            "probes with a stated miss probability, then bisection to the wrong elements) or "
            "auto (full when it fits the budget, else directional)",
            default="auto",
            metavar="MODE",
            check_kwarg="mode",
        ),
        Option(
            "budget",
            _budget,
            "what auto mode may spend on a full check: seconds (2.5) or loss evaluations "
            "(20000); default 5 seconds",
            metavar="BUDGET",
            check_kwarg="budget",
        ),
        Option(
            "workers",
            _workers,
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
        Option("quiet", _flag, "print only the verdict line", default=False, metavar=None),
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
