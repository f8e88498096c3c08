"""Telegram updates per second, from the fake Bot API through the connector into JetStream.

A backlog of text messages (spread over private chats and groups) waits in the fake Bot API; the
connector (``piazza worker telegram``, its own process) drains it with ``getUpdates`` (100 a call, as
Telegram allows), publishes each batch and waits for JetStream's acks before it stores the offset
and asks for more. The clock runs from the connector's first ``getUpdates`` to the moment the
``INBOUND`` stream holds every update. Two raw limits are measured in the same run: JetStream publish
(``raw.jetstream_publish``) and the fake alone, drained by a bare ``getUpdates`` loop that publishes
nothing, since the fake shares the machine and its cost is part of what the connector waits for.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
import nats

from bench.stack import Stack
from shared.bus.topology import INBOUND, BusNames

CHATS = 200


@dataclass(frozen=True)
class TelegramResult:
    updates: int
    connector_rate: float  # updates/s into JetStream through the connector
    fake_drain_rate: float  # updates/s a bare getUpdates loop reads from the fake


def _fill(bot: Any, factory: Any, count: int) -> None:
    people = [factory.user(f"Customer {n}") for n in range(CHATS)]
    chats = [
        bot.add_private_chat(person) if n % 2 else bot.add_group(f"Group {n}", members=[person])
        for n, person in enumerate(people)
    ]
    for n in range(count):
        chat, person = chats[n % CHATS], people[n % CHATS]
        bot.push_message(factory.message(chat, person, text=f"benchmark update {n}: where is order #{n}?"))


async def _drain(base_url: str, token: str, count: int) -> float:
    """Read ``count`` updates with a bare getUpdates loop; updates/s."""
    offset: int | None = None
    seen = 0
    async with httpx.AsyncClient(timeout=30) as client:
        started = time.perf_counter()
        while seen < count:
            params: dict[str, Any] = {"limit": 100, "timeout": 0}
            if offset is not None:
                params["offset"] = offset
            response = await client.post(f"{base_url}/bot{token}/getUpdates", json=params)
            updates = response.json()["result"]
            if updates:
                seen += len(updates)
                offset = updates[-1]["update_id"] + 1
        return count / (time.perf_counter() - started)


async def _stream_count(js: Any, stream: str) -> int:
    info = await js.stream_info(stream)
    return int(info.state.messages)


async def connector_throughput(stack: Stack, fake: Any, count: int) -> TelegramResult:
    """Measure the fake alone, then the connector draining the same backlog into JetStream."""
    from tests.fakes.telegram import factory

    probe = fake.add_bot(username="bench_raw_bot")
    _fill(probe, factory, count)
    drain_rate = await _drain(fake.base_url, probe.token, count)

    bot = fake.add_bot(username="bench_connector_bot")
    _fill(bot, factory, count)
    assert stack.nats is not None
    connection = await nats.connect(stack.nats.url)
    try:
        js = connection.jetstream()
        stream = BusNames().stream(INBOUND.name)
        before = await _stream_count(js, stream)
        stack.start_worker("telegram", PIAZZA_TELEGRAM_RESCAN_SECONDS="1")
        async with httpx.AsyncClient(base_url=stack.url, headers=stack.auth, timeout=30) as api:
            created = await api.post("/v1/channels", json={"type": "telegram", "bot_token": bot.token})
            created.raise_for_status()
        target = before + count
        deadline = time.monotonic() + 600
        while await _stream_count(js, stream) < target:
            if time.monotonic() > deadline:
                raise RuntimeError("the connector did not drain the backlog within 10 minutes")
            await asyncio.sleep(0.02)
        finished = time.monotonic()
    finally:
        await connection.close()
    first_poll = bot.calls("getUpdates")[0].at
    return TelegramResult(count, count / (finished - first_poll), drain_rate)
