"""Storing facts: each insert is keyed, so what is already there is left alone."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Collection, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import case, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics.buckets import hour_of
from services.analytics.facts import (
    COPY,
    OUTBOUND,
    LabelsChanged,
    MessageSeen,
    SentimentCorrected,
    StatusChanged,
)
from services.analytics.models import (
    Author,
    AuthorHour,
    ConversationFact,
    ConversationLabel,
    CorrectionFact,
    LabelFact,
    MessageFact,
    SentId,
    StatusFact,
    TermCount,
    WorkspaceSettings,
)
from shared.db import insert_for

_CHUNK = 500  # rows per statement: well inside both backends' bound-parameter limits


def _dialect(session: AsyncSession) -> str:
    return session.get_bind().dialect.name


def _chunks(rows: Sequence[dict[str, Any]]) -> Iterable[Sequence[dict[str, Any]]]:
    for start in range(0, len(rows), _CHUNK):
        yield rows[start : start + _CHUNK]


async def insert_messages(session: AsyncSession, messages: Sequence[MessageSeen]) -> set[uuid.UUID]:
    """Store the messages not stored yet; returns the ids that were new."""
    unique = {m.id: m for m in messages}
    rows = [
        {
            "id": m.id,
            "workspace_id": m.workspace_id,
            "channel_id": m.channel_id,
            "conversation_id": m.conversation_id,
            "direction": m.direction,
            "author_key": m.author_key,
            "occurred_at": m.occurred_at,
            "hour": hour_of(m.occurred_at),
            "sentiment": m.sentiment,
            "sentiment_score": m.sentiment_score,
            "language": m.language,
            "corrected_sentiment": None,
            "text": m.text,
            "external_id": m.external_id,
        }
        for m in unique.values()
    ]
    new: set[uuid.UUID] = set()
    for chunk in _chunks(rows):
        statement = (
            insert_for(_dialect(session), MessageFact.__table__)
            .on_conflict_do_nothing(index_elements=["id"])
            .returning(MessageFact.__table__.c.id)
        )
        new.update((await session.execute(statement, list(chunk))).scalars())
    return new


async def record_sent_ids(session: AsyncSession, messages: Sequence[MessageSeen]) -> None:
    """Remember the platform ids these replies became (on their channel: a reply whose event named
    none cannot be matched to its copies)."""
    rows = [
        {"channel_id": m.channel_id, "platform_id": platform_id, "message_id": m.id}
        for m in messages
        if m.channel_id is not None
        for platform_id in m.platform_ids
    ]
    for chunk in _chunks(rows):
        await session.execute(
            insert_for(_dialect(session), SentId.__table__).on_conflict_do_nothing(), list(chunk)
        )


async def copies_among(session: AsyncSession, messages: Sequence[MessageSeen]) -> set[uuid.UUID]:
    """Of these outbound messages received from the platform, the copies of Piazza replies."""
    keys = {
        m.id: (m.channel_id, m.external_id)
        for m in messages
        if m.direction == OUTBOUND and m.channel_id is not None and m.external_id is not None
    }
    grouped: dict[uuid.UUID, set[str]] = {}
    for channel_id, platform_id in keys.values():
        grouped.setdefault(channel_id, set()).add(platform_id)
    replies: dict[tuple[uuid.UUID, str], uuid.UUID] = {}
    for channel_id, platform_ids in grouped.items():
        found = await session.execute(
            select(SentId.channel_id, SentId.platform_id, SentId.message_id).where(
                SentId.channel_id == channel_id, SentId.platform_id.in_(sorted(platform_ids))
            )
        )
        replies.update({(channel, platform_id): reply for channel, platform_id, reply in found})
    return {message_id for message_id, key in keys.items() if replies.get(key, message_id) != message_id}


async def mark_copies(session: AsyncSession, messages: Sequence[MessageSeen]) -> set[uuid.UUID]:
    """Turn the stored outbound messages that these replies' platform ids reveal as copies into
    copies (one statement per channel); returns their ids."""
    became: dict[uuid.UUID, set[str]] = {}
    replies: set[uuid.UUID] = set()
    for m in messages:
        if m.channel_id is not None and m.platform_ids:
            became.setdefault(m.channel_id, set()).update(m.platform_ids)
            replies.add(m.id)
    marked: set[uuid.UUID] = set()
    for channel_id, platform_ids in became.items():
        result = await session.execute(
            update(MessageFact)
            .where(
                MessageFact.channel_id == channel_id,
                MessageFact.external_id.in_(sorted(platform_ids)),
                MessageFact.direction == OUTBOUND,
                MessageFact.id.not_in(replies),
            )
            .values(direction=COPY)
            .returning(MessageFact.id)
        )
        marked.update(result.scalars())
    return marked


async def insert_keyed(
    session: AsyncSession,
    statuses: Sequence[StatusChanged],
    labels: Sequence[LabelsChanged],
    corrections: Sequence[SentimentCorrected],
) -> None:
    """Store status changes, label changes and corrections (each once, by its event id)."""
    tables: list[tuple[Any, list[dict[str, Any]]]] = [
        (
            StatusFact,
            [
                {
                    "event_id": s.event_id,
                    "workspace_id": s.workspace_id,
                    "conversation_id": s.conversation_id,
                    "occurred_at": s.occurred_at,
                    "before": s.before,
                    "after": s.after,
                    "actor_user_id": s.actor_user_id,
                }
                for s in statuses
            ],
        ),
        (
            LabelFact,
            [
                {
                    "event_id": c.event_id,
                    "workspace_id": c.workspace_id,
                    "conversation_id": c.conversation_id,
                    "occurred_at": c.occurred_at,
                    "labels": list(c.labels),
                }
                for c in labels
            ],
        ),
        (
            CorrectionFact,
            [
                {
                    "event_id": c.event_id,
                    "workspace_id": c.workspace_id,
                    "message_id": c.message_id,
                    "occurred_at": c.occurred_at,
                    "label": c.label,
                    "actor_user_id": c.actor_user_id,
                }
                for c in corrections
            ],
        ),
    ]
    for table, rows in tables:
        for chunk in _chunks(rows):
            statement = insert_for(_dialect(session), table.__table__).on_conflict_do_nothing()
            await session.execute(statement, list(chunk))


async def apply_corrections(session: AsyncSession, message_ids: Iterable[uuid.UUID]) -> None:
    """Set each message's corrected sentiment to its latest correction (null when the latest removed
    it, or there is none)."""
    ids = list(set(message_ids))
    latest = (
        select(CorrectionFact.label)
        .where(CorrectionFact.message_id == MessageFact.id)
        .order_by(CorrectionFact.occurred_at.desc(), CorrectionFact.event_id.desc())
        .limit(1)
        .scalar_subquery()
    )
    for start in range(0, len(ids), _CHUNK):
        await session.execute(
            update(MessageFact)
            .where(MessageFact.id.in_(ids[start : start + _CHUNK]))
            .values(corrected_sentiment=latest)
            .execution_options(synchronize_session=False)
        )


async def corrected_ids(session: AsyncSession, message_ids: Iterable[uuid.UUID]) -> set[uuid.UUID]:
    """Which of these messages have corrections (that arrived before the message itself)."""
    ids = list(set(message_ids))
    found: set[uuid.UUID] = set()
    for start in range(0, len(ids), _CHUNK):
        rows = await session.execute(
            select(CorrectionFact.message_id).where(
                CorrectionFact.message_id.in_(ids[start : start + _CHUNK])
            )
        )
        found.update(rows.scalars())
    return found


async def messages_by_id(session: AsyncSession, message_ids: Iterable[uuid.UUID]) -> list[MessageFact]:
    """The stored messages among these ids."""
    ids = list(set(message_ids))
    found: list[MessageFact] = []
    for start in range(0, len(ids), _CHUNK):
        rows = await session.execute(
            select(MessageFact).where(MessageFact.id.in_(ids[start : start + _CHUNK]))
        )
        found.extend(rows.scalars())
    return found


async def record_authors(session: AsyncSession, messages: Sequence[MessageFact]) -> None:
    """Note who wrote in which channel and hour, and when each author was first seen."""
    hours = {
        (m.workspace_id, m.channel_id, m.hour, m.author_key)
        for m in messages
        if m.author_key and m.channel_id and m.direction == "inbound"
    }
    rows = [
        {"workspace_id": w, "channel_id": c, "hour": h, "author_key": a}
        for w, c, h, a in sorted(hours, key=str)
    ]
    for chunk in _chunks(rows):
        await session.execute(
            insert_for(_dialect(session), AuthorHour.__table__).on_conflict_do_nothing(), list(chunk)
        )
    first: dict[tuple[uuid.UUID, str], MessageFact] = {}
    for m in messages:
        if m.author_key and m.direction == "inbound":
            key = (m.workspace_id, m.author_key)
            if key not in first or (m.occurred_at, str(m.id)) < (first[key].occurred_at, str(first[key].id)):
                first[key] = m
    author_rows = [
        {"workspace_id": w, "author_key": a, "first_seen_at": m.occurred_at, "first_channel_id": m.channel_id}
        for (w, a), m in sorted(first.items(), key=lambda item: str(item[0]))
    ]
    for chunk in _chunks(author_rows):
        statement = insert_for(_dialect(session), Author.__table__)
        earlier = statement.excluded.first_seen_at < Author.first_seen_at
        statement = statement.on_conflict_do_update(
            index_elements=["workspace_id", "author_key"],
            set_={
                "first_seen_at": case(
                    (earlier, statement.excluded.first_seen_at), else_=Author.first_seen_at
                ),
                "first_channel_id": case(
                    (earlier, statement.excluded.first_channel_id), else_=Author.first_channel_id
                ),
            },
        )
        await session.execute(statement, list(chunk))


async def add_terms(
    session: AsyncSession, counts: Counter[tuple[uuid.UUID, uuid.UUID, datetime, str]]
) -> None:
    """Add messages' term counts to their channel and hour."""
    rows = [
        {"workspace_id": w, "channel_id": c, "hour": h, "term": t, "count": n}
        for (w, c, h, t), n in sorted(counts.items(), key=lambda item: str(item[0]))
    ]
    for chunk in _chunks(rows):
        statement = insert_for(_dialect(session), TermCount.__table__)
        statement = statement.on_conflict_do_update(
            index_elements=["workspace_id", "channel_id", "hour", "term"],
            set_={"count": TermCount.__table__.c.count + statement.excluded["count"]},
        )
        await session.execute(statement, list(chunk))


