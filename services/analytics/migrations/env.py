"""Alembic environment of the analytics service; run through ``shared.db.migrate`` or the ``alembic`` CLI."""

from __future__ import annotations

import asyncio

from alembic import context
from sqlalchemy import Connection

from services.analytics.models import VERSION_TABLE, Base
from shared.config import PiazzaSettings
from shared.db import create_engine

config = context.config
target_metadata = Base.metadata


def _configure(connection: Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=target_metadata,
        version_table=config.attributes.get("version_table", VERSION_TABLE),
        render_as_batch=connection.dialect.name == "sqlite",
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


async def _run_standalone() -> None:
    engine = create_engine(PiazzaSettings().resolved_database_url())
    async with engine.begin() as connection:
        await connection.run_sync(_configure)
    await engine.dispose()


connection = config.attributes.get("connection")
if connection is not None:
    _configure(connection)
else:
    asyncio.run(_run_standalone())
