"""The webhook ingress process: ``create_app()`` for it alone, ``component()`` to share a process."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from services.ingress import telegram
from services.ingress.config import IngressSettings
from services.ingress.endpoints import router
from services.ingress.service import WebhookIngress
from services.ingress.telegram import TelegramWebhooks
from shared.bus.client import Bus
from shared.bus.topology import CHANNEL_HEALTH_BUCKET, CHANNELS_BUCKET, TELEGRAM_ALIASES_BUCKET
from shared.channels import ChannelDirectory, ChannelHealthBoard
from shared.crypto import load_secret_box
from shared.http import Component, build_app
from shared.platforms.telegram.state import AliasStore


def component(settings: IngressSettings | None = None) -> Component:
    """The webhook routes, their lifespan and readiness check."""
    settings = settings or IngressSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        bus = await Bus.from_settings(settings, name="ingress")
        directory = ChannelDirectory(await bus.key_value(CHANNELS_BUCKET.name))
        health = ChannelHealthBoard(await bus.key_value(CHANNEL_HEALTH_BUCKET.name), component="ingress")
        box = load_secret_box(settings)
        app.state.ingress = WebhookIngress(bus, directory, health, box, settings)
        app.state.telegram_webhooks = TelegramWebhooks(
            bus,
            directory,
            AliasStore(await bus.key_value(TELEGRAM_ALIASES_BUCKET.name)),
            health,
            box,
            settings,
        )
        app.state.ingress_bus = bus
        try:
            yield
        finally:
            await bus.close()

    async def check_nats(app: FastAPI) -> None:
        bus: Bus = app.state.ingress_bus
        if not bus.is_connected:
            raise ConnectionError("not connected to NATS")
        await bus.nc.flush(timeout=1)

    return Component(
        name="ingress", routers=[router, telegram.router], lifespan=lifespan, checks={"nats": check_nats}
    )


def create_app(settings: IngressSettings | None = None) -> FastAPI:
    """The ingress as an app of its own (``uvicorn --factory services.ingress.app:create_app``)."""
    return build_app("Piazza webhook ingress", [component(settings)])
