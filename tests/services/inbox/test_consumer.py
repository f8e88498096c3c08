"""The inbox consumer on a real bus and database: delivered twice, stored once; poison dead-lettered."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from datetime import UTC, datetime

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.inbox.consumers import ingest_handler
from services.inbox.models import Message
from shared.bus.client import Bus
from shared.bus.consumer import BatchConsumer, Delivery
from shared.bus.topology import DEAD_LETTER_REASON, INBOX_INBOUND
from shared.db import is_transient_db_error, session_factory
from shared.events import AuthorRef, InboundMessage, MessageReceived, ThreadRef, inbound_subject
from tests.support import Tenant, add_channel_row, make_tenant, wait_for

pytestmark = pytest.mark.bus

T0 = datetime(2026, 11, 24, 12, 0, tzinfo=UTC)


@pytest.fixture
async def bus(nats_url: str, bus_prefix: str) -> AsyncIterator[Bus]:
    bus = await Bus.connect(nats_url, name="tests", prefix=bus_prefix)
    yield bus
    await bus.close()


async def _channel(engine: AsyncEngine, tenant: Tenant) -> uuid.UUID:
    return await add_channel_row(engine, tenant)


def _received(channel_id: uuid.UUID, external_id: str, event_id: str | None = None) -> MessageReceived:
    payload = InboundMessage(
        channel_id=channel_id,
        platform="webhook",
        thread=ThreadRef(external_id="t"),
        external_id=external_id,
        author=AuthorRef(namespace="n", external_id="a"),
        text=f"text of {external_id}",
        sent_at=T0,
    )
    return MessageReceived(
        workspace="w", source="tests", payload=payload, **({"id": event_id} if event_id else {})
    )


async def _count(engine: AsyncEngine, channel_id: uuid.UUID) -> int:
    async with session_factory(engine)() as session:
        total = await session.scalar(
            select(func.count()).select_from(Message).where(Message.channel_id == channel_id)
        )
    return int(total or 0)


async def _consume(bus: Bus, handler: object) -> tuple[asyncio.Event, asyncio.Task[None]]:
    consumer = BatchConsumer(bus, INBOX_INBOUND, handler, is_transient=is_transient_db_error)  # type: ignore[arg-type]
    stop = asyncio.Event()
    return stop, asyncio.create_task(consumer.run(stop))


async def test_the_same_message_published_twice_is_stored_once(bus: Bus, engine: AsyncEngine) -> None:
    channel_id = await _channel(engine, await make_tenant(engine))
    subject = inbound_subject("webhook", channel_id)
    # Two envelopes (JetStream cannot tell them apart) carrying the same platform message.
    await bus.publish_many([(subject, _received(channel_id, f"m{i}")) for i in range(20)])
    await bus.publish_many([(subject, _received(channel_id, f"m{i}")) for i in range(20)])
    stop, task = await _consume(bus, ingest_handler(session_factory(engine)))
    await wait_for(lambda: _count(engine, channel_id), timeout=10)
    info = await bus.js.consumer_info(bus.names.stream("INBOUND"), bus.names.consumer(INBOX_INBOUND.durable))

    async def drained() -> bool:
        nonlocal info
        info = await bus.js.consumer_info(
            bus.names.stream("INBOUND"), bus.names.consumer(INBOX_INBOUND.durable)
        )
        return info.num_pending == 0 and info.num_ack_pending == 0

    await wait_for(drained)
    stop.set()
    await task
    assert await _count(engine, channel_id) == 20


async def test_a_batch_committed_but_not_acked_is_redelivered_and_absorbed(
    bus: Bus, engine: AsyncEngine
) -> None:
    channel_id = await _channel(engine, await make_tenant(engine))
    store = ingest_handler(session_factory(engine))
    calls = 0

    async def crash_after_commit_once(batch: Sequence[Delivery]) -> Mapping[int, str]:
        nonlocal calls
        calls += 1
        refused = await store(batch)
        if calls == 1:
            raise ConnectionError("lost the connection right after the commit")  # transient: nak
        return refused

    await bus.publish_many(
        [(inbound_subject("webhook", channel_id), _received(channel_id, f"r{i}")) for i in range(10)]
    )
    stop, task = await _consume(bus, crash_after_commit_once)

    async def redelivered_and_acked() -> bool:
        info = await bus.js.consumer_info(
            bus.names.stream("INBOUND"), bus.names.consumer(INBOX_INBOUND.durable)
        )
        return calls >= 2 and info.num_ack_pending == 0 and info.num_pending == 0

    await wait_for(redelivered_and_acked)
    stop.set()
    await task
    assert await _count(engine, channel_id) == 10


async def test_events_for_an_unknown_channel_are_dead_lettered_and_the_rest_stored(
    bus: Bus, engine: AsyncEngine
) -> None:
    channel_id = await _channel(engine, await make_tenant(engine))
    ghost = uuid.uuid4()
    await bus.publish_many(
        [
            (inbound_subject("webhook", channel_id), _received(channel_id, "kept-1")),
            (inbound_subject("webhook", ghost), _received(ghost, "lost")),
            (inbound_subject("webhook", channel_id), _received(channel_id, "kept-2")),
        ]
    )
    letters = await bus.js.pull_subscribe(
        bus.names.dead_letter_subject(INBOX_INBOUND.durable),
        durable="dlq-reader",
        stream=bus.names.stream("DEADLETTERS"),
    )
    stop, task = await _consume(bus, ingest_handler(session_factory(engine)))
    [letter] = await letters.fetch(1, timeout=10)
    await wait_for(lambda: _at_least(engine, channel_id, 2))
    stop.set()
    await task
    assert letter.headers is not None
    assert letter.headers[DEAD_LETTER_REASON] == f"unknown channel {ghost}"
    assert await _count(engine, channel_id) == 2


async def _at_least(engine: AsyncEngine, channel_id: uuid.UUID, count: int) -> bool:
    return await _count(engine, channel_id) >= count
