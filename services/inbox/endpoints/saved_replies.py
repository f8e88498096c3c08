"""``/v1/saved-replies``: the workspace's reusable answers, with placeholders filled in per conversation."""

from __future__ import annotations

from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response

from services.inbox.dependencies import AgentDep, PrincipalDep, StateDep
from services.inbox.errors import InvalidCursor
from services.inbox.models import SavedReply
from services.inbox.schemas import Page
from services.inbox.schemas.saved_replies import (
    DraftPreviewCreate,
    PlaceholderOut,
    PreviewCreate,
    PreviewOut,
    SavedReplyCreate,
    SavedReplyOut,
    SavedReplyUpdate,
)
from services.inbox.service import saved_replies as service
from services.inbox.service.access import Principal
from services.inbox.service.reply_templates import PLACEHOLDERS
from services.inbox.state import InboxState
from shared.events import utcnow
from shared.http.pagination import CursorError, decode_cursor, encode_cursor

router = APIRouter(prefix="/v1/saved-replies", tags=["saved replies"])

Limit = Annotated[int, Query(ge=1, le=200, description="Page size (1-200).")]


def _reply(reply: SavedReply) -> SavedReplyOut:
    return SavedReplyOut(
        id=reply.id,
        shortcut=reply.shortcut,
        title=reply.title,
        body=reply.body,
        placeholders=service.placeholders(reply),
        created_by_user_id=reply.created_by_id,
        created_at=reply.created_at,
        updated_at=reply.updated_at,
    )


@router.get("")
async def list_saved_replies(
    principal: PrincipalDep,
    state: StateDep,
    q: Annotated[
        str | None,
        Query(
            min_length=1, max_length=200, description="Case-insensitive text in the shortcut, title or body."
        ),
    ] = None,
    cursor: str | None = None,
    limit: Limit = 50,
) -> Page[SavedReplyOut]:
    """The workspace's saved replies in shortcut order, with keyset pagination."""
    after = None
    if cursor is not None:
        try:
            (after,) = decode_cursor(cursor, str)
        except CursorError as exc:
            raise InvalidCursor(f"The cursor is not valid here: {exc}.") from exc
    async with state.reading() as session:
        replies = await service.list_replies(session, principal.workspace_id, q, after, limit + 1)
    page = replies[:limit]
    return Page[SavedReplyOut](
        data=[_reply(r) for r in page],
        has_more=len(replies) > limit,
        next_cursor=encode_cursor(page[-1].shortcut) if page else cursor,
    )


@router.post("", status_code=201)
async def create_saved_reply(body: SavedReplyCreate, principal: AgentDep, state: StateDep) -> SavedReplyOut:
    """Save a reply. Its placeholders are checked: an unknown one or a template error is a 400
    ``invalid_template`` naming them; a shortcut already used is a 409 ``shortcut_taken``."""
    async with state.transaction() as session:
        reply = await service.create_reply(session, principal, body.shortcut, body.title, body.body, utcnow())
    return _reply(reply)


@router.get("/placeholders")
async def list_placeholders(principal: PrincipalDep) -> list[PlaceholderOut]:
    """Every placeholder a saved reply can use. Write ``{{ contact.first_name }}``, or with a
    fallback for when there is no value: ``{{ contact.first_name | default("there") }}``."""
    return [PlaceholderOut(name=name, description=text) for name, text in PLACEHOLDERS.items()]


async def _preview(
    state: InboxState, principal: Principal, text: str, conversation_id: UUID | None
) -> PreviewOut:
    async with state.reading() as session:
        rendered, contact_id = await service.preview(session, principal, text, conversation_id)
    return PreviewOut(
        text=rendered.text,
        used=rendered.used,
        missing=rendered.missing,
        defaulted=rendered.defaulted,
        conversation_id=conversation_id,
        contact_id=contact_id,
    )


@router.post("/preview")
async def preview_draft(body: DraftPreviewCreate, principal: PrincipalDep, state: StateDep) -> PreviewOut:
    """Render a reply text that is not saved, as the caller would send it in a conversation.

    The contact is the author of the conversation's first inbound message; the agent is the caller
    (a token that acts for no user has no agent name). Placeholders without a value are listed in
    ``missing`` (rendered as nothing) or ``defaulted`` (their fallback rendered).
    """
    return await _preview(state, principal, body.body, body.conversation_id)


@router.get("/{reply_id}")
async def get_saved_reply(reply_id: UUID, principal: PrincipalDep, state: StateDep) -> SavedReplyOut:
    """One saved reply."""
    async with state.reading() as session:
        reply = await service.get_reply(session, principal.workspace_id, reply_id)
    return _reply(reply)


@router.patch("/{reply_id}")
async def update_saved_reply(
    reply_id: UUID, body: SavedReplyUpdate, principal: AgentDep, state: StateDep
) -> SavedReplyOut:
    """Change a saved reply's shortcut, title or body; only the fields sent change (checked as on
    creation)."""
    wanted = body.model_dump(exclude_unset=True)
    async with state.transaction() as session:
        reply = await service.update_reply(session, principal, reply_id, wanted, utcnow())
    return _reply(reply)


@router.delete("/{reply_id}", status_code=204)
async def delete_saved_reply(reply_id: UUID, principal: AgentDep, state: StateDep) -> Response:
    """Delete a saved reply."""
    async with state.transaction() as session:
        await service.delete_reply(session, principal, reply_id, utcnow())
    return Response(status_code=204)


@router.post("/{reply_id}/preview")
async def preview_saved_reply(
    reply_id: UUID, body: PreviewCreate, principal: PrincipalDep, state: StateDep
) -> PreviewOut:
    """Render a saved reply as the caller would send it in a conversation (see ``POST
    /v1/saved-replies/preview`` for how placeholders are filled)."""
    async with state.reading() as session:
        reply = await service.get_reply(session, principal.workspace_id, reply_id)
    return await _preview(state, principal, reply.body, body.conversation_id)
