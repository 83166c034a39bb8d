"""Figures for the HTML reports, rendered by matplotlib to inline SVG strings.

Figures are built with :class:`matplotlib.figure.Figure` directly (no pyplot,
no global backend state), saved as SVG with text kept as text, and cleaned
so they can be pasted into an HTML page: no XML prologue, no metadata, no
namespace URLs.  Every string that comes from the user (parameter names) is
escaped for matplotlib's mathtext, and matplotlib escapes it for XML.
"""

from __future__ import annotations

import functools
import hashlib
import io
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

import numpy as np
from numpy.typing import NDArray

if TYPE_CHECKING:  # pragma: no cover
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from gradcheck.results import ParameterResult, StepSweep

__all__ = [
    "COLORS",
    "figure",
    "to_svg",
    "mpl_text",
    "ratio_picture",
    "ratio_exponents",
    "ratio_tick_labels",
    "ratio_colors",
    "ratio_gradient_css",
    "BlockMap",
    "block_map",
    "MAP_CELLS_MAX",
    "step_curve",
    "line_plot",
]

#: The palette shared with the CSS of the templates.
COLORS = {
    "pass": "#1a7f37",
    "fail": "#cf222e",
    "warn": "#bf8700",
    "blue": "#0969da",
    "purple": "#8250df",
    "grey": "#6e7781",
    "light": "#d0d7de",
    "ink": "#1f2328",
}

_RC: dict[str, Any] = {
    "svg.fonttype": "none",
    "font.family": "sans-serif",
    "font.size": 10,
    "xtick.labelsize": 9,
    "ytick.labelsize": 9,
    "axes.edgecolor": "#8c959f",
    "axes.labelcolor": "#1f2328",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "xtick.color": "#57606a",
    "ytick.color": "#57606a",
    "legend.frameon": False,
    "legend.fontsize": 9,
}


def _styled(function: Callable[..., Any]) -> Callable[..., Any]:
    """Run a plotting function under the report's matplotlib style, leaving the user's alone."""

    @functools.wraps(function)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        import matplotlib

        with matplotlib.rc_context(_RC):  # type: ignore[arg-type]
            return function(*args, **kwargs)

    return wrapper


def mpl_text(text: Any) -> str:
    """A user string safe for matplotlib: ``$`` would start mathtext, so it is escaped."""
    return str(text).replace("\\", "\\\\").replace("$", r"\$")


def figure(width: float, height: float) -> Figure:
    """A new figure (inches), outside pyplot, in the report's style.

    Margins are set by hand (:func:`margins`): constrained layout would draw
    every figure twice, and report writing must stay fast.
    """
    from matplotlib.figure import Figure

    return Figure(figsize=(width, height))


def margins(
    fig: Figure, *, left: float = 0.75, right: float = 0.2, top: float = 0.35, bottom: float = 0.5
) -> dict[str, float]:
    """Gridspec margins from sizes in inches (so they do not change with the figure's size)."""
    width, height = fig.get_size_inches()
    return {
        "left": left / width,
        "right": 1 - right / width,
        "top": 1 - top / height,
        "bottom": bottom / height,
    }


_STRIP = [
    re.compile(r"<\?xml[^>]*\?>\s*", re.S),
    re.compile(r"<!DOCTYPE[^>]*>\s*", re.S),
    re.compile(r"<metadata>.*?</metadata>\s*", re.S),
    re.compile(r'\s+xmlns(:\w+)?="[^"]*"'),
]


_ID = re.compile(r'\sid="([^"]+)"')


def _unique_ids(svg: str) -> str:
    """``svg`` with its ids, and the references to them, prefixed by a hash of the figure.

    matplotlib numbers ids per figure (``figure_1``, ``patch_1``...), so two figures on one
    page would repeat them, which is invalid HTML.  A hash of the content, not a counter,
    keeps a page byte-for-byte the same from run to run.
    """
    ids = set(_ID.findall(svg))
    if not ids:
        return svg
    prefix = "f" + hashlib.sha1(svg.encode("utf-8")).hexdigest()[:10] + "-"

    def rename(match: re.Match[str]) -> str:
        name = match.group(2)
        return match.group(1) + (prefix + name if name in ids else name) + match.group(3)

    svg = re.sub(r'(\sid=")([^"]+)(")', rename, svg)
    svg = re.sub(r'(\s(?:xlink:)?href="#)([^"]+)(")', rename, svg)
    return re.sub(r"(url\(#)([^)]+)(\))", rename, svg)


