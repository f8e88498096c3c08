"""Every kind of update, from the fake Bot API through the connector, the bus and the inbox to the API."""

from __future__ import annotations

import asyncio
import uuid
from typing import Any

import httpx
import pytest

from tests.fakes.telegram import FakeBot, factory
from tests.services.telegram.conftest import connect_bot, conversation_of, messages_of
from tests.support import Tenant, conversation_messages, wait_for

pytestmark = pytest.mark.e2e


async def test_a_private_chat_message_and_its_edit(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot, polled: dict[str, Any]
) -> None:
    zoe = factory.user("Zoë", last_name="K", username="zoe_k", language_code="de")
    chat = bot.add_private_chat(zoe)
    question = factory.message(chat, zoe, text="Hallo 👋 is the order shipped?")
    bot.push_message(question)
    [message] = await messages_of(api, tenant, polled["id"], str(chat["id"]), 1)
    assert message["text"] == "Hallo 👋 is the order shipped?"
    assert message["author"]["handle"] == "@zoe_k"
    assert message["author"]["name"] == "Zoë K"
    assert message["author"]["namespace"] == "telegram"
    assert message["external_id"] == f"{chat['id']}:{question['message_id']}"
    conversation = await conversation_of(api, tenant, polled["id"], str(chat["id"]))
    assert conversation["title"] == "Zoë K"
    bot.push_message(factory.edited(question, text="Hallo 👋 is order #88 shipped?"), kind="edited_message")

    async def edited() -> dict[str, Any] | None:
        [current] = await conversation_messages(api, tenant, polled["id"], str(chat["id"]))
        return current if current["edited_at"] else None

    current = await wait_for(edited)
    assert current["text"] == "Hallo 👋 is order #88 shipped?"
    history = (await api.get(f"/v1/messages/{current['id']}/history", headers=tenant.auth)).json()
    assert [r["text"] for r in history["revisions"]] == [
        "Hallo 👋 is the order shipped?",
        "Hallo 👋 is order #88 shipped?",
    ]


async def test_a_group_with_many_authors_and_a_reply(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot, polled: dict[str, Any]
) -> None:
    ana, ravi = factory.user("Ana"), factory.user("Ravi", username="ravi")
    group = bot.add_group("Support", members=[ana, ravi])
    first = factory.message(group, ana, text="Is the shop open on Sunday?")
    bot.push_message(first)
    bot.push_message(factory.message(group, ravi, text="Yes, 10-16", reply_to=first))
    messages = await messages_of(api, tenant, polled["id"], str(group["id"]), 2)
    assert [m["author"]["name"] for m in messages] == ["Ana", "Ravi"]
    assert messages[1]["reply_to"] == {
        "external_id": messages[0]["external_id"],
        "message_id": messages[0]["id"],
    }
    conversation = await conversation_of(api, tenant, polled["id"], str(group["id"]))
    assert conversation["title"] == "Support"


async def test_forum_topics_are_conversations_of_their_own(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot, polled: dict[str, Any]
) -> None:
    kim = factory.user("Kim")
    forum = bot.add_group("Help desk", forum=True, members=[kim])
    billing = bot.add_forum_topic(forum["id"], "Billing", push=True)
    shipping = bot.add_forum_topic(forum["id"], "Shipping", push=True)
    bot.push_message(factory.message(forum, kim, text="invoice shows VAT twice", thread_id=billing))
    bot.push_message(factory.message(forum, kim, text="courier missed me", thread_id=shipping))
    [on_billing] = await messages_of(api, tenant, polled["id"], f"{forum['id']}:topic:{billing}", 1)
    [on_shipping] = await messages_of(api, tenant, polled["id"], f"{forum['id']}:topic:{shipping}", 1)
    assert on_billing["text"] == "invoice shows VAT twice"
    assert on_shipping["text"] == "courier missed me"
    assert on_billing["reply_to"] is None  # a topic's messages quote its opening; that is no reply
    topic = await conversation_of(api, tenant, polled["id"], f"{forum['id']}:topic:{billing}")
    assert topic["title"] == "Billing"


