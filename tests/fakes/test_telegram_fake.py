"""The fake Telegram Bot API behaves like the real one over real HTTP (platforms.md §1 and §7)."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest
from aiohttp import web

from tests.fakes.telegram import FakeBot, FakeTelegram, RateLimits, factory
from tests.fakes.telegram.demo import run_scenario

pytestmark = pytest.mark.unit

Json = dict[str, Any]


@pytest.fixture
async def fake() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(webhook_backoff=0.05) as server:
        yield server


@pytest.fixture
def bot(fake: FakeTelegram) -> FakeBot:
    return fake.add_bot("123456:TEST-TOKEN", username="inbox_bot")


@pytest.fixture
async def api(fake: FakeTelegram, bot: FakeBot) -> AsyncIterator[httpx.AsyncClient]:
    async with httpx.AsyncClient(base_url=f"{fake.base_url}/bot{bot.token}/", timeout=15) as client:
        yield client


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    hook = Receiver()
    await hook.start()
    yield hook
    await hook.stop()


class Receiver:
    """A local webhook endpoint answering the statuses it is told to, in order, then 200."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, dict[str, str]]] = []
        self.received: list[tuple[float, dict[str, str], Json]] = []
        self.url = ""
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/hook", self._hook)
        self._runner = web.AppRunner(app, access_log=None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}/hook"

    async def stop(self) -> None:
        assert self._runner is not None
        await self._runner.cleanup()

    async def _hook(self, request: web.Request) -> web.Response:
        self.received.append((time.monotonic(), dict(request.headers), await request.json()))
        status, headers = self.answers.pop(0) if self.answers else (200, {})
        return web.Response(status=status, headers=headers, text="")

    def update_ids(self) -> list[int]:
        return [update["update_id"] for _, _, update in self.received]


async def call(api: httpx.AsyncClient, method: str, **params: Any) -> httpx.Response:
    return await api.post(method, json=params)


def ok(response: httpx.Response) -> Any:
    body = response.json()
    assert response.status_code == 200, body
    assert body["ok"] is True
    return body["result"]


def error(response: httpx.Response, status: int) -> Json:
    body: Json = response.json()
    assert response.status_code == status, body
    assert body["ok"] is False
    assert body["error_code"] == status
    return body


def private(bot: FakeBot, name: str = "Zoë") -> tuple[Json, Json]:
    person = factory.user(name)
    return bot.add_private_chat(person), person


def pushed(bot: FakeBot, message: Json) -> int:
    """Push a message update the bot accepts; its update_id."""
    update_id = bot.push_message(message)
    assert update_id is not None
    return update_id


# -- transport ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("encoding", ["query", "form", "json", "multipart"])
async def test_parameters_arrive_in_all_four_encodings(
    api: httpx.AsyncClient, bot: FakeBot, encoding: str
) -> None:
    chat, zoe = private(bot)
    question = factory.message(chat, zoe, text="is #88 shipped?")
    bot.push_message(question)
    params: dict[str, Any] = {
        "chat_id": chat["id"],
        "text": "Yes — today ✅",
        "reply_parameters": {"message_id": question["message_id"]},
        "entities": [{"type": "bold", "offset": 0, "length": 3}],
    }
    as_strings = {
        key: value if isinstance(value, str) else json.dumps(value) for key, value in params.items()
    }
    if encoding == "query":
        response = await api.get("sendMessage", params=as_strings)
    elif encoding == "form":
        response = await api.post("sendMessage", data=as_strings)
    elif encoding == "json":
        response = await api.post("sendMessage", json=params)
    else:
        response = await api.post(
            "sendMessage", data=as_strings, files={"thumbnail": ("a.txt", b"x", "text/plain")}
        )

    sent = ok(response)
    if encoding == "multipart":
        assert bot.requests[-1].files["thumbnail"].data == b"x"
    assert sent["text"] == "Yes — today ✅"
    assert sent["reply_to_message"]["message_id"] == question["message_id"]
    assert sent["entities"] == params["entities"]
    assert bot.requests[-1].content_type.startswith(
        {
            "query": "application/octet-stream",
            "form": "application/x-www-form",
            "json": "application/json",
        }.get(encoding, "multipart/form-data")
    )


async def test_method_names_are_case_insensitive(api: httpx.AsyncClient, bot: FakeBot) -> None:
    for name in ("getMe", "getme", "GETME", "GetMe"):
        me = ok(await api.get(name))
        assert me["id"] == bot.id
        assert me["is_bot"] is True
        assert me["username"] == "inbox_bot"
    assert [request.method for request in bot.requests] == ["getMe"] * 4


