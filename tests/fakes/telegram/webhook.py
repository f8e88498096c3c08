"""Webhook delivery as ``WebhookActor.cpp`` does it (platforms.md §1.3).

One update per POST, ``X-Telegram-Bot-Api-Secret-Token`` when configured, any 2xx counts as delivered.
Updates are queued per chat: one chat's updates go out strictly in order, different chats in parallel
over at most ``max_connections`` connections. A failed update is retried at once, then after 2, 4, 8 ...
backoff units (1 unit = 1 s on the real server), capped at 60-120 units; a ``Retry-After`` header in the
receiver's error answer is honoured instead (clamped to 3600 s; fractions are accepted so tests stay fast).
"""

from __future__ import annotations

import asyncio
import json
import random
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import aiohttp

from tests.fakes.telegram.records import DeliveryAttempt
from tests.fakes.telegram.updates import UpdateQueue

Json = dict[str, Any]
SECRET_HEADER = "X-Telegram-Bot-Api-Secret-Token"


@dataclass
class WebhookConfig:
    url: str
    secret_token: str | None
    max_connections: int = 40
    ip_address: str | None = None
    last_error_date: int | None = None
    last_error_message: str | None = None


def chat_key(update: Json) -> object:
    """The delivery lane: the update's chat (or user); updates with neither get a lane of their own."""
    for key, payload in update.items():
        if key == "update_id" or not isinstance(payload, dict):
            continue
        for holder in (payload, payload.get("message")):
            if isinstance(holder, dict) and isinstance(holder.get("chat"), dict):
                return holder["chat"].get("id")
        for field in ("from", "user"):
            if isinstance(payload.get(field), dict):
                return payload[field].get("id")
    return ("update", update.get("update_id"))


def retry_after_seconds(header: str | None) -> float | None:
    if not header:
        return None
    try:
        return min(max(float(header), 0.0), 3600.0)
    except ValueError:
        return None


class WebhookDelivery:
    """Delivers a bot's queued updates to its webhook until stopped."""

    def __init__(
        self,
        config: WebhookConfig,
        queue: UpdateQueue,
        attempts: list[DeliveryAttempt],
        *,
        backoff: float,
        timeout: float,
    ) -> None:
        self.config = config
        self._queue = queue
        self._attempts = attempts
        self._backoff = backoff
        self._cap = backoff * random.uniform(60, 120)
        self._timeout = timeout
        self._slots = asyncio.Semaphore(config.max_connections)
        self._session: aiohttp.ClientSession | None = None
        self._assigned: set[int] = set()
        self._lanes: dict[object, deque[Json]] = {}
        self._tasks: dict[object, asyncio.Task[None]] = {}
        self.on_attempt: Callable[[], None] | None = None  # wakes tests waiting on deliveries

    def start(self) -> None:
        connector = aiohttp.TCPConnector(limit=self.config.max_connections)
        self._session = aiohttp.ClientSession(connector=connector)
        self.schedule()

    def schedule(self) -> None:
        """Give every queued update not yet in a lane to its chat's lane."""
        if self._session is None:
            return
        for update in self._queue.pending:
            update_id = update["update_id"]
            if update_id in self._assigned:
                continue
            self._assigned.add(update_id)
            key = chat_key(update)
            self._lanes.setdefault(key, deque()).append(update)
            if key not in self._tasks:
                self._tasks[key] = asyncio.create_task(self._run_lane(key), name=f"telegram-webhook-{key}")

    async def stop(self) -> None:
        tasks = list(self._tasks.values())
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._tasks.clear()
        self._lanes.clear()
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _run_lane(self, key: object) -> None:
        lane = self._lanes[key]
        try:
            while lane:
                update = lane[0]
                await self._deliver(update)
                lane.popleft()
                self._queue.remove(update["update_id"])
        finally:
            self._tasks.pop(key, None)
            if not lane:
                self._lanes.pop(key, None)

    async def _deliver(self, update: Json) -> None:
        failures = 0
        while True:
            async with self._slots:
                status, error, retry_after = await self._post(update)
            self._attempts.append(
                DeliveryAttempt(update["update_id"], self.config.url, status, error, time.monotonic())
            )
            if self.on_attempt is not None:
                self.on_attempt()
            if error is None:
                return
            failures += 1
            self.config.last_error_date = int(time.time())
            self.config.last_error_message = error
            if retry_after is not None:
                delay = retry_after
            elif failures == 1:
                delay = 0.0
            else:
                delay = min(self._backoff * 2 ** (failures - 1), self._cap)
            await asyncio.sleep(delay)

    async def _post(self, update: Json) -> tuple[int | None, str | None, float | None]:
        assert self._session is not None
        headers = {"Content-Type": "application/json", "Accept-Encoding": "gzip, deflate"}
        if self.config.secret_token:
            headers[SECRET_HEADER] = self.config.secret_token
        body = json.dumps(update, ensure_ascii=False).encode()
        try:
            async with self._session.post(
                self.config.url,
                data=body,
                headers=headers,
                timeout=aiohttp.ClientTimeout(total=self._timeout),
            ) as response:
                await response.read()
                if 200 <= response.status < 300:
                    return response.status, None, None
                error = f"Wrong response from the webhook: {response.status} {response.reason or ''}".rstrip()
                return response.status, error, retry_after_seconds(response.headers.get("Retry-After"))
        except TimeoutError:
            return None, "Read timeout expired", None
        except aiohttp.ClientConnectorError:
            return None, "Connection refused", None
        except aiohttp.ClientError as exc:
            return None, f"Connection error: {exc.__class__.__name__}", None
