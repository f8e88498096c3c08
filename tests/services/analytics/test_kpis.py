"""KPI answers equal a brute-force computation from the facts, whatever the scope: time range,
channels, no label, one label (its rollups) or several (the facts), as a summary, per channel and
per bucket of a time series (a property test on SQLite and PostgreSQL; on PostgreSQL the
percentiles are the database's own)."""

from __future__ import annotations

import asyncio
import random
import statistics
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.analytics.buckets import hour_of
from services.analytics.facts import Fact, LabelsChanged, MessageSeen, SentimentCorrected, StatusChanged
from services.analytics.models import LabelAuthorHour, LabelHourlyRollup
from services.analytics.repository.queries import Durations, Scope, bucket_case
from services.analytics.repository.rollups import recompute_label_hours
from services.analytics.service import kpis
from services.analytics.service.ingest import store_facts
from shared.db import session_factory
from tests.services.analytics.test_rollups import BASE, _deliver, _expected, _stream, counted

pytestmark = pytest.mark.db


def _brute_summary(facts: Sequence[Fact], scope: Scope) -> dict[str, Any]:
    """The summary's figures of ``scope``, counted one fact at a time."""
    messages = counted(facts)
    conversations = _expected(facts)["conversations"]
    channel_of = {c: v["channel_id"] for c, v in conversations.items()}

    def effective(m: MessageSeen) -> str | None:
        mine = sorted(
            (f for f in facts if isinstance(f, SentimentCorrected) and f.message_id == m.id),
            key=lambda c: (c.occurred_at, c.event_id),
        )
        return (mine[-1].label if mine and mine[-1].label else None) or m.sentiment

    def in_range(at: datetime | None) -> bool:
        return at is not None and scope.since <= at < scope.until

    def conversation_matches(conversation: Any) -> bool:
        row = conversations[conversation]
        return (not scope.channels or row["channel_id"] in scope.channels) and set(scope.labels) <= set(
            row["labels"]
        )

    scoped = [
        m
        for m in messages
        if in_range(m.occurred_at)
        and channel_of.get(m.conversation_id)
        and conversation_matches(m.conversation_id)
    ]
    inbound = [m for m in scoped if m.direction == "inbound"]
    first_seen: dict[str, tuple[datetime, str, Any]] = {}
    for m in messages:
        if m.direction == "inbound" and m.author_key is not None and channel_of.get(m.conversation_id):
            seen = (m.occurred_at, str(m.id), channel_of[m.conversation_id])
            first_seen[m.author_key] = min(first_seen.get(m.author_key, seen), seen)
    unique = {m.author_key for m in inbound if m.author_key is not None}
    if scope.labels:
        first_time = {a for a in unique if in_range(first_seen[a][0])}
    else:
        first_time = {
            a
            for a, (at, _, channel) in first_seen.items()
            if in_range(at) and (not scope.channels or channel in scope.channels)
        }
    matching = {c: v for c, v in conversations.items() if conversation_matches(c)}

    def seconds(end: str) -> list[float]:
        return [
            (v[end] - v["opened_at"]).total_seconds()
            for v in matching.values()
            if v["opened_at"] and in_range(v[end])
        ]

    reopened = [
        s
        for s in facts
        if isinstance(s, StatusChanged)
        and in_range(s.occurred_at)
        and s.before == "resolved"
        and s.after != "resolved"
        and s.conversation_id in matching
    ]
    by_id = {m.id: m for m in messages}
    corrections = [
        c
        for c in facts
        if isinstance(c, SentimentCorrected)
        and c.label is not None
        and in_range(c.occurred_at)
        and (
            not (scope.channels or scope.labels)
            or (c.message_id in by_id and by_id[c.message_id].conversation_id in matching)
        )
    ]
    sentiments = [effective(m) for m in inbound]
    return {
        "inbound": len(inbound),
        "outbound": sum(1 for m in scoped if m.direction == "outbound"),
        "negative": sentiments.count("negative"),
        "neutral": sentiments.count("neutral"),
        "positive": sentiments.count("positive"),
        "unique": len(unique),
        "first_time": len(first_time & unique) if scope.labels else min(len(first_time), len(unique)),
        "new": sum(1 for v in matching.values() if in_range(v["opened_at"])),
        "resolved": sum(1 for v in matching.values() if in_range(v["resolved_at"])),
        "reopened": len(reopened),
        "first_response": Durations.of(seconds("first_response_at")),
        "resolution": Durations.of(seconds("resolved_at")),
        "corrections": len(corrections),
    }


