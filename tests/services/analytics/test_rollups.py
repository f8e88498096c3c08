"""Rollups equal a brute-force recomputation from the facts, whatever the order, batching and
redelivery of the events (a property test on SQLite and PostgreSQL)."""

from __future__ import annotations

import dataclasses
import random
import uuid
from collections import Counter, defaultdict
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.analytics import topics
from services.analytics.buckets import bucket_of, hour_of
from services.analytics.facts import Fact, LabelsChanged, MessageSeen, SentimentCorrected, StatusChanged
from services.analytics.models import (
    Author,
    AuthorHour,
    Bucket,
    ConversationFact,
    ConversationLabel,
    HourlyRollup,
    LabelAuthorHour,
    LabelHourlyRollup,
    TermCount,
)
from services.analytics.service.ingest import store_facts
from shared.db import session_factory

pytestmark = pytest.mark.db

BASE = datetime(2026, 11, 2, 8, 0, tzinfo=UTC)
BUCKET = 300
LABELS = ("negative", "neutral", "positive")
WORDS = ("battery", "refund", "love", "broken", "#promo", "delivery late", "ottimo", "🔥")


def _stream(seed: int) -> list[Fact]:
    """A random but plausible stream: two channels, a few conversations, authors, agents, status
    and label changes, and sentiment corrections (some arriving before their message)."""
    rng = random.Random(seed)
    workspace = uuid.uuid4()
    channels = [uuid.uuid4(), uuid.uuid4()]
    conversations = {uuid.uuid4(): rng.choice(channels) for _ in range(4)}
    authors = [f"author-{n}" for n in range(4)]
    agents = [uuid.uuid4(), uuid.uuid4()]
    facts: list[Fact] = []
    messages: list[MessageSeen] = []
    for _ in range(rng.randint(1, 30)):
        conversation, channel = rng.choice(list(conversations.items()))
        inbound = rng.random() < 0.7
        label = rng.choice(LABELS) if inbound and rng.random() < 0.9 else None
        message = MessageSeen(
            id=uuid.uuid4(),
            workspace_id=workspace,
            # An agent's reply event may not name its channel (older events): it is filled in.
            channel_id=channel if inbound or rng.random() < 0.5 else None,
            conversation_id=conversation,
            direction="inbound" if inbound else "outbound",
            author_key=rng.choice(authors) if inbound else str(rng.choice(agents)),
            occurred_at=BASE + timedelta(seconds=rng.randint(0, 4 * 3600)),
            sentiment=label,
            sentiment_score={"negative": -0.6, "neutral": 0.0, "positive": 0.7}[label] if label else None,
            language="en",
            text=" ".join(rng.sample(WORDS, rng.randint(1, 3))) if inbound else "thanks",
        )
        messages.append(message)
    for n, reply in enumerate(list(messages)):
        if reply.direction != "outbound" or reply.channel_id is None or rng.random() < 0.4:
            continue
        # A reply that reached the platform as some message; the platform may list it back, in the
        # same conversation (a comment) or in a thread of its own (a private message's).
        platform_id = f"t1_{seed}_{n}"
        messages[messages.index(reply)] = dataclasses.replace(reply, platform_ids=(platform_id,))
        if rng.random() < 0.7:
            thread = reply.conversation_id if rng.random() < 0.5 else uuid.uuid4()
            messages.append(_received_outbound(reply, thread, platform_id, rng))
    for n, native in enumerate(rng.sample(messages, min(2, len(messages)))):
        # Something the account posted on the platform itself: nothing to match, it counts.
        if native.channel_id is not None and rng.random() < 0.5:
            messages.append(_received_outbound(native, native.conversation_id, f"t1_native_{seed}_{n}", rng))
    facts.extend(messages)
    for n in range(rng.randint(0, 8)):
        conversation = rng.choice(list(conversations))
        before, after = rng.sample(["open", "pending", "resolved", "snoozed"], 2)
        facts.append(
            StatusChanged(
                event_id=f"status-{seed}-{n}-{uuid.uuid4().hex}",
                workspace_id=workspace,
                conversation_id=conversation,
                channel_id=None,
                occurred_at=BASE + timedelta(seconds=rng.randint(0, 5 * 3600)),
                before=before,
                after=after,
                actor_user_id=rng.choice(agents),
            )
        )
    for n in range(rng.randint(0, 4)):
        facts.append(
            LabelsChanged(
                event_id=f"labels-{seed}-{n}-{uuid.uuid4().hex}",
                workspace_id=workspace,
                conversation_id=rng.choice(list(conversations)),
                occurred_at=BASE + timedelta(seconds=rng.randint(0, 5 * 3600)),
                labels=tuple(sorted(rng.sample(["bug", "vip", "billing"], rng.randint(0, 2)))),
            )
        )
    inbound_messages = [m for m in messages if m.direction == "inbound"]
    for n in range(rng.randint(0, 5) if inbound_messages else 0):
        target = rng.choice(inbound_messages)
        facts.append(
            SentimentCorrected(
                event_id=f"correction-{seed}-{n}-{uuid.uuid4().hex}",
                workspace_id=workspace,
                conversation_id=target.conversation_id,
                message_id=target.id,
                occurred_at=BASE + timedelta(seconds=rng.randint(0, 5 * 3600), microseconds=n),
                label=rng.choice([*LABELS, None]),
                actor_user_id=rng.choice(agents),
            )
        )
    return facts


