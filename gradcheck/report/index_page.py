"""The index of a run: the seed's answer and the battery of checks on one page."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from gradcheck.errors import ParameterTypeError
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
    row, column : str, optional
        Where the check sits in the index's matrix of the battery (network x
        reference).  By default read from the label ``"row / column"``; checks
        whose column no other row shares (the planted bugs) are listed, not put
        in the matrix.
    """

    label: str
    result: CheckResult
    href: str | None = None
    expect_pass: bool | None = None
    description: str = ""
    row: str | None = None
    column: str | None = None

    @property
    def place(self) -> tuple[str, str] | None:
        """``(row, column)`` in the battery's matrix: given, or read from the label."""
        if self.row is not None and self.column is not None:
            return self.row, self.column
        if " / " in self.label:
            row, column = self.label.rsplit(" / ", 1)
            return row, column
        return None

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


def _urgency(row: dict[str, Any]) -> int:
    """Sort key: unexpected verdicts first, then failed (or inconclusive) checks, then the rest."""
    if row["as_expected"] is False:
        return 0
    return 1 if row["status"] != "passed" else 2


def _row(k: int, entry: IndexEntry) -> dict[str, Any]:
    result = entry.result
    return {
        "anchor": f"check-{k}",
        "label": entry.label,
        "place": entry.place,
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
    }


def _matrix(rows: list[dict[str, Any]]) -> dict[str, Any] | None:
    """The battery as a compact matrix (network x reference): columns shared by two rows or
    more; the rows with an unexpected or failed check first.  None when there is none."""
    placed = [row for row in rows if row["place"] is not None]
    owners: dict[str, set[str]] = {}
    for row in placed:
        owners.setdefault(row["place"][1], set()).add(row["place"][0])
    columns = [column for column, names in owners.items() if len(names) > 1]
    if not columns:
        return None
    cells: dict[str, dict[str, dict[str, Any]]] = {}
    for row in placed:
        name, column = row["place"]
        if column in columns:
            cells.setdefault(name, {})[column] = row
    ordered = sorted(cells, key=lambda name: min(_urgency(r) for r in cells[name].values()))
    return {"columns": columns, "rows": [(name, cells[name]) for name in ordered]}


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
    rows = sorted((_row(k, entry) for k, entry in enumerate(entries)), key=_urgency)
    unexpected = [row for row in rows if row["as_expected"] is False]
    if not rows:
        status, say = "passed", "No checks in this run"
    elif unexpected:
        status = "failed"
        say = f"{len(unexpected)} of {len(rows)} checks did not give the expected verdict"
    else:
        status = "passed"
        say = f"All {len(rows)} checks gave the expected verdict"
    return render(
        "index.html.j2",
        title=title or "gradcheck: reports of this run",
        rows=rows,
        attention=[row for row in rows if _urgency(row) < 2],
        matrix=_matrix(rows),
        status=status,
        say=say,
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
