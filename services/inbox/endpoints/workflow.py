"""The conversation workflow: change status, assignment, team, priority and labels (one conversation
or many), write notes, claim, and keep per-agent read state."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Header, Query, Response, status

from services.inbox.dependencies import AgentDep, PrincipalDep, StateDep
from services.inbox.endpoints.conversations import conversation_filter, cursor_position
from services.inbox.endpoints.shapes import conversation_out, message_out
from services.inbox.outbox import publish_outbox
from services.inbox.repository import reads
from services.inbox.repository.reads import MessageRow
from services.inbox.schemas import ConversationOut, MessageOut
from services.inbox.schemas.workflow import (
    BulkRequest,
    BulkResult,
    ClaimCreate,
    ConversationUpdate,
    NoteCreate,
    ReadCreate,
)
from services.inbox.service import claims, read_state, workflow
from services.inbox.service import conversations as reading
from services.inbox.service.access import Principal
from services.inbox.state import InboxState
from shared.errors import BadRequest
from shared.events import utcnow
from shared.http.pagination import encode_cursor
from shared.logging import get_logger

log = get_logger(__name__)

router = APIRouter(prefix="/v1/conversations", tags=["workflow"])

IfMatch = Annotated[
    str | None,
    Header(
        alias="If-Match",
        description='The version you saw (its ETag, e.g. "3"): the write is refused with 412 if it changed.',
    ),
]


_ETAG = re.compile(r'"?([0-9]{1,18})"?')


def expected_version(if_match: str | None) -> int | None:
    """The version an ``If-Match`` header names (``"3"``, or ``3``); ``*`` names none. A weak tag
    (``W/"3"``) never matches: ``If-Match`` compares strongly (RFC 9110), so it is refused with 412."""
    if if_match is None or if_match.strip() == "*":
        return None
    value = if_match.strip()
    if value.startswith("W/"):
        return -1
    found = _ETAG.fullmatch(value)
    if found is None:
        raise BadRequest(f"If-Match must be a conversation's ETag such as '\"3\"', not {if_match[:40]!r}.")
    return int(found.group(1))


async def publish(state: InboxState, ids: list[str]) -> None:
    """Publish events queued with a committed change; if NATS is away the worker's sweep does it later."""
    if not ids:
        return
    try:
        await publish_outbox(state.sessions, state.read_sessions, state.bus, ids=ids)
    except Exception as exc:  # the change is committed: the worker's sweep publishes what is left
        log.warning("inbox.outbox.deferred", count=len(ids), error=f"{type(exc).__name__}: {exc}")


async def _shaped(
    state: InboxState, principal: Principal, conversation_id: UUID, response: Response
) -> ConversationOut:
    async with state.reading() as session:
        row = await reading.get_conversation(
            session, principal.workspace_id, conversation_id, principal.user_id
        )
    response.headers["ETag"] = f'"{row.version}"'
    return conversation_out(row)


@router.patch(
    "/{conversation_id}",
    responses={412: {"description": "If-Match named a version that is no longer current"}},
)
async def update_conversation(
    conversation_id: UUID,
    body: ConversationUpdate,
    principal: AgentDep,
    state: StateDep,
    response: Response,
    if_match: IfMatch = None,
) -> ConversationOut:
    """Change status (open, pending, snoozed until a time, resolved), assignee, team, priority or the
    set of labels. Fields left out stay as they are; ``null`` clears assignee, team or priority."""
    wanted = body.model_dump(exclude_unset=True)
    async with state.transaction() as session:
        _, changed = await workflow.update_conversation(
            session, principal, conversation_id, wanted, expected_version(if_match), utcnow()
        )
    await publish(state, changed.outbox_ids)
    return await _shaped(state, principal, conversation_id, response)


