"""Rollups and the conversation grain, recomputed from the facts for what a batch touched.

Recomputing (rather than adding to counters) is what makes every figure independent of the order
and the number of times events arrive: a rollup is always a function of the facts stored.
"""

from __future__ import annotations

import hashlib
import uuid
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

from sqlalchemy import (
    Float,
    Table,
    and_,
    bindparam,
    case,
    delete,
    func,
    literal_column,
    select,
    type_coerce,
    update,
)
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics.buckets import bucket_of
from services.analytics.models import (
    Bucket,
    ConversationFact,
    HourlyRollup,
    LabelAuthorHour,
    LabelFact,
    LabelHourlyRollup,
    MessageFact,
    StatusFact,
)
from services.analytics.repository.facts import current_labels
from shared.db import JSONType, insert_for

_CHUNK = 300

EFFECTIVE = func.coalesce(MessageFact.corrected_sentiment, MessageFact.sentiment)
"""A message's sentiment: the agent's correction when there is one, else the analyzer's."""

_LABEL_SCORE = {"negative": -1.0, "neutral": 0.0, "positive": 1.0}
EFFECTIVE_SCORE = case(
    *((MessageFact.corrected_sentiment == label, score) for label, score in _LABEL_SCORE.items()),
    else_=MessageFact.sentiment_score,
)
"""A message's score: a corrected message counts as fully negative, neutral or positive."""

_VOLUMES = ("inbound", "outbound", "negative", "neutral", "positive")
"""The counters of an hourly rollup row."""


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


async def lock_channels(
    session: AsyncSession, channels: Iterable[tuple[uuid.UUID, uuid.UUID]], *, lock: str = "recount"
) -> None:
    """Take each (workspace, channel)'s ``lock`` until the transaction ends (PostgreSQL; SQLite has
    one writer at a time anyway), always in the same order, so batches never wait in a cycle.

    ``recount``: a recount reads the messages committed when it runs; without the lock, two batches
    stored at once (two workers, a worker and a rebuild) could each count without the other's
    messages, the later writing its count last. With it, the later one waits, then reads the earlier
    one's messages. ``copies``: a reply and its copy stored at once could each miss the other
    (``store_facts`` takes it first, before any ``recount``, which keeps the order)."""
    if _dialect(session) != "postgresql":
        return
    keys = sorted({_lock_key(workspace_id, channel_id, lock) for workspace_id, channel_id in channels})
    for key in keys:
        await session.execute(select(func.pg_advisory_xact_lock(key)))


def _lock_key(workspace_id: uuid.UUID, channel_id: uuid.UUID, lock: str) -> int:
    salt = b"" if lock == "recount" else lock.encode()  # the recount keys as they always were
    digest = hashlib.blake2b(workspace_id.bytes + channel_id.bytes + salt, digest_size=8).digest()
    return int.from_bytes(digest, "big", signed=True)


HourKey = tuple[uuid.UUID, uuid.UUID, datetime]


async def recompute_hours(session: AsyncSession, keys: Iterable[HourKey]) -> None:
    """Recount inbound/outbound messages and their sentiment for these (workspace, channel, hour)."""
    by_channel: dict[tuple[uuid.UUID, uuid.UUID], set[datetime]] = {}
    for workspace_id, channel_id, hour in keys:
        by_channel.setdefault((workspace_id, channel_id), set()).add(hour)
    inbound = MessageFact.direction == "inbound"
    for (workspace_id, channel_id), hours in sorted(by_channel.items(), key=str):
        # One statement per channel, with the hours as a list: the index then bounds every column
        # (a row-value IN over all three is matched on the first two only, scanning the channel).
        query = (
            select(
                MessageFact.hour,
                func.count().filter(inbound),
                func.count().filter(MessageFact.direction == "outbound"),
                func.count().filter(inbound, EFFECTIVE == "negative"),
                func.count().filter(inbound, EFFECTIVE == "neutral"),
                func.count().filter(inbound, EFFECTIVE == "positive"),
            )
            .where(
                MessageFact.workspace_id == workspace_id,
                MessageFact.channel_id == channel_id,
                MessageFact.hour.in_(sorted(hours)),
            )
            .group_by(MessageFact.hour)
        )
        rows = [
            {
                "workspace_id": workspace_id,
                "channel_id": channel_id,
                "hour": h,
                "inbound": i,
                "outbound": o,
                "negative": neg,
                "neutral": neu,
                "positive": pos,
            }
            for h, i, o, neg, neu, pos in (await session.execute(query)).all()
        ]
        if not rows:
            continue
        statement = insert_for(_dialect(session), HourlyRollup).values(rows)
        statement = statement.on_conflict_do_update(
            index_elements=["workspace_id", "channel_id", "hour"],
            set_={name: statement.excluded[name] for name in _VOLUMES},
        )
        await session.execute(statement)


