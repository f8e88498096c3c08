"""Live updates (``GET /v1/stream``) and presence, read the way a browser's EventSource reads them.

The API runs under uvicorn on a real port (a streamed response has to reach the client while the
request is still going on), with a real nats-server and both databases. Domain events are produced
here, through the outbox as the inbox does (``announce`` then ``publish_outbox``), so these tests do
not depend on which use cases announce what.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
import uvicorn
from sqlalchemy.ext.asyncio import AsyncEngine

from services.inbox.app import component
from services.inbox.config import InboxSettings
from services.inbox.live import DomainTail, EventTooLarge, domain_bounds
from services.inbox.models import Conversation
from services.inbox.outbox import publish_outbox
from services.inbox.service.access import Role
from services.inbox.service.events import announce
from services.inbox.state import InboxState
from shared.bus.client import BusUnavailable
from shared.bus.server import EmbeddedNats
from shared.bus.topology import DOMAIN
from shared.db import session_factory
from shared.events import utcnow
from shared.events.domain import (
    DomainChange,
    DomainEvent,
    DomainType,
    domain_subject,
    workspace_domain_subjects,
)
from shared.http import build_app
from tests.support import (
    Tenant,
    add_channel_row,
    add_token,
    add_user,
    free_port,
    make_channel,
    make_tenant,
    message_event,
    send_events,
    unique,
    wait_for,
)

pytestmark = pytest.mark.e2e

HEARTBEAT = 0.3
TYPING_SECONDS = 1.0
BATCH = 4  # small, so that every test crosses many pull batches
TOKEN_RECHECK = 0.5  # how stale a stream's (and the token cache's) view of a token may get


@dataclass
class Sse:
    """One thing read from an event stream: an event, or a comment line."""

    event: str | None = None
    id: str | None = None
    data: str = ""
    retry: str | None = None
    comment: str | None = None

    def json(self) -> dict[str, Any]:
        """The data as JSON."""
        body: dict[str, Any] = json.loads(self.data)
        return body


class SseReader:
    """Parses ``text/event-stream`` as the HTML standard says, one event (or comment) at a time."""

    def __init__(self, response: httpx.Response) -> None:
        self.response = response
        self._lines = response.aiter_lines()

    async def next(self, *, timeout: float = 10.0, comments: bool = False) -> Sse:
        """The next event (or comment, when ``comments``); fails after ``timeout``."""
        async with asyncio.timeout(timeout):
            current = Sse()
            seen_field = False
            while True:
                line = await anext(self._lines)
                if line == "":
                    if seen_field:
                        return current
                    continue
                name, _, value = line.partition(":")
                value = value.removeprefix(" ")
                if name == "":
                    if comments:
                        return Sse(comment=value)
                    continue
                seen_field = True
                if name == "data":
                    current.data = f"{current.data}\n{value}" if current.data else value
                elif name in ("event", "id", "retry"):
                    setattr(current, name, value)

    async def events(self, count: int, *, timeout: float = 10.0) -> list[Sse]:
        """The next ``count`` events."""
        return [await self.next(timeout=timeout) for _ in range(count)]


@dataclass
class Live:
    """The API on a real port, its process state, and a client for it."""

    client: httpx.AsyncClient
    state: InboxState

    @asynccontextmanager
    async def stream(
        self, auth: dict[str, str], *, headers: dict[str, str] | None = None, **params: Any
    ) -> AsyncIterator[SseReader]:
        """An open ``GET /v1/stream``, closed (the client disconnects) on exit."""
        async with self.client.stream(
            "GET", "/v1/stream", params=params, headers={**auth, **(headers or {})}
        ) as response:
            assert response.status_code == 200, (await response.aread()).decode()
            assert response.headers["content-type"].startswith("text/event-stream")
            yield SseReader(response)

    async def announce(
        self,
        tenant: Tenant,
        event_type: DomainType,
        *,
        conversation_id: uuid.UUID | None = None,
        **data: Any,
    ) -> str:
        """Announce a domain event the way the inbox does (outbox, then publish); returns its id."""
        async with self.state.transaction() as session:
            event_id = await announce(
                session,
                tenant.workspace_id,
                event_type,
                DomainChange(conversation_id=conversation_id, data=data),
                utcnow(),
            )
        published = await publish_outbox(
            self.state.sessions, self.state.read_sessions, self.state.bus, ids=[event_id]
        )
        assert published == 1
        return event_id

    async def publish(self, tenant: Tenant, marks: list[str], *, padding: int = 0) -> None:
        """Publish domain events straight on the bus, as presence does."""
        await self.state.bus.publish_many(
            [
                (
                    domain_subject(tenant.workspace_id, "conversation.updated"),
                    DomainEvent(
                        type="conversation.updated",
                        workspace=str(tenant.workspace_id),
                        source="tests",
                        payload=DomainChange(data={"mark": mark, "padding": "x" * padding}),
                    ),
                )
                for mark in marks
            ]
        )

    async def live_consumers(self) -> list[str]:
        """The per-client consumers on the DOMAIN stream now."""
        bus = self.state.bus
        consumers = await bus.js.consumers_info(bus.names.stream(DOMAIN.name))
        return [c.name for c in consumers if c.name.startswith("live-")]


class _Server(uvicorn.Server):
    @contextlib.contextmanager
    def capture_signals(self) -> Iterator[None]:
        yield  # the test runner owns the process's signals


@pytest.fixture
async def live(settings_kwargs: dict[str, object]) -> AsyncIterator[Live]:
    """The inbox API served by uvicorn on a free port, with short heartbeats and typing presence."""
    settings = InboxSettings(
        **settings_kwargs,  # type: ignore[arg-type]
        stream_heartbeat_seconds=HEARTBEAT,
        presence_typing_seconds=TYPING_SECONDS,
        stream_batch_size=BATCH,
        token_cache_seconds=TOKEN_RECHECK,
    )
    app = build_app("piazza-stream-test", [component(settings)])
    async with app.router.lifespan_context(app):
        server = _Server(
            uvicorn.Config(
                app,
                host="127.0.0.1",
                port=free_port(),
                lifespan="off",
                log_config=None,
                ws="none",
                timeout_graceful_shutdown=2,
            )
        )
        serving = asyncio.create_task(server.serve())

        async def started() -> bool:
            if serving.done():
                serving.result()  # raise what stopped it
            return server.started

        await wait_for(started)
        base_url = f"http://127.0.0.1:{server.config.port}"
        try:
            async with httpx.AsyncClient(base_url=base_url, timeout=10.0) as client:
                yield Live(client, app.state.inbox)
        finally:
            server.should_exit = True
            await serving


async def _conversation(engine: AsyncEngine, tenant: Tenant) -> uuid.UUID:
    """A conversation of the tenant's, written straight into the store."""
    channel_id = await add_channel_row(engine, tenant)
    now = utcnow()
    conversation_id = uuid.uuid4()
    async with session_factory(engine)() as session, session.begin():
        session.add(
            Conversation(
                id=conversation_id,
                workspace_id=tenant.workspace_id,
                channel_id=channel_id,
                external_id=unique("thread"),
                last_activity_at=now,
                created_at=now,
                updated_at=now,
            )
        )
    return conversation_id


