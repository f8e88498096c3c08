"""Queries behind the conversation, message and contact endpoints; every one scoped to a workspace."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any, NamedTuple, TypeVar
from uuid import UUID

from sqlalchemy import (
    JSON,
    ColumnElement,
    Select,
    Uuid,
    and_,
    bindparam,
    func,
    literal,
    or_,
    select,
    type_coerce,
)
from sqlalchemy.dialects.postgresql import aggregate_order_by
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased

from services.inbox.models import (
    Contact,
    Conversation,
    ConversationLabel,
    ConversationRead,
    Identity,
    Label,
    Message,
    MessageReaction,
    MessageRevision,
)
from services.inbox.repository import search, workflow
from shared.db import UTCDateTime


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
    sentiment: tuple[str, ...] | None = None
    """Only conversations whose sentiment is one of these labels."""


class ConversationRow(NamedTuple):
    """A conversation with the content of its newest visible message (for the preview), its labels
    (``{id, name, color}``) and the caller's unread count (None when the caller is not a user).

    ``conversation`` is a row of the ``conversations`` table (its columns as attributes, like a
    ``Conversation``): lists read plain rows, several times cheaper than ORM objects.
    """

    conversation: Any
    latest_text: str | None
    latest_attachments: list[Any] | None
    labels: list[dict[str, Any]]
    unread_count: int | None = None


@dataclass(frozen=True)
class MessageRow:
    """A message with its author's identity, the id of the message it replies to, and reactions."""

    message: Message
    author: Identity | None
    reply_to_id: UUID | None
    reactions: dict[str, int]


_Query = TypeVar("_Query", bound=Select)  # type: ignore[type-arg]