def _received_outbound(
    like: MessageSeen, conversation: uuid.UUID, platform_id: str, rng: random.Random
) -> MessageSeen:
    """An outbound message as received from the platform (no author, its platform id known)."""
    return MessageSeen(
        id=uuid.uuid4(),
        workspace_id=like.workspace_id,
        channel_id=like.channel_id,
        conversation_id=conversation,
        direction="outbound",
        author_key=None,
        occurred_at=like.occurred_at + timedelta(seconds=rng.randint(0, 5)),
        text=like.text,
        external_id=platform_id,
    )


def counted(facts: Sequence[Fact]) -> list[MessageSeen]:
    """The messages of these facts as they count: a message received with an id a reply became is
    that reply's copy, which counts nowhere."""
    messages = [f for f in facts if isinstance(f, MessageSeen)]
    became = {(m.channel_id, p): m.id for m in messages if m.channel_id for p in m.platform_ids}
    return [
        dataclasses.replace(m, direction="copy")
        if m.direction == "outbound" and became.get((m.channel_id, m.external_id), m.id) != m.id
        else m
        for m in messages
    ]


def _expected(facts: Sequence[Fact]) -> dict[str, Any]:
    """Every rollup, computed the slow and obvious way."""
    messages = counted(facts)
    statuses = [f for f in facts if isinstance(f, StatusChanged)]
    labels = [f for f in facts if isinstance(f, LabelsChanged)]
    corrections = [f for f in facts if isinstance(f, SentimentCorrected)]
    channel_of = {m.conversation_id: m.channel_id for m in messages if m.channel_id}

    def effective(m: MessageSeen) -> str | None:
        mine = sorted(
            (c for c in corrections if c.message_id == m.id), key=lambda c: (c.occurred_at, c.event_id)
        )
        return (mine[-1].label if mine and mine[-1].label else None) or m.sentiment

    hourly: dict[tuple[Any, ...], Counter[str]] = defaultdict(Counter)
    buckets: dict[tuple[Any, ...], Counter[str]] = defaultdict(Counter)
    terms: Counter[tuple[Any, ...]] = Counter()
    author_hours = set()
    first_seen: dict[str, tuple[datetime, str]] = {}
    for m in messages:
        channel = m.channel_id or channel_of.get(m.conversation_id)
        if channel is None:
            continue  # a reply in a conversation no message ever placed: counted nowhere per channel
        key = (channel, hour_of(m.occurred_at))
        hourly[key][m.direction] += 1
        if m.direction == "inbound":
            label = effective(m)
            if label:
                hourly[key][label] += 1
            buckets[(channel, bucket_of(m.occurred_at, BUCKET))]["inbound"] += 1
            buckets[(channel, bucket_of(m.occurred_at, BUCKET))]["negative"] += label == "negative"
            for term in topics.message_terms(m.text or "", m.language):
                terms[(channel, hour_of(m.occurred_at), term)] += 1
            author_hours.add((channel, hour_of(m.occurred_at), m.author_key))
            assert m.author_key is not None
            seen = (m.occurred_at, str(m.id))
            if m.author_key not in first_seen or seen < first_seen[m.author_key]:
                first_seen[m.author_key] = seen
    conversations = {}
    for conversation in (
        {m.conversation_id for m in messages}
        | {s.conversation_id for s in statuses}
        | {c.conversation_id for c in labels}
    ):
        mine = sorted(
            (m for m in messages if m.conversation_id == conversation), key=lambda m: (m.occurred_at, m.id)
        )
        inbound = [m for m in mine if m.direction == "inbound"]
        opened = inbound[0].occurred_at if inbound else None
        replies = [m for m in mine if m.direction == "outbound" and opened and m.occurred_at >= opened]
        changes = sorted(
            (s for s in statuses if s.conversation_id == conversation),
            key=lambda s: (s.occurred_at, s.event_id),
        )
        resolutions = [
            s.occurred_at for s in changes if s.after == "resolved" and opened and s.occurred_at >= opened
        ]
        tags = sorted(
            (c for c in labels if c.conversation_id == conversation),
            key=lambda c: (c.occurred_at, c.event_id),
        )
        conversations[conversation] = {
            "channel_id": channel_of.get(conversation),
            "opened_at": opened,
            "inbound_messages": len(inbound),
            "outbound_messages": sum(1 for m in mine if m.direction == "outbound"),
            "first_response_at": replies[0].occurred_at if replies else None,
            "first_responder_key": replies[0].author_key if replies else None,
            "resolved_at": min(resolutions) if resolutions else None,
            "reopen_count": sum(1 for s in changes if s.before == "resolved" and s.after != "resolved"),
            "status": changes[-1].after if changes else None,
            "first_sentiment": effective(inbound[0]) if inbound else None,
            "last_sentiment": effective(inbound[-1]) if inbound else None,
            "labels": list(tags[-1].labels) if tags else [],
        }
    label_hourly: dict[tuple[Any, ...], Counter[str]] = defaultdict(Counter)
    label_author_hours = set()
    for m in messages:
        channel = m.channel_id or channel_of.get(m.conversation_id)
        if channel is None:
            continue
        for label in conversations[m.conversation_id]["labels"]:
            key = (label, channel, hour_of(m.occurred_at))
            label_hourly[key][m.direction] += 1
            if m.direction == "inbound":
                label_hourly[key][effective(m) or "unscored"] += 1
                label_author_hours.add((*key, m.author_key))
    return {
        "hourly": {
            k: (v["inbound"], v["outbound"], v["negative"], v["neutral"], v["positive"])
            for k, v in hourly.items()
        },
        "label_hourly": {
            k: (v["inbound"], v["outbound"], v["negative"], v["neutral"], v["positive"])
            for k, v in label_hourly.items()
        },
        "label_author_hours": label_author_hours,
        "conversation_labels": {(label, c) for c, v in conversations.items() for label in v["labels"]},
        "buckets": {k: (v["inbound"], v["negative"]) for k, v in buckets.items()},
        "terms": dict(terms),
        "author_hours": author_hours,
        "authors": {a: t for a, (t, _) in first_seen.items()},
        "conversations": conversations,
    }