def _marks(events: list[Sse]) -> list[str]:
    return [e.json()["payload"]["data"]["mark"] for e in events]


async def test_a_client_that_reconnects_gets_exactly_the_events_it_missed(
    live: Live, engine: AsyncEngine, tenant: Tenant
) -> None:
    conversation = await _conversation(engine, tenant)
    other = await make_tenant(engine)
    async with live.stream(tenant.auth) as reader:
        ready = await reader.next()
        assert ready.event == "stream.ready"
        assert ready.retry is not None
        first = [
            await live.announce(tenant, "conversation.message_received", conversation_id=conversation, mark=m)
            for m in ("a", "b", "c")
        ]
        received = await reader.events(3)
    assert [e.event for e in received] == ["conversation.message_received"] * 3
    assert [e.json()["id"] for e in received] == first
    assert _marks(received) == ["a", "b", "c"]
    sequences = [int(e.id or 0) for e in received]
    assert sequences == sorted(sequences)
    assert sequences[0] > int(ready.id or 0)
    body = received[0].json()
    assert body["type"] == "conversation.message_received"
    assert body["payload"]["conversation_id"] == str(conversation)
    assert body["occurred_at"]

    # While the client is away: its workspace's events, interleaved with another workspace's.
    for mark, event_type in [
        ("d", "conversation.updated"),
        ("e", "conversation.assigned"),
        ("f", "conversation.message_sent"),
        ("g", "conversation.message_failed"),
    ]:
        await live.announce(other, "conversation.updated", mark=f"other-{mark}")
        await live.announce(tenant, event_type, conversation_id=conversation, mark=mark)

    resume = received[-1].id
    assert resume is not None
    async with live.stream(tenant.auth, headers={"Last-Event-ID": resume}) as reader:
        ready = await reader.next()
        assert (ready.event, ready.id) == ("stream.ready", resume)
        missed = await reader.events(4)
        assert _marks(missed) == ["d", "e", "f", "g"]
        assert [e.event for e in missed] == [
            "conversation.updated",
            "conversation.assigned",
            "conversation.message_sent",
            "conversation.message_failed",
        ]
        # Nothing else was pending: the next event is one announced now.
        await live.announce(tenant, "conversation.updated", conversation_id=conversation, mark="h")
        assert _marks([await reader.next()]) == ["h"]
        last = missed[-1].id

    # Clients that cannot set headers resume with the query parameter; the header wins when both are sent.
    async with live.stream(tenant.auth, last_event_id=last) as reader:
        assert (await reader.next()).event == "stream.ready"
        assert _marks([await reader.next()]) == ["h"]
    async with live.stream(tenant.auth, headers={"Last-Event-ID": str(last)}, last_event_id="0") as reader:
        assert (await reader.next()).id == last
        assert _marks([await reader.next()]) == ["h"]