async def test_a_channel_post_and_its_comments_are_one_conversation(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot, polled: dict[str, Any]
) -> None:
    fan = factory.user("Fan")
    discussion = bot.add_group("Shop news chat", members=[fan])
    channel = bot.add_channel("Shop news", username="shopnews", discussion_group=discussion)
    post = factory.channel_post(channel, text="Summer sale starts tomorrow ☀️", author_signature="Ana")
    bot.push_message(post, kind="channel_post")
    forward = factory.automatic_forward(discussion, post)
    bot.push_message(forward)
    first = factory.comment(discussion, fan, on=forward, text="does it include the outlet?")
    bot.push_message(first)
    bot.push_message(factory.message(discussion, fan, text="and shoes?", thread_id=forward["message_id"]))
    thread = f"{channel['id']}:post:{post['message_id']}"
    messages = await messages_of(api, tenant, polled["id"], thread, 3)
    assert [m["text"] for m in messages] == [
        "Summer sale starts tomorrow ☀️",
        "does it include the outlet?",
        "and shoes?",
    ]
    assert messages[0]["author"]["name"] == "Shop news (Ana)"
    assert messages[1]["reply_to"]["message_id"] == messages[0]["id"]
    conversation = await conversation_of(api, tenant, polled["id"], thread)
    assert conversation["title"].startswith("Shop news: Summer sale")


async def test_media_become_attachments_and_download_through_the_api(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot, polled: dict[str, Any]
) -> None:
    ravi = factory.user("Ravi")
    chat = bot.add_private_chat(ravi)
    image = b"\x89PNG\r\n\x1a\n" + bytes(range(256)) * 4
    photo_id = bot.add_file(image, path_hint="photos/label.jpg")
    doc_id = bot.add_file(b"%PDF-1.7 invoice", path_hint="documents/invoice.pdf")
    bot.push_message(
        factory.message(chat, ravi, caption="here 📦", media=factory.photo(file=bot.file_ref(photo_id)))
    )
    bot.push_message(
        factory.message(
            chat,
            ravi,
            media=factory.document(
                file=bot.file_ref(doc_id), file_name="invoice.pdf", mime_type="application/pdf"
            ),
        )
    )
    bot.push_message(factory.message(chat, ravi, media=factory.location(45.4642, 9.19)))
    bot.push_message(
        factory.message(chat, ravi, media=factory.contact("+390212345", "Marta", last_name="Rossi"))
    )
    messages = await messages_of(api, tenant, polled["id"], str(chat["id"]), 4)
    photo, document, location, contact = messages
    assert photo["text"] == "here 📦"
    assert photo["attachments"][0]["type"] == "image"
    assert document["attachments"][0] | {"file_ref": "-"} == {
        "type": "document",
        "file_ref": "-",
        "mime": "application/pdf",
        "name": "invoice.pdf",
        "size": 16,
    }
    assert location["attachments"] == [{"type": "location", "url": "geo:45.4642,9.19"}]
    assert contact["attachments"] == [{"type": "contact", "name": "Marta Rossi", "url": "tel:+390212345"}]
    downloaded = await api.get(f"/v1/messages/{photo['id']}/attachments/0", headers=tenant.auth)
    assert downloaded.status_code == 200
    assert downloaded.content == image
    assert downloaded.headers["content-type"] == "image/jpeg"
    missing = await api.get(f"/v1/messages/{photo['id']}/attachments/3", headers=tenant.auth)
    assert missing.status_code == 404
    assert (
        await api.get(f"/v1/messages/{location['id']}/attachments/0", headers=tenant.auth)
    ).status_code == 404


