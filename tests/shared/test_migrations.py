"""Every service's migrations go up, down and up again on each backend."""

from __future__ import annotations

from typing import Any

import pytest
from sqlalchemy import inspect

from piazza.registry import MIGRATIONS
from shared.db import create_engine
from shared.db.migrate import downgrade, upgrade

pytestmark = pytest.mark.db


_SOME_TABLES = {
    "inbox": {"messages", "conversations", "identities", "contacts", "channels"},
    "analytics": {"analytics_messages", "analytics_conversations", "analytics_hourly", "analytics_incidents"},
}


def _models(service: str) -> Any:
    """The declarative metadata of a service's tables."""
    if service == "inbox":
        from services.inbox.models import Base
    else:
        from services.analytics.models import Base  # type: ignore[assignment]
    return Base.metadata


async def test_migrations_round_trip(empty_database_url: str) -> None:
    assert {m.service for m in MIGRATIONS} == set(_SOME_TABLES)
    engine = create_engine(empty_database_url)
    try:
        for migrations in MIGRATIONS:
            async with engine.connect() as connection:
                others = set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
            await upgrade(engine, migrations.directory, migrations.version_table)
            async with engine.connect() as connection:
                tables = set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
            assert _SOME_TABLES[migrations.service] <= tables
            await downgrade(engine, migrations.directory, migrations.version_table, "base")
            async with engine.connect() as connection:
                left = set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
            assert left <= others | {migrations.version_table}
            await upgrade(engine, migrations.directory, migrations.version_table)
    finally:
        await engine.dispose()


def _not_a_search_structure(obj: object, name: str | None, kind: str, reflected: bool, other: object) -> bool:
    """Full-text search lives in the migrations only: SQLite's FTS5 tables, PostgreSQL's generated
    ``search_vector`` column and GIN indexes (models cannot declare them for both databases)."""
    return not (name and ("_fts" in name or name.endswith("_search") or name == "search_vector"))


