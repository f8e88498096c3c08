"""The Reddit connector process (``piazza worker reddit``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from services.reddit.config import RedditSettings
from services.reddit.manager import reddit_pollers
from shared.bus.client import Bus
from shared.bus.topology import (
    CHANNEL_HEALTH_BUCKET,
    CHANNELS_BUCKET,
    REDDIT_CURSORS_BUCKET,
    REDDIT_LEASES_BUCKET,
)
from shared.channels import ChannelDirectory, ChannelHealthBoard
from shared.crypto import load_secret_box
from shared.http import Component, build_app, worker_checks
from shared.platforms.reddit.state import CursorStore


def worker_component(settings: RedditSettings | None = None) -> Component:
    """The poller manager as a lifespan, with NATS and manager readiness checks."""
    settings = settings or RedditSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        bus = await Bus.from_settings(settings, name="reddit-connector")
        http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0))
        manager = reddit_pollers(
            bus,
            ChannelDirectory(await bus.key_value(CHANNELS_BUCKET.name), ttl=1.0),
            await bus.key_value(REDDIT_LEASES_BUCKET.name),
            CursorStore(await bus.key_value(REDDIT_CURSORS_BUCKET.name)),
            ChannelHealthBoard(await bus.key_value(CHANNEL_HEALTH_BUCKET.name), component="reddit"),
            load_secret_box(settings),
            http,
            settings,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(manager.run(stop), name="reddit-manager")
        app.state.reddit = (bus, manager, task)
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(task, return_exceptions=True)
            await http.aclose()
            await bus.close()

    return Component(
        name="reddit", routers=[], lifespan=lifespan, checks=worker_checks("reddit", "poller manager")
    )


def create_worker_app(settings: RedditSettings | None = None) -> FastAPI:
    """The connector as an app of its own (``uvicorn --factory services.reddit.app:create_worker_app``)."""
    return build_app("Piazza Reddit connector", [worker_component(settings)])