async def test_bad_tokens_and_unknown_methods(
    fake: FakeTelegram, bot: FakeBot, api: httpx.AsyncClient
) -> None:
    async with httpx.AsyncClient(base_url=fake.base_url) as raw:
        unauthorized = error(await raw.get("/bot999:NOPE/getMe"), 401)
        assert unauthorized == {"ok": False, "error_code": 401, "description": "Unauthorized"}
        assert error(await raw.get("/botnot-a-token/getMe"), 404)["description"] == "Not Found"
    assert error(await api.post("sendTelepathy"), 404) == {
        "ok": False,
        "error_code": 404,
        "description": "Not Found",
    }

    bot.revoke_token()
    error(await api.post("getMe"), 401)
    bot.revoke_token(False)
    ok(await api.post("getMe"))


# -- getUpdates ----------------------------------------------------------------------------------------


def push_texts(bot: FakeBot, count: int) -> list[int]:
    chat, zoe = private(bot)
    return [pushed(bot, factory.message(chat, zoe, text=f"message {n}")) for n in range(count)]


async def test_offset_confirms_and_negative_offset_trims(api: httpx.AsyncClient, bot: FakeBot) -> None:
    ids = push_texts(bot, 3)
    assert ids == list(range(ids[0], ids[0] + 3))  # sequential
    assert [u["update_id"] for u in ok(await call(api, "getUpdates"))] == ids
    assert [u["update_id"] for u in ok(await call(api, "getUpdates", offset=ids[1]))] == ids[1:]
    assert ok(await call(api, "getUpdates", offset=ids[2] + 1)) == []
    assert bot.pending_updates == []

    more = push_texts(bot, 3)
    assert [u["update_id"] for u in ok(await call(api, "getUpdates", offset=-1))] == more[-1:]
    assert [u["update_id"] for u in bot.pending_updates] == more[-1:]  # the earlier ones are forgotten


async def test_limit_is_clamped(api: httpx.AsyncClient, bot: FakeBot) -> None:
    push_texts(bot, 3)
    assert len(ok(await call(api, "getUpdates", limit=0))) == 1
    assert len(ok(await call(api, "getUpdates", limit=2))) == 2
    assert len(ok(await call(api, "getUpdates", limit=1000))) == 3


async def test_long_poll_answers_when_an_update_arrives(api: httpx.AsyncClient, bot: FakeBot) -> None:
    poll = asyncio.create_task(call(api, "getUpdates", timeout=30))
    await bot.wait_for(lambda: bot.calls("getUpdates"))
    started = time.monotonic()
    [update_id] = push_texts(bot, 1)
    result = ok(await poll)
    assert [u["update_id"] for u in result] == [update_id]
    assert time.monotonic() - started < 2


async def test_long_poll_times_out_with_an_empty_result(api: httpx.AsyncClient) -> None:
    started = time.monotonic()
    assert ok(await call(api, "getUpdates", timeout=1)) == []
    assert time.monotonic() - started >= 0.9


async def test_a_second_poller_ends_the_first_with_409(api: httpx.AsyncClient, bot: FakeBot) -> None:
    first = asyncio.create_task(call(api, "getUpdates", timeout=30))
    await bot.wait_for(lambda: len(bot.calls("getUpdates")) == 1)
    second = asyncio.create_task(call(api, "getUpdates", timeout=30))
    assert error(await first, 409)["description"] == (
        "Conflict: terminated by other getUpdates request; make sure that only one bot instance is running"
    )
    push_texts(bot, 1)
    assert len(ok(await second)) == 1


async def test_allowed_updates_is_sticky_and_filters_new_updates(
    api: httpx.AsyncClient, bot: FakeBot
) -> None:
    chat, zoe = private(bot)
    reaction = factory.message_reaction(chat, 1, zoe)
    assert bot.push_update({"message_reaction": reaction}) is None  # not wanted by default

    ok(await api.post("getUpdates", data={"allowed_updates": '["message_reaction"]'}))
    assert bot.allowed_updates == ["message_reaction"]
    assert bot.push_update({"message_reaction": reaction}) is not None
    assert bot.push_message(factory.message(chat, zoe, text="hi")) is None

    ok(await call(api, "getUpdates"))  # omitted: the setting stays
    assert bot.allowed_updates == ["message_reaction"]
    ok(await call(api, "getUpdates", allowed_updates=[]))  # [] restores the default
    assert bot.allowed_updates is None
    assert bot.push_message(factory.message(chat, zoe, text="hi")) is not None


