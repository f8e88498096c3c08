"""Reading figures back: KPIs from the rollups and the conversation grain."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, and_, case, exists, func, literal_column, select, true
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics.models import (
    Author,
    AuthorHour,
    ConversationFact,
    CorrectionFact,
    HourlyRollup,
    MessageFact,
    StatusFact,
)
from services.analytics.repository.rollups import EFFECTIVE


@dataclass(frozen=True, slots=True)
class Scope:
    """Which part of a workspace a figure covers: a time range, channels and labels."""

    workspace_id: uuid.UUID
    since: datetime
    until: datetime
    channels: tuple[uuid.UUID, ...] = ()
    labels: tuple[str, ...] = ()


@dataclass(slots=True)
class Volumes:
    """Message counts of a scope."""

    inbound: int = 0
    outbound: int = 0
    negative: int = 0
    neutral: int = 0
    positive: int = 0


def has_label(dialect: str, column: Any, label: str) -> ColumnElement[bool]:
    """Whether a JSON array column holds ``label``."""
    if dialect == "postgresql":
        return column.op("@>")(func.jsonb_build_array(label))  # type: ignore[no-any-return]
    each = func.json_each(column).table_valued("value")
    return exists(select(literal_column("1")).select_from(each).where(each.c.value == label))


def _labelled(dialect: str, scope: Scope) -> ColumnElement[bool]:
    """Conversations carrying every one of the scope's labels."""
    return and_(true(), *(has_label(dialect, ConversationFact.labels, label) for label in scope.labels))


def _scoped_messages(query: Any, dialect: str, scope: Scope) -> Any:
    """``query`` over the scope's messages joined to their conversations (channels and labels are
    the conversation's): the facts a label filter reads instead of the rollups."""
    return (
        query.select_from(MessageFact)
        .join(ConversationFact, ConversationFact.id == MessageFact.conversation_id)
        .where(
            MessageFact.workspace_id == scope.workspace_id,
            MessageFact.occurred_at >= scope.since,
            MessageFact.occurred_at < scope.until,
            *_conversations(dialect, scope),
        )
    )


def bucket_case(column: Any, edges: Sequence[datetime]) -> Any:
    """The index of the bucket ``column`` falls in, buckets being ``[edges[i], edges[i+1])``."""
    return case(*((column < edge, index) for index, edge in enumerate(edges[1:])), else_=-1)


async def volumes(
    session: AsyncSession, scope: Scope, edges: Sequence[datetime] | None = None
) -> dict[int, Volumes]:
    """Message counts, from the hourly rollups (or, with labels, from the messages themselves), per
    bucket of ``edges`` (or one bucket, 0, for the whole scope)."""
    dialect = session.get_bind().dialect.name
    if scope.labels:
        inbound = MessageFact.direction == "inbound"
        time_column: Any = MessageFact.occurred_at
        columns: list[Any] = [
            func.count().filter(inbound),
            func.count().filter(MessageFact.direction == "outbound"),
            func.count().filter(inbound, EFFECTIVE == "negative"),
            func.count().filter(inbound, EFFECTIVE == "neutral"),
            func.count().filter(inbound, EFFECTIVE == "positive"),
        ]
        query = _scoped_messages(select(*columns), dialect, scope)
    else:
        time_column = HourlyRollup.hour
        columns = [
            func.sum(HourlyRollup.inbound),
            func.sum(HourlyRollup.outbound),
            func.sum(HourlyRollup.negative),
            func.sum(HourlyRollup.neutral),
            func.sum(HourlyRollup.positive),
        ]
        query = select(*columns).where(
            HourlyRollup.workspace_id == scope.workspace_id,
            HourlyRollup.hour >= scope.since,
            HourlyRollup.hour < scope.until,
        )
        if scope.channels:
            query = query.where(HourlyRollup.channel_id.in_(scope.channels))
    if edges:
        bucket = bucket_case(time_column, edges).label("bucket")
        query = query.add_columns(bucket).group_by(bucket)
    result: dict[int, Volumes] = {}
    for row in (await session.execute(query)).all():
        values: tuple[Any, ...] = tuple(row)
        index = values[5] if edges else 0
        result[index] = Volumes(*(int(v or 0) for v in values[:5]))
    return result


