"""Facts about the conversation store, for live clients (``GET /v1/stream``) and outgoing webhooks.

They travel on ``domain.<workspace_id>.<type>`` in the ``DOMAIN`` stream, whose sequence numbers are
the stream's event ids: a client that reconnects with ``Last-Event-ID: <n>`` gets everything after
``n`` in its workspace. Every type shares one payload: the ids it concerns, who caused it, what
changed (``{"field": {"before": ..., "after": ...}}``) and the resource as the API shows it.

The inbox publishes the ``conversation.*``, ``presence.*`` and ``contact.*`` types; the analytics
service publishes ``alert.*`` (a crisis alert opened, changed, closed) and ``report.generated`` on the
same subjects, so live clients and outgoing webhooks get them like the others.
"""

from __future__ import annotations

from typing import Any, Literal, get_args
from uuid import UUID

from pydantic import Field

from shared.events.envelope import Event, Frozen

DomainType = Literal[
    "conversation.message_received",
    "conversation.message_sent",
    "conversation.message_failed",
    "conversation.note_added",
    "conversation.updated",
    "conversation.assigned",
    "conversation.claimed",
    "conversation.released",
    "conversation.read",
    "conversation.sentiment_corrected",
    "presence.updated",
    "contact.updated",
    "contact.merged",
    "contact.unmerged",
    "alert.opened",
    "alert.updated",
    "alert.closed",
    "report.generated",
]
DOMAIN_TYPES: tuple[str, ...] = get_args(DomainType)
"""Every domain event type, as subscribers name them in filters."""


class DomainChange(Frozen):
    """What a domain event is about."""

    conversation_id: UUID | None = None
    message_id: UUID | None = None
    contact_id: UUID | None = None
    actor_user_id: UUID | None = None
    changes: dict[str, Any] = Field(default_factory=dict)
    data: dict[str, Any] = Field(default_factory=dict)


class DomainEvent(Event):
    """Something changed in a workspace's inbox."""

    type: DomainType
    payload: DomainChange


def domain_subject(workspace_id: UUID | str, event_type: str) -> str:
    """The subject a domain event of this workspace and type travels on."""
    return f"domain.{workspace_id}.{event_type}"


def workspace_domain_subjects(workspace_id: UUID | str) -> str:
    """The wildcard subject of every domain event of a workspace."""
    return f"domain.{workspace_id}.>"
