"""``piazza analytics rebuild``: forgetting everything and replaying the domain stream gives back
exactly the rollups a brute-force recomputation gives, whatever order the events were published in."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator

import pytest
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from piazza.cli import app
from services.analytics.config import AnalyticsSettings
from services.analytics.facts import Fact, LabelsChanged, MessageSeen, SentimentCorrected, StatusChanged
from services.analytics.rebuild import rebuild
from shared.bus.client import Bus
from shared.db import session_factory
from shared.events.domain import DomainChange, DomainEvent, domain_subject
from tests.services.analytics.test_rollups import BUCKET, _expected, _stored, _stream

pytestmark = [pytest.mark.db, pytest.mark.bus]


@pytest.fixture
async def bus(nats_url: str, bus_prefix: str) -> AsyncIterator[Bus]:
    bus = await Bus.connect(nats_url, name="tests", prefix=bus_prefix)
    yield bus
    await bus.close()


def event_of(fact: Fact) -> DomainEvent:
    """The domain event the inbox publishes for a fact (the inverse of ``facts_of``)."""
    workspace = str(fact.workspace_id)
    if isinstance(fact, MessageSeen) and fact.direction == "inbound":
        return DomainEvent(
            type="conversation.message_received",
            workspace=workspace,
            source="inbox",
            payload=DomainChange(
                conversation_id=fact.conversation_id,
                message_id=fact.id,
                data={
                    "channel_id": str(fact.channel_id),
                    "direction": "inbound",
                    "author_identity_id": fact.author_key,
                    "text": fact.text,
                    "sent_at": fact.occurred_at.isoformat(),
                    "sentiment": {
                        "label": fact.sentiment,
                        "score": fact.sentiment_score,
                        "language": fact.language,
                    }
                    if fact.sentiment
                    else None,
                },
            ),
        )
    if isinstance(fact, MessageSeen):
        return DomainEvent(
            type="conversation.message_sent",
            workspace=workspace,
            source="inbox",
            payload=DomainChange(
                conversation_id=fact.conversation_id,
                message_id=fact.id,
                actor_user_id=uuid.UUID(fact.author_key) if fact.author_key else None,
                data={
                    "channel_id": str(fact.channel_id) if fact.channel_id else None,
                    "text": fact.text,
                    "sent_at": fact.occurred_at.isoformat(),
                },
            ),
        )
    if isinstance(fact, StatusChanged):
        return DomainEvent(
            id=fact.event_id,
            type="conversation.updated",
            workspace=workspace,
            source="inbox",
            occurred_at=fact.occurred_at,
            payload=DomainChange(
                conversation_id=fact.conversation_id,
                actor_user_id=fact.actor_user_id,
                changes={"status": {"before": fact.before, "after": fact.after}},
            ),
        )
    if isinstance(fact, LabelsChanged):
        return DomainEvent(
            id=fact.event_id,
            type="conversation.updated",
            workspace=workspace,
            source="inbox",
            occurred_at=fact.occurred_at,
            payload=DomainChange(
                conversation_id=fact.conversation_id,
                changes={"labels": {"before": [], "after": list(fact.labels)}},
            ),
        )
    assert isinstance(fact, SentimentCorrected)
    return DomainEvent(
        id=fact.event_id,
        type="conversation.sentiment_corrected",
        workspace=workspace,
        source="inbox",
        occurred_at=fact.occurred_at,
        payload=DomainChange(
            conversation_id=fact.conversation_id,
            message_id=fact.message_id,
            actor_user_id=fact.actor_user_id,
            data={"corrected_label": fact.label},
        ),
    )


async def test_a_rebuild_replays_the_stream_into_the_same_figures(
    engine: AsyncEngine, bus: Bus, settings_kwargs: dict[str, object]
) -> None:
    settings = AnalyticsSettings(**settings_kwargs, bucket_seconds=BUCKET)  # type: ignore[arg-type]
    streams = [_stream(seed) for seed in (11, 12)]
    events = [event_of(fact) for facts in streams for fact in facts]
    random.Random(4).shuffle(events)
    await bus.publish_many([(domain_subject(e.workspace, e.type), e) for e in events])
    seen: list[tuple[int, int]] = []

    read = await rebuild(
        settings,
        session_factory(engine),
        bus,
        progress=lambda done, total: seen.append((done, total)),
        batch_size=7,
    )

    assert read == len(events)
    assert seen[-1] == (len(events), len(events))
    for facts in streams:
        assert await _stored(engine, facts[0].workspace_id) == _expected(facts)
    # Twice is the same as once.
    await rebuild(settings, session_factory(engine), bus)
    for facts in streams:
        assert await _stored(engine, facts[0].workspace_id) == _expected(facts)


async def test_the_command_rebuilds_with_a_progress_bar(
    engine: AsyncEngine,
    bus: Bus,
    database_url: str,
    nats_url: str,
    bus_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    facts = _stream(21)
    await bus.publish_many(
        [(domain_subject(str(f.workspace_id), event_of(f).type), event_of(f)) for f in facts]
    )
    for name, value in {
        "DATABASE_URL": database_url,
        "NATS_URL": nats_url,
        "PIAZZA_BUS_PREFIX": bus_prefix,
        "PIAZZA_LOG_LEVEL": "WARNING",
        "PIAZZA_ANALYTICS_BUCKET_SECONDS": str(BUCKET),
    }.items():
        monkeypatch.setenv(name, value)
    result = await asyncio.to_thread(CliRunner().invoke, app, ["analytics", "rebuild"])
    assert result.exit_code == 0, result.output
    assert f"analytics rebuilt from {len(facts)} domain events" in result.output
    assert await _stored(engine, facts[0].workspace_id) == _expected(facts)