async def test_a_client_that_disconnects_before_any_event_resumes_from_the_ready_event(
    live: Live, tenant: Tenant
) -> None:
    async with live.stream(tenant.auth) as reader:
        ready = await reader.next()
    await live.announce(tenant, "contact.updated", mark="while-away")
    async with live.stream(tenant.auth, headers={"Last-Event-ID": ready.id or ""}) as reader:
        await reader.next()
        assert _marks([await reader.next()]) == ["while-away"]


async def test_a_stream_never_carries_another_workspaces_events(
    live: Live, engine: AsyncEngine, tenant: Tenant
) -> None:
    other = await make_tenant(engine)
    await live.announce(other, "conversation.updated", mark="other-before")
    await live.announce(tenant, "conversation.updated", mark="mine-before")
    # Replaying the whole stream shows only this workspace's history...
    async with live.stream(tenant.auth, last_event_id="0") as reader:
        await reader.next()
        assert _marks([await reader.next()]) == ["mine-before"]
        # ...and live, only its new events.
        await live.announce(other, "conversation.updated", mark="other-live")
        await live.announce(tenant, "conversation.updated", mark="mine-live")
        assert _marks([await reader.next()]) == ["mine-live"]


async def test_filters_narrow_the_stream_to_conversations_and_types(
    live: Live, engine: AsyncEngine, tenant: Tenant
) -> None:
    one, two, three = [await _conversation(engine, tenant) for _ in range(3)]
    async with (
        live.stream(tenant.auth, conversation_id=[str(one), str(two)]) as by_conversation,
        live.stream(tenant.auth, types="conversation.assigned,presence.updated") as by_type,
        live.stream(tenant.auth, types=["conversation.*", "conversation.updated"]) as by_family,
    ):
        for reader in (by_conversation, by_type, by_family):
            assert (await reader.next()).event == "stream.ready"
        await live.announce(tenant, "conversation.updated", conversation_id=three, mark="3-updated")
        await live.announce(tenant, "contact.updated", mark="contact")
        await live.announce(tenant, "conversation.updated", conversation_id=one, mark="1-updated")
        await live.announce(tenant, "conversation.assigned", conversation_id=three, mark="3-assigned")
        await live.announce(tenant, "conversation.read", conversation_id=two, mark="2-read")
        assert _marks(await by_conversation.events(2)) == ["1-updated", "2-read"]
        assert _marks(await by_type.events(1)) == ["3-assigned"]
        assert _marks(await by_family.events(4)) == ["3-updated", "1-updated", "3-assigned", "2-read"]
        # Nothing else matched: the next event on each is the last one announced.
        await live.announce(tenant, "presence.updated", conversation_id=one, mark="end")
        for reader in (by_conversation, by_type):
            assert _marks([await reader.next()]) == ["end"]


