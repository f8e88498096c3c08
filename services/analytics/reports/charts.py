"""The report's charts, drawn server-side with matplotlib into inline SVG strings.

No pyplot: each chart is its own ``matplotlib.figure.Figure``, so nothing lives in pyplot's global figure
registry and no GUI backend is touched. matplotlib is imported inside the functions, so importing this
module (and the report package) stays cheap for processes that never draw.

Output is byte-for-byte deterministic: the SVG ids are hashed with a fixed salt, the date metadata is
dropped, and the style starts from matplotlib's defaults rather than whatever matplotlibrc the host has.
Every id is prefixed with the chart's name, so several charts inlined in one page never share one.
"""

from __future__ import annotations

import html
import io
import math
import re
import threading
import warnings
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from services.analytics.reports import formatting
from services.analytics.reports.data import ResponsePoint, SentimentPoint, TopicRow, VolumePoint

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.axis import Axis
    from matplotlib.figure import Figure
    from matplotlib.typing import RcKeyType

WIDTH_INCHES = 7.0
HEIGHT_INCHES = 2.6
MAX_X_LABELS = 10
TOPIC_LABEL_CHARS = 32
NO_DATA = "No data for this period"

# Okabe-Ito colours: told apart by colour-blind readers too.
BLUE, ORANGE, GREEN, VERMILLION, PURPLE, GREY = (
    "#0072b2",
    "#e69f00",
    "#009e73",
    "#d55e00",
    "#cc79a7",
    "#999999",
)

_STYLE: dict[RcKeyType, Any] = {
    # Text as <text> rather than glyph paths: several times smaller, selectable, and read by screen readers.
    "svg.fonttype": "none",
    "font.size": 9,
    # Written into every <text>: a short list keeps the SVG small; the browser falls back to sans-serif.
    "font.sans-serif": ["DejaVu Sans", "Helvetica", "Arial"],
    "axes.spines.top": False,
    "axes.spines.right": False,
    "axes.grid": True,
    "axes.grid.axis": "y",
    "axes.axisbelow": True,
    "grid.color": "#e5e5e5",
    "legend.frameon": False,
    "legend.fontsize": 8,
}

# rcParams are process-global: the lock keeps two threads from drawing with (or restoring) each other's
# settings halfway through a chart. Drawing a chart takes tens of milliseconds, so serialising is cheap.
_LOCK = threading.Lock()


def volume_chart(points: Sequence[VolumePoint], zone: ZoneInfo) -> str:
    """Inbound and outbound messages per bucket as bars, new conversations as a line."""
    title = "Message volume: inbound, outbound and new conversations"
    if not any(p.inbound or p.outbound or p.new_conversations for p in points):
        return _render("volume", title, None)

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        xs = range(len(points))
        ax.bar([x - 0.2 for x in xs], [p.inbound for p in points], 0.4, color=BLUE, label="Inbound")
        ax.bar([x + 0.2 for x in xs], [p.outbound for p in points], 0.4, color=ORANGE, label="Outbound")
        ax.plot(
            xs,
            [p.new_conversations for p in points],
            color=PURPLE,
            marker="o",
            markersize=3,
            label="New conversations",
        )
        _integer_y(ax)
        _x_buckets(ax, [p.bucket for p in points], zone)
        _legend(fig, ncols=3)

    return _render("volume", title, draw)


def response_chart(points: Sequence[ResponsePoint], zone: ZoneInfo) -> str:
    """Median and 90th-percentile first-response time per bucket, in minutes or hours."""
    title = "First response time per day: median and 90th percentile"
    measured = [v for p in points for v in (p.median_seconds, p.p90_seconds) if v is not None]
    if not measured:
        return _render("response", title, None)
    # Minutes read well up to a couple of hours; past that the axis would run into the hundreds.
    unit, divisor = ("hours", 3600.0) if max(measured) >= 2 * 3600 else ("minutes", 60.0)

    def scaled(values: Sequence[float | None]) -> list[float]:
        # NaN leaves a gap in the line: a day without replies is not a day of zero-second replies.
        return [math.nan if v is None else v / divisor for v in values]

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        xs = range(len(points))
        ax.plot(
            xs,
            scaled([p.median_seconds for p in points]),
            color=BLUE,
            marker="o",
            markersize=3,
            label="Median",
        )
        ax.plot(
            xs,
            scaled([p.p90_seconds for p in points]),
            color=VERMILLION,
            marker="o",
            markersize=3,
            linestyle="--",
            label="90th percentile",
        )
        ax.set_ylim(bottom=0)
        ax.set_ylabel(unit)
        _x_buckets(ax, [p.bucket for p in points], zone)
        _legend(fig, ncols=2)

    return _render("response", title, draw)


def sentiment_chart(points: Sequence[SentimentPoint], zone: ZoneInfo) -> str:
    """Negative, neutral and positive inbound messages per bucket, stacked."""
    title = "Sentiment of inbound messages: negative, neutral and positive"
    if not any(p.negative or p.neutral or p.positive for p in points):
        return _render("sentiment", title, None)

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        xs = range(len(points))
        negative = [p.negative for p in points]
        neutral = [p.neutral for p in points]
        positive = [p.positive for p in points]
        ax.bar(xs, negative, 0.7, color=VERMILLION, label="Negative")
        ax.bar(xs, neutral, 0.7, bottom=negative, color=GREY, label="Neutral")
        ax.bar(xs, positive, 0.7, bottom=[a + b for a, b in zip(negative, neutral, strict=True)], color=GREEN)
        # The last bar call has no label so that the legend reads in stacking order, bottom first.
        ax.bar([], [], color=GREEN, label="Positive")
        _integer_y(ax)
        _x_buckets(ax, [p.bucket for p in points], zone)
        _legend(fig, ncols=3)

    return _render("sentiment", title, draw)


