"""Replies and moderation, from the API through the outbox, the bus and the reply service to the fake
Bot API, and the outcome back on the message and in the audit log."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from services.reply.config import ReplySettings
from shared.bus.client import Bus
from shared.bus.topology import SEND_ATTEMPTS_BUCKET
from shared.platforms.telegram.text import utf16_len
from tests.fakes.telegram import FakeBot, factory
from tests.services.telegram.conftest import conversation_of, messages_of
from tests.support import Tenant, conversation_messages, wait_for

pytestmark = pytest.mark.e2e


async def post_reply(
    api: httpx.AsyncClient,
    tenant: Tenant,
    conversation_id: str,
    text: str,
    *,
    reply_to: str | None = None,
    key: str | None = None,
    auth: dict[str, str] | None = None,
) -> httpx.Response:
    headers = {**(auth or tenant.auth), **({"Idempotency-Key": key} if key else {})}
    body = {"text": text, **({"reply_to_message_id": reply_to} if reply_to else {})}
    return await api.post(f"/v1/conversations/{conversation_id}/messages", json=body, headers=headers)


async def reply(
    api: httpx.AsyncClient, tenant: Tenant, conversation_id: str, text: str, **kwargs: Any
) -> str:
    """Queue a reply; returns its message id."""
    response = await post_reply(api, tenant, conversation_id, text, **kwargs)
    assert response.status_code == 202, response.text
    queued = response.json()
    assert queued["delivery"] == {"status": "pending", "error": None}
    assert queued["direction"] == "outbound"
    return str(queued["id"])


async def settled(api: httpx.AsyncClient, tenant: Tenant, message_id: str) -> dict[str, Any]:
    """The reply once it is no longer pending."""

    async def done() -> dict[str, Any] | None:
        response = await api.get(f"/v1/messages/{message_id}", headers=tenant.auth)
        assert response.status_code == 200, response.text
        body: dict[str, Any] = response.json()
        return body if body["delivery"]["status"] != "pending" else None

    return await wait_for(done, timeout=45)  # a paced backlog on a loaded 2-core CI run took over 15 s


async def audited(api: httpx.AsyncClient, tenant: Tenant, entry_id: str) -> dict[str, Any]:
    """An audit entry once the platform answered."""

    async def done() -> dict[str, Any] | None:
        page = await api.get("/v1/audit", params={"limit": 200}, headers=tenant.auth)
        assert page.status_code == 200, page.text
        [entry] = [e for e in page.json()["data"] if e["id"] == entry_id]
        return entry if entry["status"] != "requested" else None

    result: dict[str, Any] = await wait_for(done, timeout=15)
    return result


@pytest.fixture
def telegram_chat(bot: FakeBot) -> tuple[dict[str, Any], dict[str, Any]]:
    """A private chat with a customer, and the customer."""
    zoe = factory.user("Zoë", username="zoe_k")
    return bot.add_private_chat(zoe), zoe


async def _asked(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot, channel: dict[str, Any], chat: dict[str, Any],
    sender: dict[str, Any], text: str, **extra: Any,
) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:  # fmt: skip
    """Push a customer message; returns (the Telegram message, its inbox message, its conversation)."""
    sent = factory.message(chat, sender, text=text, **extra)
    bot.push_message(sent)
    thread = str(chat["id"])
    if sent.get("message_thread_id") and chat.get("is_forum"):
        thread = f"{chat['id']}:topic:{sent['message_thread_id']}"
    messages = await messages_of(api, tenant, channel["id"], thread, 1)
    [stored] = [m for m in messages if m["text"] == text]
    return sent, stored, await conversation_of(api, tenant, channel["id"], thread)


# -- sending ------------------------------------------------------------------------------------------


async def test_a_reply_is_sent_as_a_reply_and_recorded(
    api: httpx.AsyncClient,
    tenant: Tenant,
    bot: FakeBot,
    polled: dict[str, Any],
    replier: Any,
    telegram_chat: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    chat, zoe = telegram_chat
    question, stored, conversation = await _asked(api, tenant, bot, polled, chat, zoe, "is it shipped?")
    message_id = await reply(api, tenant, conversation["id"], "Yes, it left today 📦", reply_to=stored["id"])
    sent = await settled(api, tenant, message_id)
    [on_telegram] = bot.sent_to(chat["id"])
    assert on_telegram.message["text"] == "Yes, it left today 📦"
    assert on_telegram.message["reply_to_message"]["message_id"] == question["message_id"]
    [call] = bot.calls("sendMessage")
    assert call.params["reply_parameters"]["message_id"] == question["message_id"]
    assert sent["delivery"] == {"status": "sent", "error": None}
    assert sent["external_id"] == f"{chat['id']}:{on_telegram.message['message_id']}"
    assert sent["reply_to"] == {"external_id": stored["external_id"], "message_id": stored["id"]}
    assert sent["sent_at"] is not None
    listed = await messages_of(api, tenant, polled["id"], str(chat["id"]), 2)
    assert [(m["text"], m["direction"]) for m in listed] == [
        ("is it shipped?", "inbound"),
        ("Yes, it left today 📦", "outbound"),
    ]


async def test_replies_land_in_their_forum_topic(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot, polled: dict[str, Any], replier: Any
) -> None:
    kim = factory.user("Kim")
    forum = bot.add_group("Help desk", forum=True, members=[kim])
    billing = bot.add_forum_topic(forum["id"], "Billing", push=True)
    shipping = bot.add_forum_topic(forum["id"], "Shipping", push=True)
    question, stored, topic = await _asked(
        api, tenant, bot, polled, forum, kim, "VAT twice?", thread_id=billing
    )
    plain = await reply(api, tenant, topic["id"], "Looking into it")
    await settled(api, tenant, plain)
    answer = await reply(api, tenant, topic["id"], "Fixed, sorry!", reply_to=stored["id"])
    assert (await settled(api, tenant, answer))["delivery"]["status"] == "sent"
    first, second = bot.sent_to(forum["id"])
    assert (first.message_thread_id, first.message["text"]) == (billing, "Looking into it")
    assert (second.message_thread_id, second.message["text"]) == (billing, "Fixed, sorry!")
    assert second.message["reply_to_message"]["message_id"] == question["message_id"]
    assert all(sent.message_thread_id != shipping for sent in bot.sent)


async def test_a_reply_on_a_channel_post_goes_to_its_discussion_thread(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot, polled: dict[str, Any], replier: Any
) -> None:
    fan = factory.user("Fan")
    discussion = bot.add_group("Shop news chat", members=[fan])
    channel = bot.add_channel("Shop news", discussion_group=discussion)
    post = factory.channel_post(channel, text="Summer sale tomorrow")
    bot.push_message(post, kind="channel_post")
    forward = factory.automatic_forward(discussion, post)
    bot.push_message(forward)
    comment = factory.comment(discussion, fan, on=forward, text="outlet too?")
    bot.push_message(comment)
    thread = f"{channel['id']}:post:{post['message_id']}"
    _, stored = await messages_of(api, tenant, polled["id"], thread, 2)
    conversation = await conversation_of(api, tenant, polled["id"], thread)

    answer = await reply(api, tenant, conversation["id"], "Yes, outlet too", reply_to=stored["id"])
    assert (await settled(api, tenant, answer))["delivery"]["status"] == "sent"
    [sent] = bot.sent_to(discussion["id"])
    assert sent.message_thread_id == forward["message_id"]
    assert sent.message["reply_to_message"]["message_id"] == comment["message_id"]

    # Nowhere to put a reply to the post itself: refused with the reason, nothing sent.
    unanchored = await settled(api, tenant, await reply(api, tenant, conversation["id"], "hello all"))
    assert unanchored["delivery"]["status"] == "failed"
    assert unanchored["delivery"]["error"].startswith("unsupported:")
    assert "comments" in unanchored["delivery"]["error"]
    assert bot.sent_to(channel["id"]) == []
    assert len(bot.sent) == 1


async def test_a_business_chat_reply_goes_through_the_connection(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot, polled: dict[str, Any], replier: Any
) -> None:
    owner, customer = factory.user("Shop Owner"), factory.user("Kim")
    connection = bot.add_business_connection(owner)
    chat = factory.private_chat(customer)
    asked = factory.message(chat, customer, text="size 38?", business_connection_id=connection, message_id=5)
    bot.push_message(asked, kind="business_message")
    thread = f"b:{connection}:{chat['id']}"
    [stored] = await messages_of(api, tenant, polled["id"], thread, 1)
    conversation = await conversation_of(api, tenant, polled["id"], thread)
    answer = await settled(
        api, tenant, await reply(api, tenant, conversation["id"], "Yes, in blue", reply_to=stored["id"])
    )
    assert answer["delivery"]["status"] == "sent"
    [call] = bot.calls("sendMessage")
    assert call.params["business_connection_id"] == connection
    assert call.params["chat_id"] == chat["id"]
    assert answer["external_id"].startswith(f"b:{connection}:{chat['id']}:")


async def test_long_replies_are_split_under_telegrams_limit(
    api: httpx.AsyncClient,
    tenant: Tenant,
    bot: FakeBot,
    polled: dict[str, Any],
    replier: Any,
    telegram_chat: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    chat, zoe = telegram_chat
    _, stored, conversation = await _asked(api, tenant, bot, polled, chat, zoe, "the whole story please")
    # 3,000 emoji are 6,000 UTF-16 units: two messages even though it is only 3,000 characters.
    paragraphs = ["🚚" * 1500, "Order " + "details " * 400, "Thanks for your patience 🙏"]
    text = "\n\n".join(paragraphs)
    answer = await settled(
        api, tenant, await reply(api, tenant, conversation["id"], text, reply_to=stored["id"])
    )
    parts = [sent.message for sent in bot.sent_to(chat["id"])]
    assert len(parts) >= 2
    assert all(utf16_len(part["text"]) <= 4096 for part in parts)
    assert "".join(part["text"] for part in parts).replace("\n", "").replace(" ", "") == text.replace(
        "\n", ""
    ).replace(" ", "")
    assert parts[0]["text"].endswith(" details")  # cut between words, not inside one
    assert parts[1]["text"].startswith("details")
    assert "reply_to_message" in parts[0]
    assert all("reply_to_message" not in part for part in parts[1:])
    assert answer["delivery"]["status"] == "sent"
    assert answer["meta"]["platform_message_ids"] == [f"{chat['id']}:{p['message_id']}" for p in parts]
    assert answer["text"] == text  # the inbox keeps the reply as written


async def test_a_group_migrated_to_a_supergroup_gets_the_reply_in_its_new_chat(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot, polled: dict[str, Any], replier: Any
) -> None:
    ana = factory.user("Ana")
    group = bot.add_group("Small group", supergroup=False, members=[ana])
    _, _, conversation = await _asked(api, tenant, bot, polled, group, ana, "anyone there?")
    new_id = bot.migrate_to_supergroup(group["id"])
    answer = await settled(api, tenant, await reply(api, tenant, conversation["id"], "We are!"))
    assert answer["delivery"]["status"] == "sent"
    [sent] = bot.sent_to(new_id)
    assert answer["external_id"] == f"{new_id}:{sent.message['message_id']}"
    assert [c.params["chat_id"] for c in bot.calls("sendMessage")] == [group["id"], new_id]


# -- refusals and failures --------------------------------------------------------------------------


async def test_a_user_who_blocked_the_bot_fails_the_reply_once(
    api: httpx.AsyncClient,
    tenant: Tenant,
    bot: FakeBot,
    polled: dict[str, Any],
    replier: Any,
    telegram_chat: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    chat, zoe = telegram_chat
    _, _, conversation = await _asked(api, tenant, bot, polled, chat, zoe, "bye")
    bot.block(zoe["id"])
    failed = await settled(api, tenant, await reply(api, tenant, conversation["id"], "wait!"))
    assert failed["delivery"]["status"] == "failed"
    assert failed["delivery"]["error"] == "forbidden: Forbidden: bot was blocked by the user"
    assert failed["external_id"].startswith("piazza:")
    assert len(bot.calls("sendMessage")) == 1  # not retried


async def test_a_chat_that_is_gone_fails_the_reply_once(
    api: httpx.AsyncClient,
    tenant: Tenant,
    bot: FakeBot,
    polled: dict[str, Any],
    replier: Any,
    telegram_chat: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    chat, zoe = telegram_chat
    _, _, conversation = await _asked(api, tenant, bot, polled, chat, zoe, "hi")
    del bot.chats[chat["id"]]
    failed = await settled(api, tenant, await reply(api, tenant, conversation["id"], "hello?"))
    assert failed["delivery"] == {"status": "failed", "error": "rejected: Bad Request: chat not found"}
    assert len(bot.calls("sendMessage")) == 1


async def test_429_is_waited_out_as_telegram_asks(
    api: httpx.AsyncClient,
    tenant: Tenant,
    bot: FakeBot,
    polled: dict[str, Any],
    replier: Any,
    telegram_chat: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    chat, zoe = telegram_chat
    _, _, conversation = await _asked(api, tenant, bot, polled, chat, zoe, "hi")
    bot.inject("sendMessage", retry_after=1)
    answer = await settled(api, tenant, await reply(api, tenant, conversation["id"], "hello!"))
    assert answer["delivery"]["status"] == "sent"
    refused, accepted = bot.calls("sendMessage")
    assert accepted.at - refused.at >= 1.0


async def test_passing_failures_are_retried_then_given_up(
    api: httpx.AsyncClient,
    tenant: Tenant,
    bot: FakeBot,
    polled: dict[str, Any],
    replier: Any,
    reply_settings: ReplySettings,
    telegram_chat: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    chat, zoe = telegram_chat
    _, _, conversation = await _asked(api, tenant, bot, polled, chat, zoe, "hi")
    bot.inject("sendMessage", status=500, times=1)
    bot.inject("sendMessage", fault="bad_gateway", times=1)
    recovered = await settled(api, tenant, await reply(api, tenant, conversation["id"], "one"))
    assert recovered["delivery"]["status"] == "sent"
    assert len(bot.calls("sendMessage")) == 3
    assert [s.message["text"] for s in bot.sent_to(chat["id"])] == ["one"]

    bot.inject("sendMessage", status=502, times=reply_settings.attempts)
    given_up = await settled(api, tenant, await reply(api, tenant, conversation["id"], "two"))
    assert given_up["delivery"]["status"] == "failed"
    assert given_up["delivery"]["error"].startswith("unreachable:")
    assert f"after {reply_settings.attempts} attempts" in given_up["delivery"]["error"]
    assert len(bot.calls("sendMessage")) == 3 + reply_settings.attempts


async def test_an_answer_lost_after_the_call_is_never_sent_twice(
    api: httpx.AsyncClient,
    tenant: Tenant,
    bot: FakeBot,
    polled: dict[str, Any],
    replier: Any,
    telegram_chat: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    chat, zoe = telegram_chat
    _, _, conversation = await _asked(api, tenant, bot, polled, chat, zoe, "hi")
    bot.inject("sendMessage", fault="truncated_json")
    unknown = await settled(api, tenant, await reply(api, tenant, conversation["id"], "maybe"))
    assert unknown["delivery"]["status"] == "unknown"
    assert unknown["delivery"]["error"].startswith("delivery_unknown:")
    assert [s.message["text"] for s in bot.sent_to(chat["id"])] == ["maybe"]  # it did go
    assert len(bot.calls("sendMessage")) == 1


async def test_a_sender_that_died_mid_send_reports_unknown_instead_of_sending_again(
    api: httpx.AsyncClient,
    tenant: Tenant,
    bot: FakeBot,
    polled: dict[str, Any],
    reply_settings: ReplySettings,
    telegram_chat: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    from services.reply.app import worker_component
    from shared.http import build_app
    from tests.support import serving

    chat, zoe = telegram_chat
    _, _, conversation = await _asked(api, tenant, bot, polled, chat, zoe, "hi")
    message_id = await reply(api, tenant, conversation["id"], "in flight")
    # What a sender leaves behind when it stops between marking the send and recording the answer.
    bus = await Bus.from_settings(reply_settings, name="test")
    try:
        attempts = await bus.key_value(SEND_ATTEMPTS_BUCKET.name)
        await attempts.put(f"reply.{message_id}", b"sending")
    finally:
        await bus.close()
    async with serving(build_app("reply-service", [worker_component(reply_settings)])):
        unknown = await settled(api, tenant, message_id)
    assert unknown["delivery"]["status"] == "unknown"
    assert "check the chat" in unknown["delivery"]["error"]
    assert bot.calls("sendMessage") == []


async def test_replies_through_the_api_are_checked_first(
    api: httpx.AsyncClient,
    engine: Any,
    tenant: Tenant,
    bot: FakeBot,
    polled: dict[str, Any],
    telegram_chat: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    from services.inbox.service.access import Role
    from tests.support import add_token, make_channel, message_event, send_events

    chat, zoe = telegram_chat
    _, stored, conversation = await _asked(api, tenant, bot, polled, chat, zoe, "hi")
    path = f"/v1/conversations/{conversation['id']}/messages"

    viewer = {"Authorization": f"Bearer {await add_token(engine, tenant.workspace_id, Role.VIEWER)}"}
    refused = await api.post(path, json={"text": "hi"}, headers=viewer)
    assert refused.status_code == 403

    for body, field in [
        ({"text": ""}, "text"),
        ({"text": "x" * 32769}, "text"),
        ({"text": "a\x00b"}, "text"),
        ({"text": "hi", "colour": "red"}, "colour"),
        ({}, "text"),
    ]:
        bad = await api.post(path, json=body, headers=tenant.auth)
        assert bad.status_code == 400, body
        assert bad.headers["content-type"] == "application/problem+json"
        assert field in bad.text

    missing = await api.post(
        "/v1/conversations/00000000-0000-0000-0000-000000000000/messages",
        json={"text": "hi"},
        headers=tenant.auth,
    )
    assert missing.status_code == 404

    elsewhere = factory.user("Other")
    _, other, _ = await _asked(api, tenant, bot, polled, bot.add_private_chat(elsewhere), elsewhere, "yo")
    cross = await post_reply(api, tenant, conversation["id"], "hi", reply_to=other["id"])
    assert cross.status_code == 404

    pending = await reply(api, tenant, conversation["id"], "queued, no reply service running")
    to_pending = await post_reply(api, tenant, conversation["id"], "re", reply_to=pending)
    assert to_pending.status_code == 400

    source = await make_channel(api, tenant, "forms")
    assert (await send_events(api, source, message_event(thread="t-1"))).status_code == 202
    webhook_conversation = await conversation_of(api, tenant, source.id, "t-1")
    refused = await post_reply(api, tenant, webhook_conversation["id"], "hi")
    assert refused.status_code == 409
    assert refused.json()["code"] == "replies_not_supported"
    assert stored["delivery"] is None  # inbound messages have no delivery state


async def test_an_idempotency_key_sends_once(
    api: httpx.AsyncClient,
    tenant: Tenant,
    bot: FakeBot,
    polled: dict[str, Any],
    replier: Any,
    telegram_chat: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    chat, zoe = telegram_chat
    _, _, conversation = await _asked(api, tenant, bot, polled, chat, zoe, "hi")
    first = await post_reply(api, tenant, conversation["id"], "once", key="k-1")
    again = await post_reply(api, tenant, conversation["id"], "once", key="k-1")
    assert first.status_code == again.status_code == 202
    assert first.json() == again.json()
    await settled(api, tenant, first.json()["id"])
    reused = await post_reply(api, tenant, conversation["id"], "something else", key="k-1")
    assert reused.status_code == 409
    assert reused.json()["code"] == "idempotency_key_reused"
    other = await post_reply(api, tenant, conversation["id"], "once", key="k-2")
    assert other.status_code == 202
    await settled(api, tenant, other.json()["id"])
    assert [s.message["text"] for s in bot.sent_to(chat["id"])] == ["once", "once"]
    messages = await messages_of(api, tenant, polled["id"], str(chat["id"]), 3)
    assert [m["text"] for m in messages] == ["hi", "once", "once"]


# -- moderation -------------------------------------------------------------------------------------


async def test_deleting_a_message_on_telegram(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot, polled: dict[str, Any], replier: Any
) -> None:
    spammer = factory.user("Spam Bot 3000")
    group = bot.add_group("Customers", members=[spammer])
    spam, stored, conversation = await _asked(api, tenant, bot, polled, group, spammer, "cheap pills")
    response = await api.post(f"/v1/messages/{stored['id']}/delete", headers=tenant.auth)
    assert response.status_code == 202, response.text
    requested = response.json()
    assert (requested["action"], requested["status"], requested["target_type"]) == (
        "delete_message",
        "requested",
        "message",
    )
    entry = await audited(api, tenant, requested["id"])
    assert entry["status"] == "applied"
    assert bot.deleted == [(group["id"], spam["message_id"])]

    async def gone() -> dict[str, Any] | None:
        body = (await api.get(f"/v1/messages/{stored['id']}", headers=tenant.auth)).json()
        return body if body["deleted_at"] else None

    await wait_for(gone)
    assert await conversation_messages(api, tenant, polled["id"], str(group["id"])) == []
    shown = (await api.get(f"/v1/conversations/{stored['conversation_id']}", headers=tenant.auth)).json()
    assert shown["last_message_preview"] is None, "its only message is gone"
    again = await api.post(f"/v1/messages/{stored['id']}/delete", headers=tenant.auth)
    assert again.status_code == 409
    assert conversation["id"] == stored["conversation_id"]


async def test_a_delete_telegram_refuses_is_recorded_as_failed(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot, polled: dict[str, Any], replier: Any
) -> None:
    ana = factory.user("Ana")
    group = bot.add_group("Not our group", members=[ana], bot_is_admin=False)
    _, stored, _ = await _asked(api, tenant, bot, polled, group, ana, "my message")
    response = await api.post(f"/v1/messages/{stored['id']}/delete", headers=tenant.auth)
    entry = await audited(api, tenant, response.json()["id"])
    assert entry["status"] == "failed"
    assert entry["detail"]["reason"] == "Bad Request: message can't be deleted"
    assert bot.deleted == []
    still = (await api.get(f"/v1/messages/{stored['id']}", headers=tenant.auth)).json()
    assert still["deleted_at"] is None


async def test_banning_and_unbanning_an_author(
    api: httpx.AsyncClient, engine: Any, tenant: Tenant, bot: FakeBot, polled: dict[str, Any], replier: Any
) -> None:
    from services.inbox.service.access import Role
    from tests.support import add_token

    troll = factory.user("Troll")
    group = bot.add_group("Customers", members=[troll])
    _, stored, conversation = await _asked(api, tenant, bot, polled, group, troll, "you all stink")
    identity = stored["author"]["identity_id"]
    bans = f"/v1/conversations/{conversation['id']}/bans"

    viewer = {"Authorization": f"Bearer {await add_token(engine, tenant.workspace_id, Role.VIEWER)}"}
    assert (await api.post(bans, json={"identity_id": identity}, headers=viewer)).status_code == 403

    banned = await api.post(bans, json={"identity_id": identity}, headers=tenant.auth)
    assert banned.status_code == 202, banned.text
    assert (await audited(api, tenant, banned.json()["id"]))["status"] == "applied"
    [ban] = bot.bans
    assert (ban.chat_id, ban.user_id) == (group["id"], troll["id"])

    lifted = await api.delete(f"{bans}/{identity}", headers=tenant.auth)
    assert lifted.status_code == 202
    entry = await audited(api, tenant, lifted.json()["id"])
    assert (entry["action"], entry["status"], entry["target_id"]) == ("unban", "applied", identity)
    [unban] = bot.unbans
    assert (unban.chat_id, unban.user_id, unban.only_if_banned) == (group["id"], troll["id"], True)

    log = (await api.get("/v1/audit", headers=tenant.auth)).json()["data"]
    assert [e["action"] for e in log[:2]] == ["unban", "ban"]  # newest first
    assert (await api.get("/v1/audit", headers=viewer)).status_code == 403


async def test_bans_only_apply_to_groups_and_known_authors(
    api: httpx.AsyncClient,
    tenant: Tenant,
    bot: FakeBot,
    polled: dict[str, Any],
    telegram_chat: tuple[dict[str, Any], dict[str, Any]],
) -> None:
    chat, zoe = telegram_chat
    _, stored, conversation = await _asked(api, tenant, bot, polled, chat, zoe, "hi")
    bans = f"/v1/conversations/{conversation['id']}/bans"
    private = await api.post(bans, json={"identity_id": stored["author"]["identity_id"]}, headers=tenant.auth)
    assert private.status_code == 400
    assert private.json()["code"] == "not_a_group"
    unknown = await api.post(
        bans, json={"identity_id": "00000000-0000-0000-0000-000000000000"}, headers=tenant.auth
    )
    assert unknown.status_code == 404
    assert (await api.post(bans, json={"identity": "x"}, headers=tenant.auth)).status_code == 400


async def test_a_banned_bot_cannot_ban_records_the_reason(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot, polled: dict[str, Any], replier: Any
) -> None:
    troll = factory.user("Troll")
    group = bot.add_group("Customers", members=[troll])
    _, stored, conversation = await _asked(api, tenant, bot, polled, group, troll, "hi")
    bot.set_bot_admin(group["id"], admin=False)
    response = await api.post(
        f"/v1/conversations/{conversation['id']}/bans",
        json={"identity_id": stored["author"]["identity_id"]},
        headers=tenant.auth,
    )
    entry = await audited(api, tenant, response.json()["id"])
    assert entry["status"] == "failed"
    assert "not enough rights" in entry["detail"]["reason"]
    assert bot.bans == []