# -- webhooks --------------------------------------------------------------------------------------------


async def test_webhook_delivers_with_the_secret_and_retries_failures(
    api: httpx.AsyncClient, bot: FakeBot, receiver: Receiver
) -> None:
    receiver.answers = [(500, {}), (500, {})]
    ok(await call(api, "setWebhook", url=receiver.url, secret_token="s3cr3t_TOKEN-01"))
    error_409 = error(await call(api, "getUpdates"), 409)
    assert error_409["description"].startswith(
        "Conflict: can't use getUpdates method while webhook is active"
    )

    chat, zoe = private(bot)
    ids = [pushed(bot, factory.message(chat, zoe, text=f"n{n}")) for n in range(3)]
    await bot.wait_for(lambda: len(receiver.received) == 5)

    assert receiver.update_ids() == [ids[0], ids[0], ids[0], ids[1], ids[2]]  # one chat: strictly in order
    assert all(
        headers["X-Telegram-Bot-Api-Secret-Token"] == "s3cr3t_TOKEN-01" for _, headers, _ in receiver.received
    )
    assert all(headers["Content-Type"] == "application/json" for _, headers, _ in receiver.received)
    first, second, third = (at for at, _, _ in receiver.received[:3])
    assert third - second >= 0.09  # 2 backoff units (0.05 s here) before the second retry...
    assert second - first < third - second  # ...but none before the first
    assert [attempt.status for attempt in bot.deliveries] == [500, 500, 200, 200, 200]

    info = ok(await call(api, "getWebhookInfo"))
    assert info["url"] == receiver.url
    assert info["pending_update_count"] == 0
    assert info["last_error_message"] == "Wrong response from the webhook: 500 Internal Server Error"
    assert isinstance(info["last_error_date"], int)

    assert ok(await call(api, "deleteWebhook")) is True
    assert ok(await call(api, "getUpdates")) == []


async def test_webhook_honours_retry_after(api: httpx.AsyncClient, bot: FakeBot, receiver: Receiver) -> None:
    receiver.answers = [(429, {"Retry-After": "0.4"})]
    ok(await call(api, "setWebhook", url=receiver.url))
    push_texts(bot, 1)
    await bot.wait_for(lambda: len(receiver.received) == 2)
    (first, headers, _), (second, _, _) = receiver.received
    assert second - first >= 0.35
    assert "X-Telegram-Bot-Api-Secret-Token" not in headers


async def test_webhook_keeps_order_per_chat_while_other_chats_proceed(
    api: httpx.AsyncClient, bot: FakeBot, receiver: Receiver
) -> None:
    receiver.answers = [(503, {"Retry-After": "0.3"})]  # the first update of chat A is held back
    ok(await call(api, "setWebhook", url=receiver.url))
    (a_chat, a_user), (b_chat, b_user) = private(bot, "A"), private(bot, "B")
    a1 = pushed(bot, factory.message(a_chat, a_user, text="a1"))
    a2 = pushed(bot, factory.message(a_chat, a_user, text="a2"))
    b1 = pushed(bot, factory.message(b_chat, b_user, text="b1"))
    await bot.wait_for(lambda: len(receiver.received) == 4)
    delivered = receiver.update_ids()
    assert delivered.index(b1) < delivered.index(a2)  # B did not wait for A
    assert [i for i in delivered if i in (a1, a2)] == [a1, a1, a2]


async def test_set_webhook_validates_the_secret_token(api: httpx.AsyncClient) -> None:
    for bad in ("a+b", "a b", "секрет"):
        assert error(await call(api, "setWebhook", url="https://example.com/h", secret_token=bad), 400)[
            "description"
        ] == ("Bad Request: secret token contains unallowed characters")
    error(await call(api, "setWebhook", url="https://example.com/h", secret_token="a" * 257), 400)
    ok(await call(api, "setWebhook", url="https://example.com/h", secret_token="a" * 256))
    ok(await call(api, "deleteWebhook"))


# -- sending --------------------------------------------------------------------------------------------


