"""Periodic reports: the HTML page shows every section safely and identically each time; the CSV gives
one line per conversation that reads back as the data it came from."""

from __future__ import annotations

import csv
import dataclasses
import io
import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from services.analytics.reports import formatting
from services.analytics.reports.csv_export import CSV_COLUMNS, render_csv
from services.analytics.reports.data import (
    AgentRow,
    AlertRow,
    ChannelRow,
    ConversationRow,
    Report,
    ReportPeriod,
    ResponsePoint,
    ResponseTimes,
    SentimentPoint,
    Summary,
    TopicRow,
    VolumePoint,
)
from services.analytics.reports.html import render_html

pytestmark = pytest.mark.unit

HOSTILE = "<script>alert('x')</script>"
START = datetime(2025, 3, 2, 23, 0, tzinfo=UTC)  # midnight of 3 March in Rome
CHART_TITLES = {
    "volume": "Message volume: inbound, outbound and new conversations",
    "response": "First response time per day: median and 90th percentile",
    "sentiment": "Sentiment of inbound messages: negative, neutral and positive",
    "topics": "Top topics: messages this period and in the previous one",
}


def summary(**overrides: int) -> Summary:
    values = {
        "inbound": 1234,
        "outbound": 800,
        "new_conversations": 150,
        "resolved_conversations": 140,
        "unique_authors": 300,
        "first_time_authors": 120,
        "returning_authors": 180,
        "reopened": 7,
        "sentiment_corrections": 4,
    }
    return Summary(**(values | overrides))


def make_report(channel_id: uuid.UUID | None = None) -> Report:
    channel_id = channel_id or uuid.UUID(int=1)
    days = [START + timedelta(days=i) for i in range(7)]
    return Report(
        workspace_name="Acme",
        period=ReportPeriod("weekly", START, START + timedelta(days=7), "Europe/Rome"),
        summary=summary(),
        previous=summary(inbound=1000, outbound=1000, reopened=0),
        volume=tuple(VolumePoint(d, 150 + i, 100 + i, 20, 18) for i, d in enumerate(days)),
        response=ResponseTimes(240.0, 7500.0, None, 3600.0, 130),
        response_series=tuple(
            ResponsePoint(d, None if i == 3 else 200.0 + i, 900.0) for i, d in enumerate(days)
        ),
        sentiment=tuple(SentimentPoint(d, 10, 100, 40) for d in days),
        topics=(
            TopicRow("refund", "word", 40, 10, 3.2, ("Where is my refund?", "refund please")),
            TopicRow("$5 off $", "phrase", 12, 2, 2.1, ()),
            TopicRow("😡", "emoji", 9, 1, 1.8, ("😡😡",)),
            TopicRow(HOSTILE, "word", 5, 0, 1.1, (HOSTILE,)),
        ),
        agents=(
            AgentRow("agent-1", "Giulia Rossi", 420, 90, 80, 180.0),
            AgentRow("agent-2", None, 12, 3, 1, None),
            AgentRow("agent-3", HOSTILE, 1, 0, 0, None),
        ),
        channels=(
            ChannelRow(channel_id, "Support bot", "telegram", 900, 600, 250),
            ChannelRow(uuid.UUID(int=2), HOSTILE, None, 334, 200, 50),
        ),
        alerts=(
            AlertRow("negative_share", channel_id, "", START + timedelta(days=2), None, 0.42),
            AlertRow("keyword", None, HOSTILE, START, START + timedelta(hours=3), 17),
        ),
        generated_at=START + timedelta(days=7, hours=6),
    )


def empty_report() -> Report:
    return dataclasses.replace(
        make_report(),
        summary=summary(**dict.fromkeys((f.name for f in dataclasses.fields(Summary)), 0)),
        previous=None,
        volume=(),
        response=ResponseTimes(None, None, None, None, 0),
        response_series=(ResponsePoint(START, None, None),),
        sentiment=(SentimentPoint(START, 0, 0, 0),),
        topics=(),
        agents=(),
        channels=(),
        alerts=(),
    )


def text_of(html: str) -> str:
    """The page's visible text, tags removed and whitespace collapsed."""
    return " ".join(re.sub(r"<[^>]+>", " ", html).split())


# --- HTML -----------------------------------------------------------------------------------------
# Drawing charts is the slow part: each page is rendered once per module.


@pytest.fixture(scope="module")
def page() -> str:
    return render_html(make_report())


@pytest.fixture(scope="module")
def empty_page() -> str:
    return render_html(empty_report())


