"""The inbox REST API as a frontend uses it: auth, isolation, pagination, filters, history."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.inbox.service.access import Role
from tests.support import (
    Tenant,
    add_token,
    conversation_messages,
    make_channel,
    make_tenant,
    message_event,
    send_events,
    wait_for,
)

pytestmark = pytest.mark.e2e

T0 = datetime(2026, 11, 24, 9, 0, tzinfo=UTC)


async def _conversations(api: httpx.AsyncClient, tenant: Tenant, **params: Any) -> dict[str, Any]:
    response = await api.get("/v1/conversations", params=params, headers=tenant.auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _stored(api: httpx.AsyncClient, tenant: Tenant, count: int, **params: Any) -> list[dict[str, Any]]:
    async def enough() -> list[dict[str, Any]] | None:
        data: list[dict[str, Any]] = (await _conversations(api, tenant, limit=200, **params))["data"]
        return data if len(data) >= count else None

    return await wait_for(enough)


@pytest.mark.parametrize(
    ("path", "header"),
    [
        ("/v1/conversations", None),
        ("/v1/conversations", "Bearer nope"),
        ("/v1/channels", "Basic dXNlcjpwYXNz"),
        ("/v1/channels", "Bearer "),
        ("/v1/contacts/00000000-0000-4000-8000-000000000001", "Bearer pz_revoked_or_never_was"),
    ],
)
async def test_every_v1_route_needs_a_valid_bearer_token(
    api: httpx.AsyncClient, path: str, header: str | None
) -> None:
    response = await api.get(path, headers={"Authorization": header} if header else {})
    assert response.status_code == 401
    assert response.headers["www-authenticate"].startswith("Bearer")
    assert response.json()["code"] == "unauthorized"


async def test_only_admins_register_channels(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    viewer = Tenant(tenant.workspace_id, await add_token(engine, tenant.workspace_id, Role.VIEWER))
    response = await api.post("/v1/channels", json={"type": "webhook", "name": "x"}, headers=viewer.auth)
    assert response.status_code == 403
    assert (await api.get("/v1/channels", headers=viewer.auth)).status_code == 200


@pytest.mark.parametrize(
    "body",
    [
        {"type": "fax", "name": "x"},
        {"type": "webhook"},
        {"type": "webhook", "name": "   "},
        {"type": "webhook", "name": "x", "extra": 1},
        {"type": "webhook", "name": "nul \u0000 inside"},
    ],
)
async def test_bad_channel_requests_are_400(
    api: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any]
) -> None:
    response = await api.post("/v1/channels", json=body, headers=tenant.auth)
    assert response.status_code == 400
    assert response.json()["code"] == "validation_failed"
    assert response.json()["errors"]


async def test_a_channel_is_listed_and_its_secret_never_shown_again(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    channel = await make_channel(api, tenant, name="Site forms")
    assert channel.body["webhook_url"] == f"http://piazza.test/webhooks/{channel.id}"
    assert channel.secret.startswith("whsec_")
    listed = (await api.get("/v1/channels", headers=tenant.auth)).json()
    assert [c["id"] for c in listed["data"]] == [channel.id]
    one = (await api.get(f"/v1/channels/{channel.id}", headers=tenant.auth)).json()
    assert one["name"] == "Site forms"
    assert one["health"]["status"] == "idle"
    assert "signing_secret" not in one
    assert channel.secret not in str(listed)


async def test_a_workspace_sees_nothing_of_another(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    other = await make_tenant(engine)
    channel = await make_channel(api, tenant)
    assert (await send_events(api, channel, message_event(thread="private"))).status_code == 202
    [conversation] = await _stored(api, tenant, 1)
    [message] = await conversation_messages(api, tenant, channel.id, "private")
    contact_id = message["author"]["contact_id"]
    for path in (
        f"/v1/conversations/{conversation['id']}",
        f"/v1/conversations/{conversation['id']}/messages",
        f"/v1/channels/{channel.id}",
        f"/v1/contacts/{contact_id}",
        f"/v1/messages/{message['id']}/history",
    ):
        assert (await api.get(path, headers=tenant.auth)).status_code == 200, path
        response = await api.get(path, headers=other.auth)
        assert response.status_code == 404, path
        assert response.json()["code"].endswith("not_found")
    assert (await _conversations(api, other))["data"] == []
    assert (await api.get("/v1/channels", headers=other.auth)).json()["data"] == []
    assert (await api.get(f"/v1/conversations?channel_id={channel.id}", headers=other.auth)).json()[
        "data"
    ] == []


async def test_conversations_page_by_last_activity_without_gaps_or_repeats(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    channel = await make_channel(api, tenant)
    events = [
        message_event(thread=f"t{i:02}", occurred_at=(T0 + timedelta(minutes=i // 2)).isoformat())
        for i in range(25)
    ]
    await send_events(api, channel, events)
    await _stored(api, tenant, 25)
    seen: list[dict[str, Any]] = []
    cursor = None
    while True:
        page = await _conversations(api, tenant, limit=7, **({"cursor": cursor} if cursor else {}))
        seen += page["data"]
        cursor = page["next_cursor"]
        if not page["has_more"]:
            break
    assert len(seen) == 25
    assert len({c["id"] for c in seen}) == 25
    keys = [(c["last_activity_at"], c["id"]) for c in seen]
    assert keys == sorted(keys, reverse=True)


async def test_conversation_filters(api: httpx.AsyncClient, tenant: Tenant) -> None:
    first, second = await make_channel(api, tenant), await make_channel(api, tenant)
    await send_events(api, first, message_event(thread="a"))
    await send_events(api, second, message_event(thread="b"))
    await _stored(api, tenant, 2)
    only_first = await _conversations(api, tenant, channel_id=first.id)
    assert [c["external_id"] for c in only_first["data"]] == ["a"]
    assert len((await _conversations(api, tenant, status="open"))["data"]) == 2
    assert (await _conversations(api, tenant, status="resolved"))["data"] == []
    future = (datetime.now(UTC) + timedelta(hours=1)).isoformat()
    assert (await _conversations(api, tenant, updated_since=future))["data"] == []
    past = (datetime.now(UTC) - timedelta(hours=1)).isoformat()
    assert len((await _conversations(api, tenant, updated_since=past))["data"]) == 2


@pytest.mark.parametrize(
    "params",
    [
        {"cursor": "not-a-cursor"},
        {"cursor": "WyJ4Il0"},
        {"status": "exploded"},
        {"limit": 0},
        {"limit": 1000},
        {"channel_id": "nope"},
        {"updated_since": "2026-11-24T10:00:00"},
        {"updated_since": "0001-01-01T00:00:00+01:00"},
        {"updated_since": "9999-12-31T23:59:59-01:00"},
        {
            "cursor": "WyI5OTk5LTEyLTMxVDIzOjU5OjU5LTAxOjAwIiwiMDAwMDAwMDAtMDAwMC00MDAwLTgwMDAtMDAwMDAwMDAwMDAxIl0"
        },
        {"cursor": "WyIyMDI1LTAzLTAxVDEyOjAwOjAwKzAwOjAwIiw1XQ"},
    ],
)
async def test_bad_list_parameters_are_400(
    api: httpx.AsyncClient, tenant: Tenant, params: dict[str, Any]
) -> None:
    response = await api.get("/v1/conversations", params=params, headers=tenant.auth)
    assert response.status_code == 400, response.text
    assert response.json()["code"] in {"invalid_cursor", "validation_failed"}


async def test_messages_are_chronological_and_paged(api: httpx.AsyncClient, tenant: Tenant) -> None:
    channel = await make_channel(api, tenant)
    # Sent out of order, several within the same second.
    events = [
        message_event(
            thread="chat",
            message_id=f"m{i:02}",
            text=f"#{i}",
            occurred_at=(T0 + timedelta(seconds=i // 3)).isoformat(),
        )
        for i in range(20)
    ]
    await send_events(api, channel, events[10:] + events[:10])

    async def all_of_them() -> list[dict[str, Any]] | None:
        messages = await conversation_messages(api, tenant, channel.id, "chat", limit=6)
        return messages if len(messages) == 20 else None

    messages = await wait_for(all_of_them)
    times = [m["sent_at"] for m in messages]
    assert times == sorted(times)
    assert len({m["id"] for m in messages}) == 20


async def test_edits_and_deletes_show_in_the_api(api: httpx.AsyncClient, tenant: Tenant) -> None:
    channel = await make_channel(api, tenant)
    created = message_event(
        thread="life", message_id="life-1", text="first draft", occurred_at=T0.isoformat()
    )
    kept = message_event(
        thread="life", message_id="life-2", text="stays", occurred_at=(T0 + timedelta(seconds=1)).isoformat()
    )
    await send_events(api, channel, [created, kept])
    await send_events(
        api,
        channel,
        message_event(
            kind="message.edited",
            thread="life",
            message_id="life-1",
            text="final",
            occurred_at=(T0 + timedelta(minutes=1)).isoformat(),
        ),
    )
    await send_events(
        api,
        channel,
        message_event(
            kind="message.deleted",
            thread="life",
            message_id="life-2",
            occurred_at=(T0 + timedelta(minutes=2)).isoformat(),
        ),
    )

    async def settled() -> list[dict[str, Any]] | None:
        messages = await conversation_messages(api, tenant, channel.id, "life")
        return messages if [m["text"] for m in messages] == ["final"] else None

    [message] = await wait_for(settled)
    assert message["edited_at"] is not None
    audit = await conversation_messages(api, tenant, channel.id, "life", include_deleted="true")
    assert [(m["external_id"], m["text"], m["deleted_at"] is not None) for m in audit] == [
        ("life-1", "final", False),
        ("life-2", "stays", True),
    ]
    history = (await api.get(f"/v1/messages/{message['id']}/history", headers=tenant.auth)).json()
    assert [(r["kind"], r["text"]) for r in history["revisions"]] == [
        ("created", "first draft"),
        ("edited", "final"),
    ]


async def test_replies_point_at_their_parent(api: httpx.AsyncClient, tenant: Tenant) -> None:
    channel = await make_channel(api, tenant)
    await send_events(
        api,
        channel,
        message_event(
            thread="tree",
            message_id="child",
            reply_to="parent",
            occurred_at=(T0 + timedelta(seconds=5)).isoformat(),
        ),
    )
    await send_events(
        api, channel, message_event(thread="tree", message_id="parent", occurred_at=T0.isoformat())
    )

    async def linked() -> dict[str, Any] | None:
        messages = await conversation_messages(api, tenant, channel.id, "tree")
        child = [m for m in messages if m["external_id"] == "child"]
        return child[0] if child and child[0]["reply_to"]["message_id"] else None

    child = await wait_for(linked)
    messages = await conversation_messages(api, tenant, channel.id, "tree")
    parent = next(m for m in messages if m["external_id"] == "parent")
    assert child["reply_to"] == {"external_id": "parent", "message_id": parent["id"]}


async def test_a_contact_has_its_identities(api: httpx.AsyncClient, tenant: Tenant) -> None:
    channel = await make_channel(api, tenant)
    event = message_event(thread="who", author="u-7")
    event["author"] = {"id": "u-7", "handle": "@marta", "name": "Marta Rossi"}
    await send_events(api, channel, event)
    [message] = await wait_for(lambda: conversation_messages(api, tenant, channel.id, "who"))
    contact = (await api.get(f"/v1/contacts/{message['author']['contact_id']}", headers=tenant.auth)).json()
    assert contact["name"] == "Marta Rossi"
    assert [(i["external_id"], i["handle"], i["namespace"]) for i in contact["identities"]] == [
        ("u-7", "@marta", f"webhook:{channel.id}")
    ]


async def test_unknown_routes_and_methods_are_problem_details(api: httpx.AsyncClient, tenant: Tenant) -> None:
    missing = await api.get("/v1/nothing-here", headers=tenant.auth)
    assert missing.status_code == 404
    assert missing.json()["code"] == "not_found"
    wrong = await api.delete("/v1/conversations", headers=tenant.auth)
    assert wrong.status_code == 405
    assert wrong.json()["code"] == "method_not_allowed"


@pytest.mark.parametrize(
    ("params", "field"),
    [
        ({"limit": "0"}, "query.limit"),
        ({"status": "closed"}, "query.status"),
        ({"channel_id": "not-an-id"}, "query.channel_id"),
        ({"since": "2026-11-25T10:00:00"}, "query.since"),  # no zone
        ({"unread": "maybe"}, "query.unread"),
    ],
)
async def test_a_bad_list_parameter_is_a_400_naming_it(
    api: httpx.AsyncClient, tenant: Tenant, params: dict[str, str], field: str
) -> None:
    response = await api.get("/v1/conversations", params=params, headers=tenant.auth)

    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "validation_failed"
    assert field in {error["field"] for error in body["errors"]}


async def test_the_openapi_document_lists_the_list_parameters(api: httpx.AsyncClient) -> None:
    operation = (await api.get("/openapi.json")).json()["paths"]["/v1/conversations"]["get"]
    parameters = {parameter["name"]: parameter for parameter in operation["parameters"]}

    assert set(parameters) == {
        "status", "channel_id", "assignee_id", "team_id", "label_id", "priority", "unread", "q",
        "since", "until", "updated_since", "sentiment", "cursor", "limit",
    }  # fmt: skip
    assert parameters["status"]["schema"]["anyOf"][0]["enum"] == ["open", "pending", "snoozed", "resolved"]
    assert parameters["limit"]["schema"]["maximum"] == 200


async def test_operations_endpoints(api: httpx.AsyncClient) -> None:
    assert (await api.get("/healthz")).json() == {"status": "ok"}
    ready = (await api.get("/readyz")).json()
    assert ready["status"] == "ready"
    assert set(ready["checks"]) == {"ingress.nats", "inbox.database", "inbox.nats"}
    metrics = (await api.get("/metrics")).text
    assert "piazza_http_request_duration_seconds" in metrics
    assert "piazza_events_received_total" in metrics
    docs = (await api.get("/openapi.json")).json()
    assert "/webhooks/{channel_id}" in docs["paths"]
    listing = docs["paths"]["/v1/conversations"]["get"]["responses"]
    # The document says what the API really answers: 400 problem details, never FastAPI's 422.
    assert "422" not in listing
    assert listing["400"]["content"]["application/problem+json"]["schema"] == {
        "$ref": "#/components/schemas/Problem"
    }
    assert "/docs" not in docs["paths"]
    assert (await api.get("/docs")).status_code == 200


async def test_request_ids_are_echoed(api: httpx.AsyncClient) -> None:
    response = await api.get("/healthz", headers={"X-Request-ID": "trace-abc-123"})
    assert response.headers["x-request-id"] == "trace-abc-123"
    generated = await api.get("/healthz", headers={"X-Request-ID": "x" * 500})
    assert generated.headers["x-request-id"] != "x" * 500


async def test_the_last_cursor_of_a_conversation_picks_up_new_messages(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    channel = await make_channel(api, tenant)
    await send_events(
        api, channel, message_event(thread="tail", message_id="first", occurred_at=T0.isoformat())
    )
    [conversation] = await _stored(api, tenant, 1)
    path = f"/v1/conversations/{conversation['id']}/messages"
    page = (await api.get(path, headers=tenant.auth)).json()
    assert ([m["external_id"] for m in page["data"]], page["has_more"]) == (["first"], False)
    tail = page["next_cursor"]
    empty = (await api.get(path, params={"cursor": tail}, headers=tenant.auth)).json()
    assert (empty["data"], empty["next_cursor"]) == ([], tail)
    later = (T0 + timedelta(seconds=1)).isoformat()
    await send_events(api, channel, message_event(thread="tail", message_id="second", occurred_at=later))

    async def new_ones() -> list[dict[str, Any]] | None:
        data: list[dict[str, Any]] = (
            await api.get(path, params={"cursor": tail}, headers=tenant.auth)
        ).json()["data"]
        return data or None

    assert [m["external_id"] for m in await wait_for(new_ones)] == ["second"]


async def test_an_unreachable_database_is_a_503_not_a_500(
    api: httpx.AsyncClient, tenant: Tenant, tmp_path: Any
) -> None:
    from shared.db import create_engine, read_session_factory

    state = api.app.state.inbox  # type: ignore[attr-defined]
    broken = create_engine(f"sqlite+aiosqlite:///{tmp_path}/missing/dir/x.db")
    original = state.read_sessions
    state.read_sessions = read_session_factory(broken)
    try:
        # The token is cached from no earlier request here, so authentication itself hits the database.
        response = await api.get("/v1/conversations", headers=tenant.auth)
    finally:
        state.read_sessions = original
        await broken.dispose()
    assert response.status_code == 503
    assert response.json()["code"] == "database_unavailable"
    assert response.headers["retry-after"] == "5"
