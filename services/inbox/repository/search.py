"""Full-text search: the conversations whose messages or whose authors' names match a query.

PostgreSQL matches messages' stored ``search_vector`` and ``to_tsvector('simple', ...)`` expressions
on names, which the GIN indexes of migration 0008 cover (the expressions here must stay exactly
those of the indexes). SQLite matches the FTS5 tables of the same migration. Either way a query is its words, each matched as a prefix and all
required, so ``ord late`` finds "order is late"; punctuation and search operators are ignored.
"""

from __future__ import annotations

import re
from typing import Any
from uuid import UUID

import orjson
from cachetools import TTLCache
from sqlalchemy import (
    ColumnElement,
    CompoundSelect,
    Select,
    String,
    and_,
    any_,
    bindparam,
    column,
    literal_column,
    or_,
    select,
    table,
    text,
    union,
)
from sqlalchemy.ext.asyncio import AsyncConnection
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.elements import BindParameter, TextClause
from sqlalchemy.sql.visitors import InternalTraversal

from services.inbox.models import Contact, Conversation, Identity, Message

MAX_TERMS = 8
Workspace = UUID | BindParameter[UUID]
"""A workspace id, or the parameter it is bound to."""
_WORD = re.compile(r"[^\W_]+", re.UNICODE)
"""A word: letters and digits. Everything else separates words, on both databases (migration 0008)."""


def terms(query: str) -> list[str]:
    """The words of a search query, lower-cased, at most MAX_TERMS."""
    return [word.lower() for word in _WORD.findall(query)][:MAX_TERMS]


def _tsvector(expression: str) -> ColumnElement[object]:
    # Exactly the expressions of migration 0008's indexes, or PostgreSQL cannot use them.
    return literal_column(
        f"to_tsvector('simple'::regconfig, regexp_replace({expression}, '[[:punct:]]+', ' ', 'g'))"
    )


def _tsquery(words: list[str]) -> str:
    return " & ".join(f"{word}:*" for word in words)


def bound_query(dialect: str, words: list[str]) -> str:
    """The value of the ``search`` parameter :func:`conversation_matches` binds: the words as the
    database's full-text query syntax writes them."""
    if dialect == "postgresql":
        return _tsquery(words)
    return " ".join(f'"{word}"*' for word in words)


def _search() -> BindParameter[str]:
    return bindparam("search", type_=String())


def _postgres_query(query: BindParameter[str] | str) -> TextClause:
    bound = query if isinstance(query, BindParameter) else bindparam("search", query, type_=String())
    return text("to_tsquery('simple'::regconfig, :search)").bindparams(bound)


def _text_matches(tsquery: TextClause) -> ColumnElement[bool]:
    return literal_column("messages.search_vector").op("@@")(tsquery)


def _postgres_matches(workspace_id: Workspace) -> Select[tuple[UUID]]:
    tsquery = _postgres_query(_search())
    by_text = select(Message.conversation_id).where(
        Message.workspace_id == workspace_id, Message.deleted_at.is_(None), _text_matches(tsquery)
    )
    return select(union(by_text, _postgres_by_author(workspace_id, tsquery)).subquery().c[0])


def _postgres_by_author(workspace_id: Workspace, tsquery: TextClause) -> Select[UUID]:
    """The conversations of the messages whose authors' names match."""
    return select(Message.conversation_id).where(
        Message.author_identity_id.in_(_postgres_authors(workspace_id, tsquery).scalar_subquery()),
    )


def _postgres_authors(workspace_id: Workspace, tsquery: TextClause) -> CompoundSelect[UUID]:
    """The identities whose names, or whose contacts' names, match."""
    identity_matches = select(Identity.id).where(
        Identity.workspace_id == workspace_id,
        _tsvector("coalesce(identities.display_name, '') || ' ' || coalesce(identities.handle, '')").op("@@")(
            tsquery
        ),
    )
    contact_matches = (
        select(Identity.id)
        .join(Contact, Contact.id == Identity.contact_id)
        .where(
            Contact.workspace_id == workspace_id, _tsvector("coalesce(contacts.name, '')").op("@@")(tsquery)
        )
    )
    return union(identity_matches, contact_matches)


def _fts_rowids(name: str) -> Select[tuple[int]]:
    fts = table(name, column("rowid"))
    return select(fts.c.rowid).where(literal_column(name).op("MATCH")(_search()))


def _sqlite_matches(workspace_id: Workspace) -> Select[tuple[UUID]]:
    by_text = select(Message.conversation_id).where(
        literal_column("messages.rowid").in_(_fts_rowids("messages_fts")),
        Message.workspace_id == workspace_id,
        Message.deleted_at.is_(None),
    )
    identity_matches = select(Identity.id).where(
        literal_column("identities.rowid").in_(_fts_rowids("identities_fts")),
        Identity.workspace_id == workspace_id,
    )
    contact_matches = (
        select(Identity.id)
        .join(Contact, Contact.id == Identity.contact_id)
        .where(
            literal_column("contacts.rowid").in_(_fts_rowids("contacts_fts")),
            Contact.workspace_id == workspace_id,
        )
    )
    by_author = select(Message.conversation_id).where(
        Message.author_identity_id.in_(union(identity_matches, contact_matches).scalar_subquery()),
    )
    return select(union(by_text, by_author).subquery().c[0])


