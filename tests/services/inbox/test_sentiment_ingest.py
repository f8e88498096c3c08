"""Sentiment at ingest: inbound messages are scored when stored, a conversation's sentiment follows its
newest scored customer message whatever the arrival order, an analyzer failure loses nothing, and the
domain events carry what analytics needs (real SQLite and PostgreSQL)."""

from __future__ import annotations

import importlib.util
import itertools
import random
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.inbox import ids
from services.inbox.config import InboxSettings
from services.inbox.models import Conversation, Message, OutboxEntry
from services.inbox.service import sentiment as corrections
from services.inbox.service import workflow
from services.inbox.service.access import Principal, Role
from services.inbox.service.ingest import StoredBatch, store_events
from services.inbox.service.outbound import apply_outcome
from shared.db import session_factory
from shared.events import (
    Attachment,
    AuthorRef,
    InboundEvent,
    InboundMessage,
    MessageDeleted,
    MessageDeletion,
    MessageEdit,
    MessageEdited,
    MessageReceived,
    ThreadRef,
)
from shared.events.commands import ReplyFailed, ReplyFailure, ReplySending, ReplySent
from shared.sentiment import DEFAULT_ANALYZER, SentimentAnalyzer, load_analyzer
from tests.support import Tenant, add_channel_row, add_user, make_tenant

pytestmark = pytest.mark.db

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)
KEYWORDS = load_analyzer("tests.services.inbox.analyzers:KeywordAnalyzer")
FLAKY = load_analyzer("tests.services.inbox.analyzers:FlakyAnalyzer")


def _ref(channel_id: uuid.UUID, message: str, thread: str) -> dict[str, Any]:
    return {
        "channel_id": channel_id,
        "platform": "webhook",
        "thread": ThreadRef(external_id=thread),
        "external_id": message,
    }


def created(
    channel_id: uuid.UUID, message: str, text: str | None, at: datetime, thread: str, **kw: Any
) -> MessageReceived:
    author = AuthorRef(namespace="webhook:test", external_id="marta", name="Marta")
    payload = InboundMessage(**_ref(channel_id, message, thread), author=author, text=text, sent_at=at, **kw)
    return MessageReceived(workspace="w", source="test", payload=payload)


def edited(channel_id: uuid.UUID, message: str, text: str, at: datetime, thread: str) -> MessageEdited:
    payload = MessageEdit(**_ref(channel_id, message, thread), text=text, edited_at=at)
    return MessageEdited(workspace="w", source="test", payload=payload)


def deleted(channel_id: uuid.UUID, message: str, at: datetime, thread: str) -> MessageDeleted:
    payload = MessageDeletion(**_ref(channel_id, message, thread), deleted_at=at)
    return MessageDeleted(workspace="w", source="test", payload=payload)


async def _store(
    engine: AsyncEngine, batches: list[list[InboundEvent]], analyzer: SentimentAnalyzer | None = KEYWORDS
) -> list[StoredBatch]:
    stored = []
    sequence = 1
    for batch in batches:
        numbered = [(event, sequence + i) for i, event in enumerate(batch)]
        sequence += len(batch)
        async with session_factory(engine)() as session, session.begin():
            stored.append(await store_events(session, numbered, datetime.now(UTC), analyzer=analyzer))
    return stored


async def _message(engine: AsyncEngine, channel_id: uuid.UUID, external_id: str) -> Message:
    async with session_factory(engine)() as session:
        message = await session.get(Message, ids.message_id(channel_id, external_id))
    assert message is not None
    return message


async def _conversation(engine: AsyncEngine, channel_id: uuid.UUID, thread: str) -> Conversation:
    async with session_factory(engine)() as session:
        conversation = await session.get(Conversation, ids.conversation_id(channel_id, thread))
    assert conversation is not None
    return conversation


def _reading(message: Message) -> tuple[str | None, float | None, str | None]:
    return message.sentiment, message.sentiment_score, message.language