async def test_send_message_in_a_forum_topic_returns_the_full_message(
    api: httpx.AsyncClient, bot: FakeBot
) -> None:
    ravi = factory.user("Ravi")
    forum = bot.add_group("Support", forum=True, members=[ravi])
    topic = bot.add_forum_topic(forum["id"], "Shipping")
    asked = factory.message(forum, ravi, media=factory.photo(), caption="here 📦", thread_id=topic)
    bot.push_message(asked)

    sent = ok(
        await call(
            api,
            "sendMessage",
            chat_id=forum["id"],
            text="Thanks Ravi — label received ✅",
            reply_parameters={"message_id": asked["message_id"]},
        )
    )
    assert sent["message_id"] == asked["message_id"] + 1
    assert sent["from"] == bot.user
    assert sent["chat"] == forum
    assert sent["message_thread_id"] == topic
    assert sent["is_topic_message"] is True
    assert sent["reply_to_message"]["message_id"] == asked["message_id"]
    assert "reply_to_message" not in sent["reply_to_message"]  # never nested
    assert isinstance(sent["date"], int)
    [record] = bot.sent
    assert (record.chat_id, record.message_thread_id, record.text) == (forum["id"], topic, sent["text"])


async def test_send_message_errors(api: httpx.AsyncClient, bot: FakeBot) -> None:
    chat, zoe = private(bot)
    forum = bot.add_group("Forum", forum=True)
    group = bot.add_group("Team", supergroup=True)

    async def failure(status: int, **params: Any) -> str:
        return str(error(await call(api, "sendMessage", **params), status)["description"])

    assert await failure(400, chat_id=-100999, text="hi") == "Bad Request: chat not found"
    assert await failure(400, chat_id=chat["id"], text="  ") == "Bad Request: message text is empty"
    assert await failure(400, chat_id=chat["id"], text="😀" * 2049) == "Bad Request: message is too long"
    ok(await call(api, "sendMessage", chat_id=chat["id"], text="😀" * 2048))  # 4096 UTF-16 units
    assert await failure(400, chat_id=forum["id"], text="hi", message_thread_id=77) == (
        "Bad Request: message thread not found"
    )
    gone = {"message_id": 424242}
    assert await failure(400, chat_id=chat["id"], text="hi", reply_parameters=gone) == (
        "Bad Request: message to be replied not found"
    )
    ok(
        await call(
            api,
            "sendMessage",
            chat_id=chat["id"],
            text="hi",
            reply_parameters=gone | {"allow_sending_without_reply": True},
        )
    )
    bot.block(zoe["id"])
    assert await failure(403, chat_id=chat["id"], text="hi") == "Forbidden: bot was blocked by the user"
    bot.kick_bot(group["id"])
    assert (
        await failure(403, chat_id=group["id"], text="hi")
        == "Forbidden: bot was kicked from the supergroup chat"
    )


async def test_rate_limits_answer_429_and_are_measurable(fake: FakeTelegram) -> None:
    limits = RateLimits(per_chat_per_second=1.0, per_chat_burst=2, global_per_second=30.0, global_burst=3)
    bot = fake.add_bot(rate_limits=limits)
    chats = [private(bot, name)[0] for name in ("A", "B")]
    async with httpx.AsyncClient(base_url=f"{fake.base_url}/bot{bot.token}/") as api:
        ok(await call(api, "sendMessage", chat_id=chats[0]["id"], text="1"))
        ok(await call(api, "sendMessage", chat_id=chats[0]["id"], text="2"))
        throttled = error(await call(api, "sendMessage", chat_id=chats[0]["id"], text="3"), 429)
        assert throttled == {
            "ok": False,
            "error_code": 429,
            "description": "Too Many Requests: retry after 1",
            "parameters": {"retry_after": 1},
        }
        ok(await call(api, "sendMessage", chat_id=chats[1]["id"], text="4"))  # another chat has budget...
        error(await call(api, "sendMessage", chat_id=chats[1]["id"], text="5"), 429)  # ...but the bot has not

    assert len(bot.sent) == 3
    assert len(bot.throttled) == 2
    assert bot.max_rate(1.0, chat_id=chats[0]["id"]) == 3
    assert bot.max_rate(1.0) == 5


# -- moderation, files, reading ---------------------------------------------------------------------------