LabelHourKey = tuple[uuid.UUID, str, uuid.UUID, datetime]
"""(workspace, label, channel, hour)."""


async def recompute_label_hours(session: AsyncSession, keys: Iterable[LabelHourKey]) -> None:
    """Recount the label rollups (volumes, sentiment and author-hours of the conversations carrying
    the label now) for these (workspace, label, channel, hour): their rows are replaced, since a
    conversation losing a label takes its messages out.

    Per channel, the messages of the hours are read once and matched to their conversations' labels
    here: a join in the database is planned from statistics that never know the newest hours yet,
    and picked a plan that compared every message with every labelled conversation."""
    grouped: dict[tuple[uuid.UUID, uuid.UUID], tuple[set[str], set[datetime]]] = {}
    for workspace_id, label, channel_id, hour in keys:
        labels, hours = grouped.setdefault((workspace_id, channel_id), (set(), set()))
        labels.add(label)
        hours.add(hour)
    for (workspace_id, channel_id), (labels, hour_set) in sorted(grouped.items(), key=str):
        ordered = sorted(hour_set)
        for start in range(0, len(ordered), _CHUNK):
            await _recount_labels(
                session, workspace_id, channel_id, sorted(labels), ordered[start : start + _CHUNK]
            )


async def _recount_labels(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    channel_id: uuid.UUID,
    labels: list[str],
    hours: list[datetime],
) -> None:
    for table in (LabelHourlyRollup, LabelAuthorHour):
        await session.execute(
            delete(table).where(
                table.workspace_id == workspace_id,
                table.label.in_(labels),
                table.channel_id == channel_id,
                table.hour.in_(hours),
            )
        )
    messages = (
        await session.execute(
            select(
                MessageFact.conversation_id,
                MessageFact.hour,
                MessageFact.direction,
                EFFECTIVE,
                MessageFact.author_key,
            ).where(
                MessageFact.workspace_id == workspace_id,
                MessageFact.channel_id == channel_id,
                MessageFact.hour.in_(hours),
            )
        )
    ).all()
    carried = await current_labels(session, (m[0] for m in messages), among=labels)
    counts: dict[tuple[str, datetime], Counter[str]] = {}
    authors: set[tuple[str, datetime, str]] = set()
    for conversation, hour, direction, sentiment, author in messages:
        for label in carried.get(conversation, ()):
            tally = counts.setdefault((label, hour), Counter())
            tally[direction] += 1
            if direction == "inbound":
                tally[sentiment] += 1
                if author is not None:
                    authors.add((label, hour, author))
    key = {"workspace_id": workspace_id, "channel_id": channel_id}
    hourly = [
        {**key, "label": label, "hour": hour, **{name: tally[name] for name in _VOLUMES}}
        for (label, hour), tally in counts.items()
    ]
    writers = [{**key, "label": label, "hour": hour, "author_key": author} for label, hour, author in authors]
    # Upserts, not inserts: another transaction (a second worker, a rebuild) may have recounted the
    # same rows since the delete above, and its rows are not visible to it.
    dialect = _dialect(session)
    for start in range(0, len(hourly), _CHUNK):
        statement = insert_for(dialect, LabelHourlyRollup).values(hourly[start : start + _CHUNK])
        await session.execute(
            statement.on_conflict_do_update(
                index_elements=["workspace_id", "label", "channel_id", "hour"],
                set_={name: statement.excluded[name] for name in _VOLUMES},
            )
        )
    for start in range(0, len(writers), _CHUNK):
        statement = insert_for(dialect, LabelAuthorHour).values(writers[start : start + _CHUNK])
        await session.execute(statement.on_conflict_do_nothing())


BucketKey = tuple[uuid.UUID, uuid.UUID, datetime]