def to_svg(fig: Figure, *, label: str = "") -> str:
    """``fig`` as an inline ``<svg>`` element (class ``plot``), with an accessible label."""
    buffer = io.StringIO()
    fig.savefig(
        buffer, format="svg", metadata={"Date": None, "Creator": None, "Format": None, "Type": None}
    )
    svg = buffer.getvalue()
    for pattern in _STRIP:
        svg = pattern.sub(" " if pattern.pattern.startswith(r"\s+xmlns") else "", svg)
    svg = _unique_ids(svg.strip())
    from markupsafe import escape

    attributes = f' class="plot" role="img" aria-label="{escape(label)}"'
    return svg.replace("<svg ", "<svg" + attributes + " ", 1)


def _matrix(values: NDArray[Any], rows: int | None = None) -> NDArray[Any]:
    """Any parameter as a 2-D picture: ``rows`` rows (default: its first axis; a vector is one
    row, a scalar one cell), the remaining axes flattened into the columns."""
    if values.ndim == 0:
        return values.reshape(1, 1)
    if rows is None:
        rows = 1 if values.ndim == 1 else values.shape[0]
    return values.reshape(rows, -1)


#: Calm blues well below the tolerance, white near it, red beyond it (position, colour).
RATIO_STOPS = (
    (0.0, "#dbe9f6"),
    (0.35, "#9ecae1"),
    (0.62, "#f7fbff"),
    (0.75, "#fdd0a2"),
    (0.87, "#ef6548"),
    (1.0, "#7f0000"),
)
#: Colour of elements that were not compared.
UNCHECKED = "#eaeef2"


def ratio_colors(values: NDArray[np.float64]) -> list[str]:
    """Hex colours of log10 ratios (as :func:`ratio_picture` gives), without matplotlib."""
    positions = np.array([p for p, _ in RATIO_STOPS])
    rgb = np.array([[int(c[i : i + 2], 16) for i in (1, 3, 5)] for _, c in RATIO_STOPS], float)
    low, high = RATIO_RANGE
    t = np.clip((np.asarray(values, dtype=float).ravel() - low) / (high - low), 0.0, 1.0)
    channels = np.stack([np.interp(t, positions, rgb[:, k]) for k in range(3)], axis=1)
    out = []
    for value, (r, g, b) in zip(
        np.asarray(values, dtype=float).ravel(), channels.round(), strict=True
    ):
        out.append(UNCHECKED if np.isnan(value) else f"#{int(r):02x}{int(g):02x}{int(b):02x}")
    return out


def ratio_gradient_css() -> str:
    """The colour scale as a CSS ``linear-gradient`` (for the legend of SVG heatmaps)."""
    stops = ", ".join(f"{c} {100 * p:.0f}%" for p, c in RATIO_STOPS)
    return f"linear-gradient(to right, {stops})"


#: log10(|error| / tolerance) is shown between these limits.
RATIO_RANGE = (-5.0, 3.0)


def ratio_exponents(parameter: ParameterResult, rows: int | None = None) -> NDArray[np.float64]:
    """``log10(|error| / tolerance)`` as :func:`ratio_picture` lays it out, not clipped.

    The true power of ten a clipped cell writes in; ``inf`` where the error is not finite.
    """
    p = parameter
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log10(p.abs_error / p.tolerance)
    ratio = np.where(p.checked & np.isnan(ratio), np.inf, ratio)
    return _matrix(np.where(p.checked, ratio, np.nan), rows)


def ratio_picture(parameter: ParameterResult, rows: int | None = None) -> NDArray[np.float64]:
    """What a heatmap shows: ``log10(|error| / tolerance)`` as a 2-D array, NaN where unchecked.

    Clipped to :data:`RATIO_RANGE` (the scales mark the clipped ends ``≤`` and ``≥``); a
    non-finite error counts as the top of the range.  ``rows`` as for the layout of
    :func:`block_map`.
    """
    return np.clip(ratio_exponents(parameter, rows), *RATIO_RANGE)


#: Most cells along each side of an error map: larger parameters are shown in blocks.  64 keeps
#: a cell at least 5 px wide on a 390 px phone, and a map of at most 4096 SVG cells.
MAP_CELLS_MAX = 64


@dataclass(frozen=True, eq=False)
class BlockMap:
    """An error map of one parameter, aggregated to blocks of ``block`` elements when large.

    Attributes
    ----------
    exponent : ndarray
        Per cell, the unclipped ``log10(|error| / tolerance)`` of the block's worst element
        (NaN where no element of the block was compared, ``inf`` for a non-finite error).
    worst : ndarray of int
        Per cell, the flat index (in the parameter) of that worst element, -1 if none.
    failing : ndarray of bool
        Per cell, whether any element of the block fails.
    block : tuple of int
        Elements per cell, ``(rows, columns)``; ``(1, 1)`` when not aggregated.
    layout : tuple of int
        The parameter as a matrix, ``(rows, columns)``, before aggregation.
    """

    exponent: NDArray[np.float64]
    worst: NDArray[np.intp]
    failing: NDArray[np.bool_]
    block: tuple[int, int]
    layout: tuple[int, int]

    @property
    def aggregated(self) -> bool:
        return self.block != (1, 1)

    def cell_of(self, flat_index: int) -> tuple[int, int]:
        """The cell ``(row, column)`` that shows the parameter's element ``flat_index``."""
        i, j = divmod(int(flat_index), self.layout[1])
        return i // self.block[0], j // self.block[1]


