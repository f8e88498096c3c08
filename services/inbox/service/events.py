"""Announcing changes: domain events queued in the outbox with the change, and audit entries."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.inbox.models import AuditEntry, Conversation, OutboxEntry
from services.inbox.repository import outbound as repo
from services.inbox.service.access import Principal
from shared.events.domain import DomainChange, DomainEvent, DomainType, domain_subject
from shared.events.registry import encode_event

SOURCE = "inbox"


async def announce(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    event_type: DomainType,
    change: DomainChange,
    now: datetime,
    *,
    event_id: str | None = None,
) -> str:
    """Queue a domain event in the caller's transaction; returns its outbox id (publish it after the
    commit with ``publish_outbox(..., ids=[...])``; the worker's sweep publishes what is left behind)."""
    event = DomainEvent(
        type=event_type,
        workspace=str(workspace_id),
        source=SOURCE,
        occurred_at=now,
        payload=change,
        **({"id": event_id} if event_id else {}),
    )
    await repo.add_outbox(
        session,
        OutboxEntry(
            id=event.id,
            subject=domain_subject(workspace_id, event_type),
            payload=encode_event(event).decode(),
            created_at=now,
        ),
    )
    return event.id


def json_ready(value: Any) -> Any:
    """A field's value as an event's or audit entry's ``before``/``after`` (ids and times as
    strings, collections sorted)."""
    if isinstance(value, uuid.UUID):
        return str(value)
    if isinstance(value, datetime):
        return value.isoformat()
    if isinstance(value, set | frozenset | list | tuple):
        return sorted(json_ready(v) for v in value)
    return value


async def announce_conversation_change(
    session: AsyncSession,
    conversation: Conversation,
    changes: dict[str, Any],
    now: datetime,
    *,
    actor_user_id: uuid.UUID | None = None,
) -> list[str]:
    """Queue ``conversation.updated`` for these changes of a conversation (``{field: {"before": ...,
    "after": ...}}``), and ``conversation.assigned`` too when they include its assignee or team;
    returns the outbox ids."""
    change = DomainChange(
        conversation_id=conversation.id,
        actor_user_id=actor_user_id,
        changes=changes,
        data={"channel_id": str(conversation.channel_id)},
    )
    announced = [await announce(session, conversation.workspace_id, "conversation.updated", change, now)]
    if "assignee_id" in changes or "team_id" in changes:
        assigned = {k: v for k, v in changes.items() if k in ("assignee_id", "team_id", "version")}
        announced.append(
            await announce(
                session,
                conversation.workspace_id,
                "conversation.assigned",
                change.model_copy(update={"changes": assigned}),
                now,
            )
        )
    return announced


async def audit(
    session: AsyncSession,
    principal: Principal,
    *,
    action: str,
    target_type: str,
    target_id: uuid.UUID | str,
    now: datetime,
    before: dict[str, Any] | None = None,
    after: dict[str, Any] | None = None,
    detail: dict[str, Any] | None = None,
    status: str = "applied",
) -> AuditEntry:
    """Record who did what to which target, with the state before and after (JSON-ready values), in the
    caller's transaction."""
    entry = AuditEntry(
        id=uuid.uuid4(),
        workspace_id=principal.workspace_id,
        actor_token_id=principal.token_id,
        actor_user_id=principal.user_id,
        action=action,
        target_type=target_type,
        target_id=str(target_id),
        status=status,
        detail=detail or {},
        before=before,
        after=after,
        created_at=now,
        updated_at=now,
    )
    session.add(entry)
    await session.flush()
    return entry
