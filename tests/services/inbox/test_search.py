"""Full-text search of conversations, over message text and contact names, with every filter."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.inbox.repository import search
from services.inbox.service.access import Role
from shared.events import utcnow
from tests.support import (
    Channel,
    Tenant,
    add_user,
    make_channel,
    make_tenant,
    message_event,
    send_events,
    unique,
    wait_for,
)

pytestmark = pytest.mark.e2e


@pytest.fixture(autouse=True, params=["chosen", "walk", "collect"])
def strategy(request: pytest.FixtureRequest, backend: str, monkeypatch: pytest.MonkeyPatch) -> str:
    """Every search runs as the list chooses it and, on PostgreSQL, with each way forced: walking the
    conversations newest first (common words) and collecting every match first (the rest)."""
    if request.param != "chosen":
        if backend != "postgresql":
            pytest.skip("SQLite searches one way")
        forced = request.param == "walk"

        async def choose(_connection: object, _words: list[str]) -> bool:
            return forced

        monkeypatch.setattr(search, "remembered_common", choose)
    return str(request.param)


async def _stored(api: httpx.AsyncClient, tenant: Tenant, channel: Channel, count: int) -> dict[str, str]:
    """The channel's conversations once ``count`` are stored: external id -> id."""

    async def enough() -> dict[str, str] | None:
        page = await api.get(
            "/v1/conversations", params={"channel_id": channel.id, "limit": 200}, headers=tenant.auth
        )
        found = {c["external_id"]: c["id"] for c in page.json()["data"]}
        return found if len(found) >= count else None

    return await wait_for(enough)


async def _search(api: httpx.AsyncClient, tenant: Tenant, q: str, **params: Any) -> list[str]:
    response = await api.get(
        "/v1/conversations", params={"q": q, "limit": 200, **params}, headers=tenant.auth
    )
    assert response.status_code == 200, response.text
    return [c["external_id"] for c in response.json()["data"]]


@pytest.fixture
async def corpus(api: httpx.AsyncClient, tenant: Tenant) -> tuple[Channel, dict[str, str]]:
    """Four conversations with known words and authors."""
    channel = await make_channel(api, tenant)
    now = utcnow()
    events = [
        message_event(
            thread="refund",
            author="u1",
            text="I want a refund for my broken Order",
            occurred_at=now.isoformat(),
        ),
        message_event(
            thread="shipping",
            author="u2",
            text="Where is my order? Shipping is late",
            occurred_at=now.isoformat(),
        ),
        message_event(
            thread="praise",
            author="u3",
            text="Grazie mille, servizio eccellente!",
            occurred_at=now.isoformat(),
        ),
        message_event(thread="quiet", author="mallory_k", text="ok", occurred_at=now.isoformat()),
    ]
    assert (await send_events(api, channel, events)).status_code == 202
    return channel, await _stored(api, tenant, channel, 4)


async def test_words_match_by_prefix_in_any_case_and_all_are_required(
    api: httpx.AsyncClient, tenant: Tenant, corpus: tuple[Channel, dict[str, str]]
) -> None:
    assert sorted(await _search(api, tenant, "order")) == ["refund", "shipping"]
    assert sorted(await _search(api, tenant, "ORD")) == ["refund", "shipping"]
    assert await _search(api, tenant, "order late") == ["shipping"]
    assert await _search(api, tenant, "eccellente") == ["praise"]
    assert await _search(api, tenant, "nothing-like-this") == []
    assert sorted(await _search(api, tenant, 'refund OR "order" (')) == ["refund"], "operators are words"


async def test_contact_names_match_too(
    api: httpx.AsyncClient, tenant: Tenant, corpus: tuple[Channel, dict[str, str]]
) -> None:
    # message_event names each author after its id: "Mallory_K".
    assert await _search(api, tenant, "mallory") == ["quiet"]


