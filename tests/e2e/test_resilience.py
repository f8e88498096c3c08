"""Crashes and outages with real processes: nothing acknowledged is lost, nothing is stored twice."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.inbox.models import Message
from shared.bus.server import EmbeddedNats
from shared.db import session_factory
from tests.support import (
    Process,
    free_port,
    make_channel,
    make_tenant,
    message_event,
    signed_headers,
    wait_for,
    wait_http_ready,
)

pytestmark = pytest.mark.e2e


class Stack:
    """The web process (ingress + inbox API) and the inbox worker, as separate processes."""

    def __init__(self, env: dict[str, str], logs: Path) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = {**env, "PIAZZA_BUS_ACK_WAIT_SECONDS": "3"}
        self.web = Process(["serve", "ingress", "inbox-api", "--port", str(self.port)], env, logs / "web.log")
        self.worker = Process(["worker", "inbox", "--port", "0"], env, logs / "worker.log")

    async def start(self) -> None:
        self.web.start()
        self.worker.start()
        await wait_http_ready(self.url, self.web)

    def stop(self) -> None:
        self.web.stop()
        self.worker.stop()


@pytest.fixture
def stack(process_env: dict[str, str], tmp_path: Path) -> Iterator[Stack]:
    stack = Stack(process_env, tmp_path)
    yield stack
    stack.stop()


async def _stored_ids(engine: AsyncEngine, channel_id: str) -> list[str]:
    async with session_factory(engine)() as session:
        rows = await session.scalars(
            select(Message.external_id).where(Message.channel_id == uuid.UUID(channel_id))
        )
        return list(rows)


async def test_kill_9_of_the_worker_mid_stream_loses_and_duplicates_nothing(
    stack: Stack, engine: AsyncEngine
) -> None:
    await stack.start()
    tenant = await make_tenant(engine)
    total = 4000
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
        channel = await make_channel(client, tenant)
        batches = [
            [
                message_event(thread=f"t{i % 7}", message_id=f"k{i:05}", text=f"n{i}")
                for i in range(start, start + 100)
            ]
            for start in range(0, total, 100)
        ]

        async def post(batch: list[dict[str, object]]) -> None:
            body = orjson.dumps({"events": batch})
            response = await client.post(
                channel.path, content=body, headers=signed_headers(channel.secret, body)
            )
            assert response.status_code == 202, response.text

        for batch in batches[:10]:
            await post(batch)

        async def storing() -> int | None:
            # The worker has begun on the stream (on a busy machine it may still be starting up).
            return len(await _stored_ids(engine, channel.id)) or None

        killed_at = await wait_for(storing, timeout=60, interval=0.02)
        stack.worker.kill()  # no goodbye: whatever it held in flight is unacked
        for batch in batches[10:]:  # accepted while no worker runs: they wait in the stream
            await post(batch)
        assert killed_at < total
        stack.worker.start()

        async def all_stored() -> list[str] | None:
            ids = await _stored_ids(engine, channel.id)
            return ids if len(ids) >= total else None

        ids = await wait_for(all_stored, timeout=90, interval=0.5)
    assert sorted(ids) == [f"k{i:05}" for i in range(total)]
    async with session_factory(engine)() as session:
        count = await session.scalar(
            select(func.count()).select_from(Message).where(Message.channel_id == uuid.UUID(channel.id))
        )
    assert count == total


async def test_nats_down_means_503_and_every_accepted_message_is_stored_once(
    process_env: dict[str, str], engine: AsyncEngine, tmp_path: Path
) -> None:
    nats = EmbeddedNats(tmp_path / "own-nats", port=free_port())
    url = nats.start()
    stack = Stack({**process_env, "NATS_URL": url}, tmp_path)
    try:
        await stack.start()
        tenant = await make_tenant(engine)
        accepted: list[str] = []
        refused: list[tuple[int, str | None]] = []
        async with httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
            channel = await make_channel(client, tenant)

            async def post(number: int) -> int:
                event = message_event(thread="outage", message_id=f"o{number:04}")
                body = orjson.dumps(event)
                response = await client.post(
                    channel.path, content=body, headers=signed_headers(channel.secret, body)
                )
                if response.status_code == 202:
                    accepted.append(event["id"])
                else:
                    refused.append((response.status_code, response.headers.get("retry-after")))
                return response.status_code

            for number in range(100):
                assert await post(number) == 202
            nats.stop()
            statuses = [await post(number) for number in range(100, 150)]
            assert set(statuses) == {503}
            assert all(retry_after and int(retry_after) > 0 for _, retry_after in refused)
            nats.start()  # same port, same store: clients reconnect on their own

            async def accepting_again() -> bool:
                return await post(len(accepted) + len(refused) + 1000) == 202

            await wait_for(accepting_again, timeout=30, interval=0.2)
            for number in range(2000, 2100):
                assert await post(number) == 202

        async def all_accepted_stored() -> list[str] | None:
            ids = await _stored_ids(engine, channel.id)
            return ids if set(accepted) <= set(ids) else None

        try:
            ids = await wait_for(all_accepted_stored, timeout=90, interval=0.5)
        except AssertionError:
            # Say which, and what the worker was doing: a failure here is otherwise a bare timeout.
            missing = sorted(set(accepted) - set(await _stored_ids(engine, channel.id)))
            raise AssertionError(
                f"{len(missing)} accepted messages not stored, first {missing[:10]}\n"
                f"worker:\n{stack.worker.output()[-6000:]}\nweb:\n{stack.web.output()[-3000:]}"
            ) from None
        assert len(ids) == len(set(ids))
        assert len(accepted) >= 201
        # Nothing was stored that no one sent, and nothing refused slipped in twice.
        assert set(ids) <= set(accepted) | {f"o{n:04}" for n in range(100, 150)}
    finally:
        stack.stop()
        nats.stop()


async def test_the_worker_drains_on_sigterm(stack: Stack, engine: AsyncEngine) -> None:
    await stack.start()
    tenant = await make_tenant(engine)
    async with httpx.AsyncClient(base_url=stack.url, timeout=30) as client:
        channel = await make_channel(client, tenant)
        body = orjson.dumps({"events": [message_event(message_id=f"d{i}") for i in range(100)]})
        assert (
            await client.post(channel.path, content=body, headers=signed_headers(channel.secret, body))
        ).status_code == 202
    await wait_for(lambda: _len_at_least(engine, channel.id, 100))
    # uvicorn re-raises SIGTERM once its graceful shutdown is done, so -15 is a clean exit here.
    assert stack.worker.stop(timeout=10) in (0, -15)
    assert stack.web.stop(timeout=10) in (0, -15)
    assert "bus.consumer.stopped" in stack.worker.output()
    assert "Application shutdown complete" in stack.worker.output()
    assert "Application shutdown complete" in stack.web.output()


async def _len_at_least(engine: AsyncEngine, channel_id: str, count: int) -> bool:
    await asyncio.sleep(0)
    return len(await _stored_ids(engine, channel_id)) >= count
