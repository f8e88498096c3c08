"""The analytics worker (``piazza worker analytics``): domain events into facts and rollups, crisis
detection as they arrive and on a clock, the outbox sweep and scheduled reports.

Like every worker it is a small ASGI app whose lifespan runs the loops, so it shares health,
readiness, metrics and graceful shutdown with the other processes.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from prometheus_client import Counter, Histogram
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.analytics import outbox
from services.analytics.config import AnalyticsSettings
from services.analytics.facts import Fact, facts_of
from services.analytics.service import alerts, reports
from services.analytics.service.ingest import Touched, store_facts
from shared.bus.client import Bus
from shared.bus.consumer import BatchConsumer, BatchHandler, Delivery
from shared.bus.topology import ANALYTICS_DOMAIN
from shared.db import create_engine, is_transient_db_error, session_factory
from shared.events import utcnow
from shared.events.domain import DomainEvent
from shared.http import Component, build_app, worker_checks
from shared.logging import get_logger
from shared.process import exit_when_crashed

log = get_logger(__name__)

FACTS = Counter("piazza_analytics_facts_total", "Facts analytics stored from domain events", ["kind"])
BATCH_SECONDS = Histogram(
    "piazza_analytics_batch_seconds",
    "Time to store one batch of domain events into facts and rollups, commit included",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

AfterBatch = Callable[[Touched], Awaitable[None]]


def facts_handler(
    sessions: async_sessionmaker[AsyncSession],
    settings: AnalyticsSettings,
    after: AfterBatch | None = None,
) -> BatchHandler:
    """Store each batch's facts in one transaction; then let ``after`` look at what it touched."""

    async def handle(batch: Sequence[Delivery]) -> Mapping[int, str]:
        started = time.perf_counter()
        facts: list[Fact] = []
        for delivery in batch:
            if isinstance(delivery.event, DomainEvent):
                facts.extend(facts_of(delivery.event))
        async with sessions() as session, session.begin():
            touched = await store_facts(session, facts, bucket_seconds=settings.bucket_seconds)
        for fact in facts:
            FACTS.labels(type(fact).__name__).inc()
        BATCH_SECONDS.observe(time.perf_counter() - started)
        if after is not None and touched.buckets:
            try:
                await after(touched)
            except Exception as exc:  # stored: the clock's next check looks again
                log.warning("analytics.detect.failed", error=f"{type(exc).__name__}: {exc}")
        return {}

    return handle


def worker_component(settings: AnalyticsSettings | None = None) -> Component:
    """The analytics worker's loops as a lifespan, with database, NATS and loop readiness checks."""
    settings = settings or AnalyticsSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        engine = create_engine(settings.resolved_database_url(), max_connections=6)
        sessions = session_factory(engine)
        bus = await Bus.from_settings(settings, name="analytics-worker")

        async def detect_touched(touched: Touched) -> None:
            channels = {
                (w, c) for w, c, start in touched.buckets if alerts.is_recent(start, settings, utcnow())
            }
            if channels:
                await alerts.detect(sessions, bus, settings, channels, utcnow())

        consumer = BatchConsumer(
            bus,
            ANALYTICS_DOMAIN,
            facts_handler(sessions, settings, detect_touched),
            is_transient=is_transient_db_error,
            batch_size=settings.batch_size,
        )
        stop = asyncio.Event()
        loops = [
            consumer.run(stop),
            outbox.sweep(sessions, bus, stop),
            alerts.watch(sessions, bus, settings, stop),
            reports.schedule(sessions, bus, settings, stop),
        ]
        task = asyncio.create_task(_run_all(loops), name="analytics-worker")
        task.add_done_callback(exit_when_crashed("analytics.worker.crashed"))
        app.state.analytics_worker = (bus, engine, task)  # worker_checks: bus first, task last
        try:
            yield
        finally:
            stop.set()
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=30)
            except Exception as exc:  # logged by the callback, or the wait timed out
                log.warning("analytics.worker.stop_incomplete", error=repr(exc))
            await bus.close()
            await engine.dispose()

    async def check_database(app: FastAPI) -> None:
        async with app.state.analytics_worker[1].connect() as connection:
            await connection.execute(text("SELECT 1"))

    return Component(
        name="analytics-worker",
        routers=[],
        lifespan=lifespan,
        checks={"database": check_database, **worker_checks("analytics_worker", "analytics worker consumer")},
    )


async def _run_all(loops: Sequence[Coroutine[Any, Any, None]]) -> None:
    async with asyncio.TaskGroup() as group:
        for loop in loops:
            group.create_task(loop)


def create_worker_app(settings: AnalyticsSettings | None = None) -> FastAPI:
    """The analytics worker process on its own."""
    return build_app("Piazza analytics worker", [worker_component(settings)])
