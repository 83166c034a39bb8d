"""Shared machinery of the reports: the jinja2 environment, atomic writes, the environment table."""

from __future__ import annotations

import contextlib
import datetime
import math
import os
import platform
import signal
import stat
import sys
import tempfile
import threading
from collections.abc import Iterator
from functools import lru_cache
from importlib import metadata
from pathlib import Path
from typing import Any

import jinja2
from markupsafe import Markup

from gradcheck.errors import InvalidParameterError, ParameterTypeError

__all__ = ["DEFAULT_DIR", "render", "atomic_write", "environment", "resolve_path"]

#: Where reports are written when no path is given (relative to the working directory).
DEFAULT_DIR = Path("reports")


def _num(value: Any, digits: int = 6) -> str:
    """A number for people: ``6.12345e-11``, ``0.925``, ``—`` for missing."""
    if value is None:
        return "—"
    try:
        value = float(value)
    except (TypeError, ValueError):
        return str(value)
    if math.isnan(value):
        return "—"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    return f"{value:.{digits}g}".replace("-", "−")


def _sci(value: Any, digits: int = 2) -> str:
    """A number in scientific notation with a real superscript: ``3.1×10⁻¹¹`` as HTML."""
    if value is None:
        return "—"
    value = float(value)
    if math.isnan(value):
        return "—"
    if math.isinf(value):
        return "∞" if value > 0 else "−∞"
    if value == 0:
        return "0"
    exponent = math.floor(math.log10(abs(value)))
    if -3 <= exponent <= 3:
        return _num(value, digits + 1)
    mantissa = value / 10**exponent
    if round(mantissa, digits - 1) == 10:
        mantissa, exponent = mantissa / 10, exponent + 1
    sign = "−" if mantissa < 0 else ""
    return Markup(
        f"{sign}{abs(mantissa):.{digits - 1}f}×10<sup>{exponent}</sup>".replace("<sup>-", "<sup>−")
    )


@lru_cache(maxsize=1)
def _jinja() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.PackageLoader("gradcheck.report", "templates"),
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["num"] = _num
    env.filters["sci"] = _sci
    env.filters["svg"] = lambda svg: Markup(svg) if svg else ""
    return env


def render(template: str, **context: Any) -> str:
    """Render ``templates/<template>`` with autoescaping (only our own SVG is marked safe)."""
    context.setdefault(
        "generated", datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC")
    )
    return _jinja().get_template(template).render(**context)


def resolve_path(path: Any, default_name: str) -> Path:
    """The file to write: ``path``, or ``DEFAULT_DIR / default_name``; a directory gets the name."""
    if path is None:
        return DEFAULT_DIR / default_name
    if not isinstance(path, (str, os.PathLike)):
        raise ParameterTypeError(f"path: expected a str or os.PathLike, not {type(path).__name__}")
    result = Path(path)
    if result.is_dir():
        return result / default_name
    if result.suffix.lower() not in (".html", ".htm"):
        raise InvalidParameterError(f"path: {str(result)!r} should end in .html")
    return result


def atomic_write(path: Path, text: str) -> Path:
    """Write ``text`` to ``path`` through a temporary file in the same directory and a rename.

    A reader (or a crash) never sees a half-written report: the old file stays
    in place until :func:`os.replace` swaps the complete new one in.  SIGINT and
    SIGTERM arriving meanwhile are held back and delivered once the temporary file
    is renamed or removed (in the main thread; elsewhere the file is removed on
    any exception), so an interrupted write leaves no ``.tmp`` file behind.

    The file's mode: a new file gets ``0o666 & ~umask``, as ``open()`` would give it;
    a file replaced keeps its own mode (a report made private with ``chmod 600``
    stays private).
    """
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    with _signals_held():
        handle, temporary = tempfile.mkstemp(
            prefix=f".{path.name}.", suffix=".tmp", dir=path.parent
        )
        try:
            if hasattr(os, "fchmod"):
                os.fchmod(handle, _mode_for(path))
            else:  # pragma: no cover - Windows before Python 3.13
                os.chmod(temporary, _mode_for(path))
            with os.fdopen(handle, "w", encoding="utf-8", newline="\n") as stream:
                stream.write(text)
                stream.flush()
                os.fsync(stream.fileno())
            os.replace(temporary, path)
        except BaseException:
            try:
                os.unlink(temporary)
            except FileNotFoundError:
                pass
            raise
    return path


#: Signals held back during an atomic write: Ctrl-C and the polite request to stop.
HELD_SIGNALS = (signal.SIGINT, signal.SIGTERM)


@contextlib.contextmanager
def _signals_held() -> Iterator[None]:
    """Hold SIGINT/SIGTERM back for the block, then deliver them to their own handlers.

    Only the main thread may install handlers; in other threads (where Python never
    runs signal handlers anyway) the block runs as is.
    """
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    received: list[int] = []
    previous = {}
    for number in HELD_SIGNALS:
        handler = signal.getsignal(number)
        if handler in (signal.SIG_IGN, None):  # ignored, or set outside Python: leave it
            continue
        previous[number] = signal.signal(number, lambda n, _frame: received.append(n))
    try:
        yield
    finally:
        for number, handler in previous.items():
            signal.signal(number, handler)
        for held in dict.fromkeys(received):
            signal.raise_signal(held)


def _mode_for(path: Path) -> int:
    """The mode of the file written at ``path``: its current mode, else what umask allows."""
    try:
        return stat.S_IMODE(os.stat(path).st_mode)
    except FileNotFoundError:
        return 0o666 & ~_umask()


def _umask() -> int:
    """The process's umask, read without changing it where the system says it."""
    try:
        with open("/proc/self/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("Umask:"):
                    return int(line.split()[1], 8)
    except (OSError, ValueError):
        pass
    # Elsewhere the only way is to set it and put it back (briefly visible to other threads).
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        module = sys.modules.get(name)
        return str(getattr(module, "__version__", "not installed"))


def environment(**extra: Any) -> list[tuple[str, str]]:
    """What is needed to reproduce a report: versions, platform, plus ``extra`` rows."""
    import numpy

    from gradcheck import __version__

    rows = [
        ("gradcheck", __version__),
        ("Python", platform.python_version() + f" ({platform.python_implementation()})"),
        ("NumPy", numpy.__version__),
        # From the installed metadata: rendering a page has no reason to import SciPy.
        ("SciPy", _version("scipy")),
        ("matplotlib", _version("matplotlib")),
        ("Platform", f"{platform.system()} {platform.release()} {platform.machine()}"),
    ]
    rows += [(str(key), str(value)) for key, value in extra.items() if value is not None]
    return rows
