"""The pytest plugin: a ``gradcheck`` fixture, a marker, ``--gradcheck-...`` options, a summary.

Registered through the ``pytest11`` entry point, so installing gradcheck is
enough.  In a test::

    def test_backward(gradcheck):
        gradcheck.assert_check(loss, grad, params)   # failure message = the report
        gradcheck.assert_vjp(forward, backward, (x, w))  # also jvp, jacobian, hessian, hvp

    @pytest.mark.gradcheck(method="central", atol=1e-6)
    def test_with_options(gradcheck): ...

Options (command line ``--gradcheck-NAME``, ini ``gradcheck_NAME``, marker
keyword ``NAME``; the definitions are shared with the ``gradcheck`` command
through :mod:`gradcheck.options`): ``method``, ``atol``, ``rtol``, ``seed``,
``elements``, ``mode``, ``budget``, ``workers``, ``html`` (a directory: every
check made through the fixture gets an HTML page there, plus ``index.html``) and
``quiet``.  Precedence: keyword of the call > marker > command line > ini > default.

The plugin's state lives in ``config.stash``; under pytest-xdist each worker
sends its records to the controller, which prints the summary and writes the
index.  Nothing heavier than :mod:`gradcheck.options` is imported until a test
asks for the fixture.
"""

from __future__ import annotations

import base64
import hashlib
import json
import pickle
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from gradcheck.errors import GradcheckError
from gradcheck.options import CHECK_OPTIONS, OPTIONS, check_kwargs, describe, parse_option

__all__ = ["GradcheckFixture", "gradcheck"]

_MARKER_HELP = (
    "gradcheck(method=..., atol=..., rtol=..., seed=..., elements=...): options of the "
    "checks made through the gradcheck fixture in this test"
)
_WORKER_KEY = "gradcheck_records"


@dataclass
class _SessionState:
    settings: dict[str, Any]
    html_dir: Path | None
    quiet: bool
    records: list[dict[str, Any]] = field(default_factory=list)
    index: Path | None = None
    html_error: str | None = None
    #: Page names given in this process, each with the check id it belongs to.
    pages: dict[str, str] = field(default_factory=dict)


_STATE = pytest.StashKey[_SessionState]()


def pytest_addoption(parser: pytest.Parser) -> None:
    group = parser.getgroup("gradcheck", "gradient checking (gradcheck)")
    for option in OPTIONS.values():
        help_text = option.help
        if option.name == "html":
            help_text = (
                "write an HTML report of every check made through the gradcheck "
                "fixture to this directory (index.html links them)"
            )
        if option.default is not None and not option.is_flag:
            help_text += f" (default: {option.default})"
        if option.is_flag:
            group.addoption(
                option.pytest_flag,
                action="store_true",
                default=None,
                dest=option.ini_name,
                help=help_text,
            )
        else:
            group.addoption(
                option.pytest_flag,
                default=None,
                dest=option.ini_name,
                metavar=option.metavar,
                help=help_text,
            )
        parser.addini(option.ini_name, help=f"gradcheck: {help_text}", default=None)


def _resolve(config: pytest.Config) -> dict[str, Any]:
    """Option values: command line, else ini, else the default; each validated."""
    values: dict[str, Any] = {}
    for name, option in OPTIONS.items():
        given = config.getoption(option.ini_name, default=None)
        label = option.pytest_flag
        if given is None:
            given = config.getini(option.ini_name) or None
            label = f"ini option {option.ini_name}"
        try:
            value = parse_option(name, given, label=label)
        except GradcheckError as exc:
            raise pytest.UsageError(str(exc)) from None
        values[name] = option.default if value is None else value
    return values


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", _MARKER_HELP)
    settings = _resolve(config)
    html = settings.pop("html")
    quiet = bool(settings.pop("quiet"))
    root = Path(str(config.rootpath))
    html_dir = None if html is None else (Path(html) if Path(html).is_absolute() else root / html)
    config.stash[_STATE] = _SessionState(settings, html_dir, quiet)


def _state(config: pytest.Config) -> _SessionState:
    return config.stash[_STATE]


def pytest_report_header(config: pytest.Config) -> str:
    state = _state(config)
    html = f", html={state.html_dir}" if state.html_dir else ""
    return f"gradcheck: {describe(state.settings)}{html}"


