"""Queries behind the conversation, message and contact endpoints; every one scoped to a workspace."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache, lru_cache
from typing import Any, TypeVar
from uuid import UUID

from sqlalchemy import (
    ColumnElement,
    Integer,
    Select,
    SQLColumnExpression,
    String,
    Text,
    Uuid,
    and_,
    any_,
    bindparam,
    case,
    cast,
    func,
    literal,
    or_,
    select,
)
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.engine import Dialect, Row
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncSession
from sqlalchemy.orm import aliased

from services.inbox.models import (
    Contact,
    Conversation,
    ConversationLabel,
    ConversationRead,
    Identity,
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


@dataclass(frozen=True)
class ConversationRows:
    """Conversations as lists read them: rows of the ``conversations`` columns and the reader's
    unread count (None when the reader is not a user), named by ``columns``, read by position.

    Plain rows rather than ORM objects or response models, read by position: on PostgreSQL they come
    with no result processing at all (ids as text, times as the driver decodes them), several
    times cheaper than anything built over them.
    """

    columns: tuple[str, ...]
    rows: Sequence[Sequence[Any]]

    def __len__(self) -> int:
        return len(self.rows)

    def first(self, count: int) -> ConversationRows:
        return ConversationRows(self.columns, self.rows[:count])

    def value(self, index: int, column: str) -> Any:
        return self.rows[index][self.columns.index(column)]

    def position(self, index: int) -> tuple[datetime, UUID | str]:
        """The keyset position of a row: where the page after it starts (the id as the row has it)."""
        return self.value(index, "last_activity_at"), self.value(index, "id")


@dataclass(frozen=True)
class MessageRow:
    """A message with its author's identity, the id of the message it replies to, and reactions."""

    message: Message
    author: Identity | None
    reply_to_id: UUID | None
    reactions: dict[str, int]


_Query = TypeVar("_Query", bound=Select)  # type: ignore[type-arg]


_READER = bindparam("reader", type_=Uuid())


@cache
def _with_read_mark() -> Any:
    """Conversations with the read mark of the user bound as ``reader``, if any (outer join on its
    key): looked up once per conversation, for both the unread filter and the unread count."""
    return Conversation.__table__.outerjoin(
        ConversationRead.__table__,
        and_(ConversationRead.conversation_id == Conversation.id, ConversationRead.user_id == _READER),
    )


@cache
def _unread_count() -> Any:
    """How many of a conversation's customer messages the reader has not read (with the read mark
    joined, :func:`_with_read_mark`): none when the mark is at or after the newest customer
    message, as the unread filter has it; otherwise the messages after it, counted by the
    (conversation, occurred_at) index. Built once: building it per request cost more than running it."""
    message = aliased(Message)
    read_up_to = ConversationRead.read_up_to
    after_mark = (
        select(func.count())
        .select_from(message)
        .where(
            message.conversation_id == Conversation.id,
            message.direction == "inbound",
            message.deleted_at.is_(None),
            message.occurred_at > func.coalesce(read_up_to, literal(workflow.NEVER, UTCDateTime())),
        )
        .correlate(Conversation, ConversationRead)
        .scalar_subquery()
    )
    return case(
        (or_(Conversation.last_inbound_at.is_(None), read_up_to >= Conversation.last_inbound_at), 0),
        else_=after_mark,
    )


def _unread_by_reader() -> ColumnElement[bool]:
    """The unread filter with the read mark joined: :func:`workflow.unread_for`, without a second
    lookup of the mark."""
    read_up_to = ConversationRead.read_up_to
    return and_(
        Conversation.last_inbound_at.is_not(None),
        or_(read_up_to.is_(None), read_up_to < Conversation.last_inbound_at),
    )


_LISTED = tuple(
    Conversation.__table__.c[name]
    for name in (
        "id",
        "channel_id",
        "external_id",
        "title",
        "status",
        "snoozed_until",
        "status_changed_at",
        "assignee_id",
        "team_id",
        "priority",
        "last_activity_at",
        "last_inbound_at",
        "first_response_at",
        "resolved_at",
        "first_resolved_at",
        "sentiment",
        "version",
        "created_at",
        "updated_at",
        "last_message_preview",
        "labels_json",
        "claimed_by_id",
        "claim_expires_at",
    )
)
"""The columns lists read: ``ConversationOut``'s fields, and what its labels and claim come from."""


