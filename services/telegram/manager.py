"""Which bots this replica polls: one poller per bot across all replicas, through KV leases.

Every few seconds the manager reads the channel directory, takes the lease of each polling-mode bot
nobody holds, renews its leases, and stops the pollers of bots that left polling mode or whose lease
it lost. A replica that dies stops renewing; its leases lapse within the bucket's TTL and another
replica takes the bots over.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
import uuid
from dataclasses import dataclass
from datetime import datetime

import httpx
from nats.js.kv import KeyValue

from services.telegram.config import TelegramSettings
from services.telegram.poller import ChannelPoller, TokenRevoked
from shared.bus.client import Bus, BusUnavailable
from shared.channels import ChannelDirectory, ChannelHealthBoard, ChannelRecord
from shared.crypto import SecretBox, SecretBoxError
from shared.logging import get_logger
from shared.platforms.telegram.client import TelegramClient
from shared.platforms.telegram.state import AliasStore, Lease, OffsetStore

log = get_logger(__name__)


@dataclass
class _Running:
    record: ChannelRecord
    poller: ChannelPoller
    lease: Lease
    stop: asyncio.Event
    task: asyncio.Task[None]


def polls(record: ChannelRecord) -> bool:
    """Whether a channel is a bot this connector should poll."""
    return record.type == "telegram" and record.status == "active" and record.config.get("mode") == "polling"


class PollerManager:
    """Keeps exactly the pollers this replica holds leases for."""

    def __init__(
        self,
        bus: Bus,
        directory: ChannelDirectory,
        leases: KeyValue,
        aliases: AliasStore,
        offsets: OffsetStore,
        health: ChannelHealthBoard,
        box: SecretBox,
        http: httpx.AsyncClient,
        settings: TelegramSettings,
    ) -> None:
        self._bus = bus
        self._directory = directory
        self._leases = leases
        self._aliases = aliases
        self._offsets = offsets
        self._health = health
        self._box = box
        self._http = http
        self._settings = settings
        self.owner = uuid.uuid4().hex
        self.running: dict[uuid.UUID, _Running] = {}
        self._refused: dict[uuid.UUID, datetime] = {}
        self._resume_at: dict[uuid.UUID, float] = {}  # flood waits outliving a stopped poller

    async def run(self, stop: asyncio.Event) -> None:
        """Reconcile until ``stop``, then stop every poller and give the leases up."""
        try:
            while not stop.is_set():
                try:
                    await self.reconcile()
                except BusUnavailable as exc:
                    log.warning("telegram.manager.bus_unavailable", error=str(exc))
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(stop.wait(), self._settings.rescan_seconds)
        finally:
            for channel_id in list(self.running):
                await self._stop(channel_id)

    async def reconcile(self) -> None:
        """One pass: start, renew and stop pollers to match the directory and the leases."""
        wanted = {r.id: r for r in await self._directory.all() if polls(r)}
        for channel_id, running in list(self.running.items()):
            record = wanted.get(channel_id)
            if running.task.done():
                self._note_end(running)
                await self._stop(channel_id)
            elif record is None or record.updated_at != running.record.updated_at:
                await self._stop(channel_id)  # left polling mode or changed: restart below if still wanted
            elif not await running.lease.renew():
                log.info("telegram.manager.lease_lost", channel_id=str(channel_id))
                await self._stop(channel_id, release=False)
        for channel_id, record in wanted.items():
            if channel_id in self.running or self._refused.get(channel_id) == record.updated_at:
                continue
            lease = Lease(self._leases, channel_id, self.owner)
            if await lease.acquire():
                self._start(record, lease)

    def _start(self, record: ChannelRecord, lease: Lease) -> None:
        sealed = record.secret("bot_token")
        try:
            token = self._box.open(sealed) if sealed else None
        except SecretBoxError:
            token = None
        if token is None:
            log.error("telegram.manager.no_token", channel_id=str(record.id))
            self._refused[record.id] = record.updated_at
            return
        client = TelegramClient(token, base_url=self._settings.telegram_api_url, http=self._http)
        poller = ChannelPoller(
            record,
            client,
            self._bus,
            self._aliases,
            self._offsets,
            self._health,
            self._settings,
            resume_at=self._resume_at.pop(record.id, 0.0),
        )
        stop = asyncio.Event()
        task = asyncio.create_task(poller.run(stop), name=f"telegram-poller-{record.id}")
        self.running[record.id] = _Running(record, poller, lease, stop, task)
        log.info("telegram.manager.polling", channel_id=str(record.id))

    def _note_end(self, running: _Running) -> None:
        if running.task.cancelled():
            return
        exc = running.task.exception()
        if isinstance(exc, TokenRevoked):
            # Do not hammer Telegram with a refused token: wait until the channel is changed.
            self._refused[running.record.id] = running.record.updated_at
        elif exc is not None:
            log.error("telegram.poller.crashed", channel_id=str(running.record.id), exc_info=exc)

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