async def unique_authors(
    session: AsyncSession, scope: Scope, edges: Sequence[datetime] | None = None
) -> dict[int, int]:
    """Distinct customers who wrote, per bucket (or 0 for the whole scope): from the author-hour
    rollup, or, with labels, from the labelled conversations' messages."""
    if scope.labels:
        dialect = session.get_bind().dialect.name
        time_column: Any = MessageFact.occurred_at
        query = _scoped_messages(
            select(func.count(func.distinct(MessageFact.author_key))), dialect, scope
        ).where(MessageFact.direction == "inbound")
    else:
        time_column = AuthorHour.hour
        query = select(func.count(func.distinct(AuthorHour.author_key))).where(
            AuthorHour.workspace_id == scope.workspace_id,
            AuthorHour.hour >= scope.since,
            AuthorHour.hour < scope.until,
        )
        if scope.channels:
            query = query.where(AuthorHour.channel_id.in_(scope.channels))
    if edges:
        bucket = bucket_case(time_column, edges).label("bucket")
        query = query.add_columns(bucket).group_by(bucket)
    rows: list[tuple[Any, ...]] = [tuple(row) for row in (await session.execute(query)).all()]
    return {(row[1] if edges else 0): int(row[0]) for row in rows}


async def first_time_authors(session: AsyncSession, scope: Scope) -> int:
    """Customers whose first message in the workspace falls in the scope (in its channels; with
    labels, among those who wrote in the labelled conversations then)."""
    if scope.labels:
        dialect = session.get_bind().dialect.name
        labelled = _scoped_messages(select(func.count(func.distinct(MessageFact.author_key))), dialect, scope)
        labelled = labelled.join(
            Author,
            and_(
                Author.workspace_id == MessageFact.workspace_id, Author.author_key == MessageFact.author_key
            ),
        ).where(
            MessageFact.direction == "inbound",
            Author.first_seen_at >= scope.since,
            Author.first_seen_at < scope.until,
        )
        return int((await session.execute(labelled)).scalar_one())
    query = select(func.count()).where(
        Author.workspace_id == scope.workspace_id,
        Author.first_seen_at >= scope.since,
        Author.first_seen_at < scope.until,
    )
    if scope.channels:
        query = query.where(Author.first_channel_id.in_(scope.channels))
    return int((await session.execute(query)).scalar_one())


def _conversations(dialect: str, scope: Scope) -> list[ColumnElement[bool]]:
    where = [ConversationFact.workspace_id == scope.workspace_id]
    if scope.channels:
        where.append(ConversationFact.channel_id.in_(scope.channels))
    if scope.labels:
        where.append(_labelled(dialect, scope))
    return where


@dataclass(slots=True)
class ConversationFigures:
    """Conversation counts and the durations percentiles are taken from."""

    opened: int = 0
    resolved: int = 0
    reopened: int = 0
    first_response: list[float] = field(default_factory=list)
    business_first_response: list[float] = field(default_factory=list)
    resolution: list[float] = field(default_factory=list)


async def conversation_figures(
    session: AsyncSession, scope: Scope, edges: Sequence[datetime] | None = None
) -> dict[int, ConversationFigures]:
    """Per bucket: conversations opened, first resolutions and reopenings, and the durations of
    first responses (by when they were sent) and resolutions (by when they happened)."""
    dialect = session.get_bind().dialect.name
    c = ConversationFact
    where = _conversations(dialect, scope)
    result: dict[int, ConversationFigures] = {}

    def figures(index: int) -> ConversationFigures:
        return result.setdefault(index, ConversationFigures())

    def bucketed(column: Any) -> Any:
        # Labelled, so GROUP BY names the output column: PostgreSQL would not match two renderings
        # of the CASE, each with its own parameters.
        return (bucket_case(column, edges) if edges else literal_column("0")).label("bucket")

    def grouping(column: Any) -> list[Any]:
        return [literal_column("bucket")] if edges else []

    opened = (
        select(bucketed(c.opened_at), func.count())
        .where(*where, c.opened_at >= scope.since, c.opened_at < scope.until)
        .group_by(*grouping(c.opened_at))
    )
    for index, count in (await session.execute(opened)).all():
        figures(index).opened = int(count)
    responded = select(
        bucketed(c.first_response_at), c.first_response_seconds, c.business_first_response_seconds
    ).where(*where, c.first_response_at >= scope.since, c.first_response_at < scope.until)
    for index, seconds, business in (await session.execute(responded)).all():
        figures(index).first_response.append(float(seconds))
        if business is not None:
            figures(index).business_first_response.append(float(business))
    resolved = select(bucketed(c.resolved_at), c.resolution_seconds).where(
        *where, c.resolved_at >= scope.since, c.resolved_at < scope.until
    )
    for index, seconds in (await session.execute(resolved)).all():
        figures(index).resolved += 1
        if seconds is not None:
            figures(index).resolution.append(float(seconds))
    reopened = (
        select(bucketed(StatusFact.occurred_at), func.count())
        .select_from(StatusFact)
        .join(c, c.id == StatusFact.conversation_id)
        .where(
            *where,
            StatusFact.occurred_at >= scope.since,
            StatusFact.occurred_at < scope.until,
            StatusFact.before == "resolved",
            StatusFact.after != "resolved",
        )
        .group_by(*grouping(StatusFact.occurred_at))
    )
    for index, count in (await session.execute(reopened)).all():
        figures(index).reopened = int(count)
    return result


