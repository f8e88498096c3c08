"""Every ``/v1`` route against the role matrix and workspace isolation.

``ROUTE_ROLES`` is the minimum role of every route of the web app. A route missing from it fails
``test_every_route_is_classified``: add it with the least role that may call it. The other tests then
check, route by route, that tokens of lower roles get 403 (before any validation: an empty body and
dummy ids are enough), that the minimum role is let through, and that an admin of another workspace
reaches nothing of the first one (404 on its ids, none of its ids in lists).
"""

from __future__ import annotations

import uuid
from collections.abc import Callable
from typing import Any

import httpx
import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute, iter_route_contexts
from sqlalchemy.ext.asyncio import AsyncEngine

from services.inbox.config import InboxSettings
from services.inbox.service.access import Role
from services.ingress.config import IngressSettings
from tests.support import (
    Tenant,
    add_token,
    add_user,
    conversation_messages,
    make_channel,
    make_tenant,
    message_event,
    send_events,
    wait_for,
)

pytestmark = pytest.mark.e2e

VIEWER, AGENT, ADMIN = Role.VIEWER, Role.AGENT, Role.ADMIN
RANK = {VIEWER: 0, AGENT: 1, ADMIN: 2}

ROUTE_ROLES: dict[tuple[str, str], Role] = {
    # channels: agents cannot manage channels
    ("GET", "/v1/channels"): VIEWER,
    ("GET", "/v1/channels/{channel_id}"): VIEWER,
    ("POST", "/v1/channels"): ADMIN,
    ("PATCH", "/v1/channels/{channel_id}"): ADMIN,
    ("POST", "/v1/channels/{channel_id}/rotate-secret"): ADMIN,
    # reading the inbox
    ("GET", "/v1/conversations"): VIEWER,
    ("GET", "/v1/conversations/counts"): VIEWER,
    ("GET", "/v1/conversations/{conversation_id}"): VIEWER,
    ("GET", "/v1/conversations/{conversation_id}/messages"): VIEWER,
    ("GET", "/v1/messages/{message_id}"): VIEWER,
    ("GET", "/v1/messages/{message_id}/history"): VIEWER,
    ("GET", "/v1/messages/{message_id}/attachments/{index}"): VIEWER,
    ("GET", "/v1/contacts"): VIEWER,
    ("GET", "/v1/contacts/{contact_id}"): VIEWER,
    ("GET", "/v1/contacts/{contact_id}/conversations"): VIEWER,
    ("GET", "/v1/contacts/{contact_id}/merges"): VIEWER,
    ("GET", "/v1/contacts/merges/{merge_id}"): VIEWER,
    # the caller's own read state and presence: every role has one
    ("POST", "/v1/conversations/{conversation_id}/read"): VIEWER,
    ("POST", "/v1/conversations/{conversation_id}/unread"): VIEWER,
    ("GET", "/v1/conversations/{conversation_id}/presence"): VIEWER,
    ("POST", "/v1/conversations/{conversation_id}/presence"): VIEWER,
    ("GET", "/v1/stream"): VIEWER,
    # working conversations
    ("PATCH", "/v1/conversations/{conversation_id}"): AGENT,
    ("POST", "/v1/conversations/bulk"): AGENT,
    ("POST", "/v1/conversations/{conversation_id}/notes"): AGENT,
    ("POST", "/v1/conversations/{conversation_id}/claim"): AGENT,
    ("DELETE", "/v1/conversations/{conversation_id}/claim"): AGENT,
    ("POST", "/v1/conversations/{conversation_id}/messages"): AGENT,
    ("POST", "/v1/messages/{message_id}/delete"): AGENT,
    ("POST", "/v1/messages/{message_id}/moderation"): AGENT,
    ("PUT", "/v1/conversations/{conversation_id}/messages/{message_id}/sentiment"): AGENT,
    ("DELETE", "/v1/conversations/{conversation_id}/messages/{message_id}/sentiment"): AGENT,
    ("POST", "/v1/conversations/{conversation_id}/bans"): AGENT,
    ("DELETE", "/v1/conversations/{conversation_id}/bans/{identity_id}"): AGENT,
    ("PATCH", "/v1/contacts/{contact_id}"): AGENT,
    ("POST", "/v1/contacts/{contact_id}/merge"): AGENT,
    ("POST", "/v1/contacts/merges/{merge_id}/undo"): AGENT,
    # saved replies: everyone reads and previews them; agents keep them
    ("GET", "/v1/saved-replies"): VIEWER,
    ("GET", "/v1/saved-replies/placeholders"): VIEWER,
    ("GET", "/v1/saved-replies/{reply_id}"): VIEWER,
    ("POST", "/v1/saved-replies/preview"): VIEWER,
    ("POST", "/v1/saved-replies/{reply_id}/preview"): VIEWER,
    ("POST", "/v1/saved-replies"): AGENT,
    ("PATCH", "/v1/saved-replies/{reply_id}"): AGENT,
    ("DELETE", "/v1/saved-replies/{reply_id}"): AGENT,
    # the audit log
    ("GET", "/v1/audit"): ADMIN,
    # people: everyone sees who is who; admins manage users and tokens
    ("GET", "/v1/me"): VIEWER,
    ("GET", "/v1/users"): VIEWER,
    ("GET", "/v1/users/{user_id}"): VIEWER,
    ("POST", "/v1/users"): ADMIN,
    ("PATCH", "/v1/users/{user_id}"): ADMIN,
    ("POST", "/v1/users/{user_id}/tokens"): ADMIN,
    ("GET", "/v1/tokens"): ADMIN,
    ("DELETE", "/v1/tokens/{token_id}"): ADMIN,
    # catalogues: everyone reads them; admins keep them
    ("GET", "/v1/teams"): VIEWER,
    ("GET", "/v1/teams/{team_id}"): VIEWER,
    ("POST", "/v1/teams"): ADMIN,
    ("PATCH", "/v1/teams/{team_id}"): ADMIN,
    ("DELETE", "/v1/teams/{team_id}"): ADMIN,
    ("PUT", "/v1/teams/{team_id}/members/{user_id}"): ADMIN,
    ("DELETE", "/v1/teams/{team_id}/members/{user_id}"): ADMIN,
    ("GET", "/v1/labels"): VIEWER,
    ("GET", "/v1/labels/{label_id}"): VIEWER,
    ("POST", "/v1/labels"): ADMIN,
    ("PATCH", "/v1/labels/{label_id}"): ADMIN,
    ("DELETE", "/v1/labels/{label_id}"): ADMIN,
    # outgoing webhooks: integrations are an admin's business
    ("GET", "/v1/webhook-subscriptions"): ADMIN,
    ("POST", "/v1/webhook-subscriptions"): ADMIN,
    ("GET", "/v1/webhook-subscriptions/{subscription_id}"): ADMIN,
    ("PATCH", "/v1/webhook-subscriptions/{subscription_id}"): ADMIN,
    ("DELETE", "/v1/webhook-subscriptions/{subscription_id}"): ADMIN,
    ("POST", "/v1/webhook-subscriptions/{subscription_id}/rotate-secret"): ADMIN,
    ("GET", "/v1/webhook-subscriptions/{subscription_id}/deliveries"): ADMIN,
    ("GET", "/v1/webhook-subscriptions/{subscription_id}/deliveries/{delivery_id}"): ADMIN,
    ("POST", "/v1/webhook-subscriptions/{subscription_id}/deliveries/{delivery_id}/redeliver"): ADMIN,
}

