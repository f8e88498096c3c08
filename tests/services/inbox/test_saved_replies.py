"""Saved replies through the API: keeping them, checking their placeholders, and previewing them."""

from __future__ import annotations

import uuid
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.inbox.models import AuditEntry, Workspace
from services.inbox.service.access import Role
from shared.db import session_factory
from tests.support import (
    Channel,
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

GREETING = (
    'Hi {{ contact.first_name | default("there") }}, {{agent.first_name}} from {{ workspace.name }} here.'
)


async def _create(api: httpx.AsyncClient, who: Tenant, **body: Any) -> dict[str, Any]:
    response = await api.post("/v1/saved-replies", json=body, headers=who.auth)
    assert response.status_code == 201, response.text
    created: dict[str, Any] = response.json()
    return created


async def _conversation(
    api: httpx.AsyncClient, tenant: Tenant, channel: Channel, thread: str, events: list[dict[str, Any]]
) -> dict[str, Any]:
    assert (await send_events(api, channel, events)).status_code == 202

    async def stored() -> list[dict[str, Any]] | None:
        messages = await conversation_messages(api, tenant, channel.id, thread)
        return messages if len(messages) == len(events) else None

    messages = await wait_for(stored)
    return messages[0]


async def _workspace_name(engine: AsyncEngine, tenant: Tenant) -> str:
    async with session_factory(engine)() as session:
        name = await session.scalar(select(Workspace.name).where(Workspace.id == tenant.workspace_id))
    assert name is not None
    return name


async def test_keep_find_change_and_delete_saved_replies(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    agent = await add_user(engine, tenant.workspace_id, Role.AGENT)
    thanks = await _create(api, agent, shortcut=" Thanks ", title="Thank you", body=GREETING)
    assert thanks["shortcut"] == "thanks"
    assert thanks["placeholders"] == ["contact.first_name", "agent.first_name", "workspace.name"]
    assert thanks["created_by_user_id"] == str(agent.user_id)
    refund = await _create(api, tenant, shortcut="refund", title="Refunds", body="Your refund is on its way.")
    assert refund["created_by_user_id"] is None  # an integration's token acts for no user
    await _create(
        api, agent, shortcut="away", title="Out of office", body="Back on Monday, {{ contact.name }}!"
    )

    taken = await api.post(
        "/v1/saved-replies", json={"shortcut": "THANKS", "title": "x", "body": "y"}, headers=agent.auth
    )
    assert (taken.status_code, taken.json()["code"]) == (409, "shortcut_taken")

    listed = (await api.get("/v1/saved-replies", headers=agent.auth)).json()
    assert [r["shortcut"] for r in listed["data"]] == ["away", "refund", "thanks"]
    first = (await api.get("/v1/saved-replies", params={"limit": 2}, headers=agent.auth)).json()
    rest = (
        await api.get(
            "/v1/saved-replies", params={"limit": 2, "cursor": first["next_cursor"]}, headers=agent.auth
        )
    ).json()
    assert [r["shortcut"] for r in first["data"] + rest["data"]] == ["away", "refund", "thanks"]
    assert (first["has_more"], rest["has_more"]) == (True, False)
    for q, expected in (("REFUND", ["refund"]), ("monday", ["away"]), ("office", ["away"]), ("%", [])):
        found = (await api.get("/v1/saved-replies", params={"q": q}, headers=agent.auth)).json()
        assert [r["shortcut"] for r in found["data"]] == expected, q

    changed = await api.patch(
        f"/v1/saved-replies/{thanks['id']}",
        json={"title": "Thanks!", "body": "Thanks, {{ contact.name }}."},
        headers=agent.auth,
    )
    assert changed.status_code == 200, changed.text
    assert (changed.json()["title"], changed.json()["shortcut"]) == ("Thanks!", "thanks")
    assert changed.json()["placeholders"] == ["contact.name"]
    assert (await api.get(f"/v1/saved-replies/{thanks['id']}", headers=agent.auth)).json() == changed.json()
    clash = await api.patch(
        f"/v1/saved-replies/{thanks['id']}", json={"shortcut": "refund"}, headers=agent.auth
    )
    assert (clash.status_code, clash.json()["code"]) == (409, "shortcut_taken")
    assert (await api.get(f"/v1/saved-replies/{thanks['id']}", headers=agent.auth)).json() == changed.json()

    deleted = await api.delete(f"/v1/saved-replies/{refund['id']}", headers=agent.auth)
    assert deleted.status_code == 204
    gone = await api.get(f"/v1/saved-replies/{refund['id']}", headers=agent.auth)
    assert (gone.status_code, gone.json()["code"]) == (404, "saved_reply_not_found")
    assert (await api.delete(f"/v1/saved-replies/{refund['id']}", headers=agent.auth)).status_code == 404

    async with session_factory(engine)() as session:
        entries = (
            await session.scalars(
                select(AuditEntry)
                .where(
                    AuditEntry.workspace_id == tenant.workspace_id, AuditEntry.target_type == "saved_reply"
                )
                .order_by(AuditEntry.created_at)
            )
        ).all()
    assert [(e.action, e.target_id) for e in entries] == [
        ("saved_reply.create", thanks["id"]),
        ("saved_reply.create", refund["id"]),
        ("saved_reply.create", entries[2].target_id),
        ("saved_reply.update", thanks["id"]),
        ("saved_reply.delete", refund["id"]),
    ]
    assert entries[3].before == {"title": "Thank you", "body": GREETING}
    assert entries[3].actor_user_id == agent.user_id


@pytest.mark.parametrize(
    ("body", "problem"),
    [
        ("Hi {{ contact.age }}", {"line": 1, "placeholder": "contact.age", "message": "unknown placeholder"}),
        (
            "Hi\n{{ customer.name }}",
            {"line": 2, "placeholder": "customer.name", "message": "unknown placeholder"},
        ),
        ("Hi {{ contact }}", {"line": 1, "placeholder": "contact", "message": "unknown placeholder"}),
        ("Hi {{ contact.name", {"line": 1}),
        ("{% if contact.name %}Hi{% endif %}", {"line": 1}),
        ("Hi {{ contact.name | upper }}", {"line": 1, "placeholder": "contact.name"}),
        ("Hi {{ contact.name | default(42) }}", {"line": 1, "placeholder": "contact.name"}),
        ("Hi {{ contact.name.__class__ }}", {"line": 1, "placeholder": "contact.name.__class__"}),
        ("Hi {{ contact['name'] }}", {"line": 1}),
        ("Hi {{ 1 + 2 }}", {"line": 1}),
    ],
)
async def test_templates_that_are_refused(
    api: httpx.AsyncClient, tenant: Tenant, body: str, problem: dict[str, Any]
) -> None:
    existing = await _create(api, tenant, shortcut=f"ok-{uuid.uuid4().hex[:8]}", title="ok", body="fine")
    attempts = [
        await api.post(
            "/v1/saved-replies", json={"shortcut": "refused", "title": "x", "body": body}, headers=tenant.auth
        ),
        await api.patch(f"/v1/saved-replies/{existing['id']}", json={"body": body}, headers=tenant.auth),
        await api.post("/v1/saved-replies/preview", json={"body": body}, headers=tenant.auth),
    ]
    for response in attempts:
        assert response.status_code == 400, response.text
        answer = response.json()
        assert answer["code"] == "invalid_template"
        [reported] = answer["errors"]
        assert problem.items() <= reported.items()
        if "placeholder" in problem and problem.get("message") == "unknown placeholder":
            assert problem["placeholder"] in answer["detail"]
            assert "contact.first_name" in answer["detail"]  # the known ones are named
    assert (await api.get(f"/v1/saved-replies/{existing['id']}", headers=tenant.auth)).json()[
        "body"
    ] == "fine"
    listed = (await api.get("/v1/saved-replies", headers=tenant.auth)).json()["data"]
    assert [r["shortcut"] for r in listed] == [existing["shortcut"]]


async def test_preview_fills_placeholders_from_the_conversation(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    agent = await add_user(engine, tenant.workspace_id, Role.AGENT, name="Giulia Bianchi")
    channel = await make_channel(api, tenant, "Support site")
    opening = message_event(thread="order-7", author="u-1")
    opening["author"] = {"id": "u-1", "name": "Marta Rossi"}
    opening["thread"] = {"id": "order-7", "title": "Order #7"}
    answer = message_event(thread="order-7", author="u-2")
    answer["author"] = {"id": "u-2", "name": "Someone Else"}
    first = await _conversation(api, tenant, channel, "order-7", [opening, answer])
    reply = await _create(
        api,
        agent,
        shortcut="full",
        title="Everything",
        body=(
            "{{contact.name}}|{{contact.first_name}}|{{agent.name}}|{{agent.first_name}}|"
            "{{conversation.id}}|{{conversation.title}}|{{channel.name}}|{{workspace.name}}"
        ),
    )
    workspace = await _workspace_name(engine, tenant)

    response = await api.post(
        f"/v1/saved-replies/{reply['id']}/preview",
        json={"conversation_id": first["conversation_id"]},
        headers=agent.auth,
    )

    assert response.status_code == 200, response.text
    preview = response.json()
    assert preview["text"] == (
        f"Marta Rossi|Marta|Giulia Bianchi|Giulia|{first['conversation_id']}|Order #7|Support site|{workspace}"
    )
    assert (preview["missing"], preview["defaulted"]) == ([], [])
    assert preview["contact_id"] == first["author"]["contact_id"]
    assert preview["used"] == reply["placeholders"]

    # The contact's own name, once an agent set it, wins over the platform's.
    renamed = await api.patch(
        f"/v1/contacts/{first['author']['contact_id']}", json={"name": "Dott.ssa Rossi"}, headers=agent.auth
    )
    assert renamed.status_code == 200, renamed.text
    draft = await api.post(
        "/v1/saved-replies/preview",
        json={"body": GREETING, "conversation_id": first["conversation_id"]},
        headers=agent.auth,
    )
    assert draft.json()["text"] == f"Hi Dott.ssa, Giulia from {workspace} here."


async def test_preview_reports_missing_values_and_uses_fallbacks(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    channel = await make_channel(api, tenant)
    untitled = await _conversation(api, tenant, channel, "plain", [message_event(thread="plain")])
    integration = Tenant(tenant.workspace_id, await add_token(engine, tenant.workspace_id, Role.AGENT))
    body = 'Dear {{ contact.first_name | default("customer") }}, re "{{ conversation.title }}" -- {{ agent.name }}'
    workspace = await _workspace_name(engine, tenant)

    without_conversation = await api.post(
        "/v1/saved-replies/preview", json={"body": body}, headers=integration.auth
    )
    assert without_conversation.status_code == 200, without_conversation.text
    assert without_conversation.json() == {
        "text": 'Dear customer, re "" -- ',
        "used": ["contact.first_name", "conversation.title", "agent.name"],
        "missing": ["conversation.title", "agent.name"],
        "defaulted": ["contact.first_name"],
        "conversation_id": None,
        "contact_id": None,
    }
    with_conversation = await api.post(
        "/v1/saved-replies/preview",
        json={"body": body + " ({{ workspace.name }})", "conversation_id": untitled["conversation_id"]},
        headers=integration.auth,
    )
    assert with_conversation.json()["text"] == f'Dear Author-1, re "" --  ({workspace})'
    assert with_conversation.json()["missing"] == ["conversation.title", "agent.name"]
    assert with_conversation.json()["defaulted"] == []
    literal = await api.post(
        "/v1/saved-replies/preview",
        json={"body": 'Use {{ "{{" }}braces}} freely\n'},
        headers=integration.auth,
    )
    assert literal.json()["text"] == "Use {{braces}} freely\n"
    unknown = await api.post(
        "/v1/saved-replies/preview",
        json={"body": "hi", "conversation_id": str(uuid.uuid4())},
        headers=integration.auth,
    )
    assert (unknown.status_code, unknown.json()["code"]) == (404, "conversation_not_found")
    placeholders = (await api.get("/v1/saved-replies/placeholders", headers=integration.auth)).json()
    assert [p["name"] for p in placeholders][:2] == ["contact.name", "contact.first_name"]


async def test_viewers_use_saved_replies_but_do_not_change_them(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    reply = await _create(api, tenant, shortcut="hello", title="Hello", body="Hello {{ agent.name }}")
    viewer = await add_user(engine, tenant.workspace_id, Role.VIEWER, name="Vera")
    for path in ("/v1/saved-replies", f"/v1/saved-replies/{reply['id']}", "/v1/saved-replies/placeholders"):
        assert (await api.get(path, headers=viewer.auth)).status_code == 200, path
    preview = await api.post(f"/v1/saved-replies/{reply['id']}/preview", json={}, headers=viewer.auth)
    assert preview.json()["text"] == "Hello Vera"
    for method, path, body in (
        ("POST", "/v1/saved-replies", {"shortcut": "mine", "title": "x", "body": "y"}),
        ("PATCH", f"/v1/saved-replies/{reply['id']}", {"title": "changed"}),
        ("DELETE", f"/v1/saved-replies/{reply['id']}", None),
    ):
        response = await api.request(method, path, json=body, headers=viewer.auth)
        assert (response.status_code, response.json()["code"]) == (403, "forbidden"), path
    assert (await api.get(f"/v1/saved-replies/{reply['id']}", headers=tenant.auth)).json() == reply


async def test_another_workspace_reaches_no_saved_reply(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    reply = await _create(api, tenant, shortcut="secret", title="Secret", body="Only for us")
    channel = await make_channel(api, tenant)
    ours = await _conversation(api, tenant, channel, "ours", [message_event(thread="ours")])
    other = await make_tenant(engine)
    for method, path, body in (
        ("GET", f"/v1/saved-replies/{reply['id']}", None),
        ("PATCH", f"/v1/saved-replies/{reply['id']}", {"title": "stolen"}),
        ("DELETE", f"/v1/saved-replies/{reply['id']}", None),
        ("POST", f"/v1/saved-replies/{reply['id']}/preview", {}),
        (
            "POST",
            "/v1/saved-replies/preview",
            {"body": "{{ contact.name }}", "conversation_id": ours["conversation_id"]},
        ),
    ):
        response = await api.request(method, path, json=body, headers=other.auth)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["code"].endswith("not_found")
    assert (await api.get("/v1/saved-replies", headers=other.auth)).json()["data"] == []
    # The same shortcut is free in another workspace.
    await _create(api, other, shortcut="secret", title="Theirs", body="Theirs")
    assert (await api.get(f"/v1/saved-replies/{reply['id']}", headers=tenant.auth)).json() == reply
