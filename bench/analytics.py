"""Analytics: domain events per second into facts and rollups, and KPI latency at a million messages.

One run, one scratch database (PostgreSQL when ``DATABASE_URL`` names one, else SQLite):

* **ingest**: a stream of message events (time-ordered, as the live stream is; 70 % customer
  messages with text, sentiment and authors over 100,000 conversations, 30 % agents' replies), plus a
  status change for most conversations, goes through :func:`store_facts` in batches, one transaction
  each, exactly as the worker stores them (on PostgreSQL with an ``ANALYZE`` every 25 batches, as
  autovacuum keeps a growing table's statistics fresh). The raw limit is inserting the same message rows into a
  bare table with only its primary key, in the same batches.
* **KPIs**: once the million messages are in, each query of the API is timed (summary of 30 days,
  with a label filter, a daily and an hourly series, agents, channels, hot topics, a month's CSV
  rows). The raw limit is the one statement that answers the simplest of them from the facts alone
  (a month's inbound count and distinct authors straight off the message table).
"""

from __future__ import annotations

import os
import random
import statistics
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import asyncpg
from sqlalchemy import Column, DateTime, MetaData, String, Table, Text, Uuid, func, insert, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import AsyncSession

from piazza.registry import migrate_all
from services.analytics import hours
from services.analytics.facts import Fact, LabelsChanged, MessageSeen, StatusChanged
from services.analytics.models import MessageFact
from services.analytics.repository.queries import Scope
from services.analytics.service import kpis, reports, topics_query
from services.analytics.service.ingest import store_facts
from shared.config import normalize_database_url
from shared.db import create_engine, session_factory

VOCABULARY = [
    "order",
    "delivery",
    "refund",
    "battery",
    "screen",
    "broken",
    "love",
    "great",
    "app",
    "update",
    "crash",
    "login",
    "password",
    "account",
    "price",
    "shipping",
    "late",
    "support",
    "thanks",
    "awesome",
    "terrible",
    "slow",
    "fast",
    "help",
    "please",
    "issue",
    "bug",
    "feature",
    "ordine",
    "consegna",
    "rimborso",
    "batteria",
    "schermo",
    "rotto",
    "grazie",
    "ottimo",
    "lento",
    "aiuto",
    "problema",
    "#promo",
    "#sale",
    "🔥",
    "😡",
    "😍",
]
LABELS = ("negative", "neutral", "positive")


@dataclass
class Report:
    """What one run measured."""

    backend: str
    messages: int
    conversations: int
    ingest_seconds: float = 0.0
    raw_seconds: float = 0.0
    events: int = 0
    latencies: dict[str, list[float]] = field(default_factory=dict)

    @property
    def ingest_rate(self) -> float:
        return self.events / self.ingest_seconds if self.ingest_seconds else 0.0

    @property
    def raw_rate(self) -> float:
        return self.messages / self.raw_seconds if self.raw_seconds else 0.0


def _stream(messages: int, conversations: int, seed: int = 7) -> tuple[uuid.UUID, list[list[Fact]]]:
    """The workspace and its facts in time order, cut into batches of about 2,000 events."""
    rng = random.Random(seed)
    workspace = uuid.uuid4()
    channels = [uuid.uuid4() for _ in range(5)]
    agents = [str(uuid.uuid4()) for _ in range(10)]
    conversation_ids = [uuid.uuid4() for _ in range(conversations)]
    channel_of = {c: rng.choice(channels) for c in conversation_ids}
    start = datetime(2026, 10, 1, tzinfo=UTC)
    span = timedelta(days=30).total_seconds() * messages / 1_000_000  # a million messages a month
    labelled: set[uuid.UUID] = set()
    batches: list[list[Fact]] = []
    batch: list[Fact] = []
    for n in range(messages):
        conversation = conversation_ids[rng.randrange(conversations)]
        at = start + timedelta(seconds=span * n / messages)
        if conversation not in labelled and conversation.int % 10 == 0:
            # A tenth of the conversations are tagged "vip" when they first show up.
            labelled.add(conversation)
            batch.append(
                LabelsChanged(
                    event_id=uuid.uuid4().hex,
                    workspace_id=workspace,
                    conversation_id=conversation,
                    occurred_at=at,
                    labels=("vip",),
                )
            )
        inbound = rng.random() < 0.7
        label = rng.choice(LABELS) if inbound else None
        batch.append(
            MessageSeen(
                id=uuid.uuid4(),
                workspace_id=workspace,
                channel_id=channel_of[conversation],
                conversation_id=conversation,
                direction="inbound" if inbound else "outbound",
                author_key=f"author-{rng.randrange(20_000)}" if inbound else rng.choice(agents),
                occurred_at=at,
                sentiment=label,
                sentiment_score={"negative": -0.6, "neutral": 0.0, "positive": 0.6}.get(label or ""),
                language="en",
                text=" ".join(rng.choices(VOCABULARY, k=rng.randint(3, 12))) if inbound else "thanks, on it",
            )
        )
        if rng.random() < conversations * 0.6 / messages:
            batch.append(
                StatusChanged(
                    event_id=uuid.uuid4().hex,
                    workspace_id=workspace,
                    conversation_id=conversation,
                    channel_id=channel_of[conversation],
                    occurred_at=at + timedelta(minutes=5),
                    before="open",
                    after="resolved",
                    actor_user_id=uuid.UUID(rng.choice(agents)),
                )
            )
        if len(batch) >= 2000:
            batches.append(batch)
            batch = []
    if batch:
        batches.append(batch)
    return workspace, batches