NOT_CALLED = {
    ("GET", "/v1/stream"): "an endless event stream: tests/services/inbox/test_stream.py covers it",
}
"""Routes the generic calls below leave out, and why."""

BODIES: dict[tuple[str, str], Callable[[dict[str, str]], dict[str, Any]]] = {
    ("POST", "/v1/conversations/{conversation_id}/notes"): lambda _: {"text": "from another workspace"},
    ("POST", "/v1/conversations/{conversation_id}/messages"): lambda _: {"text": "from another workspace"},
    ("POST", "/v1/conversations/{conversation_id}/presence"): lambda _: {"state": "viewing"},
    ("PATCH", "/v1/conversations/{conversation_id}"): lambda _: {"status": "resolved"},
    ("PUT", "/v1/conversations/{conversation_id}/messages/{message_id}/sentiment"): lambda _: {
        "label": "negative"
    },
    ("POST", "/v1/messages/{message_id}/moderation"): lambda _: {"action": "remove"},
    ("POST", "/v1/conversations/{conversation_id}/bans"): lambda ids: {"identity_id": ids["identity_id"]},
    ("POST", "/v1/contacts/{contact_id}/merge"): lambda ids: {"source_contact_id": ids["other_contact_id"]},
    ("POST", "/v1/users/{user_id}/tokens"): lambda _: {"name": "stolen"},
    ("PATCH", "/v1/users/{user_id}"): lambda _: {"name": "stolen"},
    ("PATCH", "/v1/teams/{team_id}"): lambda _: {"name": "stolen"},
    ("PATCH", "/v1/labels/{label_id}"): lambda _: {"name": "stolen"},
    ("POST", "/v1/saved-replies/preview"): lambda ids: {
        "body": "Hi",
        "conversation_id": ids["conversation_id"],
    },
}
"""Bodies for the isolation calls (the default is ``{}``): valid ones, so a call fails on the first
workspace's id and not on the body; a route without path parameters is called only if it is listed
here, with the first workspace's ids in its body. ``/v1/conversations/bulk`` has a test of its own."""


