"""``piazza analytics rebuild``: forgetting everything and replaying the domain stream gives back
exactly the rollups a brute-force recomputation gives, whatever order the events were published in."""

from __future__ import annotations

import asyncio
import random
import uuid
from collections.abc import AsyncIterator
from datetime import UTC, datetime

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
    if isinstance(fact, MessageSeen) and (fact.direction == "inbound" or fact.external_id):
        # A customer's message, or one the platform listed back from the account itself.
        return DomainEvent(
            type="conversation.message_received",
            workspace=workspace,
            source="inbox",
            payload=DomainChange(
                conversation_id=fact.conversation_id,
                message_id=fact.id,
                data={
                    "channel_id": str(fact.channel_id),
                    "external_id": fact.external_id,
                    "direction": fact.direction,
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
                    "platform_message_ids": list(fact.platform_ids),
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
    streams = [_stream(seed) for seed in (11, 12, 15)]  # 15 holds two copies of replies
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


async def test_upgrading_to_label_rollups_fills_them_from_the_stored_facts(empty_database_url: str) -> None:
    """Migration 0002 adds the label rollups to a database already holding facts: they are filled,
    equal to what ingesting the same facts today gives."""
    from pathlib import Path

    from sqlalchemy import insert, select

    import services.analytics
    from services.analytics.models import (
        VERSION_TABLE,
        ConversationFact,
        ConversationLabel,
        LabelAuthorHour,
        LabelHourlyRollup,
        MessageFact,
    )
    from shared.db import create_engine, session_factory
    from shared.db.migrate import upgrade

    migrations = Path(services.analytics.__file__).parent / "migrations"
    engine = create_engine(empty_database_url)
    workspace, channel, labelled, plain = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    at = datetime(2026, 11, 2, 9, 15, tzinfo=UTC)
    try:
        await upgrade(engine, migrations, VERSION_TABLE, "0001")
        async with session_factory(engine)() as session, session.begin():
            for conversation, labels in ((labelled, ["vip", "bug"]), (plain, [])):
                await session.execute(
                    insert(ConversationFact).values(
                        id=conversation, workspace_id=workspace, channel_id=channel, labels=labels
                    )
                )
            for n, (conversation, direction, sentiment) in enumerate(
                [
                    (labelled, "inbound", "negative"),
                    (labelled, "outbound", None),
                    (plain, "inbound", "positive"),
                ]
            ):
                await session.execute(
                    insert(MessageFact).values(
                        id=uuid.uuid4(),
                        workspace_id=workspace,
                        channel_id=channel,
                        conversation_id=conversation,
                        direction=direction,
                        author_key=f"author-{n}",
                        occurred_at=at,
                        hour=at.replace(minute=0),
                        sentiment=sentiment,
                    )
                )
        await upgrade(engine, migrations, VERSION_TABLE)
        async with session_factory(engine)() as session:
            labels = set(
                (
                    await session.execute(select(ConversationLabel.label, ConversationLabel.conversation_id))
                ).all()
            )
            hourly = (
                await session.execute(select(LabelHourlyRollup).order_by(LabelHourlyRollup.label))
            ).scalars()
            authors = set(
                (await session.execute(select(LabelAuthorHour.label, LabelAuthorHour.author_key))).all()
            )
            assert labels == {("vip", labelled), ("bug", labelled)}
            assert [(h.label, h.inbound, h.outbound, h.negative, h.positive) for h in hourly] == [
                ("bug", 1, 1, 1, 0),
                ("vip", 1, 1, 1, 0),
            ]
            assert authors == {("vip", "author-0"), ("bug", "author-0")}
    finally:
        await engine.dispose()


def test_a_label_longer_than_any_label_id_is_left_out_of_the_facts(caplog: pytest.LogCaptureFixture) -> None:
    """The label tables hold label ids (36 characters); an event naming something longer keeps its
    other labels rather than failing to be stored."""
    from services.analytics.facts import LABEL_LENGTH, facts_of

    fact = LabelsChanged(
        event_id="e-long",
        workspace_id=uuid.uuid4(),
        conversation_id=uuid.uuid4(),
        occurred_at=datetime(2026, 11, 2, 9, tzinfo=UTC),
        labels=("vip", "x" * (LABEL_LENGTH + 1), "y" * LABEL_LENGTH),
    )
    [stored] = facts_of(event_of(fact))
    assert isinstance(stored, LabelsChanged)
    assert stored.labels == ("vip", "y" * LABEL_LENGTH)
    assert "analytics.labels.too_long" in caplog.text  # said, not silently dropped


def test_platform_ids_that_are_not_ids_are_left_out_of_a_reply_and_said(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """A reply whose event names something other than platform ids is still counted; the ids it
    does name still recognise its copies."""
    from services.analytics.facts import PLATFORM_ID_LENGTH, facts_of

    reply = MessageSeen(
        id=uuid.uuid4(),
        workspace_id=uuid.uuid4(),
        channel_id=uuid.uuid4(),
        conversation_id=uuid.uuid4(),
        direction="outbound",
        author_key=str(uuid.uuid4()),
        occurred_at=datetime(2026, 11, 2, 9, tzinfo=UTC),
        text="done",
    )
    event = event_of(reply)
    event.payload.data["platform_message_ids"] = ["t1_ok", 42, "", "x" * (PLATFORM_ID_LENGTH + 1)]
    [stored] = facts_of(event)
    assert isinstance(stored, MessageSeen)
    assert stored.platform_ids == ("t1_ok",)
    assert "analytics.platform_ids.invalid" in caplog.text
    caplog.clear()
    event.payload.data["platform_message_ids"] = {"not": "a list"}
    [stored] = facts_of(event)
    assert isinstance(stored, MessageSeen)
    assert stored.platform_ids == ()
    assert "analytics.platform_ids.invalid" in caplog.text
