"""The inbox consumer: inbound events from JetStream into the conversation store.

It runs as its own process (``piazza worker inbox``): a small ASGI app whose lifespan runs the
consumer, so it shares the health, readiness and metrics endpoints and the graceful shutdown of every
other Piazza process. SIGTERM finishes the batch in hand, acks it, drains NATS and exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Coroutine, Mapping, Sequence
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI
from prometheus_client import Counter, Histogram
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.inbox.config import InboxSettings
from services.inbox.outbox import publish_outbox, sweep
from services.inbox.service import workflow
from services.inbox.service.ingest import IngestMemory, store_events
from services.inbox.service.outbound import apply_outcome
from shared.bus.client import Bus, BusUnavailable
from shared.bus.consumer import BatchConsumer, BatchHandler, Delivery
from shared.bus.topology import INBOX_INBOUND, INBOX_OUTCOMES
from shared.db import create_engine, is_transient_db_error, read_session_factory, session_factory
from shared.events import (
    MessageDeleted,
    MessageEdited,
    MessageReceived,
    ReactionChanged,
    ThreadChanged,
    utcnow,
)
from shared.events.commands import ModerationCompleted, ReplyFailed, ReplySent
from shared.events.registry import InboundFact
from shared.http import Component, build_app
from shared.logging import get_logger
from shared.process import exit_when_crashed
from shared.sentiment import SentimentAnalyzer

log = get_logger(__name__)

STORED = Counter("piazza_events_stored_total", "Inbound events written to the conversation store", ["type"])
BATCH_SECONDS = Histogram(
    "piazza_inbox_batch_seconds",
    "Time to store one batch, commit included",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5),
)

_INBOUND_TYPES = (MessageReceived, MessageEdited, MessageDeleted, ReactionChanged, ThreadChanged)


def ingest_handler(
    sessions: async_sessionmaker[AsyncSession],
    bus: Bus | None = None,
    read_sessions: async_sessionmaker[AsyncSession] | None = None,
    analyzer: SentimentAnalyzer | None = None,
) -> BatchHandler:
    """Store each batch in one transaction; refuse events that are not inbound messages.

    With a ``bus``, the batch's domain events are published after the commit and before the batch is
    acknowledged: a crash in between redelivers the batch, which publishes them again under the same
    ids (dropped by JetStream as duplicates). With an ``analyzer``, inbound texts are scored.
    """
    memory = IngestMemory()

    async def handle(batch: Sequence[Delivery]) -> Mapping[int, str]:
        started = time.perf_counter()
        refused: dict[int, str] = {}
        events: list[tuple[InboundFact, int]] = []
        positions: list[int] = []
        for index, delivery in enumerate(batch):
            if isinstance(delivery.event, _INBOUND_TYPES):
                events.append((delivery.event, delivery.stream_sequence))
                positions.append(index)
            else:
                refused[index] = f"the inbox does not store {delivery.event.type} events"
        try:
            async with sessions() as session, session.begin():
                stored = await store_events(session, events, utcnow(), memory, analyzer)
        except BaseException:
            memory.forget()
            raise
        memory.remember(stored.plan, stored.workspaces)
        if bus is not None:
            await bus.publish_encoded(stored.received_events())
            if stored.outbox_ids:
                await publish_outbox(sessions, read_sessions or sessions, bus, ids=stored.outbox_ids)
        refused.update({positions[i]: reason for i, reason in stored.refused.items()})
        for index, delivery in enumerate(batch):
            if index not in refused:
                STORED.labels(delivery.event.type).inc()
        BATCH_SECONDS.observe(time.perf_counter() - started)
        return refused

    return handle


_OUTCOME_TYPES = (ReplySent, ReplyFailed, ModerationCompleted)


def outcome_handler(
    sessions: async_sessionmaker[AsyncSession],
    bus: Bus | None = None,
    read_sessions: async_sessionmaker[AsyncSession] | None = None,
) -> BatchHandler:
    """Record what the reply service reports, a batch per transaction; with a ``bus``, publish the
    domain events it queued (reply sent or failed) right after the commit."""

    async def handle(batch: Sequence[Delivery]) -> Mapping[int, str]:
        refused: dict[int, str] = {}
        announced: list[str] = []
        async with sessions() as session, session.begin():
            now = utcnow()
            for index, delivery in enumerate(batch):
                if isinstance(delivery.event, _OUTCOME_TYPES):
                    announced += await apply_outcome(session, delivery.event, now)
                else:
                    refused[index] = f"the inbox does not record {delivery.event.type} outcomes"
        if bus is not None and announced:
            try:
                await publish_outbox(sessions, read_sessions or sessions, bus, ids=announced)
            except BusUnavailable as exc:  # committed: the outbox sweep publishes them later
                log.warning("inbox.outbox.deferred", count=len(announced), error=str(exc))
        return refused

    return handle


def worker_component(settings: InboxSettings | None = None) -> Component:
    """The consumer as a lifespan, with database and NATS readiness checks."""
    settings = settings or InboxSettings()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        analyzer = settings.analyzer()
        engine = create_engine(settings.resolved_database_url(), max_connections=4)
        sessions = session_factory(engine)
        bus = await Bus.from_settings(settings, name="inbox-worker")
        consumer = BatchConsumer(
            bus,
            INBOX_INBOUND,
            ingest_handler(sessions, bus, read_session_factory(engine), analyzer),
            is_transient=is_transient_db_error,
            batch_size=settings.batch_size,
            concurrency=settings.consumer_concurrency,
        )
        outcomes = BatchConsumer(
            bus,
            INBOX_OUTCOMES,
            outcome_handler(sessions, bus, read_session_factory(engine)),
            is_transient=is_transient_db_error,
        )
        stop = asyncio.Event()
        outbox = sweep(sessions, read_session_factory(engine), bus, stop)
        snoozes = wake_snoozed(sessions, bus, stop, every=settings.snooze_check_seconds)
        task = asyncio.create_task(
            _run_all(consumer, outcomes, [outbox, snoozes], stop), name="inbox-consumers"
        )
        task.add_done_callback(exit_when_crashed("inbox.worker.crashed"))
        app.state.worker = (engine, bus, task)
        try:
            yield
        finally:
            stop.set()
            try:
                await asyncio.wait_for(asyncio.shield(task), timeout=30)
            except Exception as exc:  # already logged by the callback, or the wait timed out
                log.warning("inbox.worker.stop_incomplete", error=repr(exc))
            await bus.close()
            await engine.dispose()

    async def check_database(app: FastAPI) -> None:
        engine = app.state.worker[0]
        async with engine.connect() as connection:
            await connection.execute(text("SELECT 1"))

    async def check_nats(app: FastAPI) -> None:
        bus: Bus = app.state.worker[1]
        if not bus.is_connected:
            raise ConnectionError("not connected to NATS")

    async def check_consumer(app: FastAPI) -> None:
        task: asyncio.Task[None] = app.state.worker[2]
        if task.done():
            raise RuntimeError("the consumer stopped")

    return Component(
        name="worker",
        routers=[],
        lifespan=lifespan,
        checks={"database": check_database, "nats": check_nats, "consumer": check_consumer},
    )


async def _run_all(
    inbound: BatchConsumer,
    outcomes: BatchConsumer,
    loops: list[Coroutine[Any, Any, None]],
    stop: asyncio.Event,
) -> None:
    """Inbound events, outcomes, the outbox sweep and the snooze alarm, until stopped (one failing
    stops all)."""
    async with asyncio.TaskGroup() as group:
        group.create_task(inbound.run(stop))
        group.create_task(outcomes.run(stop))
        for loop in loops:
            group.create_task(loop)


async def wake_snoozed(
    sessions: async_sessionmaker[AsyncSession], bus: Bus, stop: asyncio.Event, *, every: float
) -> None:
    """Reopen snoozed conversations whose time has come, and announce it. Every replica may run it:
    a conversation is woken only if still at the version seen, so only one announces it."""
    while not stop.is_set():
        try:
            async with sessions() as session, session.begin():
                woken = await workflow.wake_snoozed(session, utcnow())
            if woken:
                log.info("inbox.snoozes.woken", count=len(woken))
                await publish_outbox(sessions, sessions, bus, ids=woken)
        except BusUnavailable as exc:  # committed: the outbox sweep publishes the events later
            log.warning("inbox.outbox.deferred", error=str(exc))
        except Exception as exc:  # the database away: try again next round
            log.warning("inbox.snoozes.failed", error=f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)


def create_worker_app(settings: InboxSettings | None = None) -> FastAPI:
    """The inbox consumer process (``uvicorn --factory services.inbox.consumers:create_worker_app``)."""
    return build_app("Piazza inbox worker", [worker_component(settings)])
