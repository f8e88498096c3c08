"""Replies and moderation: ``POST`` a reply, delete a message, ban or unban an author; the audit log."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Header, Query, status
from fastapi.responses import JSONResponse

from services.inbox.dependencies import AdminDep, AgentDep, StateDep
from services.inbox.endpoints.shapes import message_out
from services.inbox.errors import InvalidCursor, MessageNotFound
from services.inbox.models import AuditEntry
from services.inbox.outbox import publish_outbox
from services.inbox.repository import outbound as outbound_repo
from services.inbox.repository import reads
from services.inbox.repository.reads import MessageRow
from services.inbox.schemas import (
    AuditEntryOut,
    BanCreate,
    MessageOut,
    ModerationCreate,
    Page,
    ReplyCreate,
)
from services.inbox.service import claims, outbound
from services.inbox.state import InboxState
from shared.bus.client import BusUnavailable
from shared.errors import BadRequest, Conflict, NotFound
from shared.events import utcnow
from shared.events.commands import ModerationAction
from shared.http.pagination import CursorError, decode_cursor, encode_cursor
from shared.logging import get_logger

log = get_logger(__name__)

router = APIRouter(prefix="/v1", tags=["replies and moderation"])

IdempotencyKey = Annotated[
    str | None,
    Header(
        alias="Idempotency-Key",
        min_length=1,
        max_length=255,
        description="Send the same key again to get the first answer instead of a second reply.",
    ),
]


async def _flush(state: InboxState, entry_id: str) -> None:
    """Publish the command now; if NATS is away the worker's sweep publishes it later."""
    try:
        await publish_outbox(state.sessions, state.read_sessions, state.bus, ids=[entry_id])
    except BusUnavailable as exc:
        log.warning("inbox.outbox.deferred", entry_id=entry_id, error=str(exc))


def _audit(entry: AuditEntry) -> AuditEntryOut:
    return AuditEntryOut.model_validate(entry, from_attributes=True)


@router.post(
    "/conversations/{conversation_id}/messages",
    status_code=status.HTTP_202_ACCEPTED,
    responses={
        409: {
            "description": "The channel cannot carry replies, the Idempotency-Key was reused, or another "
            "agent has claimed the conversation (send force to override)"
        }
    },
)
async def send_reply(
    conversation_id: UUID,
    body: ReplyCreate,
    principal: AgentDep,
    state: StateDep,
    idempotency_key: IdempotencyKey = None,
) -> Any:
    """Reply in a conversation. The message is ``pending`` until the platform accepts it (``sent``)
    or refuses it (``failed``, with the reason); follow it on the conversation's messages."""
    fingerprint = outbound.request_hash("reply", str(conversation_id), body.model_dump(mode="json"))
    async with state.transaction() as session:
        if idempotency_key is not None:
            earlier = await outbound.replay(session, principal.workspace_id, idempotency_key, fingerprint)
            if earlier is not None:
                return JSONResponse(earlier.body, status_code=earlier.status_code)
        now = utcnow()
        await claims.before_reply(session, principal, conversation_id, force=body.force, now=now)
        message, entry_id = await outbound.send_reply(
            session,
            workspace_id=principal.workspace_id,
            token_id=principal.token_id,
            user_id=principal.user_id,
            conversation_id=conversation_id,
            text=body.text,
            reply_to_message_id=body.reply_to_message_id,
            now=now,
            private=body.private,
        )
        shaped: MessageOut = message_out(MessageRow(message, None, body.reply_to_message_id, {}))
        if idempotency_key is not None:
            await outbound.remember(
                session,
                principal.workspace_id,
                idempotency_key,
                fingerprint,
                202,
                shaped.model_dump(mode="json"),
                now,
            )
    await _flush(state, entry_id)
    log.info("inbox.reply.queued", message_id=str(message.id), conversation_id=str(conversation_id))
    return shaped


async def _moderate(
    state: InboxState,
    workspace_id: UUID,
    token_id: UUID | None,
    action: ModerationAction,
    conversation_id: UUID,
    **target: Any,
) -> AuditEntryOut:
    async with state.transaction() as session:
        entry, entry_id = await outbound.request_moderation(
            session,
            workspace_id=workspace_id,
            token_id=token_id,
            action=action,
            conversation_id=conversation_id,
            now=utcnow(),
            **target,
        )
    await _flush(state, entry_id)
    return _audit(entry)


@router.post("/messages/{message_id}/delete", status_code=status.HTTP_202_ACCEPTED)
async def delete_message(message_id: UUID, principal: AgentDep, state: StateDep) -> AuditEntryOut:
    """Delete a message on the platform (Telegram: the bot needs admin rights in groups, and the
    message must be under 48 hours old). The outcome lands in the audit log and on the message."""
    async with state.reading() as session:
        message = await reads.get_message(session, principal.workspace_id, message_id)
    if message is None:
        raise MessageNotFound(f"message {message_id} not found")
    if message.deleted_at is not None:
        raise Conflict("The message is already deleted.", code="already_deleted")
    if message.external_id.startswith("piazza:"):
        raise BadRequest(
            outbound.in_private_thread(message, "delete")
            or "That reply has not reached the platform; there is nothing to delete there yet."
        )
    return await _moderate(
        state,
        principal.workspace_id,
        principal.token_id,
        "delete_message",
        message.conversation_id,
        message=message,
        target_label=str(message.id),
    )


