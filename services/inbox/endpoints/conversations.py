"""``/v1/conversations`` and ``/v1/messages``: read the conversation store."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Depends, Query, Response
from pydantic import BaseModel, Field
from sqlalchemy.exc import SQLAlchemyError

from services.inbox.dependencies import PrincipalDep, StateDep
from services.inbox.endpoints.shapes import conversation_out, conversations_fields, json_page, message_out
from services.inbox.errors import InvalidCursor, NoUser
from services.inbox.outbox import publish_outbox
from services.inbox.repository import workflow as workflow_repo
from services.inbox.repository.reads import ConversationFilter
from services.inbox.repository.search import terms as search_terms
from services.inbox.schemas import (
    ConversationOut,
    MessageHistoryOut,
    MessageOut,
    Page,
    RevisionOut,
)
from services.inbox.schemas.workflow import CountsOut
from services.inbox.service import conversations as service
from services.inbox.service import outbound
from services.inbox.service.access import Principal, Role
from services.inbox.state import InboxState
from shared.bus.client import BusUnavailable
from shared.errors import BadRequest, ValidationFailed
from shared.events import utcnow
from shared.events.inbound import Timestamp
from shared.http.pagination import CursorError, decode_cursor, encode_cursor
from shared.http.query import QueryModel
from shared.logging import get_logger
from shared.sentiment import SENTIMENT_LABELS

log = get_logger(__name__)

router = APIRouter(prefix="/v1", tags=["conversations"])

Limit = Annotated[int, Query(ge=1, le=200, description="Page size (1-200).")]
SENTIMENT_DESCRIPTION = (
    "negative, neutral or positive (the conversation's sentiment); repeat it or separate labels with "
    "commas for several."
)
SentimentQuery = Annotated[list[str] | None, Query(description=SENTIMENT_DESCRIPTION)]


def sentiment_labels(raw: str | Sequence[str] | None) -> tuple[str, ...] | None:
    """The labels a ``sentiment`` filter names, repeated or comma-separated; a 400 for any other word."""
    if raw is None:
        return None
    values = [raw] if isinstance(raw, str) else list(raw)
    wanted = {word.strip().lower() for value in values for word in value.split(",") if word.strip()}
    unknown = sorted(wanted - set(SENTIMENT_LABELS))
    if unknown or not wanted:
        problem = f"not a sentiment: {', '.join(unknown)}" if unknown else "names no sentiment"
        raise ValidationFailed(
            f"sentiment takes {', '.join(SENTIMENT_LABELS)} (repeated or comma-separated): {problem}.",
            errors=[{"field": "query.sentiment", "message": problem, "type": "enum"}],
        )
    return tuple(label for label in SENTIMENT_LABELS if label in wanted)


def cursor_position(cursor: str | None, *types: type) -> tuple[Any, ...] | None:
    """A page cursor this endpoint issued, decoded; a 400 ``invalid_cursor`` otherwise."""
    if cursor is None:
        return None
    try:
        return decode_cursor(cursor, *types)
    except CursorError as exc:
        raise InvalidCursor(f"The cursor is not valid here: {exc}.") from exc


def conversation_filter(
    principal: Principal,
    *,
    status: str | None = None,
    channel_id: UUID | None = None,
    assignee_id: UUID | str | None = None,
    team_id: UUID | None = None,
    label_id: UUID | None = None,
    priority: str | None = None,
    unread: bool | None = None,
    q: str | None = None,
    since: datetime | None = None,
    until: datetime | None = None,
    updated_since: datetime | None = None,
    sentiment: str | Sequence[str] | None = None,
) -> ConversationFilter:
    """A list filter as the query string (or a bulk action's filter) gives it; ``me`` is the caller."""
    if (assignee_id == "me" or unread is not None) and principal.user_id is None:
        raise NoUser("assignee_id=me and unread need a user's token: an integration token has no user.")
    assignee = principal.user_id if assignee_id == "me" else assignee_id
    if unread is False:
        raise BadRequest("unread=false is not a filter; leave unread out to list read and unread.")
    if q is not None and not search_terms(q):
        raise BadRequest("q has no words to search for.", code="invalid_query")
    return ConversationFilter(
        status=status,
        channel_id=channel_id,
        updated_since=updated_since,
        assignee_id=assignee if isinstance(assignee, UUID) else None,
        unassigned=assignee_id == "none",
        team_id=team_id,
        label_id=label_id,
        priority=priority,
        unread_by=principal.user_id if unread else None,
        since=since,
        until=until,
        q=q,
        sentiment=sentiment_labels(sentiment),
    )


class ListQuery(BaseModel):
    """The conversation list's query string (:class:`shared.http.query.QueryModel`)."""

    status: Literal["open", "pending", "snoozed", "resolved"] | None = None
    channel_id: UUID | None = None
    assignee_id: UUID | Literal["me", "none"] | None = Field(
        None, description="A user id, `me`, or `none` (unassigned)."
    )
    team_id: UUID | None = None
    label_id: UUID | None = None
    priority: Literal["low", "normal", "high", "urgent"] | None = None
    unread: bool | None = Field(None, description="true: only conversations the caller has not read.")
    q: str | None = Field(
        None, min_length=1, max_length=200, description="Full text over messages and contact names."
    )
    since: Timestamp | None = Field(None, description="Last activity at or after (ISO 8601).")
    until: Timestamp | None = Field(None, description="Last activity before (ISO 8601).")
    updated_since: Timestamp | None = Field(None, description="ISO 8601 with a zone.")
    sentiment: list[str] | None = Field(None, description=SENTIMENT_DESCRIPTION)
    cursor: str | None = None
    limit: int = Field(50, ge=1, le=200, description="Page size (1-200).")


_LIST_QUERY = QueryModel(ListQuery)


@router.get("/conversations", response_model=Page[ConversationOut], openapi_extra=_LIST_QUERY.openapi)
async def list_conversations(
    principal: PrincipalDep, state: StateDep, query: Annotated[ListQuery, Depends(_LIST_QUERY)]
) -> Response:
    """Conversations, most recent activity first, with keyset pagination; every filter combines.

    The order is stable: a conversation that gets new activity while you page moves to the top and
    is not shown twice; follow ``updated_since`` (or the live stream) to catch such changes.
    """
    limit, before = query.limit, cursor_position(query.cursor, datetime, UUID)
    where = conversation_filter(principal, **query.model_dump(exclude={"cursor", "limit"}))
    async with state.read_connection() as connection:
        rows = await service.list_conversations(
            connection, principal.workspace_id, where, before, limit + 1, principal.user_id
        )
    page = rows.first(limit)
    next_cursor = encode_cursor(*page.position(-1)) if page else query.cursor
    return json_page(conversations_fields(page), has_more=len(rows) > limit, next_cursor=next_cursor)


@router.get("/conversations/counts")
async def conversation_counts(
    principal: PrincipalDep, state: StateDep, sentiment: SentimentQuery = None
) -> CountsOut:
    """Counts for an inbox's sidebar: conversations by status; open or pending ones unread by you,
    assigned to you, and unassigned. With ``sentiment``, every count is of those conversations only."""
    labels = sentiment_labels(sentiment)
    async with state.reading() as session:
        found = await workflow_repo.counts(session, principal.workspace_id, principal.user_id, labels)
    return CountsOut(
        by_status={k: found[k] for k in ("open", "pending", "snoozed", "resolved")},
        unread=found["unread"],
        assigned_to_me=found["assigned_to_me"],
        unassigned=found["unassigned"],
    )


@router.get("/conversations/{conversation_id}")
async def get_conversation(
    conversation_id: UUID, principal: PrincipalDep, state: StateDep, response: Response
) -> ConversationOut:
    """One conversation; its ``ETag`` is its version, to send back in ``If-Match`` when changing it."""
    async with state.reading() as session:
        conversation = await service.get_conversation(
            session, principal.workspace_id, conversation_id, principal.user_id
        )
    response.headers["ETag"] = f'"{conversation.version}"'
    return conversation_out(conversation)


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
    after = cursor_position(cursor, datetime, int)
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
        data=[message_out(r) for r in page], has_more=len(rows) > limit, next_cursor=next_cursor
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
    return message_out(row)


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