async def test_analytics_alerts_reports_and_sentiment_corrections_reach_live_clients(
    live: Live, tenant: Tenant
) -> None:
    async with (
        live.stream(tenant.auth, types="alert.*,report.generated") as analytics,
        live.stream(tenant.auth, types="conversation.sentiment_corrected") as corrections,
    ):
        for reader in (analytics, corrections):
            assert (await reader.next()).event == "stream.ready"
        published: list[tuple[str, DomainType]] = [
            ("opened", "alert.opened"),
            ("updated", "alert.updated"),
            ("closed", "alert.closed"),
            ("report", "report.generated"),
            ("corrected", "conversation.sentiment_corrected"),
        ]
        # As the analytics service publishes them: straight on the bus, under the same subjects.
        await live.state.bus.publish_many(
            [
                (
                    domain_subject(tenant.workspace_id, event_type),
                    DomainEvent(
                        type=event_type,
                        workspace=str(tenant.workspace_id),
                        source="analytics",
                        payload=DomainChange(data={"mark": mark}),
                    ),
                )
                for mark, event_type in published
            ]
        )
        received = await analytics.events(4)
        assert [(e.event, *_marks([e])) for e in received] == [(t, m) for m, t in published[:4]]
        assert _marks([await corrections.next()]) == ["corrected"]


async def test_an_idle_stream_sends_heartbeats(live: Live, tenant: Tenant) -> None:
    async with live.stream(tenant.auth) as reader:
        assert (await reader.next(comments=True)).event == "stream.ready"
        heartbeats = [await reader.next(comments=True, timeout=HEARTBEAT * 10) for _ in range(2)]
    assert [h.comment for h in heartbeats] == ["heartbeat", "heartbeat"]


async def test_a_position_the_stream_no_longer_holds_resets_the_client(live: Live, tenant: Tenant) -> None:
    await live.announce(tenant, "conversation.updated", mark="old")
    async with live.stream(tenant.auth) as reader:
        position = int((await reader.next()).id or 0)
    await live.announce(tenant, "conversation.updated", mark="expired")
    await live.announce(tenant, "conversation.updated", mark="kept")
    bus = live.state.bus
    await bus.js.purge_stream(bus.names.stream(DOMAIN.name), keep=1)  # as age limits would

    async with live.stream(tenant.auth, headers={"Last-Event-ID": str(position)}) as reader:
        reset = await reader.next()
        assert reset.event == "stream.reset"
        assert reset.json()["reason"] == "expired"
        assert reset.json()["requested"] == position
        assert int(reset.id or 0) == reset.json()["last_event_id"] > position
        # After the reset the stream goes on live from the reset's id.
        await live.announce(tenant, "conversation.updated", mark="after")
        assert _marks([await reader.next()]) == ["after"]

    async with live.stream(tenant.auth, headers={"Last-Event-ID": "999999999"}) as reader:
        reset = await reader.next()
        assert (reset.event, reset.json()["reason"]) == ("stream.reset", "unknown_position")


@pytest.mark.parametrize(
    ("params", "headers", "code"),
    [
        ({}, {"Last-Event-ID": "yesterday"}, "invalid_last_event_id"),
        ({"last_event_id": "-4"}, {}, "invalid_last_event_id"),
        ({"types": "conversation.exploded"}, {}, "validation_failed"),
        ({"types": "nothing.*"}, {}, "validation_failed"),
        ({"conversation_id": "not-a-uuid"}, {}, "validation_failed"),
    ],
)
async def test_bad_stream_requests_are_400(
    live: Live, tenant: Tenant, params: dict[str, str], headers: dict[str, str], code: str
) -> None:
    response = await live.client.get("/v1/stream", params=params, headers={**tenant.auth, **headers})
    assert response.status_code == 400
    assert response.json()["code"] == code


async def test_every_role_reads_its_workspace_stream_and_no_one_else_does(
    live: Live, engine: AsyncEngine, tenant: Tenant
) -> None:
    assert (await live.client.get("/v1/stream")).status_code == 401
    assert (await live.client.get("/v1/stream", headers={"Authorization": "Bearer nope"})).status_code == 401
    viewer = await add_user(engine, tenant.workspace_id, Role.VIEWER)
    integration = Tenant(tenant.workspace_id, await add_token(engine, tenant.workspace_id, Role.VIEWER))
    for caller in (viewer, integration):
        async with live.stream(caller.auth) as reader:
            assert (await reader.next()).event == "stream.ready"
            await live.announce(tenant, "conversation.updated", mark="seen")
            assert _marks([await reader.next()]) == ["seen"]

    mine = await _conversation(engine, tenant)
    other = await make_tenant(engine)
    response = await live.client.get("/v1/stream", params={"conversation_id": str(mine)}, headers=other.auth)
    assert response.status_code == 404
    assert response.json()["code"] == "conversation_not_found"


