"""Reading the ``DOMAIN`` stream live, in order, from any position: what ``GET /v1/stream`` sends.

Each live client gets an ephemeral JetStream pull consumer of its own (in memory, no acks, filtered to
its workspace's subjects) that starts at the sequence the client asks for. Nothing about a client is
kept in the process between connections: the stream sequence is the client's position, so any API
replica can serve any reconnect.

The consumer is pulled one batch at a time (bounded in count and bytes), and the next batch is asked
for only once the client has been sent the last one, so a client holds at most one batch in memory
and a slow client slows only itself. Every message carries its consumer sequence: a gap (a pull lost
to a reconnect, a message dropped), an error status (the server shutting down, the consumer deleted)
or silence past the heartbeats means the consumer is recreated just after the last stream sequence
delivered, so a client sees every event exactly once, in order, whatever happens to NATS.
"""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

import anyio
import orjson
from nats.aio.msg import Msg
from nats.aio.subscription import Subscription
from nats.errors import Error as NatsError
from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import Error as JetStreamError

from shared.bus.client import Bus
from shared.bus.topology import DOMAIN
from shared.logging import get_logger

log = get_logger(__name__)

_API_PREFIX = "$JS.API"
_STATUS = "Status"
_HEARTBEAT = "100"
_PULL_DONE = {"404", "408"}  # no messages / the pull request expired
_MAX_BYTES = "MaxBytes"  # in a 409's description: the next message would overflow the pull's bytes
_BATCH_BYTES = 8 * 1024 * 1024
"""Bytes a client's pull may bring at most (far above a domain event; NATS caps one at 1 MiB)."""


class EventTooLarge(Exception):
    """An event bigger than a live client's whole allowance (``max_bytes``): it cannot be sent."""


@dataclass(frozen=True, slots=True)
class StreamBounds:
    """The sequences the ``DOMAIN`` stream holds: ``first`` to ``last`` (``first > last`` when empty)."""

    first: int
    last: int


async def domain_bounds(bus: Bus) -> StreamBounds:
    """Where the ``DOMAIN`` stream starts and ends now."""
    info = await bus.js.stream_info(bus.names.stream(DOMAIN.name))
    return StreamBounds(first=info.state.first_seq, last=info.state.last_seq)


