"""A fake Reddit for these tests, and the connector (and reply service) running in process against it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from services.reddit.app import worker_component
from services.reddit.config import RedditSettings
from services.reply.app import worker_component as reply_component
from services.reply.config import ReplySettings
from shared.http import build_app
from tests.fakes.reddit import FakeReddit, RateBudget
from tests.fakes.reddit.factory import USER_AGENT
from tests.services.analytics.conftest import analytics, analytics_settings  # noqa: F401 (fixtures)
from tests.support import Tenant, conversation_messages, serving, unique, wait_for


@pytest.fixture
async def reddit() -> AsyncIterator[FakeReddit]:
    async with FakeReddit(budget=RateBudget(total=100_000, window=600.0)) as fake:
        yield fake


@pytest.fixture
def settings_kwargs(settings_kwargs: dict[str, object], reddit: FakeReddit) -> dict[str, object]:
    return {**settings_kwargs, "reddit_auth_url": reddit.auth_url, "reddit_api_url": reddit.api_url}


@dataclass
class Account:
    """A Reddit account with a script app, as a user connects it."""

    username: str
    password: str
    client_id: str
    client_secret: str

    def channel_body(self, **overrides: Any) -> dict[str, Any]:
        return {
            "type": "reddit",
            "client_id": self.client_id,
            "client_secret": self.client_secret,
            "user_agent": USER_AGENT,
            "username": self.username,
            "password": self.password,
            **overrides,
        }


@pytest.fixture
def account(reddit: FakeReddit) -> Account:
    username = unique("brand").replace("-", "_")[:20]
    reddit.add_account(username, password="hunter2")
    app = reddit.add_app(client_id=unique("cid"), client_secret="csecret", kind="script")
    return Account(username, "hunter2", app.client_id, app.client_secret)


@pytest.fixture
def subreddit(reddit: FakeReddit, account: Account) -> str:
    name = unique("shop").replace("-", "_")[:20]
    reddit.add_subreddit(name, moderators=[account.username])
    return name


@pytest.fixture
def connector_settings(settings_kwargs: dict[str, Any]) -> RedditSettings:
    return RedditSettings(**settings_kwargs, poll_seconds=0.2, rescan_seconds=0.2, edit_check_seconds=0.5)


@pytest.fixture
async def connector(connector_settings: RedditSettings) -> AsyncIterator[Any]:
    """The Reddit connector in process."""
    app = build_app("reddit-connector", [worker_component(connector_settings)])
    async with serving(app):
        yield app


@pytest.fixture
async def replier(settings_kwargs: dict[str, Any]) -> AsyncIterator[Any]:
    """The reply service in process."""
    settings = ReplySettings(**settings_kwargs, retry_base_seconds=0.05, attempts=3)
    async with serving(build_app("reply-service", [reply_component(settings)])):
        yield


async def connect_account(
    api: httpx.AsyncClient, tenant: Tenant, account: Account, **overrides: Any
) -> dict[str, Any]:
    """Register the account as a channel through the API."""
    response = await api.post("/v1/channels", json=account.channel_body(**overrides), headers=tenant.auth)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def messages_of(
    api: httpx.AsyncClient, tenant: Tenant, channel_id: str, thread: str, count: int, **params: Any
) -> list[dict[str, Any]]:
    """A thread's messages, once there are at least ``count``."""

    async def enough() -> list[dict[str, Any]] | None:
        messages = await conversation_messages(api, tenant, channel_id, thread, **params)
        return messages if len(messages) >= count else None

    return await wait_for(enough, timeout=15)


async def channel_health(api: httpx.AsyncClient, tenant: Tenant, channel_id: str) -> dict[str, Any]:
    response = await api.get(f"/v1/channels/{channel_id}", headers=tenant.auth)
    assert response.status_code == 200, response.text
    health: dict[str, Any] = response.json()["health"]
    return health