async def test_presence_is_shared_on_the_stream_listed_and_lapses(
    live: Live, engine: AsyncEngine, tenant: Tenant
) -> None:
    conversation = await _conversation(engine, tenant)
    agent = await add_user(engine, tenant.workspace_id, Role.AGENT, name="Ann")
    colleague = await add_user(engine, tenant.workspace_id, Role.AGENT, name="Bob")
    path = f"/v1/conversations/{conversation}/presence"

    async def present() -> list[dict[str, Any]]:
        response = await live.client.get(path, headers=colleague.auth)
        assert response.status_code == 200, response.text
        data: list[dict[str, Any]] = response.json()["data"]
        return data

    async with live.stream(colleague.auth, types="presence.updated") as reader:
        await reader.next()
        response = await live.client.post(path, json={"state": "viewing"}, headers=agent.auth)
        assert response.status_code == 200, response.text
        assert response.json()["state"] == "viewing"
        event = await reader.next()
        assert event.event == "presence.updated"
        payload = event.json()["payload"]
        assert payload["conversation_id"] == str(conversation)
        assert payload["actor_user_id"] == str(agent.user_id)
        assert payload["data"]["user_name"] == "Ann"
        assert payload["data"]["state"] == "viewing"
        assert payload["data"]["expires_at"] > payload["data"]["updated_at"]
        assert [(p["user_name"], p["state"]) for p in await present()] == [("Ann", "viewing")]

        await live.client.post(path, json={"state": "viewing"}, headers=colleague.auth)
        await live.client.post(path, json={"state": "typing"}, headers=agent.auth)
        assert [e.json()["payload"]["data"]["state"] for e in await reader.events(2)] == ["viewing", "typing"]
        assert [(p["user_name"], p["state"]) for p in await present()] == [
            ("Ann", "typing"),
            ("Bob", "viewing"),
        ]

        # Typing lapses unless renewed; going idle leaves at once, and says so on the stream.
        await wait_for(lambda: _without(present, "Ann"), timeout=TYPING_SECONDS * 10)
        await live.client.post(path, json={"state": "idle"}, headers=colleague.auth)
        idle = await reader.next()
        assert idle.json()["payload"]["data"]["state"] == "idle"
        assert idle.json()["payload"]["data"]["expires_at"] is None
        assert await present() == []


async def _without(present: Any, name: str) -> bool:
    return name not in [p["user_name"] for p in await present()]


async def test_presence_roles_and_workspace_isolation(
    live: Live, engine: AsyncEngine, tenant: Tenant
) -> None:
    conversation = await _conversation(engine, tenant)
    path = f"/v1/conversations/{conversation}/presence"
    viewer = await add_user(engine, tenant.workspace_id, Role.VIEWER)
    admin = await add_user(engine, tenant.workspace_id, Role.ADMIN)

    assert (await live.client.post(path, json={"state": "viewing"})).status_code == 401
    assert (await live.client.get(path)).status_code == 401
    # Viewers may be seen looking, never typing (they cannot reply).
    assert (await live.client.post(path, json={"state": "viewing"}, headers=viewer.auth)).status_code == 200
    response = await live.client.post(path, json={"state": "typing"}, headers=viewer.auth)
    assert (response.status_code, response.json()["code"]) == (403, "forbidden")
    assert (await live.client.post(path, json={"state": "typing"}, headers=admin.auth)).status_code == 200
    # A token that acts for no user (an integration's) has no presence.
    response = await live.client.post(path, json={"state": "viewing"}, headers=tenant.auth)
    assert (response.status_code, response.json()["code"]) == (403, "user_required")
    response = await live.client.post(path, json={"state": "asleep"}, headers=admin.auth)
    assert response.status_code == 400
    assert (await live.client.get(path, headers=tenant.auth)).status_code == 200

    other = await make_tenant(engine)
    stranger = await add_user(engine, other.workspace_id, Role.ADMIN)
    for response in (
        await live.client.get(path, headers=stranger.auth),
        await live.client.post(path, json={"state": "viewing"}, headers=stranger.auth),
        await live.client.get(f"/v1/conversations/{uuid.uuid4()}/presence", headers=admin.auth),
    ):
        assert (response.status_code, response.json()["code"]) == (404, "conversation_not_found")
    # Nothing of the other workspace's presence leaks into this one's list, nor the reverse.
    theirs = await _conversation(engine, other)
    await live.client.post(
        f"/v1/conversations/{theirs}/presence", json={"state": "viewing"}, headers=stranger.auth
    )
    listed = (await live.client.get(path, headers=admin.auth)).json()["data"]
    assert sorted(p["user_id"] for p in listed) == sorted([str(viewer.user_id), str(admin.user_id)])


