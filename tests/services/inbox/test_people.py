"""People and roles: the caller, users, their tokens, teams and the label catalogue."""

from __future__ import annotations

import asyncio
import re
import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from piazza.cli import app
from services.inbox.models import ApiToken, AuditEntry
from services.inbox.service.access import Role
from shared.db import session_factory
from tests.support import Tenant, add_token, add_user, make_tenant, unique

pytestmark = pytest.mark.e2e

UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


async def _create_user(
    api: httpx.AsyncClient, tenant: Tenant, role: str = "agent", **fields: Any
) -> dict[str, Any]:
    body = {"name": unique("user"), "role": role, **fields}
    response = await api.post("/v1/users", json=body, headers=tenant.auth)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _audit(engine: AsyncEngine, workspace_id: uuid.UUID) -> list[AuditEntry]:
    async with session_factory(engine)() as session:
        query = (
            select(AuditEntry)
            .where(AuditEntry.workspace_id == workspace_id)
            .order_by(AuditEntry.created_at, AuditEntry.id)
        )
        return list((await session.scalars(query)).all())


# --- GET /v1/me -------------------------------------------------------------------------------------


async def test_me_tells_a_user_who_they_are(api: httpx.AsyncClient, tenant: Tenant) -> None:
    created = await _create_user(api, tenant, email="Ana@Example.com", token_name="laptop")
    token = created["token"]
    team = await api.post("/v1/teams", json={"name": unique("Billing")}, headers=tenant.auth)
    await api.put(f"/v1/teams/{team.json()['id']}/members/{created['id']}", headers=tenant.auth)

    me = await api.get("/v1/me", headers=_bearer(token["token"]))

    assert me.status_code == 200, me.text
    assert me.json() == {
        "user": {"id": created["id"], "name": created["name"], "email": "ana@example.com", "role": "agent"},
        "role": "agent",
        "workspace": {"id": str(tenant.workspace_id), "name": me.json()["workspace"]["name"]},
        "token": {"id": token["id"], "name": "laptop", "hint": token["token"][-4:]},
        "teams": [{"id": team.json()["id"], "name": team.json()["name"]}],
    }
    assert me.json()["workspace"]["name"].startswith("ws-")


