"""Statements behind saved replies, and the look-ups that fill in their placeholders."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID

from sqlalchemy import delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.inbox.models import Channel, Contact, Conversation, Identity, Message, SavedReply, Workspace


@dataclass(frozen=True)
class ConversationContext:
    """What a conversation tells a saved reply: its title, channel, and contact."""

    conversation_id: UUID
    title: str | None
    channel_name: str | None
    contact_id: UUID | None
    contact_name: str | None
    author_name: str | None
    """The name the contact's identity shows on its platform."""


async def list_replies(
    session: AsyncSession, workspace_id: UUID, q: str | None, after: str | None, limit: int
) -> list[SavedReply]:
    """Saved replies by shortcut, strictly after the shortcut ``after``; ``q`` is a case-insensitive
    substring of the shortcut, title or body."""
    query = select(SavedReply).where(SavedReply.workspace_id == workspace_id)
    if q:
        escaped = q.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
        pattern = f"%{escaped}%"
        query = query.where(
            or_(
                *(
                    func.lower(column).like(pattern, escape="\\")
                    for column in (SavedReply.shortcut, SavedReply.title, SavedReply.body)
                )
            )
        )
    if after is not None:
        query = query.where(SavedReply.shortcut > after)
    query = query.order_by(SavedReply.shortcut).limit(limit)
    return list((await session.scalars(query)).all())


async def get_reply(
    session: AsyncSession, workspace_id: UUID, reply_id: UUID, *, for_update: bool = False
) -> SavedReply | None:
    """A saved reply of the workspace."""
    query = select(SavedReply).where(SavedReply.id == reply_id, SavedReply.workspace_id == workspace_id)
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)


async def save_reply(session: AsyncSession, reply: SavedReply) -> bool:
    """Write a new or changed saved reply; False (and nothing written) if its shortcut is taken, as
    the unique constraint decides."""
    try:
        async with session.begin_nested():
            session.add(reply)
            await session.flush()
    except IntegrityError:
        return False
    return True


async def delete_reply(session: AsyncSession, workspace_id: UUID, reply_id: UUID) -> bool:
    """Delete a saved reply; False if the workspace has no such reply."""
    result: Any = await session.execute(
        delete(SavedReply).where(SavedReply.id == reply_id, SavedReply.workspace_id == workspace_id)
    )
    return bool(result.rowcount)


async def workspace_name(session: AsyncSession, workspace_id: UUID) -> str | None:
    """The workspace's name."""
    return await session.scalar(select(Workspace.name).where(Workspace.id == workspace_id))


async def conversation_context(
    session: AsyncSession, workspace_id: UUID, conversation_id: UUID
) -> ConversationContext | None:
    """A conversation of the workspace with its channel and contact (the author of its first inbound
    message), or None."""
    row = (
        await session.execute(
            select(Conversation.id, Conversation.title, Channel.name)
            .join(Channel, Channel.id == Conversation.channel_id)
            .where(Conversation.id == conversation_id, Conversation.workspace_id == workspace_id)
        )
    ).first()
    if row is None:
        return None
    first_author = (
        select(Message.author_identity_id)
        .where(
            Message.conversation_id == conversation_id,
            Message.direction == "inbound",
            Message.author_identity_id.is_not(None),
        )
        .order_by(Message.occurred_at, Message.received_seq)
        .limit(1)
        .scalar_subquery()
    )
    author = (
        await session.execute(
            select(Contact.id, Contact.name, Identity.display_name)
            .join(Identity, Identity.contact_id == Contact.id)
            .where(Identity.id == first_author)
        )
    ).first()
    return ConversationContext(
        conversation_id=row[0],
        title=row[1],
        channel_name=row[2],
        contact_id=author[0] if author else None,
        contact_name=author[1] if author else None,
        author_name=author[2] if author else None,
    )