async def fill_channels(
    session: AsyncSession, conversation_ids: Iterable[uuid.UUID]
) -> set[tuple[uuid.UUID, uuid.UUID, datetime, uuid.UUID]]:
    """Give these conversations' messages whose event did not name a channel the conversation's,
    once known; returns the (workspace, channel, hour, conversation) of the messages filled in."""
    ids = list(set(conversation_ids))
    known = (
        select(ConversationFact.channel_id)
        .where(ConversationFact.id == MessageFact.conversation_id)
        .scalar_subquery()
    )
    filled: set[tuple[uuid.UUID, uuid.UUID, datetime, uuid.UUID]] = set()
    for start in range(0, len(ids), _CHUNK):
        rows = await session.execute(
            update(MessageFact)
            .where(
                MessageFact.conversation_id.in_(ids[start : start + _CHUNK]),
                MessageFact.channel_id.is_(None),
                known.is_not(None),
            )
            .values(channel_id=known)
            .returning(
                MessageFact.workspace_id,
                MessageFact.channel_id,
                MessageFact.hour,
                MessageFact.conversation_id,
            )
            .execution_options(synchronize_session=False)
        )
        filled.update((w, c, h, conversation) for w, c, h, conversation in rows.all() if c is not None)
    return filled


async def current_labels(
    session: AsyncSession, conversation_ids: Iterable[uuid.UUID], among: Collection[str] | None = None
) -> dict[uuid.UUID, set[str]]:
    """The labels these conversations carry as the label rollups last counted them (only those
    ``among`` these, when given)."""
    ids = sorted(set(conversation_ids))
    labels: dict[uuid.UUID, set[str]] = {}
    for start in range(0, len(ids), _CHUNK):
        query = select(ConversationLabel.conversation_id, ConversationLabel.label).where(
            ConversationLabel.conversation_id.in_(ids[start : start + _CHUNK])
        )
        if among is not None:
            query = query.where(ConversationLabel.label.in_(among))
        rows = await session.execute(query)
        for conversation, label in rows.all():
            labels.setdefault(conversation, set()).add(label)
    return labels


