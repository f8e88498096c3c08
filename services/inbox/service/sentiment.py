"""Agents correcting the sentiment the analyzer gave a customer's message.

Rules (``docs/api.md`` states them for API users):

* Only inbound messages have a sentiment: correcting a reply or a note is refused (409
  ``sentiment_not_applicable``).
* A correction wins over the analyzer's label wherever the sentiment shows or counts: the message,
  the conversation's sentiment (and so the list's filter), and analytics, which hears of it through
  ``conversation.sentiment_corrected``. Removing it brings the analyzer's label back.
* The conversation's ``version`` moves only when its sentiment changes; a write naming a version
  (``If-Match``) is refused when it is not the current one.
* Putting the correction already in place, or removing one that is not there, changes nothing: no
  audit entry, no event.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.inbox.errors import MessageNotFound, SentimentNotApplicable
from services.inbox.models import Conversation, Message
from services.inbox.repository import reads
from services.inbox.repository import sentiment as repo
from services.inbox.service.access import Principal
from services.inbox.service.events import announce, audit
from services.inbox.service.workflow import Changed, check_version, locked_conversation
from shared.events.domain import DomainChange
from shared.sentiment import SentimentLabel


async def correct(
    session: AsyncSession,
    principal: Principal,
    conversation_id: uuid.UUID,
    message_id: uuid.UUID,
    label: SentimentLabel | None,
    expected_version: int | None,
    now: datetime,
) -> tuple[Conversation, Message, Changed]:
    """Set the agent's label on an inbound message (``None`` removes the correction), derive the
    conversation's sentiment again, audit the change and queue its event."""
    conversation = await locked_conversation(session, principal.workspace_id, conversation_id)
    check_version(conversation, expected_version)
    message = await reads.get_message(session, principal.workspace_id, message_id)
    if message is None or message.conversation_id != conversation.id:
        raise MessageNotFound(f"message {message_id} is not in this conversation")
    if message.direction != "inbound":
        raise SentimentNotApplicable(
            f"Only customer messages have a sentiment; this one is {message.direction}.",
            errors=[{"direction": message.direction}],
        )
    if message.sentiment_correction == label:
        return conversation, message, Changed()
    before = _state(message, conversation)
    message.sentiment_correction = label
    message.sentiment_corrected_by = principal.user_id if label is not None else None
    message.sentiment_corrected_at = now if label is not None else None
    message.updated_at = now
    await session.flush()
    latest = await repo.latest(session, conversation.id)
    if latest != conversation.sentiment:
        conversation.sentiment = latest
        conversation.version += 1
    conversation.updated_at = now
    after = _state(message, conversation)
    changes = {name: {"before": before[name], "after": after[name]} for name in ("sentiment", "correction")}
    changes |= {
        name: {"before": before[name], "after": after[name]}
        for name in ("conversation_sentiment", "version")
        if before[name] != after[name]
    }
    await audit(
        session,
        principal,
        action="message.sentiment_corrected" if label is not None else "message.sentiment_correction_removed",
        target_type="message",
        target_id=message.id,
        now=now,
        before={name: change["before"] for name, change in changes.items()},
        after={name: change["after"] for name, change in changes.items()},
        detail={"conversation_id": str(conversation.id)},
    )
    entry = await announce(
        session,
        conversation.workspace_id,
        "conversation.sentiment_corrected",
        DomainChange(
            conversation_id=conversation.id,
            message_id=message.id,
            actor_user_id=principal.user_id,
            changes=changes,
            data=event_data(message, conversation),
        ),
        now,
    )
    return conversation, message, Changed(outbox_ids=[entry], changed=True)


def _state(message: Message, conversation: Conversation) -> dict[str, Any]:
    return {
        "sentiment": message.sentiment_correction or message.sentiment,
        "correction": message.sentiment_correction,
        "conversation_sentiment": conversation.sentiment,
        "version": conversation.version,
    }


def event_data(message: Message, conversation: Conversation) -> dict[str, Any]:
    """What ``conversation.sentiment_corrected`` says of the message: enough for a consumer that never
    reads the inbox's tables (analytics) to move the message from one label to the other."""
    return {
        "channel_id": str(message.channel_id),
        "message_id": str(message.id),
        "sent_at": message.sent_at.isoformat() if message.sent_at else None,
        "model_label": message.sentiment,
        "model_score": message.sentiment_score,
        "language": message.language,
        "corrected_label": message.sentiment_correction,
        "corrected_by": str(message.sentiment_corrected_by) if message.sentiment_corrected_by else None,
        "corrected_at": message.sentiment_corrected_at.isoformat()
        if message.sentiment_corrected_at
        else None,
        "label": message.sentiment_correction or message.sentiment,
        "conversation_sentiment": conversation.sentiment,
    }
