"""Which accounts this replica polls: one poller per account across all replicas, through KV leases.

Every few seconds the manager reads the channel directory, takes the lease of each wanted account
nobody holds, renews its leases, and stops the pollers of accounts no longer wanted, changed, or
whose lease it lost. A replica that dies stops renewing; its leases lapse within the bucket's TTL and
another replica takes the accounts over. Connectors (Telegram bots, Reddit accounts) plug in what
they poll and how.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol

from nats.js.kv import KeyValue

from shared.bus.client import BusUnavailable
from shared.bus.lease import Lease
from shared.channels import ChannelDirectory, ChannelRecord
from shared.logging import get_logger

log = get_logger(__name__)


class CredentialsRefused(Exception):
    """The platform no longer accepts the account's credentials: polling stops until the channel changes."""


class Poller(Protocol):
    """One account's polling loop."""

    resume_at: float
    """``time.monotonic()`` before which the platform asked not to be called; handed to the next
    poller of the account, so a restart does not cut a rate-limit wait short."""

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop``; raise :class:`CredentialsRefused` when the credentials stop working."""


@dataclass
class _Running:
    record: ChannelRecord
    poller: Poller
    lease: Lease
    stop: asyncio.Event
    task: asyncio.Task[None]


class PollerManager:
    """Keeps exactly the pollers this replica holds leases for."""

    def __init__(
        self,
        *,
        name: str,
        directory: ChannelDirectory,
        leases: KeyValue,
        wants: Callable[[ChannelRecord], bool],
        launch: Callable[[ChannelRecord, float], Poller | None],
        rescan_seconds: float,
    ) -> None:
        """``launch(record, resume_at)`` builds an account's poller (None when it cannot be polled)."""
        self._name = name
        self._directory = directory
        self._leases = leases
        self._wants = wants
        self._launch = launch
        self._rescan_seconds = rescan_seconds
        self.owner = uuid.uuid4().hex
        self.running: dict[uuid.UUID, _Running] = {}
        self._refused: dict[uuid.UUID, datetime] = {}
        self._resume_at: dict[uuid.UUID, float] = {}

    async def run(self, stop: asyncio.Event) -> None:
        """Reconcile until ``stop``, then stop every poller and give the leases up."""
        try:
            while not stop.is_set():
                try:
                    await self.reconcile()
                except BusUnavailable as exc:
                    log.warning("pollers.bus_unavailable", connector=self._name, error=str(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._rescan_seconds)
        finally:
            for channel_id in list(self.running):
                await self._stop(channel_id)

    async def reconcile(self) -> None:
        """One pass: start, renew and stop pollers to match the directory and the leases."""
        wanted = {r.id: r for r in await self._directory.all() if self._wants(r)}
        for channel_id, running in list(self.running.items()):
            record = wanted.get(channel_id)
            if running.task.done():
                self._note_end(running)
                await self._stop(channel_id)
            elif record is None or record.updated_at != running.record.updated_at:
                await self._stop(channel_id)  # no longer wanted or changed: restart below if still wanted
            elif not await running.lease.renew():
                log.info("pollers.lease_lost", connector=self._name, channel_id=str(channel_id))
                await self._stop(channel_id, release=False)
        for channel_id, record in wanted.items():
            if channel_id in self.running or self._refused.get(channel_id) == record.updated_at:
                continue
            lease = Lease(self._leases, channel_id, self.owner)
            if await lease.acquire():
                self._start(record, lease)

    def _start(self, record: ChannelRecord, lease: Lease) -> None:
        poller = self._launch(record, self._resume_at.pop(record.id, 0.0))
        if poller is None:
            self._refused[record.id] = record.updated_at
            return
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop), name=f"{self._name}-poller-{record.id}")
        self.running[record.id] = _Running(record, poller, lease, stop, task)
        log.info("pollers.started", connector=self._name, channel_id=str(record.id))

    def _note_end(self, running: _Running) -> None:
        if running.task.cancelled():
            return
        exc = running.task.exception()
        if isinstance(exc, CredentialsRefused):
            # Do not hammer the platform with refused credentials: wait until the channel is changed.
            self._refused[running.record.id] = running.record.updated_at
        elif exc is not None:
            log.error(
                "pollers.crashed", connector=self._name, channel_id=str(running.record.id), exc_info=exc
            )

    async def _stop(self, channel_id: uuid.UUID, *, release: bool = True) -> None:
        running = self.running.pop(channel_id)
        running.stop.set()
        try:
            await asyncio.wait_for(asyncio.shield(running.task), timeout=5)
        except TimeoutError:
            running.task.cancel()  # a long poll in flight: nothing was confirmed, nothing is lost
            await asyncio.gather(running.task, return_exceptions=True)
        except Exception:  # noqa: S110 - ended already; recorded by _note_end
            pass
        if running.poller.resume_at > time.monotonic():
            self._resume_at[channel_id] = running.poller.resume_at
        if release:
            await running.lease.release()
