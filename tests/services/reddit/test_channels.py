"""Connecting a Reddit account: credentials checked with Reddit, sealed, never shown again."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.fakes.reddit import FakeReddit
from tests.services.reddit.conftest import Account, connect_account
from tests.support import Tenant

pytestmark = pytest.mark.e2e


async def test_an_account_is_checked_and_its_credentials_never_returned(
    api: httpx.AsyncClient, tenant: Tenant, reddit: FakeReddit, account: Account, subreddit: str
) -> None:
    channel = await connect_account(api, tenant, account, subreddits=[f"r/{subreddit}"])
    assert channel["type"] == "reddit"
    assert channel["name"] == channel["account"] == f"u/{account.username}"
    assert channel["subreddits"] == [subreddit]
    assert channel["signing_secret"] is None
    assert reddit.tokens_issued
    assert any(r.path.rstrip("/") == "/api/v1/me" for r in reddit.requests)
    listed = await api.get("/v1/channels", headers=tenant.auth)
    one = await api.get(f"/v1/channels/{channel['id']}", headers=tenant.auth)
    for text in (str(channel), listed.text, one.text):
        assert account.password not in text
        assert account.client_secret not in text


async def test_a_refresh_token_connects_too(
    api: httpx.AsyncClient, tenant: Tenant, reddit: FakeReddit, account: Account
) -> None:
    app = reddit.add_app(client_id="web-app-id", client_secret="web-secret", kind="web")
    token = reddit.issue_refresh_token(app, account.username)
    body = {**account.channel_body(), "client_id": app.client_id, "client_secret": app.client_secret}
    del body["username"], body["password"]
    response = await api.post("/v1/channels", json={**body, "refresh_token": token}, headers=tenant.auth)
    assert response.status_code == 201, response.text
    assert response.json()["account"] == f"u/{account.username}"
    assert token not in response.text


@pytest.mark.parametrize(
    ("change", "code", "reason"),
    [
        ({"password": "wrong"}, "invalid_credentials", "invalid_grant"),
        ({"client_secret": "wrong"}, "invalid_credentials", "Unauthorized (HTTP 401)"),
    ],
)
async def test_refused_credentials_are_a_400_with_the_reason(
    api: httpx.AsyncClient,
    tenant: Tenant,
    account: Account,
    change: dict[str, str],
    code: str,
    reason: str,
) -> None:
    response = await api.post("/v1/channels", json=account.channel_body(**change), headers=tenant.auth)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == code
    assert reason in response.json()["detail"]
    assert (await api.get("/v1/channels", headers=tenant.auth)).json()["data"] == []


async def test_a_password_grant_needs_a_script_app(
    api: httpx.AsyncClient, tenant: Tenant, reddit: FakeReddit, account: Account
) -> None:
    web = reddit.add_app(client_id="not-a-script", client_secret="s", kind="web")
    body = account.channel_body(client_id=web.client_id, client_secret=web.client_secret)
    response = await api.post("/v1/channels", json=body, headers=tenant.auth)
    assert response.status_code == 400
    assert "Only script apps may use password auth" in response.json()["detail"]


@pytest.mark.parametrize(
    "change",
    [
        {"user_agent": "python-requests/2.32"},
        {"user_agent": "short"},
        {"password": None},
        {"refresh_token": "also-a-token"},
        {"subreddits": ["no spaces allowed"]},
        {"subreddits": ["x"]},
        {"backfill": 1001},
        {"client_id": ""},
    ],
)
async def test_bad_bodies_are_400_before_calling_reddit(
    api: httpx.AsyncClient, tenant: Tenant, reddit: FakeReddit, account: Account, change: dict[str, Any]
) -> None:
    response = await api.post("/v1/channels", json=account.channel_body(**change), headers=tenant.auth)
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "validation_failed"
    assert not reddit.requests
    assert account.password not in response.text


async def test_an_unknown_subreddit_is_a_400(
    api: httpx.AsyncClient, tenant: Tenant, account: Account
) -> None:
    response = await api.post(
        "/v1/channels", json=account.channel_body(subreddits=["doesnotexist"]), headers=tenant.auth
    )
    assert response.status_code == 400
    assert response.json()["code"] == "unknown_subreddit"


async def test_reddit_down_is_a_503_and_nothing_is_created(
    api: httpx.AsyncClient, tenant: Tenant, reddit: FakeReddit, account: Account
) -> None:
    reddit.inject("/api/v1/me", status=503, times=5)
    response = await api.post("/v1/channels", json=account.channel_body(), headers=tenant.auth)
    assert response.status_code == 503
    assert (await api.get("/v1/channels", headers=tenant.auth)).json()["data"] == []


async def test_an_account_is_connected_once(api: httpx.AsyncClient, tenant: Tenant, account: Account) -> None:
    await connect_account(api, tenant, account)
    again = await api.post("/v1/channels", json=account.channel_body(), headers=tenant.auth)
    assert again.status_code == 409
    assert again.json()["code"] == "account_already_connected"


async def test_subreddits_are_changed_with_patch(
    api: httpx.AsyncClient, tenant: Tenant, reddit: FakeReddit, account: Account, subreddit: str
) -> None:
    channel = await connect_account(api, tenant, account)
    path = f"/v1/channels/{channel['id']}"
    added = await api.patch(path, json={"subreddits": [subreddit]}, headers=tenant.auth)
    assert added.status_code == 200, added.text
    assert added.json()["subreddits"] == [subreddit]
    unknown = await api.patch(path, json={"subreddits": [subreddit, "nosuchsub"]}, headers=tenant.auth)
    assert unknown.status_code == 400
    assert unknown.json()["code"] == "unknown_subreddit"
    assert (await api.get(path, headers=tenant.auth)).json()["subreddits"] == [subreddit]
    webhook = await api.post("/v1/channels", json={"type": "webhook", "name": "forms"}, headers=tenant.auth)
    refused = await api.patch(
        f"/v1/channels/{webhook.json()['id']}", json={"subreddits": [subreddit]}, headers=tenant.auth
    )
    assert refused.status_code == 400
    assert refused.json()["code"] == "subreddits_not_applicable"


async def test_new_credentials_must_act_as_the_same_account(
    api: httpx.AsyncClient, tenant: Tenant, reddit: FakeReddit, account: Account
) -> None:
    channel = await connect_account(api, tenant, account)
    app = reddit.apps[account.client_id]
    reddit.add_account("someone_else", password="x")
    path = f"/v1/channels/{channel['id']}"
    other = await api.patch(
        path, json={"refresh_token": reddit.issue_refresh_token(app, "someone_else")}, headers=tenant.auth
    )
    assert other.status_code == 400
    assert other.json()["code"] == "different_account"
    same = await api.patch(
        path, json={"refresh_token": reddit.issue_refresh_token(app, account.username)}, headers=tenant.auth
    )
    assert same.status_code == 200, same.text
    webhook = await api.post("/v1/channels", json={"type": "webhook", "name": "forms"}, headers=tenant.auth)
    refused = await api.patch(
        f"/v1/channels/{webhook.json()['id']}", json={"password": "p"}, headers=tenant.auth
    )
    assert refused.status_code == 400
    assert refused.json()["code"] == "credentials_not_applicable"
    not_reddit = await api.patch(
        f"/v1/channels/{webhook.json()['id']}", json={"mark_read": "never"}, headers=tenant.auth
    )
    assert not_reddit.status_code == 400
    assert not_reddit.json()["code"] == "mark_read_not_applicable"
    unknown = await api.patch(path, json={"mark_read": "sometimes"}, headers=tenant.auth)
    assert unknown.status_code == 400
    assert unknown.json()["code"] == "validation_failed"