@router.post("/messages/{message_id}/moderation", status_code=status.HTTP_202_ACCEPTED)
async def moderate_message(
    message_id: UUID, body: ModerationCreate, principal: AgentDep, state: StateDep
) -> AuditEntryOut:
    """Reddit moderator actions on a comment or post: remove (as spam or not), approve, lock or
    unlock. The account must moderate the subreddit; the outcome lands in the audit log and on the
    message's ``meta.moderation``."""
    async with state.reading() as session:
        message = await reads.get_message(session, principal.workspace_id, message_id)
    if message is None:
        raise MessageNotFound(f"message {message_id} not found")
    if not message.external_id.startswith(("t1_", "t3_")):
        raise BadRequest(
            "Moderator actions apply to Reddit comments and posts.", code="moderation_not_supported"
        )
    action: ModerationAction = "remove_spam" if body.action == "remove" and body.spam else body.action
    return await _moderate(
        state,
        principal.workspace_id,
        principal.token_id,
        action,
        message.conversation_id,
        message=message,
        target_label=str(message.id),
    )


async def _ban_target(state: InboxState, workspace_id: UUID, conversation_id: UUID, identity_id: UUID) -> str:
    async with state.reading() as session:
        identity = await reads.get_identity(session, workspace_id, identity_id)
        found = await reads.get_conversation(session, workspace_id, conversation_id)
    if identity is None:
        raise NotFound(f"identity {identity_id} not found", code="identity_not_found")
    if found is not None and not _is_group(found.external_id):
        raise BadRequest(
            "Bans apply to groups, supergroups and channels, not to private chats.", code="not_a_group"
        )
    if identity.namespace != "telegram":
        raise BadRequest("This identity is not a Telegram user.", code="not_a_telegram_user")
    return identity.external_id


def _is_group(thread_external_id: str) -> bool:
    # Telegram: users have positive ids; groups, supergroups and channels negative ones.
    return not thread_external_id.startswith("b:") and thread_external_id.split(":", 1)[0].startswith("-")


@router.post("/conversations/{conversation_id}/bans", status_code=status.HTTP_202_ACCEPTED)
async def ban(conversation_id: UUID, body: BanCreate, principal: AgentDep, state: StateDep) -> AuditEntryOut:
    """Ban an author from the conversation's group (the bot must be an admin there)."""
    user = await _ban_target(state, principal.workspace_id, conversation_id, body.identity_id)
    return await _moderate(
        state, principal.workspace_id, principal.token_id, "ban", conversation_id,
        user_external_id=user, target_label=str(body.identity_id),
    )  # fmt: skip


@router.delete("/conversations/{conversation_id}/bans/{identity_id}", status_code=status.HTTP_202_ACCEPTED)
async def unban(
    conversation_id: UUID, identity_id: UUID, principal: AgentDep, state: StateDep
) -> AuditEntryOut:
    """Lift a ban: the author may join the group again."""
    user = await _ban_target(state, principal.workspace_id, conversation_id, identity_id)
    return await _moderate(
        state, principal.workspace_id, principal.token_id, "unban", conversation_id,
        user_external_id=user, target_label=str(identity_id),
    )  # fmt: skip


@router.get("/audit")
async def audit_log(
    principal: AdminDep,
    state: StateDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    action: Annotated[str | None, Query(max_length=64, description="e.g. conversation.update")] = None,
    target_type: Annotated[str | None, Query(max_length=32, description="e.g. conversation")] = None,
    target_id: Annotated[str | None, Query(max_length=512)] = None,
    actor_user_id: UUID | None = None,
) -> Page[AuditEntryOut]:
    """What agents and admins did (who, what, when, the state before and after), newest first, with
    the platform's answer for actions that reach one. Admins only."""
    try:
        before = decode_cursor(cursor, datetime, UUID) if cursor else None
    except CursorError as exc:
        raise InvalidCursor(str(exc)) from exc
    where = outbound_repo.AuditFilter(
        action=action, target_type=target_type, target_id=target_id, actor_user_id=actor_user_id
    )
    async with state.reading() as session:
        entries = await outbound_repo.list_audit(session, principal.workspace_id, before, limit + 1, where)
    page = entries[:limit]
    return Page[AuditEntryOut](
        data=[_audit(e) for e in page],
        has_more=len(entries) > limit,
        next_cursor=encode_cursor(page[-1].created_at, page[-1].id) if page else cursor,
    )