async def recompute_buckets(
    session: AsyncSession, keys: Iterable[BucketKey], seconds: int, keywords: dict[uuid.UUID, list[str]]
) -> None:
    """Recount inbound and negative messages and watched-keyword matches of these crisis buckets:
    one read per channel, over the span of its touched buckets."""
    by_channel: dict[tuple[uuid.UUID, uuid.UUID], set[datetime]] = {}
    for workspace_id, channel_id, start in keys:
        by_channel.setdefault((workspace_id, channel_id), set()).add(start)
    step = timedelta(seconds=seconds)
    rows: list[dict[str, Any]] = []
    for (workspace_id, channel_id), starts in sorted(by_channel.items(), key=str):
        watched = keywords.get(workspace_id, [])
        first, last = min(starts), max(starts) + step
        query = select(
            MessageFact.occurred_at, EFFECTIVE, MessageFact.text if watched else literal_column("NULL")
        ).where(
            MessageFact.workspace_id == workspace_id,
            MessageFact.channel_id == channel_id,
            MessageFact.hour >= first.replace(minute=0, second=0, microsecond=0),
            MessageFact.hour < last,
            MessageFact.occurred_at >= first,
            MessageFact.occurred_at < last,
            MessageFact.direction == "inbound",
        )
        counts = {start: [0, 0, dict.fromkeys(watched, 0)] for start in starts}
        for occurred_at, label, text in (await session.execute(query)).all():
            tally = counts.get(bucket_of(occurred_at, seconds))
            if tally is None:
                continue  # in the span, but in a bucket this batch did not touch
            tally[0] += 1  # type: ignore[operator]
            tally[1] += label == "negative"  # type: ignore[operator]
            if watched:
                folded = (text or "").casefold()
                for keyword in watched:
                    if keyword.casefold() in folded:
                        tally[2][keyword] += 1  # type: ignore[index]
        rows.extend(
            {
                "workspace_id": workspace_id,
                "channel_id": channel_id,
                "start": start,
                "inbound": inbound,
                "negative": negative,
                "keywords": {k: n for k, n in matches.items() if n},  # type: ignore[attr-defined]
            }
            for start, (inbound, negative, matches) in sorted(counts.items())
        )
    for offset in range(0, len(rows), _CHUNK):
        statement = insert_for(_dialect(session), Bucket.__table__)
        statement = statement.on_conflict_do_update(
            index_elements=["workspace_id", "channel_id", "start"],
            set_={name: statement.excluded[name] for name in ("inbound", "negative", "keywords")},
        )
        await session.execute(statement, rows[offset : offset + _CHUNK])


@dataclass(slots=True)
class ConversationState:
    """What the facts say about one conversation, before durations are worked out."""

    id: uuid.UUID
    workspace_id: uuid.UUID
    channel_id: uuid.UUID | None
    opened_at: datetime | None
    first_response_at: datetime | None
    first_responder_key: str | None
    resolved_at: datetime | None
    reopen_count: int
    status: str | None
    first_sentiment: str | None
    last_sentiment: str | None
    labels: list[Any]


async def recompute_conversations(
    session: AsyncSession, conversations: dict[uuid.UUID, uuid.UUID]
) -> list[ConversationState]:
    """Refresh the counts of these conversations (id -> workspace) from their facts and return what
    the caller needs to finish them (durations depend on the workspace's working hours)."""
    ids = sorted(conversations, key=str)
    states: list[ConversationState] = []
    for start in range(0, len(ids), _CHUNK):
        chunk = ids[start : start + _CHUNK]
        await _upsert_counts(session, {c: conversations[c] for c in chunk})
        states.extend(await _timeline(session, chunk))
    return states


async def _upsert_counts(session: AsyncSession, conversations: dict[uuid.UUID, uuid.UUID]) -> None:
    inbound = MessageFact.direction == "inbound"
    query = (
        select(
            MessageFact.conversation_id,
            func.min(MessageFact.occurred_at).filter(inbound),
            func.max(MessageFact.occurred_at).filter(inbound),
            func.count().filter(inbound),
            func.count().filter(MessageFact.direction == "outbound"),
            type_coerce(func.avg(case((inbound, EFFECTIVE_SCORE))), Float),
        )
        .where(MessageFact.conversation_id.in_(list(conversations)))
        .group_by(MessageFact.conversation_id)
    )
    found = {row[0]: row[1:] for row in (await session.execute(query)).all()}
    rows = []
    for conversation_id, workspace_id in conversations.items():
        opened, last, n_in, n_out, score = found.get(conversation_id, (None, None, 0, 0, None))
        rows.append(
            {
                "id": conversation_id,
                "workspace_id": workspace_id,
                "opened_at": opened,
                "last_inbound_at": last,
                "inbound_messages": n_in,
                "outbound_messages": n_out,
                "sentiment_score_avg": score,
                "reopen_count": 0,
                "labels": [],
            }
        )
    statement = insert_for(_dialect(session), ConversationFact.__table__)
    statement = statement.on_conflict_do_update(
        index_elements=["id"],
        set_={
            name: statement.excluded[name]
            for name in (
                "opened_at",
                "last_inbound_at",
                "inbound_messages",
                "outbound_messages",
                "sentiment_score_avg",
            )
        },
    )
    await session.execute(statement, rows)


