"""The analytics service's own tables: facts read off the domain event stream, and rollups of them.

Facts are keyed by what they describe (a message, an event), so a redelivered event inserts nothing.
Rollups and the conversation grain are recomputed from the facts for whatever a batch touched, so the
order events arrive in never changes a figure. There are no foreign keys: a fact may arrive before
what it refers to.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import Float, Index, Integer, MetaData, String, Text, Uuid, text
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from services.analytics.facts import LABEL_LENGTH, PLATFORM_ID_LENGTH
from shared.db import NAMING_CONVENTION, JSONType, UTCDateTime

VERSION_TABLE = "alembic_version_analytics"


class Base(DeclarativeBase):
    """Declarative base of the analytics tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType, list[Any]: JSONType}


class MessageFact(Base):
    """A message as analytics counts it: inbound from a customer or outbound from the team. A
    ``copy`` is the platform's copy of an outbound message already counted as a Piazza reply (a
    Reddit comment listed back, the first message of a private reply's thread): it counts nowhere."""

    __tablename__ = "analytics_messages"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    channel_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    conversation_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    direction: Mapped[str] = mapped_column(String(16))
    author_key: Mapped[str | None] = mapped_column(String(64))
    occurred_at: Mapped[datetime]
    hour: Mapped[datetime]
    sentiment: Mapped[str | None] = mapped_column(String(16))
    sentiment_score: Mapped[float | None] = mapped_column(Float)
    language: Mapped[str | None] = mapped_column(String(16))
    corrected_sentiment: Mapped[str | None] = mapped_column(String(16))
    text: Mapped[str | None] = mapped_column(Text)
    external_id: Mapped[str | None] = mapped_column(String(PLATFORM_ID_LENGTH))
    """The platform's id of an outbound message received from the platform, to recognise it as a copy."""

    __table_args__ = (
        Index("ix_analytics_messages_workspace_time", "workspace_id", "occurred_at"),
        Index("ix_analytics_messages_conversation", "conversation_id", "direction", "occurred_at"),
        Index("ix_analytics_messages_bucket", "workspace_id", "channel_id", "hour"),
        Index("ix_analytics_messages_external", "channel_id", "external_id"),
    )


class SentId(Base):
    """A platform id a Piazza reply became on its channel: an outbound message received with it is
    a copy of the reply."""

    __tablename__ = "analytics_sent_ids"

    channel_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    platform_id: Mapped[str] = mapped_column(String(PLATFORM_ID_LENGTH), primary_key=True)
    message_id: Mapped[uuid.UUID] = mapped_column(Uuid)


class StatusFact(Base):
    """A conversation's status change (resolutions and reopenings are counted from these)."""

    __tablename__ = "analytics_status_changes"

    event_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    conversation_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    occurred_at: Mapped[datetime]
    before: Mapped[str | None] = mapped_column(String(16))
    after: Mapped[str] = mapped_column(String(16))
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)

    __table_args__ = (
        Index("ix_analytics_status_changes_conversation", "conversation_id", "occurred_at"),
        Index("ix_analytics_status_changes_workspace_time", "workspace_id", "occurred_at"),
    )


class LabelFact(Base):
    """A conversation's labels as of a moment; the latest one is the conversation's labels."""

    __tablename__ = "analytics_label_changes"

    event_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    conversation_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    occurred_at: Mapped[datetime]
    labels: Mapped[list[Any]]

    __table_args__ = (Index("ix_analytics_label_changes_conversation", "conversation_id", "occurred_at"),)


class CorrectionFact(Base):
    """An agent's correction of a message's sentiment (``label`` null: the correction was removed)."""

    __tablename__ = "analytics_corrections"

    event_id: Mapped[str] = mapped_column(String(80), primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    message_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    occurred_at: Mapped[datetime]
    label: Mapped[str | None] = mapped_column(String(16))
    actor_user_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)

    __table_args__ = (
        Index("ix_analytics_corrections_message", "message_id", "occurred_at"),
        Index("ix_analytics_corrections_workspace_time", "workspace_id", "occurred_at"),
    )


