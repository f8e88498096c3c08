"""The analytics API end to end: customer messages and agents' actions flow from the webhook through
the inbox and the domain stream into analytics, and the KPIs say what happened."""

from __future__ import annotations

import uuid
from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.inbox.service.access import Role
from shared.events import utcnow
from tests.support import (
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


async def _summary(analytics: httpx.AsyncClient, tenant: Tenant, **params: Any) -> dict[str, Any]:
    response = await analytics.get("/v1/analytics/summary", params=params, headers=tenant.auth)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


async def _conversation_id(api: httpx.AsyncClient, tenant: Tenant, channel_id: str, thread: str) -> str:
    async def found() -> str | None:
        page = await api.get("/v1/conversations", params={"channel_id": channel_id}, headers=tenant.auth)
        ids = [c["id"] for c in page.json()["data"] if c["external_id"] == thread]
        return ids[0] if ids else None

    return await wait_for(found)


async def test_kpis_follow_messages_resolutions_and_labels(
    api: httpx.AsyncClient, analytics: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    tenant = await make_tenant(engine)
    agent = await add_user(engine, tenant.workspace_id, Role.AGENT)
    channel = await make_channel(api, tenant)
    start = utcnow() - timedelta(hours=3)
    threads = [unique("thread"), unique("thread")]
    events = [
        message_event(
            thread=threads[0],
            author="ann",
            text="This is terrible, I hate it 😡 refund now",
            occurred_at=start.isoformat(),
        ),
        message_event(
            thread=threads[0],
            author="ann",
            text="still broken, awful",
            occurred_at=(start + timedelta(minutes=5)).isoformat(),
        ),
        message_event(
            thread=threads[1],
            author="bob",
            text="I love this, great job 😍",
            occurred_at=(start + timedelta(minutes=10)).isoformat(),
        ),
    ]
    assert (await send_events(api, channel, events)).status_code == 202

    first = await wait_for(lambda: _until(analytics, tenant, lambda s: s["messages"]["inbound"] == 3))
    assert first["conversations"]["new"] == 2
    assert first["authors"] == {"unique": 2, "first_time": 2, "returning": 0}
    assert first["sentiment"]["negative"] == 2
    assert first["sentiment"]["positive"] == 1
    assert first["conversations"]["resolved"] == 0

    # The agent resolves the first conversation and labels the second.
    label = await api.post("/v1/labels", json={"name": unique("vip")}, headers=tenant.auth)
    assert label.status_code == 201, label.text
    label_id = label.json()["id"]
    first_id = await _conversation_id(api, tenant, channel.id, threads[0])
    second_id = await _conversation_id(api, tenant, channel.id, threads[1])
    assert (
        await api.patch(f"/v1/conversations/{first_id}", json={"status": "resolved"}, headers=agent.auth)
    ).status_code == 200
    assert (
        await api.patch(f"/v1/conversations/{second_id}", json={"labels": [label_id]}, headers=agent.auth)
    ).status_code == 200

    # An agent corrects one message's sentiment: the correction wins in the figures and is counted.
    messages = await api.get(f"/v1/conversations/{first_id}/messages", headers=tenant.auth)
    angry = next(m for m in messages.json()["data"] if m["text"] == "still broken, awful")
    corrected = await api.put(
        f"/v1/conversations/{first_id}/messages/{angry['id']}/sentiment",
        json={"label": "positive"},
        headers=agent.auth,
    )
    assert corrected.status_code == 200, corrected.text
    after = await wait_for(
        lambda: _until(
            analytics,
            tenant,
            lambda s: s["sentiment"]["corrections"] == 1 and s["sentiment"]["negative"] == 1,
        )
    )
    assert after["sentiment"]["negative"] == 1
    assert after["sentiment"]["positive"] == 2

    resolved = await wait_for(
        lambda: _until(analytics, tenant, lambda s: s["conversations"]["resolved"] == 1)
    )
    assert resolved["resolution"]["count"] == 1
    assert resolved["resolution"]["median_seconds"] > 3 * 3600 - 60  # from the first message to now

    labelled = await wait_for(
        lambda: _until(analytics, tenant, lambda s: s["messages"]["inbound"] == 1, label=label_id)
    )
    assert labelled["conversations"]["new"] == 1
    assert labelled["authors"] == {"unique": 1, "first_time": 1, "returning": 0}
    assert labelled["sentiment"]["positive"] == 1

    agents = (await analytics.get("/v1/analytics/agents", headers=tenant.auth)).json()["agents"]
    assert agents == [
        {
            "agent_id": str(agent.user_id),
            "replies": 0,
            "first_responses": 0,
            "first_response_median_seconds": None,
            "first_response_p90_seconds": None,
            "resolutions": 1,
        }
    ]
    channels = (await analytics.get("/v1/analytics/channels", headers=tenant.auth)).json()["channels"]
    assert [(c["channel_id"], c["messages"]["inbound"]) for c in channels] == [(channel.id, 3)]

    series = await analytics.get(
        "/v1/analytics/timeseries",
        params={
            "granularity": "hour",
            "since": (start - timedelta(hours=1)).isoformat(),
            "until": utcnow().isoformat(),
        },
        headers=tenant.auth,
    )
    assert series.status_code == 200, series.text
    points = series.json()["points"]
    assert sum(p["inbound"] for p in points) == 3
    assert sum(p["new_conversations"] for p in points) == 2
    assert sum(p["resolved"] for p in points) == 1

    # Another workspace sees none of it.
    other = await make_tenant(engine)
    assert (await _summary(analytics, other))["messages"]["inbound"] == 0


async def _until(
    analytics: httpx.AsyncClient, tenant: Tenant, ready: Any, **params: Any
) -> dict[str, Any] | None:
    summary = await _summary(analytics, tenant, **params)
    return summary if ready(summary) else None


async def test_business_hours_and_time_zone_shape_the_figures(
    api: httpx.AsyncClient, analytics: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    tenant = await make_tenant(engine)
    saved = await analytics.put(
        "/v1/analytics/settings",
        json={
            "timezone": "Europe/Rome",
            "working_hours": {"mon": ["09:00", "18:00"]},
            "watched_keywords": ["outage"],
        },
        headers=tenant.auth,
    )
    assert saved.status_code == 200, saved.text
    got = (await analytics.get("/v1/analytics/settings", headers=tenant.auth)).json()
    assert got["timezone"] == "Europe/Rome"
    assert got["watched_keywords"] == ["outage"]
    summary = await _summary(analytics, tenant)
    assert summary["period"]["timezone"] == "Europe/Rome"


@pytest.mark.parametrize(
    ("params", "code"),
    [
        ({"since": "2026-11-01T00:00:00"}, "invalid_time"),
        ({"since": "2026-11-02T00:00:00Z", "until": "2026-11-01T00:00:00Z"}, "invalid_range"),
        ({"timezone": "Mars/Olympus"}, "invalid_timezone"),
        ({"channel": "not-a-uuid"}, "validation_failed"),
    ],
)
async def test_bad_parameters_get_a_clear_400(
    api: httpx.AsyncClient,
    analytics: httpx.AsyncClient,
    engine: AsyncEngine,
    params: dict[str, str],
    code: str,
) -> None:
    tenant = await make_tenant(engine)
    response = await analytics.get("/v1/analytics/summary", params=params, headers=tenant.auth)
    assert response.status_code in (400, 422), response.text
    assert response.json()["code"] == code


async def test_too_many_points_and_bad_settings_are_refused(
    api: httpx.AsyncClient, analytics: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    tenant = await make_tenant(engine)
    long = await analytics.get(
        "/v1/analytics/timeseries",
        params={"granularity": "hour", "since": "2025-01-01T00:00:00Z", "until": "2026-01-01T00:00:00Z"},
        headers=tenant.auth,
    )
    assert long.status_code == 400
    assert long.json()["code"] == "too_many_points"
    for body in (
        {"timezone": "Nowhere/Nothing"},
        {"working_hours": {"mon": ["18:00", "09:00"]}},
        {"working_hours": {"funday": ["09:00", "18:00"]}},
        {"working_hours": {"mon": ["9am", "6pm"]}},
        {"watched_keywords": ["x"]},
        {"report_schedule": {"kinds": ["daily"]}},
    ):
        response = await analytics.put("/v1/analytics/settings", json=body, headers=tenant.auth)
        assert response.status_code in (400, 422), (body, response.text)
    assert (await analytics.get("/v1/analytics/settings", headers=tenant.auth)).json()["timezone"] == "UTC"


async def test_roles_and_tokens(
    api: httpx.AsyncClient, analytics: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    tenant = await make_tenant(engine)
    viewer = {"Authorization": f"Bearer {await add_token(engine, tenant.workspace_id, Role.VIEWER)}"}
    agent = await add_user(engine, tenant.workspace_id, Role.AGENT)
    assert (await analytics.get("/v1/analytics/summary")).status_code == 401
    assert (
        await analytics.get("/v1/analytics/summary", headers={"Authorization": "Bearer nope"})
    ).status_code == 401
    for path in (
        "/v1/analytics/summary",
        "/v1/analytics/timeseries",
        "/v1/analytics/agents",
        "/v1/analytics/channels",
        "/v1/analytics/topics",
        "/v1/analytics/settings",
        "/v1/alerts",
    ):
        assert (await analytics.get(path, headers=viewer)).status_code == 200, path
    for auth in (viewer, agent.auth):
        refused = await analytics.put(
            "/v1/analytics/settings", json={"timezone": "Europe/Rome"}, headers=auth
        )
        assert refused.status_code == 403


async def test_alerts_refuse_a_bad_cursor_and_hide_other_workspaces(
    api: httpx.AsyncClient, analytics: httpx.AsyncClient, engine: AsyncEngine
) -> None:
    tenant = await make_tenant(engine)
    bad = await analytics.get("/v1/alerts", params={"cursor": "not-a-cursor"}, headers=tenant.auth)
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid_cursor"
    unknown = await analytics.get(f"/v1/alerts/{uuid.uuid4()}", headers=tenant.auth)
    assert unknown.status_code == 404
    assert (await analytics.get("/v1/alerts", headers=tenant.auth)).json() == {
        "data": [],
        "next_cursor": None,
    }