class ArrayOf(ColumnElement[Any]):
    """PostgreSQL's ``ARRAY(subquery)``: the subquery's rows as one array value. Its subquery is part
    of its cache key, so statements holding it are compiled once, not on every search."""

    inherit_cache = True
    _traverse_internals = [("query", InternalTraversal.dp_clauseelement)]

    def __init__(self, query: Select[Any]) -> None:
        self.query = query


@compiles(ArrayOf)
def _compile_array_of(element: ArrayOf, compiler: Any, **kw: Any) -> str:
    return f"ARRAY({compiler.process(element.query, **kw)})"


COMMON_SHARE = 0.005
"""The share of all messages a search is expected to match above which it is :func:`common`. Walking
conversations costs about fifty divided by the share of them that match; collecting the matches
costs their number. At a million messages (``bench/listing.py``) the walk won from about 0.5 %:
20 ms against 85 ms for a prefix in 1.8 % of messages, 36 ms against 13 ms for a word in 0.25 %.
A word the statistics do not list is estimated at about half the rarest listed word's share: on a
table of few distinct words a rare one can pass for common, which makes its search slower, never
wrong."""


async def common(connection: AsyncConnection, words: list[str]) -> bool:
    """Whether PostgreSQL expects the words in more than :data:`COMMON_SHARE` of the messages: its
    planner's row estimate (from the column statistics of ``search_vector``) against the table's
    size, which costs a plan and a catalogue read, no scan.

    The words are written into the statement (as quoted literals), not bound: a prepared statement
    run a few times may be planned once for any value, and its estimate would then not be this
    query's.
    """
    query: Select[Any] = (
        select(literal_column("1"))
        .select_from(Message)
        .where(_text_matches(_postgres_query(bound_query("postgresql", words))))
    )
    compiled = query.compile(dialect=connection.dialect, compile_kwargs={"literal_binds": True})
    plan = (await connection.exec_driver_sql(f"EXPLAIN (FORMAT JSON) {compiled}")).scalar()
    found: Any = orjson.loads(plan) if isinstance(plan, str | bytes) else plan
    messages = await connection.scalar(
        text("SELECT reltuples FROM pg_class WHERE oid = 'messages'::regclass")
    )
    if not messages or messages <= 0:  # never analysed: the estimate means little
        return False
    return bool(found[0]["Plan"]["Plan Rows"] > COMMON_SHARE * messages)


_REMEMBERED: TTLCache[tuple[str, tuple[str, ...]], bool] = TTLCache(maxsize=4096, ttl=300)


async def remembered_common(connection: AsyncConnection, words: list[str]) -> bool:
    """:func:`common`, remembered for five minutes per database and words. The answer comes from
    the planner's statistics, which change when the table is analysed, not from request to
    request; asking again each time cost a plan, a catalogue read and two round trips per search.
    An answer gone stale makes a search slower for a while, never wrong."""
    key = (connection.engine.url.render_as_string(), tuple(words))
    found = _REMEMBERED.get(key)
    if found is None:
        found = _REMEMBERED[key] = await common(connection, words)
    return found


def conversation_matches(
    dialect: str, workspace_id: Workspace, *, common: bool = False
) -> ColumnElement[bool]:
    """A filter on ``conversations``: the search bound as ``search`` (:func:`bound_query`) matches
    the conversation.

    On PostgreSQL, by default the matching ids are computed once, as an array
    (``id = ANY(ARRAY(...))``). As an ``IN (subquery)``, the planner, unable to guess how few a rare
    word matches, hashed every conversation of the workspace instead of probing the primary key for
    each match.

    A ``common`` search (:func:`common`) goes the other way round: conversations are tested one by
    one, in the order the list walks them, until the page is full. A word in 2 % of a million
    messages matches some 15,000 conversations; collecting and sorting them all took 35 ms, while
    the newest fifty that match are found among the first few hundred.
    """
    if dialect != "postgresql":
        return Conversation.id.in_(_sqlite_matches(workspace_id))
    if not common:
        return Conversation.id == any_(ArrayOf(_postgres_matches(workspace_id)))
    tsquery = _postgres_query(_search())
    # One EXISTS, not an OR of two: PostgreSQL turns an EXISTS under an OR into a hashed subplan,
    # which collects every match first, the very work the walk avoids.
    authors = ArrayOf(select(_postgres_authors(workspace_id, tsquery).subquery().c[0]))
    return (
        select(Message.id)
        .where(
            Message.conversation_id == Conversation.id,
            or_(
                and_(Message.deleted_at.is_(None), _text_matches(tsquery)),
                Message.author_identity_id == any_(authors),
            ),
        )
        .correlate(Conversation)
        .exists()
    )
