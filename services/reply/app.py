"""The reply service process (``piazza worker reply``)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI

from services.reply.config import ReplySettings
from services.reply.limits import SendLimits
from services.reply.reddit import RedditSender
from services.reply.service import ReplyWorker
from services.reply.telegram import TelegramSender
from shared.bus.client import Bus
from shared.bus.consumer import BatchConsumer
from shared.bus.topology import CHANNELS_BUCKET, REPLY_COMMANDS, SEND_ATTEMPTS_BUCKET
from shared.channels import ChannelDirectory
from shared.crypto import load_secret_box
from shared.http import Component, build_app, worker_checks


def worker_component(settings: ReplySettings | None = None) -> Component:
    """The command consumer as a lifespan, with a NATS readiness check."""
    settings = settings or ReplySettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        bus = await Bus.from_settings(settings, name="reply")
        http = httpx.AsyncClient(timeout=httpx.Timeout(30.0, connect=5.0))
        worker = ReplyWorker(
            bus,
            ChannelDirectory(await bus.key_value(CHANNELS_BUCKET.name)),
            await bus.key_value(SEND_ATTEMPTS_BUCKET.name),
            load_secret_box(settings),
            TelegramSender(http, settings, SendLimits(settings)),
            RedditSender(http, settings),
        )
        consumer = BatchConsumer(bus, REPLY_COMMANDS, worker, batch_size=settings.batch_size)
        stop = asyncio.Event()
        task = asyncio.create_task(consumer.run(stop), name="reply-consumer")
        app.state.reply = (bus, task)
        try:
            yield
        finally:
            stop.set()
            await asyncio.gather(task, return_exceptions=True)
            await http.aclose()
            await bus.close()

    return Component(name="reply", routers=[], lifespan=lifespan, checks=worker_checks("reply", "consumer"))


def create_worker_app(settings: ReplySettings | None = None) -> FastAPI:
    """The reply service as an app of its own (``uvicorn --factory services.reply.app:create_worker_app``)."""
    return build_app("Piazza reply service", [worker_component(settings)])
