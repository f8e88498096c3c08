"""Saved replies: the workspace's reusable answers, checked when saved and filled in per conversation."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.inbox.errors import ConversationNotFound, SavedReplyNotFound, ShortcutTaken
from services.inbox.models import SavedReply
from services.inbox.repository import saved_replies as repo
from services.inbox.service import reply_templates
from services.inbox.service.access import Principal
from services.inbox.service.events import audit
from services.inbox.service.reply_templates import Rendered

FIELDS = ("shortcut", "title", "body")


def placeholders(reply: SavedReply) -> list[str]:
    """The placeholders a saved reply uses (its body was checked when saved)."""
    return reply_templates.parse(reply.body).placeholders


def _json(reply: SavedReply) -> dict[str, Any]:
    return {name: getattr(reply, name) for name in FIELDS}


def _taken(shortcut: str) -> ShortcutTaken:
    return ShortcutTaken(f"another saved reply has the shortcut {shortcut!r}")


async def list_replies(
    session: AsyncSession, workspace_id: uuid.UUID, q: str | None, after: str | None, limit: int
) -> list[SavedReply]:
    """A page of the workspace's saved replies, by shortcut."""
    return await repo.list_replies(session, workspace_id, q, after, limit)


async def get_reply(session: AsyncSession, workspace_id: uuid.UUID, reply_id: uuid.UUID) -> SavedReply:
    """A saved reply, or SavedReplyNotFound."""
    reply = await repo.get_reply(session, workspace_id, reply_id)
    if reply is None:
        raise SavedReplyNotFound(f"saved reply {reply_id} not found")
    return reply


async def create_reply(
    session: AsyncSession, principal: Principal, shortcut: str, title: str, body: str, now: datetime
) -> SavedReply:
    """Save a reply after checking its placeholders (InvalidTemplate, ShortcutTaken)."""
    reply_templates.parse(body)
    reply = SavedReply(
        id=uuid.uuid4(),
        workspace_id=principal.workspace_id,
        shortcut=shortcut,
        title=title,
        body=body,
        created_by_id=principal.user_id,
        created_at=now,
        updated_at=now,
    )
    if not await repo.save_reply(session, reply):
        raise _taken(shortcut)
    await audit(
        session,
        principal,
        action="saved_reply.create",
        target_type="saved_reply",
        target_id=reply.id,
        now=now,
        after=_json(reply),
    )
    return reply


async def update_reply(
    session: AsyncSession, principal: Principal, reply_id: uuid.UUID, wanted: dict[str, Any], now: datetime
) -> SavedReply:
    """Change the fields in ``wanted`` (InvalidTemplate, ShortcutTaken, SavedReplyNotFound)."""
    reply = await repo.get_reply(session, principal.workspace_id, reply_id, for_update=True)
    if reply is None:
        raise SavedReplyNotFound(f"saved reply {reply_id} not found")
    if wanted.get("body") is not None:
        reply_templates.parse(wanted["body"])
    before = _json(reply)
    for name in FIELDS:
        if wanted.get(name) is not None:
            setattr(reply, name, wanted[name])
    after = _json(reply)
    if after == before:
        return reply
    reply.updated_at = now
    if not await repo.save_reply(session, reply):
        raise _taken(after["shortcut"])
    changed = [name for name in FIELDS if before[name] != after[name]]
    await audit(
        session,
        principal,
        action="saved_reply.update",
        target_type="saved_reply",
        target_id=reply.id,
        now=now,
        before={name: before[name] for name in changed},
        after={name: after[name] for name in changed},
    )
    return reply


async def delete_reply(
    session: AsyncSession, principal: Principal, reply_id: uuid.UUID, now: datetime
) -> None:
    """Delete a saved reply (SavedReplyNotFound)."""
    reply = await repo.get_reply(session, principal.workspace_id, reply_id, for_update=True)
    if reply is None:
        raise SavedReplyNotFound(f"saved reply {reply_id} not found")
    before = _json(reply)
    await repo.delete_reply(session, principal.workspace_id, reply_id)
    await audit(
        session,
        principal,
        action="saved_reply.delete",
        target_type="saved_reply",
        target_id=reply_id,
        now=now,
        before=before,
    )


def _first_name(name: str | None) -> str | None:
    words = name.split() if name else []
    return words[0] if words else None


async def preview(
    session: AsyncSession, principal: Principal, body: str, conversation_id: uuid.UUID | None
) -> tuple[Rendered, uuid.UUID | None]:
    """Render a reply text for a conversation as the caller would send it; returns the rendering and
    the conversation's contact (InvalidTemplate, ConversationNotFound)."""
    template = reply_templates.parse(body)
    values: dict[str, str | None] = {
        "agent.name": principal.user_name,
        "agent.first_name": _first_name(principal.user_name),
        "workspace.name": await repo.workspace_name(session, principal.workspace_id),
    }
    contact_id = None
    if conversation_id is not None:
        context = await repo.conversation_context(session, principal.workspace_id, conversation_id)
        if context is None:
            raise ConversationNotFound(f"conversation {conversation_id} not found")
        contact_name = context.contact_name or context.author_name
        values |= {
            "contact.name": contact_name,
            "contact.first_name": _first_name(contact_name),
            "conversation.id": str(context.conversation_id),
            "conversation.title": context.title,
            "channel.name": context.channel_name,
        }
        contact_id = context.contact_id
    return template.render(values), contact_id