async def test_the_default_analyzer_scores_clearly_negative_and_positive_messages(
    engine: AsyncEngine,
) -> None:
    if importlib.util.find_spec("shared.sentiment.lexicon") is None:
        pytest.skip("shared/sentiment/lexicon.py (the default analyzer) is not there yet")
    settings = InboxSettings()
    assert settings.sentiment_analyzer == DEFAULT_ANALYZER
    tenant = await make_tenant(engine)
    channel_id = await add_channel_row(engine, tenant)
    events: list[InboundEvent] = [
        created(channel_id, "angry", "This is terrible, I hate it 😡", T0, "angry"),
        created(channel_id, "happy", "I love it, thank you so much, this is wonderful! 😍", T0, "happy"),
    ]
    [stored] = await _store(engine, [events], analyzer=settings.analyzer())

    angry, happy = await _message(engine, channel_id, "angry"), await _message(engine, channel_id, "happy")
    assert (angry.sentiment, happy.sentiment) == ("negative", "positive")
    assert (angry.sentiment_score or 0) < 0 < (happy.sentiment_score or 0)
    assert (await _conversation(engine, channel_id, "angry")).sentiment == "negative"
    assert (await _conversation(engine, channel_id, "happy")).sentiment == "positive"
    received = {event["payload"]["message_id"]: event for event in _decoded(stored)}
    assert received[str(angry.id)]["payload"]["data"]["sentiment"] == {
        "label": "negative",
        "score": angry.sentiment_score,
        "language": angry.language,
    }


def _decoded(stored: StoredBatch) -> list[dict[str, Any]]:
    return [orjson.loads(data) for _, _, data in stored.received_events()]


def _lifecycle(channel_id: uuid.UUID, thread: str) -> list[InboundEvent]:
    """A customer's angry message, a happy one, an agent's answer (sent from the platform), a photo,
    then the happy message edited into an angry one."""
    photo = (Attachment(type="photo", file_ref="f1"),)
    return [
        created(channel_id, f"{thread}-a", "I hate waiting", T0, thread),
        created(channel_id, f"{thread}-b", "thanks, great service", T0 + timedelta(minutes=1), thread),
        created(
            channel_id,
            f"{thread}-c",
            "terrible news, sorry",
            T0 + timedelta(minutes=2),
            thread,
            direction="outbound",
        ),
        created(channel_id, f"{thread}-d", None, T0 + timedelta(minutes=3), thread, attachments=photo),
        edited(channel_id, f"{thread}-b", "actually it is broken", T0 + timedelta(minutes=4), thread),
    ]


@pytest.mark.parametrize("one_batch", [False, True], ids=["event-per-batch", "one-batch"])
async def test_every_arrival_order_gives_the_same_sentiments(engine: AsyncEngine, one_batch: bool) -> None:
    tenant = await make_tenant(engine)
    channel_id = await add_channel_row(engine, tenant)
    # A seeded quarter of the 120 orders (the identity and the reverse among them): each costs six
    # transactions, and the ingest store's own order test already walks all of them.
    orders = [
        (0, 1, 2, 3, 4),
        (4, 3, 2, 1, 0),
        *random.Random(5).sample(list(itertools.permutations(range(5))), 28),
    ]
    for number, order in enumerate(orders):
        thread = f"t{number}"
        events = _lifecycle(channel_id, thread)
        arrival = [events[i] for i in order]
        arrival.append(arrival[number % 5])  # a redelivery
        await _store(engine, [arrival] if one_batch else [[e] for e in arrival])

        readings = [_reading(await _message(engine, channel_id, f"{thread}-{m}")) for m in "abcd"]
        assert readings == [
            ("negative", -0.75, "en"),
            ("negative", -0.75, "en"),  # the edit's text was scored again
            (None, None, None),  # the agent's own message is not the customer's sentiment
            (None, None, None),  # nothing to read in a photo
        ], order
        # The newest scored customer message is the edited one: the photo and the agent's answer,
        # newer, have no sentiment.
        assert (await _conversation(engine, channel_id, thread)).sentiment == "negative", order


async def test_the_conversation_follows_its_newest_customer_message_in_any_order(engine: AsyncEngine) -> None:
    tenant = await make_tenant(engine)
    channel_id = await add_channel_row(engine, tenant)
    for number, order in enumerate(itertools.permutations(range(3))):
        thread = f"late-{number}"
        events: list[InboundEvent] = [
            created(channel_id, f"{thread}-old", "thanks, lovely", T0, thread),
            created(channel_id, f"{thread}-new", "this is awful", T0 + timedelta(minutes=1), thread),
            created(channel_id, f"{thread}-newest", "wonderful, thanks", T0 + timedelta(minutes=2), thread),
        ]
        await _store(engine, [[events[i]] for i in order])
        assert (await _conversation(engine, channel_id, thread)).sentiment == "positive", order
        # The customer deletes the newest: the one before it speaks for the conversation again.
        await _store(engine, [[deleted(channel_id, f"{thread}-newest", T0 + timedelta(minutes=5), thread)]])
        assert (await _conversation(engine, channel_id, thread)).sentiment == "negative", order


