"""Per-user read state: how far each agent has read each conversation."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.inbox.errors import ConversationNotFound, MessageNotFound
from services.inbox.repository import reads
from services.inbox.repository import workflow as repo
from services.inbox.service.access import Principal, Role
from services.inbox.service.events import announce
from services.inbox.service.workflow import read_on_platform, require_user
from shared.events.domain import DomainChange


async def mark_read(
    session: AsyncSession,
    principal: Principal,
    conversation_id: uuid.UUID,
    up_to_message_id: uuid.UUID | None,
    now: datetime,
) -> list[str]:
    """Record how far the caller has read; returns the outbox ids of the event saying so (none when
    the conversation has no message yet)."""
    user_id = require_user(principal)
    if not await reads.conversation_exists(session, principal.workspace_id, conversation_id):
        raise ConversationNotFound(f"conversation {conversation_id} not found")
    if up_to_message_id is not None:
        message = await reads.get_message(session, principal.workspace_id, up_to_message_id)
        if message is None or message.conversation_id != conversation_id:
            raise MessageNotFound(f"message {up_to_message_id} is not in this conversation")
        up_to: datetime | None = message.occurred_at
    else:
        up_to = await repo.newest_message_time(session, conversation_id)
    if up_to is None:
        return []
    await repo.mark_read(session, user_id, conversation_id, up_to, now)
    # Read on the platform too (Reddit's mark_read: opened), as far as this read went; a viewer's
    # reading is not an agent's and changes nothing there.
    entries = (
        await read_on_platform(session, principal.workspace_id, conversation_id, now, up_to)
        if principal.role is not Role.VIEWER
        else []
    )
    change = DomainChange(
        conversation_id=conversation_id,
        actor_user_id=user_id,
        data={"user_id": str(user_id), "read_up_to": up_to.isoformat()},
    )
    return [*entries, await announce(session, principal.workspace_id, "conversation.read", change, now)]


async def mark_unread(session: AsyncSession, principal: Principal, conversation_id: uuid.UUID) -> None:
    """Make the conversation unread again for the caller."""
    user_id = require_user(principal)
    if not await reads.conversation_exists(session, principal.workspace_id, conversation_id):
        raise ConversationNotFound(f"conversation {conversation_id} not found")
    await repo.mark_unread(session, user_id, conversation_id)
