"""A conversation's sentiment: the effective sentiment of its newest inbound message that has one.

"Newest" is by the platform's send time (ties by message id), among inbound messages whose create
was stored and that are not deleted, like the list's preview; "effective" is the agent's correction
when there is one, else the analyzer's label. The value is derived from the stored messages, never
carried from event to event, so it is the same whatever order the events arrive in, and it is
derived again wherever it may change: after every ingest batch, for the conversations whose messages
the batch wrote, and after a correction.
"""

from __future__ import annotations

from collections.abc import Collection
from functools import cache
from typing import Any, cast
from uuid import UUID

from sqlalchemy import ColumnElement, Table, bindparam, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.inbox.models import Conversation, Message

_CHUNK = 500


def effective(message: Any = Message) -> ColumnElement[str | None]:
    """A message's effective sentiment label: the correction, else the analyzer's."""
    return func.coalesce(message.sentiment_correction, message.sentiment)


@cache
def _latest() -> Any:
    """The effective sentiment of a conversation's newest inbound message that has one (correlated)."""
    message = aliased(Message)
    label = effective(message)
    return (
        select(label)
        .where(
            message.conversation_id == Conversation.id,
            message.direction == "inbound",
            message.sent_at.is_not(None),
            message.deleted_at.is_(None),
            label.is_not(None),
        )
        .order_by(message.occurred_at.desc(), message.id.desc())
        .limit(1)
        .correlate(Conversation)
        .scalar_subquery()
    )


async def latest(session: AsyncSession, conversation_id: UUID) -> str | None:
    """What a conversation's sentiment is, from its messages as they are now."""
    return await session.scalar(select(_latest()).where(Conversation.id == conversation_id))


async def refresh(session: AsyncSession, conversation_ids: Collection[UUID]) -> int:
    """Derive the sentiment of these conversations again (rows whose value is unchanged are not
    written); returns how many changed. The caller holds their row locks (the ingest's upsert)."""
    ordered = sorted(conversation_ids)
    changed: list[dict[str, Any]] = []
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        rows = await session.execute(
            select(Conversation.id, Conversation.sentiment, _latest().label("latest")).where(
                Conversation.id.in_(chunk)
            )
        )
        changed += [
            {"b_id": row.id, "b_sentiment": row.latest} for row in rows if row.sentiment != row.latest
        ]
    if changed:
        # Core, not ORM, executemany: one UPDATE per changed row, by key, nothing synchronised.
        table = cast(Table, Conversation.__table__)
        await session.execute(
            update(table).where(table.c.id == bindparam("b_id")).values(sentiment=bindparam("b_sentiment")),
            changed,
        )
    return len(changed)