@router.post("/bulk")
async def bulk_update(body: BulkRequest, principal: AgentDep, state: StateDep) -> BulkResult:
    """Apply the same change to a list of conversations, or to those a filter selects (at most ``limit``
    at a time: run it again while ``truncated`` is true). Each conversation changed is audited and
    announced on its own."""
    wanted = body.changes.model_dump(exclude_unset=True)
    if not wanted:
        raise BadRequest("set names no change.")
    truncated, next_cursor = False, None
    async with state.transaction() as session:
        if body.ids is not None:
            ids = list(dict.fromkeys(body.ids))
        else:
            assert body.filter is not None
            where = conversation_filter(principal, **body.filter.model_dump())
            before = cursor_position(body.cursor, datetime, UUID)
            found = await reads.filtered_ids(session, principal.workspace_id, where, body.limit + 1, before)
            truncated, found = len(found) > body.limit, found[: body.limit]
            ids = [conversation_id for conversation_id, _ in found]
            # The position is taken before the change: a change that moves conversations in the order
            # cannot make the next call skip or repeat one.
            next_cursor = encode_cursor(found[-1][1], found[-1][0]) if found else body.cursor
        updated, missing, changed = await workflow.bulk_update(session, principal, ids, wanted, utcnow())
    await publish(state, changed.outbox_ids)
    return BulkResult(
        matched=len(ids) - len(missing),
        updated=updated,
        truncated=truncated,
        not_found=missing,
        next_cursor=next_cursor,
    )


@router.post("/{conversation_id}/notes", status_code=status.HTTP_201_CREATED)
async def add_note(
    conversation_id: UUID, body: NoteCreate, principal: AgentDep, state: StateDep
) -> MessageOut:
    """A private note for the team: listed with the conversation's messages (direction ``note``), never
    sent to the platform."""
    async with state.transaction() as session:
        note, entry = await workflow.add_note(session, principal, conversation_id, body.text, utcnow())
    await publish(state, [entry])
    return message_out(MessageRow(note, None, None, {}))


@router.post("/{conversation_id}/claim", responses={409: {"description": "Another agent holds the claim"}})
async def claim(
    conversation_id: UUID, body: ClaimCreate, principal: AgentDep, state: StateDep, response: Response
) -> ConversationOut:
    """Claim the conversation for ``ttl_seconds`` (claim again to renew): while the claim lasts, replies
    by other agents are refused with 409 unless they send ``force``."""
    async with state.transaction() as session:
        _, entries = await claims.claim(
            session,
            principal,
            conversation_id,
            timedelta(seconds=body.ttl_seconds),
            force=body.force,
            now=utcnow(),
        )
    await publish(state, entries)
    return await _shaped(state, principal, conversation_id, response)


@router.delete(
    "/{conversation_id}/claim",
    status_code=status.HTTP_204_NO_CONTENT,
    responses={409: {"description": "Another agent holds the claim"}},
)
async def release(
    conversation_id: UUID,
    principal: AgentDep,
    state: StateDep,
    force: Annotated[bool, Query(description="Release another agent's claim.")] = False,
) -> None:
    """Give up your claim (another agent's only with ``force=true``)."""
    async with state.transaction() as session:
        entries = await claims.release(session, principal, conversation_id, force=force, now=utcnow())
    await publish(state, entries)


@router.post("/{conversation_id}/read", status_code=status.HTTP_204_NO_CONTENT)
async def mark_read(
    conversation_id: UUID, principal: PrincipalDep, state: StateDep, body: ReadCreate | None = None
) -> None:
    """Mark the conversation read for you, up to a message (by default the newest)."""
    async with state.transaction() as session:
        entries = await read_state.mark_read(
            session, principal, conversation_id, body.up_to_message_id if body else None, utcnow()
        )
    await publish(state, entries)


@router.post("/{conversation_id}/unread", status_code=status.HTTP_204_NO_CONTENT)
async def mark_unread(conversation_id: UUID, principal: PrincipalDep, state: StateDep) -> None:
    """Mark the conversation unread for you again."""
    async with state.transaction() as session:
        await read_state.mark_unread(session, principal, conversation_id)
