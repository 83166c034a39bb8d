"""Things from outside: the user's functions named on a command line, parameters in files.

A *target* names a callable as ``package.module:function`` or
``path/to/file.py:function`` (``function`` may be dotted: ``module:Model.loss``).
Parameters come from ``.npz`` files whose keys are parameter paths
(``weight1``, ``layers[1].weight``): the nested structure is rebuilt, so the
user's loss receives what it would receive in their own code.

Every failure is one :class:`TargetError` with a one-line message that says
which target, what was tried and what went wrong.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.util
import os
import re
import sys
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

from gradcheck.errors import GradcheckError

__all__ = [
    "TargetError",
    "load_target",
    "load_params",
    "save_params",
    "params_from_names",
]


class TargetError(GradcheckError, ValueError):
    """A target or a parameter file cannot be loaded; the message is one line."""


def _one_line(exc: BaseException) -> str:
    text = " ".join(str(exc).split())
    return f"{type(exc).__name__}: {text}" if text else type(exc).__name__


def _split(spec: str, role: str) -> tuple[str, str]:
    if not isinstance(spec, str):
        raise TargetError(f"{role}: expected a target string, got {type(spec).__name__}")
    where, sep, attribute = spec.rpartition(":")
    if not sep or not where or not attribute:
        raise TargetError(
            f"{role} target {spec!r}: expected MODULE:FUNCTION or FILE.py:FUNCTION "
            "(e.g. mypackage.losses:loss or ./model.py:loss)"
        )
    if not re.fullmatch(r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*", attribute):
        raise TargetError(f"{role} target {spec!r}: {attribute!r} is not a Python name")
    return where, attribute


def _is_file(where: str) -> bool:
    return where.endswith(".py") or os.sep in where or "/" in where


def _import_file(path_text: str, role: str, spec: str) -> Any:
    path = Path(path_text).expanduser()
    if not path.is_file():
        raise TargetError(f"{role} target {spec!r}: file {str(path)!r} does not exist")
    path = path.resolve()
    digest = hashlib.sha1(str(path).encode()).hexdigest()[:10]
    name = f"gradcheck_target_{re.sub(r'[^0-9a-zA-Z_]', '_', path.stem)}_{digest}"
    if name in sys.modules:
        return sys.modules[name]
    module_spec = importlib.util.spec_from_file_location(name, path)
    if module_spec is None or module_spec.loader is None:
        raise TargetError(f"{role} target {spec!r}: {str(path)!r} cannot be imported as Python")
    module = importlib.util.module_from_spec(module_spec)
    # The file may import its neighbours, as it would when run as a script.
    directory = str(path.parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    sys.modules[name] = module
    try:
        module_spec.loader.exec_module(module)
    except BaseException as exc:
        del sys.modules[name]
        if isinstance(exc, KeyboardInterrupt):
            raise
        raise TargetError(
            f"{role} target {spec!r}: importing {str(path)!r} raised {_one_line(exc)}"
        ) from exc
    return module


def _import_module(module_name: str, role: str, spec: str) -> Any:
    # A console script does not put the working directory on sys.path; `python -m` does.
    if "" not in sys.path and os.getcwd() not in sys.path:
        sys.path.insert(0, os.getcwd())
    try:
        return importlib.import_module(module_name)
    except ModuleNotFoundError as exc:
        if exc.name and module_name.startswith(exc.name):
            raise TargetError(
                f"{role} target {spec!r}: no module named {exc.name!r} (is it installed, or "
                "did you mean a file path such as ./file.py?)"
            ) from exc
        raise TargetError(
            f"{role} target {spec!r}: importing {module_name!r} raised {_one_line(exc)}"
        ) from exc
    except Exception as exc:  # noqa: BLE001 - the user's module failed; say so in one line
        raise TargetError(
            f"{role} target {spec!r}: importing {module_name!r} raised {_one_line(exc)}"
        ) from exc


def load_target(spec: str, *, role: str = "function") -> Callable[..., Any]:
    """Import the callable named by ``spec``.

    Parameters
    ----------
    spec : str
        ``package.module:function`` or ``path/to/file.py:function``; the
        function part may be dotted (``module:Model.loss``).
    role : str, keyword-only
        What the callable is for (``"loss"``, ``"grad"``, ``"step"``), used in messages.

    Returns
    -------
    callable

    Raises
    ------
    TargetError
        Malformed ``spec``, missing file or module, an exception while
        importing it, a missing attribute, or an attribute that is not callable.

    Examples
    --------
    >>> from gradcheck.targets import load_target
    >>> load_target("math:sin", role="loss")(0.0)
    0.0
    """
    where, attribute = _split(spec, role)
    module = (
        _import_file(where, role, spec) if _is_file(where) else _import_module(where, role, spec)
    )
    target: Any = module
    walked = []
    for part in attribute.split("."):
        walked.append(part)
        try:
            target = getattr(target, part)
        except AttributeError:
            available = sorted(
                n for n in dir(target) if not n.startswith("_") and callable(getattr(target, n))
            )
            hint = f" (callables there: {', '.join(available[:8])})" if available else ""
            raise TargetError(
                f"{role} target {spec!r}: {where!r} has no attribute {'.'.join(walked)!r}{hint}"
            ) from None
    if not callable(target):
        raise TargetError(
            f"{role} target {spec!r}: {attribute!r} is a {type(target).__name__}, not a callable"
        )
    return target  # type: ignore[no-any-return]


# -- parameter files -----------------------------------------------------------------------

_TOKEN = re.compile(r"\[(\d+)\]|\.?([^.\[\]]+)")


def _parse_path(name: str) -> list[str | int]:
    """``layers[1].weight`` -> ``["layers", 1, "weight"]``."""
    from gradcheck.problem.space import MAX_DEPTH, shortened

    tokens: list[str | int] = []
    position = 0
    while position < len(name):
        match = _TOKEN.match(name, position)
        if match is None or match.end() == position:
            raise TargetError(f"parameters: cannot read the parameter path {shortened(name)!r}")
        index, key = match.groups()
        tokens.append(int(index) if index is not None else key)
        position = match.end()
        if len(tokens) > MAX_DEPTH:
            raise TargetError(
                f"parameters: the parameter path {shortened(name)!r} nests more than "
                f"{MAX_DEPTH} levels deep, the limit of a parameter tree"
            )
    if not tokens:
        raise TargetError("parameters: an empty parameter name")
    return tokens


def params_from_names(named: Mapping[str, Any]) -> Any:
    """Rebuild a nested tree from ``{path: array}`` (paths as gradcheck names them).

    ``{"layers[0].weight": W0, "layers[1].weight": W1}`` becomes
    ``{"layers": [{"weight": W0}, {"weight": W1}]}``; plain names give a flat
    dict; the single name ``params`` gives the bare array.

    Raises
    ------
    TargetError
        Paths that conflict (``a`` and ``a.b``) or list indices with gaps.
    """
    from gradcheck.problem.space import ROOT_NAME

    if list(named) == [ROOT_NAME]:
        return named[ROOT_NAME]
    root: dict[Any, Any] = {}
    for name, value in named.items():
        tokens = _parse_path(name)
        node = root
        for i, token in enumerate(tokens):
            last = i == len(tokens) - 1
            if last:
                if token in node:
                    raise TargetError(f"parameters: {name!r} conflicts with another parameter path")
                node[token] = value
            else:
                child = node.setdefault(token, {})
                if not isinstance(child, dict):
                    raise TargetError(f"parameters: {name!r} conflicts with another parameter path")
                node = child

    def finish(node: Any, path: str) -> Any:
        if not isinstance(node, dict):
            return node
        keys = list(node)
        if keys and all(isinstance(k, int) for k in keys):
            if sorted(keys) != list(range(len(keys))):
                raise TargetError(
                    f"parameters: list {path or 'at the top'} has indices {sorted(keys)}; "
                    "expected 0, 1, 2, ..."
                )
            return [finish(node[k], f"{path}[{k}]") for k in range(len(keys))]
        if any(isinstance(k, int) for k in keys):
            raise TargetError(f"parameters: {path or 'the top level'} mixes names and indices")
        return {k: finish(v, f"{path}.{k}" if path else k) for k, v in node.items()}

    return finish(root, "")


def load_params(path: str | os.PathLike[str]) -> Any:
    """Read parameters from a ``.npz`` (named arrays) or ``.npy`` (one array) file.

    Keys are parameter paths and the nesting is rebuilt (see
    :func:`params_from_names`); files written by :func:`save_params` or by
    ``numpy.savez(path, weight1=W1, weight2=W2)`` both work.  Pickled objects
    are refused, and every array's header is read first: a header that declares
    more data than the file holds (a shape of 10^12 elements in a few bytes) is
    refused before anything is allocated.

    Raises
    ------
    TargetError
        Missing or unreadable file, a file that is not ``.npz``/``.npy``, or a
        member that cannot be read (an object array, a bad CRC, a truncated or
        inconsistent header); the message names the member.
    """
    import numpy as np

    file = Path(path)
    if not file.is_file():
        raise TargetError(f"--params: file {str(file)!r} does not exist")
    where = f"--params: {str(file)!r}"
    try:
        with open(file, "rb") as stream:
            is_zip = stream.read(4) == b"PK\x03\x04"
        if not is_zip:
            with open(file, "rb") as stream:
                _check_header(stream, file.stat().st_size, f"{where}: cannot read it")
            return np.load(file, allow_pickle=False)
        named = _read_npz(file, where)
    except TargetError:
        raise
    except Exception as exc:  # noqa: BLE001 - any failure to read is the file's
        raise TargetError(f"{where}: cannot read it as .npz/.npy: {_one_line(exc)}") from exc
    if not named:
        raise TargetError(f"{where} holds no arrays")
    try:
        return params_from_names(named)
    except TargetError as exc:
        raise TargetError(f"{where}: {str(exc).removeprefix('parameters: ')}") from None


def _read_npz(file: Path, where: str) -> dict[str, Any]:
    """The arrays of an ``.npz``, each member's header checked before it is read."""
    import zipfile

    import numpy as np

    from gradcheck.problem.space import shortened

    with zipfile.ZipFile(file) as archive:
        members = archive.infolist()
        for info in members:
            member = (
                f"{where}: cannot read member {shortened(info.filename.removesuffix('.npy'))!r}"
            )
            if not info.filename.endswith(".npy"):
                raise TargetError(f"{member}: it is not a .npy array")
            try:
                with archive.open(info) as stream:
                    _check_header(stream, info.file_size, member)
            except TargetError:
                raise
            except Exception as exc:  # noqa: BLE001
                raise TargetError(f"{member}: {_one_line(exc)}") from exc
    named = {}
    with np.load(file, allow_pickle=False) as loaded:
        for key in loaded.files:
            try:
                named[key] = loaded[key]
            except Exception as exc:  # noqa: BLE001 - a bad CRC, a short member...
                raise TargetError(
                    f"{where}: cannot read member {shortened(key)!r}: {_one_line(exc)}"
                ) from exc
    return named