async def test_entities_and_forwards_are_kept_for_rendering(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot, polled: dict[str, Any]
) -> None:
    zoe = factory.user("Zoë")
    chat = bot.add_private_chat(zoe)
    text = "😀 see https://shop.example"
    entity = factory.entity(text, "https://shop.example", "url")
    bot.push_message(
        factory.message(
            chat, zoe, text=text, entities=[entity], forward_origin=factory.origin_hidden_user("Old Friend")
        )
    )
    [message] = await messages_of(api, tenant, polled["id"], str(chat["id"]), 1)
    assert message["meta"]["entities"] == [entity]
    assert entity["offset"] == 7  # UTF-16 units: the emoji counts twice
    assert message["meta"]["forwarded_from"] == "Old Friend"


async def test_business_chats_tell_the_owner_from_the_customer(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot, polled: dict[str, Any]
) -> None:
    owner, customer = factory.user("Shop Owner"), factory.user("Kim")
    connection = bot.add_business_connection(owner)
    chat = factory.private_chat(customer)
    asked = factory.message(
        chat, customer, text="do you have size 38?", business_connection_id=connection, message_id=12
    )
    answered = factory.message(
        chat, owner, text="yes, in blue", business_connection_id=connection, message_id=13
    )
    bot.push_message(asked, kind="business_message")
    bot.push_message(answered, kind="business_message")
    thread = f"b:{connection}:{chat['id']}"
    messages = await messages_of(api, tenant, polled["id"], thread, 2)
    assert [(m["text"], m["direction"]) for m in messages] == [
        ("do you have size 38?", "inbound"),
        ("yes, in blue", "outbound"),
    ]
    bot.push_update({"deleted_business_messages": factory.deleted_business_messages(connection, chat, [12])})

    async def deleted() -> list[dict[str, Any]] | None:
        left = await conversation_messages(api, tenant, polled["id"], thread)
        return left if len(left) == 1 else None

    [remaining] = await wait_for(deleted)
    assert remaining["text"] == "yes, in blue"


async def test_reactions_are_counted_on_the_message_not_added_as_messages(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot, polled: dict[str, Any]
) -> None:
    ana, ravi = factory.user("Ana"), factory.user("Ravi")
    group = bot.add_group("Fans", members=[ana, ravi])
    post = factory.message(group, ana, text="new colours are in")
    bot.push_message(post)
    await messages_of(api, tenant, polled["id"], str(group["id"]), 1)
    bot.push_update(
        {"message_reaction": factory.message_reaction(group, post["message_id"], ravi, new=["👍"])}
    )
    bot.push_update(
        {"message_reaction": factory.message_reaction(group, post["message_id"], ana, new=["👍", "🔥"])}
    )

    async def counted() -> dict[str, Any] | None:
        [message] = await conversation_messages(api, tenant, polled["id"], str(group["id"]))
        return message if message["reactions"].get("👍") == 2 else None

    message = await wait_for(counted)
    assert message["reactions"] == {"👍": 2, "🔥": 1}
    # Ravi takes his reaction back.
    bot.push_update(
        {"message_reaction": factory.message_reaction(group, post["message_id"], ravi, new=[], old=["👍"])}
    )

    async def withdrawn() -> dict[str, Any] | None:
        [message] = await conversation_messages(api, tenant, polled["id"], str(group["id"]))
        return message if message["reactions"].get("👍") == 1 else None

    await wait_for(withdrawn)
    assert len(await conversation_messages(api, tenant, polled["id"], str(group["id"]))) == 1


async def test_joins_leaves_and_renames_are_events_not_messages(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot, polled: dict[str, Any], engine: Any
) -> None:
    from sqlalchemy import select

    from services.inbox.models import ConversationEvent
    from shared.db import session_factory

    ana, newbie = factory.user("Ana"), factory.user("Newbie")
    group = bot.add_group("Old name", members=[ana])
    bot.push_message(factory.message(group, ana, text="hello"))
    bot.push_message(factory.new_chat_members(group, [newbie]))
    bot.push_message(factory.left_chat_member(group, newbie))
    bot.push_message(factory.new_chat_title(group, "New name", actor=ana))
    bot.push_message(factory.message(bot.chat(group["id"]), ana, text="renamed!"))  # the chat as it is now
    messages = await messages_of(api, tenant, polled["id"], str(group["id"]), 2)
    assert [m["text"] for m in messages] == ["hello", "renamed!"]

    async def renamed() -> dict[str, Any] | None:
        conversation = await conversation_of(api, tenant, polled["id"], str(group["id"]))
        return conversation if conversation["title"] == "New name" else None

    conversation = await wait_for(renamed)
    async with session_factory(engine)() as session:
        kinds = (
            await session.scalars(
                select(ConversationEvent.kind)
                .where(ConversationEvent.conversation_id == uuid.UUID(conversation["id"]))
                .order_by(ConversationEvent.occurred_at, ConversationEvent.kind)
            )
        ).all()
    assert sorted(kinds) == ["member_joined", "member_left", "renamed"]