@cache
def conversation_rows_for(with_unread: bool, *, uuids_as_text: bool = False) -> Select[Any]:
    """:func:`conversation_rows`; ``uuids_as_text``: ids as the database writes them, for JSON as it
    is (PostgreSQL: the driver's own UUID objects are not ones ``orjson`` writes by itself)."""
    columns = [
        cast(column, Text).label(column.name) if uuids_as_text and isinstance(column.type, Uuid) else column
        for column in _LISTED
    ]
    if not with_unread:
        return select(*columns, literal(None).label("unread_count"))
    return select(*columns, _unread_count().label("unread_count")).select_from(_with_read_mark())


def conversation_rows(reader: UUID | None = None) -> Select[Any]:
    """The statement behind every list of conversations: their columns (preview and labels included,
    ``repository/list_columns.py``) and ``reader``'s unread count; add the WHERE (and
    :func:`newest_first`), execute it with :func:`row_params` (and :func:`page_values`), and read
    it with :func:`read_rows`."""
    return conversation_rows_for(reader is not None)


def row_params(reader: UUID | None) -> dict[str, Any]:
    """The parameters a :func:`conversation_rows` statement is executed with."""
    return {"reader": reader} if reader is not None else {}


def read_rows(statement: Select[Any], rows: Sequence[Sequence[Any]]) -> ConversationRows:
    """The rows of a :func:`conversation_rows` statement."""
    return ConversationRows(tuple(statement.selected_columns.keys()), rows)


_BOUND = (
    "status",
    "channel_id",
    "assignee_id",
    "team_id",
    "priority",
    "label_id",
    "updated_since",
    "since",
    "until",
)
"""Filters whose value is bound as it is."""


def filter_values(dialect: str, workspace_id: UUID, where: ConversationFilter) -> dict[str, Any]:
    """A filter's values, by the names of the parameters :func:`conversation_filters` binds them to.
    Its keys are the statement's shape: filters with other values but the same keys share it."""
    values: dict[str, Any] = {"workspace_id": workspace_id}
    for name in _BOUND:
        value = getattr(where, name)
        if value is not None:
            values[name] = _aware(value) if isinstance(value, datetime) else value
    if where.unassigned:
        values.pop("assignee_id", None)  # unassigned wins over an assignee
        values["unassigned"] = True  # no parameter: the shape alone says it
    if where.sentiment:
        values["sentiment"] = list(where.sentiment)
    if where.unread_by is not None:
        values["unread_by"] = where.unread_by
    if where.q is not None:
        values["search"] = search.bound_query(dialect, _search_words(where.q))
    return values


def conversation_filters(
    dialect: str, names: Collection[str], *, common_search: bool = False, read_mark_joined: bool = False
) -> list[ColumnElement[bool]]:
    """The WHERE clauses of a filter over ``conversations``, their values bound to the parameters of
    :func:`filter_values` (``names`` are its keys); ``common_search``: the search's words are common
    (:func:`search.common`); ``read_mark_joined``: the select has the unread filter's user's read
    mark joined (:func:`conversation_rows` for that user)."""
    workspace = bindparam("workspace_id", type_=Uuid())
    column = Conversation.__table__.c
    clauses: list[ColumnElement[bool]] = [Conversation.workspace_id == workspace]
    if "search" in names:
        clauses.append(search.conversation_matches(dialect, workspace, common=common_search))
    for name in ("status", "channel_id", "assignee_id", "team_id", "priority"):
        if name in names:
            clauses.append(column[name] == bindparam(name, type_=column[name].type))
    if "updated_since" in names:
        clauses.append(Conversation.updated_at >= bindparam("updated_since", type_=UTCDateTime()))
    if "unassigned" in names:
        clauses.append(Conversation.assignee_id.is_(None))
    if "sentiment" in names:
        if dialect == "postgresql":
            clauses.append(Conversation.sentiment == any_(bindparam("sentiment", type_=ARRAY(String))))
        else:
            clauses.append(Conversation.sentiment.in_(bindparam("sentiment", expanding=True)))
    if "label_id" in names:
        # Joined, not probed: the list walks the label's conversations in its own index's order
        # (list_order), the priority at hand in that index.
        clauses += [
            ConversationLabel.conversation_id == Conversation.id,
            ConversationLabel.label_id == bindparam("label_id", type_=Uuid()),
        ]
        if "priority" in names:
            clauses.append(ConversationLabel.priority == bindparam("priority", type_=column["priority"].type))
    if "unread_by" in names:
        unread = (
            _unread_by_reader()
            if read_mark_joined
            else workflow.unread_for(bindparam("unread_by", type_=Uuid()))
        )
        clauses.append(unread)
    activity, _ = list_order(names)
    if "since" in names:
        clauses.append(activity >= bindparam("since", type_=UTCDateTime()))
    if "until" in names:
        clauses.append(activity < bindparam("until", type_=UTCDateTime()))
    return clauses


