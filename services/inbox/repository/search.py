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

from sqlalchemy import ColumnElement, Select, any_, column, literal_column, select, table, text, union
from sqlalchemy.ext.compiler import compiles

from services.inbox.models import Contact, Conversation, Identity, Message

MAX_TERMS = 8
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


def _postgres_matches(workspace_id: UUID, words: list[str]) -> Select[tuple[UUID]]:
    tsquery = text("to_tsquery('simple'::regconfig, :search_query)").bindparams(
        search_query=" & ".join(f"{word}:*" for word in words)
    )
    by_text = select(Message.conversation_id).where(
        Message.workspace_id == workspace_id,
        Message.deleted_at.is_(None),
        literal_column("messages.search_vector").op("@@")(tsquery),
    )
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
    by_author = select(Message.conversation_id).where(
        Message.author_identity_id.in_(union(identity_matches, contact_matches).scalar_subquery()),
    )
    return select(union(by_text, by_author).subquery().c[0])


def _fts_rowids(name: str, words: list[str]) -> Select[tuple[int]]:
    fts = table(name, column("rowid"))
    match = " ".join(f'"{word}"*' for word in words)
    return select(fts.c.rowid).where(literal_column(name).op("MATCH")(match))


def _sqlite_matches(workspace_id: UUID, words: list[str]) -> Select[tuple[UUID]]:
    by_text = select(Message.conversation_id).where(
        literal_column("messages.rowid").in_(_fts_rowids("messages_fts", words)),
        Message.workspace_id == workspace_id,
        Message.deleted_at.is_(None),
    )
    identity_matches = select(Identity.id).where(
        literal_column("identities.rowid").in_(_fts_rowids("identities_fts", words)),
        Identity.workspace_id == workspace_id,
    )
    contact_matches = (
        select(Identity.id)
        .join(Contact, Contact.id == Identity.contact_id)
        .where(
            literal_column("contacts.rowid").in_(_fts_rowids("contacts_fts", words)),
            Contact.workspace_id == workspace_id,
        )
    )
    by_author = select(Message.conversation_id).where(
        Message.author_identity_id.in_(union(identity_matches, contact_matches).scalar_subquery()),
    )
    return select(union(by_text, by_author).subquery().c[0])


class _ArrayOf(ColumnElement[Any]):
    """PostgreSQL's ``ARRAY(subquery)``: the subquery's rows as one array value."""

    inherit_cache = False

    def __init__(self, query: Select[Any]) -> None:
        self.query = query


@compiles(_ArrayOf)
def _compile_array_of(element: _ArrayOf, compiler: Any, **kw: Any) -> str:
    return f"ARRAY({compiler.process(element.query, **kw)})"


def conversation_matches(dialect: str, workspace_id: UUID, words: list[str]) -> ColumnElement[bool]:
    """A filter on ``conversations``: the search matches the conversation.

    On PostgreSQL the matching ids are computed once, as an array (``id = ANY(ARRAY(...))``): as an
    ``IN (subquery)`` the planner, unable to guess how few a rare word matches, hashed every
    conversation of the workspace instead of probing the primary key for each match.
    """
    if dialect == "postgresql":
        return Conversation.id == any_(_ArrayOf(_postgres_matches(workspace_id, words)))
    return Conversation.id.in_(_sqlite_matches(workspace_id, words))