@cache
def _newest_visible(column: str) -> Any:
    """A column of a conversation's newest message that is not deleted nor a note (correlated
    subquery). Built once per column: SQLAlchemy constructs are immutable and shareable."""
    message = aliased(Message)
    return (
        select(getattr(message, column))
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


@cache
def _labels(dialect: str) -> Any:
    """A conversation's labels as one JSON array of ``{id, name, color}``, by name (correlated)."""
    if dialect == "postgresql":
        label = func.json_build_object("id", Label.id, "name", Label.name, "color", Label.color)
        aggregate = select(func.json_agg(aggregate_order_by(label, Label.name)))
    else:
        named = (
            select(Label.id, Label.name, Label.color)
            .join(ConversationLabel, ConversationLabel.label_id == Label.id)
            .where(ConversationLabel.conversation_id == Conversation.id)
            .order_by(Label.name)
            .correlate(Conversation)
            .subquery()
        )
        entry = func.json_object("id", named.c.id, "name", named.c.name, "color", named.c.color)
        return type_coerce(select(func.json_group_array(entry)).scalar_subquery(), JSON)
    query = (
        aggregate.join_from(ConversationLabel, Label, ConversationLabel.label_id == Label.id)
        .where(ConversationLabel.conversation_id == Conversation.id)
        .correlate(Conversation)
    )
    return type_coerce(query.scalar_subquery(), JSON)


@cache
def _unread_count() -> Any:
    """How many of a conversation's customer messages the user bound as ``reader`` has not read
    (correlated). Built once, with the user as a bound parameter: building it per request (an alias
    of ``messages``) cost more CPU than running it."""
    message = aliased(Message)
    # The read mark is looked up once per conversation (correlated to the conversation, not to each
    # message), so the count scans only the messages after it by the (conversation, occurred_at)
    # index: correlated to the message, it was looked up again for every message of the conversation.
    read_up_to = (
        select(ConversationRead.read_up_to)
        .where(
            ConversationRead.user_id == bindparam("reader", type_=Uuid()),
            ConversationRead.conversation_id == Conversation.id,
        )
        .correlate(Conversation)
        .scalar_subquery()
    )
    return (
        select(func.count())
        .select_from(message)
        .where(
            message.conversation_id == Conversation.id,
            message.direction == "inbound",
            message.deleted_at.is_(None),
            message.occurred_at > func.coalesce(read_up_to, literal(workflow.NEVER, UTCDateTime())),
        )
        .correlate(Conversation)
        .scalar_subquery()
    )


@cache
def _conversation_rows(dialect: str, with_unread: bool) -> Select[Any]:
    return select(
        *Conversation.__table__.c,
        _newest_visible("text").label("preview_text"),
        _newest_visible("attachments").label("preview_attachments"),
        _labels(dialect).label("label_list"),
        (_unread_count() if with_unread else literal(None)).label("unread"),
    )


def conversation_rows(dialect: str, reader: UUID | None = None) -> Select[Any]:
    """One statement for a list of conversations: their columns with the preview (text and
    attachments of the newest visible message), the labels and ``reader``'s unread count; add the
    WHERE, ORDER BY and LIMIT, execute it with :func:`row_params`, and shape the rows with
    :func:`shaped_rows`.

    One statement rather than one per concern: on a page of fifty, each extra statement cost more
    Python than the database spent on it (bench/listing.py).
    """
    return _conversation_rows(dialect, reader is not None)


def row_params(reader: UUID | None) -> dict[str, Any]:
    """The parameters a :func:`conversation_rows` statement is executed with."""
    return {"reader": reader} if reader is not None else {}


def shaped_rows(rows: Sequence[Any], reader: UUID | None = None) -> list[ConversationRow]:
    """Rows of :func:`conversation_rows` as :class:`ConversationRow`."""
    shaped = []
    for row in rows:
        text, attachments, labels, unread = row[-4:]  # the columns conversation_rows adds, in order
        shaped.append(
            ConversationRow(
                row, text, attachments, _label_entries(labels), unread if reader is not None else None
            )
        )
    return shaped


def _label_entries(entries: list[dict[str, Any]] | None) -> list[dict[str, Any]]:
    """A conversation's labels with their ids as the API writes ids: SQLite writes UUIDs as 32 hex
    digits, PostgreSQL with dashes (its entries pass as they are)."""
    if not entries:
        return []
    return [entry if "-" in entry["id"] else {**entry, "id": str(UUID(entry["id"]))} for entry in entries]


def conversation_filters(
    dialect: str, workspace_id: UUID, where: ConversationFilter, *, common_search: bool = False
) -> list[ColumnElement[bool]]:
    """The WHERE clauses of a conversation filter, for a select over ``conversations``;
    ``common_search``: the search's words are common (:func:`search.common`)."""
    clauses: list[ColumnElement[bool]] = [Conversation.workspace_id == workspace_id]
    if where.q is not None:
        clauses.append(
            search.conversation_matches(dialect, workspace_id, _search_words(where.q), common=common_search)
        )
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
    if where.sentiment:
        clauses.append(Conversation.sentiment.in_(where.sentiment))
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


def newest_first(query: _Query, before: tuple[datetime, UUID] | None, limit: int) -> _Query:
    """A select over conversations in list order (last activity, newest first), strictly after the
    keyset position ``before``, at most ``limit``."""
    if before is not None:
        at, conversation_id = before
        query = query.where(
            or_(
                Conversation.last_activity_at < at,
                and_(Conversation.last_activity_at == at, Conversation.id < conversation_id),
            )
        )
    return query.order_by(Conversation.last_activity_at.desc(), Conversation.id.desc()).limit(limit)


async def list_conversations(
    connection: AsyncConnection,
    workspace_id: UUID,
    where: ConversationFilter,
    before: tuple[datetime, UUID] | None,
    limit: int,
    reader: UUID | None = None,
) -> list[ConversationRow]:
    """Conversations by last activity, newest first, strictly after the keyset position ``before``;
    ``reader`` is the user whose unread counts to give."""
    # Plain rows off a connection: a session's ORM result handling was a tenth of a page's cost.
    dialect = connection.dialect.name
    common = (
        where.q is not None
        and dialect == "postgresql"
        and await search.common(connection, _search_words(where.q))
    )
    query = conversation_rows(dialect, reader).where(
        *conversation_filters(dialect, workspace_id, where, common_search=common)
    )
    query = newest_first(query, before, limit)
    return shaped_rows((await connection.execute(query, row_params(reader))).all(), reader)


def _search_words(q: str) -> list[str]:
    words = search.terms(q)
    if not words:
        raise ValueError("a search query needs at least one word")
    return words


async def filtered_ids(
    session: AsyncSession,
    workspace_id: UUID,
    where: ConversationFilter,
    limit: int,
    before: tuple[datetime, UUID] | None = None,
) -> list[tuple[UUID, datetime]]:
    """The conversations a filter selects, newest activity first, strictly after the keyset position
    ``before``, at most ``limit``: ``(id, last_activity_at)``."""
    query = select(Conversation.id, Conversation.last_activity_at).where(
        *conversation_filters(session.get_bind().dialect.name, workspace_id, where)
    )
    query = newest_first(query, before, limit)
    return [(row.id, row.last_activity_at) for row in await session.execute(query)]


async def get_conversation(
    session: AsyncSession, workspace_id: UUID, conversation_id: UUID, reader: UUID | None = None
) -> ConversationRow | None:
    """A conversation of the workspace."""
    query = conversation_rows(session.get_bind().dialect.name, reader).where(
        Conversation.id == conversation_id, Conversation.workspace_id == workspace_id
    )
    rows = (await session.execute(query, row_params(reader))).all()
    return shaped_rows(rows, reader)[0] if rows else None


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
