"""Async engines for SQLite (embedded default) and PostgreSQL (production)."""

from __future__ import annotations

from typing import Any

import orjson
from sqlalchemy import event
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine


def _json_dumps(value: Any) -> str:
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# JSON columns (attachments, meta, labels on a list page) read and written with orjson: the standard
# library's decoder was a visible share of a conversation list's CPU.
_JSON: dict[str, Any] = {"json_serializer": _json_dumps, "json_deserializer": orjson.loads}


def create_engine(
    url: str,
    *,
    max_connections: int = 20,
    echo: bool = False,
    parallel_plans: bool = True,
) -> AsyncEngine:
    """An engine configured for its backend (statement parameters, i.e. message text, are kept out of
    error messages and so out of logs).

    PostgreSQL connections are opened as needed, up to ``max_connections``, and kept: a pool with
    overflow closes each extra connection when it is returned, so under a steady load above the pool
    size every few requests paid for a new connection (and the server for a new backend process).

    SQLite runs in WAL mode (readers never block the writer) with a busy timeout. Transactions take
    the write lock up front (``BEGIN IMMEDIATE``), so two writers, in one process or several, queue
    on the busy timeout instead of failing with "database is locked" when a read lock cannot be
    upgraded; reads go through :func:`read_session_factory` and take no transaction at all.

    ``parallel_plans=False`` keeps PostgreSQL from running a statement on parallel workers: for an
    API answering pages by index, starting them costs more than they save (5-10 ms on a conversation
    list page whose size the planner overestimated), and under concurrent requests they take the
    cores the other requests need.
    """
    parsed = make_url(url)
    if parsed.get_backend_name() == "sqlite":
        if parsed.database and parsed.database != ":memory:":
            from pathlib import Path

            Path(parsed.database).parent.mkdir(parents=True, exist_ok=True)
        engine = create_async_engine(url, echo=echo, hide_parameters=True, **_JSON)
        _configure_sqlite(engine)
        return engine
    # No pre-ping: it costs a round trip on every checkout. A connection the server dropped fails
    # one statement instead; SQLAlchemy then discards the pool's stale connections, and the error is
    # transient (a 503 to an API caller, a retry for a consumer).
    # JIT compilation pays off for long analytical scans, not for the short indexed statements the
    # API and workers run: on the inbox list with a full-text filter it cost 45-65 ms per query.
    settings = {"jit": "off"}
    if not parallel_plans:
        settings["max_parallel_workers_per_gather"] = "0"
    return create_async_engine(
        url,
        echo=echo,
        pool_size=max_connections,
        max_overflow=0,
        pool_recycle=1800,
        hide_parameters=True,
        connect_args={"server_settings": settings},
        **_JSON,
    )


def _configure_sqlite(engine: AsyncEngine) -> None:
    @event.listens_for(engine.sync_engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy, not the driver, decide when a transaction begins (see the "begin" hook).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        for pragma in (
            "journal_mode=WAL",
            "synchronous=NORMAL",
            "foreign_keys=ON",
            "busy_timeout=30000",
        ):
            cursor.execute(f"PRAGMA {pragma}")
        cursor.close()

    @event.listens_for(engine.sync_engine, "begin")
    def _on_begin(connection: Any) -> None:
        if connection.get_execution_options().get("isolation_level") != "AUTOCOMMIT":
            connection.exec_driver_sql("BEGIN IMMEDIATE")


def session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions that keep loaded objects usable after commit."""
    return async_sessionmaker(engine, expire_on_commit=False, autoflush=False)


def read_engine(engine: AsyncEngine) -> AsyncEngine:
    """The engine's connections for reads only: each statement runs on its own, with no BEGIN/COMMIT
    round trips (same pool)."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def read_session_factory(engine: AsyncEngine) -> async_sessionmaker[AsyncSession]:
    """Sessions for requests that only read (:func:`read_engine`). Use them where one statement
    answers, or where statements need not agree."""
    return async_sessionmaker(read_engine(engine), expire_on_commit=False, autoflush=False)
