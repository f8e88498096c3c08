"""Outbound replies, moderation requests, the outbox, idempotency keys and the audit log."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import and_, delete, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.inbox import ids
from services.inbox.models import (
    AuditEntry,
    Conversation,
    IdempotencyKey,
    Message,
    MessageRevision,
    OutboxEntry,
)
from services.inbox.repository import list_columns
from shared.db import insert_for
from shared.errors import TransientError


async def add_message(session: AsyncSession, message: Message) -> None:
    """Store a new outbound message (a reply or a note)."""
    session.add(message)
    await session.flush()
    if message.direction != "note":  # notes are never a list's preview
        await list_columns.refresh_previews(session, [message.conversation_id])


async def add_outbox(session: AsyncSession, entry: OutboxEntry) -> None:
    """Queue an event to publish once the transaction commits."""
    session.add(entry)
    await session.flush()


async def unpublished(
    session: AsyncSession, *, ids: list[str] | None = None, before: datetime | None = None, limit: int = 500
) -> list[OutboxEntry]:
    """Outbox entries not yet published: these ids, or those created before ``before``."""
    query = select(OutboxEntry).where(OutboxEntry.published_at.is_(None))
    if ids is not None:
        query = query.where(OutboxEntry.id.in_(ids))
    if before is not None:
        query = query.where(OutboxEntry.created_at < before)
    return list((await session.scalars(query.order_by(OutboxEntry.created_at).limit(limit))).all())


async def mark_published(session: AsyncSession, ids: list[str], at: datetime) -> None:
    """Record that these entries reached the bus."""
    await session.execute(
        update(OutboxEntry)
        .where(OutboxEntry.id.in_(ids), OutboxEntry.published_at.is_(None))
        .values(published_at=at)
    )


async def idempotent_answer(session: AsyncSession, workspace_id: UUID, key: str) -> IdempotencyKey | None:
    """The stored answer to an earlier request with this key."""
    return await session.get(IdempotencyKey, (workspace_id, key))


async def remember_answer(
    session: AsyncSession,
    workspace_id: UUID,
    key: str,
    request_hash: str,
    status: int,
    response: dict[str, Any],
    now: datetime,
) -> bool:
    """Store the answer for a key; False if another request stored one first (it wins)."""
    table = IdempotencyKey.__table__
    statement = insert_for(session.get_bind().dialect.name, table).on_conflict_do_nothing(
        index_elements=[table.c.workspace_id, table.c.key]
    )
    result = await session.execute(
        statement,
        [
            {
                "workspace_id": workspace_id,
                "key": key,
                "request_hash": request_hash,
                "status_code": status,
                "response": response,
                "created_at": now,
            }
        ],
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


async def add_audit(session: AsyncSession, entry: AuditEntry) -> None:
    """Record an action."""
    session.add(entry)
    await session.flush()


async def mark_sent(
    session: AsyncSession, message_id: UUID, platform_ids: list[str], sent_at: datetime, now: datetime
) -> None:
    """A reply reached the platform: it takes the platform's id (unless an echo of it already holds
    that id, as a business chat's copy of a bot's message may) and stops being pending. Without ids
    (Reddit created it but did not say as what) it keeps its own.

    A private reply (Reddit's composed message) keeps its own id too: on the platform it is the first
    message of a new private thread, whose copy the connector stores as a conversation of its own
    with the recipient's answers. Taking the id here would leave that conversation without its first
    message, or not, depending on which of the two arrived first."""
    current = await session.get(Message, message_id)
    if current is None:
        return
    private = bool(current.meta.get("private_to"))
    first = platform_ids[0] if platform_ids and not private else current.external_id
    twin = await session.scalar(
        select(Message).where(
            Message.channel_id == current.channel_id, Message.external_id == first, Message.id != message_id
        )
    )
    merged = False
    if twin is not None and twin.delivery_status is None and twin.conversation_id == current.conversation_id:
        merged = True
        await list_columns.lock(session, [current.conversation_id])
        # The platform's echo of this very reply got stored first (Reddit lists the account's own
        # comments): it is the same message, so the reply takes its place rather than doubling it.
        await session.execute(delete(MessageRevision).where(MessageRevision.message_id == twin.id))
        await session.execute(delete(Message).where(Message.id == twin.id))
        twin = None
    taken_now = twin is not None
    values: dict[str, Any] = {
        "delivery_status": "sent",
        "delivery_error": None,
        "sent_at": sent_at,
        "text_version_at": sent_at,
        "meta": {**current.meta, "platform_message_ids": platform_ids},
        "updated_at": now,
    }
    if not taken_now:
        values["external_id"] = first
    try:
        await session.execute(update(Message).where(Message.id == message_id).values(**values))
    except IntegrityError as exc:
        # The echo was being stored by the inbound consumer while this ran (it was not there to
        # merge a moment ago): once it is committed, a retry finds it and takes its place.
        raise TransientError(f"the platform's copy of reply {message_id} was stored meanwhile") from exc
    if merged:  # the echo it replaced may have been the list's preview
        await list_columns.refresh_previews(session, [current.conversation_id])


async def private_thread(
    session: AsyncSession, reply: Message, thread_external_id: str, now: datetime
) -> Conversation:
    """The conversation of the private thread a private reply started, locked: the one the connector
    stored from the thread's messages, or, when none has arrived yet, a new empty one under the same
    key and id, which the thread's messages then join (its activity time a placeholder until they
    do)."""
    key = (Conversation.channel_id == reply.channel_id, Conversation.external_id == thread_external_id)
    table = Conversation.__table__
    await session.execute(
        insert_for(session.get_bind().dialect.name, table)
        .values(
            id=ids.conversation_id(reply.channel_id, thread_external_id),
            workspace_id=reply.workspace_id,
            channel_id=reply.channel_id,
            external_id=thread_external_id,
            status="open",
            status_changed_at=now,  # as the ingest's new conversations
            last_activity_at=reply.sent_at or now,
            activity_confirmed=False,
            version=1,
            created_at=now,
            updated_at=now,
        )
        # Any conflict: the ingest may be inserting the same row (same key, same id) right now.
        .on_conflict_do_nothing()
    )
    thread = await session.scalar(select(Conversation).where(*key).with_for_update())
    assert thread is not None  # inserted above, or there already
    return thread


async def mark_failed(
    session: AsyncSession, message_id: UUID, status: str, reason: str, now: datetime
) -> None:
    """A reply was not sent (``failed``), or may not have been (``unknown``)."""
    await session.execute(
        update(Message)
        .where(Message.id == message_id, Message.delivery_status.in_(("pending", "unknown", "failed")))
        .values(delivery_status=status, delivery_error=reason, updated_at=now)
    )


async def complete_audit(
    session: AsyncSession, entry_id: UUID, *, ok: bool, reason: str | None, now: datetime
) -> AuditEntry | None:
    """Record what the platform said to an action."""
    entry = await session.get(AuditEntry, entry_id)
    if entry is None:
        return None
    entry.status = "applied" if ok else "failed"
    entry.detail = {**entry.detail, **({"reason": reason} if reason else {})}
    entry.updated_at = now
    return entry


async def mark_deleted_by_agent(session: AsyncSession, message_id: UUID, at: datetime, now: datetime) -> None:
    """The platform deleted a message an agent asked to delete."""
    conversation_id = await session.scalar(select(Message.conversation_id).where(Message.id == message_id))
    if conversation_id is None:
        return
    await list_columns.lock(session, [conversation_id])
    await session.execute(
        update(Message)
        .where(Message.id == message_id, Message.deleted_at.is_(None))
        .values(deleted_at=at, updated_at=now)
    )
    await list_columns.refresh_previews(session, [conversation_id])


async def messages_by_id(session: AsyncSession, workspace_id: UUID, ids: list[UUID]) -> list[Message]:
    """Messages of the workspace, locked for update where the database can."""
    if not ids:
        return []
    query = select(Message).where(Message.workspace_id == workspace_id, Message.id.in_(ids))
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update()
    return list((await session.scalars(query)).all())


async def note_moderation(
    session: AsyncSession, message_id: UUID, state: dict[str, Any], now: datetime
) -> None:
    """Keep a moderator action's result on the message (``meta.moderation``)."""
    current = await session.get(Message, message_id)
    if current is None:
        return
    moderation = {**(current.meta.get("moderation") or {}), **state}
    await session.execute(
        update(Message)
        .where(Message.id == message_id)
        .values(meta={**current.meta, "moderation": moderation}, updated_at=now)
    )


@dataclass(frozen=True)
class AuditFilter:
    """What the audit log narrows by; fields left None do not narrow."""

    action: str | None = None
    target_type: str | None = None
    target_id: str | None = None
    actor_user_id: UUID | None = None


async def list_audit(
    session: AsyncSession,
    workspace_id: UUID,
    before: tuple[datetime, UUID] | None,
    limit: int,
    where: AuditFilter | None = None,
) -> list[AuditEntry]:
    """The workspace's audit entries, newest first."""
    query = select(AuditEntry).where(AuditEntry.workspace_id == workspace_id)
    where = where or AuditFilter()
    for column, value in (
        (AuditEntry.action, where.action),
        (AuditEntry.target_type, where.target_type),
        (AuditEntry.target_id, where.target_id),
        (AuditEntry.actor_user_id, where.actor_user_id),
    ):
        if value is not None:
            query = query.where(column == value)
    if before is not None:
        at, entry_id = before
        query = query.where(
            (AuditEntry.created_at < at) | and_(AuditEntry.created_at == at, AuditEntry.id < entry_id)
        )
    query = query.order_by(AuditEntry.created_at.desc(), AuditEntry.id.desc()).limit(limit)
    return list((await session.scalars(query)).all())
