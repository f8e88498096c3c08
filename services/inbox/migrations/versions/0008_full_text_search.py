"""full-text search over message text and contact names

PostgreSQL: a stored ``search_vector`` column on messages and expression indexes on names, all GIN,
all ``to_tsvector('simple', ...)`` (the ``simple`` configuration: no stemming, so English and Italian
and every other language match word prefixes alike).
SQLite: FTS5 tables with external content (``messages``, ``identities``, ``contacts``) kept in step
by triggers. A later migration that rebuilds one of those tables on SQLite (a batch ALTER that
recreates it) must recreate its triggers and run the FTS table's ``rebuild``; see ``_sqlite_fts``.

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# (FTS table, content table, indexed columns); services/inbox/repository/search.py queries them.
SQLITE_FTS = (
    ("messages_fts", "messages", ("text",)),
    ("identities_fts", "identities", ("display_name", "handle")),
    ("contacts_fts", "contacts", ("name",)),
)


def _words(expression: str) -> str:
    # Punctuation becomes a space before PostgreSQL's parser sees the text: its parser keeps emails,
    # hosts, paths and versions whole (``john@example.com``, ``v1.2``) where a query's words (and
    # SQLite's tokenizer) split them, so ``example`` or ``ORD-123`` would find nothing.
    return f"regexp_replace({expression}, '[[:punct:]]+', ' ', 'g')"


POSTGRES_INDEXES = (
    (
        "ix_identities_search",
        "identities",
        _words("coalesce(display_name, '') || ' ' || coalesce(handle, '')"),
    ),
    ("ix_contacts_search", "contacts", _words("coalesce(name, '')")),
)
# Messages keep their words in a stored column: a common word matches thousands of messages, and
# rechecking each against a vector computed again from its text cost more than the rest of the query.
_MESSAGE_WORDS = _words("coalesce(text, '')")
POSTGRES_MESSAGE_VECTOR = (
    "ALTER TABLE messages ADD COLUMN search_vector tsvector "
    f"GENERATED ALWAYS AS (to_tsvector('simple'::regconfig, {_MESSAGE_WORDS})) STORED"
)


def _sqlite_fts(fts: str, content: str, columns: tuple[str, ...]) -> list[str]:
    # Built from the constant names above only, never from input.
    names = ", ".join(columns)
    new = ", ".join(f"new.{c}" for c in columns)
    old = ", ".join(f"old.{c}" for c in columns)
    return [
        f"CREATE VIRTUAL TABLE {fts} USING fts5({names}, content='{content}', content_rowid='rowid', "
        "tokenize='unicode61 remove_diacritics 2')",
        f"CREATE TRIGGER {fts}_ai AFTER INSERT ON {content} BEGIN "
        f"INSERT INTO {fts}(rowid, {names}) VALUES (new.rowid, {new}); END",
        f"CREATE TRIGGER {fts}_ad AFTER DELETE ON {content} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, {names}) VALUES ('delete', old.rowid, {old}); END",
        f"CREATE TRIGGER {fts}_au AFTER UPDATE OF {names} ON {content} BEGIN "
        f"INSERT INTO {fts}({fts}, rowid, {names}) VALUES ('delete', old.rowid, {old}); "
        f"INSERT INTO {fts}(rowid, {names}) VALUES (new.rowid, {new}); END",
        f"INSERT INTO {fts}({fts}) VALUES ('rebuild')",
    ]


def upgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        op.execute(POSTGRES_MESSAGE_VECTOR)
        op.execute("CREATE INDEX ix_messages_search ON messages USING gin (search_vector)")
        for name, table, expression in POSTGRES_INDEXES:
            op.execute(
                f"CREATE INDEX {name} ON {table} USING gin (to_tsvector('simple'::regconfig, {expression}))"
            )
        return
    for fts, content, columns in SQLITE_FTS:
        for statement in _sqlite_fts(fts, content, columns):
            op.execute(statement)


def downgrade() -> None:
    if op.get_bind().dialect.name == "postgresql":
        for name, _, _ in POSTGRES_INDEXES:
            op.execute(f"DROP INDEX {name}")
        op.execute("DROP INDEX ix_messages_search")
        op.execute("ALTER TABLE messages DROP COLUMN search_vector")
    else:
        for fts, _, _ in SQLITE_FTS:
            for suffix in ("ai", "ad", "au"):
                op.execute(f"DROP TRIGGER {fts}_{suffix}")
            op.execute(f"DROP TABLE {fts}")