Order = tuple[SQLColumnExpression[datetime], SQLColumnExpression[UUID]]


def list_order(names: Collection[str]) -> Order:
    """The columns a list of conversations goes by: their last activity and id; under a label
    filter, the label's copies of them (``list_columns.order_labels``), which its index gives in
    that order."""
    if "label_id" in names:
        return ConversationLabel.last_activity_at, ConversationLabel.conversation_id
    return Conversation.last_activity_at, Conversation.id


def newest_first(query: _Query, *, after_position: bool, order: Order | None = None) -> _Query:
    """A select over conversations in list order (last activity, newest first; ``order``, from
    :func:`list_order`, names the columns), at most ``limit`` and, ``after_position``, strictly after
    the keyset position ``before_at``, ``before_id``: the parameters of :func:`page_values`."""
    activity, key = order or list_order(())
    if after_position:
        at, conversation_id = (
            bindparam("before_at", type_=UTCDateTime()),
            bindparam("before_id", type_=Uuid()),
        )
        query = query.where(or_(activity < at, and_(activity == at, key < conversation_id)))
    return query.order_by(activity.desc(), key.desc()).limit(bindparam("limit", type_=Integer()))


def page_values(before: tuple[datetime, UUID] | None, limit: int) -> dict[str, Any]:
    """The parameters of :func:`newest_first`."""
    values: dict[str, Any] = {"limit": limit}
    if before is not None:
        values["before_at"], values["before_id"] = _aware(before[0]), before[1]
    return values


def _aware(value: datetime) -> datetime:
    """A time as a list binds it: PostgreSQL lists go to the driver without the column types' own
    checks (``UTCDateTime`` refuses a naive time, which the driver would take as local time)."""
    if value.tzinfo is None:
        raise ValueError("naive datetime given to a conversation list")
    return value


@lru_cache(maxsize=256)
def _list_statement(dialect: Dialect, names: frozenset[str], with_unread: bool, common: bool) -> _Prepared:
    """The list statement of a shape (which filters, whether after a position, whether with unread
    counts), built and compiled once: building and compiling it again on every request cost more
    than executing it."""
    order = list_order(names)
    after_position = "before_at" in names
    query = _positioned(conversation_rows_for(with_unread, uuids_as_text=dialect.name == "postgresql"), order)
    if dialect.name == "postgresql" and "search" in names and not common:
        # The matches are collected and sorted (search.conversation_matches): take the page's ids
        # first, then read the page's rows, read marks and unread counts for those alone. In one
        # select, PostgreSQL joined every match to its read mark before sorting.
        page = (
            _ids_in_list_order(dialect.name, names)
            .with_only_columns(Conversation.id)
            .correlate(None)  # its own conversations (and labels), not the outer select's
        )
        # The page's ids meet every filter and follow the position; the label filter stays for
        # its join, whose copies are the order's columns.
        kept = names & {"workspace_id", "label_id"}
        query = query.where(
            *conversation_filters(dialect.name, kept), Conversation.id == any_(search.ArrayOf(page))
        )
        after_position = False
    else:
        query = query.where(
            *conversation_filters(dialect.name, names, common_search=common, read_mark_joined=with_unread)
        )
    statement = newest_first(query, after_position=after_position, order=order)
    compiled = statement.compile(dialect=dialect)
    parameters = tuple(compiled.positiontup or ())
    constants = {name: compiled.binds[name].value for name in parameters if not compiled.binds[name].required}
    columns = tuple(statement.selected_columns.keys())
    return _Prepared(statement, columns, compiled.string, parameters, constants)


