"""Storing inbound events: order and redelivery never change the result (real SQLite and PostgreSQL)."""

from __future__ import annotations

import asyncio
import itertools
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.inbox import ids
from services.inbox.models import Contact, Conversation, Identity, Message, MessageRevision, OutboxEntry
from services.inbox.repository import outbound as outbound_repo
from services.inbox.service.ingest import store_events
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
from tests.support import Tenant, add_channel_row, make_tenant

pytestmark = pytest.mark.db

T0 = datetime(2026, 11, 24, 10, 0, tzinfo=UTC)


async def _channel(engine: AsyncEngine, tenant: Tenant) -> uuid.UUID:
    return await add_channel_row(engine, tenant)


def _ref(
    channel_id: uuid.UUID, message: str, thread: str = "thread", title: str | None = None
) -> dict[str, Any]:
    return {
        "channel_id": channel_id,
        "platform": "webhook",
        "thread": ThreadRef(external_id=thread, title=title),
        "external_id": message,
    }


def _author(name: str = "marta") -> AuthorRef:
    return AuthorRef(namespace="webhook:test", external_id=name, handle=f"@{name}", name=name.title())


def created(channel_id: uuid.UUID, message: str, text: str, at: datetime, **kw: Any) -> MessageReceived:
    ref = _ref(channel_id, message, kw.pop("thread", "thread"), kw.pop("title", None))
    return MessageReceived(
        workspace="w",
        source="test",
        payload=InboundMessage(**ref, author=kw.pop("author", _author()), text=text, sent_at=at, **kw),
    )


def edited(
    channel_id: uuid.UUID,
    message: str,
    text: str,
    at: datetime,
    thread: str = "thread",
    title: str | None = None,
) -> MessageEdited:
    payload = MessageEdit(**_ref(channel_id, message, thread, title), text=text, edited_at=at)
    return MessageEdited(workspace="w", source="test", payload=payload)


def deleted(channel_id: uuid.UUID, message: str, at: datetime, thread: str = "thread") -> MessageDeleted:
    payload = MessageDeletion(**_ref(channel_id, message, thread), deleted_at=at)
    return MessageDeleted(workspace="w", source="test", payload=payload)


async def _store(
    engine: AsyncEngine, batches: list[list[InboundEvent]], start_seq: int = 1
) -> list[dict[int, str]]:
    refused = []
    seq = start_seq
    for batch in batches:
        numbered = []
        for event in batch:
            numbered.append((event, seq))
            seq += 1
        async with session_factory(engine)() as session, session.begin():
            stored = await store_events(session, numbered, datetime.now(UTC))
        refused.append(stored.refused)
    return refused


async def _message(engine: AsyncEngine, channel_id: uuid.UUID, external_id: str) -> Message:
    async with session_factory(engine)() as session:
        message = await session.scalar(
            select(Message).where(Message.channel_id == channel_id, Message.external_id == external_id)
        )
        assert message is not None
        return message


async def _revisions(engine: AsyncEngine, message_id: uuid.UUID) -> list[str | None]:
    async with session_factory(engine)() as session:
        rows = await session.scalars(
            select(MessageRevision)
            .where(MessageRevision.message_id == message_id)
            .order_by(MessageRevision.edited_at)
        )
        return [r.text for r in rows]


def _lifecycle(channel_id: uuid.UUID, message: str, thread: str = "thread") -> list[InboundEvent]:
    return [
        created(channel_id, message, "v0", T0, thread=thread, title="v0 title"),
        edited(channel_id, message, "v1", T0 + timedelta(minutes=1), thread=thread, title="v1 title"),
        edited(channel_id, message, "v2", T0 + timedelta(minutes=2), thread=thread, title="v2 title"),
        deleted(channel_id, message, T0 + timedelta(minutes=3), thread=thread),
    ]


async def _conversation_view(engine: AsyncEngine, tenant: Tenant, channel_id: uuid.UUID, thread: str) -> Any:
    async with session_factory(engine)() as session:
        conversation = await session.get(Conversation, ids.conversation_id(channel_id, thread))
    assert conversation is not None
    return (
        conversation.last_activity_at,
        conversation.activity_confirmed,
        conversation.title,
        conversation.last_message_preview,
    )