async def test_an_edit_heard_before_an_outbound_create_leaves_no_sentiment(engine: AsyncEngine) -> None:
    tenant = await make_tenant(engine)
    channel_id = await add_channel_row(engine, tenant)
    create = created(channel_id, "ours", "we love you", T0, "ours", direction="outbound")
    edit = edited(channel_id, "ours", "we hate delays", T0 + timedelta(minutes=1), "ours")
    await _store(engine, [[edit], [create]])
    assert _reading(await _message(engine, channel_id, "ours")) == (None, None, None)
    assert (await _conversation(engine, channel_id, "ours")).sentiment is None


async def test_an_analyzer_failure_stores_the_message_unscored(engine: AsyncEngine) -> None:
    tenant = await make_tenant(engine)
    channel_id = await add_channel_row(engine, tenant)
    events: list[InboundEvent] = [
        created(channel_id, "fine", "I love it", T0, "flaky"),
        created(channel_id, "fails", "boom, I hate it", T0 + timedelta(minutes=1), "flaky"),
        created(channel_id, "odd", "weird", T0 + timedelta(minutes=2), "flaky"),
    ]
    [stored] = await _store(engine, [events], analyzer=FLAKY)

    assert stored.refused == {}
    assert _reading(await _message(engine, channel_id, "fine")) == ("positive", 0.5, "en")
    for external_id, text in (("fails", "boom, I hate it"), ("odd", "weird")):
        message = await _message(engine, channel_id, external_id)
        assert (message.text, _reading(message)) == (text, (None, None, None))
    assert [message_id for message_id, _ in stored.plan.unscored] == [
        ids.message_id(channel_id, "fails"),
        ids.message_id(channel_id, "odd"),
    ]
    assert "RuntimeError: the analyzer blew up" in stored.plan.unscored[0][1]
    # The newest message that could be scored speaks for the conversation.
    assert (await _conversation(engine, channel_id, "flaky")).sentiment == "positive"
    sentiments = [event["payload"]["data"]["sentiment"] for event in _decoded(stored)]
    assert sentiments == [{"label": "positive", "score": 0.5, "language": "en"}, None, None]


async def test_an_edit_scores_the_message_again_but_a_correction_still_wins(engine: AsyncEngine) -> None:
    tenant = await make_tenant(engine)
    agent = await add_user(engine, tenant.workspace_id, Role.AGENT)
    principal = Principal(tenant.workspace_id, Role.AGENT, token_id=None, user_id=agent.user_id)
    channel_id = await add_channel_row(engine, tenant)
    await _store(engine, [[created(channel_id, "m", "I love it", T0, "edits")]])
    message_id = ids.message_id(channel_id, "m")
    conversation_id = ids.conversation_id(channel_id, "edits")

    async with session_factory(engine)() as session, session.begin():
        await corrections.correct(session, principal, conversation_id, message_id, "neutral", None, T0)
    await _store(engine, [[edited(channel_id, "m", "no, I hate it", T0 + timedelta(minutes=1), "edits")]])

    message = await _message(engine, channel_id, "m")
    assert (message.sentiment, message.sentiment_correction) == ("negative", "neutral")
    assert message.sentiment_corrected_by == agent.user_id
    assert (await _conversation(engine, channel_id, "edits")).sentiment == "neutral"

    async with session_factory(engine)() as session, session.begin():
        await corrections.correct(session, principal, conversation_id, message_id, None, None, T0)
    assert (await _conversation(engine, channel_id, "edits")).sentiment == "negative"


async def _outbox(engine: AsyncEngine, entry_ids: list[str]) -> list[dict[str, Any]]:
    async with session_factory(engine)() as session:
        rows = await session.scalars(select(OutboxEntry).where(OutboxEntry.id.in_(entry_ids)))
        return [orjson.loads(row.payload) for row in rows]


