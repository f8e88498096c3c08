"""Sentiment through the API: shown on messages and conversations, filtered by in the list, the search,
bulk actions and the counts, and corrected by agents (the correction wins everywhere and is audited
and announced). The worker scores with a keyword analyzer named in the settings."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.inbox.config import InboxSettings
from services.inbox.models import AuditEntry, OutboxEntry
from services.inbox.service.access import Role
from shared.db import session_factory
from shared.events import utcnow
from tests.support import (
    Channel,
    Tenant,
    add_user,
    conversation_messages,
    make_channel,
    make_tenant,
    message_event,
    send_events,
    unique,
    wait_for,
)

pytestmark = pytest.mark.e2e


@pytest.fixture
def inbox_settings(settings_kwargs: dict[str, object]) -> InboxSettings:
    """This module's inbox: messages scored by the keyword analyzer of the tests."""
    return InboxSettings(
        **settings_kwargs,  # type: ignore[arg-type]
        sentiment_analyzer="tests.services.inbox.analyzers:KeywordAnalyzer",
    )


async def _say(
    api: httpx.AsyncClient, tenant: Tenant, channel: Channel, thread: str, *texts: str
) -> list[dict[str, Any]]:
    """Customer messages in a thread, a minute apart; returns the thread's messages once stored."""
    start = utcnow() - timedelta(hours=1)
    events = [
        message_event(thread=thread, text=text, occurred_at=(start + timedelta(minutes=i)).isoformat())
        for i, text in enumerate(texts)
    ]
    assert (await send_events(api, channel, events)).status_code == 202

    async def stored() -> list[dict[str, Any]] | None:
        messages = await conversation_messages(api, tenant, channel.id, thread)
        return messages if len(messages) == len(texts) else None

    return await wait_for(stored)


async def _list(api: httpx.AsyncClient, tenant: Tenant, **params: Any) -> list[str]:
    response = await api.get("/v1/conversations", params={"limit": 200, **params}, headers=tenant.auth)
    assert response.status_code == 200, response.text
    return sorted(c["external_id"] for c in response.json()["data"])


def _sentiment_path(message: dict[str, Any]) -> str:
    return f"/v1/conversations/{message['conversation_id']}/messages/{message['id']}/sentiment"


async def _audit(engine: AsyncEngine, message_id: str) -> list[AuditEntry]:
    async with session_factory(engine)() as session:
        query = select(AuditEntry).where(AuditEntry.target_id == message_id).order_by(AuditEntry.created_at)
        return list((await session.scalars(query)).all())


async def _announced(engine: AsyncEngine, workspace_id: uuid.UUID, event_type: str) -> list[dict[str, Any]]:
    async with session_factory(engine)() as session:
        query = (
            select(OutboxEntry.payload)
            .where(OutboxEntry.subject == f"domain.{workspace_id}.{event_type}")
            .order_by(OutboxEntry.created_at)
        )
        return [orjson.loads(payload) for payload in (await session.scalars(query)).all()]


@pytest.fixture
async def moods(api: httpx.AsyncClient, tenant: Tenant) -> Channel:
    """A channel with an angry, a happy, a calm and a silent (photo only) conversation."""
    channel = await make_channel(api, tenant)
    await _say(api, tenant, channel, "angry", "This is terrible, I hate it")
    await _say(api, tenant, channel, "happy", "thanks, great service")
    await _say(api, tenant, channel, "calm", "where is my parcel")
    photo = message_event(
        thread="silent", text=None, attachments=[{"type": "photo", "url": "https://x.test/p"}]
    )
    assert (await send_events(api, channel, photo)).status_code == 202
    await wait_for(lambda: conversation_messages(api, tenant, channel.id, "silent"))
    return channel