@pytest.mark.parametrize("one_batch", [False, True], ids=["event-per-batch", "one-batch"])
async def test_every_arrival_order_gives_the_same_message_and_conversation(
    engine: AsyncEngine, one_batch: bool
) -> None:
    tenant = await make_tenant(engine)
    channel_id = await _channel(engine, tenant)
    for number, order in enumerate(itertools.permutations(range(5))):
        thread = f"t{number}"
        events = [
            *_lifecycle(channel_id, f"m{number}", thread),
            created(channel_id, f"kept{number}", "the one left", T0 - timedelta(hours=1), thread=thread),
        ]
        arrival = [events[i] for i in order]
        # Every order also sees one event twice, as a redelivery would.
        arrival.append(arrival[number % 5])
        await _store(engine, [arrival] if one_batch else [[e] for e in arrival])
        message = await _message(engine, channel_id, f"m{number}")
        assert (message.text, message.sent_at, message.occurred_at) == ("v2", T0, T0), order
        assert message.edited_at == T0 + timedelta(minutes=2), order
        assert message.deleted_at == T0 + timedelta(minutes=3), order
        assert (message.original_saved, message.original_text) == (True, "v0"), order
        assert message.author_identity_id is not None
        assert await _revisions(engine, message.id) == ["v1", "v2"], order
        # The conversation: activity from the newest created message, the preview from the newest
        # message still visible (the other one was deleted), the newest title.
        view = await _conversation_view(engine, tenant, channel_id, thread)
        assert view == (T0, True, "v2 title", "the one left"), order


async def test_an_edit_before_its_create_is_visible_and_kept(engine: AsyncEngine) -> None:
    tenant = await make_tenant(engine)
    channel_id = await _channel(engine, tenant)
    await _store(engine, [[edited(channel_id, "early", "edited first", T0 + timedelta(seconds=5))]])
    placeholder = await _message(engine, channel_id, "early")
    assert (placeholder.text, placeholder.sent_at) == ("edited first", None)
    await _store(engine, [[created(channel_id, "early", "original", T0)]], start_seq=10)
    message = await _message(engine, channel_id, "early")
    assert (message.text, message.original_text, message.sent_at) == ("edited first", "original", T0)
    assert message.occurred_at == T0


async def test_an_edit_at_the_same_instant_as_the_create_wins(engine: AsyncEngine) -> None:
    tenant = await make_tenant(engine)
    channel_id = await _channel(engine, tenant)
    await _store(
        engine, [[created(channel_id, "same", "first", T0)], [edited(channel_id, "same", "second", T0)]]
    )
    message = await _message(engine, channel_id, "same")
    assert (message.text, message.original_text) == ("second", "first")


async def test_redelivery_changes_nothing(engine: AsyncEngine) -> None:
    tenant = await make_tenant(engine)
    channel_id = await _channel(engine, tenant)
    events = [created(channel_id, f"r{i}", f"text {i}", T0 + timedelta(seconds=i)) for i in range(50)]
    await _store(engine, [events])
    before = await _snapshot(engine, tenant.workspace_id)
    await _store(engine, [events, events[::-1]], start_seq=1000)
    assert await _snapshot(engine, tenant.workspace_id) == before
    assert before["messages"] == 50


async def _snapshot(engine: AsyncEngine, workspace_id: uuid.UUID) -> dict[str, Any]:
    async with session_factory(engine)() as session:
        counts = {
            name: await session.scalar(
                select(func.count()).select_from(model).where(model.workspace_id == workspace_id)
            )
            for name, model in (
                ("messages", Message),
                ("conversations", Conversation),
                ("contacts", Contact),
                ("identities", Identity),
            )
        }
        texts = (
            await session.execute(
                select(Message.external_id, Message.text, Message.received_seq).where(
                    Message.workspace_id == workspace_id
                )
            )
        ).all()
        conversation = (
            await session.execute(
                select(
                    Conversation.last_activity_at, Conversation.title, Conversation.activity_confirmed
                ).where(Conversation.workspace_id == workspace_id)
            )
        ).all()
    return {**counts, "texts": sorted(texts), "conversation": conversation}