def topics_chart(rows: Sequence[TopicRow], limit: int = 10) -> str:
    """The first ``limit`` topics (in the given order, top down) as horizontal bars, this period against
    the one before."""
    title = "Top topics: messages this period and in the previous one"
    shown = list(rows[:limit])
    if not shown:
        return _render("topics", title, None)

    def draw(fig: Figure) -> None:
        ax = fig.add_subplot()
        ys = range(len(shown))
        ax.barh(ys, [r.count for r in shown], 0.7, color=BLUE, label="This period")
        ax.barh(ys, [r.baseline_count for r in shown], 0.25, color=GREY, label="Previous period")
        # Terms are user text: "$" must not switch matplotlib into math mode (it fails on unbalanced "$").
        ax.set_yticks(list(ys), [_shorten(r.term) for r in shown], parse_math=False)
        ax.invert_yaxis()
        ax.grid(axis="x")
        ax.grid(axis="y", visible=False)
        _integer_axis(ax.xaxis)
        _legend(fig, ncols=2)

    height = max(HEIGHT_INCHES, 0.28 * len(shown) + 0.9)
    return _render("topics", title, draw, height=height)


def _render(
    name: str, title: str, draw: Callable[[Figure], None] | None, height: float = HEIGHT_INCHES
) -> str:
    import matplotlib
    from matplotlib.figure import Figure

    out = io.StringIO()
    with _LOCK, matplotlib.rc_context(), warnings.catch_warnings():
        matplotlib.rcdefaults()
        matplotlib.rcParams.update(_STYLE)
        matplotlib.rcParams["svg.hashsalt"] = "piazza-report"
        # An emoji topic may have no glyph in matplotlib's fonts (some versions warn, which pytest turns
        # into an error); only the layout uses them, the browser draws the <text> with its own fonts.
        warnings.filterwarnings("ignore", message=r"Glyph \d+ .* missing from font")
        if draw is None:
            fig = Figure(figsize=(WIDTH_INCHES, 1.0))
            fig.text(0.5, 0.5, NO_DATA, ha="center", va="center", color=GREY, fontsize=11)
        else:
            fig = Figure(figsize=(WIDTH_INCHES, height), layout="constrained")
            draw(fig)
        fig.savefig(out, format="svg", metadata={"Date": None, "Creator": None})
    return _inline(out.getvalue(), name, title)


def _inline(svg: str, name: str, title: str) -> str:
    """The <svg> element alone (no XML prolog or doctype, which HTML does not take), named for assistive
    technology by a <title>."""
    start = svg.index("<svg")
    end = svg.index(">", start)
    body = svg[end + 1 :]
    # The RDF <metadata> block says only "this is an image": bytes for nothing, inline.
    if (meta_start := body.find("<metadata>")) >= 0:
        meta_end = body.index("</metadata>", meta_start) + len("</metadata>")
        body = body[:meta_start] + body[meta_end:]
    title_id = f"chart-{name}-title"
    return (
        f'{svg[start:end]} role="img" aria-labelledby="{title_id}">'
        f'<title id="{title_id}">{html.escape(title)}</title>'
        f"{_namespace_ids(body.strip(), f'chart-{name}-')}"
    )


_TAG = re.compile(r"<[^>]+>")
_ID_OR_REFERENCE = re.compile(r'(\sid="|url\(#|href="#)')


def _namespace_ids(svg: str, prefix: str) -> str:
    """Prefix every id and every reference to one (``url(#…)``, ``href="#…"``) with ``prefix``.

    matplotlib numbers its groups ``figure_1``, ``axes_1``… in every chart; inlined side by side, those
    would be duplicate ids in one document. Only tags are rewritten: text content (escaped by matplotlib,
    so it holds no ``<`` or ``>``) is never touched.
    """
    return _TAG.sub(lambda tag: _ID_OR_REFERENCE.sub(lambda m: m.group(1) + prefix, tag.group(0)), svg)


def _x_buckets(ax: Axes, buckets: Sequence[datetime], zone: ZoneInfo) -> None:
    # Buckets are placed by index, labelled in the report's zone: matplotlib's date axis would label in
    # UTC and pick its own tick spacing.
    step = max(1, math.ceil(len(buckets) / MAX_X_LABELS))
    ticks = list(range(0, len(buckets), step))
    ax.set_xticks(ticks, [formatting.bucket_label(buckets[i], zone) for i in ticks])
    ax.set_xlim(-0.6, len(buckets) - 0.4)


def _legend(fig: Figure, ncols: int) -> None:
    # Above the plot, not inside it: a legend inside would hide the bars of the first days.
    fig.legend(loc="outside upper left", ncols=ncols)


def _integer_y(ax: Axes) -> None:
    _integer_axis(ax.yaxis)
    ax.set_ylim(bottom=0)


def _integer_axis(axis: Axis) -> None:
    from matplotlib.ticker import MaxNLocator

    # Counts: no "2.5 messages" ticks.
    axis.set_major_locator(MaxNLocator(integer=True))


def _shorten(term: str) -> str:
    term = " ".join(term.split())
    return term if len(term) <= TOPIC_LABEL_CHARS else term[: TOPIC_LABEL_CHARS - 1] + "…"
