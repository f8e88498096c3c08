"""The polling connector under stress: restarts, replicas, rate limits and every error Telegram gives."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import httpx
import pytest

from services.telegram.app import worker_component
from services.telegram.config import TelegramSettings
from shared.http import build_app
from tests.fakes.telegram import FakeBot, factory
from tests.services.telegram.conftest import connect_bot
from tests.support import Tenant, conversation_messages, serving, wait_for

pytestmark = pytest.mark.e2e


async def _texts(
    api: httpx.AsyncClient, tenant: Tenant, channel_id: str, thread: str, count: int
) -> list[str]:
    async def enough() -> list[str] | None:
        messages = await conversation_messages(api, tenant, channel_id, thread)
        return [m["text"] for m in messages] if len(messages) >= count else None

    return await wait_for(enough, timeout=20)


async def _health(api: httpx.AsyncClient, tenant: Tenant, channel_id: str) -> dict[str, Any]:
    response = await api.get(f"/v1/channels/{channel_id}", headers=tenant.auth)
    health: dict[str, Any] = response.json()["health"]
    return health


def _connector(settings: TelegramSettings) -> Any:
    return build_app("telegram-connector", [worker_component(settings)])


async def test_a_restart_mid_stream_loses_and_repeats_nothing(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot, connector_settings: TelegramSettings
) -> None:
    channel = await connect_bot(api, tenant, bot)
    zoe = factory.user("Zoë")
    chat = bot.add_private_chat(zoe)
    async with serving(_connector(connector_settings)):
        for n in range(30):
            bot.push_message(factory.message(chat, zoe, text=f"m{n:02}"))
        await _texts(api, tenant, channel["id"], str(chat["id"]), 10)
    # Stopped; more arrives meanwhile, then a fresh connector picks up from the stored offset.
    for n in range(30, 60):
        bot.push_message(factory.message(chat, zoe, text=f"m{n:02}"))
    async with serving(_connector(connector_settings)):
        texts = await _texts(api, tenant, channel["id"], str(chat["id"]), 60)
        await asyncio.sleep(0.5)
        texts = [m["text"] for m in await conversation_messages(api, tenant, channel["id"], str(chat["id"]))]
    assert texts == [f"m{n:02}" for n in range(60)]


async def test_two_replicas_poll_each_bot_once(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot, connector_settings: TelegramSettings
) -> None:
    channel = await connect_bot(api, tenant, bot)
    conflicts: list[str] = []
    terminate = bot.updates.terminate_poll

    def spy(description: str) -> None:  # a second long poll ending a first one is a 409 for the first
        if bot.updates._poll is not None:
            conflicts.append(description)
        terminate(description)

    bot.updates.terminate_poll = spy  # type: ignore[method-assign]
    zoe = factory.user("Zoë")
    chat = bot.add_private_chat(zoe)
    first, second = _connector(connector_settings), _connector(connector_settings)
    async with contextlib.AsyncExitStack() as stack:
        replicas = {id(first): stack, id(second): contextlib.AsyncExitStack()}
        await stack.enter_async_context(serving(first))
        other = replicas[id(second)]
        await other.enter_async_context(serving(second))
        for n in range(10):
            bot.push_message(factory.message(chat, zoe, text=f"a{n}"))
        await _texts(api, tenant, channel["id"], str(chat["id"]), 10)
        # Only this bot counts: the session's other tests leave Telegram channels in the directory.
        bot_channel = uuid.UUID(channel["id"])
        holders = [app for app in (first, second) if bot_channel in app.state.telegram[1].running]
        assert len(holders) == 1
        # The holder stops (its lease is released): the other replica takes the bot over.
        survivor = second if holders[0] is first else first
        if holders[0] is second:
            await other.aclose()
        else:
            await stack.aclose()
            stack = other
        await wait_for(
            lambda: asyncio.sleep(0, bot_channel in survivor.state.telegram[1].running), timeout=10
        )
        for n in range(10):
            bot.push_message(factory.message(chat, zoe, text=f"b{n}"))
        texts = await _texts(api, tenant, channel["id"], str(chat["id"]), 20)
        await stack.aclose()
    assert sorted(texts) == sorted([f"a{n}" for n in range(10)] + [f"b{n}" for n in range(10)])
    assert conflicts == []


async def test_429_waits_retry_after(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot, connector: Any
) -> None:
    channel = await connect_bot(api, tenant, bot)
    await bot.wait_for(lambda: bot.calls("getUpdates"))
    bot.inject("getUpdates", status=429, retry_after=3)
    await bot.wait_for(lambda: [r for r in bot.calls("getUpdates") if r.injection], timeout=5)
    refused = [r for r in bot.calls("getUpdates") if r.injection]
    zoe = factory.user("Zoë")
    chat = bot.add_private_chat(zoe)
    bot.push_message(factory.message(chat, zoe, text="after the flood wait"))
    await _texts(api, tenant, channel["id"], str(chat["id"]), 1)
    # After the refused call, nothing until retry_after has passed.
    later = [r.at for r in bot.calls("getUpdates") if r.at > refused[0].at]
    assert later
    assert later[0] - refused[0].at >= 3.0


async def test_a_poller_restart_keeps_the_flood_wait(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot, connector: Any
) -> None:
    channel = await connect_bot(api, tenant, bot)
    await bot.wait_for(lambda: bot.calls("getUpdates"))
    bot.inject("getUpdates", status=429, retry_after=3)
    await bot.wait_for(lambda: [r for r in bot.calls("getUpdates") if r.injection], timeout=5)
    refused = [r for r in bot.calls("getUpdates") if r.injection]
    # Renaming the channel restarts its poller mid-wait; the new one still waits Telegram out.
    renamed = await api.patch(f"/v1/channels/{channel['id']}", json={"name": "Shop"}, headers=tenant.auth)
    assert renamed.status_code == 200, renamed.text
    zoe = factory.user("Zoë")
    chat = bot.add_private_chat(zoe)
    bot.push_message(factory.message(chat, zoe, text="after the flood wait"))
    await _texts(api, tenant, channel["id"], str(chat["id"]), 1)
    later = [r.at for r in bot.calls("getUpdates") if r.at > refused[0].at]
    assert later
    assert later[0] - refused[0].at >= 3.0


async def test_5xx_and_broken_answers_back_off_and_recover(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot, connector: Any
) -> None:
    channel = await connect_bot(api, tenant, bot)
    await bot.wait_for(lambda: bot.calls("getUpdates"))
    bot.inject("getUpdates", status=502, description="Bad Gateway", times=1)
    bot.inject("getUpdates", fault="truncated_json", times=1)
    bot.inject("getUpdates", fault="drop", times=1)
    zoe = factory.user("Zoë")
    chat = bot.add_private_chat(zoe)
    bot.push_message(factory.message(chat, zoe, text="made it"))
    assert await _texts(api, tenant, channel["id"], str(chat["id"]), 1) == ["made it"]


async def test_a_conflict_shows_on_the_channel_health(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot, connector: Any
) -> None:
    channel = await connect_bot(api, tenant, bot)
    await bot.wait_for(lambda: bot.calls("getUpdates"))
    bot.inject(
        "getUpdates",
        status=409,
        description="Conflict: terminated by other getUpdates request; make sure that only one bot instance is running",
        times=3,
    )

    async def conflicted() -> dict[str, Any] | None:
        health = await _health(api, tenant, channel["id"])
        return health if health["last_error"] and health["last_error"]["code"] == "conflict" else None

    health = await wait_for(conflicted)
    assert health["status"] == "error"
    assert health["connected"] is False
    assert "only one bot instance" in health["last_error"]["message"]

    async def recovered() -> dict[str, Any] | None:
        health = await _health(api, tenant, channel["id"])
        return health if health["connected"] else None

    await wait_for(recovered, timeout=20)


async def test_a_revoked_token_stops_polling_with_a_clear_reason(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot, connector: Any
) -> None:
    channel = await connect_bot(api, tenant, bot)
    await bot.wait_for(lambda: bot.calls("getUpdates"))
    bot.revoke_token()

    async def revoked() -> dict[str, Any] | None:
        health = await _health(api, tenant, channel["id"])
        return health if health["last_error"] and health["last_error"]["code"] == "token_revoked" else None

    health = await wait_for(revoked)
    assert health["status"] == "error"
    assert "valid token" in health["last_error"]["message"]
    calls = len(bot.calls("getUpdates"))
    await asyncio.sleep(1.0)  # several rescans: no crash loop against Telegram
    assert len(bot.calls("getUpdates")) == calls