async def test_conversation_activity_follows_the_newest_message_in_any_order(engine: AsyncEngine) -> None:
    tenant = await make_tenant(engine)
    channel_id = await _channel(engine, tenant)
    newest, older = (
        created(channel_id, "new", "newest", T0 + timedelta(hours=1)),
        created(channel_id, "old", "older", T0),
    )
    await _store(engine, [[newest], [older]])
    view = await _conversation_view(engine, tenant, channel_id, "thread")
    assert view == (T0 + timedelta(hours=1), True, None, "newest")


async def test_creates_after_a_deletion_heard_first_set_activity_as_in_order(engine: AsyncEngine) -> None:
    tenant = await make_tenant(engine)
    channel_id = await _channel(engine, tenant)
    # A deletion (12:00) of a message never seen, in a new thread, then two creates.
    await _store(engine, [[deleted(channel_id, "gone", T0 + timedelta(hours=2))]])
    assert (await _conversation_view(engine, tenant, channel_id, "thread"))[:2] == (
        T0 + timedelta(hours=2),
        False,
    )
    await _store(
        engine,
        [
            [created(channel_id, "first", "first", T0)],
            [created(channel_id, "second", "second", T0 + timedelta(minutes=5))],
        ],
        start_seq=10,
    )
    view = await _conversation_view(engine, tenant, channel_id, "thread")
    assert view == (T0 + timedelta(minutes=5), True, None, "second")


async def test_the_preview_follows_edits_and_deletions(engine: AsyncEngine) -> None:
    tenant = await make_tenant(engine)
    channel_id = await _channel(engine, tenant)
    await _store(
        engine,
        [
            [
                created(channel_id, "a", "kind words", T0),
                created(channel_id, "b", "abusive text", T0 + timedelta(minutes=1)),
            ]
        ],
    )
    assert (await _conversation_view(engine, tenant, channel_id, "thread"))[3] == "abusive text"
    await _store(
        engine, [[edited(channel_id, "b", "[edited by the author]", T0 + timedelta(minutes=2))]], start_seq=5
    )
    assert (await _conversation_view(engine, tenant, channel_id, "thread"))[3] == "[edited by the author]"
    await _store(engine, [[deleted(channel_id, "b", T0 + timedelta(minutes=3))]], start_seq=6)
    assert (await _conversation_view(engine, tenant, channel_id, "thread"))[3] == "kind words"


@pytest.mark.parametrize("order", ["AB", "BA"])
async def test_two_edits_at_the_same_second_settle_the_same_way_in_any_order(
    engine: AsyncEngine, order: str
) -> None:
    tenant = await make_tenant(engine)
    channel_id = await _channel(engine, tenant)
    same_second = T0 + timedelta(minutes=1)
    edits = {
        "A": edited(channel_id, "x", "edit A", same_second),
        "B": edited(channel_id, "x", "edit B", same_second),
    }
    await _store(engine, [[created(channel_id, "x", "original", T0)], *([edits[k]] for k in order)])
    assert (await _message(engine, channel_id, "x")).text == "edit B"


@pytest.mark.parametrize("reverse", [False, True])
async def test_an_identity_keeps_the_newest_profile_in_any_order(engine: AsyncEngine, reverse: bool) -> None:
    tenant = await make_tenant(engine)
    channel_id = await _channel(engine, tenant)
    events = [
        created(
            channel_id,
            "1",
            "hi",
            T0,
            author=AuthorRef(namespace="ns", external_id="u", handle="@old", name="Old"),
        ),
        created(
            channel_id,
            "2",
            "hi",
            T0 + timedelta(days=1),
            author=AuthorRef(namespace="ns", external_id="u", name="New"),
        ),
        created(
            channel_id,
            "3",
            "hi",
            T0 + timedelta(days=2),
            author=AuthorRef(namespace="ns", external_id="u", handle="@new"),
        ),
    ]
    await _store(engine, [[e] for e in (events[::-1] if reverse else events)])
    async with session_factory(engine)() as session:
        identity = await session.scalar(select(Identity).where(Identity.workspace_id == tenant.workspace_id))
    assert identity is not None
    assert (identity.handle, identity.display_name) == ("@new", "New")


