"""The inbox API process: ``create_app()`` for it alone, ``component()`` to share a process."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from cachetools import TTLCache
from fastapi import FastAPI
from sqlalchemy import text

from services.inbox.config import InboxSettings
from services.inbox.endpoints import (
    channels,
    contacts,
    conversations,
    files,
    labels,
    outbound,
    people,
    saved_replies,
    sentiment,
    stream,
    teams,
    webhooks,
    workflow,
)
from services.inbox.service import access
from services.inbox.service import channels as channel_service
from services.inbox.state import InboxState
from shared.bus.client import Bus
from shared.bus.topology import CHANNEL_HEALTH_BUCKET, CHANNELS_BUCKET
from shared.channels import ChannelDirectory, ChannelHealthBoard
from shared.crypto import load_secret_box
from shared.db import create_engine, read_session_factory, session_factory
from shared.events import utcnow
from shared.http import Component, build_app
from shared.logging import get_logger

log = get_logger(__name__)


def component(settings: InboxSettings | None = None) -> Component:
    """The inbox API's routers, lifespan and readiness checks."""
    settings = settings or InboxSettings()
    settings.check()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.resolved_database_url(), parallel_plans=False)
        bus = await Bus.from_settings(settings, name="inbox-api")
        state = InboxState(
            settings=settings,
            engine=engine,
            sessions=session_factory(engine),
            read_sessions=read_session_factory(engine),
            bus=bus,
            directory=ChannelDirectory(await bus.key_value(CHANNELS_BUCKET.name)),
            health_board=ChannelHealthBoard(
                await bus.key_value(CHANNEL_HEALTH_BUCKET.name), component="inbox"
            ),
            box=load_secret_box(settings),
            principals=TTLCache(maxsize=10_000, ttl=settings.token_cache_seconds or 1e-9),
            http=httpx.AsyncClient(timeout=httpx.Timeout(15.0, connect=5.0)),
        )
        if settings.bootstrap_token is not None:
            async with state.transaction() as session:
                await access.ensure_bootstrap_user(session, utcnow())
        published = await _publish_directory(state)
        log.info("inbox.api.started", channels_published=published)
        app.state.inbox = state
        refresher = asyncio.create_task(_refresh_directory(state), name="directory-refresh")
        try:
            yield
        finally:
            refresher.cancel()
            await asyncio.gather(refresher, return_exceptions=True)
            await bus.close()
            await state.http.aclose()
            await engine.dispose()

    return Component(
        name="inbox",
        routers=[
            channels.router,
            conversations.router,
            workflow.router,
            sentiment.router,
            contacts.router,
            saved_replies.router,
            files.router,
            outbound.router,
            people.router,
            teams.router,
            labels.router,
            stream.router,
            webhooks.router,
        ],
        lifespan=lifespan,
        checks={"database": _check_database, "nats": _check_nats},
    )


async def _publish_directory(state: InboxState) -> int:
    async with state.reading() as session:
        return await channel_service.publish_directory(session, state.directory)


async def _refresh_directory(state: InboxState) -> None:
    """Republish every channel now and then, so a directory write lost to an outage heals itself."""
    while True:
        await asyncio.sleep(state.settings.directory_refresh_seconds)
        try:
            await _publish_directory(state)
        except Exception as exc:  # a failed refresh is retried at the next interval
            log.warning("inbox.directory.refresh_failed", error=f"{type(exc).__name__}: {exc}")


async def _check_database(app: FastAPI) -> None:
    state: InboxState = app.state.inbox
    async with state.engine.connect() as connection:
        await connection.execute(text("SELECT 1"))


async def _check_nats(app: FastAPI) -> None:
    state: InboxState = app.state.inbox
    if not state.bus.is_connected:
        raise ConnectionError("not connected to NATS")
    await state.bus.nc.flush(timeout=1)


def create_app(settings: InboxSettings | None = None) -> FastAPI:
    """The inbox API as an app of its own (``uvicorn --factory services.inbox.app:create_app``)."""
    return build_app("Piazza inbox API", [component(settings)])
