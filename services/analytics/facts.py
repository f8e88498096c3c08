"""What analytics keeps of each domain event: plain facts, decoded without IO.

Only the events that move a figure become facts: messages received and sent, status and label
changes, and sentiment corrections. Every fact carries the key that makes storing it twice a no-op
(a message's id, an event's id).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from shared.events.domain import DomainEvent
from shared.logging import get_logger

log = get_logger(__name__)

INBOUND = "inbound"
OUTBOUND = "outbound"
COPY = "copy"
"""The direction of an outbound message received from the platform that is a copy of a Piazza reply
(counted once, as the reply)."""
LABEL_LENGTH = 64
"""The longest label kept (the inbox's label ids are 36 characters; the label tables' width)."""
_TEXT_KEPT = 1000  # characters of a message kept for topic examples and keyword matching


@dataclass(frozen=True, slots=True)
class MessageSeen:
    """A message received from a customer or sent by the team."""

    id: uuid.UUID
    workspace_id: uuid.UUID
    channel_id: uuid.UUID | None
    conversation_id: uuid.UUID
    direction: str
    author_key: str | None
    occurred_at: datetime
    sentiment: str | None = None
    sentiment_score: float | None = None
    language: str | None = None
    text: str | None = None
    external_id: str | None = None
    """The platform's id of an outbound message received from the platform."""
    platform_ids: tuple[str, ...] = ()
    """The platform ids a Piazza reply became."""


@dataclass(frozen=True, slots=True)
class StatusChanged:
    """A conversation's status went from ``before`` to ``after``."""

    event_id: str
    workspace_id: uuid.UUID
    conversation_id: uuid.UUID
    channel_id: uuid.UUID | None
    occurred_at: datetime
    before: str | None
    after: str
    actor_user_id: uuid.UUID | None


@dataclass(frozen=True, slots=True)
class LabelsChanged:
    """A conversation's labels became ``labels``."""

    event_id: str
    workspace_id: uuid.UUID
    conversation_id: uuid.UUID
    occurred_at: datetime
    labels: tuple[str, ...]


@dataclass(frozen=True, slots=True)
class SentimentCorrected:
    """An agent set (or, with ``label`` None, removed) the sentiment of a message."""

    event_id: str
    workspace_id: uuid.UUID
    conversation_id: uuid.UUID | None
    message_id: uuid.UUID
    occurred_at: datetime
    label: str | None
    actor_user_id: uuid.UUID | None


Fact = MessageSeen | StatusChanged | LabelsChanged | SentimentCorrected


def facts_of(event: DomainEvent) -> list[Fact]:
    """The facts an event adds (none for the types analytics does not count)."""
    workspace_id = uuid.UUID(event.workspace)
    payload = event.payload
    data = payload.data
    if event.type == "conversation.message_received" and payload.conversation_id and payload.message_id:
        sentiment = data.get("sentiment") or {}
        direction = data.get("direction") or INBOUND
        return [
            MessageSeen(
                id=payload.message_id,
                workspace_id=workspace_id,
                channel_id=_uuid(data.get("channel_id")),
                conversation_id=payload.conversation_id,
                direction=INBOUND if direction == INBOUND else OUTBOUND,
                author_key=data.get("author_identity_id") if direction == INBOUND else None,
                occurred_at=_time(data.get("sent_at")) or event.occurred_at,
                sentiment=sentiment.get("label") if direction == INBOUND else None,
                sentiment_score=_float(sentiment.get("score")) if direction == INBOUND else None,
                language=sentiment.get("language"),
                text=_text(data.get("text")),
                external_id=_platform_id(data.get("external_id")) if direction != INBOUND else None,
            )
        ]
    if event.type == "conversation.message_sent" and payload.conversation_id and payload.message_id:
        return [
            MessageSeen(
                id=payload.message_id,
                workspace_id=workspace_id,
                channel_id=_uuid(data.get("channel_id")),
                conversation_id=payload.conversation_id,
                direction=OUTBOUND,
                author_key=str(payload.actor_user_id) if payload.actor_user_id else None,
                occurred_at=_time(data.get("sent_at")) or event.occurred_at,
                text=_text(data.get("text")),
                platform_ids=_platform_ids(data.get("platform_message_ids"), event.id),
            )
        ]
    if event.type == "conversation.updated" and payload.conversation_id:
        return _conversation_changes(event, workspace_id, payload.conversation_id)
    if event.type == "conversation.sentiment_corrected" and payload.message_id:
        return [
            SentimentCorrected(
                event_id=event.id,
                workspace_id=workspace_id,
                conversation_id=payload.conversation_id,
                message_id=payload.message_id,
                occurred_at=event.occurred_at,
                label=data.get("corrected_label"),
                actor_user_id=payload.actor_user_id,
            )
        ]
    return []


def _conversation_changes(
    event: DomainEvent, workspace_id: uuid.UUID, conversation_id: uuid.UUID
) -> list[Fact]:
    changes = event.payload.changes
    facts: list[Fact] = []
    status = changes.get("status")
    if isinstance(status, dict) and status.get("after"):
        facts.append(
            StatusChanged(
                event_id=event.id,
                workspace_id=workspace_id,
                conversation_id=conversation_id,
                channel_id=_uuid(event.payload.data.get("channel_id")),
                occurred_at=event.occurred_at,
                before=status.get("before"),
                after=str(status["after"]),
                actor_user_id=event.payload.actor_user_id,
            )
        )
    labels = changes.get("labels")
    if isinstance(labels, dict) and isinstance(labels.get("after"), list):
        names = [str(label) for label in labels["after"]]
        # Label ids; anything longer than one could be is not a label of this inbox.
        kept = sorted(name for name in names if len(name) <= LABEL_LENGTH)
        if len(kept) < len(names):
            log.warning(
                "analytics.labels.too_long",
                event_id=event.id,
                dropped=len(names) - len(kept),
                limit=LABEL_LENGTH,
            )
        facts.append(
            LabelsChanged(
                event_id=event.id,
                workspace_id=workspace_id,
                conversation_id=conversation_id,
                occurred_at=event.occurred_at,
                labels=tuple(kept),
            )
        )
    return facts


PLATFORM_ID_LENGTH = 512
"""The longest platform message id kept (the inbox's ``messages.external_id`` width)."""


def _platform_id(value: Any) -> str | None:
    return value if isinstance(value, str) and 0 < len(value) <= PLATFORM_ID_LENGTH else None


def _platform_ids(value: Any, event_id: str) -> tuple[str, ...]:
    """A reply's platform ids (a list of them); anything that is not an id is left out, and said."""
    items = value if isinstance(value, list) else [] if value is None else [value]
    kept = [_platform_id(item) for item in items]
    if None in kept:
        log.warning("analytics.platform_ids.invalid", event_id=event_id, dropped=kept.count(None))
    return tuple(sorted({platform_id for platform_id in kept if platform_id is not None}))


def _uuid(value: Any) -> uuid.UUID | None:
    try:
        return uuid.UUID(str(value)) if value else None
    except ValueError:
        return None


def _time(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        parsed = datetime.fromisoformat(value)
    except ValueError:
        return None
    return parsed if parsed.tzinfo else None


def _float(value: Any) -> float | None:
    return float(value) if isinstance(value, int | float) else None


def _text(value: Any) -> str | None:
    return value[:_TEXT_KEPT] if isinstance(value, str) and value else None