async def test_a_client_that_disconnects_leaves_no_consumer_behind(live: Live, tenant: Tenant) -> None:
    async with live.stream(tenant.auth) as reader:
        await reader.next()
        await live.publish(tenant, ["one"])
        await reader.next()
        assert len(await live.live_consumers()) == 1

    async def gone() -> bool:
        return not await live.live_consumers()

    await wait_for(gone)


async def test_a_slow_client_holds_back_only_itself_and_still_gets_everything(
    live: Live, tenant: Tenant
) -> None:
    marks = [f"m{i:03}" for i in range(400)]
    async with live.stream(tenant.auth) as slow, live.stream(tenant.auth) as fast:
        await slow.next()
        await fast.next()
        # 400 events of 32 kB: more than the sockets between the server and a client that does not
        # read can buffer, so the slow client's stream waits on it while the other flows.
        await live.publish(tenant, marks, padding=32_000)
        assert _marks(await fast.events(len(marks))) == marks
        # The slow client's events wait in the stream, not in the API's memory.
        bus = live.state.bus
        consumers = await bus.js.consumers_info(bus.names.stream(DOMAIN.name))
        waiting = max(c.num_pending for c in consumers if c.name.startswith("live-"))
        assert waiting > 0
        assert _marks(await slow.events(len(marks))) == marks


async def test_the_stream_carries_on_when_its_consumer_vanishes(live: Live, tenant: Tenant) -> None:
    async with live.stream(tenant.auth) as reader:
        await reader.next()
        await live.publish(tenant, ["before"])
        assert _marks([await reader.next()]) == ["before"]
        # As after a NATS restart or a consumer removed by an operator: the stream resumes on a new
        # consumer just after the last event it sent.
        bus = live.state.bus
        [consumer] = await live.live_consumers()
        await bus.js.delete_consumer(bus.names.stream(DOMAIN.name), consumer)
        await live.publish(tenant, [f"after-{i}" for i in range(10)])
        assert _marks(await reader.events(10)) == [f"after-{i}" for i in range(10)]
        assert await live.live_consumers() != [consumer]


async def test_a_pull_is_bounded_in_bytes_as_well_as_in_events(live: Live, tenant: Tenant) -> None:
    bus = live.state.bus
    start = (await domain_bounds(bus)).last + 1
    marks = [f"m{i:02}" for i in range(20)]
    await live.publish(tenant, marks, padding=10_000)
    subjects = [workspace_domain_subjects(tenant.workspace_id)]
    async with DomainTail(bus, subjects, start, batch=100, max_bytes=25_000) as tail:
        seen = []
        async for msg in tail.messages():
            seen.append(json.loads(msg.data)["payload"]["data"]["mark"])
            if len(seen) == len(marks):
                break
    assert seen == marks

    await live.publish(tenant, ["huge"], padding=30_000)
    with pytest.raises(EventTooLarge):
        async with DomainTail(bus, subjects, tail.position + 1, max_bytes=25_000) as tail:
            await anext(tail.messages())


async def test_while_nats_is_away_the_stream_says_503_and_a_client_resumes_after(
    live: Live, tenant: Tenant, nats_server: EmbeddedNats
) -> None:
    async with live.stream(tenant.auth) as reader:
        await reader.next()
        await live.publish(tenant, ["before"])
        position = (await reader.next()).id
    bus = live.state.bus
    nats_server.stop()
    try:
        await wait_for(lambda: _async(not bus.is_connected))
        response = await live.client.get("/v1/stream", headers=tenant.auth)
        assert (response.status_code, response.json()["code"]) == (503, "service_unavailable")
        assert response.headers["retry-after"]
    finally:
        nats_server.start()
    await wait_for(lambda: _async(bus.is_connected), timeout=30)

    async def published() -> bool:
        try:
            await live.publish(tenant, ["after"])
        except BusUnavailable:
            return False
        return True

    await wait_for(published, timeout=30)
    async with live.stream(tenant.auth, headers={"Last-Event-ID": position or ""}) as reader:
        assert (await reader.next()).id == position
        assert _marks([await reader.next()]) == ["after"]