def block_map(
    parameter: ParameterResult, rows: int | None = None, *, max_cells: int = MAP_CELLS_MAX
) -> BlockMap:
    """The error map of ``parameter`` as a matrix of ``rows`` rows, in at most ``max_cells``
    cells a side: each cell keeps its block's WORST element (largest error / tolerance), so a
    single wrong element among 100,000 still colours its cell red."""
    exponent = ratio_exponents(parameter, rows)
    n_rows, n_cols = exponent.shape
    block = (-(-n_rows // max_cells), -(-n_cols // max_cells))
    shape = (-(-n_rows // block[0]), -(-n_cols // block[1]))
    padded = np.full((shape[0] * block[0], shape[1] * block[1]), np.nan)
    padded[:n_rows, :n_cols] = exponent
    failed = np.zeros(padded.shape, dtype=bool)
    failed[:n_rows, :n_cols] = _matrix(np.asarray(parameter.failed), rows)
    flat = np.full(padded.shape, -1, dtype=np.intp)
    flat[:n_rows, :n_cols] = np.arange(n_rows * n_cols).reshape(n_rows, n_cols)

    def blocks(values: NDArray[Any]) -> NDArray[Any]:  # (cell rows, cell cols, elements)
        tiles = values.reshape(shape[0], block[0], shape[1], block[1]).swapaxes(1, 2)
        return tiles.reshape(shape[0], shape[1], block[0] * block[1])

    # Unchecked elements rank below every compared one (even an exact one, log10(0) = -inf).
    ranked = blocks(np.where(np.isnan(padded), -np.inf, np.maximum(padded, -1e300)))
    at = np.argmax(ranked, axis=2)[..., None]
    compared = blocks(~np.isnan(padded)).any(axis=2)
    worst_exponent = np.where(compared, np.take_along_axis(ranked, at, 2)[..., 0], np.nan)
    worst = np.where(compared, np.take_along_axis(blocks(flat), at, 2)[..., 0], -1)
    failing = np.asarray(blocks(failed).any(axis=2), dtype=bool)
    return BlockMap(worst_exponent, worst, failing, block, (n_rows, n_cols))


def ratio_tick_labels() -> list[str]:
    """The colour scale's powers of ten, the clipped ends marked: ``≤10⁻⁵`` ... ``≥10³``."""
    low, high = int(RATIO_RANGE[0]), int(RATIO_RANGE[1])
    powers = range(low, high + 1)
    labels = ["1" if k == 0 else "10" + str(k).translate(_SUPERSCRIPT) for k in powers]
    return ["≤" + labels[0], *labels[1:-1], "≥" + labels[-1]]


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def _power_of_ten(value: float, position: Any = None) -> str:
    """A log axis' tick label as plain text, ``10⁻⁸`` (blank between powers of ten).

    matplotlib's own labels are mathtext, whose parsing took most of a step-curve
    figure's time; plain text reads the same and keeps a report page quick to write.
    """
    if not value > 0:
        return ""
    exponent = float(np.log10(value))
    if abs(exponent - round(exponent)) > 1e-9:
        return ""
    return "10" + str(int(round(exponent))).translate(_SUPERSCRIPT)


def _short(name: str, limit: int = 30) -> str:
    return name if len(name) <= limit else name[: limit - 1] + "…"


#: Width of every matplotlib figure, in inches, and the smallest font in it, in points.  The
#: pages scale a figure to the column's width (at most ``PLOT_MAX_PX``, the CSS of the
#: templates): on a 390 px phone the column is 362 px, so 4.8 in (345.6 pt) is drawn at
#: 1.05 px per point and 9 pt text stays 9.4 px high.  Chosen over a horizontally scrolled
#: plot at its natural size: a whole plot in view reads better than a panning window.
FIGURE_WIDTH, FONT_MIN = 4.8, 9.0

#: What each line of a step-curve panel is, in the order drawn (the page prints the legend
#: once, in HTML, for all panels): label, colour, line style.
STEP_CURVE_LEGEND = (
    ("|central(h) − truth|", COLORS["blue"], "solid"),
    ("roundoff bound 3σ/h", COLORS["grey"], "dotted"),
    ("|your gradient − truth| (green within tolerance, red not)", COLORS["fail"], "solid"),
    ("tolerance", COLORS["warn"], "dashed"),
    ("gradcheck's central step", COLORS["purple"], "solid"),
    ("the step that decided, when another", COLORS["purple"], "dashed"),
)


@_styled
def step_curve(
    sweep: StepSweep,
    i: int,
    label: str,
    analytic: float,
    tolerance: float,
    used_step: float,
) -> str:
    """Error of a central difference against the step, for the ``i``-th swept element.

    The V (truncation falling as ``h**2`` to the right, roundoff rising as ``1/h``
    to the left), the roundoff bound, the step gradcheck uses, and, as a horizontal
    line, how far the user's gradient is from the same truth, with its tolerance.
    One small figure per element, so the page can lay them out in as many columns
    as the screen holds.
    """
    from matplotlib.ticker import FuncFormatter, NullFormatter

    fig = figure(FIGURE_WIDTH, 2.9)
    ax = fig.add_subplot(
        fig.add_gridspec(1, 1, **margins(fig, left=0.62, right=0.12, top=0.3, bottom=0.5))[0, 0]
    )
    h = sweep.absolute_steps[i]
    ax.loglog(h, np.maximum(sweep.error[i], 1e-18), "o-", color=COLORS["blue"], markersize=3,
              linewidth=1.4)  # fmt: skip
    ax.loglog(h, np.maximum(sweep.roundoff[i], np.finfo(np.float64).tiny), ":",
              color=COLORS["grey"], linewidth=1)  # fmt: skip
    gradient_error = abs(float(analytic) - float(sweep.truth[i]))
    ok = gradient_error <= float(tolerance)
    ax.axhline(max(gradient_error, 1e-18), color=COLORS["pass"] if ok else COLORS["fail"],
               linewidth=1.6)  # fmt: skip
    if np.isfinite(tolerance):
        ax.axhline(float(tolerance), color=COLORS["warn"], linewidth=1, linestyle="--")
    ax.axvline(float(sweep.default_step[i]), color=COLORS["purple"], linewidth=1.2)
    if np.isfinite(used_step) and not np.isclose(used_step, sweep.default_step[i]):
        ax.axvline(float(used_step), color=COLORS["purple"], linewidth=1, linestyle="--")
    for axis in (ax.xaxis, ax.yaxis):
        axis.set_major_formatter(FuncFormatter(_power_of_ten))
        axis.set_minor_formatter(NullFormatter())
    # Every other power of ten: ten labels at 9 pt do not fit across 4 inches.
    ax.xaxis.set_major_locator(_every_other_decade())
    ax.yaxis.set_major_locator(_every_other_decade())
    ax.set_title(mpl_text(_short(label, 44)), loc="left")
    ax.set_xlabel("step h")
    ax.set_ylabel("absolute error")
    ax.grid(True, which="major", color="#eaeef2", linewidth=0.6)
    return to_svg(fig, label=f"central-difference error against step size, {label}")


def _every_other_decade() -> Any:
    from matplotlib.ticker import LogLocator

    return LogLocator(base=100.0, numticks=8)


@_styled
def line_plot(
    series: Sequence[tuple[str, NDArray[Any], NDArray[Any], dict[str, Any]]],
    *,
    xlabel: str,
    ylabel: str,
    title: str = "",
    log_y: bool = False,
    height: float = 3.0,
    hlines: Sequence[tuple[float, str, dict[str, Any]]] = (),
    label: str = "",
    ax_callback: Any = None,
    legend_above: bool = False,
) -> str:
    """A plain line plot: ``series`` are ``(legend, x, y, matplotlib style kwargs)``."""
    rows_of_legend = len(series) + len(hlines) if legend_above else 0
    top = (0.35 if title else 0.15) + 0.19 * rows_of_legend
    fig = figure(FIGURE_WIDTH, height + top)
    grid = fig.add_gridspec(1, 1, **margins(fig, left=0.85, right=0.15, top=top))
    ax: Axes = fig.add_subplot(grid[0, 0])
    for name, x, y, style in series:
        ax.plot(x, y, label=mpl_text(name), **style)
    for value, name, style in hlines:
        ax.axhline(value, label=mpl_text(name), **style)
    if log_y:
        ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(mpl_text(title), loc="left")
    ax.grid(True, which="major", color="#eaeef2", linewidth=0.6)
    if legend_above:
        ax.legend(loc="lower left", bbox_to_anchor=(-0.12, 1.01), ncol=1, borderaxespad=0.2)
    else:
        ax.legend(loc="best")
    if ax_callback is not None:
        ax_callback(ax)
    return to_svg(fig, label=label or title)
