"""A bot in webhook mode: Telegram (the fake) calls the ingress over real HTTP."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from tests.fakes.telegram import FakeBot, FakeTelegram, factory
from tests.support import Process, Tenant, free_port, make_tenant, wait_for, wait_http_ready

pytestmark = pytest.mark.e2e


@pytest.fixture
async def stack(process_env: dict[str, str], telegram: FakeTelegram, tmp_path: Path) -> AsyncIterator[str]:
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    env = {**process_env, "PIAZZA_TELEGRAM_API_URL": telegram.base_url, "PIAZZA_PUBLIC_URL": url}
    web = Process(["serve", "ingress", "inbox-api", "--port", str(port)], env, tmp_path / "web.log").start()
    worker = Process(["worker", "inbox", "--port", "0"], env, tmp_path / "worker.log").start()
    try:
        await wait_http_ready(url, web)
        yield url
    finally:
        web.stop()
        worker.stop()


async def _register(client: httpx.AsyncClient, tenant: Tenant, bot: FakeBot) -> dict[str, Any]:
    response = await client.post(
        "/v1/channels",
        json={"type": "telegram", "bot_token": bot.token, "mode": "webhook"},
        headers=tenant.auth,
    )
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_telegram_delivers_to_the_ingress_and_the_message_is_stored(
    stack: str, engine: AsyncEngine, bot: FakeBot
) -> None:
    tenant = await make_tenant(engine)
    async with httpx.AsyncClient(base_url=stack, timeout=10) as client:
        channel = await _register(client, tenant, bot)
        assert bot.webhook is not None
        assert bot.webhook.url == f"{stack}/webhooks/telegram/{channel['id']}"
        assert channel["webhook_url"] == bot.webhook.url
        zoe = factory.user("Zoë")
        chat = bot.add_private_chat(zoe)
        bot.push_message(factory.message(chat, zoe, text="via the webhook ✅"))

        async def stored() -> list[dict[str, Any]] | None:
            page = await client.get(
                "/v1/conversations", params={"channel_id": channel["id"]}, headers=tenant.auth
            )
            if not page.json()["data"]:
                return None
            conversation = page.json()["data"][0]["id"]
            messages = await client.get(f"/v1/conversations/{conversation}/messages", headers=tenant.auth)
            data: list[dict[str, Any]] = messages.json()["data"]
            return data or None

        [message] = await wait_for(stored, timeout=20)
        assert message["text"] == "via the webhook ✅"
        assert bot.deliveries
        assert all(d.status == 200 for d in bot.deliveries)


@pytest.mark.parametrize("secret", [None, "wrong-secret", "çé€-not-ascii"])
async def test_a_missing_or_wrong_secret_is_401(
    stack: str, engine: AsyncEngine, bot: FakeBot, secret: str | None
) -> None:
    tenant = await make_tenant(engine)
    async with httpx.AsyncClient(base_url=stack, timeout=10) as client:
        channel = await _register(client, tenant, bot)
        headers = {"content-type": "application/json"}
        raw = [(k.encode(), v.encode()) for k, v in headers.items()]
        if secret is not None:
            raw.append((b"x-telegram-bot-api-secret-token", secret.encode("utf-8")))
        response = await client.post(
            f"/webhooks/telegram/{channel['id']}", content=b'{"update_id": 1, "message": {}}', headers=raw
        )
        assert response.status_code == 401
        assert response.json()["code"] == "invalid_signature"


async def test_bad_bodies_get_clear_errors(stack: str, engine: AsyncEngine, bot: FakeBot) -> None:
    tenant = await make_tenant(engine)
    async with httpx.AsyncClient(base_url=stack, timeout=10) as client:
        channel = await _register(client, tenant, bot)
        assert bot.webhook is not None
        secret = {"x-telegram-bot-api-secret-token": bot.webhook.secret_token}
        path = f"/webhooks/telegram/{channel['id']}"
        text = await client.post(path, content=b"{}", headers={**secret, "content-type": "text/plain"})
        assert text.status_code == 415
        broken = await client.post(
            path, content=b'{"update_id": ', headers={**secret, "content-type": "application/json"}
        )
        assert broken.status_code == 400
        assert broken.json()["code"] == "malformed_json"
        shapeless = await client.post(path, json=[1, 2], headers=secret)
        assert shapeless.status_code == 400
        unknown = await client.post(
            "/webhooks/telegram/00000000-0000-4000-8000-000000000000", json={"update_id": 1}, headers=secret
        )
        assert unknown.status_code == 404