async def test_me_of_an_integration_token_has_no_user(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    viewer = await add_token(engine, tenant.workspace_id, Role.VIEWER)
    me = (await api.get("/v1/me", headers=_bearer(viewer))).json()
    assert me["user"] is None
    assert me["role"] == "viewer"
    assert me["teams"] == []
    assert me["token"]["hint"] == viewer[-4:]


# --- users ------------------------------------------------------------------------------------------


async def test_an_admin_adds_a_user_whose_first_token_works_at_once(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    created = await _create_user(api, tenant, role="viewer", token_name="frontend")
    assert created["role"] == "viewer"
    assert created["active"] is True
    assert created["token"]["token"].startswith("pz_")
    assert created["token"]["user"] == {"id": created["id"], "name": created["name"]}
    viewer = _bearer(created["token"]["token"])
    assert (await api.get("/v1/conversations", headers=viewer)).status_code == 200
    refused = await api.post("/v1/labels", json={"name": "x"}, headers=viewer)
    assert refused.status_code == 403
    assert refused.json()["code"] == "forbidden"
    # Without token_name, no token is issued.
    assert (await _create_user(api, tenant))["token"] is None
    # The plain token is never stored, never audited.
    entries = await _audit(engine, tenant.workspace_id)
    # One request, one time: the user and their first token are recorded at the same instant.
    assert sorted(e.action for e in entries) == ["token.created", "user.created", "user.created"]
    [added] = [e for e in entries if e.action == "user.created" and e.target_id == created["id"]]
    assert added.after == {"name": created["name"], "email": None, "role": "viewer", "active": True}
    assert added.before is None
    assert created["token"]["token"] not in str([(e.before, e.after, e.detail) for e in entries])


async def test_users_are_listed_by_name_filtered_and_paged(
    api: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    tenant = await make_tenant(engine)
    names = [f"user-{i:02d}" for i in range(7)]
    for i, name in enumerate(reversed(names)):
        await _create_user(api, tenant, role="viewer" if i % 2 else "agent", name=name)
    [gone] = [
        u for u in (await api.get("/v1/users", headers=tenant.auth)).json()["data"] if u["name"] == names[3]
    ]
    # Deactivating an agent needs no other admin: only admins are protected.
    assert (
        await api.patch(f"/v1/users/{gone['id']}", json={"active": False}, headers=tenant.auth)
    ).status_code == 200

    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/users", params=params, headers=tenant.auth)).json()
        seen += [u["name"] for u in page["data"]]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert seen == names

    agent = await add_user(engine, tenant.workspace_id, Role.AGENT, name="user-99")
    viewer = await add_user(engine, tenant.workspace_id, Role.VIEWER, name="user-98")
    for caller in (agent, viewer):  # every role may list people (assignee pickers)
        listed = await api.get("/v1/users", params={"role": "viewer", "active": "true"}, headers=caller.auth)
        assert listed.status_code == 200
        data = listed.json()["data"]
        assert all(u["role"] == "viewer" and u["active"] for u in data)
        assert gone["name"] not in [u["name"] for u in data]
    inactive = await api.get("/v1/users", params={"active": "false"}, headers=agent.auth)
    assert [u["name"] for u in inactive.json()["data"]] == [gone["name"]]
    one = await api.get(f"/v1/users/{viewer.user_id}", headers=agent.auth)
    assert one.json()["name"] == "user-98"
    bad = await api.get("/v1/users", params={"cursor": "nope"}, headers=agent.auth)
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid_cursor"


async def test_users_of_another_workspace_are_not_found(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    other = await make_tenant(engine)
    stranger = await add_user(engine, other.workspace_id, Role.AGENT)
    for method, path, body in [
        ("GET", f"/v1/users/{stranger.user_id}", None),
        ("PATCH", f"/v1/users/{stranger.user_id}", {"name": "mine now"}),
        ("POST", f"/v1/users/{stranger.user_id}/tokens", {"name": "x"}),
    ]:
        response = await api.request(method, path, json=body, headers=tenant.auth)
        assert response.status_code == 404, (method, path)
        assert response.json()["code"] == "user_not_found"
    listed = (await api.get("/v1/users", headers=tenant.auth)).json()["data"]
    assert stranger.name not in [u["name"] for u in listed]


async def test_emails_are_unique_per_workspace_whatever_their_case(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    first = await _create_user(api, tenant, email="team@shop.example")
    again = await api.post(
        "/v1/users", json={"name": "Twin", "email": "TEAM@shop.example"}, headers=tenant.auth
    )
    assert again.status_code == 409
    assert again.json()["code"] == "email_taken"
    second = await _create_user(api, tenant, email="other@shop.example")
    clash = await api.patch(
        f"/v1/users/{second['id']}", json={"email": "Team@Shop.example"}, headers=tenant.auth
    )
    assert clash.status_code == 409
    cleared = await api.patch(f"/v1/users/{first['id']}", json={"email": None}, headers=tenant.auth)
    assert cleared.json()["email"] is None
    # Another workspace may have the same address.
    other = await make_tenant(engine)
    await _create_user(api, other, email="team@shop.example")


@pytest.mark.parametrize(
    "body",
    [
        {"role": "agent"},
        {"name": "x", "role": "owner"},
        {"name": "x", "email": "not-an-email"},
        {"name": " "},
        {"name": "x", "extra": 1},
        {"name": "x", "token_name": ""},
    ],
)
async def test_bad_user_requests_are_400(
    api: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any]
) -> None:
    response = await api.post("/v1/users", json=body, headers=tenant.auth)
    assert response.status_code == 400
    assert response.json()["code"] == "validation_failed"


async def test_a_new_role_applies_to_the_users_tokens_at_once(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    await add_user(engine, tenant.workspace_id, Role.ADMIN)  # so the agent may be admin and step down
    agent = await add_user(engine, tenant.workspace_id, Role.AGENT)
    assert (await api.get("/v1/me", headers=agent.auth)).json()["role"] == "agent"  # now cached
    assert (await api.post("/v1/labels", json={"name": unique("l")}, headers=agent.auth)).status_code == 403

    promoted = await api.patch(f"/v1/users/{agent.user_id}", json={"role": "admin"}, headers=tenant.auth)

    assert promoted.json()["role"] == "admin"
    assert (await api.get("/v1/me", headers=agent.auth)).json()["role"] == "admin"
    assert (await api.post("/v1/labels", json={"name": unique("l")}, headers=agent.auth)).status_code == 201
    demoted = await api.patch(f"/v1/users/{agent.user_id}", json={"role": "viewer"}, headers=tenant.auth)
    assert demoted.json()["role"] == "viewer"
    me = (await api.get("/v1/me", headers=agent.auth)).json()
    assert me["role"] == me["user"]["role"] == "viewer"
    [*_, entry] = await _audit(engine, tenant.workspace_id)
    assert entry.action == "user.updated"
    assert (entry.before["role"], entry.after["role"]) == ("admin", "viewer")  # type: ignore[index]


async def test_a_deactivated_user_is_locked_out_at_once_and_can_come_back(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    agent = await add_user(engine, tenant.workspace_id, Role.AGENT)
    assert (await api.get("/v1/me", headers=agent.auth)).status_code == 200  # cached

    gone = await api.patch(f"/v1/users/{agent.user_id}", json={"active": False}, headers=tenant.auth)

    assert gone.json()["active"] is False
    assert gone.json()["deactivated_at"] is not None
    refused = await api.get("/v1/me", headers=agent.auth)
    assert refused.status_code == 401
    no_token = await api.post(f"/v1/users/{agent.user_id}/tokens", json={"name": "x"}, headers=tenant.auth)
    assert no_token.status_code == 409
    assert no_token.json()["code"] == "user_deactivated"
    # Still listed (assignments and history keep their name), flagged inactive.
    assert (await api.get(f"/v1/users/{agent.user_id}", headers=tenant.auth)).json()["active"] is False

    back = await api.patch(f"/v1/users/{agent.user_id}", json={"active": True}, headers=tenant.auth)

    assert back.json()["active"] is True
    assert (await api.get("/v1/me", headers=agent.auth)).status_code == 200
    actions = [e.action for e in await _audit(engine, tenant.workspace_id)]
    assert actions == ["user.deactivated", "user.reactivated"]


async def test_the_last_active_admin_stays_an_admin(api: httpx.AsyncClient, engine: AsyncEngine) -> None:
    tenant = await make_tenant(engine)
    admin = await add_user(engine, tenant.workspace_id, Role.ADMIN)
    for change in ({"role": "agent"}, {"active": False}, {"role": "viewer", "active": False}):
        refused = await api.patch(f"/v1/users/{admin.user_id}", json=change, headers=admin.auth)
        assert refused.status_code == 409, change
        assert refused.json()["code"] == "last_admin"
    # An admin who is deactivated does not count.
    other = await add_user(engine, tenant.workspace_id, Role.ADMIN)
    await api.patch(f"/v1/users/{other.user_id}", json={"active": False}, headers=admin.auth)
    refused = await api.patch(f"/v1/users/{admin.user_id}", json={"role": "agent"}, headers=admin.auth)
    assert refused.status_code == 409
    # With another active admin, an admin may step down (and then loses admin rights at once).
    await api.patch(f"/v1/users/{other.user_id}", json={"active": True}, headers=admin.auth)
    stepped_down = await api.patch(f"/v1/users/{admin.user_id}", json={"role": "agent"}, headers=admin.auth)
    assert stepped_down.status_code == 200
    assert stepped_down.json()["role"] == "agent"
    assert (await api.get("/v1/tokens", headers=admin.auth)).status_code == 403
    refused = await api.patch(f"/v1/users/{other.user_id}", json={"active": False}, headers=other.auth)
    assert refused.status_code == 409


async def test_agents_and_viewers_cannot_manage_people(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    target = await add_user(engine, tenant.workspace_id, Role.AGENT)
    for role in (Role.AGENT, Role.VIEWER):
        caller = await add_user(engine, tenant.workspace_id, role)
        for method, path, body in [
            ("POST", "/v1/users", {"name": "x"}),
            ("PATCH", f"/v1/users/{target.user_id}", {"role": "admin"}),
            ("PATCH", f"/v1/users/{caller.user_id}", {"role": "admin"}),  # not even themselves
            ("POST", f"/v1/users/{caller.user_id}/tokens", {"name": "mine"}),
            ("GET", "/v1/tokens", None),
            ("DELETE", f"/v1/tokens/{uuid.uuid4()}", None),
            ("POST", "/v1/teams", {"name": "x"}),
            ("POST", "/v1/labels", {"name": "x"}),
        ]:
            response = await api.request(method, path, json=body, headers=caller.auth)
            assert response.status_code == 403, (role, method, path)
    assert (await api.get(f"/v1/users/{target.user_id}", headers=tenant.auth)).json()["role"] == "agent"


# --- tokens -----------------------------------------------------------------------------------------


async def test_tokens_are_issued_once_listed_without_values_and_revoked_at_once(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    user = await _create_user(api, tenant)
    issued = await api.post(f"/v1/users/{user['id']}/tokens", json={"name": "phone"}, headers=tenant.auth)
    assert issued.status_code == 201, issued.text
    token = issued.json()
    assert token["token"].startswith("pz_")
    assert token["hint"] == token["token"][-4:]
    assert token["role"] == "agent"
    assert (await api.get("/v1/me", headers=_bearer(token["token"]))).status_code == 200  # cached

    listed = await api.get("/v1/tokens", headers=tenant.auth)
    assert listed.status_code == 200
    [mine] = [t for t in listed.json()["data"] if t["id"] == token["id"]]
    assert mine == {
        "id": token["id"],
        "name": "phone",
        "role": "agent",
        "user": {"id": user["id"], "name": user["name"]},
        "hint": token["token"][-4:],
        "created_at": token["created_at"],
        "revoked_at": None,
    }
    async with session_factory(engine)() as session:
        stored = await session.get(ApiToken, uuid.UUID(token["id"]))
    assert stored is not None
    assert token["token"] not in listed.text
    assert stored.token_hash not in listed.text
    integration = [t for t in listed.json()["data"] if t["user"] is None]
    assert [t["role"] for t in integration] == ["admin"]  # the tenant's own token
    by_user = await api.get("/v1/tokens", params={"user_id": user["id"]}, headers=tenant.auth)
    assert [t["id"] for t in by_user.json()["data"]] == [token["id"]]

    revoked = await api.delete(f"/v1/tokens/{token['id']}", headers=tenant.auth)

    assert revoked.status_code == 204
    assert (await api.get("/v1/me", headers=_bearer(token["token"]))).status_code == 401
    assert (await api.delete(f"/v1/tokens/{token['id']}", headers=tenant.auth)).status_code == 204
    after = (await api.get("/v1/tokens", params={"user_id": user["id"]}, headers=tenant.auth)).json()
    assert after["data"][0]["revoked_at"] is not None
    entries = await _audit(engine, tenant.workspace_id)
    assert [e.action for e in entries] == ["user.created", "token.created", "token.revoked"]
    assert entries[-1].before == {"name": "phone", "user_id": user["id"], "role": "agent", "revoked": False}
    assert entries[-1].after == {**entries[-1].before, "revoked": True}


async def test_tokens_of_another_workspace_cannot_be_seen_or_revoked(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    other = await make_tenant(engine)
    theirs = (await api.get("/v1/tokens", headers=other.auth)).json()["data"]
    [their_token] = theirs
    missing = await api.delete(f"/v1/tokens/{their_token['id']}", headers=tenant.auth)
    assert missing.status_code == 404
    assert missing.json()["code"] == "token_not_found"
    assert (await api.get("/v1/me", headers=other.auth)).status_code == 200
    mine = (await api.get("/v1/tokens", headers=tenant.auth)).json()["data"]
    assert their_token["id"] not in [t["id"] for t in mine]


async def test_tokens_page_newest_first(api: httpx.AsyncClient, engine: AsyncEngine) -> None:
    tenant = await make_tenant(engine)
    user = await _create_user(api, tenant)
    ids = [
        (
            await api.post(f"/v1/users/{user['id']}/tokens", json={"name": f"t{i}"}, headers=tenant.auth)
        ).json()["id"]
        for i in range(5)
    ]
    seen: list[str] = []
    cursor = None
    while True:
        params: dict[str, Any] = {"limit": 2, "user_id": user["id"], **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/tokens", params=params, headers=tenant.auth)).json()
        seen += [t["id"] for t in page["data"]]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert sorted(seen) == sorted(ids)
    assert len(seen) == 5


# --- teams ------------------------------------------------------------------------------------------


async def test_teams_with_their_members(api: httpx.AsyncClient, engine: AsyncEngine) -> None:
    tenant = await make_tenant(engine)
    ana = await add_user(engine, tenant.workspace_id, Role.AGENT, name="Ana")
    bo = await add_user(engine, tenant.workspace_id, Role.VIEWER, name="Bo")
    created = await api.post(
        "/v1/teams",
        json={"name": "Support", "member_ids": [str(bo.user_id), str(ana.user_id)]},
        headers=tenant.auth,
    )
    assert created.status_code == 201, created.text
    assert created.headers["location"] == f"/v1/teams/{created.json()['id']}"
    team_id = created.json()["id"]
    assert [m["name"] for m in created.json()["members"]] == ["Ana", "Bo"]
    await api.post("/v1/teams", json={"name": "Billing"}, headers=tenant.auth)

    listed = await api.get("/v1/teams", headers=bo.auth)  # every role reads the catalogue
    assert [(t["name"], len(t["members"])) for t in listed.json()["data"]] == [("Billing", 0), ("Support", 2)]
    clash = await api.post("/v1/teams", json={"name": "support"}, headers=tenant.auth)
    assert clash.status_code == 409
    assert clash.json()["code"] == "team_name_taken"
    renamed = await api.patch(f"/v1/teams/{team_id}", json={"name": "Customer care"}, headers=tenant.auth)
    assert renamed.json()["name"] == "Customer care"
    assert (
        await api.patch(f"/v1/teams/{team_id}", json={"name": "BILLING"}, headers=tenant.auth)
    ).status_code == 409

    removed = await api.delete(f"/v1/teams/{team_id}/members/{ana.user_id}", headers=tenant.auth)
    assert removed.status_code == 204
    assert (
        await api.delete(f"/v1/teams/{team_id}/members/{ana.user_id}", headers=tenant.auth)
    ).status_code == 404
    assert (await api.get("/v1/me", headers=ana.auth)).json()["teams"] == []
    for _ in range(2):  # adding is idempotent
        added = await api.put(f"/v1/teams/{team_id}/members/{ana.user_id}", headers=tenant.auth)
        assert [m["name"] for m in added.json()["members"]] == ["Ana", "Bo"]
    assert (await api.get("/v1/me", headers=ana.auth)).json()["teams"] == [
        {"id": team_id, "name": "Customer care"}
    ]

    assert (await api.delete(f"/v1/teams/{team_id}", headers=tenant.auth)).status_code == 204
    assert (await api.get(f"/v1/teams/{team_id}", headers=tenant.auth)).status_code == 404
    assert (await api.get("/v1/me", headers=ana.auth)).json()["teams"] == []
    actions = [e.action for e in await _audit(engine, tenant.workspace_id)]
    assert actions == [
        "team.created",
        "team.created",
        "team.updated",
        "team.member_removed",
        "team.member_added",
        "team.deleted",
    ]


async def test_teams_and_people_of_another_workspace_stay_apart(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    other = await make_tenant(engine)
    stranger = await add_user(engine, other.workspace_id, Role.AGENT)
    theirs = (await api.post("/v1/teams", json={"name": "Theirs"}, headers=other.auth)).json()
    mine = (
        await api.post("/v1/teams", json={"name": "Theirs"}, headers=tenant.auth)
    ).json()  # same name: fine
    assert (
        await api.put(f"/v1/teams/{mine['id']}/members/{stranger.user_id}", headers=tenant.auth)
    ).status_code == 404
    refused = await api.post(
        "/v1/teams", json={"name": "x", "member_ids": [str(stranger.user_id)]}, headers=tenant.auth
    )
    assert refused.status_code == 404
    assert refused.json()["code"] == "user_not_found"
    for method, path in [
        ("GET", f"/v1/teams/{theirs['id']}"),
        ("PATCH", f"/v1/teams/{theirs['id']}"),
        ("DELETE", f"/v1/teams/{theirs['id']}"),
        ("PUT", f"/v1/teams/{theirs['id']}/members/{stranger.user_id}"),
        ("DELETE", f"/v1/teams/{theirs['id']}/members/{stranger.user_id}"),
    ]:
        response = await api.request(method, path, json={"name": "mine"}, headers=tenant.auth)
        assert response.status_code == 404, (method, path)
        assert response.json()["code"] == "team_not_found"
    assert [t["id"] for t in (await api.get("/v1/teams", headers=tenant.auth)).json()["data"]] == [mine["id"]]


# --- labels -----------------------------------------------------------------------------------------


async def test_the_label_catalogue(api: httpx.AsyncClient, engine: AsyncEngine) -> None:
    tenant = await make_tenant(engine)
    viewer = await add_user(engine, tenant.workspace_id, Role.VIEWER)
    bug = await api.post(
        "/v1/labels",
        json={"name": "Bug", "color": "#D93F0B", "description": "Broken things"},
        headers=tenant.auth,
    )
    assert bug.status_code == 201, bug.text
    assert bug.json()["color"] == "#d93f0b"
    assert bug.headers["location"] == f"/v1/labels/{bug.json()['id']}"
    await api.post("/v1/labels", json={"name": "access"}, headers=tenant.auth)
    listed = (await api.get("/v1/labels", headers=viewer.auth)).json()["data"]
    assert [(label["name"], label["color"]) for label in listed] == [("access", None), ("Bug", "#d93f0b")]
    for name in ("bug", "BUG", " Bug "):
        clash = await api.post("/v1/labels", json={"name": name}, headers=tenant.auth)
        assert clash.status_code == 409, name
        assert clash.json()["code"] == "label_name_taken"
    label_id = bug.json()["id"]
    assert (
        await api.patch(f"/v1/labels/{label_id}", json={"name": "ACCESS"}, headers=tenant.auth)
    ).status_code == 409
    recased = await api.patch(f"/v1/labels/{label_id}", json={"name": "bug"}, headers=tenant.auth)
    assert recased.json()["name"] == "bug"  # its own name in another case is fine
    cleared = await api.patch(f"/v1/labels/{label_id}", json={"color": None}, headers=tenant.auth)
    assert cleared.json() | {"updated_at": None} == {
        **bug.json(),
        "name": "bug",
        "color": None,
        "updated_at": None,
    }
    assert (await api.get(f"/v1/labels/{label_id}", headers=viewer.auth)).json()["color"] is None

    assert (await api.delete(f"/v1/labels/{label_id}", headers=tenant.auth)).status_code == 204
    assert (await api.get(f"/v1/labels/{label_id}", headers=tenant.auth)).status_code == 404
    assert (await api.delete(f"/v1/labels/{label_id}", headers=tenant.auth)).status_code == 404
    entries = await _audit(engine, tenant.workspace_id)
    assert [e.action for e in entries] == [
        "label.created",
        "label.created",
        "label.updated",
        "label.updated",
        "label.deleted",
    ]
    assert entries[3].before == {"name": "bug", "color": "#d93f0b", "description": "Broken things"}
    assert entries[3].after == {"name": "bug", "color": None, "description": "Broken things"}
    assert entries[4].before == entries[3].after


@pytest.mark.parametrize(
    "body",
    [
        {"name": ""},
        {"name": "x" * 65},
        {"name": "x", "color": "red"},
        {"name": "x", "color": "#12345"},
        {"name": "x", "color": "#1234567"},
        {"name": "x", "color": "#gggggg"},
        {"name": "tab\there"},
        {"name": "x", "colour": "#ffffff"},
    ],
)
async def test_bad_labels_are_refused(api: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any]) -> None:
    response = await api.post("/v1/labels", json=body, headers=tenant.auth)
    assert response.status_code == 400
    assert response.json()["code"] == "validation_failed"


async def test_labels_of_another_workspace_stay_apart(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    other = await make_tenant(engine)
    theirs = (await api.post("/v1/labels", json={"name": "vip"}, headers=other.auth)).json()
    assert (await api.post("/v1/labels", json={"name": "VIP"}, headers=tenant.auth)).status_code == 201
    for method in ("GET", "PATCH", "DELETE"):
        response = await api.request(
            method, f"/v1/labels/{theirs['id']}", json={"name": "x"}, headers=tenant.auth
        )
        assert response.status_code == 404
        assert response.json()["code"] == "label_not_found"
    assert [label["name"] for label in (await api.get("/v1/labels", headers=other.auth)).json()["data"]] == [
        "vip"
    ]


# --- CLI --------------------------------------------------------------------------------------------


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("PIAZZA_LOG_LEVEL", "WARNING")
    return CliRunner()


async def test_piazza_user_create_prints_the_user_and_a_token(
    cli: CliRunner, api: httpx.AsyncClient, tenant: Tenant
) -> None:
    result = await asyncio.to_thread(
        cli.invoke,
        app,
        [
            "user",
            "create",
            "Ana Lima",
            "--role",
            "viewer",
            "--email",
            "ana@x.example",
            "--workspace",
            str(tenant.workspace_id),
        ],
    )
    assert result.exit_code == 0, result.output
    user_id, token = result.output.split()
    assert UUID_PATTERN.fullmatch(user_id)
    me = (await api.get("/v1/me", headers=_bearer(token))).json()
    assert me["user"] == {"id": user_id, "name": "Ana Lima", "email": "ana@x.example", "role": "viewer"}
    assert me["workspace"]["id"] == str(tenant.workspace_id)
    again = await asyncio.to_thread(
        cli.invoke,
        app,
        ["user", "create", "Twin", "--email", "ANA@x.example", "--workspace", str(tenant.workspace_id)],
    )
    assert again.exit_code != 0
    assert "ana@x.example" in again.output


def test_piazza_user_create_refuses_bad_input(cli: CliRunner) -> None:
    unknown = cli.invoke(app, ["user", "create", "X", "--workspace", str(uuid.uuid4())])
    assert unknown.exit_code != 0
    assert "does not exist" in unknown.output
    role = cli.invoke(app, ["user", "create", "X", "--role", "owner", "--workspace", str(uuid.uuid4())])
    assert role.exit_code != 0
    assert "admin, agent or viewer" in role.output