class DomainTail:
    """An ordered, exactly-once read of ``DOMAIN`` messages on ``subjects`` from ``start`` onwards.

    Use as an async context manager (it deletes its consumer on exit) and iterate :meth:`messages`.
    ``subjects`` are declared (unprefixed) subjects; wildcards are allowed.
    """

    def __init__(
        self,
        bus: Bus,
        subjects: Sequence[str],
        start: int,
        *,
        batch: int = 100,
        max_bytes: int = _BATCH_BYTES,
        heartbeat: float = 2.0,
        expires: float = 30.0,
        description: str = "live stream",
    ) -> None:
        self._bus = bus
        self._stream = bus.names.stream(DOMAIN.name)
        self._subjects = [bus.names.subject(s) for s in subjects]
        self._next = max(start, 1)
        self._batch = batch
        self._max_bytes = max_bytes
        self._heartbeat = heartbeat
        self._expires = expires
        self._description = description
        self._consumer: str | None = None
        self._sub: Subscription | None = None
        self._expected = 1  # the consumer sequence of the next message
        self._restarts = 0  # in a row, without a message in between

    @property
    def position(self) -> int:
        """The stream sequence of the last message delivered (or the one before the start)."""
        return self._next - 1

    async def __aenter__(self) -> DomainTail:
        await self._open()
        return self

    async def __aexit__(self, *exc_info: object) -> None:
        # Runs when the client went away, usually inside a cancelled scope: shield the clean-up, and
        # bound it; the consumer's inactivity threshold removes it anyway should this not get through.
        with anyio.CancelScope(shield=True), anyio.move_on_after(5.0):
            await self._close()

    async def messages(self) -> AsyncIterator[Msg]:
        """Every message from the start position, in stream order, each once; endless."""
        while True:
            try:
                consumer, subscription = await self._pull()
            except (NatsError, JetStreamError, TimeoutError) as exc:
                # NATS restarting or JetStream not ready again yet: the client keeps its stream (and
                # its heartbeats) and gets the events once the bus is back.
                await self._restart("unavailable", error=f"{type(exc).__name__}: {exc}")
                continue
            remaining = self._batch
            while remaining:
                try:
                    msg = await subscription.next_msg(timeout=self._heartbeat * 2 + 1.0)
                except NatsTimeoutError:
                    # No message and no heartbeat: the pull, the consumer or the connection is gone.
                    await self._restart("silent")
                    break
                headers = msg.headers or {}
                status = headers.get(_STATUS)
                if status == _HEARTBEAT:
                    continue
                if status in _PULL_DONE:
                    break
                if status == "409" and _MAX_BYTES in str(headers.get("Description", "")):
                    if remaining == self._batch:
                        raise EventTooLarge(f"an event after sequence {self.position} exceeds the limit")
                    break  # the batch's bytes are used up: pull again
                if status is not None:  # 409: consumer deleted, leader changed, ...
                    await self._restart("status", status=status, description=headers.get("Description"))
                    break
                meta = msg.metadata
                if meta.consumer != consumer or meta.sequence.consumer < self._expected:
                    continue  # left over from a consumer or pull we gave up on
                if meta.sequence.consumer > self._expected:
                    await self._restart("gap")
                    break
                self._expected += 1
                self._next = meta.sequence.stream + 1
                self._restarts = 0
                remaining -= 1
                yield msg

    async def _pull(self) -> tuple[str, Subscription]:
        """Ask the consumer (opened again if need be) for the next batch."""
        consumer, subscription = self._consumer, self._sub
        if consumer is None or subscription is None:
            consumer, subscription = await self._open()
        await self._bus.nc.publish(
            f"{_API_PREFIX}.CONSUMER.MSG.NEXT.{self._stream}.{consumer}",
            orjson.dumps(
                {
                    "batch": self._batch,
                    "max_bytes": self._max_bytes,
                    "expires": int(self._expires * 1e9),
                    "idle_heartbeat": int(self._heartbeat * 1e9),
                }
            ),
            reply=subscription.subject,
        )
        return consumer, subscription

    async def _open(self) -> tuple[str, Subscription]:
        name = f"live-{uuid.uuid4().hex}"
        config = ConsumerConfig(
            name=name,
            description=self._description,
            deliver_policy=DeliverPolicy.BY_START_SEQUENCE,
            opt_start_seq=self._next,
            ack_policy=AckPolicy.NONE,
            max_deliver=1,
            # Removed by the server if this process dies without deleting it, or stops pulling.
            inactive_threshold=max(60.0, self._expires * 2),
            mem_storage=True,
            num_replicas=1,
        )
        if len(self._subjects) == 1:
            config.filter_subject = self._subjects[0]
        else:
            config.filter_subjects = list(self._subjects)
        subscription = await self._bus.nc.subscribe(
            self._bus.nc.new_inbox(),
            # One batch plus its heartbeats and status: anything beyond is dropped and seen as a gap.
            pending_msgs_limit=self._batch + 64,
            pending_bytes_limit=self._max_bytes + 1024 * 1024,
        )
        try:
            await self._bus.js.add_consumer(self._stream, config)
        except BaseException:
            with anyio.CancelScope(shield=True):
                await subscription.unsubscribe()
            raise
        self._consumer, self._sub, self._expected = name, subscription, 1
        return name, subscription

    async def _restart(self, reason: str, **detail: str | None) -> None:
        log.info("inbox.stream.consumer_restarted", reason=reason, resume_at=self._next, **detail)
        await self._close()
        if self._restarts:  # again and again: do not spin while NATS recovers
            await anyio.sleep(min(5.0, 0.1 * 2**self._restarts))
        self._restarts += 1

    async def _close(self) -> None:
        subscription, consumer = self._sub, self._consumer
        self._sub = self._consumer = None
        if subscription is not None:
            with contextlib.suppress(NatsError, JetStreamError, TimeoutError):
                await subscription.unsubscribe()
        if consumer is not None and self._bus.is_connected:
            with contextlib.suppress(NatsError, JetStreamError, TimeoutError):
                await self._bus.js.delete_consumer(self._stream, consumer)
