"""Queries behind the conversation, message and contact endpoints; every one scoped to a workspace."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, Select, and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.inbox.models import (
    Contact,
    Conversation,
    ConversationLabel,
    Identity,
    Message,
    MessageReaction,
    MessageRevision,
)
from services.inbox.repository import search, workflow
from shared.db import one_of


@dataclass(frozen=True)
class ConversationFilter:
    """What ``GET /v1/conversations`` narrows by; every field left None does not narrow."""

    status: str | None = None
    channel_id: UUID | None = None
    updated_since: datetime | None = None
    assignee_id: UUID | None = None
    unassigned: bool = False
    team_id: UUID | None = None
    label_id: UUID | None = None
    priority: str | None = None
    unread_by: UUID | None = None
    """Only conversations with inbound messages this user has not read."""
    since: datetime | None = None
    until: datetime | None = None
    q: str | None = None


@dataclass(frozen=True)
class ConversationRow:
    """A conversation with the content of its newest visible message (for the preview), its labels and
    the caller's unread count (None when the caller is not a user).

    ``conversation`` is a row of the ``conversations`` table (its columns as attributes, like a
    ``Conversation``): lists read plain rows, several times cheaper than ORM objects.
    """

    conversation: Any
    latest_text: str | None
    latest_attachments: list[Any] | None
    labels: list[Any] = field(default_factory=list)
    unread_count: int | None = None


@dataclass(frozen=True)
class MessageRow:
    """A message with its author's identity, the id of the message it replies to, and reactions."""

    message: Message
    author: Identity | None
    reply_to_id: UUID | None
    reactions: dict[str, int]


@cache
def newest_visible_message() -> Any:
    """The id of a conversation's newest message that is not deleted nor a note (correlated subquery).

    Built once: SQLAlchemy constructs are immutable and shareable, and building a fresh alias of
    ``messages`` on every request cost ~1.5 ms of CPU per conversation list (bench/listing.py).
    """
    message = aliased(Message)
    return (
        select(message.id)
        .where(
            message.conversation_id == Conversation.id,
            message.deleted_at.is_(None),
            message.direction != "note",
        )
        .order_by(message.occurred_at.desc(), message.received_seq.desc())
        .limit(1)
        .correlate(Conversation)
        .scalar_subquery()
    )


def conversation_rows() -> Select[Any]:
    """A select of conversations' columns with the id of each one's newest visible message
    (``newest``), as :func:`with_previews` takes them; add the WHERE and ORDER BY."""
    return select(*Conversation.__table__.c, newest_visible_message().label("newest"))


async def with_previews(
    session: AsyncSession, rows: Sequence[Any], reader: UUID | None = None
) -> list[ConversationRow]:
    """Rows of :func:`conversation_rows` with their previews, labels and ``reader``'s unread counts."""
    newest = [row.newest for row in rows if row.newest is not None]
    contents: dict[UUID, tuple[str | None, list[Any]]] = {}
    if newest:
        result = await session.execute(
            select(Message.id, Message.text, Message.attachments).where(
                one_of(session.get_bind().dialect.name, Message.id, newest)
            )
        )
        contents = {row.id: (row.text, row.attachments) for row in result}
    ids = [row.id for row in rows]
    labels = await workflow.labels_of(session, ids)
    unread = await workflow.unread_counts(session, reader, ids) if reader is not None else {}
    shaped = []
    for row in rows:
        text, attachments = contents.get(row.newest, (None, None)) if row.newest else (None, None)
        conversation = row
        shaped.append(
            ConversationRow(
                conversation,
                text,
                attachments,
                labels.get(conversation.id, []),
                unread.get(conversation.id, 0) if reader is not None else None,
            )
        )
    return shaped


def conversation_filters(
    dialect: str, workspace_id: UUID, where: ConversationFilter
) -> list[ColumnElement[bool]]:
    """The WHERE clauses of a conversation filter, for a select over ``conversations``."""
    clauses: list[ColumnElement[bool]] = [Conversation.workspace_id == workspace_id]
    if where.q is not None:
        words = search.terms(where.q)
        if not words:
            raise ValueError("a search query needs at least one word")
        clauses.append(search.conversation_matches(dialect, workspace_id, words))
    if where.status is not None:
        clauses.append(Conversation.status == where.status)
    if where.channel_id is not None:
        clauses.append(Conversation.channel_id == where.channel_id)
    if where.updated_since is not None:
        clauses.append(Conversation.updated_at >= where.updated_since)
    if where.unassigned:
        clauses.append(Conversation.assignee_id.is_(None))
    elif where.assignee_id is not None:
        clauses.append(Conversation.assignee_id == where.assignee_id)
    if where.team_id is not None:
        clauses.append(Conversation.team_id == where.team_id)
    if where.priority is not None:
        clauses.append(Conversation.priority == where.priority)
    if where.label_id is not None:
        clauses.append(
            select(ConversationLabel.conversation_id)
            .where(
                ConversationLabel.conversation_id == Conversation.id,
                ConversationLabel.label_id == where.label_id,
            )
            .exists()
        )
    if where.unread_by is not None:
        clauses.append(workflow.unread_for(where.unread_by))
    if where.since is not None:
        clauses.append(Conversation.last_activity_at >= where.since)
    if where.until is not None:
        clauses.append(Conversation.last_activity_at < where.until)
    return clauses


