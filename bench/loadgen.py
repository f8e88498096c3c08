"""An open-loop load generator for webhooks, run in a process of its own.

Each *lane* is one conversation: it posts one request at a time (single events, or batches of
``batch`` events) at the lane's share of the target rate, so within a lane the platform timestamps
increase in the order the messages are published, and a reader following the conversation's tail
with its cursor misses nothing. Lanes run concurrently over one keep-alive connection pool.
"""

from __future__ import annotations

import asyncio
import time
import uuid
from dataclasses import dataclass, field
from datetime import UTC, datetime

import aiohttp
import orjson

from shared.webhooks.signing import sign


@dataclass
class LoadResult:
    """What a load run sent and how the server answered."""

    sent: list[tuple[str, float]] = field(default_factory=list)  # (external id, monotonic send time)
    accepted_requests: int = 0
    refused: dict[int, int] = field(default_factory=dict)
    errors: int = 0
    started: float = 0.0
    finished: float = 0.0
    request_latencies: list[float] = field(default_factory=list)


@dataclass(frozen=True)
class LoadPlan:
    """How to load one webhook channel."""

    url: str
    secret: str
    rate: float  # messages per second, all lanes together
    duration: float
    batch: int = 1
    lanes: int = 32
    run_id: str = ""


def run_load(plan: LoadPlan) -> LoadResult:
    """Entry point for a child process."""
    return asyncio.run(_run(plan))


async def _run(plan: LoadPlan) -> LoadResult:
    result = LoadResult()
    connector = aiohttp.TCPConnector(limit=plan.lanes, force_close=False)
    async with aiohttp.ClientSession(connector=connector, timeout=aiohttp.ClientTimeout(total=30)) as session:
        requests_per_lane = plan.rate / plan.batch / plan.lanes
        interval = 1.0 / requests_per_lane
        result.started = time.monotonic()
        end = result.started + plan.duration
        await asyncio.gather(
            *(_lane(session, plan, lane, interval, end, result) for lane in range(plan.lanes))
        )
        result.finished = time.monotonic()
    return result


async def _lane(
    session: aiohttp.ClientSession, plan: LoadPlan, lane: int, interval: float, end: float, result: LoadResult
) -> None:
    thread = f"{plan.run_id}-lane-{lane}"
    # Spread the lanes' first requests over one interval.
    next_at = time.monotonic() + interval * lane / plan.lanes
    number = 0
    while next_at < end:
        delay = next_at - time.monotonic()
        if delay > 0:
            await asyncio.sleep(delay)
        events = []
        for _ in range(plan.batch):
            events.append(
                {
                    "type": "message.created",
                    "id": f"{thread}-{number}",
                    "thread": {"id": thread},
                    "author": {"id": f"author-{lane}-{number % 50}", "name": "Bench"},
                    "text": f"benchmark message {number} of lane {lane}",
                    "occurred_at": datetime.now(UTC).isoformat(),
                }
            )
            number += 1
        body = orjson.dumps({"events": events} if plan.batch > 1 else events[0])
        headers = {
            **sign(plan.secret, uuid.uuid4().hex, int(time.time()), body).as_dict(),
            "content-type": "application/json",
        }
        sent_at = time.monotonic()
        try:
            async with session.post(plan.url, data=body, headers=headers) as response:
                await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError):
            result.errors += 1
            status = 0
        if status == 202:
            result.accepted_requests += 1
            result.sent += [(e["id"], sent_at) for e in events]
            result.request_latencies.append(time.monotonic() - sent_at)
        elif status:
            result.refused[status] = result.refused.get(status, 0) + 1
        # Open loop: the schedule does not wait for slow answers, unless we are already behind it.
        next_at = max(next_at + interval, time.monotonic() - interval)