def _brute_agents(facts: Sequence[Fact], scope: Scope) -> dict[str, tuple[int, int, Any, int]]:
    """Per agent: replies, first responses, their median, resolutions."""
    conversations = _expected(facts)["conversations"]

    def in_range(at: datetime | None) -> bool:
        return at is not None and scope.since <= at < scope.until

    def matches(labels: list[str], channel: Any) -> bool:
        return (not scope.channels or channel in scope.channels) and set(scope.labels) <= set(labels)

    replies: dict[str, int] = {}
    for m in counted(facts):
        if m.direction == "outbound" and m.author_key is not None and in_range(m.occurred_at):
            row = conversations[m.conversation_id]
            if matches(row["labels"], m.channel_id or row["channel_id"]):
                replies[str(m.author_key)] = replies.get(str(m.author_key), 0) + 1
    firsts: dict[str, list[float]] = {}
    for row in conversations.values():
        if (
            row["first_responder_key"]
            and in_range(row["first_response_at"])
            and matches(row["labels"], row["channel_id"])
        ):
            seconds = (row["first_response_at"] - row["opened_at"]).total_seconds()
            firsts.setdefault(row["first_responder_key"], []).append(seconds)
    resolutions: dict[str, int] = {}
    for s in facts:
        if (
            isinstance(s, StatusChanged)
            and s.after == "resolved"
            and s.actor_user_id
            and in_range(s.occurred_at)
        ):
            row = conversations[s.conversation_id]
            if matches(row["labels"], row["channel_id"]):
                resolutions[str(s.actor_user_id)] = resolutions.get(str(s.actor_user_id), 0) + 1
    return {
        agent: (
            replies.get(agent, 0),
            len(firsts.get(agent, [])),
            pytest.approx(Durations.of(firsts.get(agent, [])).median),
            resolutions.get(agent, 0),
        )
        for agent in replies.keys() | firsts.keys() | resolutions.keys()
    }


def _figures(summary: dict[str, Any]) -> dict[str, Any]:
    """The same figures out of an API summary."""

    def durations(d: dict[str, Any]) -> Durations:
        return Durations(d["count"], d["median_seconds"], d["p90_seconds"], d["mean_seconds"])

    return {
        "inbound": summary["messages"]["inbound"],
        "outbound": summary["messages"]["outbound"],
        "negative": summary["sentiment"]["negative"],
        "neutral": summary["sentiment"]["neutral"],
        "positive": summary["sentiment"]["positive"],
        "unique": summary["authors"]["unique"],
        "first_time": summary["authors"]["first_time"],
        "new": summary["conversations"]["new"],
        "resolved": summary["conversations"]["resolved"],
        "reopened": summary["conversations"]["reopened"],
        "first_response": durations(summary["first_response"]),
        "resolution": durations(summary["resolution"]),
        "corrections": summary["sentiment"]["corrections"],
    }


def _approx(figures: dict[str, Any]) -> dict[str, Any]:
    def loose(d: Durations) -> Any:
        return (
            d.count,
            *(pytest.approx(v, abs=1e-6) if v is not None else None for v in (d.median, d.p90, d.mean)),
        )

    return {k: loose(v) if isinstance(v, Durations) else v for k, v in figures.items()}