# -- the fixture ------------------------------------------------------------------------------


#: Characters of a page name's readable part; a hash of the whole check id follows it.
SLUG_CHARS = 80
#: Hex digits of that hash (48 bits: two ids of one session agree by chance ~never).
HASH_DIGITS = 12


def page_name(check_id: str) -> str:
    """The file name (without ``.html``) of one check's page.

    A readable slug of ``check_id`` cut at :data:`SLUG_CHARS`, then a short hash of the
    whole id: ids that differ anywhere (``"a b"`` and ``"a-b"``, parametrised ids that
    differ after 130 characters) get different names.
    """
    readable = re.sub(r"[^0-9A-Za-z]+", "-", check_id)[:SLUG_CHARS].strip("-") or "check"
    digest = hashlib.sha256(check_id.encode("utf-8", "surrogatepass")).hexdigest()
    return f"{readable}-{digest[:HASH_DIGITS]}"


class GradcheckFixture:
    """The ``gradcheck`` fixture: checks with the session's and the marker's options, recorded.

    Attributes
    ----------
    settings : dict
        The option values in force for this test (``method``, ``atol``,
        ``rtol``, ``seed``, ``elements``).
    results : list
        Every result this test produced, in order.
    """

    def __init__(self, nodeid: str, settings: dict[str, Any], state: _SessionState) -> None:
        self.nodeid = nodeid
        self.settings = settings
        self.results: list[Any] = []
        self._state = state

    def _options(self, overrides: dict[str, Any]) -> dict[str, Any]:
        kwargs = check_kwargs(self.settings)
        if "seed" in overrides:
            overrides = dict(overrides)
            kwargs["rng"] = parse_option("seed", overrides.pop("seed"))
        kwargs.update(overrides)
        return kwargs

    def _record(self, kind: str, label: str | None, result: Any, check: Any) -> None:
        self.results.append(result)
        number = sum(1 for r in self._state.records if r["nodeid"] == self.nodeid) + 1
        record: dict[str, Any] = {
            "nodeid": self.nodeid,
            "kind": kind,
            "label": label or f"{kind} {number}",
            "passed": bool(result.passed),
            "status": result.status,
            "headline": str(result).splitlines()[0],
            "href": None,
            "result": None,
        }
        if self._state.html_dir is not None and check is not None:
            record.update(self._write_page(record, check))
        self._state.records.append(record)

    def _write_page(self, record: dict[str, Any], check: Any) -> dict[str, Any]:
        from gradcheck.report import write_check_report

        assert self._state.html_dir is not None
        check_id = f"{self.nodeid}::{record['label']}"
        name = page_name(check_id)
        number = 1
        while name in self._state.pages:  # the same label twice in a test: a second page
            number += 1
            name = page_name(f"{check_id}#{number}")
        self._state.pages[name] = check_id
        href = f"checks/{name}.html"
        try:
            write_check_report(
                check,
                self._state.html_dir / href,
                title=f"{self.nodeid}: {record['label']}",
                back_link="../index.html",
            )
        except Exception as exc:  # noqa: BLE001 - a report problem must not fail the test
            return {"html_error": f"{type(exc).__name__}: {exc}"}
        # The index needs the CheckResult itself; under xdist it travels as a pickle.
        return {"href": href, "result": base64.b64encode(pickle.dumps(check)).decode("ascii")}

    def check(
        self, loss: Any, grad: Any, params: Any, *, label: str | None = None, **overrides: Any
    ) -> Any:
        """:func:`gradcheck.check` with this test's options (keywords override them)."""
        from gradcheck.runner.check import check

        result = check(loss, grad, params, **self._options(overrides))
        self._record("check", label, result, result)
        return result

    def assert_check(
        self, loss: Any, grad: Any, params: Any, *, label: str | None = None, **overrides: Any
    ) -> Any:
        """:meth:`check`, raising ``GradientMismatchError`` (an AssertionError) with the report."""
        __tracebackhide__ = True
        from gradcheck.errors import raise_unless_passed

        return raise_unless_passed(self.check(loss, grad, params, label=label, **overrides))

    def check_update(
        self,
        step: Any,
        loss: Any,
        params: Any,
        lr: float,
        *,
        label: str | None = None,
        **overrides: Any,
    ) -> Any:
        """:func:`gradcheck.runner.update.check_update` with this test's options."""
        from gradcheck.runner.update import check_update

        result = check_update(step, loss, params, lr, **self._options(overrides))
        self._record("update", label, result, result.check)
        return result

    def assert_update(
        self,
        step: Any,
        loss: Any,
        params: Any,
        lr: float,
        *,
        label: str | None = None,
        **overrides: Any,
    ) -> Any:
        """:meth:`check_update`, raising ``GradientMismatchError`` unless the step is descent."""
        __tracebackhide__ = True
        from gradcheck.errors import raise_unless_passed

        return raise_unless_passed(
            self.check_update(step, loss, params, lr, label=label, **overrides)
        )

    def _derivative(
        self, kind: str, first: Any, second: Any, third: Any, label: Any, overrides: Any
    ) -> Any:
        from gradcheck.runner.derivatives import jacobian, second_order, vjp

        checks: dict[str, Callable[..., Any]] = {
            "vjp": vjp.check_vjp,
            "jvp": jacobian.check_jvp,
            "jacobian": jacobian.check_jacobian,
            "hessian": second_order.check_hessian,
            "hvp": second_order.check_hvp,
        }
        result = checks[kind](first, second, third, **self._options(overrides))
        self._record(kind, label, result, result)
        return result

    def _assert(self, result: Any) -> Any:
        __tracebackhide__ = True
        from gradcheck.errors import raise_unless_passed

        return raise_unless_passed(result)

    def vjp(
        self, f: Any, vjp: Any, inputs: Any, *, label: str | None = None, **overrides: Any
    ) -> Any:
        """:func:`gradcheck.check_vjp` with this test's options (keywords override them)."""
        return self._derivative("vjp", f, vjp, inputs, label, overrides)

    def jvp(
        self, f: Any, jvp: Any, inputs: Any, *, label: str | None = None, **overrides: Any
    ) -> Any:
        """:func:`gradcheck.check_jvp` with this test's options (keywords override them)."""
        return self._derivative("jvp", f, jvp, inputs, label, overrides)

    def jacobian(
        self, f: Any, jacobian: Any, inputs: Any, *, label: str | None = None, **overrides: Any
    ) -> Any:
        """:func:`gradcheck.check_jacobian` with this test's options."""
        return self._derivative("jacobian", f, jacobian, inputs, label, overrides)

    def hessian(
        self, grad: Any, hess: Any, x: Any, *, label: str | None = None, **overrides: Any
    ) -> Any:
        """:func:`gradcheck.check_hessian` with this test's options (``args=`` passes through)."""
        return self._derivative("hessian", grad, hess, x, label, overrides)

    def hvp(
        self, grad: Any, hvp: Any, params: Any, *, label: str | None = None, **overrides: Any
    ) -> Any:
        """:func:`gradcheck.check_hvp` with this test's options (``args=`` passes through)."""
        return self._derivative("hvp", grad, hvp, params, label, overrides)

    def assert_vjp(
        self, f: Any, vjp: Any, inputs: Any, *, label: str | None = None, **overrides: Any
    ) -> Any:
        """:meth:`vjp`, raising ``GradientMismatchError`` (an AssertionError) with the report."""
        __tracebackhide__ = True
        return self._assert(self.vjp(f, vjp, inputs, label=label, **overrides))

    def assert_jvp(
        self, f: Any, jvp: Any, inputs: Any, *, label: str | None = None, **overrides: Any
    ) -> Any:
        """:meth:`jvp`, raising ``GradientMismatchError`` with the report."""
        __tracebackhide__ = True
        return self._assert(self.jvp(f, jvp, inputs, label=label, **overrides))

    def assert_jacobian(
        self, f: Any, jacobian: Any, inputs: Any, *, label: str | None = None, **overrides: Any
    ) -> Any:
        """:meth:`jacobian`, raising ``GradientMismatchError`` with the report."""
        __tracebackhide__ = True
        return self._assert(self.jacobian(f, jacobian, inputs, label=label, **overrides))

    def assert_hessian(
        self, grad: Any, hess: Any, x: Any, *, label: str | None = None, **overrides: Any
    ) -> Any:
        """:meth:`hessian`, raising ``GradientMismatchError`` with the report."""
        __tracebackhide__ = True
        return self._assert(self.hessian(grad, hess, x, label=label, **overrides))

    def assert_hvp(
        self, grad: Any, hvp: Any, params: Any, *, label: str | None = None, **overrides: Any
    ) -> Any:
        """:meth:`hvp`, raising ``GradientMismatchError`` with the report."""
        __tracebackhide__ = True
        return self._assert(self.hvp(grad, hvp, params, label=label, **overrides))


