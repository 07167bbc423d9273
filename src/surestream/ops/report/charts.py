"""Charts for reports: matplotlib figures rendered offline to inline SVG.

No browser script, no web font, no CDN: each chart is an ``<svg>`` element written into the
HTML, text kept as text (``svg.fonttype: none``, so it stays small and searchable). The
figures are built with ``matplotlib.figure.Figure`` directly -- no pyplot, so no global
backend and no figure left open. The SVG is cleaned for inlining: no XML prolog, comments
or metadata (they name matplotlib's web site and licence URLs), no namespace declarations
(HTML's parser gives ``<svg>`` its namespace), matplotlib's group ids dropped, and the
ids of markers and clip paths salted by the chart's own name so two charts on one page
never share an id.
"""

from __future__ import annotations

import io
import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import matplotlib
import matplotlib.dates as mdates
from matplotlib.figure import Figure
from matplotlib.text import Text
from matplotlib.ticker import MaxNLocator, ScalarFormatter

#: a palette that reads on white and in grey print
COLOURS = ("#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#17becf",
           "#7f7f7f")
SIZE = (7.5, 3.0)


def figure(size: tuple[float, float] = SIZE) -> Figure:
    fig = Figure(figsize=size, layout="constrained")
    fig.set_facecolor("white")
    return fig


def to_svg(fig: Figure, name: str, title: str) -> str:
    """``fig`` as an inline ``<svg>`` element with ``id`` ``name`` (see the module
    docstring); ``title`` becomes its accessible label."""
    for text in fig.findobj(Text):  # names and tags are text, never TeX ("$" stays "$")
        text.set_parse_math(False)
    buf = io.StringIO()
    with matplotlib.rc_context({"svg.fonttype": "none", "svg.hashsalt": name}):
        fig.savefig(buf, format="svg", metadata={"Date": None, "Creator": None,
                                                 "Format": None, "Type": None})
    text = buf.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r"<!--.*?-->", "", text, flags=re.S)
    text = re.sub(r"<metadata>.*?</metadata>", "", text, flags=re.S)
    text = re.sub(r'\sxmlns(:\w+)?="[^"]*"', "", text)
    # matplotlib's group ids (figure_1, line2d_3, ...) repeat in every chart: dropped;
    # the salted ids of markers and clip paths (referenced with #) stay
    text = re.sub(r'\sid="(?![mp][0-9a-f]{10}")[^"]*"', "", text)
    text = re.sub(r'<svg\s[^>]*?(viewBox="[^"]*")[^>]*>',
                  lambda m: (f'<svg id="{name}" class="chart" role="img" '
                             f'aria-label="{_attr(title)}" {m.group(1)}>'),
                  text, count=1)
    return text.strip()


def _attr(text: str) -> str:
    return text.replace("&", "&amp;").replace('"', "&quot;").replace("<", "&lt;")


def as_times(ms: Sequence[int | float]) -> list[datetime]:
    """Epoch milliseconds as UTC datetimes, for a time axis."""
    return [datetime.fromtimestamp(v / 1000, tz=UTC) for v in ms]


#: a time axis spans at least this much (a few late records a millisecond apart would
#: otherwise get an axis of microseconds)
MIN_TIME_SPAN_MS = 60_000


def time_axis(ax: Any, xs: Sequence[Sequence[int | float]]) -> None:
    """UTC dates on the x axis; ``xs``: the epoch-ms values drawn (for the minimum span)."""
    locator = mdates.AutoDateLocator(tz=UTC)
    ax.xaxis.set_major_locator(locator)
    ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator, tz=UTC))
    values = [v for series in xs for v in series]
    if values and max(values) - min(values) < MIN_TIME_SPAN_MS:
        middle = (max(values) + min(values)) / 2
        ax.set_xlim(*as_times([middle - MIN_TIME_SPAN_MS / 2, middle + MIN_TIME_SPAN_MS / 2]))


def _plain_numbers(axis: Any, integer: bool) -> None:
    """Numbers as they are (no "+6.5e4" offset); whole ones only for counts."""
    formatter = axis.get_major_formatter()
    if isinstance(formatter, ScalarFormatter):
        formatter.set_useOffset(False)
        formatter.set_scientific(False)
    if integer:
        axis.set_major_locator(MaxNLocator(integer=True))