async def test_search_combines_with_every_filter(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant, corpus: tuple[Channel, dict[str, str]]
) -> None:
    _, ids = corpus
    agent = await add_user(engine, tenant.workspace_id, Role.AGENT)
    changed = await api.patch(
        f"/v1/conversations/{ids['refund']}",
        json={"status": "pending", "assignee_id": str(agent.user_id), "priority": "high"},
        headers=tenant.auth,
    )
    assert changed.status_code == 200, changed.text
    assert await _search(api, tenant, "order", status="pending") == ["refund"]
    assert await _search(api, tenant, "order", status="open") == ["shipping"]
    assert await _search(api, tenant, "order", assignee_id=str(agent.user_id)) == ["refund"]
    assert await _search(api, agent, "order", assignee_id="me", priority="high") == ["refund"]
    assert await _search(api, tenant, "order", assignee_id="none") == ["shipping"]
    assert sorted(await _search(api, agent, "order", unread="true")) == ["refund", "shipping"]
    await api.post(f"/v1/conversations/{ids['shipping']}/read", headers=agent.auth)
    assert await _search(api, agent, "order", unread="true") == ["refund"]
    later = (utcnow() + timedelta(hours=1)).isoformat()
    assert await _search(api, tenant, "order", since=later) == []
    assert sorted(await _search(api, tenant, "order", until=later)) == ["refund", "shipping"]


async def test_edits_and_deletions_change_what_matches(api: httpx.AsyncClient, tenant: Tenant) -> None:
    channel = await make_channel(api, tenant)
    created = message_event(thread="t", message_id="m1", text="the parcel is missing")
    await send_events(api, channel, created)
    await _stored(api, tenant, channel, 1)
    word = unique("zebra").replace("-", "")
    edited = message_event(kind="message.edited", thread="t", message_id="m1", text=f"found it {word}")
    assert (await send_events(api, channel, edited)).status_code == 202

    async def edited_matches() -> bool:
        return await _search(api, tenant, word, channel_id=channel.id) == ["t"]

    await wait_for(edited_matches)
    assert await _search(api, tenant, "parcel", channel_id=channel.id) == []

    deleted = message_event(kind="message.deleted", thread="t", message_id="m1")
    assert (await send_events(api, channel, deleted)).status_code == 202

    async def gone() -> bool:
        return await _search(api, tenant, word, channel_id=channel.id) == []

    await wait_for(gone)


async def test_search_never_crosses_workspaces(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant, corpus: tuple[Channel, dict[str, str]]
) -> None:
    other = await make_tenant(engine)
    assert await _search(api, other, "order") == []
    assert await _search(api, other, "mallory") == []


@pytest.mark.parametrize("q", ["!!!", "  ", "---"])
async def test_a_query_without_words_is_a_clear_400(api: httpx.AsyncClient, tenant: Tenant, q: str) -> None:
    response = await api.get("/v1/conversations", params={"q": q}, headers=tenant.auth)
    assert response.status_code == 400
    assert response.json()["code"] in {"invalid_query", "validation_failed"}


async def test_search_pages_with_the_cursor(api: httpx.AsyncClient, tenant: Tenant) -> None:
    channel = await make_channel(api, tenant)
    start = utcnow()
    events = [
        message_event(
            thread=f"t{i}", text=f"invoice number {i}", occurred_at=(start + timedelta(seconds=i)).isoformat()
        )
        for i in range(5)
    ]
    await send_events(api, channel, events)
    await _stored(api, tenant, channel, 5)
    seen: list[str] = []
    cursor = None
    while True:
        params = {
            "q": "invoice",
            "channel_id": channel.id,
            "limit": 2,
            **({"cursor": cursor} if cursor else {}),
        }
        page = (await api.get("/v1/conversations", params=params, headers=tenant.auth)).json()
        seen += [c["external_id"] for c in page["data"]]
        if not page["has_more"]:
            break
        cursor = page["next_cursor"]
    assert seen == [f"t{i}" for i in reversed(range(5))]


async def test_emails_order_numbers_and_dotted_names_match_their_parts(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    channel = await make_channel(api, tenant)
    text = "Write to john.doe@example.com about ORD-123, see help.example.org/v1.2"
    await send_events(api, channel, message_event(thread="mail", text=text))
    await _stored(api, tenant, channel, 1)
    for q in ("john", "example", "john.doe@example.com", "ORD-123", "123", "v1", "help.example.org"):
        assert await _search(api, tenant, q, channel_id=channel.id) == ["mail"], q
