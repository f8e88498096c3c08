"""Reading figures back: KPIs from the rollups and the conversation grain.

Every query takes a :class:`Scope` (what to count) and a :class:`By` (how to group it: the whole
scope, buckets of time or channels) and answers ``{group key: figures}`` in one statement, so a time
series or the channels view costs what a summary does.
"""

from __future__ import annotations

import math
import uuid
from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, case, func, literal, literal_column, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics.models import (
    Author,
    AuthorHour,
    ConversationFact,
    ConversationLabel,
    CorrectionFact,
    HourlyRollup,
    LabelAuthorHour,
    LabelHourlyRollup,
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


@dataclass(frozen=True, slots=True)
class By:
    """How figures are grouped: the whole scope (key 0), the buckets ``[edges[i], edges[i+1])``
    (key i), or channels (key: the channel id)."""

    edges: tuple[datetime, ...] = ()
    channel: bool = False

    def key(self, time_column: Any, channel_column: Any) -> Any:
        """The group key of a row, labelled ``key``."""
        if self.channel:
            column: Any = channel_column
        elif self.edges:
            column = bucket_case(time_column, self.edges)
        else:
            column = literal_column("0")
        return column.label("key")

    def grouping(self) -> list[Any]:
        # GROUP BY names the output column: PostgreSQL would not match two renderings of the CASE,
        # each with its own parameters.
        return [literal_column("key")] if self.channel or self.edges else []


WHOLE = By()
BY_CHANNEL = By(channel=True)


def buckets(edges: Sequence[datetime]) -> By:
    """Grouping by the buckets between consecutive ``edges``."""
    return By(edges=tuple(edges))


@dataclass(slots=True)
class Volumes:
    """Message counts of a scope."""

    inbound: int = 0
    outbound: int = 0
    negative: int = 0
    neutral: int = 0
    positive: int = 0


@dataclass(frozen=True, slots=True)
class Durations:
    """How many durations, their median, 90th percentile and mean, in seconds."""

    count: int = 0
    median: float | None = None
    p90: float | None = None
    mean: float | None = None

    @classmethod
    def of(cls, values: Sequence[float]) -> Durations:
        """The figures of ``values`` (percentiles interpolated as PostgreSQL's ``percentile_cont``)."""
        if not values:
            return cls()
        ordered = sorted(values)
        return cls(
            len(ordered), percentile(ordered, 0.5), percentile(ordered, 0.9), sum(ordered) / len(ordered)
        )


def percentile(ordered: Sequence[float], q: float) -> float:
    """The ``q`` quantile (0..1) of sorted, non-empty ``ordered``, linear between ranks."""
    rank = q * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def _carrying(scope: Scope, conversation_id: Any) -> list[ColumnElement[bool]]:
    """That the conversation ``conversation_id`` names carries every one of the scope's labels."""
    return [
        conversation_id.in_(
            select(ConversationLabel.conversation_id).where(
                ConversationLabel.workspace_id == scope.workspace_id, ConversationLabel.label == label
            )
        )
        for label in scope.labels
    ]


def _conversations(scope: Scope) -> list[ColumnElement[bool]]:
    """The scope's conversations: in the workspace, on its channels, carrying every one of its labels."""
    where = [ConversationFact.workspace_id == scope.workspace_id, *_carrying(scope, ConversationFact.id)]
    if scope.channels:
        where.append(ConversationFact.channel_id.in_(scope.channels))
    return where


def _scoped_messages(query: Any, scope: Scope) -> Any:
    """``query`` over the scope's messages joined to their conversations (channels and labels are
    the conversation's): what a filter on several labels at once reads, having no rollup."""
    return (
        query.select_from(MessageFact)
        .join(ConversationFact, ConversationFact.id == MessageFact.conversation_id)
        .where(
            MessageFact.workspace_id == scope.workspace_id,
            MessageFact.occurred_at >= scope.since,
            MessageFact.occurred_at < scope.until,
            MessageFact.channel_id.is_not(None),  # as the rollups: counted once placed on a channel
            *_conversations(scope),
        )
    )


@dataclass(frozen=True, slots=True)
class _Rollup:
    """The hourly and author-hour rollups that answer a scope: the plain ones, or a label's."""

    hourly: Any
    authors: Any
    scope: Scope

    def where(self, table: Any) -> list[ColumnElement[bool]]:
        """The conditions narrowing one of the two to the scope."""
        scope = self.scope
        conditions = [
            table.workspace_id == scope.workspace_id,
            table.hour >= scope.since,
            table.hour < scope.until,
        ]
        if scope.labels:
            conditions.append(table.label == scope.labels[0])
        if scope.channels:
            conditions.append(table.channel_id.in_(scope.channels))
        return conditions


def _rollup(scope: Scope) -> _Rollup | None:
    """The rollups for the scope; None for several labels at once, which the facts answer."""
    if len(scope.labels) > 1:
        return None
    if scope.labels:
        return _Rollup(LabelHourlyRollup, LabelAuthorHour, scope)
    return _Rollup(HourlyRollup, AuthorHour, scope)


def bucket_case(column: Any, edges: Sequence[datetime]) -> Any:
    """The index of the bucket ``column`` falls in, buckets being ``[edges[i], edges[i+1])`` (-1
    past the last): a balanced tree of CASEs, so a row costs log2(buckets) comparisons, not one
    per bucket (a month by the hour is 720 buckets)."""

    def search(low: int, high: int) -> Any:
        # The bucket among low..high-1 for a value known to be >= edges[low].
        if high - low == 1:
            return case((column < edges[high], low), else_=-1) if high == len(edges) - 1 else literal(low)
        middle = (low + high) // 2
        return case((column < edges[middle], search(low, middle)), else_=search(middle, high))

    return search(0, len(edges) - 1)


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def volumes(session: AsyncSession, scope: Scope, by: By = WHOLE) -> dict[Any, Volumes]:
    """Message counts per group, from the hourly rollups (or, for several labels, the messages)."""
    rollup = _rollup(scope)
    if rollup is None:
        inbound = MessageFact.direction == "inbound"
        # Bucketed by the message's hour, as the rollups are (the two agree in half-hour zones).
        query = _scoped_messages(
            select(
                by.key(MessageFact.hour, MessageFact.channel_id),
                func.count().filter(inbound),
                func.count().filter(MessageFact.direction == "outbound"),
                func.count().filter(inbound, EFFECTIVE == "negative"),
                func.count().filter(inbound, EFFECTIVE == "neutral"),
                func.count().filter(inbound, EFFECTIVE == "positive"),
            ),
            scope,
        )
    else:
        hourly = rollup.hourly
        query = select(
            by.key(hourly.hour, hourly.channel_id),
            func.sum(hourly.inbound),
            func.sum(hourly.outbound),
            func.sum(hourly.negative),
            func.sum(hourly.neutral),
            func.sum(hourly.positive),
        ).where(*rollup.where(hourly))
    rows = (await session.execute(query.group_by(*by.grouping()))).all()
    return {row[0]: Volumes(*(int(v or 0) for v in row[1:])) for row in rows}


async def unique_authors(session: AsyncSession, scope: Scope, by: By = WHOLE) -> dict[Any, int]:
    """Distinct customers who wrote, per group: from the author-hour rollup (or, for several labels,
    the messages)."""
    rollup = _rollup(scope)
    if rollup is None:
        pairs = _scoped_messages(
            select(by.key(MessageFact.hour, MessageFact.channel_id), MessageFact.author_key), scope
        ).where(MessageFact.direction == "inbound", MessageFact.author_key.is_not(None))
    else:
        authors = rollup.authors
        pairs = select(by.key(authors.hour, authors.channel_id), authors.author_key).where(
            *rollup.where(authors)
        )
    return await _count_distinct(session, pairs)


async def _count_distinct(session: AsyncSession, pairs: Any) -> dict[Any, int]:
    """Per group key, how many distinct (key, author) rows ``pairs`` selects: over a DISTINCT
    subquery, which databases hash, rather than ``count(DISTINCT ...)``, which PostgreSQL sorts."""
    distinct = pairs.distinct().subquery()
    query = select(distinct.c.key, func.count()).group_by(distinct.c.key)
    return {key: int(count) for key, count in (await session.execute(query)).all()}


async def first_time_authors(session: AsyncSession, scope: Scope, by: By = WHOLE) -> dict[Any, int]:
    """Customers whose first message in the workspace falls in the scope, per group (the bucket of
    their first message, or its channel). With labels, among those who wrote in the labelled
    conversations in the scope's time range, grouped by the channel they wrote there in."""
    first = [
        Author.workspace_id == scope.workspace_id,
        Author.first_seen_at >= scope.since,
        Author.first_seen_at < scope.until,
    ]
    if not scope.labels:
        query = (
            select(by.key(Author.first_seen_at, Author.first_channel_id), func.count())
            .where(*first, *([Author.first_channel_id.in_(scope.channels)] if scope.channels else []))
            .group_by(*by.grouping())
        )
        return {key: int(count) for key, count in (await session.execute(query)).all()}
    rollup = _rollup(scope)
    if rollup is None:
        pairs = _scoped_messages(
            select(by.key(Author.first_seen_at, MessageFact.channel_id), MessageFact.author_key), scope
        ).where(MessageFact.direction == "inbound", MessageFact.author_key == Author.author_key)
    else:
        wrote = rollup.authors
        pairs = select(by.key(Author.first_seen_at, wrote.channel_id), wrote.author_key).where(
            *rollup.where(wrote), wrote.author_key == Author.author_key
        )
    return await _count_distinct(session, pairs.where(*first))


async def _durations(
    session: AsyncSession, key: Any, group_by: Sequence[Any], where: Sequence[Any], *columns: Any
) -> dict[Any, list[Durations]]:
    """Per group, the :class:`Durations` of each of ``columns`` (NULLs left out): computed by
    PostgreSQL (``percentile_cont``), or, on SQLite, which has no percentiles, from the values."""
    if _dialect(session) == "postgresql":
        aggregates = [
            aggregate
            for column in columns
            for aggregate in (
                func.count(column),
                func.percentile_cont(0.5).within_group(column),
                func.percentile_cont(0.9).within_group(column),
                func.avg(column),
            )
        ]
        query = select(key, *aggregates).where(*where).group_by(*group_by)
        result: dict[Any, list[Durations]] = {}
        for row in (await session.execute(query)).all():
            figures = [
                Durations(int(row[1 + 4 * i]), *(_float(v) for v in row[2 + 4 * i : 5 + 4 * i]))
                for i in range(len(columns))
            ]
            result[row[0]] = figures
        return result
    values: dict[Any, list[list[float]]] = defaultdict(lambda: [[] for _ in columns])
    for row in (await session.execute(select(key, *columns).where(*where))).all():
        for index, value in enumerate(row[1:]):
            if value is not None:
                values[row[0]][index].append(float(value))
    return {k: [Durations.of(v) for v in lists] for k, lists in values.items()}


def _float(value: Any) -> float | None:
    return None if value is None else float(value)


@dataclass(slots=True)
class ConversationFigures:
    """Conversation counts and response and resolution times."""

    opened: int = 0
    resolved: int = 0
    reopened: int = 0
    first_response: Durations = field(default_factory=Durations)
    business_first_response: Durations = field(default_factory=Durations)
    resolution: Durations = field(default_factory=Durations)


async def conversation_figures(
    session: AsyncSession, scope: Scope, by: By = WHOLE
) -> dict[Any, ConversationFigures]:
    """Per group: conversations opened, first resolutions and reopenings, and the durations of
    first responses (by when they were sent) and resolutions (by when they happened)."""
    c = ConversationFact
    where = _conversations(scope)
    result: dict[Any, ConversationFigures] = {}

    def figures(key: Any) -> ConversationFigures:
        return result.setdefault(key, ConversationFigures())

    def in_range(column: Any) -> list[Any]:
        return [*where, column >= scope.since, column < scope.until]

    async def counted(column: Any) -> list[tuple[Any, int]]:
        query = select(by.key(column, c.channel_id), func.count()).where(*in_range(column))
        return [(key, int(n)) for key, n in (await session.execute(query.group_by(*by.grouping()))).all()]

    for key, n in await counted(c.opened_at):
        figures(key).opened = n
    for key, n in await counted(c.resolved_at):
        figures(key).resolved = n

    async def timed(column: Any, *seconds: Any) -> dict[Any, list[Durations]]:
        return await _durations(
            session, by.key(column, c.channel_id), by.grouping(), in_range(column), *seconds
        )

    responded = await timed(c.first_response_at, c.first_response_seconds, c.business_first_response_seconds)
    for key, (clock, business) in responded.items():
        figures(key).first_response = clock
        figures(key).business_first_response = business
    for key, (seconds,) in (await timed(c.resolved_at, c.resolution_seconds)).items():
        figures(key).resolution = seconds
    reopened = (
        select(by.key(StatusFact.occurred_at, c.channel_id), func.count())
        .select_from(StatusFact)
        .join(c, c.id == StatusFact.conversation_id)
        .where(
            *where,
            StatusFact.occurred_at >= scope.since,
            StatusFact.occurred_at < scope.until,
            StatusFact.before == "resolved",
            StatusFact.after != "resolved",
        )
        .group_by(*by.grouping())
    )
    for key, count in (await session.execute(reopened)).all():
        figures(key).reopened = int(count)
    return result


async def corrections(session: AsyncSession, scope: Scope, by: By = WHOLE) -> dict[Any, int]:
    """Sentiment corrections agents made in the scope's time range, on its channels' (and labelled
    conversations') messages, per group."""
    query = (
        select(by.key(CorrectionFact.occurred_at, MessageFact.channel_id), func.count())
        .where(
            CorrectionFact.workspace_id == scope.workspace_id,
            CorrectionFact.occurred_at >= scope.since,
            CorrectionFact.occurred_at < scope.until,
            CorrectionFact.label.is_not(None),
        )
        .group_by(*by.grouping())
    )
    if scope.channels or scope.labels or by.channel:
        query = (
            query.select_from(CorrectionFact)
            .join(MessageFact, MessageFact.id == CorrectionFact.message_id)
            .join(ConversationFact, ConversationFact.id == MessageFact.conversation_id)
            .where(*_conversations(scope))
        )
    return {key: int(count) for key, count in (await session.execute(query)).all()}


@dataclass(slots=True)
class AgentFigures:
    """One agent's work in a scope."""

    replies: int = 0
    first_responses: Durations = field(default_factory=Durations)
    resolutions: int = 0


async def agent_figures(session: AsyncSession, scope: Scope) -> dict[str, AgentFigures]:
    """Replies, first responses (with their durations) and resolutions per agent (user id)."""
    result: dict[str, AgentFigures] = {}
    where = _conversations(scope)
    # Off the message facts alone (a reply carries its conversation's channel): replies whose event
    # named no channel count too, unless channels are asked for.
    replies = (
        select(MessageFact.author_key, func.count())
        .where(
            MessageFact.workspace_id == scope.workspace_id,
            MessageFact.occurred_at >= scope.since,
            MessageFact.occurred_at < scope.until,
            MessageFact.direction == "outbound",
            MessageFact.author_key.is_not(None),
            *_carrying(scope, MessageFact.conversation_id),
            *([MessageFact.channel_id.in_(scope.channels)] if scope.channels else []),
        )
        .group_by(MessageFact.author_key)
    )
    for agent, count in (await session.execute(replies)).all():
        result.setdefault(str(agent), AgentFigures()).replies = int(count)
    c = ConversationFact
    firsts = await _durations(
        session,
        c.first_responder_key.label("key"),
        [literal_column("key")],
        [
            *where,
            c.first_responder_key.is_not(None),
            c.first_response_at >= scope.since,
            c.first_response_at < scope.until,
        ],
        c.first_response_seconds,
    )
    for agent, (seconds,) in firsts.items():
        result.setdefault(str(agent), AgentFigures()).first_responses = seconds
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