_RAW = Table(
    "bench_raw_messages",
    MetaData(),
    Column("id", Uuid, primary_key=True),
    Column("workspace_id", Uuid),
    Column("channel_id", Uuid),
    Column("conversation_id", Uuid),
    Column("direction", String(16)),
    Column("author_key", String(64)),
    Column("occurred_at", DateTime(timezone=True)),
    Column("sentiment", String(16)),
    Column("text", Text),
)


async def _timed(runs: int, query: Callable[[], Awaitable[Any]]) -> list[float]:
    await query()  # warm caches and prepared statements
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        await query()
        times.append(time.perf_counter() - started)
    return times


async def measure(messages: int, conversations: int, progress: Callable[[str], None]) -> Report:
    """Run the benchmark in a scratch database of its own."""
    base = os.environ.get("DATABASE_URL", "")
    scratch: str | None = None
    folder = tempfile.TemporaryDirectory(prefix="piazza-bench-analytics-")
    if base.startswith("postgres"):
        scratch = f"piazza_bench_analytics_{uuid.uuid4().hex[:8]}"
        dsn = (
            make_url(normalize_database_url(base))
            .set(drivername="postgresql")
            .render_as_string(hide_password=False)
        )
        connection = await asyncpg.connect(dsn)
        await connection.execute(f'CREATE DATABASE "{scratch}"')
        await connection.close()
        url = (
            make_url(normalize_database_url(base)).set(database=scratch).render_as_string(hide_password=False)
        )
    else:
        url = f"sqlite+aiosqlite:///{Path(folder.name) / 'bench.db'}"
    try:
        await migrate_all(url)
        return await _run(url, messages, conversations, progress)
    finally:
        if scratch is not None:
            connection = await asyncpg.connect(dsn)
            await connection.execute(f'DROP DATABASE IF EXISTS "{scratch}" WITH (FORCE)')
            await connection.close()
        folder.cleanup()


async def _run(url: str, messages: int, conversations: int, progress: Callable[[str], None]) -> Report:
    engine = create_engine(url)
    sessions = session_factory(engine)
    report = Report(make_url(url).get_backend_name(), messages, conversations)
    progress(f"analytics: generating {messages:,} messages over {conversations:,} conversations…")
    workspace, batches = _stream(messages, conversations)
    report.events = sum(len(batch) for batch in batches)
    try:
        async with engine.begin() as connection:
            await connection.run_sync(_RAW.metadata.create_all)
        progress("analytics: raw inserts…")
        started = time.perf_counter()
        for batch in batches:
            rows = [
                {
                    "id": f.id,
                    "workspace_id": f.workspace_id,
                    "channel_id": f.channel_id,
                    "conversation_id": f.conversation_id,
                    "direction": f.direction,
                    "author_key": f.author_key,
                    "occurred_at": f.occurred_at,
                    "sentiment": f.sentiment,
                    "text": f.text,
                }
                for f in batch
                if isinstance(f, MessageSeen)
            ]
            async with sessions() as session, session.begin():
                await session.execute(insert(_RAW), rows)
        report.raw_seconds = time.perf_counter() - started
        progress(f"analytics: raw {report.raw_rate:,.0f} rows/s; storing facts and rollups…")
        started = time.perf_counter()
        for index, batch in enumerate(batches):
            async with sessions() as session, session.begin():
                await store_facts(session, batch, bucket_seconds=300)
            if index % 25 == 24 and report.backend == "postgresql":
                # What autovacuum does to a table that grows: without fresh statistics the planner
                # keeps the plans of an empty table (sequential scans) and every batch costs more.
                async with engine.connect() as connection:
                    await connection.execute(text("ANALYZE"))
            if index % 50 == 49:
                done = sum(len(b) for b in batches[: index + 1])
                progress(f"analytics: {done:,} events, {done / (time.perf_counter() - started):,.0f}/s")
        report.ingest_seconds = time.perf_counter() - started
        progress(f"analytics: {report.ingest_rate:,.0f} events/s; vacuuming, then timing KPI queries…")
        # What autovacuum does after a large insert: marks pages all-visible (index-only scans need
        # it) and refreshes statistics. The raw query below benefits from it as much as Piazza's.
        async with engine.connect() as connection:
            autocommit = await connection.execution_options(isolation_level="AUTOCOMMIT")
            await autocommit.execute(text("VACUUM ANALYZE" if report.backend == "postgresql" else "ANALYZE"))
        report.latencies = await _kpis(sessions, workspace)
    finally:
        await engine.dispose()
    return report