def _scope(facts: Sequence[Fact], rng: random.Random) -> Scope:
    channels = sorted({f.channel_id for f in facts if isinstance(f, MessageSeen) and f.channel_id}, key=str)
    since = BASE + timedelta(hours=rng.randint(-1, 3))
    return Scope(
        facts[0].workspace_id,
        since,
        since + timedelta(hours=rng.randint(1, 5)),
        tuple(rng.sample(channels, rng.randint(0, len(channels)))),
        tuple(rng.sample(["bug", "vip", "billing"], rng.choice([0, 1, 1, 2]))),
    )


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), pick=st.integers(0, 2**32 - 1))
async def test_kpis_equal_a_brute_force_count(engine: AsyncEngine, seed: int, pick: int) -> None:
    facts = _stream(seed)
    rng = random.Random(pick)
    await _deliver(engine, facts, rng)
    async with session_factory(engine)() as session:
        for _ in range(4):
            scope = _scope(facts, rng)
            expected = _brute_summary(facts, scope)
            assert _approx(_figures(await kpis.summary(session, scope))) == _approx(expected), scope

            agents = {
                row["agent_id"]: (
                    row["replies"],
                    row["first_responses"],
                    row["first_response_median_seconds"],
                    row["resolutions"],
                )
                for row in await kpis.agents(session, scope)
            }
            assert agents == _brute_agents(facts, scope)

            for row in await kpis.channels(session, scope):
                one = Scope(scope.workspace_id, scope.since, scope.until, (row["channel_id"],), scope.labels)
                assert _approx(_figures(row)) == _approx(_brute_summary(facts, one))

            edges = kpis.bucket_edges(scope.since, scope.until, "hour", ZoneInfo("UTC"))
            points = await kpis.timeseries(session, scope, edges)
            for point in points:
                hour = Scope(scope.workspace_id, point["start"], point["end"], scope.channels, scope.labels)
                brute = _brute_summary(facts, hour)
                got = (
                    point["inbound"],
                    point["outbound"],
                    point["unique_authors"],
                    point["new_conversations"],
                )
                assert got == (brute["inbound"], brute["outbound"], brute["unique"], brute["new"])
                assert (point["negative"], point["neutral"], point["positive"], point["resolved"]) == (
                    brute["negative"],
                    brute["neutral"],
                    brute["positive"],
                    brute["resolved"],
                )
                assert point["first_response_median_seconds"] == pytest.approx(brute["first_response"].median)


def test_durations_interpolate_between_ranks_as_percentile_cont() -> None:
    assert Durations.of([]) == Durations()
    assert Durations.of([5.0]) == Durations(1, 5.0, 5.0, 5.0)
    figures = Durations.of([40.0, 10.0, 30.0, 20.0])
    assert figures == Durations(4, 25.0, pytest.approx(37.0), 25.0)
    assert Durations.of(list(map(float, range(101)))).p90 == 90.0
    assert statistics.median([1.0, 2.0, 9.0]) == Durations.of([1.0, 2.0, 9.0]).median


