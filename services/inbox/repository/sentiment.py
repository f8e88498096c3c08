"""A conversation's sentiment: the effective sentiment of its newest inbound message that has one.

"Newest" is by the platform's send time (ties by message id), among inbound messages whose create
was stored and that are not deleted, like the list's preview; "effective" is the agent's correction
when there is one, else the analyzer's label. The value is derived from the stored messages, never
carried from event to event, so it is the same whatever order the events arrive in, and it is
derived again wherever it may change: after every ingest batch, for the conversations whose messages
the batch wrote, and after a correction.
"""

from __future__ import annotations

from functools import cache
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.inbox.models import Conversation, Message


def effective(message: Any = Message) -> ColumnElement[str | None]:
    """A message's effective sentiment label: the correction, else the analyzer's."""
    return func.coalesce(message.sentiment_correction, message.sentiment)


@cache
def newest_label() -> Any:
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
    return await session.scalar(select(newest_label()).where(Conversation.id == conversation_id))
