"""The analytics API: ``component()`` shares the web process with the inbox API under ``piazza run``."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from sqlalchemy import text

from services.analytics.auth import Identity
from services.analytics.config import AnalyticsSettings
from services.analytics.endpoints import alerts, kpis, reports
from services.analytics.endpoints import settings as settings_endpoints
from services.analytics.state import AnalyticsState
from shared.db import create_engine, read_session_factory, session_factory
from shared.http import Component, build_app
from shared.logging import get_logger

log = get_logger(__name__)


def component(
    settings: AnalyticsSettings | None = None, *, inbox_transport: httpx.AsyncBaseTransport | None = None
) -> Component:
    """The analytics routers and lifespan (``inbox_transport`` reaches the inbox API in process, for
    tests)."""
    settings = settings or AnalyticsSettings()
    settings.check()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.resolved_database_url(), max_connections=10)
        client = httpx.AsyncClient(
            base_url=settings.resolved_inbox_url(),
            transport=inbox_transport,
            timeout=httpx.Timeout(10.0, connect=3.0),
        )
        app.state.analytics = AnalyticsState(
            settings=settings,
            engine=engine,
            sessions=session_factory(engine),
            read_sessions=read_session_factory(engine),
            identity=Identity(client, settings.token_cache_seconds),
        )
        try:
            yield
        finally:
            await client.aclose()
            await engine.dispose()

    async def check_database(app: FastAPI) -> None:
        async with app.state.analytics.engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    return Component(
        name="analytics",
        routers=[kpis.router, settings_endpoints.router, alerts.router, reports.router],
        lifespan=lifespan,
        checks={"database": check_database},
    )


def create_app(settings: AnalyticsSettings | None = None) -> FastAPI:
    """The analytics API on its own (``uvicorn --factory services.analytics.app:create_app``)."""
    return build_app("Piazza analytics", [component(settings)])