def _check_header(stream: Any, size: int, where: str) -> None:
    """Read an ``.npy`` header from ``stream`` (``size`` bytes in all) and refuse what numpy
    would fail on late or costly: Python objects, or more data declared than there is."""
    import math

    from numpy.lib import format as npy

    version = npy.read_magic(stream)
    readers = {(1, 0): npy.read_array_header_1_0, (2, 0): npy.read_array_header_2_0}
    if version in readers:
        shape, _, dtype = readers[version](stream)
    else:  # format 3.0 (utf-8 field names): numpy reads it with its private reader
        reader = getattr(npy, "_read_array_header", None)
        if reader is None:  # pragma: no cover - a numpy without it; np.load checks
            return
        shape, _, dtype = reader(stream, version)
    if dtype.hasobject:
        raise TargetError(
            f"{where}: it holds Python objects (dtype {dtype}), which would need unpickling; "
            "gradcheck loads numeric arrays only"
        )
    declared = math.prod(shape) * dtype.itemsize
    available = size - stream.tell()
    if declared > available:
        raise TargetError(
            f"{where}: its header declares shape {tuple(shape)} of {dtype} ({declared:,} bytes) "
            f"but only {max(available, 0):,} bytes of data follow"
        )


def save_params(path: str | os.PathLike[str], params: Any) -> Path:
    """Write a parameter tree to ``.npz`` keyed by its paths; :func:`load_params` reads it back."""
    import numpy as np

    from gradcheck.problem.space import ParameterSpace

    space = ParameterSpace(params)
    file = Path(path)
    arrays = dict(zip(space.names, space.arrays, strict=True))
    np.savez(file, **arrays)  # type: ignore[arg-type]  # numpy stubs: allow_pickle=
    return file if file.suffix == ".npz" else file.with_name(file.name + ".npz")