async def test_delete_ban_and_unban(api: httpx.AsyncClient, bot: FakeBot) -> None:
    ana, kim = factory.user("Ana"), factory.user("Kim")
    group = bot.add_group("Team", bot_is_admin=False, admins=[ana], members=[kim])
    said = factory.message(group, kim, text="spam")
    bot.push_message(said)
    target = {"chat_id": group["id"], "message_id": said["message_id"]}

    assert (
        error(await call(api, "deleteMessage", **target), 400)["description"]
        == "Bad Request: message can't be deleted"
    )
    assert error(await call(api, "banChatMember", chat_id=group["id"], user_id=kim["id"]), 400)[
        "description"
    ] == ("Bad Request: not enough rights to restrict/ban chat member")
    bot.set_bot_admin(group["id"])
    assert ok(await call(api, "deleteMessage", **target)) is True
    assert error(await call(api, "deleteMessage", **target), 400)["description"] == (
        "Bad Request: message to delete not found"
    )
    assert bot.deleted == [(group["id"], said["message_id"])]
    assert error(await call(api, "banChatMember", chat_id=group["id"], user_id=ana["id"]), 400)[
        "description"
    ] == ("Bad Request: user is an administrator of the chat")
    assert ok(await call(api, "banChatMember", chat_id=group["id"], user_id=kim["id"], revoke_messages=True))
    [ban] = bot.bans
    assert (ban.chat_id, ban.user_id, ban.revoke_messages, ban.permanent) == (
        group["id"],
        kim["id"],
        True,
        True,
    )
    member = ok(await call(api, "getChatMember", chat_id=group["id"], user_id=kim["id"]))
    assert member["status"] == "kicked"
    assert ok(await call(api, "unbanChatMember", chat_id=group["id"], user_id=kim["id"], only_if_banned=True))
    assert ok(await call(api, "getChatMember", chat_id=group["id"], user_id=kim["id"]))["status"] == "left"
    assert ok(await call(api, "deleteMessages", chat_id=group["id"], message_ids=[1, 2])) is True


async def test_get_file_and_download(fake: FakeTelegram, api: httpx.AsyncClient, bot: FakeBot) -> None:
    file_id = bot.add_file(b"\x89PNG fake bytes", path_hint="photos/label.jpg")
    info = ok(await api.post("getFile", data={"file_id": file_id}))
    assert info == {**bot.file_ref(file_id), "file_path": info["file_path"]}
    assert info["file_path"].startswith("photos/")
    assert info["file_path"].endswith(".jpg")
    async with httpx.AsyncClient(base_url=fake.base_url) as raw:
        download = await raw.get(f"/file/bot{bot.token}/{info['file_path']}")
        assert download.status_code == 200
        assert download.content == b"\x89PNG fake bytes"
        error(await raw.get(f"/file/bot{bot.token}/photos/missing.jpg"), 404)
    assert (
        error(await api.post("getFile", data={"file_id": "nope"}), 400)["description"]
        == "Bad Request: invalid file_id"
    )


async def test_get_chat_get_chat_member_and_callback_answers(api: httpx.AsyncClient, bot: FakeBot) -> None:
    discussion = bot.add_group("News chat")
    channel = bot.add_channel("News", username="shop_news", discussion_group=discussion)
    info = ok(await call(api, "getChat", chat_id="@shop_news"))
    assert info["id"] == channel["id"]
    assert info["type"] == "channel"
    assert info["linked_chat_id"] == discussion["id"]
    me = ok(await call(api, "getChatMember", chat_id=channel["id"], user_id=bot.id))
    assert me["status"] == "administrator"
    assert me["user"] == bot.user
    assert ok(await call(api, "answerCallbackQuery", callback_query_id="4382bfdwdsb323b2d9")) is True


# -- injected failures and migration ----------------------------------------------------------------------


async def test_injected_failures(api: httpx.AsyncClient, bot: FakeBot) -> None:
    chat, _ = private(bot)
    send = {"chat_id": chat["id"], "text": "hi"}

    bot.inject("sendMessage", retry_after=7, times=2)
    for _ in range(2):
        assert error(await call(api, "sendMessage", **send), 429)["parameters"] == {"retry_after": 7}
    ok(await call(api, "sendMessage", **send))

    bot.inject("*", status=500)
    assert error(await call(api, "getMe"), 500)["description"] == "Internal Server Error: restart"

    bot.inject("getMe", delay=0.3)
    started = time.monotonic()
    ok(await call(api, "getMe"))
    assert time.monotonic() - started >= 0.3

    bot.inject("sendMessage", fault="truncated_json")
    truncated = await call(api, "sendMessage", **send)
    with pytest.raises(json.JSONDecodeError):
        truncated.json()
    assert len(bot.sent) == 2  # the call ran: the client cannot know

    bot.inject("getMe", fault="bad_gateway")
    gateway = await call(api, "getMe")
    assert gateway.status_code == 502
    assert gateway.headers["content-type"].startswith("text/html")

    bot.inject("getMe", fault="drop")
    with pytest.raises(httpx.RemoteProtocolError):
        await call(api, "getMe")
    ok(await call(api, "getMe"))


