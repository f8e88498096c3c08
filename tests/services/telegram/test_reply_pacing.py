"""The reply service stays under Telegram's flood limits, checked by the fake's own budgets."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest

from services.reply.app import worker_component
from services.reply.config import ReplySettings
from shared.http import build_app
from tests.fakes.telegram import FakeBot, FakeTelegram, RateLimits, factory
from tests.services.telegram.conftest import connect_bot, conversation_of
from tests.services.telegram.test_replies import reply, settled
from tests.support import Tenant, serving

pytestmark = pytest.mark.e2e


async def test_a_backlog_of_replies_never_exceeds_the_chat_group_or_bot_budgets(
    api: httpx.AsyncClient,
    tenant: Tenant,
    telegram: FakeTelegram,
    connector: Any,
    reply_settings: ReplySettings,
) -> None:
    bot: FakeBot = telegram.add_bot(rate_limits=RateLimits())  # Telegram's FAQ numbers, with bursts
    channel = await connect_bot(api, tenant, bot)
    customers = [factory.user(f"Customer {n}") for n in range(40)]
    chats = [bot.add_private_chat(customer) for customer in customers]
    group = bot.add_group("Launch party", members=customers[:3])
    for chat, customer in zip(chats, customers, strict=True):
        bot.push_message(factory.message(chat, customer, text="when does it ship?"))
    bot.push_message(factory.message(group, customers[0], text="hello group"))
    conversations = [await conversation_of(api, tenant, channel["id"], str(chat["id"])) for chat in chats]
    in_group = await conversation_of(api, tenant, channel["id"], str(group["id"]))

    busy = conversations[0]
    queued = [await reply(api, tenant, busy["id"], f"part {n}") for n in range(1, 5)]
    queued += [await reply(api, tenant, in_group["id"], f"group {n}") for n in range(1, 5)]
    queued += [await reply(api, tenant, c["id"], "tomorrow") for c in conversations[1:]]
    # The reply service starts with all of them waiting, as after an outage.
    async with serving(build_app("reply-service", [worker_component(reply_settings)])):
        outcomes = await asyncio.gather(*(settled(api, tenant, message_id) for message_id in queued))

    assert {o["delivery"]["status"] for o in outcomes} == {"sent"}
    assert len(bot.sent) == 4 + 4 + 39
    assert bot.throttled == []  # the fake never had to answer 429
    assert bot.max_rate(1.0) <= 30
    assert bot.max_rate(2.0, chats[0]["id"]) <= 3
    assert [s.message["text"] for s in bot.sent_to(chats[0]["id"])] == [f"part {n}" for n in range(1, 5)]
    assert [s.message["text"] for s in bot.sent_to(group["id"])] == [f"group {n}" for n in range(1, 5)]