async def _stored(engine: AsyncEngine, workspace: uuid.UUID) -> dict[str, Any]:
    async with session_factory(engine)() as session:

        async def rows(model: Any) -> list[Any]:
            return list(
                (await session.execute(select(model).where(model.workspace_id == workspace))).scalars()
            )

        return {
            "hourly": {
                (r.channel_id, r.hour): (r.inbound, r.outbound, r.negative, r.neutral, r.positive)
                for r in await rows(HourlyRollup)
            },
            "label_hourly": {
                (r.label, r.channel_id, r.hour): (r.inbound, r.outbound, r.negative, r.neutral, r.positive)
                for r in await rows(LabelHourlyRollup)
            },
            "label_author_hours": {
                (r.label, r.channel_id, r.hour, r.author_key) for r in await rows(LabelAuthorHour)
            },
            "conversation_labels": {(r.label, r.conversation_id) for r in await rows(ConversationLabel)},
            "buckets": {(r.channel_id, r.start): (r.inbound, r.negative) for r in await rows(Bucket)},
            "terms": {(r.channel_id, r.hour, r.term): r.count for r in await rows(TermCount)},
            "author_hours": {(r.channel_id, r.hour, r.author_key) for r in await rows(AuthorHour)},
            "authors": {r.author_key: r.first_seen_at for r in await rows(Author)},
            "conversations": {
                r.id: {
                    "channel_id": r.channel_id,
                    "opened_at": r.opened_at,
                    "inbound_messages": r.inbound_messages,
                    "outbound_messages": r.outbound_messages,
                    "first_response_at": r.first_response_at,
                    "first_responder_key": r.first_responder_key,
                    "resolved_at": r.resolved_at,
                    "reopen_count": r.reopen_count,
                    "status": r.status,
                    "first_sentiment": r.first_sentiment,
                    "last_sentiment": r.last_sentiment,
                    "labels": list(r.labels),
                }
                for r in await rows(ConversationFact)
            },
        }


async def _deliver(engine: AsyncEngine, facts: Sequence[Fact], rng: random.Random) -> None:
    """Deliver the facts shuffled, in batches of random sizes, with some delivered twice."""
    stream = list(facts) + [f for f in facts if rng.random() < 0.3]
    rng.shuffle(stream)
    sessions = session_factory(engine)
    while stream:
        size = rng.randint(1, 8)
        batch, stream = stream[:size], stream[size:]
        async with sessions() as session, session.begin():
            await store_facts(session, batch, bucket_seconds=BUCKET)


@settings(max_examples=15, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(seed=st.integers(0, 2**32 - 1), order=st.integers(0, 2**32 - 1))
async def test_rollups_equal_a_brute_force_recomputation(engine: AsyncEngine, seed: int, order: int) -> None:
    facts = _stream(seed)
    workspace = facts[0].workspace_id
    await _deliver(engine, facts, random.Random(order))
    stored = await _stored(engine, workspace)
    expected = _expected(facts)
    assert stored == expected


async def test_redelivery_and_another_order_change_nothing(engine: AsyncEngine) -> None:
    facts = _stream(7)
    await _deliver(engine, facts, random.Random(1))
    first = await _stored(engine, facts[0].workspace_id)
    await _deliver(engine, facts, random.Random(2))  # everything again, in another order
    assert await _stored(engine, facts[0].workspace_id) == first