def _positioned(query: Select[Any], order: Order) -> Select[Any]:
    """The rows' ``last_activity_at`` as the list's order has it, so that a page's cursor is a
    position in that order: under a label filter, the label's copy (the same value, unless a write
    from before migration 0011 left it behind; paging by the other would then go round in circles)."""
    activity = order[0]
    if activity is Conversation.last_activity_at:
        return query
    return query.with_only_columns(
        *(
            activity.label("last_activity_at") if column.name == "last_activity_at" else column
            for column in query.selected_columns
        )
    )


@dataclass(frozen=True)
class _Prepared:
    """A list statement, and its compiled text with the order its parameters go in."""

    statement: Select[Any]
    columns: tuple[str, ...]
    sql: str
    parameters: tuple[str, ...]
    """The bound parameters in the order of the compiled statement's positions (PostgreSQL)."""
    constants: dict[str, Any]

    def arguments(self, values: dict[str, Any]) -> tuple[Any, ...]:
        return tuple(values[name] if name in values else self.constants[name] for name in self.parameters)


async def list_conversations(
    connection: AsyncConnection,
    workspace_id: UUID,
    where: ConversationFilter,
    before: tuple[datetime, UUID] | None,
    limit: int,
    reader: UUID | None = None,
) -> ConversationRows:
    """Conversations by last activity, newest first, strictly after the keyset position ``before``;
    ``reader`` is the user whose unread counts to give."""
    if where.unread_by is not None and where.unread_by != reader:
        raise ValueError("a list filters by its reader's unread conversations only")
    dialect = connection.dialect
    common = (
        where.q is not None
        and dialect.name == "postgresql"
        and await search.remembered_common(connection, _search_words(where.q))
    )
    values = (
        filter_values(dialect.name, workspace_id, where) | page_values(before, limit) | row_params(reader)
    )
    prepared = _list_statement(dialect, frozenset(values), reader is not None, common)
    if dialect.name == "postgresql":
        # The compiled text straight to the driver: no compilation, no result processing (asyncpg
        # gives the columns as they are shown), still with SQLAlchemy's error handling.
        result = await connection.exec_driver_sql(prepared.sql, prepared.arguments(values))
    else:
        result = await connection.execute(prepared.statement, values)
    return ConversationRows(prepared.columns, result.all())


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
    dialect = session.get_bind().dialect.name
    values = filter_values(dialect, workspace_id, where) | page_values(before, limit)
    return [
        (row.id, row.last_activity_at)
        for row in await session.execute(_ids_in_list_order(dialect, values), values)
    ]


def _ids_in_list_order(dialect: str, names: Collection[str]) -> Select[Any]:
    """A page of the list without its rows: the ids of the conversations the filter of ``names``
    selects and their positions (``last_activity_at`` as the list's order has it, as its cursor
    is), in list order, after the position when ``names`` has one, at most ``limit``."""
    order = list_order(names)
    activity: Any = order[0]
    query = select(Conversation.id, activity.label("last_activity_at")).where(
        *conversation_filters(dialect, names)
    )
    return newest_first(query, after_position="before_at" in names, order=order)


async def get_conversation(
    session: AsyncSession, workspace_id: UUID, conversation_id: UUID, reader: UUID | None = None
) -> Row[Any] | None:
    """A conversation of the workspace: a row of :func:`conversation_rows` (columns as attributes)."""
    query = conversation_rows(reader).where(
        Conversation.id == conversation_id, Conversation.workspace_id == workspace_id
    )
    row: Row[Any] | None = (await session.execute(query, row_params(reader))).first()
    return row


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
