"""Self-contained HTML reports: one check, the seed question, and the index of a run.

Every page is one file that opens offline: jinja2 templates shipped with the
package (autoescaped), inline CSS, matplotlib figures as inline SVG, no
scripts, fonts or links to the network.  Files are written atomically
(a temporary file in the same directory, then :func:`os.replace`), so an
interrupted run never leaves a half-written report where a good one was.

The report only renders: it reads :mod:`gradcheck.results` and spends no loss
evaluation.  The step-size curves and the agreement of every reference on a
check page come from ``result.evidence``, which the core gathers on request
(:func:`gradcheck.runner.evidence.with_evidence`).

Examples
--------
>>> import numpy as np, gradcheck, gradcheck.report, tempfile, pathlib
>>> from gradcheck.runner.evidence import with_evidence
>>> loss = lambda p: float(np.sum(np.sin(p["w"]) ** 2))
>>> grad = lambda p: {"w": 2 * np.sin(p["w"]) * np.cos(p["w"])}
>>> params = {"w": np.arange(3.0)}
>>> result = with_evidence(gradcheck.check(loss, grad, params), loss, params)
>>> out = pathlib.Path(tempfile.mkdtemp()) / "check.html"
>>> gradcheck.report.write(result, out).name
'check.html'
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gradcheck.errors import ParameterTypeError
from gradcheck.report._render import DEFAULT_DIR, atomic_write, resolve_path
from gradcheck.results import CheckResult

if TYPE_CHECKING:  # pragma: no cover
    from gradcheck.demo.seed import SeedDemonstration

__all__ = [
    "DEFAULT_DIR",
    "IndexEntry",
    "write",
    "write_check_report",
    "write_seed_report",
    "write_index",
    "render_check_report",
    "render_seed_report",
    "render_index",
]


def write(
    result: CheckResult,
    path: str | Path | None = None,
    *,
    title: str | None = None,
    back_link: str | None = None,
) -> Path:
    """Write the HTML report of a :func:`gradcheck.check` result.

    Parameters
    ----------
    result : CheckResult
        The check to report.  When it carries evidence
        (:func:`gradcheck.runner.evidence.with_evidence`), the page adds the
        error-versus-step curves of the central difference and the agreement of
        every reference on the sampled elements; otherwise those sections say
        the evidence was not gathered.
    path : str or Path, optional
        The ``.html`` file (or a directory to put ``check.html`` in).  Default
        ``reports/check.html``.
    title : str, optional
        The page's heading.
    back_link : str, optional
        Relative link shown at the top (e.g. ``"index.html"``).

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ParameterTypeError
        ``result`` is not a CheckResult, or ``path`` is not a path.
    InvalidParameterError
        ``path`` does not end in ``.html``.
    """
    if not isinstance(result, CheckResult):
        raise ParameterTypeError(
            f"result: expected a gradcheck CheckResult, not {type(result).__name__}"
        )
    target = resolve_path(path, "check.html")
    return atomic_write(target, render_check_report(result, title=title, back_link=back_link))


#: The name :func:`write` had first (``gradcheck.write_check_report``): the same function.
write_check_report = write


def render_check_report(
    result: CheckResult, *, title: str | None = None, back_link: str | None = None
) -> str:
    """The HTML text of :func:`write` without writing it."""
    from gradcheck.report.check_page import render_check_report as render

    return render(result, title=title, back_link=back_link)


def write_seed_report(
    demo: SeedDemonstration, path: str | Path | None = None, **options: Any
) -> Path:
    """Write the report answering the seed question ("why ``a_prev.T @ delta``?").

    Parameters
    ----------
    demo : SeedDemonstration
        From :func:`gradcheck.demo.seed.demonstrate`: the page renders its
        measurements and computes none.
    path : str or Path, optional
        Default ``reports/seed.html``.
    **options
        ``title``, and ``back_link`` (default ``"index.html"``, the index of the run
        written beside it; None for none), as for :func:`write`.

    Returns
    -------
    pathlib.Path
        The file written.

    Raises
    ------
    ParameterTypeError
        ``demo`` is not a SeedDemonstration, or ``path`` is not a path.
    """
    target = resolve_path(path, "seed.html")
    return atomic_write(target, render_seed_report(demo, **options))


def render_seed_report(demo: SeedDemonstration, **options: Any) -> str:
    """The HTML text of :func:`write_seed_report`."""
    from gradcheck.report.seed_page import render_seed_report as render

    return render(demo, **options)


from gradcheck.report.index_page import IndexEntry, render_index  # noqa: E402


def write_index(
    entries: Sequence[IndexEntry] = (),
    path: str | Path | None = None,
    *,
    seed_href: str | None = "seed.html",
    seed_demo: Any = None,
    title: str | None = None,
    seconds: float | None = None,
) -> Path:
    """Write the index of a run: the seed answer and the battery of checks, linked.

    Parameters
    ----------
    entries : sequence of IndexEntry
        One per check of the battery (label, result, link to its report,
        whether it is expected to pass).
    path : str or Path, optional
        Default ``reports/index.html``.
    seed_href : str or None
        Relative link to the seed report; None leaves the seed section out.
    seed_demo : SeedDemonstration, optional
        Adds the seed's headline numbers to the index.
    title : str, optional
        The page's heading.
    seconds : float, optional
        How long the run took, shown on the page.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    target = resolve_path(path, "index.html")
    text = render_index(
        entries, seed_href=seed_href, seed_demo=seed_demo, title=title, seconds=seconds
    )
    return atomic_write(target, text)