@pytest.mark.parametrize("buckets", [1, 2, 3, 7, 24, 31])
async def test_bucket_of_a_time_is_found_by_the_balanced_case(engine: AsyncEngine, buckets: int) -> None:
    from sqlalchemy import literal, select

    from shared.db import UTCDateTime

    start = datetime(2026, 3, 1, tzinfo=UTC)
    edges = [start + timedelta(hours=3 * i) for i in range(buckets + 1)]
    async with engine.connect() as connection:
        for offset in range(3 * buckets + 2):
            at = start + timedelta(hours=offset)
            found = (
                await connection.execute(select(bucket_case(literal(at, UTCDateTime()), edges)))
            ).scalar()
            assert found == (offset // 3 if offset < 3 * buckets else -1)


def _inbound(
    workspace: uuid.UUID,
    channel: uuid.UUID,
    conversation: uuid.UUID,
    at: datetime,
    author: str | None,
    sentiment: str | None = None,
) -> MessageSeen:
    """A customer's message."""
    return MessageSeen(
        id=uuid.uuid4(),
        workspace_id=workspace,
        channel_id=channel,
        conversation_id=conversation,
        direction="inbound",
        author_key=author,
        occurred_at=at,
        sentiment=sentiment,
        sentiment_score=None,
        language=None,
        text="hello",
    )


async def test_a_message_without_an_author_is_in_no_author_count(engine: AsyncEngine) -> None:
    """Whichever way a scope is answered (rollups, a label's rollups, the facts for two labels)."""
    workspace, channel, conversation = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    at = BASE + timedelta(minutes=10)

    tags = LabelsChanged(
        event_id="tags",
        workspace_id=workspace,
        conversation_id=conversation,
        occurred_at=at,
        labels=("a", "b"),
    )
    async with session_factory(engine)() as session, session.begin():
        await store_facts(
            session,
            [
                _inbound(workspace, channel, conversation, at, None),
                _inbound(workspace, channel, conversation, at, "jane"),
                tags,
            ],
            bucket_seconds=300,
        )
    async with session_factory(engine)() as session:
        for labels in ((), ("a",), ("a", "b")):
            scope = Scope(workspace, BASE, BASE + timedelta(hours=1), labels=labels)
            figures = await kpis.summary(session, scope)
            assert figures["messages"]["inbound"] == 2, labels
            assert figures["authors"] == {"unique": 1, "first_time": 1, "returning": 0}, labels


async def test_label_rollups_recounted_by_two_transactions_at_once_both_commit(
    engine: AsyncEngine, backend: str
) -> None:
    """A second worker (or a rebuild) may recount the same label hour while the first has not
    committed: the second waits and writes over, it does not fail on the first one's rows."""
    if backend == "sqlite":
        pytest.skip("SQLite runs one writer at a time")
    workspace, channel, conversation = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    at = BASE + timedelta(minutes=5)
    tags = LabelsChanged(
        event_id="tags-race",
        workspace_id=workspace,
        conversation_id=conversation,
        occurred_at=at,
        labels=("vip",),
    )
    first = _inbound(workspace, channel, conversation, at, "jane", sentiment="negative")
    sessions = session_factory(engine)
    async with sessions() as session, session.begin():
        await store_facts(session, [first, tags], bucket_seconds=300)
    keys = {(workspace, "vip", channel, hour_of(at))}
    async with sessions() as one, sessions() as two:
        await one.begin()
        await two.begin()
        await one.execute(delete(LabelHourlyRollup).where(LabelHourlyRollup.workspace_id == workspace))
        await one.execute(delete(LabelAuthorHour).where(LabelAuthorHour.workspace_id == workspace))
        await one.commit()
        await one.begin()
        await recompute_label_hours(one, keys)  # rows written, not committed
        second = asyncio.create_task(recompute_label_hours(two, keys))  # waits on them
        await asyncio.sleep(0.3)
        await one.commit()
        await second
        await two.commit()
    async with sessions() as session:
        rows = (
            await session.execute(
                select(LabelHourlyRollup).where(LabelHourlyRollup.workspace_id == workspace)
            )
        ).scalars()
        assert [(r.label, r.inbound, r.negative) for r in rows] == [("vip", 1, 1)]


async def test_one_label_and_several_put_a_message_in_the_same_local_day(engine: AsyncEngine) -> None:
    """In a half-hour zone a local day starts inside a UTC hour: the label rollups and the facts
    read for several labels both count a message in the day its hour starts in."""
    workspace, channel, conversation = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    at = datetime(2026, 1, 5, 18, 45, tzinfo=UTC)  # 00:15 on 6 January in Kolkata
    facts: list[Fact] = [
        LabelsChanged(
            event_id="tags-kolkata",
            workspace_id=workspace,
            conversation_id=conversation,
            occurred_at=at,
            labels=("a", "b"),
        ),
        _inbound(workspace, channel, conversation, at, "ravi"),
    ]
    async with session_factory(engine)() as session, session.begin():
        await store_facts(session, facts, bucket_seconds=300)
    since, until = datetime(2026, 1, 4, tzinfo=UTC), datetime(2026, 1, 8, tzinfo=UTC)
    edges = kpis.bucket_edges(since, until, "day", ZoneInfo("Asia/Kolkata"))
    async with session_factory(engine)() as session:
        series = {
            labels: [
                (p["start"], p["inbound"], p["unique_authors"])
                for p in await kpis.timeseries(session, Scope(workspace, since, until, labels=labels), edges)
            ]
            for labels in ((), ("a",), ("a", "b"))
        }
    assert series[()] == series[("a",)] == series[("a", "b")]
    assert sum(inbound for _, inbound, _ in series[()]) == 1


async def test_two_batches_stored_at_once_are_both_counted(engine: AsyncEngine, backend: str) -> None:
    """Two workers storing batches of the same channel and hour at the same time: whichever commits
    last has counted the other's messages too."""
    if backend == "sqlite":
        pytest.skip("SQLite runs one writer at a time")
    workspace, channel = uuid.uuid4(), uuid.uuid4()
    at = BASE + timedelta(minutes=20)
    sessions = session_factory(engine)
    first = [_inbound(workspace, channel, uuid.uuid4(), at, f"a{n}") for n in range(3)]
    second = [_inbound(workspace, channel, uuid.uuid4(), at, f"b{n}") for n in range(4)]
    async with sessions() as one, sessions() as two:
        await one.begin()
        await store_facts(one, first, bucket_seconds=300)  # counted, not committed

        async def other_worker() -> None:
            await two.begin()
            await store_facts(two, second, bucket_seconds=300)
            await two.commit()

        racing = asyncio.create_task(other_worker())
        await asyncio.sleep(0.3)
        await one.commit()
        await racing
    async with sessions() as session:
        scope = Scope(workspace, BASE, BASE + timedelta(hours=1))
        figures = await kpis.summary(session, scope)
    assert figures["messages"]["inbound"] == 7
    assert figures["authors"]["unique"] == 7