async def _async(value: bool) -> bool:
    return value


async def test_an_open_stream_carries_on_across_a_nats_restart(
    live: Live, tenant: Tenant, nats_server: EmbeddedNats
) -> None:
    bus = live.state.bus
    async with live.stream(tenant.auth) as reader:
        await reader.next()
        await live.publish(tenant, ["before"])
        assert _marks([await reader.next()]) == ["before"]
        nats_server.stop()
        try:
            await wait_for(lambda: _async(not bus.is_connected))
        finally:
            nats_server.start()
        await wait_for(lambda: _async(bus.is_connected), timeout=30)

        async def published() -> bool:
            try:
                await live.publish(tenant, ["after"])
            except BusUnavailable:
                return False
            return True

        await wait_for(published, timeout=30)
        assert _marks([await reader.next(timeout=30)]) == ["after"]
        await live.publish(tenant, ["later-1", "later-2"])
        assert _marks(await reader.events(2)) == ["later-1", "later-2"]


async def test_the_inbox_announces_what_agents_and_customers_do(
    live: Live, api: httpx.AsyncClient, engine: AsyncEngine, tenant: Tenant
) -> None:
    """The producers end to end: a stored message, a workflow change, a note, a claim and a read reach
    the stream (the webhook pipeline and the API's outbox on one side, the live stream on the other)."""
    agent = await add_user(engine, tenant.workspace_id, Role.AGENT)
    async with live.stream(agent.auth) as reader:
        assert (await reader.next()).event == "stream.ready"
        channel = await make_channel(api, tenant)
        assert (await send_events(api, channel, message_event(thread="t", text="hello"))).status_code == 202
        received = await reader.next()
        assert received.event == "conversation.message_received"
        payload = received.json()["payload"]
        assert payload["data"]["text"] == "hello"
        cid = payload["conversation_id"]

        changed = await api.patch(
            f"/v1/conversations/{cid}", json={"assignee_id": str(agent.user_id)}, headers=agent.auth
        )
        assert changed.status_code == 200
        await api.post(f"/v1/conversations/{cid}/notes", json={"text": "psst"}, headers=agent.auth)
        await api.post(f"/v1/conversations/{cid}/claim", json={}, headers=agent.auth)
        await api.post(f"/v1/conversations/{cid}/read", headers=agent.auth)
        await api.delete(f"/v1/conversations/{cid}/claim", headers=agent.auth)
        events = await reader.events(6)
    # One change's two events (updated, assigned) come together, in either order.
    events[:2] = sorted(events[:2], key=lambda e: e.event != "conversation.updated")
    assert [e.event for e in events] == [
        "conversation.updated",
        "conversation.assigned",
        "conversation.note_added",
        "conversation.claimed",
        "conversation.read",
        "conversation.released",
    ]
    assert all(e.json()["payload"]["conversation_id"] == cid for e in events)
    updated = events[0].json()["payload"]
    assert updated["actor_user_id"] == str(agent.user_id)
    assert updated["changes"]["assignee_id"] == {"before": None, "after": str(agent.user_id)}
    assert updated["changes"]["version"] == {"before": 1, "after": 2}


async def test_a_revoked_token_stops_receiving_events_on_a_stream_it_opened_before(
    live: Live, engine: AsyncEngine, tenant: Tenant
) -> None:
    agent = await add_user(engine, tenant.workspace_id, Role.AGENT)
    async with live.stream(agent.auth) as reader:
        await reader.next()
        await live.publish(tenant, ["before"])
        assert _marks([await reader.next()]) == ["before"]
        tokens = (
            await live.client.get("/v1/tokens", params={"user_id": str(agent.user_id)}, headers=tenant.auth)
        ).json()
        [token] = tokens["data"]
        assert (await live.client.delete(f"/v1/tokens/{token['id']}", headers=tenant.auth)).status_code == 204
        await asyncio.sleep(TOKEN_RECHECK)  # the recheck interval must pass: a time window, not an event
        await live.publish(tenant, ["after revocation"])
        with pytest.raises(StopAsyncIteration):
            await reader.next(timeout=10)
