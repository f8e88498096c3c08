"""``/v1/conversations`` and ``/v1/messages``: read the conversation store."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from sqlalchemy.exc import SQLAlchemyError

from services.inbox.dependencies import PrincipalDep, StateDep
from services.inbox.errors import InvalidCursor
from services.inbox.outbox import publish_outbox
from services.inbox.repository.reads import ConversationFilter, ConversationRow, MessageRow
from services.inbox.schemas import (
    AuthorOut,
    ConversationOut,
    DeliveryOut,
    MessageHistoryOut,
    MessageOut,
    Page,
    ReplyToOut,
    RevisionOut,
)
from services.inbox.service import conversations as service
from services.inbox.service import outbound
from services.inbox.service.access import Role
from services.inbox.state import InboxState
from shared.bus.client import BusUnavailable
from shared.events import utcnow
from shared.events.inbound import Timestamp
from shared.http.pagination import CursorError, decode_cursor, encode_cursor
from shared.logging import get_logger

log = get_logger(__name__)

router = APIRouter(prefix="/v1", tags=["conversations"])

Limit = Annotated[int, Query(ge=1, le=200, description="Page size (1-200).")]


def _conversation(row: ConversationRow) -> ConversationOut:
    conversation = row.conversation
    return ConversationOut(
        id=conversation.id,
        channel_id=conversation.channel_id,
        external_id=conversation.external_id,
        title=conversation.title,
        status=conversation.status,
        last_activity_at=conversation.last_activity_at,
        last_message_preview=service.preview(row),
        version=conversation.version,
        created_at=conversation.created_at,
        updated_at=conversation.updated_at,
    )


def message_out(row: MessageRow) -> MessageOut:
    """The API shape of a message."""
    return _message(row)


def _message(row: MessageRow) -> MessageOut:
    message, author = row.message, row.author
    return MessageOut(
        id=message.id,
        conversation_id=message.conversation_id,
        channel_id=message.channel_id,
        external_id=message.external_id,
        direction=message.direction,
        author=AuthorOut(
            identity_id=author.id,
            contact_id=author.contact_id,
            namespace=author.namespace,
            external_id=author.external_id,
            handle=author.handle,
            name=author.display_name,
        )
        if author is not None
        else None,
        text=message.text,
        attachments=message.attachments,
        reply_to=ReplyToOut(external_id=message.reply_to_external_id, message_id=row.reply_to_id)
        if message.reply_to_external_id
        else None,
        reactions=row.reactions,
        delivery=DeliveryOut.model_validate(
            {"status": message.delivery_status, "error": message.delivery_error}
        )
        if message.delivery_status
        else None,
        meta=message.meta,
        sent_at=message.sent_at,
        edited_at=message.edited_at,
        deleted_at=message.deleted_at,
        created_at=message.created_at,
    )


def _decode(cursor: str | None, *types: type) -> tuple[Any, ...] | None:
    if cursor is None:
        return None
    try:
        return decode_cursor(cursor, *types)
    except CursorError as exc:
        raise InvalidCursor(f"The cursor is not valid here: {exc}.") from exc


@router.get("/conversations")
async def list_conversations(
    principal: PrincipalDep,
    state: StateDep,
    status: Literal["open", "pending", "snoozed", "resolved"] | None = None,
    channel_id: UUID | None = None,
    updated_since: Annotated[Timestamp | None, Query(description="ISO 8601 with a zone.")] = None,
    cursor: str | None = None,
    limit: Limit = 50,
) -> Page[ConversationOut]:
    """Conversations, most recent activity first, with keyset pagination.

    The order is stable: a conversation that gets new activity while you page moves to the top and
    is not shown twice; follow ``updated_since`` to catch such changes.
    """
    before = _decode(cursor, datetime, UUID)
    where = ConversationFilter(status=status, channel_id=channel_id, updated_since=updated_since)
    async with state.reading() as session:
        rows = await service.list_conversations(session, principal.workspace_id, where, before, limit + 1)
    page = rows[:limit]
    last = page[-1].conversation if page else None
    next_cursor = encode_cursor(last.last_activity_at, last.id) if last else cursor
    return Page[ConversationOut](
        data=[_conversation(c) for c in page], has_more=len(rows) > limit, next_cursor=next_cursor
    )


@router.get("/conversations/{conversation_id}")
async def get_conversation(
    conversation_id: UUID, principal: PrincipalDep, state: StateDep
) -> ConversationOut:
    """One conversation."""
    async with state.reading() as session:
        conversation = await service.get_conversation(session, principal.workspace_id, conversation_id)
    return _conversation(conversation)


@router.get("/conversations/{conversation_id}/messages")
async def list_messages(
    conversation_id: UUID,
    principal: PrincipalDep,
    state: StateDep,
    cursor: str | None = None,
    limit: Limit = 50,
    include_deleted: Annotated[
        bool, Query(description="Also list deleted messages (kept for audit).")
    ] = False,
) -> Page[MessageOut]:
    """A conversation's messages in chronological order, with keyset pagination."""
    after = _decode(cursor, datetime, int)
    async with state.reading() as session:
        rows = await service.list_messages(
            session,
            principal.workspace_id,
            conversation_id,
            after,
            limit + 1,
            include_deleted=include_deleted,
        )
    page = rows[:limit]
    if principal.role is not Role.VIEWER and any(r.message.meta.get("unread") for r in page):
        await _mark_read(state, principal.workspace_id, conversation_id, [r.message.id for r in page])
    last = page[-1].message if page else None
    next_cursor = encode_cursor(last.occurred_at, last.received_seq) if last else cursor
    return Page[MessageOut](
        data=[_message(r) for r in page], has_more=len(rows) > limit, next_cursor=next_cursor
    )


async def _mark_read(state: InboxState, workspace_id: UUID, conversation_id: UUID, ids: list[UUID]) -> None:
    """An agent read unread Reddit items: have them marked read there (best effort: a failure here
    never fails the read)."""
    try:
        async with state.transaction() as session:
            entry_id = await outbound.request_read(
                session,
                workspace_id=workspace_id,
                conversation_id=conversation_id,
                message_ids=ids,
                now=utcnow(),
            )
        if entry_id is not None:
            await publish_outbox(state.sessions, state.read_sessions, state.bus, ids=[entry_id])
    except (BusUnavailable, SQLAlchemyError) as exc:
        log.warning("inbox.mark_read.deferred", conversation_id=str(conversation_id), error=str(exc))


@router.get("/messages/{message_id}")
async def get_message(message_id: UUID, principal: PrincipalDep, state: StateDep) -> MessageOut:
    """One message; follow a reply's ``delivery`` here until it is ``sent`` or ``failed``."""
    async with state.reading() as session:
        row = await service.get_message(session, principal.workspace_id, message_id)
    return _message(row)


@router.get("/messages/{message_id}/history")
async def message_history(message_id: UUID, principal: PrincipalDep, state: StateDep) -> MessageHistoryOut:
    """Every version of a message's content: as created, then each edit."""
    async with state.reading() as session:
        message, edits = await service.message_history(session, principal.workspace_id, message_id)
    revisions: list[RevisionOut] = []
    if message.sent_at is not None:
        created_text = message.original_text if message.original_saved else message.text
        created_attachments = message.original_attachments if message.original_saved else message.attachments
        revisions.append(
            RevisionOut(
                kind="created", text=created_text, attachments=created_attachments or [], at=message.sent_at
            )
        )
    revisions += [
        RevisionOut(kind="edited", text=e.text, attachments=e.attachments, at=e.edited_at) for e in edits
    ]
    return MessageHistoryOut(message_id=message.id, revisions=revisions)
