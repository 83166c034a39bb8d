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
    "error_heatmaps",
    "step_curves",
    "battery_overview",
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
    "font.size": 9.5,
    "axes.edgecolor": "#8c959f",
    "axes.labelcolor": "#1f2328",
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.titlesize": 10,
    "axes.titleweight": "bold",
    "xtick.color": "#57606a",
    "ytick.color": "#57606a",
    "legend.frameon": False,
    "legend.fontsize": 8.5,
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


def _matrix(values: NDArray[Any]) -> NDArray[Any]:
    """Any parameter as a 2-D picture: rows of the first axis (a vector is one row)."""
    if values.ndim == 0:
        return values.reshape(1, 1)
    if values.ndim == 1:
        return values.reshape(1, -1)
    return values.reshape(values.shape[0], -1)


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


def _ratio_cmap() -> Any:
    from matplotlib.colors import LinearSegmentedColormap

    return LinearSegmentedColormap.from_list("gradcheck_ratio", list(RATIO_STOPS))


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


def ratio_exponents(parameter: ParameterResult) -> NDArray[np.float64]:
    """``log10(|error| / tolerance)`` as :func:`ratio_picture` lays it out, not clipped.

    The true power of ten a clipped cell writes in; ``inf`` where the error is not finite.
    """
    p = parameter
    with np.errstate(divide="ignore", invalid="ignore"):
        ratio = np.log10(p.abs_error / p.tolerance)
    ratio = np.where(p.checked & np.isnan(ratio), np.inf, ratio)
    return _matrix(np.where(p.checked, ratio, np.nan))


def ratio_picture(parameter: ParameterResult) -> NDArray[np.float64]:
    """What a heatmap shows: ``log10(|error| / tolerance)`` as a 2-D array, NaN where unchecked.

    Clipped to :data:`RATIO_RANGE` (the scales mark the clipped ends ``≤`` and ``≥``); a
    non-finite error counts as the top of the range.
    """
    return np.clip(ratio_exponents(parameter), *RATIO_RANGE)


def ratio_tick_labels() -> list[str]:
    """The colour scale's powers of ten, the clipped ends marked: ``≤10⁻⁵`` ... ``≥10³``."""
    low, high = int(RATIO_RANGE[0]), int(RATIO_RANGE[1])
    powers = range(low, high + 1)
    labels = ["1" if k == 0 else "10" + str(k).translate(_SUPERSCRIPT) for k in powers]
    return ["≤" + labels[0], *labels[1:-1], "≥" + labels[-1]]


#: Heatmap figure geometry in inches: figure width, usable width, panel title, tick labels,
#: gap between panels, left margin, colour-bar strip.
_MAP_WIDTH, _MAP_USABLE, _MAP_TITLE, _MAP_TICKS, _MAP_GAP, _MAP_LEFT, _MAP_BAR = (
    8.6, 8.0, 0.42, 0.32, 0.45, 0.35, 0.75
)  # fmt: skip


def _flow_layout(sizes: list[tuple[float, float, float]]) -> list[list[int]]:
    """Panels flowed left to right like words: the panel indices of each row."""
    rows: list[list[int]] = [[]]
    x = _MAP_LEFT
    for k, (w, _, _) in enumerate(sizes):
        if rows[-1] and x + w > _MAP_USABLE:
            rows.append([])
            x = _MAP_LEFT
        rows[-1].append(k)
        x += w + _MAP_GAP + _MAP_LEFT
    return rows