def _style(ax: Any, title: str, xlabel: str, ylabel: str, integer: bool = False) -> None:
    ax.set_title(title, fontsize=10, loc="left")
    ax.set_xlabel(xlabel, fontsize=8)
    ax.set_ylabel(ylabel, fontsize=8)
    ax.tick_params(labelsize=7)
    ax.grid(True, alpha=0.3)
    _plain_numbers(ax.yaxis, integer)
    for side in ("top", "right"):
        ax.spines[side].set_visible(False)


def lines(name: str, title: str, series: list[tuple[str, Sequence[Any], Sequence[float]]],
          xlabel: str, ylabel: str, *, x_is_time: bool = False, step: bool = False,
          integer: bool = False,
          right: tuple[str, Sequence[Any], Sequence[float], str] | None = None) -> str:
    """One line per ``(label, xs, ys)``; ``right``: one more series (a count) on its own
    y axis ``(label, xs, ys, axis label)``; ``x_is_time``: xs are epoch milliseconds;
    ``integer``: the y values are counts."""
    fig = figure()
    ax = fig.add_subplot()
    handles = []
    for i, (label, xs, ys) in enumerate(series):
        x = as_times(xs) if x_is_time else list(xs)
        colour = COLOURS[i % len(COLOURS)]
        if step:
            handles += ax.step(x, list(ys), where="post", label=label, color=colour,
                               linewidth=1.4)
        else:
            handles += ax.plot(x, list(ys), label=label, color=colour, linewidth=1.4,
                               marker="." if len(xs) < 40 else None)
    if right is not None:
        label, xs, ys, axis = right
        other = ax.twinx()
        x = as_times(xs) if x_is_time else list(xs)
        handles += other.step(x, list(ys), where="post", label=label, color=COLOURS[1],
                              linewidth=1.2, linestyle="--")
        other.set_ylabel(axis, fontsize=8)
        other.tick_params(labelsize=7)
        _plain_numbers(other.yaxis, True)
    _style(ax, title, xlabel, ylabel, integer)
    if x_is_time:
        time_axis(ax, [xs for _, xs, _ in series] + ([right[1]] if right else []))
    if len(handles) > 1:
        ax.legend(handles=handles, fontsize=7, loc="upper left", frameon=False)
    return to_svg(fig, name, title)


def scatter(name: str, title: str, groups: list[tuple[str, Sequence[Any], Sequence[float]]],
            xlabel: str, ylabel: str, *, x_is_time: bool = False,
            integer: bool = False) -> str:
    """Points per ``(label, xs, ys)`` group; ``integer``: whole y values."""
    fig = figure()
    ax = fig.add_subplot()
    for i, (label, xs, ys) in enumerate(groups):
        x = as_times(xs) if x_is_time else list(xs)
        ax.scatter(x, list(ys), s=8, alpha=0.7, label=label, color=COLOURS[i % len(COLOURS)],
                   linewidths=0)
    _style(ax, title, xlabel, ylabel, integer)
    if x_is_time:
        time_axis(ax, [xs for _, xs, _ in groups])
    if len(groups) > 1:
        ax.legend(fontsize=7, loc="upper left", frameon=False)
    return to_svg(fig, name, title)


def bars(name: str, title: str, labels: Sequence[str], values: Sequence[float],
         xlabel: str, ylabel: str, *, horizontal: bool = False, integer: bool = False,
         colours: Sequence[str] | None = None) -> str:
    """One bar per label (horizontal bars suit long labels); ``integer``: counts."""
    height = max(1.6, 0.35 * len(labels) + 0.8) if horizontal else SIZE[1]
    fig = figure((SIZE[0], height))
    ax = fig.add_subplot()
    colour = list(colours) if colours else COLOURS[0]
    if horizontal:
        ax.barh(list(labels)[::-1], list(values)[::-1],
                color=colour[::-1] if isinstance(colour, list) else colour)
    else:
        ax.bar(list(labels), list(values), color=colour)
        if len(labels) > 12:
            ax.tick_params(axis="x", labelrotation=90)
    _style(ax, title, xlabel, ylabel)
    _plain_numbers(ax.xaxis if horizontal else ax.yaxis, integer)
    return to_svg(fig, name, title)