class ConversationFact(Base):
    """One conversation at conversation grain, recomputed from its facts whenever one changes."""

    __tablename__ = "analytics_conversations"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    channel_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)
    opened_at: Mapped[datetime | None]
    last_inbound_at: Mapped[datetime | None]
    inbound_messages: Mapped[int] = mapped_column(Integer, default=0)
    outbound_messages: Mapped[int] = mapped_column(Integer, default=0)
    first_response_at: Mapped[datetime | None]
    first_responder_key: Mapped[str | None] = mapped_column(String(64))
    first_response_seconds: Mapped[float | None] = mapped_column(Float)
    business_first_response_seconds: Mapped[float | None] = mapped_column(Float)
    resolved_at: Mapped[datetime | None]
    resolution_seconds: Mapped[float | None] = mapped_column(Float)
    reopen_count: Mapped[int] = mapped_column(Integer, default=0)
    status: Mapped[str | None] = mapped_column(String(16))
    first_sentiment: Mapped[str | None] = mapped_column(String(16))
    last_sentiment: Mapped[str | None] = mapped_column(String(16))
    sentiment_score_avg: Mapped[float | None] = mapped_column(Float)
    labels: Mapped[list[Any]] = mapped_column(JSONType, default=list)

    __table_args__ = (
        Index("ix_analytics_conversations_opened", "workspace_id", "opened_at"),
        Index("ix_analytics_conversations_responded", "workspace_id", "first_response_at"),
    )


class _Volumes:
    """The counters of an hourly rollup row."""

    inbound: Mapped[int] = mapped_column(Integer, default=0)
    outbound: Mapped[int] = mapped_column(Integer, default=0)
    negative: Mapped[int] = mapped_column(Integer, default=0)
    neutral: Mapped[int] = mapped_column(Integer, default=0)
    positive: Mapped[int] = mapped_column(Integer, default=0)


class HourlyRollup(_Volumes, Base):
    """Message volumes and sentiment per workspace, channel and UTC hour."""

    __tablename__ = "analytics_hourly"

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    channel_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)

    __table_args__ = (Index("ix_analytics_hourly_workspace_hour", "workspace_id", "hour"),)


class AuthorHour(Base):
    """That an author wrote in a channel during an hour (unique authors are counted from these)."""

    __tablename__ = "analytics_author_hours"

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    channel_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    author_key: Mapped[str] = mapped_column(String(64), primary_key=True)

    __table_args__ = (Index("ix_analytics_author_hours_workspace_hour", "workspace_id", "hour"),)


class ConversationLabel(Base):
    """A label a conversation carries now: what label filters and the label rollups join on."""

    __tablename__ = "analytics_conversation_labels"

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    label: Mapped[str] = mapped_column(String(LABEL_LENGTH), primary_key=True)
    conversation_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)

    __table_args__ = (Index("ix_analytics_conversation_labels_conversation", "conversation_id"),)


class LabelHourlyRollup(_Volumes, Base):
    """:class:`HourlyRollup` narrowed to the conversations carrying a label now (recounted when a
    conversation's labels change), so a label filter reads a rollup too."""

    __tablename__ = "analytics_label_hourly"

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    label: Mapped[str] = mapped_column(String(LABEL_LENGTH), primary_key=True)
    channel_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)

    __table_args__ = (
        Index("ix_analytics_label_hourly_workspace_label_hour", "workspace_id", "label", "hour"),
    )


class LabelAuthorHour(Base):
    """:class:`AuthorHour` narrowed to the conversations carrying a label now."""

    __tablename__ = "analytics_label_author_hours"

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    label: Mapped[str] = mapped_column(String(LABEL_LENGTH), primary_key=True)
    channel_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    author_key: Mapped[str] = mapped_column(String(64), primary_key=True)

    __table_args__ = (
        Index("ix_analytics_label_author_hours_workspace_label_hour", "workspace_id", "label", "hour"),
    )