def _marker_settings(request: pytest.FixtureRequest, settings: dict[str, Any]) -> dict[str, Any]:
    merged = dict(settings)
    # Closest last: a function's marker overrides its class's and module's.
    for marker in reversed(list(request.node.iter_markers("gradcheck"))):
        if marker.args:
            raise pytest.UsageError(
                f"{request.node.nodeid}: @pytest.mark.gradcheck takes keywords only "
                f"(e.g. method='central'), got {marker.args!r}"
            )
        for key, value in marker.kwargs.items():
            if key not in CHECK_OPTIONS:
                raise pytest.UsageError(
                    f"{request.node.nodeid}: @pytest.mark.gradcheck: unknown option {key!r} "
                    f"(options are {', '.join(CHECK_OPTIONS)})"
                )
            try:
                merged[key] = parse_option(key, value, label=f"@pytest.mark.gradcheck({key}=...)")
            except GradcheckError as exc:
                raise pytest.UsageError(f"{request.node.nodeid}: {exc}") from None
    return merged


@pytest.fixture
def gradcheck(request: pytest.FixtureRequest) -> GradcheckFixture:
    """Check gradients and update steps with the session's ``--gradcheck-...`` options and
    the test's ``@pytest.mark.gradcheck(...)``; ``assert_check``/``assert_update`` fail the
    test with gradcheck's report."""
    state = _state(request.config)
    return GradcheckFixture(request.node.nodeid, _marker_settings(request, state.settings), state)