def _heatmap_panel(
    ax: Any, p: ParameterResult, picture: NDArray[Any], cell: float, image_args: dict[str, Any]
) -> Any:
    """One parameter's panel: the map, its title, ticks, the worst element outlined."""
    from matplotlib.patches import Rectangle

    image = ax.imshow(picture, aspect="auto", interpolation="nearest", **image_args)
    verdict = "ok" if p.passed else f"{p.n_failed} of {p.n_checked} fail"
    color = COLORS["pass"] if p.passed else COLORS["fail"]
    shape = "×".join(str(s) for s in p.shape) or "scalar"
    ax.set_title(
        f"{mpl_text(_short(p.name))}\n{shape} · {verdict}",
        color=color,
        loc="left",
        fontsize=9,
        linespacing=1.3,
    )
    r, c = picture.shape
    ax.set_xticks(range(c) if c <= 10 else np.linspace(0, c - 1, 5).round().astype(int))
    ax.set_yticks(range(r) if r <= 10 else np.linspace(0, r - 1, 5).round().astype(int))
    ax.tick_params(labelsize=7.5, length=2)
    if r == 1 and p.analytic.ndim <= 1:
        ax.set_yticks([])
    for side in ("top", "right"):
        ax.spines[side].set_visible(True)
    if p.checked.any():
        order = _matrix(np.arange(p.analytic.size).reshape(p.shape))
        target = np.ravel_multi_index(p.worst_index, p.shape) if p.shape else 0
        where = np.argwhere(order == target)[0]
        ax.add_patch(
            Rectangle(
                (where[1] - 0.5, where[0] - 0.5),
                1,
                1,
                fill=False,
                edgecolor=COLORS["ink"],
                linewidth=1.6,
            )
        )
    if cell >= 0.22:
        for (i, j), value in np.ndenumerate(picture):
            if np.isfinite(value) and value > RATIO_RANGE[0]:
                ax.text(
                    j,
                    i,
                    f"{value:.0f}".replace("-", "−"),
                    ha="center",
                    va="center",
                    fontsize=7,
                    color="white" if value > 1.5 else "#24292f",
                )
    return image


def _ratio_colorbar(fig: Any, image: Any, height: float) -> None:
    """The shared colour scale under the panels, with the pass/fail line at 0."""
    width, left = _MAP_WIDTH, _MAP_LEFT
    cax = fig.add_axes((left / width, 0.42 / height, 4.2 / width, 0.13 / height))
    bar = fig.colorbar(image, cax=cax, orientation="horizontal")
    bar.set_ticks(range(int(RATIO_RANGE[0]), int(RATIO_RANGE[1]) + 1), labels=ratio_tick_labels())
    bar.ax.tick_params(labelsize=7.5)
    bar.ax.axvline(0.0, color=COLORS["ink"], linewidth=1.5)
    fig.text(
        (left + 4.4) / width,
        0.44 / height,
        "|error| / tolerance:  below 1 passes, above 1 fails (the ends are clipped)",
        fontsize=8.5,
        va="bottom",
        color=COLORS["ink"],
    )


def error_heatmaps(parameters: Sequence[ParameterResult], *, max_panels: int = 16) -> str | None:
    """One heatmap of ``log10(|error| / tolerance)`` per parameter, in one figure.

    Above 0 (red) an element fails.  Unchecked elements are grey; the worst
    element of each parameter is outlined.  Small matrices get square cells
    with the power of ten written in; panels flow left to right like words.
    Returns None when there is nothing to draw.
    """
    from matplotlib.colors import Normalize

    shown = [p for p in parameters if p.analytic.size > 0][:max_panels]
    if not shown:
        return None
    pictures = [ratio_picture(p) for p in shown]
    sizes = []
    for picture in pictures:
        r, c = picture.shape
        cell = min(0.34, 6.8 / c, 3.2 / r)
        sizes.append((max(c * cell, 0.5), max(r * cell, 0.3), cell))
    rows = _flow_layout(sizes)
    row_heights = [max(sizes[k][1] for k in row) + _MAP_TITLE + _MAP_TICKS for row in rows]
    width, height = _MAP_WIDTH, 0.1 + sum(row_heights) + _MAP_BAR
    fig = figure(width, height)
    image_args = {
        "cmap": _ratio_cmap().with_extremes(bad="#eaeef2"),
        "norm": Normalize(*RATIO_RANGE),
    }
    image = None
    top = height - 0.1
    for row, row_height in zip(rows, row_heights, strict=True):
        x = _MAP_LEFT
        for k in row:
            w, h, cell = sizes[k]
            box = (x / width, (top - _MAP_TITLE - h) / height, w / width, h / height)
            image = _heatmap_panel(fig.add_axes(box), shown[k], pictures[k], cell, image_args)
            x += w + _MAP_GAP + _MAP_LEFT
        top -= row_height
    if image is not None:
        _ratio_colorbar(fig, image, height)
    return to_svg(fig, label="heatmaps of error relative to tolerance per element")


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