def _build_app(inbox_settings: InboxSettings, ingress_settings: IngressSettings) -> FastAPI:
    """The web app as ``piazza run`` serves it (the ``api`` fixture's), without starting it."""
    from services.inbox.app import component as inbox_component
    from services.ingress.app import component as ingress_component
    from shared.http import build_app

    return build_app("piazza-test", [ingress_component(ingress_settings), inbox_component(inbox_settings)])


def v1_routes(app: FastAPI) -> list[tuple[str, str]]:
    """Every (method, path) of the app's ``/v1`` API routes, routers included."""
    found = set()
    for context in iter_route_contexts(app.routes):
        path = context.path
        if isinstance(context.original_route, APIRoute) and path and path.startswith("/v1"):
            found |= {(method, path) for method in context.methods or ()}
    return sorted(found)


def _routes_of(api: httpx.AsyncClient) -> list[tuple[str, str]]:
    app: FastAPI = api.app  # type: ignore[attr-defined]
    return v1_routes(app)


def test_every_route_is_classified(inbox_settings: InboxSettings, ingress_settings: IngressSettings) -> None:
    routes = v1_routes(_build_app(inbox_settings, ingress_settings))
    assert len(routes) > 40  # the walk found the routers
    unclassified = [f"{method} {path}" for method, path in routes if (method, path) not in ROUTE_ROLES]
    assert not unclassified, (
        "Classify these routes in ROUTE_ROLES (tests/services/inbox/test_route_access.py) with the least "
        "role that may call them (VIEWER, AGENT or ADMIN), and give BODIES a valid body if an empty one "
        f"is refused: {unclassified}"
    )
    gone = [f"{method} {path}" for method, path in ROUTE_ROLES if (method, path) not in routes]
    assert not gone, f"These routes no longer exist: remove them from ROUTE_ROLES: {gone}"


def _fill(path: str, ids: dict[str, str]) -> str:
    for name, value in ids.items():
        path = path.replace("{" + name + "}", value)
    assert "{" not in path, f"{path}: add its path parameter to the ids of this test"
    return path


def _code(response: httpx.Response) -> str | None:
    code = response.json().get("code") if response.headers.get("content-type", "").endswith("json") else None
    return str(code) if code is not None else None


def _dummy_ids() -> dict[str, str]:
    names = ("channel", "conversation", "message", "contact", "identity", "user", "team", "label", "merge")
    ids = {f"{name}_id": str(uuid.uuid4()) for name in names}
    return {**ids, "token_id": str(uuid.uuid4()), "subscription_id": str(uuid.uuid4()),
            "delivery_id": str(uuid.uuid4()), "reply_id": str(uuid.uuid4()), "index": "0"}  # fmt: skip