async def _kpis(sessions: Any, workspace: uuid.UUID) -> dict[str, list[float]]:
    month = Scope(workspace, datetime(2026, 10, 1, tzinfo=UTC), datetime(2026, 10, 31, tzinfo=UTC))
    week = Scope(workspace, datetime(2026, 10, 20, tzinfo=UTC), datetime(2026, 10, 27, tzinfo=UTC))
    day = Scope(workspace, datetime(2026, 10, 26, tzinfo=UTC), datetime(2026, 10, 27, tzinfo=UTC))
    zone = hours.zone("Europe/Rome")
    async with sessions() as session:
        session: AsyncSession
        label_scope = Scope(workspace, month.since, month.until, labels=("vip",))

        async def raw() -> Any:
            return (
                await session.execute(
                    select(func.count(), func.count(func.distinct(MessageFact.author_key))).where(
                        MessageFact.workspace_id == workspace,
                        MessageFact.occurred_at >= month.since,
                        MessageFact.occurred_at < month.until,
                        MessageFact.direction == "inbound",
                    )
                )
            ).all()

        queries: dict[str, Callable[[], Awaitable[Any]]] = {
            "raw: a month's inbound count and distinct authors from the facts": raw,
            "summary, 30 days": lambda: kpis.summary(session, month),
            "summary, 30 days, label filter": lambda: kpis.summary(session, label_scope),
            "time series, 30 days by day": lambda: kpis.timeseries(
                session, month, kpis.bucket_edges(month.since, month.until, "day", zone)
            ),
            "time series, 7 days by hour": lambda: kpis.timeseries(
                session, week, kpis.bucket_edges(week.since, week.until, "hour", zone)
            ),
            "agents, 30 days": lambda: kpis.agents(session, month),
            "channels, 30 days": lambda: kpis.channels(session, month),
            "hot topics, a day against 7": lambda: topics_query.hot_topics(
                session, day, baseline_days=7, min_count=3, limit=20
            ),
            "CSV rows, 30 days": lambda: reports.conversation_rows(
                session, workspace, month.since, month.until
            ),
        }
        return {name: await _timed(10, query) for name, query in queries.items()}


def render(report: Report, header: str) -> str:
    """The markdown section of one run."""
    raw_kpi = statistics.median(next(iter(report.latencies.values()))) if report.latencies else 0.0
    lines = [
        header,
        "",
        "| ingest | events/s | raw inserts/s | ratio |",
        "|---|---|---|---|",
        f"| {report.events:,} events ({report.messages:,} messages, {report.conversations:,} conversations) "
        f"| {report.ingest_rate:,.0f} | {report.raw_rate:,.0f} | {report.ingest_rate / report.raw_rate:.0%} |"
        if report.raw_rate
        else "| - | - | - | - |",
        "",
        "| KPI query at the million messages | p50 ms | p95 ms | p50 vs raw |",
        "|---|---|---|---|",
    ]
    for name, times in report.latencies.items():
        ordered = sorted(times)
        p50 = statistics.median(ordered)
        p95 = ordered[min(len(ordered) - 1, round(0.95 * (len(ordered) - 1)))]
        ratio = f"{p50 / raw_kpi:.2f}x" if raw_kpi else "-"
        lines.append(f"| {name} | {p50 * 1000:,.1f} | {p95 * 1000:,.1f} | {ratio} |")
    return "\n".join(lines) + "\n"