@_styled
def step_curves(
    sweep: StepSweep,
    labels: Sequence[str],
    analytic: NDArray[np.float64],
    tolerance: NDArray[np.float64],
    used_step: NDArray[np.float64],
) -> str:
    """Error of a central difference against the step, one small panel per element.

    Each panel shows the V (truncation falling as ``h**2`` to the right,
    roundoff rising as ``1/h`` to the left), the roundoff bound, the step
    gradcheck uses, and, as a horizontal line, how far the user's gradient
    is from the same truth, with its tolerance.
    """
    from matplotlib.ticker import FuncFormatter, NullFormatter

    k = len(sweep.indices)
    columns = min(k, 2)
    rows = -(-k // columns)
    fig = figure(8.6, 0.5 + 2.6 * rows)
    grid = fig.add_gridspec(
        rows,
        columns,
        hspace=0.55,
        wspace=0.22,
        **margins(fig, left=0.8, right=0.15, top=0.75, bottom=0.5),
    )
    error = sweep.error
    floor = np.finfo(np.float64).tiny
    for i in range(k):
        ax = fig.add_subplot(grid[i // columns, i % columns])
        h = sweep.absolute_steps[i]
        e = np.maximum(error[i], 1e-18)
        ax.loglog(
            h,
            e,
            "o-",
            color=COLORS["blue"],
            markersize=3,
            linewidth=1.4,
            label="|central(h) − truth|",
        )
        ax.loglog(
            h,
            np.maximum(sweep.roundoff[i], floor),
            ":",
            color=COLORS["grey"],
            linewidth=1,
            label="roundoff bound 3σ/h",
        )
        gradient_error = abs(float(analytic[i]) - float(sweep.truth[i]))
        ok = gradient_error <= float(tolerance[i])
        ax.axhline(
            max(gradient_error, 1e-18),
            color=COLORS["pass"] if ok else COLORS["fail"],
            linewidth=1.6,
            label="|your gradient − truth|",
        )
        if np.isfinite(tolerance[i]):
            ax.axhline(
                float(tolerance[i]),
                color=COLORS["warn"],
                linewidth=1,
                linestyle="--",
                label="tolerance",
            )
        ax.axvline(
            float(sweep.default_step[i]),
            color=COLORS["purple"],
            linewidth=1.2,
            label="gradcheck's central step",
        )
        if np.isfinite(used_step[i]) and not np.isclose(used_step[i], sweep.default_step[i]):
            ax.axvline(
                float(used_step[i]),
                color=COLORS["purple"],
                linewidth=1,
                linestyle="--",
                label="step that decided",
            )
        for axis in (ax.xaxis, ax.yaxis):
            axis.set_major_formatter(FuncFormatter(_power_of_ten))
            axis.set_minor_formatter(NullFormatter())
        ax.set_title(mpl_text(_short(labels[i], 40)), loc="left")
        ax.set_xlabel("step h")
        if i % columns == 0:
            ax.set_ylabel("absolute error")
        ax.grid(True, which="major", color="#eaeef2", linewidth=0.6)
        if i == 0:
            handles, names = ax.get_legend_handles_labels()
            fig.legend(
                handles, names, loc="upper center", ncol=3, fontsize=8.5, bbox_to_anchor=(0.5, 1.0)
            )
    return to_svg(fig, label="central-difference error against step size")


@_styled
def battery_overview(
    labels: Sequence[str],
    ratios: Sequence[float],
    statuses: Sequence[str],
    expected: Sequence[bool | None],
) -> str:
    """A dot per check: its worst ``|error| / tolerance`` on a log axis, the pass line at 1."""
    n = len(labels)
    fig = figure(8.6, 0.8 + (0.28 if n <= 16 else 0.19) * n)
    width = max((len(str(label)) for label in labels), default=4)
    ax = fig.add_subplot(
        fig.add_gridspec(
            1,
            1,
            **margins(fig, left=min(0.3 + 0.075 * width, 4.0), right=0.3, top=0.15, bottom=0.55),
        )[0, 0]
    )
    y = np.arange(n)[::-1]
    low, high = OVERVIEW_RANGE
    raw = np.nan_to_num(np.asarray(ratios, dtype=float), nan=low, posinf=np.inf)
    values = np.clip(raw, low, high)
    beyond = raw > high  # drawn at the axis' end as a triangle, with the true power beside
    colors = [
        COLORS["pass"] if s == "passed" else COLORS["fail"] if s == "failed" else COLORS["warn"]
        for s in statuses
    ]
    ax.axvspan(1.0, 1e7, color="#ffebe9", zorder=0)
    ax.axvline(1.0, color=COLORS["ink"], linewidth=1)
    ax.hlines(y, 1e-6, values, color="#d0d7de", linewidth=1, zorder=1)
    for mask, marker in ((~beyond, "o"), (beyond, ">")):
        ax.scatter(
            values[mask],
            y[mask],
            c=[c for c, m in zip(colors, mask, strict=True) if m],
            s=38 if marker == "o" else 48,
            marker=marker,
            zorder=3,
            edgecolors="white",
            linewidths=0.6,
        )
    for yi, value in zip(y[beyond], raw[beyond], strict=True):
        power = "∞" if np.isinf(value) else _power_of_ten(10.0 ** np.floor(np.log10(value)))
        ax.annotate(
            power, (high, yi), xytext=(-7, 0), textcoords="offset points", ha="right",
            va="center", fontsize=7.5, color=COLORS["ink"],
        )  # fmt: skip
    for yi, value, want, status in zip(y, values, expected, statuses, strict=True):
        if want is not None and want != (status == "passed"):
            ax.annotate(
                "unexpected",
                (value, yi),
                xytext=(6, -3),
                textcoords="offset points",
                color=COLORS["fail"],
                fontsize=8,
                fontweight="bold",
            )
    ax.set_xscale("log")
    ax.set_xlim(1e-6, 1e7)
    ax.set_yticks(y, [mpl_text(_short(label, 48)) for label in labels])
    ax.tick_params(axis="y", labelsize=9 if n <= 16 else 7.5)
    ax.set_ylim(-0.7, n - 0.3)
    ax.set_xlabel("worst |error| / tolerance  (right of the line: the gradient is wrong)")
    ax.tick_params(axis="y", length=0)
    ax.grid(True, axis="x", which="major", color="#eaeef2", linewidth=0.6)
    powers = range(int(np.log10(low)), int(np.log10(high)) + 1, 2)
    ax.set_xticks(
        [10.0**k for k in powers],
        [("≤" if k == powers[0] else "≥" if k == powers[-1] else "") + _power_of_ten(10.0**k)
         for k in powers],
    )  # fmt: skip
    ax.minorticks_off()
    return to_svg(fig, label="overview of the battery of checks")


#: The battery overview's axis: worst ratios outside it are drawn at its ends, marked.
OVERVIEW_RANGE = (1e-6, 1e6)


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
    fig = figure(8.6, height)
    rows_of_legend = -(-len(series) // 2) if legend_above else 0
    top = (0.35 if title else 0.15) + 0.2 * rows_of_legend
    grid = fig.add_gridspec(1, 1, **margins(fig, top=top))
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
        ax.legend(loc="lower left", bbox_to_anchor=(0.0, 1.01), ncol=2, fontsize=8.5)
    else:
        ax.legend(loc="best")
    if ax_callback is not None:
        ax_callback(ax)
    return to_svg(fig, label=label or title)