async def test_a_group_upgraded_to_a_supergroup_stays_one_conversation(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot, polled: dict[str, Any]
) -> None:
    ana = factory.user("Ana")
    group = bot.add_group("Small group", supergroup=False, members=[ana])
    bot.push_message(factory.message(group, ana, text="before the upgrade"))
    new_id = bot.migrate_to_supergroup(group["id"])
    bot.push_message(factory.message(bot.chat(new_id), ana, text="after the upgrade"))
    messages = await messages_of(api, tenant, polled["id"], str(group["id"]), 2)
    assert [m["text"] for m in messages] == ["before the upgrade", "after the upgrade"]
    page = await api.get("/v1/conversations", params={"channel_id": polled["id"]}, headers=tenant.auth)
    assert [c["external_id"] for c in page.json()["data"]] == [str(group["id"])]


async def test_unknown_update_kinds_are_counted_and_skipped(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot
) -> None:
    # Through the webhook endpoint, where Telegram may send any kind (polling asks for known kinds only).
    channel = await connect_bot(api, tenant, bot, mode="webhook")
    assert bot.webhook is not None
    headers = {
        "X-Telegram-Bot-Api-Secret-Token": bot.webhook.secret_token,
        "content-type": "application/json",
    }
    zoe = factory.user("Zoë")
    chat = factory.private_chat(zoe)
    for number, update in enumerate(
        [
            {"poll": {"id": "1", "question": "?", "options": [], "total_voter_count": 0}},
            {"future_kind_of_2027": {"anything": True}},
            {"message": factory.message(chat, zoe, text="still here", message_id=1)},
        ]
    ):
        response = await api.post(
            f"/webhooks/telegram/{channel['id']}",
            json={"update_id": 1000 + number, **update},
            headers=headers,
        )
        assert response.status_code == 200, response.text
        assert response.json() == {"ok": True}
    [message] = await messages_of(api, tenant, channel["id"], str(chat["id"]), 1)
    assert message["text"] == "still here"
    metrics = (await api.get("/metrics")).text
    assert 'piazza_telegram_updates_total{kind="future_kind_of_2027",outcome="skipped"}' in metrics


async def test_channel_health_shows_the_connection(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot, polled: dict[str, Any]
) -> None:
    async def connected() -> dict[str, Any] | None:
        health = (await api.get(f"/v1/channels/{polled['id']}", headers=tenant.auth)).json()["health"]
        return health if health["connected"] and health["backlog"] is not None else None

    health = await wait_for(connected)
    assert health["status"] == "ok"
    assert health["backlog"] == 0


async def test_the_offset_confirms_each_batch_once_it_is_stored(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot, polled: dict[str, Any]
) -> None:
    zoe = factory.user("Zoë")
    chat = bot.add_private_chat(zoe)
    for n in range(5):
        bot.push_message(factory.message(chat, zoe, text=f"m{n}"))
    await messages_of(api, tenant, polled["id"], str(chat["id"]), 5)
    await bot.wait_for(lambda: not bot.pending_updates)
    offsets = [r.params.get("offset") for r in bot.calls("getUpdates")]
    assert offsets[-1] is not None
    assert all(isinstance(o, int) for o in offsets if o is not None)
    await asyncio.sleep(0)
