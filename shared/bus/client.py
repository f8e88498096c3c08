"""The NATS connection every service holds: JetStream, the installation's names, safe publishing."""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from types import TracebackType

import nats
from nats.aio.client import Client as NATS
from nats.errors import ConnectionReconnectingError, NoRespondersError
from nats.errors import Error as NatsError
from nats.js import JetStreamContext
from nats.js.api import PubAck
from nats.js.errors import Error as JetStreamError
from nats.js.errors import ServiceUnavailableError
from nats.js.kv import KeyValue
from tenacity import AsyncRetrying, retry_if_exception_type, stop_after_delay, wait_exponential

from shared.bus.topology import BusNames, ensure_topology
from shared.config import PiazzaSettings
from shared.events import Event, encode_event
from shared.logging import get_logger

log = get_logger(__name__)

MSG_ID_HEADER = "Nats-Msg-Id"


class BusUnavailable(Exception):
    """The bus did not take a publish: disconnected, timed out, or refused by JetStream."""


class Bus:
    """A connected NATS client with JetStream and the installation's naming."""

    def __init__(self, nc: NATS, names: BusNames) -> None:
        self.nc = nc
        self.js: JetStreamContext = nc.jetstream(timeout=5.0, publish_async_max_pending=20_000)
        self.names = names

    @classmethod
    async def connect(
        cls,
        url: str,
        *,
        name: str,
        prefix: str = "",
        ensure: bool = True,
        connect_timeout: float = 60.0,
        ack_wait: float | None = None,
        replicas: int = 1,
    ) -> Bus:
        """Connect (retrying while the server starts), and declare the topology when ``ensure``."""
        nc = await _connect_with_retry(url, name, connect_timeout)
        bus = cls(nc, BusNames(prefix))
        if ensure:
            try:
                await _declare_with_retry(bus, ack_wait, replicas, connect_timeout)
            except BaseException:
                await nc.close()
                raise
        return bus

    @classmethod
    async def from_settings(cls, settings: PiazzaSettings, *, name: str) -> Bus:
        """Connect as a service configured by ``settings`` does."""
        return await cls.connect(
            settings.require_nats_url(),
            name=name,
            prefix=settings.bus_prefix,
            ack_wait=settings.bus_ack_wait_seconds,
            replicas=settings.bus_replicas,
        )

    @property
    def is_connected(self) -> bool:
        """True while the client holds a live connection to a server."""
        return bool(self.nc.is_connected)

    async def publish(self, subject: str, event: Event, *, timeout: float = 5.0) -> PubAck:
        """Publish one event and wait for JetStream to store it."""
        (ack,) = await self.publish_many([(subject, event)], timeout=timeout)
        return ack

    async def publish_many(self, items: Sequence[tuple[str, Event]], *, timeout: float = 5.0) -> list[PubAck]:
        """Publish events with many in flight; return once JetStream stored every one.

        Subjects are the declared (unprefixed) ones. Each event's id is its ``Nats-Msg-Id``, so a
        retried publish inside the duplicate window is stored once. Raises :class:`BusUnavailable`
        if any publish is not acknowledged within ``timeout``.
        """
        return await self.publish_encoded(
            [(subject, event.id, encode_event(event)) for subject, event in items], timeout=timeout
        )

    async def publish_encoded(
        self, items: Sequence[tuple[str, str, bytes]], *, timeout: float = 5.0
    ) -> list[PubAck]:
        """Publish already-encoded events, as ``(subject, event id, bytes)``; see :meth:`publish_many`."""
        if not self.is_connected:
            raise BusUnavailable("not connected to NATS")
        try:
            async with asyncio.timeout(timeout):
                futures = [
                    await self.js.publish_async(
                        self.names.subject(subject), data, headers={MSG_ID_HEADER: event_id}
                    )
                    for subject, event_id, data in items
                ]
                return list(await asyncio.gather(*futures))
        except TimeoutError as exc:
            raise BusUnavailable(f"JetStream did not acknowledge within {timeout:g}s") from exc
        except (NatsError, JetStreamError) as exc:
            raise BusUnavailable(f"JetStream refused the publish: {exc}") from exc

    async def key_value(self, bucket: str) -> KeyValue:
        """A declared KV bucket."""
        return await self.js.key_value(self.names.bucket(bucket))

    async def close(self) -> None:
        """Drain subscriptions and pending publishes, then close."""
        if self.nc.is_closed:
            return
        try:
            await self.nc.drain()
        except (NatsError, TimeoutError) as exc:
            log.warning("bus.drain.failed", error=str(exc))
            await self.nc.close()

    async def __aenter__(self) -> Bus:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()


_UNANSWERED = (TimeoutError, NoRespondersError, ConnectionReconnectingError, ServiceUnavailableError)
"""What the server does to a request while it restarts, or while JetStream starts: nothing (a
timeout), no one to answer, a reconnection under way, JetStream unavailable."""


async def _declare_with_retry(bus: Bus, ack_wait: float | None, replicas: int, deadline: float) -> None:
    """:func:`ensure_topology` (idempotent), asked again while the server does not answer. A
    process that starts while NATS restarts (the connection itself comes back on its own) waits for
    it instead of failing its startup; a refusal (a bad configuration) is raised at once."""
    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type(_UNANSWERED),
        wait=wait_exponential(multiplier=0.2, max=2.0),
        stop=stop_after_delay(deadline),
        reraise=True,
        before_sleep=lambda state: log.warning(
            "bus.topology.retrying", error=repr(state.outcome.exception() if state.outcome else None)
        ),
    ):
        with attempt:
            await ensure_topology(bus.js, bus.names, ack_wait=ack_wait, replicas=replicas)


async def _connect_with_retry(url: str, name: str, deadline: float) -> NATS:
    connection: list[NATS] = []

    async def disconnected() -> None:
        closing = bool(connection) and (connection[0].is_closed or connection[0].is_draining)
        (log.info if closing else log.warning)("bus.disconnected", client=name)

    async def reconnected() -> None:
        log.info("bus.reconnected", client=name)

    async def error(exc: Exception) -> None:
        log.warning("bus.error", client=name, error=str(exc))

    async for attempt in AsyncRetrying(
        retry=retry_if_exception_type((OSError, NatsError, TimeoutError)),
        wait=wait_exponential(multiplier=0.1, max=2.0),
        stop=stop_after_delay(deadline),
        reraise=True,
    ):
        with attempt:
            nc: NATS = await nats.connect(
                url,
                name=name,
                connect_timeout=2,
                drain_timeout=5,
                allow_reconnect=True,
                max_reconnect_attempts=-1,
                reconnect_time_wait=0.5,
                disconnected_cb=disconnected,
                reconnected_cb=reconnected,
                error_cb=error,
            )
            connection.append(nc)
            return nc
    raise AssertionError("unreachable")  # pragma: no cover
