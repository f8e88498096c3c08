"""The bus layer against a real nats-server: topology, dedup, ack policy, retries, dead letters."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import AsyncIterator, Mapping, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from nats.js.errors import BadRequestError

from shared.bus import client
from shared.bus.client import Bus, BusUnavailable
from shared.bus.consumer import BatchConsumer, Delivery
from shared.bus.server import EmbeddedNats
from shared.bus.topology import (
    DEAD_LETTER_DELIVERIES,
    DEAD_LETTER_REASON,
    DEAD_LETTER_SUBJECT,
    INBOX_INBOUND,
    ConsumerSpec,
    consumer_config,
    ensure_topology,
)
from shared.errors import PermanentError, TransientError
from shared.events import AuthorRef, InboundMessage, MessageReceived, ThreadRef, utcnow
from tests.support import free_port, wait_for

pytestmark = pytest.mark.bus


@pytest.fixture
async def bus(nats_url: str, bus_prefix: str) -> AsyncIterator[Bus]:
    bus = await Bus.connect(nats_url, name="tests", prefix=bus_prefix)
    yield bus
    await bus.close()


def _event(text: str = "hi", event_id: str | None = None) -> MessageReceived:
    payload = InboundMessage(
        channel_id=uuid.uuid4(),
        platform="webhook",
        thread=ThreadRef(external_id="t"),
        external_id=uuid.uuid4().hex,
        author=AuthorRef(namespace="n", external_id="a"),
        text=text,
        sent_at=utcnow(),
    )
    return MessageReceived(
        workspace="w", source="tests", payload=payload, **({"id": event_id} if event_id else {})
    )


async def _spec(bus: Bus, **overrides: object) -> ConsumerSpec:
    spec = replace(
        INBOX_INBOUND,
        durable=f"test-{uuid.uuid4().hex[:8]}",
        retry_first=0.02,
        retry_max=0.05,
        **overrides,  # type: ignore[arg-type]
    )
    await bus.js.add_consumer(bus.names.stream(spec.stream), consumer_config(spec, bus.names))
    return spec


class Recorder:
    """A handler that records what it stored, and can be told to fail."""

    def __init__(self) -> None:
        self.stored: list[str] = []
        self.calls = 0
        self.fail_with: BaseException | None = None
        self.poison: set[str] = set()

    async def __call__(self, batch: Sequence[Delivery]) -> Mapping[int, str]:
        self.calls += 1
        if self.fail_with is not None:
            raise self.fail_with
        if any(d.event.payload.text in self.poison for d in batch):  # type: ignore[union-attr]
            raise ValueError("cannot store this one")
        self.stored += [d.event.payload.text or "" for d in batch]  # type: ignore[union-attr]
        return {}


async def _run(consumer: BatchConsumer) -> tuple[asyncio.Event, asyncio.Task[None]]:
    stop = asyncio.Event()
    return stop, asyncio.create_task(consumer.run(stop))


async def _dead_letters(bus: Bus, durable: str, count: int) -> list[tuple[bytes, Mapping[str, str]]]:
    sub = await bus.js.pull_subscribe(
        bus.names.dead_letter_subject(durable),
        durable=f"dlq-{uuid.uuid4().hex[:6]}",
        stream=bus.names.stream("DEADLETTERS"),
    )
    found: list[tuple[bytes, Mapping[str, str]]] = []

    async def enough() -> bool:
        with contextlib.suppress(TimeoutError):
            found.extend((m.data, m.headers or {}) for m in await sub.fetch(count, timeout=0.2))
        return len(found) >= count

    try:
        await wait_for(enough)
    finally:
        await sub.unsubscribe()
    return found


async def test_topology_is_idempotent(bus: Bus) -> None:
    await ensure_topology(bus.js, bus.names)
    await ensure_topology(bus.js, bus.names)
    info = await bus.js.stream_info(bus.names.stream("INBOUND"))
    assert info.config.subjects == [bus.names.subject("inbound.>")]


async def test_a_process_starting_while_nats_restarts_waits_for_it(
    tmp_path: Path, bus_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The server goes away just as the process declares the topology, and comes back after the
    declaration's requests have timed out (5 s; requests sent meanwhile wait in the client): the
    declaration is asked again, and the process starts instead of failing."""
    server = EmbeddedNats(tmp_path / "nats", port=free_port())
    url = server.start()
    declared = ensure_topology
    calls: list[float] = []
    restarts: list[asyncio.Task[None]] = []

    async def restart_later() -> None:
        await asyncio.sleep(6)
        await asyncio.to_thread(server.start)  # same port, same store

    async def outage_then_declare(*args: Any, **kwargs: Any) -> None:
        calls.append(asyncio.get_running_loop().time())
        if len(calls) == 1:
            await asyncio.to_thread(server.stop)
            restarts.append(asyncio.create_task(restart_later()))
        await declared(*args, **kwargs)

    monkeypatch.setattr(client, "ensure_topology", outage_then_declare)
    try:
        bus = await Bus.connect(url, name="tests", prefix=bus_prefix)
        try:
            assert len(calls) >= 2  # the first declaration went unanswered
            assert calls[-1] - calls[0] >= 5
            await bus.js.stream_info(bus.names.stream("INBOUND"))  # declared once the server was back
        finally:
            await bus.close()
    finally:
        await asyncio.gather(*restarts)
        server.stop()