def test_every_chart_is_an_inline_svg_with_its_title(page: str) -> None:
    html = page

    assert html.count("<svg") == len(CHART_TITLES)
    for name, title in CHART_TITLES.items():
        assert re.search(rf'<svg [^>]*aria-labelledby="chart-{name}-title"', html)
        assert f'<title id="chart-{name}-title">{title}</title>' in html
    assert "<?xml" not in html
    assert "<!DOCTYPE svg" not in html


def test_headline_kpis_show_values_and_change_against_the_previous_period(page: str) -> None:
    text = text_of(page)

    assert "Inbound messages 1,234 ▲ 23% vs 1,000" in text
    assert "Replies sent 800 ▼ 20% vs 1,000" in text
    assert "New conversations 150 = 0% vs 150" in text
    assert "Reopened conversations 7 ▲ new vs 0" in text
    assert "Unique authors 300 = 0% vs 300 120 first-time · 180 returning" in text


def test_response_times_read_as_human_durations(page: str) -> None:
    text = text_of(page)

    assert "Median first response 4 min" in text
    assert "90th percentile 2 h 5 min" in text
    assert "Median, business hours —" in text
    assert "90th percentile, business hours 1 h" in text
    assert "First responses 130" in text


def test_agents_channels_topics_and_alerts_are_listed(page: str) -> None:
    html = page
    text = text_of(html)

    assert "Giulia Rossi 420 90 80 3 min" in text
    # An agent without a name is shown by id; one without measured responses gets a dash.
    assert "agent-2 12 3 1 —" in text
    assert "Support bot telegram 900 600 250" in text
    assert "refund word 40 10 3.2 Where is my refund? refund please" in text
    assert "Negative sentiment surge in Support bot: 5 Mar 2025 00:00 \N{EN DASH} ongoing, peak 42%" in text
    assert "Negative 7% 70 messages Neutral 67% 700 messages Positive 27% 280 messages" in text
    assert "Weekly report for Acme · 3 Mar 2025 \N{EN DASH} 9 Mar 2025 · times in Europe/Rome" in text
    assert "generated 10 Mar 2025 06:00" in text


def test_user_text_is_escaped_everywhere() -> None:
    html = render_html(dataclasses.replace(make_report(), workspace_name=HOSTILE))

    # Workspace, agent, channel, topic term and example, alert keyword, and the topic chart's label.
    assert "<script" not in html
    assert html.count("&lt;script&gt;") >= 7


def test_the_page_is_self_contained(page: str) -> None:
    html = page

    assert html.startswith("<!DOCTYPE html>")
    assert "<script" not in html
    assert "<link" not in html
    assert not re.search(r"\s(src|href)=", html)
    assert "@import" not in html


def test_a_period_without_data_renders_placeholders(empty_page: str) -> None:
    html = empty_page
    text = text_of(html)

    assert html.count("<svg") == len(CHART_TITLES)
    assert text.count(formatting.NONE) >= 4
    assert html.count("No data for this period") == len(CHART_TITLES)
    assert "Median first response —" in text
    assert "No trending topics in this period." in text
    assert "No agent activity in this period." in text
    assert "No channel activity in this period." in text
    assert "No alerts in this period." in text
    assert "▲" not in text
    assert "▼" not in text


def test_rendering_is_deterministic_and_ids_never_collide(page: str, empty_page: str) -> None:
    assert render_html(make_report()) == page
    # Even when every chart is the same "no data" picture, the inlined charts share no id, and every
    # reference (clip paths, markers) points at an id of the page.
    for html in (page, empty_page):
        ids = re.findall(r'\sid="([^"]+)"', html)
        assert len(ids) == len(set(ids))
        references = set(re.findall(r'(?:url\(#|href="#)([^)"]+)', html))
        assert references <= set(ids)


@pytest.mark.parametrize(
    ("seconds", "expected"),
    [
        (None, "—"),
        (float("nan"), "—"),
        (0.2, "0 s"),
        (45, "45 s"),
        (59.6, "1 min"),
        (240, "4 min"),
        (3599, "1 h"),
        (7500, "2 h 5 min"),
        (86400 + 4 * 3600, "1 d 4 h"),
    ],
)
def test_durations_read_humanly(seconds: float | None, expected: str) -> None:
    assert formatting.duration(seconds) == expected


def test_a_period_must_be_aware_and_ordered() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        ReportPeriod("weekly", START.replace(tzinfo=None), START, "UTC")
    with pytest.raises(ValueError, match="after start"):
        ReportPeriod("weekly", START, START, "UTC")