async def test_messages_and_conversations_show_their_sentiment(
    api: httpx.AsyncClient, tenant: Tenant, moods: Channel
) -> None:
    response = await api.get("/v1/conversations", params={"channel_id": moods.id}, headers=tenant.auth)
    by_thread = {c["external_id"]: c for c in response.json()["data"]}
    assert {thread: c["sentiment"] for thread, c in by_thread.items()} == {
        "angry": "negative",
        "happy": "positive",
        "calm": "neutral",
        "silent": None,
    }
    [angry] = await conversation_messages(api, tenant, moods.id, "angry")
    assert angry["sentiment"] == {
        "label": "negative",
        "score": -0.75,
        "language": "en",
        "corrected": False,
        "corrected_by": None,
        "corrected_at": None,
    }
    [photo] = await conversation_messages(api, tenant, moods.id, "silent")
    assert photo["sentiment"] is None
    one = await api.get(f"/v1/conversations/{by_thread['angry']['id']}", headers=tenant.auth)
    assert one.json()["sentiment"] == "negative"


async def test_the_list_search_counts_and_bulk_actions_filter_by_sentiment(
    api: httpx.AsyncClient, tenant: Tenant, moods: Channel
) -> None:
    assert await _list(api, tenant, sentiment="negative") == ["angry"]
    assert await _list(api, tenant, sentiment="negative,positive") == ["angry", "happy"]
    assert await _list(api, tenant, sentiment=["neutral", "negative"]) == ["angry", "calm"]
    assert await _list(api, tenant, sentiment="negative", q="terrible") == ["angry"]
    assert await _list(api, tenant, sentiment="positive", q="terrible") == []
    assert await _list(api, tenant, sentiment="positive", status="open", channel_id=moods.id) == ["happy"]

    counts = await api.get("/v1/conversations/counts", params={"sentiment": "negative"}, headers=tenant.auth)
    assert counts.status_code == 200, counts.text
    assert (counts.json()["by_status"]["open"], counts.json()["unassigned"]) == (1, 1)
    everything = await api.get("/v1/conversations/counts", headers=tenant.auth)
    assert everything.json()["by_status"]["open"] == 4

    bulk = await api.post(
        "/v1/conversations/bulk",
        json={"filter": {"sentiment": "negative"}, "set": {"priority": "high"}},
        headers=tenant.auth,
    )
    assert bulk.status_code == 200, bulk.text
    assert (bulk.json()["matched"], bulk.json()["updated"]) == (1, 1)
    assert await _list(api, tenant, priority="high") == ["angry"]
    listed = await api.post(
        "/v1/conversations/bulk",
        json={"filter": {"sentiment": ["positive", "neutral"]}, "set": {"priority": "low"}},
        headers=tenant.auth,
    )
    assert listed.json()["matched"] == 2, listed.text


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("/v1/conversations", "angry"),
        ("/v1/conversations", "negative,furious"),
        ("/v1/conversations", ""),
        ("/v1/conversations/counts", "happy"),
    ],
)
async def test_an_unknown_sentiment_is_a_clear_400(
    api: httpx.AsyncClient, tenant: Tenant, path: str, value: str
) -> None:
    response = await api.get(path, params={"sentiment": value}, headers=tenant.auth)
    assert response.status_code == 400, response.text
    body = response.json()
    assert body["code"] == "validation_failed"
    assert "negative, neutral, positive" in body["detail"]
    assert body["errors"][0]["field"] == "query.sentiment"