async def test_a_refused_declaration_fails_the_start_at_once(
    nats_url: str, bus_prefix: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    calls: list[int] = []

    async def refuse(*_args: Any, **_kwargs: Any) -> None:
        calls.append(1)
        raise BadRequestError(
            code=400, description="stream name already in use with a different configuration"
        )

    monkeypatch.setattr(client, "ensure_topology", refuse)
    with pytest.raises(BadRequestError):
        await Bus.connect(nats_url, name="tests", prefix=bus_prefix)
    assert calls == [1]


async def test_a_republished_event_is_stored_once_by_jetstream(bus: Bus) -> None:
    event = _event()
    first = await bus.publish("inbound.webhook.x", event)
    again = await bus.publish("inbound.webhook.x", event)
    assert not first.duplicate
    assert again.duplicate
    assert again.seq == first.seq


async def test_publishing_while_disconnected_fails_fast(bus: Bus) -> None:
    await bus.nc.close()
    with pytest.raises(BusUnavailable):
        await bus.publish("inbound.webhook.x", _event())


async def test_a_batch_is_acked_after_the_handler_returns(bus: Bus) -> None:
    spec = await _spec(bus)
    recorder = Recorder()
    stop, task = await _run(BatchConsumer(bus, spec, recorder, batch_size=50))
    await bus.publish_many([("inbound.webhook.x", _event(f"m{i}")) for i in range(120)])
    await wait_for(lambda: asyncio.sleep(0, len(recorder.stored) == 120))
    stop.set()
    await task
    info = await bus.js.consumer_info(bus.names.stream(spec.stream), bus.names.consumer(spec.durable))
    assert info.num_ack_pending == 0
    assert info.num_pending == 0
    assert sorted(recorder.stored) == sorted(f"m{i}" for i in range(120))


async def test_an_unacked_batch_is_redelivered_after_ack_wait(bus: Bus) -> None:
    spec = await _spec(bus, ack_wait=1.0)
    await bus.publish("inbound.webhook.x", _event("once"))
    # A consumer that dies after fetching: it takes the message and never settles it.
    crashed = await bus.js.pull_subscribe_bind(
        durable=bus.names.consumer(spec.durable), stream=bus.names.stream(spec.stream)
    )
    [taken] = await crashed.fetch(1, timeout=2)
    assert taken.metadata.num_delivered == 1
    await crashed.unsubscribe()
    recorder = Recorder()
    stop, task = await _run(BatchConsumer(bus, spec, recorder))
    await wait_for(lambda: asyncio.sleep(0, recorder.stored == ["once"]), timeout=10)
    stop.set()
    await task


async def test_a_poison_message_is_dead_lettered_and_the_rest_go_on(bus: Bus) -> None:
    spec = await _spec(bus)
    recorder = Recorder()
    recorder.poison = {"poison"}
    await bus.publish_many([("inbound.webhook.x", _event(t)) for t in ("a", "poison", "b")])
    await bus.js.publish(bus.names.subject("inbound.webhook.x"), b"\xff not json at all")
    stop, task = await _run(BatchConsumer(bus, spec, recorder, batch_size=10))
    letters = await _dead_letters(bus, spec.durable, 2)
    await wait_for(lambda: asyncio.sleep(0, sorted(recorder.stored) == ["a", "b"]))
    stop.set()
    await task
    reasons = sorted(headers[DEAD_LETTER_REASON] for _, headers in letters)
    assert reasons[0].startswith("ValueError: cannot store this one")
    assert reasons[1].startswith("not JSON")
    assert all(headers[DEAD_LETTER_SUBJECT] == "inbound.webhook.x" for _, headers in letters)
    assert b"\xff not json at all" in [data for data, _ in letters]
    info = await bus.js.consumer_info(bus.names.stream(spec.stream), bus.names.consumer(spec.durable))
    assert info.num_ack_pending == 0


async def test_refused_deliveries_are_dead_lettered_with_the_handlers_reason(bus: Bus) -> None:
    spec = await _spec(bus)

    async def refuse_second(batch: Sequence[Delivery]) -> Mapping[int, str]:
        return {1: "unknown channel 42"} if len(batch) > 1 else {}

    await bus.publish_many([("inbound.webhook.x", _event(t)) for t in ("a", "b", "c")])
    stop, task = await _run(BatchConsumer(bus, spec, refuse_second, batch_size=10))
    [(_, headers)] = await _dead_letters(bus, spec.durable, 1)
    stop.set()
    await task
    assert headers[DEAD_LETTER_REASON] == "unknown channel 42"


async def test_transient_failures_are_retried_in_place_without_using_up_deliveries(bus: Bus) -> None:
    spec = await _spec(bus, max_deliver=2)
    seen: list[int] = []
    failures = 5

    async def flaky(batch: Sequence[Delivery]) -> Mapping[int, str]:
        nonlocal failures
        seen.extend(d.deliveries for d in batch)
        if failures:
            failures -= 1
            raise TransientError("database is restarting")
        return {}

    await bus.publish("inbound.webhook.x", _event("outlasts the outage"))
    stop, task = await _run(BatchConsumer(bus, spec, flaky))
    await wait_for(lambda: asyncio.sleep(0, len(seen) == 6))
    stop.set()
    await task
    # Six attempts, all on the first delivery: an outage longer than max_deliver retries loses nothing.
    assert seen == [1] * 6
    info = await bus.js.consumer_info(bus.names.stream(spec.stream), bus.names.consumer(spec.durable))
    assert info.num_ack_pending == 0
    assert info.num_redelivered == 0


async def test_a_message_that_keeps_killing_consumers_is_dead_lettered(bus: Bus) -> None:
    spec = await _spec(bus, max_deliver=2, ack_wait=1.0)
    await bus.publish("inbound.webhook.x", _event("crashes everyone"))
    for _ in range(2):  # two consumers take it and die without a word
        crashed = await bus.js.pull_subscribe_bind(
            durable=bus.names.consumer(spec.durable), stream=bus.names.stream(spec.stream)
        )
        await crashed.fetch(1, timeout=5)
        await crashed.unsubscribe()
    recorder = Recorder()
    stop, task = await _run(BatchConsumer(bus, spec, recorder))
    [(_, headers)] = await _dead_letters(bus, spec.durable, 1)
    stop.set()
    await task
    assert recorder.calls == 0
    assert headers[DEAD_LETTER_DELIVERIES] == "3"
    assert headers[DEAD_LETTER_REASON].startswith("delivered 3 times without being settled")


async def test_stopping_during_an_outage_hands_the_batch_back(bus: Bus) -> None:
    spec = await _spec(bus)
    recorder = Recorder()
    recorder.fail_with = TransientError("still down")
    await bus.publish("inbound.webhook.x", _event("later"))
    stop, task = await _run(BatchConsumer(bus, spec, recorder))
    await wait_for(lambda: asyncio.sleep(0, recorder.calls >= 2))
    stop.set()
    await asyncio.wait_for(task, timeout=5)
    recorder.fail_with = None
    again_stop, again = await _run(BatchConsumer(bus, spec, recorder))
    await wait_for(lambda: asyncio.sleep(0, recorder.stored == ["later"]))
    again_stop.set()
    await again


async def test_a_transient_failure_that_clears_loses_nothing(bus: Bus) -> None:
    spec = await _spec(bus)
    recorder = Recorder()
    recorder.fail_with = TransientError("blip")
    await bus.publish_many([("inbound.webhook.x", _event(f"k{i}")) for i in range(5)])
    stop, task = await _run(BatchConsumer(bus, spec, recorder))
    await wait_for(lambda: asyncio.sleep(0, recorder.calls >= 1))
    recorder.fail_with = None
    await wait_for(lambda: asyncio.sleep(0, len(recorder.stored) == 5))
    stop.set()
    await task
    assert sorted(recorder.stored) == [f"k{i}" for i in range(5)]


async def test_permanent_errors_are_not_retried(bus: Bus) -> None:
    spec = await _spec(bus)
    recorder = Recorder()
    recorder.fail_with = PermanentError("never")
    await bus.publish("inbound.webhook.x", _event("x"))
    stop, task = await _run(BatchConsumer(bus, spec, recorder))
    [(_, headers)] = await _dead_letters(bus, spec.durable, 1)
    stop.set()
    await task
    assert recorder.calls == 1
    assert headers[DEAD_LETTER_REASON] == "PermanentError: never"