class Author(Base):
    """When an author first wrote in the workspace, and where (first-time vs returning)."""

    __tablename__ = "analytics_authors"

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    author_key: Mapped[str] = mapped_column(String(64), primary_key=True)
    first_seen_at: Mapped[datetime]
    first_channel_id: Mapped[uuid.UUID | None] = mapped_column(Uuid)

    __table_args__ = (Index("ix_analytics_authors_first_seen", "workspace_id", "first_seen_at"),)


class TermCount(Base):
    """How many inbound messages used a term (word, phrase, hashtag, emoji) per channel and hour."""

    __tablename__ = "analytics_terms"

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    channel_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    hour: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    term: Mapped[str] = mapped_column(String(200), primary_key=True)
    count: Mapped[int] = mapped_column(Integer, default=0)

    __table_args__ = (Index("ix_analytics_terms_workspace_hour", "workspace_id", "hour"),)


class Bucket(Base):
    """Inbound and negative messages, and watched-keyword matches, per channel and short bucket: what
    the crisis detector compares against its baseline."""

    __tablename__ = "analytics_buckets"

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    channel_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    inbound: Mapped[int] = mapped_column(Integer, default=0)
    negative: Mapped[int] = mapped_column(Integer, default=0)
    keywords: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)


class WorkspaceSettings(Base):
    """A workspace's analytics settings: time zone, working hours, watched keywords, report delivery."""

    __tablename__ = "analytics_settings"

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    timezone: Mapped[str] = mapped_column(String(64), default="UTC")
    working_hours: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    watched_keywords: Mapped[list[Any]] = mapped_column(JSONType, default=list)
    report_schedule: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    updated_at: Mapped[datetime]


class Incident(Base):
    """A crisis: a spike that opened an alert, its peak, and when it calmed down."""

    __tablename__ = "analytics_incidents"

    id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    channel_id: Mapped[uuid.UUID] = mapped_column(Uuid)
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(200), default="")
    status: Mapped[str] = mapped_column(String(16))
    started_at: Mapped[datetime]
    peak_at: Mapped[datetime]
    peak_value: Mapped[float] = mapped_column(Float)
    baseline: Mapped[float] = mapped_column(Float)
    threshold: Mapped[float] = mapped_column(Float)
    last_anomalous_at: Mapped[datetime]
    quiet_buckets: Mapped[int] = mapped_column(Integer, default=0)
    quiet_since: Mapped[datetime | None]
    last_bucket_at: Mapped[datetime | None]
    ended_at: Mapped[datetime | None]
    updated_at: Mapped[datetime]

    __table_args__ = (
        Index("ix_analytics_incidents_workspace_started", "workspace_id", "started_at"),
        # At most one open incident per channel, kind and keyword: two replicas cannot both open it.
        Index(
            "uq_analytics_incidents_open",
            "workspace_id",
            "channel_id",
            "kind",
            "key",
            unique=True,
            sqlite_where=text("status = 'open'"),
            postgresql_where=text("status = 'open'"),
        ),
    )


class ReportRun(Base):
    """A scheduled report delivered (or being delivered) for a period: one per workspace, kind and
    period start, so two replicas never send it twice."""

    __tablename__ = "analytics_report_runs"

    workspace_id: Mapped[uuid.UUID] = mapped_column(Uuid, primary_key=True)
    kind: Mapped[str] = mapped_column(String(16), primary_key=True)
    period_start: Mapped[datetime] = mapped_column(UTCDateTime(), primary_key=True)
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]


class OutboxEntry(Base):
    """A domain event (alert, report) queued with the change that caused it, published after commit."""

    __tablename__ = "analytics_outbox"

    id: Mapped[str] = mapped_column(String(80), primary_key=True)
    subject: Mapped[str] = mapped_column(String(300))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]


__all__ = [
    "VERSION_TABLE",
    "Author",
    "AuthorHour",
    "Base",
    "Bucket",
    "ConversationFact",
    "CorrectionFact",
    "HourlyRollup",
    "Incident",
    "LabelFact",
    "MessageFact",
    "OutboxEntry",
    "ReportRun",
    "StatusFact",
    "TermCount",
    "WorkspaceSettings",
]