async def list_conversations(
    session: AsyncSession,
    workspace_id: UUID,
    where: ConversationFilter,
    before: tuple[datetime, UUID] | None,
    limit: int,
    reader: UUID | None = None,
) -> list[ConversationRow]:
    """Conversations by last activity, newest first, strictly after the keyset position ``before``;
    ``reader`` is the user whose unread counts to give."""
    query = conversation_rows().where(
        *conversation_filters(session.get_bind().dialect.name, workspace_id, where)
    )
    if before is not None:
        at, conversation_id = before
        query = query.where(
            or_(
                Conversation.last_activity_at < at,
                and_(Conversation.last_activity_at == at, Conversation.id < conversation_id),
            )
        )
    query = query.order_by(Conversation.last_activity_at.desc(), Conversation.id.desc()).limit(limit)
    return await with_previews(session, (await session.execute(query)).all(), reader)


async def filtered_ids(
    session: AsyncSession, workspace_id: UUID, where: ConversationFilter, limit: int
) -> list[UUID]:
    """The ids of the conversations a filter selects (newest activity first), at most ``limit``."""
    query = (
        select(Conversation.id)
        .where(*conversation_filters(session.get_bind().dialect.name, workspace_id, where))
        .order_by(Conversation.last_activity_at.desc(), Conversation.id.desc())
        .limit(limit)
    )
    return list((await session.scalars(query)).all())


async def get_conversation(
    session: AsyncSession, workspace_id: UUID, conversation_id: UUID, reader: UUID | None = None
) -> ConversationRow | None:
    """A conversation of the workspace."""
    query = conversation_rows().where(
        Conversation.id == conversation_id, Conversation.workspace_id == workspace_id
    )
    rows = (await session.execute(query)).all()
    return (await with_previews(session, rows, reader))[0] if rows else None


async def conversation_exists(session: AsyncSession, workspace_id: UUID, conversation_id: UUID) -> bool:
    """Whether the workspace has this conversation."""
    found = await session.scalar(
        select(Conversation.id).where(
            Conversation.id == conversation_id, Conversation.workspace_id == workspace_id
        )
    )
    return found is not None


async def list_messages(
    session: AsyncSession,
    workspace_id: UUID,
    conversation_id: UUID,
    after: tuple[datetime, int] | None,
    limit: int,
    *,
    include_deleted: bool,
) -> list[MessageRow]:
    """A conversation's messages in chronological order, strictly after the keyset position ``after``."""
    query = _message_rows().where(
        Message.conversation_id == conversation_id, Message.workspace_id == workspace_id
    )
    if not include_deleted:
        query = query.where(Message.deleted_at.is_(None))
    if after is not None:
        at, sequence = after
        query = query.where(
            or_(Message.occurred_at > at, and_(Message.occurred_at == at, Message.received_seq > sequence))
        )
    query = query.order_by(Message.occurred_at, Message.received_seq).limit(limit)
    return await _shaped(session, query)


async def get_message_row(session: AsyncSession, workspace_id: UUID, message_id: UUID) -> MessageRow | None:
    """One message with its author, reply link and reactions."""
    query = _message_rows().where(Message.id == message_id, Message.workspace_id == workspace_id)
    rows = await _shaped(session, query)
    return rows[0] if rows else None


def _message_rows() -> Select[Message, Identity, UUID]:
    """Messages with their author and the id of the message they answer (when stored)."""
    replied = aliased(Message)
    return (
        select(Message, Identity, replied.id)
        .outerjoin(Identity, Identity.id == Message.author_identity_id)
        .outerjoin(
            replied,
            and_(
                replied.channel_id == Message.channel_id, replied.external_id == Message.reply_to_external_id
            ),
        )
    )


async def _shaped(session: AsyncSession, query: Select[Message, Identity, UUID]) -> list[MessageRow]:
    rows = (await session.execute(query)).all()
    reactions = await _reaction_counts(session, [message.id for message, _, _ in rows])
    return [
        MessageRow(message, author, reply_to_id, reactions.get(message.id, {}))
        for message, author, reply_to_id in rows
    ]


async def _reaction_counts(session: AsyncSession, message_ids: list[UUID]) -> dict[UUID, dict[str, int]]:
    """How many people reacted with each reaction, per message."""
    if not message_ids:
        return {}
    counts: dict[UUID, dict[str, int]] = {}
    result = await session.execute(
        select(MessageReaction.message_id, MessageReaction.reactions).where(
            MessageReaction.message_id.in_(message_ids)
        )
    )
    for message_id, reactions in result:
        per_message = counts.setdefault(message_id, {})
        for reaction in reactions:
            per_message[reaction] = per_message.get(reaction, 0) + 1
    return counts


async def get_message(session: AsyncSession, workspace_id: UUID, message_id: UUID) -> Message | None:
    """A message of the workspace."""
    return await session.scalar(
        select(Message).where(Message.id == message_id, Message.workspace_id == workspace_id)
    )


async def list_revisions(session: AsyncSession, message_id: UUID) -> list[MessageRevision]:
    """A message's edits, oldest first."""
    query = (
        select(MessageRevision)
        .where(MessageRevision.message_id == message_id)
        .order_by(MessageRevision.edited_at, MessageRevision.id)
    )
    return list((await session.scalars(query)).all())


async def get_contact(session: AsyncSession, workspace_id: UUID, contact_id: UUID) -> Contact | None:
    """A contact of the workspace."""
    return await session.scalar(
        select(Contact).where(Contact.id == contact_id, Contact.workspace_id == workspace_id)
    )


async def contact_identities(session: AsyncSession, contact_id: UUID) -> list[Identity]:
    """A contact's identities, oldest first."""
    query = (
        select(Identity).where(Identity.contact_id == contact_id).order_by(Identity.created_at, Identity.id)
    )
    return list((await session.scalars(query)).all())


async def get_identity(session: AsyncSession, workspace_id: UUID, identity_id: UUID) -> Identity | None:
    """An identity of the workspace."""
    return await session.scalar(
        select(Identity).where(Identity.id == identity_id, Identity.workspace_id == workspace_id)
    )