async def test_the_migrations_build_exactly_the_models(empty_database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    engine = create_engine(empty_database_url)
    try:
        for migrations in MIGRATIONS:
            await upgrade(engine, migrations.directory, migrations.version_table)
        for migrations in MIGRATIONS:
            metadata = _models(migrations.service)

            def ours(
                obj: object,
                name: str | None,
                kind: str,
                reflected: bool,
                other: object,
                metadata: Any = metadata,
            ) -> bool:
                # Another service's tables (and every version table) share the database.
                if kind == "table" and reflected and other is None and name not in metadata.tables:
                    return False
                return _not_a_search_structure(obj, name, kind, reflected, other)

            async with engine.connect() as connection:
                differences = await connection.run_sync(
                    lambda c, m=metadata, include=ours: compare_metadata(
                        MigrationContext.configure(c, opts={"compare_type": True, "include_object": include}),
                        m,
                    )
                )
            assert _without_sqlite_column_fks(differences) == [], migrations.service
    finally:
        await engine.dispose()


def _fk_key(constraint: Any) -> tuple[str, tuple[str, ...], str]:
    return (
        constraint.table.name,
        tuple(c.name for c in constraint.columns),
        constraint.elements[0].column.table.name,
    )


def _without_sqlite_column_fks(differences: list[Any]) -> list[Any]:
    """SQLite cannot add a constraint to a table, so migrations declare a new column's foreign key with
    the column (``ADD COLUMN ... REFERENCES ... ON DELETE ...``); SQLAlchemy reflects such a key without
    its name and ON DELETE (it parses only table-level constraints), although SQLite enforces both. A
    reflected nameless key matching a model key on the same columns and table is that case."""
    removed = {_fk_key(d[1]) for d in differences if d[0] == "remove_fk" and d[1].name is None}
    added = {_fk_key(d[1]) for d in differences if d[0] == "add_fk"}
    same = removed & added
    return [d for d in differences if not (d[0] in ("remove_fk", "add_fk") and _fk_key(d[1]) in same)]


async def test_a_store_with_data_upgrades_and_keeps_it(empty_database_url: str) -> None:
    """Upgrading an installation that already holds conversations (not only an empty database)."""
    import uuid
    from datetime import UTC, datetime

    from sqlalchemy import Connection, select

    from services.inbox.models import VERSION_TABLE, Base, Conversation, Message

    [inbox] = [m for m in MIGRATIONS if m.service == "inbox"]
    engine = create_engine(empty_database_url)
    now = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    ids = {name: uuid.uuid4() for name in ("workspace", "token", "channel", "conversation", "message")}

    def seed(connection: Connection) -> None:
        # The models' tables bind values as the store expects; only columns 0004 had are given.
        def insert(table: str, **values: object) -> None:
            connection.execute(Base.metadata.tables[table].insert().values(**values))

        insert("workspaces", id=ids["workspace"], name="w", created_at=now)
        insert(
            "api_tokens", id=ids["token"], workspace_id=ids["workspace"], name="t", role="admin",
            token_hash="h" * 64, hint="abcd", created_at=now,
        )  # fmt: skip
        insert(
            "channels", id=ids["channel"], workspace_id=ids["workspace"], type="webhook", name="c",
            status="active", config={}, secrets=[], created_at=now, updated_at=now,
        )  # fmt: skip
        insert(
            "conversations", id=ids["conversation"], workspace_id=ids["workspace"], channel_id=ids["channel"],
            external_id="t", status="open", last_activity_at=now, activity_confirmed=True, version=1,
            created_at=now, updated_at=now,
        )  # fmt: skip
        insert(
            "messages", id=ids["message"], workspace_id=ids["workspace"], channel_id=ids["channel"],
            conversation_id=ids["conversation"], external_id="m", direction="inbound", text="hello",
            attachments=[], occurred_at=now, received_seq=1, original_saved=False, meta={},
            created_at=now, updated_at=now,
        )  # fmt: skip

    try:
        await upgrade(engine, inbox.directory, VERSION_TABLE, "0004")
        async with engine.begin() as connection:
            await connection.run_sync(seed)
        await upgrade(engine, inbox.directory, VERSION_TABLE)
        async with engine.connect() as connection:
            conversation = (await connection.execute(select(Conversation))).one()
            assert conversation.last_inbound_at == now
            assert conversation.status_changed_at == now
            assert (await connection.execute(select(Message.text))).scalar_one() == "hello"
            assert (conversation.last_message_preview, conversation.labels_json) == ("hello", "[]")
    finally:
        await engine.dispose()


async def test_0010_and_0011_derive_the_list_columns_of_stored_conversations(empty_database_url: str) -> None:
    """Previews and labels come onto conversations stored before 0010, as the repository derives them;
    labels stored before 0011 take their conversation's activity and priority."""
    import uuid
    from datetime import UTC, datetime, timedelta

    import orjson
    from sqlalchemy import Connection, select

    from services.inbox.models import VERSION_TABLE, Base, Conversation, ConversationLabel

    [inbox] = [m for m in MIGRATIONS if m.service == "inbox"]
    engine = create_engine(empty_database_url)
    now = datetime(2026, 11, 1, 9, 0, tzinfo=UTC)
    workspace, channel = uuid.uuid4(), uuid.uuid4()
    texts, media, silent = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    labels = {"zeta": uuid.uuid4(), "alpha": uuid.uuid4()}

    def seed(connection: Connection) -> None:
        def insert(table: str, **values: object) -> None:
            connection.execute(Base.metadata.tables[table].insert().values(**values))

        def message(conversation: uuid.UUID, number: int, **values: object) -> None:
            insert(
                "messages", id=uuid.uuid4(), workspace_id=workspace, channel_id=channel,
                conversation_id=conversation, external_id=f"m{number}", occurred_at=now + timedelta(minutes=number),
                received_seq=number, original_saved=False, meta={}, created_at=now, updated_at=now,
                **{"direction": "inbound", "text": None, "attachments": [], **values},
            )  # fmt: skip

        insert("workspaces", id=workspace, name="w", created_at=now)
        insert(
            "channels", id=channel, workspace_id=workspace, type="webhook", name="c", status="active",
            config={}, secrets=[], created_at=now, updated_at=now,
        )  # fmt: skip
        for conversation in (texts, media, silent):
            insert(
                "conversations", id=conversation, workspace_id=workspace, channel_id=channel,
                external_id=str(conversation), status="open", activity_confirmed=True, version=1,
                created_at=now, updated_at=now,
                **({"last_activity_at": now + timedelta(minutes=3), "priority": "high"} if conversation == texts
                   else {"last_activity_at": now}),
            )  # fmt: skip
        for name, label in labels.items():
            insert(
                "labels", id=label, workspace_id=workspace, name=name, color="#00ff00" if name == "zeta" else None,
                created_at=now, updated_at=now,
            )  # fmt: skip
            insert("conversation_labels", conversation_id=texts, label_id=label)
        # The newest visible message: not the later note, not the later deleted one; cut to 280.
        message(texts, 1, text="x" * 300)
        message(texts, 2, text="a note", direction="note")
        message(texts, 3, text="deleted", deleted_at=now)
        message(media, 4, attachments=[{"type": "photo", "url": "https://example.com/a.jpg"}])
        message(silent, 5, text="gone", deleted_at=now)

    try:
        await upgrade(engine, inbox.directory, VERSION_TABLE, "0009")
        async with engine.begin() as connection:
            await connection.run_sync(seed)
        await upgrade(engine, inbox.directory, VERSION_TABLE)
        async with engine.connect() as connection:
            rows = await connection.execute(
                select(Conversation.id, Conversation.last_message_preview, Conversation.labels_json)
            )
            found = {row.id: (row.last_message_preview, orjson.loads(row.labels_json)) for row in rows}
            copies = (
                await connection.execute(
                    select(
                        ConversationLabel.conversation_id,
                        ConversationLabel.last_activity_at,
                        ConversationLabel.priority,
                    )
                )
            ).all()
    finally:
        await engine.dispose()
    assert found == {
        texts: (
            "x" * 280,
            [
                {"id": str(labels["alpha"]), "name": "alpha", "color": None},
                {"id": str(labels["zeta"]), "name": "zeta", "color": "#00ff00"},
            ],
        ),
        media: ("[photo]", []),
        silent: (None, []),
    }
    assert sorted(copies) == [(texts, now + timedelta(minutes=3), "high")] * 2