# -- end of session: xdist transport, index, summary --------------------------------------------


def pytest_sessionfinish(session: pytest.Session) -> None:
    config = session.config
    state = _state(config)
    workeroutput = getattr(config, "workeroutput", None)
    if workeroutput is not None:  # an xdist worker: hand the records to the controller
        workeroutput[_WORKER_KEY] = json.dumps(state.records)
        return
    if state.html_dir is not None:
        _write_index(state)


@pytest.hookimpl(optionalhook=True)
def pytest_testnodedown(node: Any, error: Any) -> None:
    """xdist controller: collect a finished worker's records."""
    records = getattr(node, "workeroutput", {}).get(_WORKER_KEY)
    if records:
        _state(node.config).records.extend(json.loads(records))


def _write_index(state: _SessionState) -> None:
    assert state.html_dir is not None
    try:
        from gradcheck.report import IndexEntry, write_index

        entries = []
        for record in state.records:
            if not record.get("result"):
                continue
            result = pickle.loads(base64.b64decode(record["result"]))
            entries.append(
                IndexEntry(
                    label=f"{record['nodeid']}: {record['label']}",
                    result=result,
                    href=record["href"],
                    description=record["headline"],
                )
            )
        state.index = write_index(
            entries,
            state.html_dir / "index.html",
            seed_href=None,
            title="gradcheck: checks made in this test session",
        )
    except Exception as exc:  # noqa: BLE001 - reported in the summary, never fails the run
        state.html_error = f"{type(exc).__name__}: {exc}"


def pytest_terminal_summary(terminalreporter: Any, exitstatus: int, config: pytest.Config) -> None:
    if getattr(config, "workeroutput", None) is not None:
        return
    state = _state(config)
    records = state.records
    if not records and state.html_dir is None:
        return
    failed = [r for r in records if not r["passed"]]
    terminalreporter.section("gradcheck")
    terminalreporter.write_line(
        f"{len(records)} check(s) made through the gradcheck fixture: "
        f"{len(records) - len(failed)} passed, {len(failed)} failed"
    )
    if not state.quiet:
        for record in failed:
            terminalreporter.write_line(
                f"  {record['nodeid']} [{record['label']}]: {record['headline']}"
            )
    problems = [r["html_error"] for r in records if r.get("html_error")]
    if state.html_error:
        problems.append(state.html_error)
    if state.index is not None:
        terminalreporter.write_line(f"HTML report: {state.index}")
    for problem in problems[:3]:
        terminalreporter.write_line(f"HTML report problem: {problem}")