async def test_each_route_refuses_roles_below_its_minimum(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    workspace = tenant.workspace_id
    callers: dict[Role, list[tuple[str, dict[str, str]]]] = {
        VIEWER: [
            ("viewer user", (await add_user(engine, workspace, VIEWER)).auth),
            ("viewer integration", {"Authorization": f"Bearer {await add_token(engine, workspace, VIEWER)}"}),
        ],
        AGENT: [
            ("agent user", (await add_user(engine, workspace, AGENT)).auth),
            ("agent integration", {"Authorization": f"Bearer {await add_token(engine, workspace, AGENT)}"}),
        ],
        ADMIN: [
            ("admin user", (await add_user(engine, workspace, ADMIN)).auth),
            ("admin integration", tenant.auth),
        ],
    }
    ids = _dummy_ids()
    problems: list[str] = []
    for method, path in _routes_of(api):
        if (method, path) not in ROUTE_ROLES:
            problems.append(f"{method} {path}: unclassified, add it to ROUTE_ROLES")
            continue
        minimum = ROUTE_ROLES[(method, path)]
        url = _fill(path, ids)
        for role, tokens in callers.items():
            if RANK[role] > RANK[minimum] or ((method, path) in NOT_CALLED and RANK[role] >= RANK[minimum]):
                continue
            for who, headers in tokens:
                response = await api.request(method, url, json={}, headers=headers)
                if RANK[role] < RANK[minimum]:
                    if response.status_code != 403 or _code(response) != "forbidden":
                        problems.append(f"{method} {path} as {who}: {response.status_code}, wanted 403")
                elif (
                    response.status_code == 403
                    and who.endswith("integration")
                    and _code(response) == "user_required"
                ):
                    pass  # acting as a person (claims, read state) needs a user's token, whatever the role
                elif response.status_code in (401, 403) or response.status_code >= 500:
                    problems.append(f"{method} {path} as {who}: {response.status_code} {response.text[:200]}")
    assert not problems, "\n".join(problems)


async def _first_workspace(api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant) -> dict[str, str]:
    """Something of every kind in the tenant's workspace, by path parameter name."""
    channel = await make_channel(api, tenant)
    first = message_event(thread="isolated", author="author-a", text="original")
    reply = message_event(thread="isolated", author="author-b", text="reply", reply_to=first["id"])
    assert (await send_events(api, channel, [first, reply])).status_code == 202

    async def stored() -> list[dict[str, Any]] | None:
        messages = await conversation_messages(api, tenant, channel.id, "isolated")
        return messages if len(messages) == 2 else None

    message, answer = await wait_for(stored)
    agent = await add_user(engine, tenant.workspace_id, AGENT)
    team = await api.post(
        "/v1/teams", json={"name": "Isolated", "member_ids": [str(agent.user_id)]}, headers=tenant.auth
    )
    label = await api.post("/v1/labels", json={"name": "isolated"}, headers=tenant.auth)
    token = await api.post(
        f"/v1/users/{agent.user_id}/tokens", json={"name": "isolated"}, headers=tenant.auth
    )
    saved = await api.post(
        "/v1/saved-replies",
        json={"shortcut": "isolated", "title": "Isolated", "body": "Hi"},
        headers=tenant.auth,
    )
    subscription = await api.post(
        "/v1/webhook-subscriptions",
        json={"url": "http://127.0.0.1:9/hook", "enabled": False},
        headers=tenant.auth,
    )
    for created in (team, label, token, saved, subscription):
        assert created.status_code == 201, created.text
    return {
        "channel_id": channel.id,
        "conversation_id": message["conversation_id"],
        "message_id": message["id"],
        "contact_id": message["author"]["contact_id"],
        "other_contact_id": answer["author"]["contact_id"],
        "identity_id": message["author"]["identity_id"],
        "user_id": str(agent.user_id),
        "team_id": team.json()["id"],
        "label_id": label.json()["id"],
        "token_id": token.json()["id"],
        "subscription_id": subscription.json()["id"],
        "reply_id": saved.json()["id"],
        "merge_id": str(uuid.uuid4()),  # no merge in the first workspace either
        "delivery_id": str(uuid.uuid4()),  # no delivery: the subscription is disabled
        "index": "0",
    }


async def _snapshot(api: httpx.AsyncClient, tenant: Tenant, ids: dict[str, str]) -> dict[str, Any]:
    """What the first workspace's admin sees of its things (that nothing of the other may change)."""
    paths = [
        f"/v1/conversations/{ids['conversation_id']}",
        f"/v1/conversations/{ids['conversation_id']}/messages",
        f"/v1/users/{ids['user_id']}",
        f"/v1/teams/{ids['team_id']}",
        f"/v1/labels/{ids['label_id']}",
        f"/v1/tokens?user_id={ids['user_id']}",
        f"/v1/webhook-subscriptions/{ids['subscription_id']}",
        f"/v1/saved-replies/{ids['reply_id']}",
        f"/v1/contacts/{ids['contact_id']}",
    ]
    shots = {}
    for path in paths:
        response = await api.get(path, headers=tenant.auth)
        assert response.status_code == 200, (path, response.text)
        shots[path] = response.json()
    return shots


async def test_no_route_reaches_another_workspace(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    ids = await _first_workspace(api, engine, tenant)
    before = await _snapshot(api, tenant, ids)
    # An admin user of another workspace: neither a role check nor the need for a user stands in the way.
    other = await add_user(engine, (await make_tenant(engine)).workspace_id, ADMIN)
    secrets = [value for name, value in ids.items() if name.endswith("_id")]
    problems: list[str] = []
    for method, path in _routes_of(api):
        if (method, path) in NOT_CALLED:
            continue
        url = _fill(path, ids)
        body = BODIES.get((method, path), lambda _: {})(ids)
        reaches = "{" in path or (method, path) in BODIES
        if not reaches and method != "GET":
            continue  # creates something in the caller's own workspace
        response = await api.request(method, url, json=body, headers=other.auth)
        if reaches:
            if response.status_code != 404:
                problems.append(f"{method} {path}: {response.status_code}, wanted 404: {response.text[:200]}")
        elif response.status_code != 200 or any(value in response.text for value in secrets):
            problems.append(
                f"{method} {path}: {response.status_code}, shows the other workspace: {response.text[:300]}"
            )
    bulk = await api.post(
        "/v1/conversations/bulk",
        json={"ids": [ids["conversation_id"]], "set": {"status": "resolved"}},
        headers=other.auth,
    )
    assert bulk.status_code == 200, bulk.text
    assert (bulk.json()["updated"], bulk.json()["not_found"]) == (0, [ids["conversation_id"]])
    assert not problems, "\n".join(problems)
    assert await _snapshot(api, tenant, ids) == before
    assert (await api.get("/v1/me", headers=tenant.auth)).status_code == 200
