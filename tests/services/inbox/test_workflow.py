"""The conversation workflow as agents use it: status and reopening, snoozes, assignment, labels,
priority, notes, read state, versions (If-Match), claims, bulk actions and the audit they leave."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncEngine

from services.inbox.models import AuditEntry, Conversation, ConversationLabel, Label, Team
from services.inbox.models import Channel as ChannelRow
from services.inbox.service.access import Role
from shared.db import session_factory
from shared.events import utcnow
from tests.support import (
    Agent,
    Channel,
    Tenant,
    add_token,
    add_user,
    make_channel,
    make_tenant,
    message_event,
    send_events,
    unique,
    wait_for,
)

pytestmark = pytest.mark.e2e


async def _conversation(
    api: httpx.AsyncClient,
    tenant: Tenant,
    channel: Channel | None = None,
    thread: str | None = None,
    **event: Any,
) -> tuple[Channel, dict[str, Any]]:
    """A conversation with one customer message, as the API shows it."""
    channel = channel or await make_channel(api, tenant)
    thread = thread or unique("thread")
    assert (await send_events(api, channel, message_event(thread=thread, **event))).status_code == 202

    async def stored() -> dict[str, Any] | None:
        page = await api.get("/v1/conversations", params={"channel_id": channel.id}, headers=tenant.auth)
        found = [c for c in page.json()["data"] if c["external_id"] == thread]
        return found[0] if found else None

    return channel, await wait_for(stored)


async def _get(api: httpx.AsyncClient, auth: Tenant, conversation_id: str) -> dict[str, Any]:
    response = await api.get(f"/v1/conversations/{conversation_id}", headers=auth.auth)
    assert response.status_code == 200, response.text
    assert response.headers["etag"] == f'"{response.json()["version"]}"'
    body: dict[str, Any] = response.json()
    return body


async def _patch(
    api: httpx.AsyncClient, auth: Tenant, conversation_id: str, body: dict[str, Any], **headers: str
) -> httpx.Response:
    return await api.patch(
        f"/v1/conversations/{conversation_id}", json=body, headers={**auth.auth, **headers}
    )


async def _label(engine: AsyncEngine, workspace_id: uuid.UUID, name: str) -> str:
    now = utcnow()
    label_id = uuid.uuid4()
    async with session_factory(engine)() as session, session.begin():
        session.add(
            Label(
                id=label_id,
                workspace_id=workspace_id,
                name=name,
                color="#ff0000",
                description=None,
                created_at=now,
                updated_at=now,
            )
        )
    return str(label_id)


async def _team(engine: AsyncEngine, workspace_id: uuid.UUID, name: str) -> str:
    now = utcnow()
    team_id = uuid.uuid4()
    async with session_factory(engine)() as session, session.begin():
        session.add(Team(id=team_id, workspace_id=workspace_id, name=name, created_at=now, updated_at=now))
    return str(team_id)


async def _audit(engine: AsyncEngine, conversation_id: str) -> list[AuditEntry]:
    async with session_factory(engine)() as session:
        query = (
            select(AuditEntry).where(AuditEntry.target_id == conversation_id).order_by(AuditEntry.created_at)
        )
        return list((await session.scalars(query)).all())


async def test_resolving_records_the_change_bumps_the_version_and_is_audited(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    agent = await add_user(engine, tenant.workspace_id, Role.AGENT)
    _, conversation = await _conversation(api, tenant)
    assert (conversation["status"], conversation["version"]) == ("open", 1)
    assert conversation["last_inbound_at"] is not None

    response = await _patch(api, agent, conversation["id"], {"status": "resolved"}, **{"If-Match": '"1"'})
    assert response.status_code == 200, response.text
    resolved = response.json()
    assert resolved["status"] == "resolved"
    assert resolved["version"] == 2
    assert response.headers["etag"] == '"2"'
    assert resolved["resolved_at"] is not None
    assert resolved["first_resolved_at"] == resolved["resolved_at"]
    assert resolved["status_changed_at"] == resolved["resolved_at"]

    [entry] = await _audit(engine, conversation["id"])
    assert entry.action == "conversation.update"
    assert entry.actor_user_id == agent.user_id
    assert entry.before == {"status": "open", "version": 1}
    assert entry.after == {"status": "resolved", "version": 2}

    unchanged = await _patch(api, agent, conversation["id"], {"status": "resolved"})
    assert unchanged.json()["version"] == 2, "a write that changes nothing keeps the version"
    assert len(await _audit(engine, conversation["id"])) == 1


async def test_a_stale_if_match_is_refused_with_412_and_changes_nothing(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    first = await add_user(engine, tenant.workspace_id, Role.AGENT)
    second = await add_user(engine, tenant.workspace_id, Role.AGENT)
    _, conversation = await _conversation(api, tenant)
    seen = await _get(api, first, conversation["id"])
    won = await _patch(
        api, second, conversation["id"], {"priority": "high"}, **{"If-Match": f'"{seen["version"]}"'}
    )
    assert won.status_code == 200

    lost = await _patch(
        api, first, conversation["id"], {"priority": "low"}, **{"If-Match": f'"{seen["version"]}"'}
    )
    assert lost.status_code == 412
    problem = lost.json()
    assert problem["code"] == "version_mismatch"
    assert problem["errors"] == [{"current_version": seen["version"] + 1}]
    assert lost.headers["etag"] == f'"{seen["version"] + 1}"'
    assert (await _get(api, first, conversation["id"]))["priority"] == "high"

    weak = await _patch(
        api, first, conversation["id"], {"priority": "low"}, **{"If-Match": f'W/"{seen["version"] + 1}"'}
    )
    assert weak.status_code == 412, "If-Match compares strongly: a weak tag never matches"
    current = await _patch(
        api, first, conversation["id"], {"priority": "low"}, **{"If-Match": str(seen["version"] + 1)}
    )
    assert current.status_code == 200
    assert current.json()["priority"] == "low"
    for bad_tag in ("yesterday", "3.0", "9" * 40):
        bad = await _patch(api, first, conversation["id"], {"priority": "low"}, **{"If-Match": bad_tag})
        assert bad.status_code == 400, bad_tag


@pytest.mark.parametrize(
    "body",
    [
        {"status": "closed"},
        {"status": "snoozed"},
        {"snoozed_until": "2030-01-01T00:00:00Z"},
        {"priority": "meh"},
        {"assignee_id": "not-a-uuid"},
        {"labels": "vip"},
        {"unknown": 1},
    ],
)
async def test_malformed_changes_get_400_and_change_nothing(
    api: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any]
) -> None:
    _, conversation = await _conversation(api, tenant)
    response = await _patch(api, tenant, conversation["id"], body)
    assert response.status_code == 400, response.text
    assert (await _get(api, tenant, conversation["id"]))["version"] == 1


async def test_a_customer_message_reopens_a_resolved_conversation_but_a_late_old_one_does_not(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    channel, conversation = await _conversation(
        api, tenant, occurred_at=(utcnow() - timedelta(minutes=5)).isoformat()
    )
    thread = conversation["external_id"]
    resolved = (await _patch(api, tenant, conversation["id"], {"status": "resolved"})).json()

    # A message written before the resolution, delivered only now, leaves it resolved.
    old = message_event(thread=thread, occurred_at=(utcnow() - timedelta(minutes=1)).isoformat(), text="late")
    assert (await send_events(api, channel, old)).status_code == 202

    async def has_two_messages() -> bool:
        page = await api.get(f"/v1/conversations/{conversation['id']}/messages", headers=tenant.auth)
        return len(page.json()["data"]) == 2

    await wait_for(has_two_messages)
    assert (await _get(api, tenant, conversation["id"]))["status"] == "resolved"

    fresh = message_event(
        thread=thread, occurred_at=(utcnow() + timedelta(seconds=1)).isoformat(), text="again"
    )
    assert (await send_events(api, channel, fresh)).status_code == 202

    async def reopened() -> dict[str, Any] | None:
        body = await _get(api, tenant, conversation["id"])
        return body if body["status"] == "open" else None

    body = await wait_for(reopened)
    assert body["version"] == resolved["version"] + 1
    assert body["resolved_at"] is None
    assert body["first_resolved_at"] == resolved["first_resolved_at"], "the first resolution is kept"


async def test_a_snooze_needs_a_future_time_and_wakes_up_by_itself(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    _, conversation = await _conversation(api, tenant)
    past = (utcnow() - timedelta(minutes=1)).isoformat()
    refused = await _patch(api, tenant, conversation["id"], {"status": "snoozed", "snoozed_until": past})
    assert refused.status_code == 400
    assert refused.json()["code"] == "invalid_reference"

    until = utcnow() + timedelta(seconds=1.5)
    snoozed = await _patch(
        api, tenant, conversation["id"], {"status": "snoozed", "snoozed_until": until.isoformat()}
    )
    assert snoozed.status_code == 200, snoozed.text
    assert snoozed.json()["status"] == "snoozed"
    listed = await api.get("/v1/conversations", params={"status": "snoozed"}, headers=tenant.auth)
    assert conversation["id"] in [c["id"] for c in listed.json()["data"]]

    async def woken() -> dict[str, Any] | None:
        body = await _get(api, tenant, conversation["id"])
        return body if body["status"] == "open" else None

    body = await wait_for(woken, timeout=15)
    assert body["snoozed_until"] is None
    assert body["version"] == snoozed.json()["version"] + 1


async def test_a_customer_message_wakes_a_snoozed_conversation_early(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    channel, conversation = await _conversation(api, tenant)
    until = (utcnow() + timedelta(days=1)).isoformat()
    await _patch(api, tenant, conversation["id"], {"status": "snoozed", "snoozed_until": until})
    later = message_event(
        thread=conversation["external_id"], occurred_at=(utcnow() + timedelta(seconds=1)).isoformat()
    )
    await send_events(api, channel, later)

    async def woken() -> dict[str, Any] | None:
        body = await _get(api, tenant, conversation["id"])
        return body if body["status"] == "open" else None

    assert (await wait_for(woken))["snoozed_until"] is None


async def test_assignment_team_priority_and_labels_filter_the_list(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    agent = await add_user(engine, tenant.workspace_id, Role.AGENT)
    channel, first = await _conversation(api, tenant)
    _, second = await _conversation(api, tenant, channel)
    vip = await _label(engine, tenant.workspace_id, unique("vip"))
    billing = await _label(engine, tenant.workspace_id, unique("billing"))
    team = await _team(engine, tenant.workspace_id, unique("support"))

    response = await _patch(
        api,
        tenant,
        first["id"],
        {"assignee_id": str(agent.user_id), "team_id": team, "priority": "urgent", "labels": [vip, billing]},
    )
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["assignee_id"] == str(agent.user_id)
    assert body["team_id"] == team
    assert body["priority"] == "urgent"
    assert sorted(label["id"] for label in body["labels"]) == sorted([vip, billing])
    assert body["version"] == 2, "one write, one version"

    async def listed(auth: Tenant, **params: Any) -> list[str]:
        page = await api.get(
            "/v1/conversations", params={"channel_id": channel.id, **params}, headers=auth.auth
        )
        assert page.status_code == 200, page.text
        return [c["id"] for c in page.json()["data"]]

    assert await listed(tenant, assignee_id=str(agent.user_id)) == [first["id"]]
    assert await listed(agent, assignee_id="me") == [first["id"]]
    assert await listed(tenant, assignee_id="none") == [second["id"]]
    assert await listed(tenant, team_id=team) == [first["id"]]
    assert await listed(tenant, priority="urgent") == [first["id"]]
    assert await listed(tenant, label_id=vip) == [first["id"]]
    assert await listed(tenant, label_id=vip, priority="low") == []
    assert await listed(tenant, label_id=vip, status="open", assignee_id=str(agent.user_id)) == [first["id"]]

    relabel = await _patch(api, tenant, first["id"], {"labels": [billing], "assignee_id": None})
    assert [label["id"] for label in relabel.json()["labels"]] == [billing]
    assert relabel.json()["assignee_id"] is None
    assert await listed(tenant, label_id=vip) == []

    [entry] = [e for e in await _audit(engine, first["id"]) if e.before and "labels" in e.before][-1:]
    assert entry.before["labels"] == sorted([vip, billing])
    assert entry.after["labels"] == [billing]


async def test_references_must_belong_to_the_workspace_and_be_able_to_take_the_work(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    _, conversation = await _conversation(api, tenant)
    other = await make_tenant(engine)
    stranger = await add_user(engine, other.workspace_id, Role.AGENT)
    viewer = await add_user(engine, tenant.workspace_id, Role.VIEWER)
    foreign_label = await _label(engine, other.workspace_id, unique("theirs"))
    foreign_team = await _team(engine, other.workspace_id, unique("theirs"))
    for body in (
        {"assignee_id": str(stranger.user_id)},
        {"assignee_id": str(viewer.user_id)},
        {"assignee_id": str(uuid.uuid4())},
        {"team_id": foreign_team},
        {"labels": [foreign_label]},
    ):
        response = await _patch(api, tenant, conversation["id"], body)
        assert response.status_code == 400, (body, response.text)
        assert response.json()["code"] == "invalid_reference"
    assert (await _get(api, tenant, conversation["id"]))["version"] == 1


async def test_viewers_cannot_change_conversations_and_other_workspaces_cannot_see_them(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    _, conversation = await _conversation(api, tenant)
    viewer = await add_user(engine, tenant.workspace_id, Role.VIEWER)
    cid = conversation["id"]
    writes = [
        ("PATCH", f"/v1/conversations/{cid}", {"status": "resolved"}),
        ("POST", f"/v1/conversations/{cid}/notes", {"text": "psst"}),
        ("POST", f"/v1/conversations/{cid}/claim", {}),
        ("DELETE", f"/v1/conversations/{cid}/claim", None),
        ("POST", "/v1/conversations/bulk", {"ids": [cid], "set": {"status": "resolved"}}),
    ]
    for method, path, body in writes:
        response = await api.request(method, path, json=body, headers=viewer.auth)
        assert response.status_code == 403, (method, path, response.text)

    other = await add_user(engine, (await make_tenant(engine)).workspace_id, Role.ADMIN)
    for method, path, body in [
        *writes[:4],
        ("GET", f"/v1/conversations/{cid}", None),
        ("POST", f"/v1/conversations/{cid}/read", None),
        ("POST", f"/v1/conversations/{cid}/unread", None),
    ]:
        response = await api.request(method, path, json=body, headers=other.auth)
        assert response.status_code == 404, (method, path, response.text)
    bulk = await api.post(
        "/v1/conversations/bulk", json={"ids": [cid], "set": {"status": "resolved"}}, headers=other.auth
    )
    assert bulk.json() == {
        "matched": 0,
        "updated": 0,
        "truncated": False,
        "not_found": [cid],
        "next_cursor": None,
    }
    assert (await _get(api, tenant, cid))["status"] == "open"


async def test_notes_are_listed_with_the_messages_but_never_sent_nor_previewed(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    agent = await add_user(engine, tenant.workspace_id, Role.AGENT)
    _, conversation = await _conversation(api, tenant, text="my order is late")
    response = await api.post(
        f"/v1/conversations/{conversation['id']}/notes",
        json={"text": "  check the courier  "},
        headers=agent.auth,
    )
    assert response.status_code == 201, response.text
    note = response.json()
    assert note["direction"] == "note"
    assert note["text"] == "check the courier"
    assert note["sent_by_user_id"] == str(agent.user_id)
    assert note["delivery"] is None

    page = (await api.get(f"/v1/conversations/{conversation['id']}/messages", headers=agent.auth)).json()
    assert [m["direction"] for m in page["data"]] == ["inbound", "note"]
    shown = await _get(api, agent, conversation["id"])
    assert shown["last_message_preview"] == "my order is late"
    assert shown["version"] == 1
    assert (
        await api.post(
            f"/v1/conversations/{conversation['id']}/notes", json={"text": "   "}, headers=agent.auth
        )
    ).status_code == 400


async def test_read_state_is_per_agent_and_new_customer_messages_count_as_unread(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    ana = await add_user(engine, tenant.workspace_id, Role.AGENT)
    ben = await add_user(engine, tenant.workspace_id, Role.AGENT)
    channel, conversation = await _conversation(api, tenant)
    cid = conversation["id"]
    assert (await _get(api, ana, cid))["unread_count"] == 1
    assert (await _get(api, tenant, cid))["unread_count"] is None, "an integration token has no read state"

    assert (await api.post(f"/v1/conversations/{cid}/read", headers=ana.auth)).status_code == 204
    assert (await _get(api, ana, cid))["unread_count"] == 0
    assert (await _get(api, ben, cid))["unread_count"] == 1

    async def unread(auth: Agent) -> list[str]:
        page = await api.get(
            "/v1/conversations", params={"channel_id": channel.id, "unread": "true"}, headers=auth.auth
        )
        return [c["id"] for c in page.json()["data"]]

    assert await unread(ana) == []
    assert await unread(ben) == [cid]
    counts = (await api.get("/v1/conversations/counts", headers=ana.auth)).json()
    assert counts["by_status"]["open"] >= 1

    later = message_event(
        thread=conversation["external_id"], occurred_at=(utcnow() + timedelta(seconds=1)).isoformat()
    )
    await send_events(api, channel, later)

    async def one_unread() -> bool:
        return (await _get(api, ana, cid))["unread_count"] == 1

    await wait_for(one_unread)
    assert await unread(ana) == [cid]
    await api.post(f"/v1/conversations/{cid}/read", headers=ana.auth)
    assert (await api.post(f"/v1/conversations/{cid}/unread", headers=ana.auth)).status_code == 204
    assert (await _get(api, ana, cid))["unread_count"] == 2

    integration = await api.post(f"/v1/conversations/{cid}/read", headers=tenant.auth)
    assert integration.status_code == 403
    assert integration.json()["code"] == "user_required"
    refused = await api.get("/v1/conversations", params={"unread": "true"}, headers=tenant.auth)
    assert refused.status_code == 403


async def _make_replyable(engine: AsyncEngine, channel: Channel) -> None:
    """Let replies be queued on a webhook channel, as on a Telegram one (nothing sends them here)."""
    async with session_factory(engine)() as session, session.begin():
        await session.execute(
            update(ChannelRow).where(ChannelRow.id == uuid.UUID(channel.id)).values(type="telegram")
        )


async def test_a_claim_refuses_other_agents_replies_until_forced_released_or_lapsed(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    ana = await add_user(engine, tenant.workspace_id, Role.AGENT)
    ben = await add_user(engine, tenant.workspace_id, Role.AGENT)
    channel, conversation = await _conversation(api, tenant)
    await _make_replyable(engine, channel)
    cid = conversation["id"]

    claimed = await api.post(f"/v1/conversations/{cid}/claim", json={"ttl_seconds": 60}, headers=ana.auth)
    assert claimed.status_code == 200, claimed.text
    assert claimed.json()["claim"]["user_id"] == str(ana.user_id)

    async def reply(agent: Agent, **extra: Any) -> httpx.Response:
        return await api.post(
            f"/v1/conversations/{cid}/messages", json={"text": "hi", **extra}, headers=agent.auth
        )

    refused = await reply(ben)
    assert refused.status_code == 409
    assert refused.json()["code"] == "conversation_claimed"
    assert refused.json()["errors"][0]["claimed_by"] == str(ana.user_id)
    assert (await api.post(f"/v1/conversations/{cid}/claim", json={}, headers=ben.auth)).status_code == 409
    assert (await api.delete(f"/v1/conversations/{cid}/claim", headers=ben.auth)).status_code == 409
    assert (await reply(ana)).status_code == 202
    assert (await reply(ben, force=True)).status_code == 202

    assert (await api.delete(f"/v1/conversations/{cid}/claim", headers=ana.auth)).status_code == 204
    assert (await _get(api, ben, cid))["claim"] is None
    assert (await reply(ben)).status_code == 202

    short = await api.post(f"/v1/conversations/{cid}/claim", json={"ttl_seconds": 1}, headers=ana.auth)
    assert short.status_code == 200
    assert (await reply(ben)).status_code == 409

    async def lapsed() -> bool:
        return (await _get(api, ben, cid))["claim"] is None

    await wait_for(lapsed, timeout=5)
    assert (await reply(ben)).status_code == 202
    taken = await api.post(f"/v1/conversations/{cid}/claim", json={}, headers=ben.auth)
    assert taken.json()["claim"]["user_id"] == str(ben.user_id)
    forced = await api.post(f"/v1/conversations/{cid}/claim", json={"force": True}, headers=ana.auth)
    assert forced.json()["claim"]["user_id"] == str(ana.user_id)
    assert [e.action for e in await _audit(engine, cid)][-1] == "conversation.claim_taken_over"

    integration = await api.post(f"/v1/conversations/{cid}/claim", json={}, headers=tenant.auth)
    assert integration.status_code == 403


async def test_first_response_is_the_first_agent_reply_and_survives_reopening(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    agent = await add_user(engine, tenant.workspace_id, Role.AGENT)
    channel, conversation = await _conversation(api, tenant)
    await _make_replyable(engine, channel)
    cid = conversation["id"]
    assert conversation["first_response_at"] is None
    assert (
        await api.post(f"/v1/conversations/{cid}/notes", json={"text": "n"}, headers=agent.auth)
    ).status_code == 201
    assert (await _get(api, agent, cid))["first_response_at"] is None, "a note is not a response"

    sent = await api.post(f"/v1/conversations/{cid}/messages", json={"text": "on it"}, headers=agent.auth)
    assert sent.status_code == 202, sent.text
    assert sent.json()["sent_by_user_id"] == str(agent.user_id)
    first = (await _get(api, agent, cid))["first_response_at"]
    assert first is not None
    await _patch(api, agent, cid, {"status": "resolved"})
    await send_events(
        api,
        channel,
        message_event(
            thread=conversation["external_id"], occurred_at=(utcnow() + timedelta(seconds=1)).isoformat()
        ),
    )

    async def reopened() -> bool:
        return (await _get(api, agent, cid))["status"] == "open"

    await wait_for(reopened)
    await api.post(f"/v1/conversations/{cid}/messages", json={"text": "again"}, headers=agent.auth)
    assert (await _get(api, agent, cid))["first_response_at"] == first


async def test_bulk_actions_apply_to_ids_or_to_a_filter(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    agent = await add_user(engine, tenant.workspace_id, Role.AGENT)
    label = await _label(engine, tenant.workspace_id, unique("spam"))
    channel, first = await _conversation(api, tenant)
    _, second = await _conversation(api, tenant, channel)
    _, third = await _conversation(api, tenant, channel)
    missing = str(uuid.uuid4())

    response = await api.post(
        "/v1/conversations/bulk",
        json={
            "ids": [first["id"], second["id"], missing],
            "set": {"assignee_id": str(agent.user_id), "add_labels": [label]},
        },
        headers=agent.auth,
    )
    assert response.status_code == 200, response.text
    assert response.json() == {
        "matched": 2,
        "updated": 2,
        "truncated": False,
        "not_found": [missing],
        "next_cursor": None,
    }
    again = await api.post(
        "/v1/conversations/bulk",
        json={"ids": [first["id"]], "set": {"assignee_id": str(agent.user_id)}},
        headers=agent.auth,
    )
    assert again.json()["updated"] == 0

    by_filter = await api.post(
        "/v1/conversations/bulk",
        json={
            "filter": {"channel_id": channel.id, "label_id": label},
            "set": {"status": "resolved", "remove_labels": [label]},
            "limit": 1,
        },
        headers=agent.auth,
    )
    filtered = by_filter.json()
    assert {k: filtered[k] for k in ("matched", "updated", "truncated", "not_found")} == {
        "matched": 1,
        "updated": 1,
        "truncated": True,
        "not_found": [],
    }
    assert filtered["next_cursor"]
    rest = await api.post(
        "/v1/conversations/bulk",
        json={
            "filter": {"channel_id": channel.id, "label_id": label},
            "set": {"status": "resolved", "remove_labels": [label]},
        },
        headers=agent.auth,
    )
    assert rest.json()["matched"] == 1
    assert rest.json()["truncated"] is False
    statuses = {
        c["id"]: c["status"]
        for c in (
            await api.get("/v1/conversations", params={"channel_id": channel.id}, headers=agent.auth)
        ).json()["data"]
    }
    assert statuses == {first["id"]: "resolved", second["id"]: "resolved", third["id"]: "open"}
    assert [e.action for e in await _audit(engine, first["id"])] == ["conversation.bulk_update"] * 2

    for body in (
        {"set": {"status": "resolved"}},
        {"ids": [first["id"]], "filter": {}, "set": {"status": "resolved"}},
        {"ids": [], "set": {"status": "resolved"}},
    ):
        assert (await api.post("/v1/conversations/bulk", json=body, headers=agent.auth)).status_code == 400
    nothing = await api.post(
        "/v1/conversations/bulk", json={"ids": [first["id"]], "set": {}}, headers=agent.auth
    )
    assert nothing.status_code == 400


async def test_an_integration_token_of_an_agent_role_still_works_without_a_user(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    token = Tenant(tenant.workspace_id, await add_token(engine, tenant.workspace_id, Role.AGENT))
    _, conversation = await _conversation(api, tenant)
    response = await _patch(api, token, conversation["id"], {"status": "pending"})
    assert response.status_code == 200
    [entry] = await _audit(engine, conversation["id"])
    assert entry.actor_user_id is None
    assert entry.actor_token_id is not None


async def test_admins_read_the_audit_log_with_before_and_after_and_filters(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    agent = await add_user(engine, tenant.workspace_id, Role.AGENT)
    _, conversation = await _conversation(api, tenant)
    await _patch(api, agent, conversation["id"], {"status": "pending", "priority": "low"})
    params = {"target_type": "conversation", "target_id": conversation["id"]}
    response = await api.get("/v1/audit", params=params, headers=tenant.auth)
    assert response.status_code == 200, response.text
    [entry] = response.json()["data"]
    assert entry["action"] == "conversation.update"
    assert entry["actor_user_id"] == str(agent.user_id)
    assert entry["before"] == {"status": "open", "priority": None, "version": 1}
    assert entry["after"] == {"status": "pending", "priority": "low", "version": 2}
    assert entry["status"] == "applied"
    mine = await api.get("/v1/audit", params={"actor_user_id": str(agent.user_id)}, headers=tenant.auth)
    assert [e["id"] for e in mine.json()["data"]] == [entry["id"]]
    assert (await api.get("/v1/audit", headers=agent.auth)).status_code == 403
    other = await make_tenant(engine)
    assert (await api.get("/v1/audit", params=params, headers=other.auth)).json()["data"] == []


async def test_the_list_shows_each_conversation_exactly_as_its_own_page_does(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    """The list writes its JSON directly (for speed); the single conversation goes through the
    response model. Both must say the same, field for field and format for format."""
    agent = await add_user(engine, tenant.workspace_id, Role.AGENT)
    label = await _label(engine, tenant.workspace_id, unique("vip"))
    channel, conversation = await _conversation(api, tenant)
    until = (utcnow() + timedelta(hours=1)).isoformat()
    await _patch(
        api,
        agent,
        conversation["id"],
        {"labels": [label], "priority": "high", "status": "snoozed", "snoozed_until": until},
    )
    await api.post(f"/v1/conversations/{conversation['id']}/claim", json={}, headers=agent.auth)
    listed = await api.get("/v1/conversations", params={"channel_id": channel.id}, headers=agent.auth)
    [item] = listed.json()["data"]
    single = await _get(api, agent, conversation["id"])
    assert item == single
    assert item["claim"]["user_id"] == str(agent.user_id)
    assert item["snoozed_until"].endswith("Z")
    schema = (await api.get("/openapi.json")).json()
    listing = schema["paths"]["/v1/conversations"]["get"]["responses"]["200"]["content"]["application/json"]
    assert listing["schema"]["$ref"].endswith("Page_ConversationOut_")


async def test_deleting_a_label_or_a_team_changes_the_conversations_that_had_it(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    label = await _label(engine, tenant.workspace_id, unique("gone"))
    team = await _team(engine, tenant.workspace_id, unique("gone"))
    _, conversation = await _conversation(api, tenant)
    cid = conversation["id"]
    set_up = await _patch(api, tenant, cid, {"labels": [label], "team_id": team})
    assert set_up.json()["version"] == 2

    assert (await api.delete(f"/v1/labels/{label}", headers=tenant.auth)).status_code == 204
    after_label = await _get(api, tenant, cid)
    assert after_label["labels"] == []
    assert after_label["version"] == 3, "a client holding version 2 must refetch"
    assert (await api.delete(f"/v1/teams/{team}", headers=tenant.auth)).status_code == 204
    after_team = await _get(api, tenant, cid)
    assert after_team["team_id"] is None
    assert after_team["version"] == 4
    actions = [e.action for e in await _audit(engine, cid)]
    assert actions[-2:] == ["conversation.label_deleted", "conversation.team_deleted"]


async def test_a_bulk_filter_too_large_for_one_call_goes_on_with_its_cursor(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    channel, _ = await _conversation(api, tenant)
    for _ in range(2):
        await _conversation(api, tenant, channel)
    seen: list[str] = []
    cursor = None
    for _ in range(5):
        body: dict[str, Any] = {
            "filter": {"channel_id": channel.id, "status": "open"},
            "set": {"priority": "high"},
            "limit": 1,
            **({"cursor": cursor} if cursor else {}),
        }
        result = (await api.post("/v1/conversations/bulk", json=body, headers=tenant.auth)).json()
        assert result["updated"] == result["matched"]
        seen.append(result["next_cursor"])
        cursor = result["next_cursor"]
        if not result["truncated"]:
            break
    assert len(seen) == 3, "a change that keeps conversations in the filter still progresses"
    listed = await api.get("/v1/conversations", params={"channel_id": channel.id}, headers=tenant.auth)
    assert {c["priority"] for c in listed.json()["data"]} == {"high"}
    bad = await api.post(
        "/v1/conversations/bulk",
        json={"filter": {"status": "open"}, "set": {"priority": "low"}, "cursor": "nonsense"},
        headers=tenant.auth,
    )
    assert bad.status_code == 400


async def _listed(
    api: httpx.AsyncClient, auth: Tenant, conversation_id: str, channel: Channel
) -> dict[str, Any]:
    """The conversation as the list shows it, checked equal to what fetching it alone shows."""
    page = await api.get("/v1/conversations", params={"channel_id": channel.id}, headers=auth.auth)
    [listed] = [c for c in page.json()["data"] if c["id"] == conversation_id]
    assert listed == await _get(api, auth, conversation_id)
    return listed


async def test_lists_show_the_labels_as_the_catalogue_names_them_now(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    created = [
        (await api.post("/v1/labels", json={"name": name, "color": color}, headers=tenant.auth)).json()
        for name, color in ((unique("mid"), "#00aa00"), (unique("zed"), None))
    ]
    mid, zed = created
    channel, conversation = await _conversation(api, tenant)
    cid = conversation["id"]
    assert conversation["labels"] == []
    await _patch(api, tenant, cid, {"labels": [zed["id"], mid["id"]]})
    shown = await _listed(api, tenant, cid, channel)
    assert [(label["id"], label["color"]) for label in shown["labels"]] == [
        (mid["id"], "#00aa00"),
        (zed["id"], None),
    ], "by name"

    # Renaming or recolouring a label shows on every conversation carrying it, in its new place.
    renamed = {"name": "a" + mid["name"], "color": None}
    assert (await api.patch(f"/v1/labels/{zed['id']}", json=renamed, headers=tenant.auth)).status_code == 200
    shown = await _listed(api, tenant, cid, channel)
    assert shown["labels"] == [
        {"id": zed["id"], **renamed},
        {"id": mid["id"], "name": mid["name"], "color": "#00aa00"},
    ]
    assert shown["version"] == 2, "the catalogue changed, not the conversation"

    # Labels taken off one by one, in bulk, or with their deletion from the catalogue.
    assert (await _patch(api, tenant, cid, {"labels": [zed["id"]]})).status_code == 200
    assert [label["id"] for label in (await _listed(api, tenant, cid, channel))["labels"]] == [zed["id"]]
    bulk = {"ids": [cid], "set": {"add_labels": [mid["id"]]}}
    assert (await api.post("/v1/conversations/bulk", json=bulk, headers=tenant.auth)).status_code == 200
    assert len((await _listed(api, tenant, cid, channel))["labels"]) == 2
    assert (await api.delete(f"/v1/labels/{mid['id']}", headers=tenant.auth)).status_code == 204
    assert [label["id"] for label in (await _listed(api, tenant, cid, channel))["labels"]] == [zed["id"]]


async def test_the_preview_is_the_newest_reply_or_customer_message_never_a_note(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    agent = await add_user(engine, tenant.workspace_id, Role.AGENT)
    photo = {"type": "photo", "url": "https://example.com/p.jpg"}
    channel, conversation = await _conversation(api, tenant, text=None, attachments=[photo])
    cid, thread = conversation["id"], conversation["external_id"]
    assert conversation["last_message_preview"] == "[photo]", "media alone shows as its type"
    await _make_replyable(engine, channel)
    sent = await api.post(
        f"/v1/conversations/{cid}/messages", json={"text": "we are on it"}, headers=agent.auth
    )
    assert sent.status_code == 202, sent.text
    assert (await _listed(api, agent, cid, channel))["last_message_preview"] == "we are on it"
    await api.post(f"/v1/conversations/{cid}/notes", json={"text": "internal"}, headers=agent.auth)
    assert (await _listed(api, agent, cid, channel))["last_message_preview"] == "we are on it"

    later = (utcnow() + timedelta(seconds=1)).isoformat()
    await send_events(api, channel, message_event(thread=thread, text="é" * 300, occurred_at=later))

    async def answered() -> str | None:
        preview: str | None = (await _get(api, agent, cid))["last_message_preview"]
        return preview if preview != "we are on it" else None

    assert await wait_for(answered) == "é" * 280, "the first 280 characters"
    assert (await _listed(api, agent, cid, channel))["last_message_preview"] == "é" * 280


async def test_a_bulk_filter_combines_unread_search_and_label_as_the_list_does(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    agent = await add_user(engine, tenant.workspace_id, Role.AGENT)
    label = await _label(engine, tenant.workspace_id, unique("vip"))
    word = unique("parcel").replace("-", "")
    channel, wanted = await _conversation(api, tenant, text=f"where is my {word}")
    _, read = await _conversation(api, tenant, channel, text=f"{word} arrived")
    _, unlabelled = await _conversation(api, tenant, channel, text=f"another {word}")
    _, other_words = await _conversation(api, tenant, channel, text="hello there")
    for conversation in (wanted, read, other_words):
        await _patch(api, tenant, conversation["id"], {"labels": [label]})
    assert (await api.post(f"/v1/conversations/{read['id']}/read", headers=agent.auth)).status_code == 204
    where = {"channel_id": channel.id, "unread": True, "q": word, "label_id": label}

    listed = await api.get("/v1/conversations", params=where, headers=agent.auth)
    assert [c["id"] for c in listed.json()["data"]] == [wanted["id"]]
    body = {"filter": where, "set": {"priority": "urgent"}}
    result = (await api.post("/v1/conversations/bulk", json=body, headers=agent.auth)).json()
    assert (result["matched"], result["updated"]) == (1, 1)
    priorities = {c["id"]: (await _get(api, agent, c["id"]))["priority"] for c in (wanted, read, unlabelled)}
    assert priorities == {wanted["id"]: "urgent", read["id"]: None, unlabelled["id"]: None}


async def test_a_label_lists_its_conversations_by_their_activity_as_it_moves(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    """A label's list walks the label's own copies of its conversations' activity and priority
    (``list_columns.order_labels``): they follow new messages and priority changes, whenever the
    label was put on."""
    label = await _label(engine, tenant.workspace_id, unique("vip"))
    channel = await make_channel(api, tenant)
    start = utcnow() - timedelta(minutes=10)
    first, second, third = [
        (await _conversation(api, tenant, channel, occurred_at=(start + timedelta(minutes=n)).isoformat()))[1]
        for n in range(3)
    ]
    for conversation, priority in ((first, "urgent"), (second, "urgent"), (third, "normal")):
        response = await _patch(api, tenant, conversation["id"], {"labels": [label], "priority": priority})
        assert response.status_code == 200, response.text

    async def listed(**params: Any) -> list[str]:
        page = await api.get(
            "/v1/conversations", params={"label_id": label, "limit": 10, **params}, headers=tenant.auth
        )
        assert page.status_code == 200, page.text
        return [c["id"] for c in page.json()["data"]]

    ids = {"first": first["id"], "second": second["id"], "third": third["id"]}
    assert await listed() == [ids["third"], ids["second"], ids["first"]]
    assert await listed(priority="urgent") == [ids["second"], ids["first"]]
    assert await listed(since=(start + timedelta(seconds=30)).isoformat()) == [ids["third"], ids["second"]]

    # A new message moves the first conversation to the top of the label's list.
    news = message_event(thread=first["external_id"], occurred_at=utcnow().isoformat(), text="again")
    assert (await send_events(api, channel, news)).status_code == 202

    async def moved() -> list[str] | None:
        order = await listed()
        return order if order[0] == ids["first"] else None

    assert await wait_for(moved) == [ids["first"], ids["third"], ids["second"]]
    assert await listed(priority="urgent") == [ids["first"], ids["second"]]

    # A priority change moves the conversation between the label's priority lists.
    assert (await _patch(api, tenant, ids["second"], {"priority": "low"})).status_code == 200
    assert await listed(priority="urgent") == [ids["first"]]
    assert await listed(priority="low") == [ids["second"]]

    # Page by page, in the same order.
    seen, cursor = [], None
    while True:
        params = {"label_id": label, "limit": 1, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/conversations", params=params, headers=tenant.auth)).json()
        seen += [c["id"] for c in page["data"]]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert seen == [ids["first"], ids["third"], ids["second"]]

    # A copy left behind (a write from before migration 0011) misplaces its conversation in the
    # label's list, but paging and bulk actions by filter still see each conversation once.
    async with session_factory(engine)() as session, session.begin():
        await session.execute(
            update(ConversationLabel)
            .where(ConversationLabel.conversation_id == uuid.UUID(ids["first"]))
            .values(last_activity_at=start + timedelta(seconds=90))  # between the other two
        )
    seen, cursor = [], None
    while True:
        params = {"label_id": label, "limit": 1, **({"cursor": cursor} if cursor else {})}
        page = (await api.get("/v1/conversations", params=params, headers=tenant.auth)).json()
        seen += [c["id"] for c in page["data"]]
        assert len(seen) <= 3, seen
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert seen == [ids["third"], ids["first"], ids["second"]]
    bulk = {"filter": {"label_id": label}, "set": {"priority": "high"}}
    done = await api.post("/v1/conversations/bulk", json=bulk, headers=tenant.auth)
    assert done.status_code == 200, done.text
    assert sorted(await listed(priority="high")) == sorted(ids.values())

    # The copies are the conversations' own values (a priority change copies the activity too).
    async with session_factory(engine)() as session:
        rows = await session.execute(
            select(Conversation.last_activity_at, Conversation.priority, ConversationLabel)
            .join(ConversationLabel, ConversationLabel.conversation_id == Conversation.id)
            .where(ConversationLabel.label_id == uuid.UUID(label))
        )
        copies = [(at, priority, row.last_activity_at, row.priority) for at, priority, row in rows]
    assert len(copies) == 3
    assert all(at == copied_at and priority == copied for at, priority, copied_at, copied in copies)