async def corrections(session: AsyncSession, scope: Scope) -> int:
    """Sentiment corrections agents made in the scope's time range, on its channels' (and labelled
    conversations') messages."""
    query = select(func.count()).where(
        CorrectionFact.workspace_id == scope.workspace_id,
        CorrectionFact.occurred_at >= scope.since,
        CorrectionFact.occurred_at < scope.until,
        CorrectionFact.label.is_not(None),
    )
    if scope.channels or scope.labels:
        dialect = session.get_bind().dialect.name
        query = (
            query.select_from(CorrectionFact)
            .join(MessageFact, MessageFact.id == CorrectionFact.message_id)
            .join(ConversationFact, ConversationFact.id == MessageFact.conversation_id)
            .where(*_conversations(dialect, scope))
        )
    return int((await session.execute(query)).scalar_one())


@dataclass(slots=True)
class AgentFigures:
    """One agent's work in a scope."""

    replies: int = 0
    first_responses: list[float] = field(default_factory=list)
    resolutions: int = 0


async def agent_figures(session: AsyncSession, scope: Scope) -> dict[str, AgentFigures]:
    """Replies, first responses (with their durations) and resolutions per agent (user id)."""
    dialect = session.get_bind().dialect.name
    result: dict[str, AgentFigures] = {}
    where = _conversations(dialect, scope)
    replies = (
        _scoped_messages(select(MessageFact.author_key, func.count()), dialect, scope)
        .where(MessageFact.direction == "outbound", MessageFact.author_key.is_not(None))
        .group_by(MessageFact.author_key)
    )
    for agent, count in (await session.execute(replies)).all():
        result.setdefault(str(agent), AgentFigures()).replies = int(count)
    c = ConversationFact
    firsts = select(c.first_responder_key, c.first_response_seconds).where(
        *where,
        c.first_responder_key.is_not(None),
        c.first_response_at >= scope.since,
        c.first_response_at < scope.until,
    )
    for agent, seconds in (await session.execute(firsts)).all():
        if seconds is not None:
            result.setdefault(str(agent), AgentFigures()).first_responses.append(float(seconds))
    resolutions = (
        select(StatusFact.actor_user_id, func.count())
        .join(c, c.id == StatusFact.conversation_id)
        .where(
            *where,
            StatusFact.after == "resolved",
            StatusFact.actor_user_id.is_not(None),
            StatusFact.occurred_at >= scope.since,
            StatusFact.occurred_at < scope.until,
        )
        .group_by(StatusFact.actor_user_id)
    )
    for actor, count in (await session.execute(resolutions)).all():
        result.setdefault(str(actor), AgentFigures()).resolutions = int(count)
    return result


async def channel_ids(session: AsyncSession, scope: Scope) -> list[uuid.UUID]:
    """The channels with traffic in the scope."""
    query = (
        select(HourlyRollup.channel_id)
        .where(
            HourlyRollup.workspace_id == scope.workspace_id,
            HourlyRollup.hour >= scope.since,
            HourlyRollup.hour < scope.until,
        )
        .distinct()
    )
    if scope.channels:
        query = query.where(HourlyRollup.channel_id.in_(scope.channels))
    return sorted((await session.execute(query)).scalars(), key=str)
