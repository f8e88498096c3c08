"""The Telegram connector process (``piazza worker telegram``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from services.telegram.config import TelegramSettings
from services.telegram.manager import telegram_pollers
from shared.bus.client import Bus
from shared.bus.topology import (
    CHANNEL_HEALTH_BUCKET,
    CHANNELS_BUCKET,
    TELEGRAM_ALIASES_BUCKET,
    TELEGRAM_LEASES_BUCKET,
    TELEGRAM_OFFSETS_BUCKET,
)
from shared.channels import ChannelDirectory, ChannelHealthBoard
from shared.crypto import load_secret_box
from shared.http import Component, build_app, worker_checks
from shared.logging import get_logger
from shared.platforms.telegram.state import AliasStore, OffsetStore

log = get_logger(__name__)


def worker_component(settings: TelegramSettings | None = None) -> Component:
    """The poller manager as a lifespan, with a NATS readiness check."""
    settings = settings or TelegramSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        bus = await Bus.from_settings(settings, name="telegram-connector")
        # The read timeout outlasts the long poll (PTB: read_timeout + timeout).
        http = httpx.AsyncClient(timeout=httpx.Timeout(settings.poll_timeout + 15.0, connect=5.0))
        manager = telegram_pollers(
            bus,
            ChannelDirectory(await bus.key_value(CHANNELS_BUCKET.name), ttl=1.0),
            await bus.key_value(TELEGRAM_LEASES_BUCKET.name),
            AliasStore(await bus.key_value(TELEGRAM_ALIASES_BUCKET.name)),
            OffsetStore(await bus.key_value(TELEGRAM_OFFSETS_BUCKET.name)),
            ChannelHealthBoard(await bus.key_value(CHANNEL_HEALTH_BUCKET.name), component="telegram"),
            load_secret_box(settings),
            http,
            settings,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(manager.run(stop), name="telegram-manager")
        app.state.telegram = (bus, manager, task)
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(task, return_exceptions=True)
            await http.aclose()
            await bus.close()

    return Component(
        name="telegram", routers=[], lifespan=lifespan, checks=worker_checks("telegram", "poller manager")
    )


def create_worker_app(settings: TelegramSettings | None = None) -> FastAPI:
    """The connector as an app of its own (``uvicorn --factory services.telegram.app:create_worker_app``)."""
    return build_app("Piazza Telegram connector", [worker_component(settings)])
