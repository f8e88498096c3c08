"""Durable pull consumers: batched fetch, ack after commit, retries that lose nothing, dead letters.

A :class:`BatchConsumer` fetches up to ``batch_size`` messages, decodes them, and hands the batch to
a handler that commits it in one transaction. Then:

* success: every message is acked, but those the handler refused, which are dead-lettered;
* a :class:`~shared.errors.TransientError` (or what ``is_transient`` recognises, such as the database
  being down): the consumer keeps the batch and retries it in place with a growing pause, telling
  JetStream it is still working on it, until the dependency is back. An outage of any length loses
  nothing and uses up no delivery; the consumer fetches nothing new meanwhile;
* anything else: the batch is split and each message retried alone, so one poison message is
  dead-lettered with its reason and the others are stored.

A message delivered ``max_deliver`` times without ever being settled (consumers crashed or timed out
on it) is dead-lettered before it is handled again. JetStream itself redelivers without limit, so
nothing ever expires unnoticed. Undecodable messages are dead-lettered before the handler sees them.
Dead letters keep the original bytes and carry the reason, subject, stream sequence and delivery
count in headers.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass

from nats.aio.msg import Msg
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js import JetStreamContext
from nats.js.errors import Error as JetStreamError
from nats.js.errors import FetchTimeoutError
from prometheus_client import Counter, Gauge

from shared.bus.client import MSG_ID_HEADER, Bus, BusUnavailable
from shared.bus.topology import (
    DEAD_LETTER_DELIVERIES,
    DEAD_LETTER_REASON,
    DEAD_LETTER_SEQUENCE,
    DEAD_LETTER_SUBJECT,
    ConsumerSpec,
)
from shared.errors import PermanentError, TransientError
from shared.events import EventDecodeError, decode_event
from shared.events.registry import AnyEvent
from shared.logging import get_logger

log = get_logger(__name__)

CONSUMED = Counter(
    "piazza_consumer_messages_total", "Messages a consumer finished with, by outcome", ["consumer", "outcome"]
)
REDELIVERED = Counter("piazza_consumer_redeliveries_total", "Messages received more than once", ["consumer"])
RETRIES = Counter(
    "piazza_consumer_retries_total", "Batches retried in place after a transient failure", ["consumer"]
)
DEAD_LETTERS = Counter("piazza_dead_letters_total", "Messages sent to the dead-letter subject", ["consumer"])
PENDING = Gauge(
    "piazza_consumer_pending",
    "Messages in the stream not yet delivered to the consumer",
    ["consumer"],
    multiprocess_mode="livemax",
)


@dataclass(frozen=True, slots=True)
class Delivery:
    """One decoded message of a batch."""

    event: AnyEvent
    subject: str
    stream_sequence: int
    deliveries: int
    msg: Msg


GATHER_SECONDS = 0.005
"""How long a fetch waits for more messages to fill a batch once there is something to do."""

BatchHandler = Callable[[Sequence[Delivery]], Awaitable[Mapping[int, str]]]
"""Stores a batch (committing it) and returns the deliveries it refused, by index, with the reason."""


class BatchConsumer:
    """Runs one durable pull consumer until asked to stop."""

    def __init__(
        self,
        bus: Bus,
        spec: ConsumerSpec,
        handler: BatchHandler,
        *,
        is_transient: Callable[[BaseException], bool] = lambda _exc: False,
        batch_size: int = 500,
        fetch_timeout: float = 1.0,
        concurrency: int = 1,
    ) -> None:
        self._bus = bus
        self._spec = spec
        self._handler = handler
        self._is_transient = is_transient
        self._batch_size = batch_size
        self._fetch_timeout = fetch_timeout
        self._concurrency = concurrency
        self._name = spec.durable

    async def run(self, stop: asyncio.Event) -> None:
        """Fetch and process batches until ``stop`` is set; the batches in hand are always finished.

        With ``concurrency`` above one, that many fetch loops share the durable consumer, so one
        batch is decoded and planned while another waits on its commit. The handler must then
        tolerate concurrent batches (the inbox's upserts are order-independent and lock rows in
        key order).
        """
        async with asyncio.TaskGroup() as group:
            for _ in range(self._concurrency):
                group.create_task(self._run_one(stop))

    async def _run_one(self, stop: asyncio.Event) -> None:
        sub = await self._subscribe()
        log.info("bus.consumer.started", consumer=self._name)
        try:
            await self._loop(sub, stop)
        finally:
            # A pull subscription's queue holds the server's status replies, which nobody reads:
            # drop it now, or draining the connection waits for them until its timeout.
            try:
                await sub.unsubscribe()
            except (NatsError, JetStreamError) as exc:
                log.warning("bus.consumer.unsubscribe_failed", consumer=self._name, error=str(exc))
        log.info("bus.consumer.stopped", consumer=self._name)

    async def _loop(self, sub: JetStreamContext.PullSubscription, stop: asyncio.Event) -> None:
        stopped: asyncio.Future[object] = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                await self._step(sub, stop, stopped)
        finally:
            stopped.cancel()

    async def _step(
        self, sub: JetStreamContext.PullSubscription, stop: asyncio.Event, stopped: asyncio.Future[object]
    ) -> None:
        fetch: asyncio.Future[object] = asyncio.ensure_future(self._fetch(sub))
        # Stop at once when asked, rather than after the long poll: an abandoned fetch only means
        # that messages already on their way are redelivered after ack_wait.
        await asyncio.wait({fetch, stopped}, return_when=asyncio.FIRST_COMPLETED)
        if not fetch.done():
            fetch.cancel()
            await asyncio.gather(fetch, return_exceptions=True)
            return
        try:
            msgs: list[Msg] = fetch.result()  # type: ignore[assignment]
        except (FetchTimeoutError, NatsTimeoutError, TimeoutError):
            return
        except (NatsError, JetStreamError) as exc:
            log.warning("bus.consumer.fetch_failed", consumer=self._name, error=str(exc))
            await _sleep_unless(stop, 0.5)
            return
        try:
            await self.process(msgs, stop)
        except (NatsError, JetStreamError) as exc:
            # Acks that did not reach the server mean redelivery, which the handler absorbs.
            log.warning("bus.consumer.settle_failed", consumer=self._name, error=str(exc))

    async def _fetch(self, sub: JetStreamContext.PullSubscription) -> list[Msg]:
        """The next batch, with at most ``GATHER_SECONDS`` of added latency.

        A pull request for a whole batch waits until the batch is full or the request expires, so a
        lone message would wait out the long poll. Instead: take what arrives within a few
        milliseconds; when nothing does, block for the first message alone, then gather what
        follows it for a few milliseconds more.
        """
        try:
            return list(await sub.fetch(self._batch_size, timeout=GATHER_SECONDS))
        except (FetchTimeoutError, NatsTimeoutError, TimeoutError):
            pass
        first = await sub.fetch(1, timeout=self._fetch_timeout)
        if self._batch_size == 1:
            return list(first)
        try:
            return [*first, *await sub.fetch(self._batch_size - 1, timeout=GATHER_SECONDS)]
        except (NatsError, JetStreamError, TimeoutError):
            return list(first)

    async def _subscribe(self) -> JetStreamContext.PullSubscription:
        names = self._bus.names
        return await self._bus.js.pull_subscribe_bind(
            durable=names.consumer(self._spec.durable),
            stream=names.stream(self._spec.stream),
            pending_msgs_limit=self._batch_size * 4,
        )

    async def process(self, msgs: Sequence[Msg], stop: asyncio.Event | None = None) -> None:
        """Decode, handle and settle one fetched batch (``stop`` cuts retries short)."""
        deliveries: list[Delivery] = []
        for msg in msgs:
            meta = msg.metadata
            if meta.num_delivered > 1:
                REDELIVERED.labels(self._name).inc()
            if meta.num_delivered > self._spec.max_deliver:
                reason = (
                    f"delivered {meta.num_delivered} times without being settled "
                    "(a consumer crashed or timed out while handling it)"
                )
                await self._dead_letter(msg, reason)
                continue
            try:
                event = decode_event(msg.data)
            except EventDecodeError as exc:
                await self._dead_letter(msg, str(exc))
                continue
            deliveries.append(Delivery(event, msg.subject, meta.sequence.stream, meta.num_delivered, msg))
        if msgs:
            PENDING.labels(self._name).set(msgs[-1].metadata.num_pending)
        if deliveries:
            await self._handle(deliveries, stop or asyncio.Event())
        await self._flush()

    async def _handle(self, batch: Sequence[Delivery], stop: asyncio.Event) -> None:
        try:
            refused = await self._attempt(batch, stop)
        except Exception as exc:
            if len(batch) > 1:
                log.warning(
                    "bus.consumer.isolating", consumer=self._name, count=len(batch), error=_describe(exc)
                )
                for delivery in batch:
                    await self._handle([delivery], stop)
                return
            log.error(
                "bus.consumer.poison",
                consumer=self._name,
                error=_describe(exc),
                correlation_id=batch[0].event.correlation_id,
                exc_info=exc,
            )
            await self._dead_letter(batch[0].msg, _describe(exc), batch[0].event.correlation_id)
            return
        if refused is None:
            return
        for index, delivery in enumerate(batch):
            reason = refused.get(index)
            if reason is None:
                await delivery.msg.ack()
            else:
                await self._dead_letter(delivery.msg, reason, delivery.event.correlation_id)
        CONSUMED.labels(self._name, "acked").inc(len(batch) - len(refused))

    def _transient(self, exc: BaseException) -> bool:
        if isinstance(exc, PermanentError):
            return False
        return isinstance(exc, TransientError | BusUnavailable) or self._is_transient(exc)

    async def _attempt(self, batch: Sequence[Delivery], stop: asyncio.Event) -> Mapping[int, str] | None:
        """Run the handler, retrying transient failures in place; None if handed back on stop."""
        pause = self._spec.retry_first
        while True:
            try:
                return await self._handler(batch)
            except Exception as exc:
                if not self._transient(exc):
                    raise
                if stop.is_set():
                    # Shutting down mid-outage: hand the batch back for whoever runs next.
                    for delivery in batch:
                        await delivery.msg.nak()
                    CONSUMED.labels(self._name, "nacked").inc(len(batch))
                    return None
                RETRIES.labels(self._name).inc()
                log.warning(
                    "bus.consumer.waiting",
                    consumer=self._name,
                    count=len(batch),
                    retry_in=pause,
                    error=_describe(exc),
                )
                await self._hold(batch, stop, pause)
                pause = min(pause * 2, self._spec.retry_max)

    async def _hold(self, batch: Sequence[Delivery], stop: asyncio.Event, seconds: float) -> None:
        """Wait ``seconds`` (or until stop), telling JetStream the batch is still being worked on."""
        deadline = asyncio.get_running_loop().time() + seconds
        tick = max(0.1, min(seconds, self._spec.ack_wait / 3))
        while not stop.is_set():
            remaining = deadline - asyncio.get_running_loop().time()
            if remaining <= 0:
                return
            await _sleep_unless(stop, min(tick, remaining))
            try:
                for delivery in batch:
                    await delivery.msg.in_progress()
            except (NatsError, JetStreamError) as exc:
                log.warning("bus.consumer.progress_failed", consumer=self._name, error=str(exc))

    async def _dead_letter(self, msg: Msg, reason: str, correlation_id: str | None = None) -> None:
        meta = msg.metadata
        names = self._bus.names
        headers = {
            DEAD_LETTER_REASON: reason[:1000],
            DEAD_LETTER_SUBJECT: names.unprefixed(msg.subject),
            DEAD_LETTER_SEQUENCE: str(meta.sequence.stream),
            DEAD_LETTER_DELIVERIES: str(meta.num_delivered),
            MSG_ID_HEADER: f"{meta.stream}:{meta.sequence.stream}",
        }
        try:
            await self._bus.js.publish(names.dead_letter_subject(self._name), msg.data, headers=headers)
        except (NatsError, JetStreamError, TimeoutError) as exc:
            # Not dead-lettered yet: leave it to be redelivered rather than lose it.
            log.warning("bus.dead_letter.failed", consumer=self._name, error=str(exc))
            await msg.nak(delay=self._spec.retry_max)
            return
        await msg.term()
        DEAD_LETTERS.labels(self._name).inc()
        CONSUMED.labels(self._name, "dead_lettered").inc()
        log.warning(
            "bus.dead_lettered",
            consumer=self._name,
            subject=msg.subject,
            stream_sequence=meta.sequence.stream,
            reason=reason,
            correlation_id=correlation_id,
        )

    async def _flush(self) -> None:
        try:
            await self._bus.nc.flush(timeout=5)
        except (NatsError, TimeoutError) as exc:
            # Unflushed acks mean redelivery later, which the handler absorbs.
            log.warning("bus.consumer.flush_failed", consumer=self._name, error=str(exc))


def _describe(exc: BaseException) -> str:
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__


async def _sleep_unless(stop: asyncio.Event, seconds: float) -> None:
    try:
        async with asyncio.timeout(seconds):
            await stop.wait()
    except TimeoutError:
        pass
