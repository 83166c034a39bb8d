"""Self-contained HTML reports: one check, the seed question, and the index of a run.

Every page is one file that opens offline: jinja2 templates shipped with the
package (autoescaped), inline CSS, matplotlib figures as inline SVG, no
scripts, fonts or links to the network.  Files are written atomically
(a temporary file in the same directory, then :func:`os.replace`), so an
interrupted run never leaves a half-written report where a good one was.

Examples
--------
>>> import numpy as np, gradcheck, tempfile, pathlib
>>> from gradcheck.report import write_check_report
>>> loss = lambda p: float(np.sum(np.sin(p["w"]) ** 2))
>>> grad = lambda p: {"w": 2 * np.sin(p["w"]) * np.cos(p["w"])}
>>> params = {"w": np.arange(3.0)}
>>> result = gradcheck.check(loss, grad, params)
>>> out = pathlib.Path(tempfile.mkdtemp()) / "check.html"
>>> write_check_report(result, out, loss=loss, params=params).name
'check.html'
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from gradcheck.report._render import DEFAULT_DIR, atomic_write, resolve_path

if TYPE_CHECKING:  # pragma: no cover
    from gradcheck.results import CheckResult

__all__ = [
    "DEFAULT_DIR",
    "IndexEntry",
    "write_check_report",
    "write_seed_report",
    "write_index",
    "render_check_report",
    "render_seed_report",
    "render_index",
]


def write_check_report(
    result: CheckResult,
    path: str | Path | None = None,
    *,
    title: str | None = None,
    loss: Callable[[Any], Any] | None = None,
    params: Any = None,
    samples: int = 4,
    rng: Any = None,
    back_link: str | None = None,
) -> Path:
    """Write the HTML report of a :func:`gradcheck.check` result.

    Parameters
    ----------
    result : CheckResult
        The check to report.
    path : str or Path, optional
        The ``.html`` file (or a directory to put ``check.html`` in).  Default
        ``reports/check.html``.
    title : str, optional
        The page's heading.
    loss : callable, optional
        The loss that was checked.  With ``params``, the report spends extra
        loss evaluations on ``samples`` elements (the worst ones first) to draw
        the error-versus-step curve of central differences and to compare all
        references (central, Richardson, complex step, SciPy).  Without it
        those sections say how to get them.
    params : array_like or tree of array_like, optional
        The parameters the check was run at (needed with ``loss``).
    samples : int
        Elements to sweep and compare (each costs about 80 loss evaluations).
    rng : numpy.random.Generator, int or None
        Draws the extra sample elements; default the check's own seed.
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
        ``path`` does not end in ``.html``, ``loss`` is given without
        ``params``, or ``params`` do not match the result.
    """
    from gradcheck.errors import InvalidParameterError, ParameterTypeError
    from gradcheck.report.check_page import gather_evidence, render_check_report
    from gradcheck.results import CheckResult

    if not isinstance(result, CheckResult):
        raise ParameterTypeError(
            f"result: expected a gradcheck CheckResult, not {type(result).__name__}"
        )
    target = resolve_path(path, "check.html")
    if (loss is None) != (params is None):
        raise InvalidParameterError(
            "loss, params: give both (for the step-size and reference sections) or neither"
        )
    evidence = None
    if loss is not None:
        evidence = gather_evidence(result, loss, params, samples=samples, rng=rng)
    text = render_check_report(result, title=title, evidence=evidence, back_link=back_link)
    return atomic_write(target, text)


def render_check_report(result: CheckResult, **options: Any) -> str:
    """The HTML text of :func:`write_check_report` without writing it (``evidence=`` optional)."""
    from gradcheck.report.check_page import render_check_report as render

    return render(result, **options)


def write_seed_report(demo: Any = None, path: str | Path | None = None, **options: Any) -> Path:
    """Write the report answering the seed question ("why ``a_prev.T @ delta``?").

    Parameters
    ----------
    demo : SeedDemonstration, optional
        From :func:`gradcheck.demo.seed.demonstrate`; computed when omitted.
    path : str or Path, optional
        Default ``reports/seed.html``.

    Returns
    -------
    pathlib.Path
        The file written.
    """
    target = resolve_path(path, "seed.html")
    return atomic_write(target, render_seed_report(demo, **options))


def render_seed_report(demo: Any = None, **options: Any) -> str:
    """The HTML text of :func:`write_seed_report`."""
    from gradcheck.report.seed_page import render_seed_report as render

    if demo is None:
        from gradcheck.demo.seed import demonstrate

        demo = demonstrate()
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