# --- CSV ------------------------------------------------------------------------------------------


def conversation(index: int, **overrides: object) -> ConversationRow:
    opened = START + timedelta(hours=index)
    values: dict[str, object] = {
        "conversation_id": uuid.uuid4(),
        "channel_id": uuid.uuid4(),
        "platform": "telegram",
        "opened_at": opened,
        "first_response_at": opened + timedelta(seconds=125),
        "first_response_seconds": 125.5,
        "business_first_response_seconds": 60.0,
        "resolved_at": opened + timedelta(hours=2),
        "resolution_seconds": 7200.0,
        "reopen_count": index,
        "inbound_messages": 3,
        "outbound_messages": 2,
        "first_responder_id": f"agent-{index}",
        "sentiment": "negative",
        "sentiment_score_avg": -0.25,
        "labels": ("billing", "vip"),
    }
    return ConversationRow(**(values | overrides))  # type: ignore[arg-type]


def parse(lines: Iterator[str]) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO("".join(lines), newline="")))


def test_csv_has_one_line_per_conversation_matching_its_data() -> None:
    rows = [conversation(i) for i in range(5)]

    parsed = parse(render_csv(rows))

    assert len(parsed) == len(rows)
    for row, cells in zip(rows, parsed, strict=True):
        assert list(cells) == list(CSV_COLUMNS)
        assert cells["conversation_id"] == str(row.conversation_id)
        assert cells["channel_id"] == str(row.channel_id)
        assert cells["platform"] == "telegram"
        assert datetime.fromisoformat(cells["opened_at"]) == row.opened_at
        assert cells["opened_at"].endswith("Z")
        assert float(cells["first_response_seconds"]) == row.first_response_seconds
        assert float(cells["sentiment_score_avg"]) == -0.25  # a negative number is not a formula
        assert int(cells["reopen_count"]) == row.reopen_count
        assert cells["first_responder_id"] == row.first_responder_id
        assert cells["sentiment"] == "negative"
        assert cells["labels"].split(";") == ["billing", "vip"]
        assert cells["first_sentiment"] == ""


def test_csv_columns_cover_every_field_in_order() -> None:
    assert tuple(f.name for f in dataclasses.fields(ConversationRow)) == CSV_COLUMNS


def test_csv_leaves_missing_values_empty() -> None:
    row = conversation(
        0,
        channel_id=None,
        platform=None,
        first_response_at=None,
        first_response_seconds=None,
        business_first_response_seconds=None,
        resolved_at=None,
        resolution_seconds=None,
        first_responder_id=None,
        sentiment=None,
        sentiment_score_avg=None,
        labels=(),
    )

    (cells,) = parse(render_csv([row]))

    empty = [name for name, value in cells.items() if value == ""]
    assert empty == [
        "channel_id",
        "platform",
        "first_response_at",
        "first_response_seconds",
        "business_first_response_seconds",
        "resolved_at",
        "resolution_seconds",
        "first_responder_id",
        "sentiment",
        "sentiment_score_avg",
        "labels",
        "first_sentiment",
    ]


@pytest.mark.parametrize("payload", ['=HYPERLINK("http://x")', "+1+1", "-2+3", "@SUM(A1)", "\tcmd"])
def test_csv_defuses_formulas_in_user_text(payload: str) -> None:
    row = conversation(0, labels=(payload, "ok"), first_responder_id=payload, platform="tele,gram\n2")

    (cells,) = parse(render_csv([row]))

    assert cells["labels"] == f"'{payload};ok"
    assert cells["first_responder_id"] == f"'{payload}"
    # Separators and line breaks inside a cell stay inside it.
    assert cells["platform"] == "tele,gram\n2"


def test_csv_streams_the_header_before_reading_any_row() -> None:
    consumed: list[int] = []

    def rows() -> Iterator[ConversationRow]:
        for i in range(3):
            consumed.append(i)
            yield conversation(i)

    lines = render_csv(rows())

    assert next(lines) == ",".join(CSV_COLUMNS) + "\r\n"
    assert consumed == []
    assert len(list(lines)) == 3


def test_csv_refuses_naive_timestamps() -> None:
    row = conversation(0, opened_at=datetime(2025, 3, 3, 9, 0))  # noqa: DTZ001 - the case under test

    with pytest.raises(ValueError, match="timezone-aware"):
        list(render_csv([row]))
