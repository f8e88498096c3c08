"""Crisis alerts through the real store and bus: a spike opens one incident, announced once; a new
peak updates it; calm closes it; normal noise stays quiet; keywords and negative share alarm too."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.analytics.buckets import bucket_of
from services.analytics.config import AnalyticsSettings
from services.analytics.facts import MessageSeen
from services.analytics.models import Incident, WorkspaceSettings
from services.analytics.service import alerts
from services.analytics.service.ingest import store_facts
from shared.bus.client import Bus
from shared.db import session_factory
from shared.events import utcnow

pytestmark = [pytest.mark.db, pytest.mark.bus]

SECONDS = 60


@pytest.fixture
async def bus(nats_url: str, bus_prefix: str) -> AsyncIterator[Bus]:
    bus = await Bus.connect(nats_url, name="tests", prefix=bus_prefix)
    yield bus
    await bus.close()


@pytest.fixture
def settings(settings_kwargs: dict[str, object]) -> AnalyticsSettings:
    return AnalyticsSettings(
        **settings_kwargs,  # type: ignore[arg-type]
        bucket_seconds=SECONDS,
        baseline_buckets=60,
        alert_min_count=10,
        calm_buckets=2,
    )


class Channel:
    """One channel's traffic, written as facts a bucket at a time."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.sessions = sessions
        self.workspace = uuid.uuid4()
        self.channel = uuid.uuid4()
        self.rng = random.Random(3)

    async def bucket(
        self, start: datetime, count: int, *, negative: int = 0, text: str = "hello there"
    ) -> None:
        facts = [
            MessageSeen(
                id=uuid.uuid4(),
                workspace_id=self.workspace,
                channel_id=self.channel,
                conversation_id=uuid.uuid4(),
                direction="inbound",
                author_key=f"author-{self.rng.randrange(1000)}",
                occurred_at=start + timedelta(seconds=self.rng.uniform(0, SECONDS - 1)),
                sentiment="negative" if n < negative else "neutral",
                sentiment_score=-0.7 if n < negative else 0.0,
                text=text,
            )
            for n in range(count)
        ]
        async with self.sessions() as session, session.begin():
            await store_facts(session, facts, bucket_seconds=SECONDS)

    async def incidents(self) -> list[Incident]:
        async with self.sessions() as session:
            rows = await session.execute(
                select(Incident).where(Incident.workspace_id == self.workspace).order_by(Incident.started_at)
            )
            return list(rows.scalars())


async def _events(bus: Bus, channel: Channel) -> tuple[list[dict[str, object]], object]:
    seen: list[dict[str, object]] = []

    async def collect(msg: object) -> None:
        seen.append(orjson.loads(msg.data))  # type: ignore[attr-defined]

    subscription = await bus.nc.subscribe(
        bus.names.subject(f"domain.{channel.workspace}.alert.*"), cb=collect
    )
    return seen, subscription


async def test_a_spike_opens_one_alert_a_new_peak_updates_it_and_calm_closes_it(
    engine: AsyncEngine, bus: Bus, settings: AnalyticsSettings
) -> None:
    channel = Channel(session_factory(engine))
    now = bucket_of(utcnow(), SECONDS)
    for back in range(30, 0, -1):  # half an hour of 1-3 messages a minute
        await channel.bucket(now - timedelta(seconds=SECONDS * back), channel.rng.randint(1, 3))
    seen, subscription = await _events(bus, channel)
    target = {(channel.workspace, channel.channel)}

    assert await alerts.detect(channel.sessions, bus, settings, target, now + timedelta(seconds=5)) == []

    await channel.bucket(now, 40)
    opened = await alerts.detect(channel.sessions, bus, settings, target, now + timedelta(seconds=30))
    assert len(opened) == 1
    [incident] = await channel.incidents()
    assert (incident.kind, incident.status, incident.peak_value) == ("volume", "open", 40)
    # Assessed again while it lasts: not repeated.
    assert await alerts.detect(channel.sessions, bus, settings, target, now + timedelta(seconds=50)) == []

    later = now + timedelta(seconds=SECONDS)
    await channel.bucket(later, 70)
    assert (
        len(await alerts.detect(channel.sessions, bus, settings, target, later + timedelta(seconds=30))) == 1
    )
    [incident] = await channel.incidents()
    assert (incident.peak_value, incident.peak_at) == (70, later)

    # Two quiet minutes close it; the end is the start of the calm.
    calm = later + timedelta(seconds=SECONDS)
    await channel.bucket(calm, 2)
    await channel.bucket(calm + timedelta(seconds=SECONDS), 1)
    closed = await alerts.detect(
        channel.sessions, bus, settings, target, calm + timedelta(seconds=2 * SECONDS + 5)
    )
    assert len(closed) == 1
    [incident] = await channel.incidents()
    assert (incident.status, incident.ended_at) == ("closed", calm)

    async def announced() -> list[str]:
        return [str(e["type"]) for e in seen]

    for _ in range(100):
        if len(await announced()) == 3:
            break
        await asyncio.sleep(0.05)
    assert await announced() == ["alert.opened", "alert.updated", "alert.closed"]
    assert seen[0]["payload"]["data"]["channel_id"] == str(channel.channel)  # type: ignore[index]
    await subscription.unsubscribe()  # type: ignore[attr-defined]


async def test_normal_noise_stays_quiet(engine: AsyncEngine, bus: Bus, settings: AnalyticsSettings) -> None:
    channel = Channel(session_factory(engine))
    now = bucket_of(utcnow(), SECONDS)
    start = now - timedelta(seconds=SECONDS * 120)
    target = {(channel.workspace, channel.channel)}
    for n in range(120):  # two hours of Poisson-like traffic around 8 a minute, a third negative
        bucket = start + timedelta(seconds=SECONDS * n)
        count = sum(1 for _ in range(16) if channel.rng.random() < 0.5)
        await channel.bucket(bucket, count, negative=count // 3)
        await alerts.detect(channel.sessions, bus, settings, target, bucket + timedelta(seconds=SECONDS - 1))
    assert await channel.incidents() == []


async def test_a_watched_keyword_and_a_negative_share_alarm(
    engine: AsyncEngine, bus: Bus, settings: AnalyticsSettings
) -> None:
    channel = Channel(session_factory(engine))
    async with channel.sessions() as session, session.begin():
        session.add(
            WorkspaceSettings(
                workspace_id=channel.workspace,
                timezone="UTC",
                working_hours={},
                watched_keywords=["outage"],
                report_schedule={},
                updated_at=utcnow(),
            )
        )
    now = bucket_of(utcnow(), SECONDS)
    for back in range(30, 0, -1):
        await channel.bucket(now - timedelta(seconds=SECONDS * back), 20, negative=2)
    await channel.bucket(now, 20, negative=15, text="total OUTAGE again, nothing works")
    target = {(channel.workspace, channel.channel)}
    await alerts.detect(channel.sessions, bus, settings, target, now + timedelta(seconds=30))
    kinds = {(i.kind, i.key) for i in await channel.incidents()}
    assert kinds == {("keyword", "outage"), ("negative_share", "")}
