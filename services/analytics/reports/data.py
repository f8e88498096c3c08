"""What a periodic report says, as plain immutable data: the caller gathers it, the renderers only read it.

Durations are seconds (None when nothing was measured). Timestamps are timezone-aware; the renderers show
them in the period's time zone (HTML) or in UTC (CSV). Series buckets are the starts of the period's local
days, oldest first. Kinds (topic, alert) are plain strings so that rendering needs none of the modules
that compute them.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Literal
from zoneinfo import ZoneInfo

from shared.sentiment import SentimentLabel

ReportKind = Literal["weekly", "monthly"]


def _require_aware(name: str, moment: datetime) -> None:
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError(f"{name} must be timezone-aware")


@dataclass(frozen=True, slots=True)
class ReportPeriod:
    """The range ``[start, end)`` a report covers (``end`` excluded), and the time zone it is read in."""

    kind: ReportKind
    start: datetime
    end: datetime
    timezone: str

    def __post_init__(self) -> None:
        # Fail when the report is built, not halfway through rendering it.
        _require_aware("start", self.start)
        _require_aware("end", self.end)
        if self.end <= self.start:
            raise ValueError("end must be after start")
        ZoneInfo(self.timezone)

    @property
    def zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)


@dataclass(frozen=True, slots=True)
class VolumePoint:
    bucket: datetime
    inbound: int
    outbound: int
    new_conversations: int
    resolved: int


@dataclass(frozen=True, slots=True)
class ResponseTimes:
    """First-response times over the period, in wall-clock and in business-hours seconds."""

    median_seconds: float | None
    p90_seconds: float | None
    business_median_seconds: float | None
    business_p90_seconds: float | None
    first_responses: int


@dataclass(frozen=True, slots=True)
class ResponsePoint:
    bucket: datetime
    median_seconds: float | None
    p90_seconds: float | None


@dataclass(frozen=True, slots=True)
class SentimentPoint:
    bucket: datetime
    negative: int
    neutral: int
    positive: int


@dataclass(frozen=True, slots=True)
class TopicRow:
    """A trending term: its message count now and in the period before, and user-written examples."""

    term: str
    kind: str
    count: int
    baseline_count: int
    score: float
    examples: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class AgentRow:
    agent_id: str
    name: str | None
    replies: int
    first_responses: int
    resolutions: int
    median_first_response_seconds: float | None


@dataclass(frozen=True, slots=True)
class ChannelRow:
    channel_id: uuid.UUID
    name: str | None
    platform: str | None
    inbound: int
    outbound: int
    unique_authors: int


@dataclass(frozen=True, slots=True)
class Summary:
    inbound: int
    outbound: int
    new_conversations: int
    resolved_conversations: int
    unique_authors: int
    first_time_authors: int
    returning_authors: int
    reopened: int
    sentiment_corrections: int


@dataclass(frozen=True, slots=True)
class AlertRow:
    """A crisis incident that was open during the period (``ended_at`` None: still open).

    ``channel_id`` None means workspace-wide; ``key`` is the keyword of a keyword alert, else "".
    """

    kind: str
    channel_id: uuid.UUID | None
    key: str
    started_at: datetime
    ended_at: datetime | None
    peak_value: float


@dataclass(frozen=True, slots=True)
class Report:
    """Everything one weekly or monthly report shows; ``previous`` is the period before, when known."""

    workspace_name: str
    period: ReportPeriod
    summary: Summary
    previous: Summary | None
    volume: tuple[VolumePoint, ...]
    response: ResponseTimes
    response_series: tuple[ResponsePoint, ...]
    sentiment: tuple[SentimentPoint, ...]
    topics: tuple[TopicRow, ...]
    agents: tuple[AgentRow, ...]
    channels: tuple[ChannelRow, ...]
    alerts: tuple[AlertRow, ...]
    generated_at: datetime


@dataclass(frozen=True, slots=True)
class ConversationRow:
    """One conversation of the CSV export (durations in seconds; ``sentiment`` is its latest customer
    message's label and ``first_sentiment`` its first one's, so the two show its trend)."""

    conversation_id: uuid.UUID
    channel_id: uuid.UUID | None
    platform: str | None
    opened_at: datetime
    first_response_at: datetime | None
    first_response_seconds: float | None
    business_first_response_seconds: float | None
    resolved_at: datetime | None
    resolution_seconds: float | None
    reopen_count: int
    inbound_messages: int
    outbound_messages: int
    first_responder_id: str | None
    sentiment: SentimentLabel | None
    sentiment_score_avg: float | None
    labels: tuple[str, ...]
    # With ``sentiment`` (the latest customer message's), the conversation's trend: how it began.
    first_sentiment: SentimentLabel | None = None