async def test_group_migration(api: httpx.AsyncClient, bot: FakeBot) -> None:
    kim = factory.user("Kim")
    old = bot.add_group("Family shop", supergroup=False, members=[kim])
    new_id = bot.migrate_to_supergroup(old["id"], actor=kim)
    assert str(new_id).startswith("-100")

    refused = error(await call(api, "sendMessage", chat_id=old["id"], text="hi"), 400)
    assert refused["description"] == "Bad Request: group chat was upgraded to a supergroup chat"
    assert refused["parameters"] == {"migrate_to_chat_id": new_id}
    assert ok(await call(api, "sendMessage", chat_id=new_id, text="hi"))["chat"]["type"] == "supergroup"

    service = [u["message"] for u in ok(await call(api, "getUpdates"))]
    assert [
        (m["chat"]["id"], m.get("migrate_to_chat_id"), m.get("migrate_from_chat_id")) for m in service
    ] == [
        (old["id"], new_id, None),
        (new_id, None, old["id"]),
    ]


# -- the demo ------------------------------------------------------------------------------------------------


async def test_demo_scenario_is_lively(fake: FakeTelegram, bot: FakeBot) -> None:
    ok_kinds = ["message", "edited_message", "channel_post", "message_reaction"]
    bot.updates.set_allowed(ok_kinds)
    scenario = asyncio.create_task(run_scenario(fake, bot, pace=0.0))
    await bot.wait_for(lambda: len(bot.pending_updates) > 60)
    scenario.cancel()
    with pytest.raises(asyncio.CancelledError):
        await scenario

    updates = bot.pending_updates
    assert {kind for update in updates for kind in update if kind != "update_id"} == set(ok_kinds)
    messages = [u["message"] for u in updates if "message" in u]
    assert any("photo" in m for m in messages)
    assert any("reply_to_message" in m and m["chat"]["type"] == "supergroup" for m in messages)
    assert any(m.get("is_topic_message") for m in messages)
    assert any(m.get("is_automatic_forward") for m in messages)
    assert any("new_chat_members" in m for m in messages)
    assert any("left_chat_member" in m for m in messages)
    assert len({m["chat"]["id"] for m in messages if m["chat"]["type"] == "private"}) == 3
    texts = [m.get("text") for m in messages if m["chat"]["type"] == "private"]
    assert len(set(texts)) > 3  # fresh content every round


async def test_business_messages_can_be_answered_on_behalf_of_the_owner(
    api: httpx.AsyncClient, bot: FakeBot
) -> None:
    owner, customer = factory.user("Shop"), factory.user("Kim")
    connection = bot.add_business_connection(owner)
    chat = factory.private_chat(customer)
    incoming = factory.message(chat, customer, media=factory.voice(), business_connection_id=connection)
    pushed_id = bot.push_message(incoming, kind="business_message")

    reply = {"message_id": incoming["message_id"]}
    sent = ok(
        await call(
            api,
            "sendMessage",
            business_connection_id=connection,
            chat_id=chat["id"],
            text="On it",
            reply_parameters=reply,
        )
    )
    assert sent["business_connection_id"] == connection
    assert sent["from"] == owner
    assert sent["sender_business_bot"] == bot.user
    assert sent["reply_to_message"]["voice"] == incoming["voice"]
    unknown = await call(api, "sendMessage", business_connection_id="bc_nope", chat_id=chat["id"], text="x")
    assert error(unknown, 400)["description"] == "Bad Request: business connection not found"

    deleted = factory.deleted_business_messages(connection, chat, [incoming["message_id"]])
    assert bot.push_update({"deleted_business_messages": deleted}) == (pushed_id or 0) + 1


async def test_a_restart_keeps_the_url_the_queue_and_the_webhook(
    fake: FakeTelegram, bot: FakeBot, api: httpx.AsyncClient, receiver: Receiver
) -> None:
    push_texts(bot, 1)
    url = fake.base_url
    await fake.stop()
    with pytest.raises(httpx.ConnectError):
        await call(api, "getMe")
    await fake.start()
    assert fake.base_url == url
    assert len(ok(await call(api, "getUpdates"))) == 1

    ok(await call(api, "setWebhook", url=receiver.url))
    await fake.stop()
    push_texts(bot, 1)
    await fake.start()
    await bot.wait_for(lambda: len(receiver.received) == 2)  # the unconfirmed one and the new one
