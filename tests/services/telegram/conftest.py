"""A fake Telegram Bot API for these tests, and the connector running in process against it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from services.reply.app import worker_component as reply_component
from services.reply.config import ReplySettings
from services.telegram.app import worker_component
from services.telegram.config import TelegramSettings
from shared.http import build_app
from tests.fakes.telegram import FakeBot, FakeTelegram, RateLimits
from tests.support import Tenant, conversation_messages, serving, unique, wait_for


@pytest.fixture
async def telegram() -> AsyncIterator[FakeTelegram]:
    async with FakeTelegram(webhook_backoff=0.05, rate_limits=RateLimits.unlimited()) as fake:
        yield fake


@pytest.fixture
def settings_kwargs(settings_kwargs: dict[str, object], telegram: FakeTelegram) -> dict[str, object]:
    return {**settings_kwargs, "telegram_api_url": telegram.base_url}


@pytest.fixture
def bot(telegram: FakeTelegram) -> FakeBot:
    return telegram.add_bot(username=unique("shop_bot").replace("-", "_"))


@pytest.fixture
def connector_settings(settings_kwargs: dict[str, Any]) -> TelegramSettings:
    return TelegramSettings(**settings_kwargs, poll_timeout=1, rescan_seconds=0.2, health_seconds=0.5)


@pytest.fixture
async def connector(connector_settings: TelegramSettings) -> AsyncIterator[Any]:
    app = build_app("telegram-connector", [worker_component(connector_settings)])
    async with serving(app):
        yield app


async def connect_bot(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot, mode: str = "polling"
) -> dict[str, Any]:
    """Register the fake bot as a channel through the API."""
    response = await api.post(
        "/v1/channels", json={"type": "telegram", "bot_token": bot.token, "mode": mode}, headers=tenant.auth
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


@pytest.fixture
async def polled(api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot, connector: Any) -> dict[str, Any]:
    """The fake bot registered as a polled channel, its first getUpdates made."""
    channel = await connect_bot(api, tenant, bot)
    # The connector hears of the channel over the bus and starts its poller: seconds on a busy machine.
    await bot.wait_for(lambda: bot.calls("getUpdates"), timeout=30)
    return channel


@pytest.fixture
def reply_settings(settings_kwargs: dict[str, Any]) -> ReplySettings:
    return ReplySettings(**settings_kwargs, retry_base_seconds=0.05, attempts=3)


@pytest.fixture
async def replier(reply_settings: ReplySettings) -> AsyncIterator[Any]:
    """The reply service in process."""
    app = build_app("reply-service", [reply_component(reply_settings)])
    async with serving(app):
        yield app


async def conversation_of(
    api: httpx.AsyncClient, tenant: Tenant, channel_id: str, thread: str
) -> dict[str, Any]:
    """The conversation of a thread, once the inbox has it."""

    async def found() -> dict[str, Any] | None:
        page = await api.get(
            "/v1/conversations", params={"channel_id": channel_id, "limit": 200}, headers=tenant.auth
        )
        matches = [c for c in page.json()["data"] if c["external_id"] == thread]
        return matches[0] if matches else None

    return await wait_for(found)


async def messages_of(
    api: httpx.AsyncClient, tenant: Tenant, channel_id: str, thread: str, count: int, **params: Any
) -> list[dict[str, Any]]:
    """A thread's messages, once there are at least ``count``."""

    async def enough() -> list[dict[str, Any]] | None:
        messages = await conversation_messages(api, tenant, channel_id, thread, **params)
        return messages if len(messages) >= count else None

    return await wait_for(enough)