async def _pending_reply(engine: AsyncEngine, tenant: Tenant, channel_id: uuid.UUID) -> uuid.UUID:
    await _store(engine, [[created(channel_id, "question", "hello?", T0, "replies")]])
    reply_id = uuid.uuid4()
    async with session_factory(engine)() as session, session.begin():
        session.add(
            Message(
                id=reply_id,
                workspace_id=tenant.workspace_id,
                channel_id=channel_id,
                conversation_id=ids.conversation_id(channel_id, "replies"),
                external_id=f"piazza:{reply_id}",
                direction="outbound",
                text="hi!",
                attachments=[],
                occurred_at=T0,
                received_seq=0,
                original_saved=False,
                meta={},
                delivery_status="pending",
                created_at=T0,
                updated_at=T0,
            )
        )
    return reply_id


async def test_reply_outcomes_announce_their_channel_and_send_time(engine: AsyncEngine) -> None:
    tenant = await make_tenant(engine)
    channel_id = await add_channel_row(engine, tenant)
    sent_id = await _pending_reply(engine, tenant, channel_id)
    sent_at = T0 + timedelta(seconds=3)
    async with session_factory(engine)() as session, session.begin():
        entries = await apply_outcome(
            session,
            ReplySent(
                workspace=str(tenant.workspace_id),
                source="reply",
                payload=ReplySending(
                    message_id=sent_id, channel_id=channel_id, platform_message_ids=("p-1",), sent_at=sent_at
                ),
            ),
            T0,
        )
    [event] = await _outbox(engine, entries)
    assert event["type"] == "conversation.message_sent"
    assert event["payload"]["data"]["channel_id"] == str(channel_id)
    assert datetime.fromisoformat(event["payload"]["data"]["sent_at"]) == sent_at
    async with session_factory(engine)() as session, session.begin():
        again = ReplySent(
            workspace=str(tenant.workspace_id),
            source="reply",
            payload=ReplySending(
                message_id=sent_id, channel_id=channel_id, platform_message_ids=("p-1",), sent_at=sent_at
            ),
        )
        assert await apply_outcome(session, again, T0) == [], "an outcome delivered twice is announced once"

    failed_id = uuid.uuid4()
    async with session_factory(engine)() as session, session.begin():
        reply = await session.get(Message, sent_id)
        assert reply is not None
        session.add(
            Message(
                **{
                    c: getattr(reply, c)
                    for c in ("workspace_id", "channel_id", "conversation_id", "direction")
                },
                id=failed_id,
                external_id=f"piazza:{failed_id}",
                text="again",
                attachments=[],
                occurred_at=T0,
                received_seq=0,
                original_saved=False,
                meta={},
                delivery_status="pending",
                created_at=T0,
                updated_at=T0,
            )
        )
    async with session_factory(engine)() as session, session.begin():
        entries = await apply_outcome(
            session,
            ReplyFailed(
                workspace=str(tenant.workspace_id),
                source="reply",
                payload=ReplyFailure(
                    message_id=failed_id, channel_id=channel_id, code="rejected", reason="no", failed_at=T0
                ),
            ),
            T0,
        )
    [event] = await _outbox(engine, entries)
    assert event["type"] == "conversation.message_failed"
    assert event["payload"]["data"]["channel_id"] == str(channel_id)


async def test_a_snooze_ending_announces_the_channel(engine: AsyncEngine) -> None:
    tenant = await make_tenant(engine)
    channel_id = await add_channel_row(engine, tenant)
    await _store(engine, [[created(channel_id, "m", "hello", T0, "snoozed")]])
    conversation_id = ids.conversation_id(channel_id, "snoozed")
    async with session_factory(engine)() as session, session.begin():
        conversation = await session.get(Conversation, conversation_id)
        assert conversation is not None
        conversation.status, conversation.snoozed_until = "snoozed", T0
    async with session_factory(engine)() as session, session.begin():
        entries = await workflow.wake_snoozed(session, T0 + timedelta(minutes=1))
    woken = [
        e for e in await _outbox(engine, entries) if e["payload"]["conversation_id"] == str(conversation_id)
    ]
    assert [e["payload"]["data"] for e in woken] == [
        {"reason": "snooze_expired", "channel_id": str(channel_id)}
    ]