async def test_a_bulk_filter_with_an_unknown_sentiment_is_a_400(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    response = await api.post(
        "/v1/conversations/bulk",
        json={"filter": {"sentiment": "furious"}, "set": {"priority": "high"}},
        headers=tenant.auth,
    )
    assert response.status_code == 400, response.text
    assert response.json()["code"] == "validation_failed"


async def test_a_correction_wins_everywhere_and_removing_it_brings_the_analyzer_back(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    agent = await add_user(engine, tenant.workspace_id, Role.AGENT)
    channel = await make_channel(api, tenant)
    thread = unique("sarcasm")
    [message] = await _say(api, tenant, channel, thread, "oh great, it's broken again")
    assert message["sentiment"]["label"] == "negative"
    path = _sentiment_path(message)

    response = await api.put(path, json={"label": "positive"}, headers={**agent.auth, "If-Match": '"1"'})
    assert response.status_code == 200, response.text
    corrected = response.json()
    assert response.headers["etag"] == '"2"'
    assert corrected["conversation"]["sentiment"] == "positive"
    assert corrected["conversation"]["version"] == 2
    shown = corrected["message"]["sentiment"]
    assert (shown["label"], shown["score"], shown["corrected"]) == ("positive", -0.75, True)
    assert shown["corrected_by"] == str(agent.user_id)
    assert shown["corrected_at"] is not None
    again = await api.get(f"/v1/messages/{message['id']}", headers=tenant.auth)
    assert again.json()["sentiment"] == shown
    assert await _list(api, tenant, sentiment="positive", channel_id=channel.id) == [thread]
    assert await _list(api, tenant, sentiment="negative", channel_id=channel.id) == []

    [entry] = await _audit(engine, message["id"])
    assert (entry.action, entry.actor_user_id) == ("message.sentiment_corrected", agent.user_id)
    assert entry.before == {
        "sentiment": "negative",
        "correction": None,
        "conversation_sentiment": "negative",
        "version": 1,
    }
    assert entry.after == {"sentiment": "positive", "correction": "positive", "conversation_sentiment": "positive", "version": 2}  # fmt: skip
    [event] = await _announced(engine, tenant.workspace_id, "conversation.sentiment_corrected")
    payload = event["payload"]
    assert (payload["conversation_id"], payload["message_id"]) == (message["conversation_id"], message["id"])
    assert payload["actor_user_id"] == str(agent.user_id)
    assert payload["changes"]["sentiment"] == {"before": "negative", "after": "positive"}
    assert payload["changes"]["version"] == {"before": 1, "after": 2}
    data = payload["data"]
    assert data["channel_id"] == channel.id
    assert data["message_id"] == message["id"]
    assert (data["model_label"], data["model_score"], data["language"]) == ("negative", -0.75, "en")
    assert (data["corrected_label"], data["corrected_by"]) == ("positive", str(agent.user_id))
    assert datetime.fromisoformat(data["sent_at"]) == datetime.fromisoformat(message["sent_at"])

    # The same correction again changes nothing: no new version, audit entry or event.
    same = await api.put(path, json={"label": "positive"}, headers=agent.auth)
    assert same.json()["conversation"]["version"] == 2
    assert len(await _audit(engine, message["id"])) == 1

    removed = await api.delete(path, headers=agent.auth)
    assert removed.status_code == 200, removed.text
    assert removed.headers["etag"] == '"3"'
    reverted = removed.json()
    assert reverted["message"]["sentiment"] == {**message["sentiment"]}
    assert (reverted["conversation"]["sentiment"], reverted["conversation"]["version"]) == ("negative", 3)
    assert await _list(api, tenant, sentiment="negative", channel_id=channel.id) == [thread]
    assert [e.action for e in await _audit(engine, message["id"])] == [
        "message.sentiment_corrected",
        "message.sentiment_correction_removed",
    ]
    events = await _announced(engine, tenant.workspace_id, "conversation.sentiment_corrected")
    assert len(events) == 2
    assert events[1]["payload"]["changes"]["sentiment"] == {"before": "positive", "after": "negative"}
    assert (
        events[1]["payload"]["data"]["corrected_label"],
        events[1]["payload"]["data"]["corrected_by"],
    ) == (
        None,
        None,
    )
    # Removing a correction that is not there changes nothing either.
    assert (await api.delete(path, headers=agent.auth)).json()["conversation"]["version"] == 3
    assert len(await _audit(engine, message["id"])) == 2


async def test_correcting_an_older_message_keeps_the_conversations_version(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    channel = await make_channel(api, tenant)
    older, newer = await _say(api, tenant, channel, unique("two"), "I hate the delay", "thanks, great")
    response = await api.put(_sentiment_path(older), json={"label": "neutral"}, headers=tenant.auth)
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["message"]["sentiment"]["label"] == "neutral"
    # The newest customer message speaks for the conversation: its sentiment, so its version, stay.
    assert (body["conversation"]["sentiment"], body["conversation"]["version"]) == ("positive", 1)
    [event] = await _announced(engine, tenant.workspace_id, "conversation.sentiment_corrected")
    assert set(event["payload"]["changes"]) == {"sentiment", "correction"}
    assert event["payload"]["data"]["corrected_by"] is None  # an integration token has no user
    assert newer["sentiment"]["label"] == "positive"


async def test_corrections_are_refused_clearly(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    channel = await make_channel(api, tenant)
    [message] = await _say(api, tenant, channel, unique("refused"), "I hate it")
    [elsewhere] = await _say(api, tenant, channel, unique("elsewhere"), "thanks")
    path = _sentiment_path(message)

    note = await api.post(
        f"/v1/conversations/{message['conversation_id']}/notes", json={"text": "angry?"}, headers=tenant.auth
    )
    refused = await api.put(_sentiment_path(note.json()), json={"label": "negative"}, headers=tenant.auth)
    assert (refused.status_code, refused.json()["code"]) == (409, "sentiment_not_applicable")

    mixed = f"/v1/conversations/{message['conversation_id']}/messages/{elsewhere['id']}/sentiment"
    missing = await api.put(mixed, json={"label": "negative"}, headers=tenant.auth)
    assert (missing.status_code, missing.json()["code"]) == (404, "message_not_found")

    for body in ({"label": "furious"}, {}, {"label": "negative", "score": 1}):
        bad = await api.put(path, json=body, headers=tenant.auth)
        assert (bad.status_code, bad.json()["code"]) == (400, "validation_failed"), body

    stale = await api.put(path, json={"label": "positive"}, headers={**tenant.auth, "If-Match": '"7"'})
    assert (stale.status_code, stale.json()["code"]) == (412, "version_mismatch")

    viewer = await add_user(engine, tenant.workspace_id, Role.VIEWER)
    assert (await api.put(path, json={"label": "positive"}, headers=viewer.auth)).status_code == 403
    assert (await api.delete(path, headers=viewer.auth)).status_code == 403
    stranger = await add_user(engine, (await make_tenant(engine)).workspace_id, Role.ADMIN)
    foreign = await api.put(path, json={"label": "positive"}, headers=stranger.auth)
    assert (foreign.status_code, foreign.json()["code"]) == (404, "conversation_not_found")

    unchanged = await api.get(f"/v1/messages/{message['id']}", headers=tenant.auth)
    assert unchanged.json()["sentiment"] == message["sentiment"]


async def test_workflow_and_reopen_events_name_the_channel(
    api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    agent = await add_user(engine, tenant.workspace_id, Role.AGENT)
    channel = await make_channel(api, tenant)
    thread = unique("events")
    [message] = await _say(api, tenant, channel, thread, "hello")
    conversation_id = message["conversation_id"]
    response = await api.patch(
        f"/v1/conversations/{conversation_id}",
        json={"assignee_id": str(agent.user_id), "status": "resolved"},
        headers=tenant.auth,
    )
    assert response.status_code == 200, response.text
    for event_type in ("conversation.updated", "conversation.assigned"):
        [event] = await _announced(engine, tenant.workspace_id, event_type)
        assert event["payload"]["data"]["channel_id"] == channel.id, event_type

    # A customer writing again reopens it: that announcement names the channel too.
    later = message_event(thread=thread, text="still there?", occurred_at=utcnow().isoformat())
    assert (await send_events(api, channel, later)).status_code == 202

    async def reopened() -> list[dict[str, Any]] | None:
        events = await _announced(engine, tenant.workspace_id, "conversation.updated")
        return [e for e in events if e["payload"]["data"].get("reason") == "inbound_message"] or None

    [event] = await wait_for(reopened)
    assert event["payload"]["data"]["channel_id"] == channel.id
