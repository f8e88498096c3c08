"""Piazza's pipeline, measured from the sender's POST to the message being visible in the API.

A load run (in a child process) posts to the webhook endpoint; readers here follow each lane's
conversation with ``GET /v1/conversations/{id}/messages?cursor=...`` and note when each message first
shows up. Two *probe* lanes are read every 20 ms throughout, for latency; the others once a second
during the load (so that reading costs the server little while it is measured) and every 50 ms once
the load is over, to find when the last message became visible.
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import statistics
import time
import uuid
from dataclasses import dataclass

import aiohttp
import orjson

from bench.loadgen import LoadPlan, LoadResult, run_load
from bench.stack import Stack
from services.inbox import ids


@dataclass
class StepResult:
    """One load step: what was asked, accepted, and seen."""

    target: float
    batch: int
    accepted_rate: float
    visible_rate: float
    refused: dict[int, int]
    errors: int
    p50_ms: float | None
    p99_ms: float | None
    samples: int
    complete: bool

    @property
    def kept_up(self) -> bool:
        """True if the pipeline carried (almost) the whole target rate end to end."""
        return self.complete and self.visible_rate >= 0.9 * self.target


class Follower:
    """Reads one conversation's tail and records when each message first appears."""

    def __init__(
        self, session: aiohttp.ClientSession, base: str, conversation_id: uuid.UUID, interval: float
    ) -> None:
        self.session = session
        self.url = f"{base}/v1/conversations/{conversation_id}/messages"
        self.interval = interval
        self.seen: dict[str, float] = {}
        self.cursor: str | None = None
        self.hurry = asyncio.Event()

    async def follow(self, stop: asyncio.Event) -> None:
        if self.interval is None:
            await self.hurry.wait()
        while not stop.is_set():
            params = {"limit": "200", **({"cursor": self.cursor} if self.cursor else {})}
            async with self.session.get(self.url, params=params) as response:
                body = await response.read()
                status = response.status
            now = time.monotonic()
            if status == 200:
                page = orjson.loads(body)
                for message in page["data"]:
                    self.seen.setdefault(message["external_id"], now)
                self.cursor = page["next_cursor"] or self.cursor
                if page["has_more"]:
                    continue
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.hurry.wait(), self.interval)

    def speed_up(self, interval: float) -> None:
        """Read more often from now on (the load is over: find the last arrivals quickly)."""
        self.interval = interval
        self.hurry.set()
        self.hurry = asyncio.Event()


async def run_step(
    stack: Stack,
    *,
    rate: float,
    batch: int,
    lanes: int,
    duration: float,
    probes: int = 2,
    probe_interval: float = 0.02,
    background_interval: float = 1.0,
    drain_timeout: float = 60.0,
) -> StepResult:
    """Post at ``rate`` messages/s for ``duration`` seconds and follow everything to the API."""
    run_id = uuid.uuid4().hex[:8]
    plan = LoadPlan(
        url=f"{stack.url}/webhooks/{stack.channel_id}",
        secret=stack.secret,
        rate=rate,
        duration=duration,
        batch=batch,
        lanes=lanes,
        run_id=run_id,
    )
    channel = uuid.UUID(stack.channel_id)
    connector = aiohttp.TCPConnector(limit=lanes + 4)
    async with aiohttp.ClientSession(connector=connector, headers=stack.auth) as session:
        followers = [
            Follower(
                session,
                stack.url,
                ids.conversation_id(channel, f"{run_id}-lane-{lane}"),
                probe_interval if lane < probes else background_interval,
            )
            for lane in range(lanes)
        ]
        stop = asyncio.Event()
        tasks = [asyncio.create_task(f.follow(stop)) for f in followers]
        result = await _load_in_child(plan)
        sent = dict(result.sent)
        for follower in followers[probes:]:
            follower.speed_up(0.05)
        deadline = time.monotonic() + drain_timeout
        while time.monotonic() < deadline:
            if sum(len(f.seen) for f in followers) >= len(sent):
                break
            await asyncio.sleep(0.1)
        stop.set()
        await asyncio.gather(*tasks)
    seen = {key: at for f in followers for key, at in f.seen.items()}
    latencies = sorted(
        (seen[key] - sent[key]) * 1000 for f in followers[:probes] for key in f.seen if key in sent
    )
    accepted = len(sent)
    span = result.finished - result.started
    last_visible = max(seen.values(), default=result.started)
    complete = all(key in seen for key in sent)
    return StepResult(
        target=rate,
        batch=batch,
        accepted_rate=accepted / span if span else 0.0,
        visible_rate=accepted / (last_visible - result.started) if complete and accepted else 0.0,
        refused=result.refused,
        errors=result.errors,
        p50_ms=statistics.median(latencies) if latencies else None,
        p99_ms=latencies[min(len(latencies) - 1, int(len(latencies) * 0.99))] if latencies else None,
        samples=len(latencies),
        complete=complete,
    )


async def _load_in_child(plan: LoadPlan) -> LoadResult:
    context = multiprocessing.get_context("spawn")
    loop = asyncio.get_running_loop()
    with context.Pool(1) as pool:
        pending = pool.apply_async(run_load, (plan,))
        return await loop.run_in_executor(None, pending.get)


async def saturate(
    stack: Stack, *, rates: list[float], batch: int, lanes: int, duration: float
) -> list[StepResult]:
    """Raise the rate step by step until the pipeline stops keeping up (two steps in a row)."""
    steps: list[StepResult] = []
    misses = 0
    for rate in rates:
        step = await run_step(stack, rate=rate, batch=batch, lanes=lanes, duration=duration)
        steps.append(step)
        print(
            f"  batch={batch:<3} target={rate:>7.0f}/s accepted={step.accepted_rate:>7.0f}/s "
            f"visible={step.visible_rate:>7.0f}/s p50={_ms(step.p50_ms)} p99={_ms(step.p99_ms)} "
            f"refused={step.refused} errors={step.errors}",
            flush=True,
        )
        misses = 0 if step.kept_up else misses + 1
        if misses >= 2:
            break
    return steps


def _ms(value: float | None) -> str:
    return "   n/a" if value is None else f"{value:6.1f}ms"
