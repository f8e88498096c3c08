"""Run a service's Alembic migrations from code (start-up, ``piazza migrate``, test fixtures).

Each service keeps its own history in ``services/<name>/migrations`` with its own version table, so
services never share a migration chain. On PostgreSQL an advisory lock serialises replicas that
start at once.
"""

from __future__ import annotations

import asyncio
import zlib
from pathlib import Path

from alembic import command
from alembic.config import Config
from sqlalchemy import Connection, MetaData, text
from sqlalchemy.ext.asyncio import AsyncEngine


def alembic_config(migrations_dir: Path, version_table: str) -> Config:
    """The Alembic configuration of one service's migration folder."""
    config = Config()
    config.set_main_option("script_location", str(migrations_dir))
    config.attributes["version_table"] = version_table
    return config


async def upgrade(
    engine: AsyncEngine, migrations_dir: Path, version_table: str, revision: str = "head"
) -> None:
    """Bring a service's tables up to ``revision`` on the engine's database."""
    config = alembic_config(migrations_dir, version_table)
    async with engine.begin() as connection:
        await connection.run_sync(_upgrade, config, revision, version_table)


async def downgrade(engine: AsyncEngine, migrations_dir: Path, version_table: str, revision: str) -> None:
    """Take a service's tables back to ``revision`` (``base`` removes them)."""
    config = alembic_config(migrations_dir, version_table)
    async with engine.begin() as connection:
        await connection.run_sync(_run, config, lambda: command.downgrade(config, revision), version_table)


def _upgrade(connection: Connection, config: Config, revision: str, version_table: str) -> None:
    _run(connection, config, lambda: command.upgrade(config, revision), version_table)


def _run(connection: Connection, config: Config, action: object, version_table: str) -> None:
    config.attributes["connection"] = connection
    if connection.dialect.name == "postgresql":
        connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": _lock_key(version_table)})
    assert callable(action)
    action()


def _lock_key(name: str) -> int:
    return zlib.crc32(f"piazza-migrate:{name}".encode())


def run_environment(target_metadata: MetaData, default_version_table: str) -> None:
    """The body of a service's Alembic ``env.py``: migrate on the connection :func:`upgrade` hands
    over, or, run from the ``alembic`` command line, on ``DATABASE_URL``."""
    from alembic import context

    from shared.config import PiazzaSettings
    from shared.db.engine import create_engine

    config = context.config

    def configure(connection: Connection) -> None:
        context.configure(
            connection=connection,
            target_metadata=target_metadata,
            version_table=config.attributes.get("version_table", default_version_table),
            render_as_batch=connection.dialect.name == "sqlite",
            compare_type=True,
        )
        with context.begin_transaction():
            context.run_migrations()

    async def standalone() -> None:
        engine = create_engine(PiazzaSettings().resolved_database_url())
        async with engine.begin() as connection:
            await connection.run_sync(configure)
        await engine.dispose()

    connection = config.attributes.get("connection")
    if connection is not None:
        configure(connection)
    else:
        asyncio.run(standalone())
