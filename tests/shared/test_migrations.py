"""Every service's migrations go up, down and up again on each backend."""

from __future__ import annotations

import pytest
from sqlalchemy import inspect

from piazza.registry import MIGRATIONS
from shared.db import create_engine
from shared.db.migrate import downgrade, upgrade

pytestmark = pytest.mark.db


async def test_migrations_round_trip(empty_database_url: str) -> None:
    engine = create_engine(empty_database_url)
    try:
        for migrations in MIGRATIONS:
            await upgrade(engine, migrations.directory, migrations.version_table)
            async with engine.connect() as connection:
                tables = set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
            assert {"messages", "conversations", "identities", "contacts", "channels"} <= tables
            await downgrade(engine, migrations.directory, migrations.version_table, "base")
            async with engine.connect() as connection:
                left = set(await connection.run_sync(lambda c: inspect(c).get_table_names()))
            assert left <= {migrations.version_table}
            await upgrade(engine, migrations.directory, migrations.version_table)
    finally:
        await engine.dispose()


async def test_the_migrations_build_exactly_the_models(empty_database_url: str) -> None:
    from alembic.autogenerate import compare_metadata
    from alembic.migration import MigrationContext

    from services.inbox.models import VERSION_TABLE, Base

    engine = create_engine(empty_database_url)
    try:
        for migrations in MIGRATIONS:
            await upgrade(engine, migrations.directory, migrations.version_table)
        async with engine.connect() as connection:
            differences = await connection.run_sync(
                lambda c: compare_metadata(
                    MigrationContext.configure(c, opts={"compare_type": True}), Base.metadata
                )
            )
    finally:
        await engine.dispose()
    # Only the version table (Alembic's own) is in the database and not in the models.
    assert [d for d in differences if not (d[0] == "remove_table" and d[1].name == VERSION_TABLE)] == []
