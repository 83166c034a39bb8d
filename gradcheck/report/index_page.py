"""The index of a run: the seed's answer and the battery of checks on one page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gradcheck.errors import ParameterTypeError
from gradcheck.report import plots
from gradcheck.report._render import environment, render
from gradcheck.results import CheckResult

__all__ = ["IndexEntry", "render_index"]


@dataclass(frozen=True, eq=False)
class IndexEntry:
    """One check of a run, as the index lists it.

    Attributes
    ----------
    label : str
        Short name (``"3-5-1 tanh/sigmoid, half-SSE"``).
    result : CheckResult
        The check.
    href : str or None
        Relative link to the check's own report.
    expect_pass : bool or None
        True for a correct gradient, False for a planted bug the check must
        catch, None when there is no expectation.
    description : str
        One line on what was checked.
    """

    label: str
    result: CheckResult
    href: str | None = None
    expect_pass: bool | None = None
    description: str = ""

    @property
    def as_expected(self) -> bool | None:
        if self.expect_pass is None:
            return None
        return self.expect_pass == self.result.passed


def _validate(entries: Sequence[IndexEntry]) -> list[IndexEntry]:
    checked = []
    for k, entry in enumerate(entries):
        if not isinstance(entry, IndexEntry) or not isinstance(entry.result, CheckResult):
            raise ParameterTypeError(
                f"entries[{k}]: expected an IndexEntry holding a CheckResult, not "
                f"{type(entry).__name__}"
            )
        checked.append(entry)
    return checked


def _seed_numbers(demo: Any) -> list[tuple[str, str]]:
    """Headline facts of the seed demonstration, read defensively (fields may be added later)."""
    from gradcheck.report.seed_page import headline_facts

    return headline_facts(demo)


def render_index(
    entries: Sequence[IndexEntry] = (),
    *,
    seed_href: str | None = "seed.html",
    seed_demo: Any = None,
    title: str | None = None,
    seconds: float | None = None,
) -> str:
    """The HTML text of :func:`gradcheck.report.write_index`."""
    entries = _validate(entries)
    rows = []
    for entry in entries:
        result = entry.result
        rows.append(
            {
                "label": entry.label,
                "description": entry.description,
                "href": entry.href,
                "status": result.status,
                "expect": entry.expect_pass,
                "as_expected": entry.as_expected,
                "ratio": max((p.worst_ratio for p in result.parameters), default=0.0),
                "n_parameters": len(result.parameters),
                "n_elements": sum(p.analytic.size for p in result.parameters),
                "evaluations": result.n_evaluations,
                "seconds": result.seconds,
                "diagnosis": result.diagnosis.summary if result.diagnosis else "",
                "worst": next((p.summary_line() for p in result.failed_parameters), ""),
            }
        )
    unexpected = [row for row in rows if row["as_expected"] is False]
    if not rows:
        status, say = "passed", "No checks in this run"
    elif unexpected:
        status = "failed"
        say = f"{len(unexpected)} of {len(rows)} checks did not give the expected verdict"
    else:
        status = "passed"
        say = f"All {len(rows)} checks gave the expected verdict"
    overview = (
        plots.battery_overview(
            [row["label"] for row in rows],
            [row["ratio"] for row in rows],
            [row["status"] for row in rows],
            [row["expect"] for row in rows],
        )
        if rows
        else None
    )
    return render(
        "index.html.j2",
        title=title or "gradcheck: reports of this run",
        rows=rows,
        status=status,
        say=say,
        overview=overview,
        n_expected_fail=sum(1 for row in rows if row["expect"] is False),
        n_caught=sum(1 for row in rows if row["expect"] is False and row["status"] != "passed"),
        n_expected_pass=sum(1 for row in rows if row["expect"] is True),
        n_passed=sum(1 for row in rows if row["expect"] is True and row["status"] == "passed"),
        seed_href=seed_href,
        seed_facts=_seed_numbers(seed_demo) if seed_demo is not None else [],
        seconds=seconds,
        back_link=None,
        env=environment(),
    )