async def replace_labels(
    session: AsyncSession,
    workspace_of: dict[uuid.UUID, uuid.UUID],
    before: dict[uuid.UUID, set[str]],
    after: dict[uuid.UUID, set[str]],
) -> None:
    """Store the conversations' labels ``after``, where they differ from ``before``."""
    changed = [c for c in workspace_of if before.get(c, set()) != after.get(c, set())]
    for start in range(0, len(changed), _CHUNK):
        await session.execute(
            delete(ConversationLabel).where(
                ConversationLabel.conversation_id.in_(changed[start : start + _CHUNK])
            )
        )
    rows = [
        {"workspace_id": workspace_of[c], "label": label, "conversation_id": c}
        for c in changed
        for label in sorted(after.get(c, set()))
    ]
    for chunk in _chunks(rows):
        # Another transaction may have stored the same labels meanwhile (invisible to the delete).
        await session.execute(
            insert_for(_dialect(session), ConversationLabel).values(list(chunk)).on_conflict_do_nothing()
        )


async def message_hours(
    session: AsyncSession, conversation_ids: Iterable[uuid.UUID]
) -> set[tuple[uuid.UUID, uuid.UUID, datetime]]:
    """The (conversation, channel, hour) of every message of these conversations that has a channel."""
    ids = list(set(conversation_ids))
    hours: set[tuple[uuid.UUID, uuid.UUID, datetime]] = set()
    for start in range(0, len(ids), _CHUNK):
        rows = await session.execute(
            select(MessageFact.conversation_id, MessageFact.channel_id, MessageFact.hour)
            .where(
                MessageFact.conversation_id.in_(ids[start : start + _CHUNK]),
                MessageFact.channel_id.is_not(None),
            )
            .distinct()
        )
        hours.update((c, channel, h) for c, channel, h in rows.all() if channel is not None)
    return hours


async def workspace_settings(
    session: AsyncSession, workspace_ids: Iterable[uuid.UUID]
) -> dict[uuid.UUID, WorkspaceSettings]:
    """The analytics settings of these workspaces (those that have any)."""
    ids = list(set(workspace_ids))
    if not ids:
        return {}
    rows = await session.execute(select(WorkspaceSettings).where(WorkspaceSettings.workspace_id.in_(ids)))
    return {s.workspace_id: s for s in rows.scalars()}