def _first(column: Any, *where: Any, newest: bool = False) -> Any:
    order = (
        (MessageFact.occurred_at.desc(), MessageFact.id.desc())
        if newest
        else (MessageFact.occurred_at, MessageFact.id)
    )
    return select(column).where(*where).order_by(*order).limit(1).scalar_subquery()


async def _timeline(session: AsyncSession, ids: Sequence[uuid.UUID]) -> list[ConversationState]:
    c = ConversationFact
    mine = MessageFact.conversation_id == c.id
    inbound = and_(mine, MessageFact.direction == "inbound")
    reply = and_(mine, MessageFact.direction == "outbound", MessageFact.occurred_at >= c.opened_at)
    status_of = StatusFact.conversation_id == c.id
    query = select(
        c.id,
        c.workspace_id,
        select(MessageFact.channel_id)
        .where(mine, MessageFact.channel_id.is_not(None))
        .limit(1)
        .scalar_subquery(),
        c.opened_at,
        _first(MessageFact.occurred_at, reply),
        _first(MessageFact.author_key, reply),
        select(func.min(StatusFact.occurred_at))
        .where(status_of, StatusFact.after == "resolved", StatusFact.occurred_at >= c.opened_at)
        .scalar_subquery(),
        select(func.count())
        .where(status_of, StatusFact.before == "resolved", StatusFact.after != "resolved")
        .scalar_subquery(),
        select(StatusFact.after)
        .where(status_of)
        .order_by(StatusFact.occurred_at.desc(), StatusFact.event_id.desc())
        .limit(1)
        .scalar_subquery(),
        _first(EFFECTIVE, inbound),
        _first(EFFECTIVE, inbound, newest=True),
        type_coerce(
            select(LabelFact.labels)
            .where(LabelFact.conversation_id == c.id)
            .order_by(LabelFact.occurred_at.desc(), LabelFact.event_id.desc())
            .limit(1)
            .scalar_subquery(),
            JSONType,
        ),
    ).where(c.id.in_(list(ids)))
    return [
        ConversationState(
            id=row[0],
            workspace_id=row[1],
            channel_id=_as_uuid(row[2]),
            opened_at=row[3],
            first_response_at=_as_time(row[4]),
            first_responder_key=row[5],
            resolved_at=_as_time(row[6]),
            reopen_count=row[7] or 0,
            status=row[8],
            first_sentiment=row[9],
            last_sentiment=row[10],
            labels=list(row[11] or []),
        )
        for row in (await session.execute(query)).all()
    ]


def _as_uuid(value: Any) -> uuid.UUID | None:
    if value is None or isinstance(value, uuid.UUID):
        return value
    return uuid.UUID(str(value))


def _as_time(value: Any) -> datetime | None:
    """A timestamp from a scalar subquery (SQLite may hand back text or a naive UTC datetime)."""
    if value is None:
        return None
    parsed = datetime.fromisoformat(value) if isinstance(value, str) else value
    assert isinstance(parsed, datetime)
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


async def finish_conversations(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> None:
    """Write the durations and timeline of recomputed conversations (one executemany)."""
    if not rows:
        return
    table = cast(Table, ConversationFact.__table__)
    names = [name for name in rows[0] if name != "id"]
    statement = (
        update(table).where(table.c.id == bindparam("_id")).values({name: bindparam(name) for name in names})
    )
    for start in range(0, len(rows), _CHUNK):
        chunk = [
            {**{k: v for k, v in row.items() if k != "id"}, "_id": row["id"]}
            for row in rows[start : start + _CHUNK]
        ]
        await session.execute(statement, chunk)