async def test_a_delete_for_an_unseen_thread_does_not_move_an_existing_conversation(
    engine: AsyncEngine,
) -> None:
    tenant = await make_tenant(engine)
    channel_id = await _channel(engine, tenant)
    await _store(engine, [[created(channel_id, "a", "hello", T0)]])
    await _store(engine, [[deleted(channel_id, "ghost", T0 + timedelta(days=1))]], start_seq=5)
    async with session_factory(engine)() as session:
        conversation = await session.get(Conversation, ids.conversation_id(channel_id, "thread"))
    assert conversation is not None
    assert conversation.last_activity_at == T0


async def test_a_reply_before_its_parent_links_up_when_the_parent_arrives(engine: AsyncEngine) -> None:
    tenant = await make_tenant(engine)
    channel_id = await _channel(engine, tenant)
    reply = created(
        channel_id, "child", "re: parent", T0 + timedelta(seconds=1), reply_to_external_id="parent"
    )
    await _store(engine, [[reply]])
    child = await _message(engine, channel_id, "child")
    assert child.reply_to_external_id == "parent"
    await _store(engine, [[created(channel_id, "parent", "the parent", T0)]], start_seq=3)
    parent = await _message(engine, channel_id, "parent")
    assert parent.id == ids.message_id(channel_id, "parent")


async def test_unknown_channels_are_refused_and_the_rest_stored(engine: AsyncEngine) -> None:
    tenant = await make_tenant(engine)
    channel_id = await _channel(engine, tenant)
    events: list[InboundEvent] = [
        created(channel_id, "ok-1", "one", T0),
        created(uuid.uuid4(), "lost", "nowhere", T0),
        created(channel_id, "ok-2", "two", T0),
    ]
    [refused] = await _store(engine, [events])
    assert list(refused) == [1]
    assert "unknown channel" in refused[1]
    assert (await _message(engine, channel_id, "ok-2")).text == "two"


async def test_identities_take_the_newest_handle_and_keep_their_contact(engine: AsyncEngine) -> None:
    tenant = await make_tenant(engine)
    channel_id = await _channel(engine, tenant)
    await _store(
        engine, [[created(channel_id, "1", "hi", T0, author=AuthorRef(namespace="ns", external_id="u1"))]]
    )
    renamed = AuthorRef(namespace="ns", external_id="u1", handle="@new", name="New Name")
    await _store(
        engine,
        [[created(channel_id, "2", "hi again", T0 + timedelta(minutes=1), author=renamed)]],
        start_seq=2,
    )
    async with session_factory(engine)() as session:
        identity = await session.scalar(select(Identity).where(Identity.workspace_id == tenant.workspace_id))
        assert identity is not None
        contact = await session.get(Contact, identity.contact_id)
    assert (identity.handle, identity.display_name) == ("@new", "New Name")
    assert contact is not None
    assert contact.name == "New Name"


async def test_attachments_are_stored(engine: AsyncEngine) -> None:
    tenant = await make_tenant(engine)
    channel_id = await _channel(engine, tenant)
    photo = Attachment(type="image", url="https://cdn.example/p.png", mime="image/png", size=1234)
    event = MessageReceived(
        workspace="w",
        source="test",
        payload=InboundMessage(
            **_ref(channel_id, "media"), author=_author(), attachments=(photo,), sent_at=T0
        ),
    )
    await _store(engine, [[event]])
    message = await _message(engine, channel_id, "media")
    assert message.text is None
    assert message.attachments == [
        {"type": "image", "url": "https://cdn.example/p.png", "mime": "image/png", "size": 1234}
    ]


