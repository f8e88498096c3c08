"""The outgoing webhook worker (``piazza worker webhooks``): domain events to signed HTTP deliveries.

Two loops share the process:

* a durable consumer of the ``DOMAIN`` stream writes one delivery row per matching subscription and
  acks after the commit (a redelivered event adds nothing: the (subscription, event) key decides);
* a dispatcher leases due deliveries, POSTs them signed per Standard Webhooks, logs each attempt and
  schedules the next one. Each subscription has a bound on requests in flight and each request a
  timeout, so a slow or dead endpoint holds only its own slots: other subscribers, and ingestion
  (which never waits on this process), go on at full speed. Replicas share the work through leases
  taken in a transaction (``FOR UPDATE SKIP LOCKED`` on PostgreSQL; SQLite has one writer).

Delivery is at least once: a worker that dies after the request but before logging it leaves the
lease to lapse, and the delivery is attempted again with the same ``webhook-id``.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator, Callable, Mapping, Sequence
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.inbox.config import InboxSettings
from services.inbox.deliveries.dispatcher import Dispatcher
from services.inbox.deliveries.metrics import DELIVERIES
from services.inbox.deliveries.sender import PrivateDestination, Resolver, Sender, resolve_host
from services.inbox.service import webhooks as service
from services.inbox.service.webhooks import RetryPolicy
from shared.bus.client import Bus
from shared.bus.consumer import BatchConsumer, BatchHandler, Delivery
from shared.bus.topology import WEBHOOKS_DOMAIN
from shared.crypto import load_secret_box
from shared.db import create_engine, is_transient_db_error, session_factory
from shared.events import utcnow
from shared.events.domain import DomainEvent
from shared.http import Component, build_app
from shared.logging import get_logger
from shared.process import exit_when_crashed

__all__ = [
    "Dispatcher",
    "PrivateDestination",
    "Resolver",
    "Sender",
    "create_worker_app",
    "fan_out_handler",
    "resolve_host",
    "worker_component",
]

log = get_logger(__name__)


def fan_out_handler(sessions: async_sessionmaker[AsyncSession], wake: Callable[[], None]) -> BatchHandler:
    """Turn each batch of domain events into deliveries, in one transaction."""

    async def handle(batch: Sequence[Delivery]) -> Mapping[int, str]:
        refused: dict[int, str] = {}
        events: list[DomainEvent] = []
        for index, delivery in enumerate(batch):
            if isinstance(delivery.event, DomainEvent):
                events.append(delivery.event)
            else:
                refused[index] = f"outgoing webhooks carry domain events, not {delivery.event.type}"
        async with sessions() as session, session.begin():
            created = await service.fan_out(session, events, utcnow())
        if created:
            DELIVERIES.labels("created").inc(created)
            wake()
        return refused

    return handle


def worker_component(settings: InboxSettings | None = None) -> Component:
    """The domain-event consumer and the dispatcher as a lifespan, with readiness checks."""
    settings = settings or InboxSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.resolved_database_url(), max_connections=8)
        sessions = session_factory(engine)
        bus = await Bus.from_settings(settings, name="webhooks")
        timeout = settings.webhook_timeout_seconds
        http = httpx.AsyncClient(
            timeout=httpx.Timeout(timeout),
            limits=httpx.Limits(max_connections=settings.webhook_concurrency, max_keepalive_connections=20),
            follow_redirects=False,
        )
        dispatcher = Dispatcher(
            sessions,
            load_secret_box(settings),
            Sender(
                http,
                timeout=timeout,
                allow_private=service.private_urls_allowed(settings.webhook_allow_private_urls, settings.env),
            ),
            RetryPolicy(
                settings.webhook_retry_schedule, settings.webhook_retry_scale, settings.webhook_retry_jitter
            ),
            concurrency=settings.webhook_concurrency,
            per_subscription=settings.webhook_subscription_concurrency,
            poll_seconds=settings.webhook_poll_seconds,
            lease_seconds=timeout + 30.0,
        )
        consumer = BatchConsumer(
            bus,
            WEBHOOKS_DOMAIN,
            fan_out_handler(sessions, dispatcher.wake),
            is_transient=is_transient_db_error,
            batch_size=settings.batch_size,
        )
        stop = asyncio.Event()
        task = asyncio.create_task(_run_both(consumer, dispatcher, stop), name="webhooks")
        task.add_done_callback(exit_when_crashed("inbox.webhooks.crashed"))
        app.state.webhooks = (engine, bus, task)
        try:
            yield
        finally:
            stop.set()
            with contextlib.suppress(Exception):  # a crash was logged when it happened
                await asyncio.wait_for(asyncio.shield(task), timeout=timeout + 15)
            await http.aclose()
            await bus.close()
            await engine.dispose()

    async def check_database(app: FastAPI) -> None:
        async with app.state.webhooks[0].connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def check_nats(app: FastAPI) -> None:
        if not app.state.webhooks[1].is_connected:
            raise ConnectionError("not connected to NATS")

    async def check_running(app: FastAPI) -> None:
        if app.state.webhooks[2].done():
            raise RuntimeError("the webhook worker stopped")

    return Component(
        name="webhooks",
        routers=[],
        lifespan=lifespan,
        checks={"database": check_database, "nats": check_nats, "worker": check_running},
    )


async def _run_both(consumer: BatchConsumer, dispatcher: Dispatcher, stop: asyncio.Event) -> None:
    """The consumer and the dispatcher, until stopped (one failing stops both)."""
    async with asyncio.TaskGroup() as group:
        group.create_task(consumer.run(stop))
        group.create_task(dispatcher.run(stop))


def create_worker_app(settings: InboxSettings | None = None) -> FastAPI:
    """The webhook worker as an app of its own (``uvicorn --factory services.inbox.deliveries:create_worker_app``)."""
    return build_app("Piazza outgoing webhooks", [worker_component(settings)])
