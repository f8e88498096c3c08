"""The periodic report as one self-contained HTML page: inline CSS and inline SVG charts, no scripts and
nothing fetched, so it reads the same in a browser, a download or an e-mail attachment.

The template only lays out strings prepared here; names, topic terms and example messages are user text
and reach the page through Jinja's autoescaping, never marked safe. The charts are marked safe: they are
SVG written by matplotlib, which escapes the text it draws.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from zoneinfo import ZoneInfo

import jinja2
from markupsafe import Markup

from services.analytics.reports import charts, formatting
from services.analytics.reports.data import AlertRow, ChannelRow, Report, SentimentPoint, Summary

TEMPLATES = Path(__file__).parent / "templates"
TOPICS_SHOWN = 10
EXAMPLES_SHOWN = 3
EXAMPLE_CHARS = 280

ALERT_KINDS = {
    "volume": "Volume spike",
    "negative_share": "Negative sentiment surge",
    "keyword": "Keyword spike",
}


@dataclass(frozen=True, slots=True)
class Kpi:
    label: str
    value: str
    change: str = ""
    previous: str = ""
    note: str = ""

    @property
    def trend(self) -> str:
        """The CSS class of the change arrow."""
        return {"▲": "up", "▼": "down"}.get(self.change[:1], "flat")


@dataclass(frozen=True, slots=True)
class Alert:
    kind: str
    where: str
    key: str
    started: str
    ended: str
    peak: str


def render_html(report: Report) -> str:
    """The report as a complete HTML document."""
    period, zone = report.period, report.period.zone
    topics = report.topics[:TOPICS_SHOWN]
    svgs = {
        "volume": charts.volume_chart(report.volume, zone),
        "response": charts.response_chart(report.response_series, zone),
        "sentiment": charts.sentiment_chart(report.sentiment, zone),
        "topics": charts.topics_chart(topics),
    }
    template = _environment().get_template("report.html.j2")
    return template.render(
        report=report,
        title=f"{report.workspace_name} — {period.kind.capitalize()} report",
        period_text=formatting.span(
            formatting.day(period.start, zone), formatting.last_day(period.end, zone)
        ),
        generated=formatting.timestamp(report.generated_at, zone),
        kpis=_summary_kpis(report.summary, report.previous),
        response_kpis=_response_kpis(report),
        sentiment_shares=_sentiment_shares(report.sentiment),
        topics=topics,
        alerts=[_alert(a, report.channels, zone) for a in report.alerts],
        charts={name: _trusted_svg(svg) for name, svg in svgs.items()},
        examples_shown=EXAMPLES_SHOWN,
        example_chars=EXAMPLE_CHARS,
    )


def _trusted_svg(svg: str) -> Markup:
    # matplotlib escapes the text it draws (a hostile topic term is tested), so the SVG goes in as is.
    return Markup(svg)  # noqa: S704


@cache
def _environment() -> jinja2.Environment:
    env = jinja2.Environment(
        loader=jinja2.FileSystemLoader(TEMPLATES),
        # On for every template whatever its extension (".html.j2" is not in select_autoescape's list).
        autoescape=True,
        undefined=jinja2.StrictUndefined,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    env.filters["duration"] = formatting.duration
    env.filters["number"] = formatting.count
    env.globals["channel_label"] = channel_label
    return env


def _summary_kpis(now: Summary, before: Summary | None) -> list[Kpi]:
    def kpi(label: str, field: str, note: str = "") -> Kpi:
        current: int = getattr(now, field)
        previous: int | None = None if before is None else getattr(before, field)
        return Kpi(
            label,
            formatting.count(current),
            formatting.change(current, previous),
            "" if previous is None else formatting.count(previous),
            note,
        )

    authors = (
        f"{formatting.count(now.first_time_authors)} first-time · "
        f"{formatting.count(now.returning_authors)} returning"
    )
    return [
        kpi("Inbound messages", "inbound"),
        kpi("Replies sent", "outbound"),
        kpi("New conversations", "new_conversations"),
        kpi("Resolved conversations", "resolved_conversations"),
        kpi("Unique authors", "unique_authors", authors),
        kpi("Reopened conversations", "reopened"),
    ]


def _response_kpis(report: Report) -> list[Kpi]:
    times = report.response
    return [
        Kpi("Median first response", formatting.duration(times.median_seconds)),
        Kpi("90th percentile", formatting.duration(times.p90_seconds)),
        Kpi("Median, business hours", formatting.duration(times.business_median_seconds)),
        Kpi("90th percentile, business hours", formatting.duration(times.business_p90_seconds)),
        Kpi("First responses", formatting.count(times.first_responses)),
    ]


def _sentiment_shares(points: tuple[SentimentPoint, ...]) -> list[Kpi]:
    negative = sum(p.negative for p in points)
    neutral = sum(p.neutral for p in points)
    positive = sum(p.positive for p in points)
    total = negative + neutral + positive
    return [
        Kpi(label, formatting.share(part, total), note=f"{formatting.count(part)} messages")
        for label, part in (("Negative", negative), ("Neutral", neutral), ("Positive", positive))
    ]


def _alert(alert: AlertRow, channels: tuple[ChannelRow, ...], zone: ZoneInfo) -> Alert:
    names = {c.channel_id: c.name for c in channels}
    where = (
        "All channels"
        if alert.channel_id is None
        else channel_label(alert.channel_id, names.get(alert.channel_id))
    )
    # A share is stored as a fraction; counts as they are.
    peak = f"{alert.peak_value:.0%}" if alert.kind == "negative_share" else f"{alert.peak_value:,.0f}"
    return Alert(
        kind=ALERT_KINDS.get(alert.kind, alert.kind),
        where=where,
        key=alert.key,
        started=formatting.timestamp(alert.started_at, zone),
        ended="ongoing" if alert.ended_at is None else formatting.timestamp(alert.ended_at, zone),
        peak=peak,
    )


def channel_label(channel_id: uuid.UUID, name: str | None) -> str:
    """A channel's name, or a short form of its id for a channel without one."""
    return name or f"Channel {str(channel_id)[:8]}"