async def test_a_worker_memory_skips_known_rows_and_still_stores_right(engine: AsyncEngine) -> None:
    from services.inbox.service.ingest import IngestMemory

    tenant = await make_tenant(engine)
    channel_id = await _channel(engine, tenant)
    memory = IngestMemory()

    async def store(events: list[InboundEvent], first_seq: int) -> Any:
        async with session_factory(engine)() as session, session.begin():
            stored = await store_events(
                session, [(e, first_seq + i) for i, e in enumerate(events)], T0, memory
            )
        memory.remember(stored.plan, stored.workspaces)
        return stored

    await store([created(channel_id, "k1", "one", T0)], 1)
    assert memory.workspaces == {channel_id: tenant.workspace_id}
    second = await store([created(channel_id, "k2", "two", T0)], 2)
    # The channel was touched moments ago: its last_event_at is not written again.
    assert second.plan.channel_activity == {}
    assert (await _message(engine, channel_id, "k2")).text == "two"
    memory.forget()
    assert not memory.workspaces
    assert not memory.touched


async def test_an_agents_deletion_during_an_ingest_batch_previews_what_the_batch_wrote(
    engine: AsyncEngine,
) -> None:
    """The deletion's outcome waits for the batch's lock on the conversation, then derives the
    preview from the messages as the batch left them (not as they were when it started waiting)."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writer at a time: the two transactions cannot interleave")
    tenant = await make_tenant(engine)
    channel_id = await _channel(engine, tenant)
    await _store(
        engine,
        [
            [
                created(channel_id, "a", "first", T0),
                created(channel_id, "b", "spam", T0 + timedelta(minutes=1)),
            ]
        ],
    )
    spam = await _message(engine, channel_id, "b")
    sessions = session_factory(engine)

    async def delete_spam() -> None:
        async with sessions() as session, session.begin():
            await outbound_repo.mark_deleted_by_agent(
                session, spam.id, T0 + timedelta(minutes=3), datetime.now(UTC)
            )

    async with sessions() as ingest, ingest.begin():
        newest = created(channel_id, "c", "newest", T0 + timedelta(minutes=2))
        await store_events(ingest, [(newest, 10)], datetime.now(UTC))
        deletion = asyncio.create_task(delete_spam())
        await asyncio.sleep(0.3)
        assert not deletion.done(), "it waits for the batch"
    await deletion
    assert (await _conversation_view(engine, tenant, channel_id, "thread"))[3] == "newest"
    assert (await _message(engine, channel_id, "b")).deleted_at is not None


async def test_a_reopening_is_announced_when_an_agent_changed_the_status_while_the_batch_waited(
    engine: AsyncEngine,
) -> None:
    """The batch reads what its customer message may reopen under the lock its upsert then holds:
    an agent resolving the conversation meanwhile makes the batch wait, and the reopening it then
    makes is announced, from the status the agent left."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writer at a time: the two transactions cannot interleave")
    tenant = await make_tenant(engine)
    channel_id = await _channel(engine, tenant)
    await _store(engine, [[created(channel_id, "a", "hello", T0)]])
    conversation_id = ids.conversation_id(channel_id, "thread")
    sessions = session_factory(engine)

    async def ingest() -> list[str]:
        later = created(channel_id, "b", "still there?", T0 + timedelta(minutes=2))
        async with sessions() as session, session.begin():
            return (await store_events(session, [(later, 2)], datetime.now(UTC))).outbox_ids

    async with sessions() as agent, agent.begin():
        conversation = await agent.get(Conversation, conversation_id, with_for_update=True)
        assert conversation is not None
        conversation.status, conversation.status_changed_at = "resolved", T0 + timedelta(minutes=1)
        conversation.version += 1
        await agent.flush()
        batch = asyncio.create_task(ingest())
        await asyncio.sleep(0.3)
        assert not batch.done(), "it waits for the agent's change"
    [announced] = await batch
    async with sessions() as session:
        entry = await session.get(OutboxEntry, announced)
        reopened = await session.get(Conversation, conversation_id)
    assert entry is not None
    assert reopened is not None
    assert reopened.status == "open"
    changes = orjson.loads(entry.payload)["payload"]["changes"]
    assert changes == {
        "status": {"before": "resolved", "after": "open"},
        "version": {"before": 2, "after": reopened.version},
    }
