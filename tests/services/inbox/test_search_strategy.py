"""How PostgreSQL searches are told common: the planner's estimate against the table's size.

Runs in a schema of its own holding a ``messages`` table with just a ``search_vector``, so the
statistics are known: the shared test database's messages come and go with the other tests.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncConnection

from services.inbox.repository import search
from shared.config import normalize_database_url
from shared.db import create_engine

_URL = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL") or ""

pytestmark = pytest.mark.skipif(
    not _URL.startswith("postgres"), reason="the estimate is PostgreSQL's (TEST_DATABASE_URL)"
)

ROWS = 4_000


@pytest.fixture
async def connection() -> AsyncIterator[AsyncConnection]:
    """A connection whose ``messages`` are 4,000 rows: ``often`` in every other one, ``seldom`` in
    one, ``never`` in none, and 500 other words in eight each."""
    engine = create_engine(normalize_database_url(_URL))
    schema = f"strategy_{uuid.uuid4().hex[:8]}"
    try:
        async with engine.connect() as connection:
            await connection.execute(text(f'CREATE SCHEMA "{schema}"'))
            await connection.execute(text(f'SET search_path TO "{schema}"'))
            await connection.execute(text("CREATE TABLE messages (search_vector tsvector)"))
            await connection.execute(
                # Besides the three words, 500 others in 0.2 % of the messages each, as a vocabulary
                # has: the statistics then know how rare the words they do not list are.
                text(
                    "INSERT INTO messages SELECT to_tsvector('simple', 'w' || (n % 500) "
                    "|| CASE WHEN n % 2 = 0 THEN ' often' ELSE '' END "
                    "|| CASE WHEN n = 1 THEN ' seldom' ELSE '' END) "
                    "FROM generate_series(1, :rows) AS n"
                ),
                {"rows": ROWS},
            )
            await connection.commit()
            try:
                yield connection
            finally:
                await connection.rollback()
                await connection.execute(text(f'DROP SCHEMA "{schema}" CASCADE'))
                await connection.commit()
    finally:
        await engine.dispose()


async def test_a_table_never_analysed_makes_no_search_common(connection: AsyncConnection) -> None:
    assert await search.common(connection, ["often"]) is False


async def test_words_in_more_than_the_common_share_of_messages_are_common(
    connection: AsyncConnection,
) -> None:
    await connection.execute(text("ANALYZE messages"))

    assert await search.common(connection, ["often"]) is True  # half of the messages
    assert await search.common(connection, ["oft"]) is True  # as a prefix, as searches match
    assert await search.common(connection, ["seldom"]) is False  # one message in 4,000
    assert await search.common(connection, ["never"]) is False
    assert await search.common(connection, ["often", "seldom"]) is False


async def test_the_share_decides(connection: AsyncConnection, monkeypatch: pytest.MonkeyPatch) -> None:
    await connection.execute(text("ANALYZE messages"))
    monkeypatch.setattr(search, "COMMON_SHARE", 0.6)

    assert await search.common(connection, ["often"]) is False  # half is no longer enough


async def test_the_planner_is_asked_once_per_words_and_the_answer_remembered(
    connection: AsyncConnection, monkeypatch: pytest.MonkeyPatch
) -> None:
    await connection.execute(text("ANALYZE messages"))
    asked: list[list[str]] = []
    real = search.common

    async def counting(conn: AsyncConnection, words: list[str]) -> bool:
        asked.append(words)
        return await real(conn, words)

    monkeypatch.setattr(search, "common", counting)
    monkeypatch.setattr(search, "_REMEMBERED", type(search._REMEMBERED)(maxsize=8, ttl=300))

    assert await search.remembered_common(connection, ["often"]) is True
    assert await search.remembered_common(connection, ["often"]) is True
    assert await search.remembered_common(connection, ["seldom"]) is False
    assert await search.remembered_common(connection, ["seldom"]) is False
    assert asked == [["often"], ["seldom"]]
