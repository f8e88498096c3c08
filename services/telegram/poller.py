"""One bot's long-poll loop: getUpdates → publish → remember the offset → confirm.

The offset advances (and is stored) only after JetStream stored the events of the batch; the next
getUpdates then confirms them to Telegram. A crash at any point means the batch comes again and is
deduplicated by its event ids, never that it is lost.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from datetime import UTC, datetime
from typing import Any

from prometheus_client import Counter

from services.telegram.config import TelegramSettings
from shared.bus.client import Bus, BusUnavailable
from shared.channels import ChannelHealthBoard, ChannelRecord
from shared.logging import get_logger
from shared.platforms.telegram.client import (
    TelegramClient,
    TelegramConflict,
    TelegramError,
    TelegramInvalidToken,
    TelegramRetryAfter,
)
from shared.platforms.telegram.normalize import ALLOWED_UPDATES
from shared.platforms.telegram.publish import publish_updates
from shared.platforms.telegram.state import AliasStore, OffsetStore
from shared.pollers import CredentialsRefused

log = get_logger(__name__)

POLLS = Counter("piazza_telegram_polls_total", "getUpdates calls, by outcome", ["outcome"])


class ChannelPoller:
    """Polls one bot until stopped, or until its token is refused."""

    def __init__(
        self,
        channel: ChannelRecord,
        client: TelegramClient,
        bus: Bus,
        aliases: AliasStore,
        offsets: OffsetStore,
        health: ChannelHealthBoard,
        settings: TelegramSettings,
        *,
        resume_at: float = 0.0,
    ) -> None:
        self.channel = channel
        # time.monotonic() before which Telegram asked not to poll; the manager hands it to the
        # next poller of the bot, so a restart does not cut a flood wait short.
        self.resume_at = resume_at
        self._client = client
        self._bus = bus
        self._aliases = aliases
        self._offsets = offsets
        self._health = health
        self._settings = settings
        self._backoff = 1.0
        self._next_health_check = 0.0

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop``; raises :class:`CredentialsRefused` when the token stops working."""
        await _sleep(stop, self.resume_at - time.monotonic())
        offset = await self._stored_offset(stop)
        log.info("telegram.poller.started", channel_id=str(self.channel.id), offset=offset)
        while not stop.is_set():
            updates = await self._poll(offset, stop)
            if updates is None:
                continue
            await self._report_backlog()
            if not updates:
                continue
            try:
                await publish_updates(self._bus, self._aliases, self.channel, updates)
                offset = int(updates[-1]["update_id"]) + 1
                await self._offsets.put(self.channel.id, offset)
            except BusUnavailable as exc:
                # Not stored: poll the same offset again once the bus is back; nothing is confirmed.
                log.warning(
                    "telegram.poller.bus_unavailable", channel_id=str(self.channel.id), error=str(exc)
                )
                await self._pause(stop)
        log.info("telegram.poller.stopped", channel_id=str(self.channel.id))

    async def _stored_offset(self, stop: asyncio.Event) -> int | None:
        while True:
            try:
                return await self._offsets.get(self.channel.id)
            except BusUnavailable:
                await self._pause(stop)
                if stop.is_set():
                    return None

    async def _poll(self, offset: int | None, stop: asyncio.Event) -> list[dict[str, Any]] | None:
        """One getUpdates; None when it failed (after reporting and pausing as the failure asks)."""
        channel_id = self.channel.id
        try:
            updates = await self._client.get_updates(
                offset, timeout=self._settings.poll_timeout, allowed_updates=ALLOWED_UPDATES
            )
        except TelegramRetryAfter as exc:
            POLLS.labels("rate_limited").inc()
            await self._health.report(
                channel_id, "rate_limited", f"Telegram asks to wait {exc.retry_after:g}s"
            )
            self.resume_at = time.monotonic() + (exc.retry_after or 1) + 0.5
            await _sleep(stop, self.resume_at - time.monotonic())
            return None
        except TelegramInvalidToken as exc:
            POLLS.labels("token_revoked").inc()
            await self._health.report(
                channel_id,
                "token_revoked",
                f"Telegram refuses the bot token ({exc.description}); connect the bot again with a valid token.",
                connected=False,
            )
            raise CredentialsRefused(exc.description) from None
        except TelegramConflict as exc:
            POLLS.labels("conflict").inc()
            await self._health.report(
                channel_id,
                "conflict",
                f"{exc.description} (another program polls this bot, or a webhook is set)",
                connected=False,
            )
            await self._pause(stop)
            return None
        except TelegramError as exc:
            POLLS.labels("failed").inc()
            await self._health.report(channel_id, "unreachable", exc.description, connected=False)
            await self._pause(stop)
            return None
        POLLS.labels("ok").inc()
        self._backoff = 1.0
        last = datetime.now(UTC) if updates else None
        await self._health.ok(channel_id, last_update_at=last)
        return updates

    async def _report_backlog(self) -> None:
        if time.monotonic() < self._next_health_check:
            return
        self._next_health_check = time.monotonic() + self._settings.health_seconds
        with contextlib.suppress(TelegramError):
            info = await self._client.call("getWebhookInfo")
            await self._health.ok(self.channel.id, backlog=int(info.get("pending_update_count") or 0))

    async def _pause(self, stop: asyncio.Event) -> None:
        await _sleep(stop, self._backoff)
        self._backoff = min(self._backoff * 2, self._settings.backoff_max_seconds)


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    if seconds <= 0:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
