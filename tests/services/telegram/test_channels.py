"""Connecting a Telegram bot: the token is checked with Telegram and never shown again."""

from __future__ import annotations

import httpx
import pytest

from tests.fakes.telegram import FakeBot, FakeTelegram
from tests.services.telegram.conftest import connect_bot
from tests.support import Tenant

pytestmark = pytest.mark.e2e


async def test_a_bot_is_checked_with_get_me_and_its_token_never_returned(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot
) -> None:
    channel = await connect_bot(api, tenant, bot)
    assert channel["type"] == "telegram"
    assert channel["name"] == f"@{bot.username}"
    assert channel["account"] == f"@{bot.username}"
    assert channel["mode"] == "polling"
    assert channel["webhook_url"] is None
    assert channel["signing_secret"] is None
    assert bot.calls("getMe")
    assert bot.calls("deleteWebhook")  # polling needs no webhook set
    listed = await api.get("/v1/channels", headers=tenant.auth)
    one = await api.get(f"/v1/channels/{channel['id']}", headers=tenant.auth)
    for text in (str(channel), listed.text, one.text):
        assert bot.token not in text
        assert bot.token.split(":")[1] not in text


async def test_a_refused_token_is_a_400_with_the_reason(
    api: httpx.AsyncClient, tenant: Tenant, telegram: FakeTelegram
) -> None:
    response = await api.post(
        "/v1/channels",
        json={"type": "telegram", "bot_token": "999999:AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"},
        headers=tenant.auth,
    )
    assert response.status_code == 400
    assert response.json()["code"] == "invalid_bot_token"
    assert "Unauthorized" in response.json()["detail"]


@pytest.mark.parametrize("token", ["not-a-token", "123:short", "", "abc:ABCDEFGHIJKLMNOPQRSTUVWXYZ"])
async def test_a_malformed_token_is_a_400_before_calling_telegram(
    api: httpx.AsyncClient, tenant: Tenant, token: str
) -> None:
    response = await api.post(
        "/v1/channels", json={"type": "telegram", "bot_token": token}, headers=tenant.auth
    )
    assert response.status_code == 400
    assert response.json()["code"] == "validation_failed"
    assert token not in response.text or not token


async def test_telegram_down_is_a_503_and_nothing_is_created(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot
) -> None:
    bot.inject("getMe", fault="bad_gateway")
    response = await api.post(
        "/v1/channels", json={"type": "telegram", "bot_token": bot.token}, headers=tenant.auth
    )
    assert response.status_code == 503
    assert (await api.get("/v1/channels", headers=tenant.auth)).json()["data"] == []


async def test_a_bot_is_connected_once(api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot) -> None:
    await connect_bot(api, tenant, bot)
    again = await api.post(
        "/v1/channels", json={"type": "telegram", "bot_token": bot.token}, headers=tenant.auth
    )
    assert again.status_code == 409
    assert again.json()["code"] == "bot_already_connected"


async def test_switching_modes_sets_and_removes_the_webhook(
    api: httpx.AsyncClient, tenant: Tenant, bot: FakeBot
) -> None:
    channel = await connect_bot(api, tenant, bot)
    switched = await api.patch(f"/v1/channels/{channel['id']}", json={"mode": "webhook"}, headers=tenant.auth)
    assert switched.status_code == 200, switched.text
    assert switched.json()["webhook_url"] == f"http://piazza.test/webhooks/telegram/{channel['id']}"
    assert bot.webhook is not None
    assert bot.webhook.url == switched.json()["webhook_url"]
    assert bot.webhook.secret_token
    back = await api.patch(f"/v1/channels/{channel['id']}", json={"mode": "polling"}, headers=tenant.auth)
    assert back.json()["mode"] == "polling"
    assert bot.webhook is None


async def test_mode_is_refused_for_webhook_sources(api: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await api.post("/v1/channels", json={"type": "webhook", "name": "forms"}, headers=tenant.auth)
    response = await api.patch(
        f"/v1/channels/{created.json()['id']}", json={"mode": "polling"}, headers=tenant.auth
    )
    assert response.status_code == 400
    assert response.json()["code"] == "mode_not_applicable"
    renamed = await api.patch(
        f"/v1/channels/{created.json()['id']}", json={"name": "Forms"}, headers=tenant.auth
    )
    assert renamed.json()["name"] == "Forms"
