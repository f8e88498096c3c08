"""Reading conversations, messages and contacts."""

from __future__ import annotations

from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.engine import Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession

from services.inbox.errors import ContactNotFound, ConversationNotFound, MessageNotFound
from services.inbox.models import Contact, Identity, Message, MessageRevision
from services.inbox.repository import reads as repo
from services.inbox.repository.reads import ConversationFilter, ConversationRows, MessageRow


async def list_conversations(
    connection: AsyncConnection,
    workspace_id: UUID,
    where: ConversationFilter,
    before: tuple[datetime, UUID] | None,
    limit: int,
    reader: UUID | None = None,
) -> ConversationRows:
    """A page of conversations, most recent activity first (with ``reader``'s unread counts)."""
    return await repo.list_conversations(connection, workspace_id, where, before, limit, reader)


async def get_conversation(
    session: AsyncSession, workspace_id: UUID, conversation_id: UUID, reader: UUID | None = None
) -> Row[Any]:
    """A conversation (a row of ``repository.reads.conversation_rows``), or ConversationNotFound
    (also for another workspace's)."""
    row = await repo.get_conversation(session, workspace_id, conversation_id, reader)
    if row is None:
        raise ConversationNotFound(f"conversation {conversation_id} not found")
    return row


async def list_messages(
    session: AsyncSession,
    workspace_id: UUID,
    conversation_id: UUID,
    after: tuple[datetime, int] | None,
    limit: int,
    *,
    include_deleted: bool,
) -> list[MessageRow]:
    """A page of a conversation's messages, oldest first (ConversationNotFound if it does not exist)."""
    rows = await repo.list_messages(
        session, workspace_id, conversation_id, after, limit, include_deleted=include_deleted
    )
    if not rows and not await repo.conversation_exists(session, workspace_id, conversation_id):
        # Only an empty page needs to tell "no such conversation" from "nothing (more) in it".
        raise ConversationNotFound(f"conversation {conversation_id} not found")
    return rows


async def get_message(session: AsyncSession, workspace_id: UUID, message_id: UUID) -> MessageRow:
    """A message with its author, reply link and reactions, or MessageNotFound."""
    row = await repo.get_message_row(session, workspace_id, message_id)
    if row is None:
        raise MessageNotFound(f"message {message_id} not found")
    return row


async def message_history(
    session: AsyncSession, workspace_id: UUID, message_id: UUID
) -> tuple[Message, list[MessageRevision]]:
    """A message and its edits."""
    message = await repo.get_message(session, workspace_id, message_id)
    if message is None:
        raise MessageNotFound(f"message {message_id} not found")
    return message, await repo.list_revisions(session, message.id)


async def get_contact(
    session: AsyncSession, workspace_id: UUID, contact_id: UUID
) -> tuple[Contact, list[Identity]]:
    """A contact and its identities, or ContactNotFound."""
    contact = await repo.get_contact(session, workspace_id, contact_id)
    if contact is None:
        raise ContactNotFound(f"contact {contact_id} not found")
    return contact, await repo.contact_identities(session, contact.id)
