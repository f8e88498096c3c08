"""Outgoing webhooks end to end: the API, the webhook worker, a real nats-server and database, and
local endpoints (real HTTP servers) that fail, recover, hang or answer."""

from __future__ import annotations

import asyncio
import base64
import hashlib
import hmac
import itertools
import re
import time
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import httpx
import orjson
import pytest
from aiohttp import web
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine

from services.inbox.config import InboxSettings
from services.inbox.deliveries import worker_component
from services.inbox.models import AuditEntry
from services.inbox.outbox import publish_outbox
from services.inbox.service.access import Role
from services.inbox.service.events import announce
from shared.bus.client import Bus
from shared.db import read_session_factory, session_factory
from shared.events import utcnow
from shared.events.domain import DomainChange, DomainEvent, DomainType, domain_subject
from shared.events.registry import encode_event
from shared.http import build_app
from shared.webhooks.signing import verify
from tests.support import ROOT, Tenant, add_token, add_user, free_port, make_tenant, serving, wait_for

pytestmark = pytest.mark.e2e

SCHEDULE = (0.3, 0.3, 0.3)
"""Retries of these tests: three, 0.3 s apart (less up to 20 % jitter)."""


# --- a local endpoint ---------------------------------------------------------------------------------


@dataclass
class Received:
    """One request an endpoint got."""

    headers: dict[str, str]
    body: bytes
    at: float


@dataclass
class Endpoint:
    """How one path of the receiver answers: ``script`` first (a status, or "hang"), then ``then``."""

    script: list[int | str] = field(default_factory=list)
    then: int | str = 200
    received: list[Received] = field(default_factory=list)
    active: int = 0
    most_active: int = 0


class Receiver:
    """A real HTTP server on a free local port with one scriptable endpoint per path."""

    def __init__(self) -> None:
        self.endpoints: dict[str, Endpoint] = {}
        self._runner: web.AppRunner | None = None
        self.port = 0

    def url(self, name: str, *, script: list[int | str] | None = None, then: int | str = 200) -> str:
        """Set up ``/name`` and return its URL."""
        self.endpoints[name] = Endpoint(list(script or []), then)
        return f"http://127.0.0.1:{self.port}/{name}"

    async def start(self) -> None:
        app = web.Application()
        app.router.add_post("/{name}", self._handle)
        self._runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=0.5)
        await self._runner.setup()
        site = web.TCPSite(self._runner, "127.0.0.1", 0)
        await site.start()
        self.port = self._runner.addresses[0][1]

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()

    async def _handle(self, request: web.Request) -> web.Response:
        endpoint = self.endpoints[request.match_info["name"]]
        endpoint.received.append(Received(dict(request.headers), await request.read(), time.monotonic()))
        step = endpoint.script.pop(0) if endpoint.script else endpoint.then
        endpoint.active += 1
        endpoint.most_active = max(endpoint.most_active, endpoint.active)
        try:
            if step == "hang":
                await asyncio.sleep(3600)
            assert isinstance(step, int)
            return web.Response(status=step, text=f"answer {step} #{len(endpoint.received)}")
        finally:
            endpoint.active -= 1

    def bodies(self, name: str) -> list[dict[str, Any]]:
        """The JSON bodies ``/name`` received, in order."""
        return [orjson.loads(r.body) for r in self.endpoints[name].received]


@pytest.fixture
async def receiver() -> AsyncIterator[Receiver]:
    server = Receiver()
    await server.start()
    yield server
    await server.stop()


# --- the worker and events ----------------------------------------------------------------------------


@pytest.fixture
def webhook_settings(settings_kwargs: dict[str, object]) -> InboxSettings:
    """Settings of the webhook worker under test: retries in a second, answers within 1.5 s."""
    return InboxSettings(
        **settings_kwargs,  # type: ignore[arg-type]
        webhook_retry_schedule=SCHEDULE,
        webhook_timeout_seconds=1.5,
        webhook_subscription_concurrency=2,
        webhook_poll_seconds=0.05,
    )


@asynccontextmanager
async def webhook_worker(settings: InboxSettings) -> AsyncIterator[None]:
    """``piazza worker webhooks`` in process."""
    async with serving(build_app("webhooks-test", [worker_component(settings)])):
        yield


@pytest.fixture
async def worker(api: httpx.AsyncClient, webhook_settings: InboxSettings) -> AsyncIterator[None]:
    """The API (with the inbox worker) and one webhook worker."""
    async with webhook_worker(webhook_settings):
        yield


@pytest.fixture
async def bus(nats_url: str, bus_prefix: str) -> AsyncIterator[Bus]:
    async with await Bus.connect(nats_url, name="tests", prefix=bus_prefix) as connected:
        yield connected


async def emit(
    bus: Bus, tenant: Tenant, event_type: DomainType = "conversation.message_received", **data: Any
) -> DomainEvent:
    """Publish a domain event of the tenant's workspace, as the inbox does."""
    event = DomainEvent(
        type=event_type,
        workspace=str(tenant.workspace_id),
        source="inbox",
        payload=DomainChange(conversation_id=uuid.uuid4(), data=data),
    )
    await bus.publish(domain_subject(tenant.workspace_id, event_type), event)
    return event


async def subscribe(client: httpx.AsyncClient, tenant: Tenant, url: str, **fields: Any) -> dict[str, Any]:
    response = await client.post(
        "/v1/webhook-subscriptions", json={"url": url, **fields}, headers=tenant.auth
    )
    assert response.status_code == 201, response.text
    return dict(response.json())


async def deliveries(
    client: httpx.AsyncClient, tenant: Tenant, subscription: dict[str, Any], **params: Any
) -> list[dict[str, Any]]:
    response = await client.get(
        f"/v1/webhook-subscriptions/{subscription['id']}/deliveries",
        params={"limit": 200, **params},
        headers=tenant.auth,
    )
    assert response.status_code == 200, response.text
    return list(response.json()["data"])


async def settled(
    client: httpx.AsyncClient,
    tenant: Tenant,
    subscription: dict[str, Any],
    count: int,
    *,
    timeout: float = 15,
) -> list[dict[str, Any]]:
    """Wait until the subscription has ``count`` deliveries, none pending."""

    async def done() -> list[dict[str, Any]] | None:
        found = await deliveries(client, tenant, subscription)
        return found if len(found) == count and all(d["status"] != "pending" for d in found) else None

    return await wait_for(done, timeout=timeout)


async def detail(
    client: httpx.AsyncClient, tenant: Tenant, subscription: dict[str, Any], delivery: dict[str, Any]
) -> dict[str, Any]:
    response = await client.get(
        f"/v1/webhook-subscriptions/{subscription['id']}/deliveries/{delivery['id']}", headers=tenant.auth
    )
    assert response.status_code == 200, response.text
    return dict(response.json())


def documented_verify() -> Callable[[str, dict[str, str], bytes], None]:
    """The stdlib ``verify`` of docs/outgoing-webhooks.md, exactly as printed there."""
    text = (ROOT / "docs" / "outgoing-webhooks.md").read_text()
    (block,) = [b for b in re.findall(r"```python\n(.*?)```", text, flags=re.DOTALL) if "def verify(" in b]
    namespace: dict[str, Any] = {}
    exec(block, namespace)  # noqa: S102 - our own documentation, run to prove it works
    function: Callable[[str, dict[str, str], bytes], None] = namespace["verify"]
    return function


def documented_signatures(secret: str, received: Received) -> set[str]:
    """The signature docs/outgoing-webhooks.md tells receivers to compute, and those sent."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    signed = f"{received.headers['webhook-id']}.{received.headers['webhook-timestamp']}.".encode()
    expected = base64.b64encode(hmac.new(key, signed + received.body, hashlib.sha256).digest()).decode()
    sent = {s.removeprefix("v1,") for s in received.headers["webhook-signature"].split(" ")}
    return {expected} & sent


# --- delivery -----------------------------------------------------------------------------------------


async def test_an_endpoint_that_fails_then_recovers_gets_the_event_with_every_attempt_logged(
    api: httpx.AsyncClient, worker: None, tenant: Tenant, receiver: Receiver, engine: AsyncEngine, bus: Bus
) -> None:
    subscription = await subscribe(api, tenant, receiver.url("flaky", script=[500, 503]))
    secret = subscription["signing_secret"]
    now = utcnow()
    async with session_factory(engine)() as session, session.begin():
        event_id = await announce(
            session,
            tenant.workspace_id,
            "conversation.message_received",
            DomainChange(conversation_id=uuid.uuid4(), data={"text": "Ciao! 👋"}),
            now,
        )
    await publish_outbox(session_factory(engine), read_session_factory(engine), bus, ids=[event_id])

    (delivery,) = await settled(api, tenant, subscription, 1)
    logged = await detail(api, tenant, subscription, delivery)

    assert delivery["status"] == "succeeded"
    assert delivery["event_id"] == event_id
    assert delivery["event_type"] == "conversation.message_received"
    assert delivery["attempt_count"] == 3
    assert delivery["last_status_code"] == 200
    assert delivery["next_attempt_at"] is None
    assert delivery["delivered_at"] is not None
    assert [a["status_code"] for a in logged["attempts"]] == [500, 503, 200]
    assert [a["trigger"] for a in logged["attempts"]] == ["scheduled"] * 3
    assert all(isinstance(a["response_ms"], int) and 0 <= a["response_ms"] < 1500 for a in logged["attempts"])
    assert logged["attempts"][0]["response_excerpt"] == "answer 500 #1"
    assert logged["payload"]["id"] == event_id
    assert logged["payload"]["payload"]["data"] == {"text": "Ciao! 👋"}

    received = receiver.endpoints["flaky"].received
    assert len(received) == 3
    assert {r.headers["webhook-id"] for r in received} == {event_id}, "one webhook-id across retries"
    assert {r.body for r in received} == {received[0].body}
    gaps = [b.at - a.at for a, b in itertools.pairwise(received)]
    assert all(gap >= SCHEDULE[0] * 0.8 - 0.05 for gap in gaps), gaps
    check = documented_verify()
    for request in received:
        assert request.headers["Content-Type"] == "application/json"
        assert documented_signatures(secret, request)
        check(secret, {k.lower(): v for k, v in request.headers.items()}, request.body)
        with pytest.raises(ValueError, match="no signature matches"):
            check(secret, {k.lower(): v for k, v in request.headers.items()}, request.body + b" ")
        verify(
            [secret],
            webhook_id=request.headers["webhook-id"],
            timestamp=request.headers["webhook-timestamp"],
            signature=request.headers["webhook-signature"],
            body=request.body,
            now=time.time(),
        )
    assert orjson.loads(received[-1].body)["type"] == "conversation.message_received"


async def test_a_dead_endpoint_fails_after_the_retry_window_and_can_be_redelivered_once_fixed(
    api: httpx.AsyncClient, worker: None, tenant: Tenant, receiver: Receiver, bus: Bus
) -> None:
    nobody_listens = f"http://127.0.0.1:{free_port()}/gone"
    subscription = await subscribe(api, tenant, nobody_listens)
    event = await emit(bus, tenant)

    (delivery,) = await settled(api, tenant, subscription, 1)
    logged = await detail(api, tenant, subscription, delivery)

    assert delivery["status"] == "failed"
    assert delivery["attempt_count"] == len(SCHEDULE) + 1
    assert delivery["next_attempt_at"] is None
    assert delivery["last_status_code"] is None
    assert "ConnectError" in delivery["last_error"]
    assert all(a["status_code"] is None and a["error"] for a in logged["attempts"])

    fixed = receiver.url("fixed")
    patched = await api.patch(
        f"/v1/webhook-subscriptions/{subscription['id']}", json={"url": fixed}, headers=tenant.auth
    )
    assert patched.status_code == 200, patched.text
    redelivered = await api.post(
        f"/v1/webhook-subscriptions/{subscription['id']}/deliveries/{delivery['id']}/redeliver",
        headers=tenant.auth,
    )
    assert redelivered.status_code == 202, redelivered.text
    assert redelivered.json()["status"] == "pending"

    (delivery,) = await settled(api, tenant, subscription, 1)
    logged = await detail(api, tenant, subscription, delivery)
    assert delivery["status"] == "succeeded"
    assert delivery["attempt_count"] == len(SCHEDULE) + 2
    assert logged["attempts"][-1]["trigger"] == "manual"
    assert logged["attempts"][-1]["status_code"] == 200
    assert [r.headers["webhook-id"] for r in receiver.endpoints["fixed"].received] == [event.id]


async def test_a_failed_manual_redelivery_is_tried_once(
    api: httpx.AsyncClient, worker: None, tenant: Tenant, receiver: Receiver, bus: Bus
) -> None:
    subscription = await subscribe(api, tenant, receiver.url("ok-then-broken", script=[200], then=500))
    await emit(bus, tenant)
    (delivery,) = await settled(api, tenant, subscription, 1)
    assert delivery["status"] == "succeeded"

    response = await api.post(
        f"/v1/webhook-subscriptions/{subscription['id']}/deliveries/{delivery['id']}/redeliver",
        headers=tenant.auth,
    )
    assert response.status_code == 202, response.text

    (delivery,) = await settled(api, tenant, subscription, 1)
    assert delivery["status"] == "failed"
    assert delivery["attempt_count"] == 2
    await asyncio.sleep(SCHEDULE[0] * 2)
    assert len(receiver.endpoints["ok-then-broken"].received) == 2, "no automatic retries after a manual one"


async def test_a_slow_endpoint_never_holds_up_another_subscriber(
    api: httpx.AsyncClient, webhook_settings: InboxSettings, tenant: Tenant, receiver: Receiver, bus: Bus
) -> None:
    settings = webhook_settings.model_copy(update={"webhook_timeout_seconds": 3.0})
    slow = await subscribe(api, tenant, receiver.url("slow", then="hang"))
    fast = await subscribe(api, tenant, receiver.url("fast"))

    async with webhook_worker(settings):
        started = time.monotonic()
        events = [await emit(bus, tenant, n=n) for n in range(8)]

        await wait_for(lambda: _count(receiver, "fast", len(events)), timeout=10)
        took = time.monotonic() - started
        assert took < 2.5, f"the fast endpoint waited {took:.2f} s behind the slow one"
        assert {b["id"] for b in receiver.bodies("fast")} == {e.id for e in events}
        assert receiver.endpoints["slow"].most_active <= 2, "at most the per-subscription bound in flight"
        fast_log = await settled(api, tenant, fast, len(events))
        assert {d["status"] for d in fast_log} == {"succeeded"}

        # The slow one's requests time out and are retried; the log says so.
        async def timed_out() -> list[dict[str, Any]]:
            return [d for d in await deliveries(api, tenant, slow) if d["attempt_count"] >= 1]

        first = (await wait_for(timed_out, timeout=10))[0]
        assert first["last_error"] == "no answer within 3 s"
        assert first["last_status_code"] is None
        assert first["status"] == "pending"


async def _count(receiver: Receiver, name: str, count: int) -> bool:
    return len(receiver.endpoints[name].received) >= count


async def test_filters_choose_the_events_and_paused_subscriptions_get_none(
    api: httpx.AsyncClient, worker: None, tenant: Tenant, receiver: Receiver, bus: Bus, engine: AsyncEngine
) -> None:
    assigned_only = await subscribe(api, tenant, receiver.url("assigned"), events=["conversation.assigned"])
    everything = await subscribe(api, tenant, receiver.url("all"), description="everything")
    paused = await subscribe(api, tenant, receiver.url("paused"), enabled=False)
    other = await make_tenant(engine)
    other_subscription = await subscribe(api, other, receiver.url("other"))

    received = await emit(bus, tenant, "conversation.message_received")
    assigned = await emit(bus, tenant, "conversation.assigned")

    everything_log = await settled(api, tenant, everything, 2)
    assigned_log = await settled(api, tenant, assigned_only, 1)
    assert {d["event_id"] for d in everything_log} == {received.id, assigned.id}
    assert [d["event_id"] for d in assigned_log] == [assigned.id]
    assert await deliveries(api, tenant, paused) == []
    assert await deliveries(api, other, other_subscription) == []
    assert receiver.endpoints["other"].received == []
    only_assigned = await deliveries(api, tenant, everything, event_type="conversation.assigned")
    assert [d["event_id"] for d in only_assigned] == [assigned.id]

    # Resumed, the paused one is owed what happens from then on.
    resumed = await api.patch(
        f"/v1/webhook-subscriptions/{paused['id']}", json={"enabled": True}, headers=tenant.auth
    )
    assert resumed.json()["enabled"] is True
    later = await emit(bus, tenant, "conversation.updated")
    assert [d["event_id"] for d in await settled(api, tenant, paused, 1)] == [later.id]


async def test_analytics_events_and_sentiment_corrections_are_delivered_like_the_others(
    api: httpx.AsyncClient, worker: None, tenant: Tenant, receiver: Receiver, bus: Bus
) -> None:
    alerts = await subscribe(
        api, tenant, receiver.url("alerts"), events=["alert.opened", "alert.closed", "report.generated"]
    )
    everything = await subscribe(api, tenant, receiver.url("everything"))

    opened = await emit(bus, tenant, "alert.opened", metric="negative_share")
    updated = await emit(bus, tenant, "alert.updated")
    report = await emit(bus, tenant, "report.generated")
    corrected = await emit(bus, tenant, "conversation.sentiment_corrected", corrected_label="positive")

    assert sorted(d["event_id"] for d in await settled(api, tenant, alerts, 2)) == sorted(
        [opened.id, report.id]
    )
    sent = await settled(api, tenant, everything, 4)
    assert sorted(d["event_id"] for d in sent) == sorted([opened.id, updated.id, report.id, corrected.id])
    assert all(d["status"] == "succeeded" for d in sent)
    by_type = await deliveries(api, tenant, everything, event_type="conversation.sentiment_corrected")
    assert [d["event_id"] for d in by_type] == [corrected.id]


async def test_an_event_delivered_twice_by_the_bus_is_sent_once(
    api: httpx.AsyncClient, worker: None, tenant: Tenant, receiver: Receiver, bus: Bus
) -> None:
    subscription = await subscribe(api, tenant, receiver.url("once"))
    event = await emit(bus, tenant)
    # The same event again under another bus message id: JetStream keeps both, the store one.
    subject = domain_subject(tenant.workspace_id, event.type)
    await bus.publish_encoded([(subject, f"{event.id}-again", encode_event(event))])
    marker = await emit(bus, tenant, "conversation.updated")

    found = await settled(api, tenant, subscription, 2)

    assert sorted(d["event_id"] for d in found) == sorted([event.id, marker.id])
    assert sorted(b["id"] for b in receiver.bodies("once")) == sorted([event.id, marker.id])


async def test_two_workers_share_the_deliveries_without_sending_any_twice(
    api: httpx.AsyncClient, webhook_settings: InboxSettings, tenant: Tenant, receiver: Receiver, bus: Bus
) -> None:
    settings = webhook_settings.model_copy(update={"webhook_subscription_concurrency": 8})
    subscription = await subscribe(api, tenant, receiver.url("shared"))
    async with webhook_worker(settings), webhook_worker(settings):
        events = [await emit(bus, tenant, n=n) for n in range(30)]
        await settled(api, tenant, subscription, len(events))

    ids = [r.headers["webhook-id"] for r in receiver.endpoints["shared"].received]
    assert sorted(ids) == sorted(e.id for e in events)


async def test_a_rotated_secret_signs_alongside_the_previous_one(
    api: httpx.AsyncClient, worker: None, tenant: Tenant, receiver: Receiver, bus: Bus, engine: AsyncEngine
) -> None:
    subscription = await subscribe(api, tenant, receiver.url("rotating"))
    old = subscription["signing_secret"]
    rotated = await api.post(
        f"/v1/webhook-subscriptions/{subscription['id']}/rotate-secret", headers=tenant.auth
    )
    assert rotated.status_code == 200, rotated.text
    new = rotated.json()["signing_secret"]
    assert new != old
    assert new.startswith("whsec_")
    assert rotated.json()["previous_secret_expires_at"] is not None

    await emit(bus, tenant)
    await settled(api, tenant, subscription, 1)

    (request,) = receiver.endpoints["rotating"].received
    assert len(request.headers["webhook-signature"].split(" ")) == 2
    assert documented_signatures(new, request)
    assert documented_signatures(old, request)

    shown = await api.get(f"/v1/webhook-subscriptions/{subscription['id']}", headers=tenant.auth)
    assert "signing_secret" not in shown.json()
    assert "whsec_" not in shown.text
    async with session_factory(engine)() as session:
        entries = (
            await session.scalars(select(AuditEntry).where(AuditEntry.target_id == subscription["id"]))
        ).all()
    assert {e.action for e in entries} == {
        "webhook_subscription.created",
        "webhook_subscription.secret_rotated",
    }
    assert all("whsec_" not in orjson.dumps([e.before, e.after, e.detail]).decode() for e in entries)


# --- the API: validation, changes, roles, isolation ---------------------------------------------------


async def test_subscriptions_are_created_listed_changed_and_deleted_with_an_audit_trail(
    api: httpx.AsyncClient, tenant: Tenant, engine: AsyncEngine
) -> None:
    created = await subscribe(
        api, tenant, "https://hooks.example.com/a", events=["contact.merged"], description="CRM"
    )
    second = await subscribe(api, tenant, "https://hooks.example.com/b")
    base = "/v1/webhook-subscriptions"

    assert created["events"] == ["contact.merged"]
    assert created["enabled"] is True
    page = await api.get(base, params={"limit": 1}, headers=tenant.auth)
    rest = await api.get(base, params={"cursor": page.json()["next_cursor"]}, headers=tenant.auth)
    assert [s["id"] for s in page.json()["data"]] == [created["id"]]
    assert page.json()["has_more"] is True
    assert [s["id"] for s in rest.json()["data"]] == [second["id"]]
    assert all("signing_secret" not in s for s in page.json()["data"])

    changed = await api.patch(
        f"{base}/{created['id']}",
        json={"url": "https://hooks.example.com/new", "events": [], "description": None, "enabled": False},
        headers=tenant.auth,
    )
    assert changed.status_code == 200, changed.text
    assert {k: changed.json()[k] for k in ("url", "events", "description", "enabled")} == {
        "url": "https://hooks.example.com/new",
        "events": [],
        "description": None,
        "enabled": False,
    }
    assert (await api.delete(f"{base}/{created['id']}", headers=tenant.auth)).status_code == 204
    assert (await api.get(f"{base}/{created['id']}", headers=tenant.auth)).status_code == 404
    assert (await api.delete(f"{base}/{created['id']}", headers=tenant.auth)).status_code == 404

    async with session_factory(engine)() as session:
        entries = (
            await session.scalars(
                select(AuditEntry)
                .where(AuditEntry.target_id == created["id"])
                .order_by(AuditEntry.created_at)
            )
        ).all()
    assert [e.action for e in entries] == [
        "webhook_subscription.created",
        "webhook_subscription.updated",
        "webhook_subscription.deleted",
    ]
    update = entries[1]
    assert update.before == {
        "url": "https://hooks.example.com/a",
        "events": ["contact.merged"],
        "description": "CRM",
        "enabled": True,
    }
    assert update.after == {
        "url": "https://hooks.example.com/new",
        "events": [],
        "description": None,
        "enabled": False,
    }


@pytest.mark.parametrize(
    ("body", "status", "code"),
    [
        ({"url": "ftp://example.com/x"}, 400, "invalid_webhook_subscription"),
        ({"url": "https://u:p@example.com/x"}, 400, "invalid_webhook_subscription"),
        (
            {"url": "https://example.com/x", "events": ["message.exploded"]},
            400,
            "invalid_webhook_subscription",
        ),
        ({"url": "https://example.com/x", "secret": "mine"}, 400, "validation_failed"),
        ({"events": []}, 400, "validation_failed"),
    ],
)
async def test_unusable_subscriptions_are_refused_clearly(
    api: httpx.AsyncClient, tenant: Tenant, body: dict[str, Any], status: int, code: str
) -> None:
    response = await api.post("/v1/webhook-subscriptions", json=body, headers=tenant.auth)

    assert response.status_code == status, response.text
    assert response.headers["content-type"] == "application/problem+json"
    assert response.json()["code"] == code
    assert response.json()["errors"]
    listed = await api.get("/v1/webhook-subscriptions", headers=tenant.auth)
    assert listed.json()["data"] == []


async def test_a_patch_is_checked_as_strictly_as_a_create(api: httpx.AsyncClient, tenant: Tenant) -> None:
    subscription = await subscribe(api, tenant, "https://hooks.example.com/a")
    path = f"/v1/webhook-subscriptions/{subscription['id']}"

    for body in ({"url": "mailto:x@example.com"}, {"events": ["nope"]}):
        response = await api.patch(path, json=body, headers=tenant.auth)
        assert response.status_code == 400, response.text
    unchanged = await api.get(path, headers=tenant.auth)
    assert unchanged.json()["url"] == "https://hooks.example.com/a"
    assert unchanged.json()["events"] == []


def _routes(subscription_id: str, delivery_id: str) -> list[tuple[str, str, dict[str, Any] | None]]:
    base = f"/v1/webhook-subscriptions/{subscription_id}"
    return [
        ("GET", base, None),
        ("PATCH", base, {"description": "mine now"}),
        ("POST", f"{base}/rotate-secret", None),
        ("GET", f"{base}/deliveries", None),
        ("GET", f"{base}/deliveries/{delivery_id}", None),
        ("POST", f"{base}/deliveries/{delivery_id}/redeliver", None),
        ("DELETE", base, None),
    ]


async def test_only_admins_of_the_workspace_reach_any_route(
    api: httpx.AsyncClient, worker: None, tenant: Tenant, engine: AsyncEngine, receiver: Receiver, bus: Bus
) -> None:
    subscription = await subscribe(api, tenant, receiver.url("guarded"))
    await emit(bus, tenant)
    (delivery,) = await settled(api, tenant, subscription, 1)
    agent = await add_user(engine, tenant.workspace_id, Role.AGENT)
    viewer = await add_user(engine, tenant.workspace_id, Role.VIEWER)
    integration = await add_token(engine, tenant.workspace_id, Role.AGENT)
    stranger = await make_tenant(engine)
    await subscribe(api, stranger, receiver.url("stranger"))
    routes = [
        ("POST", "/v1/webhook-subscriptions", {"url": "https://hooks.example.com/x"}),
        ("GET", "/v1/webhook-subscriptions", None),
        *_routes(subscription["id"], delivery["id"]),
    ]

    for method, path, body in routes:
        for token in (agent.token, viewer.token, integration):
            response = await api.request(
                method, path, json=body, headers={"Authorization": f"Bearer {token}"}
            )
            assert response.status_code == 403, (method, path, response.text)
        anonymous = await api.request(method, path, json=body)
        assert anonymous.status_code == 401, (method, path)

    for method, path, body in _routes(subscription["id"], delivery["id"]):
        response = await api.request(method, path, json=body, headers=stranger.auth)
        assert response.status_code == 404, (method, path, response.text)
        assert response.json()["code"] in ("webhook_subscription_not_found", "webhook_delivery_not_found")
    listed = await api.get("/v1/webhook-subscriptions", headers=stranger.auth)
    assert [s["id"] for s in listed.json()["data"]] != [subscription["id"]]
    assert subscription["id"] not in listed.text

    # Nothing the others tried changed anything.
    shown = await api.get(f"/v1/webhook-subscriptions/{subscription['id']}", headers=tenant.auth)
    assert shown.status_code == 200
    assert shown.json()["description"] is None
    assert shown.json()["previous_secret_expires_at"] is None
    (after,) = await deliveries(api, tenant, subscription)
    assert after["attempt_count"] == 1


async def test_a_delivery_of_another_subscription_is_not_found(
    api: httpx.AsyncClient, worker: None, tenant: Tenant, receiver: Receiver, bus: Bus
) -> None:
    first = await subscribe(api, tenant, receiver.url("first"))
    second = await subscribe(api, tenant, receiver.url("second"))
    await emit(bus, tenant)
    (delivery,) = await settled(api, tenant, first, 1)

    for path in (f"deliveries/{delivery['id']}", f"deliveries/{delivery['id']}/redeliver"):
        method = "POST" if path.endswith("redeliver") else "GET"
        response = await api.request(
            method, f"/v1/webhook-subscriptions/{second['id']}/{path}", headers=tenant.auth
        )
        assert response.status_code == 404
        assert response.json()["code"] == "webhook_delivery_not_found"


async def test_the_delivery_log_pages_newest_first_and_filters_by_status(
    api: httpx.AsyncClient, worker: None, tenant: Tenant, receiver: Receiver, bus: Bus
) -> None:
    subscription = await subscribe(api, tenant, receiver.url("paged", script=[200, 200, 200], then=410))
    for n in range(3):
        await emit(bus, tenant, n=n)
        await settled(api, tenant, subscription, n + 1)
    failing = await emit(bus, tenant, n=3)
    await settled(api, tenant, subscription, 4)
    path = f"/v1/webhook-subscriptions/{subscription['id']}/deliveries"

    first = await api.get(path, params={"limit": 3}, headers=tenant.auth)
    second = await api.get(
        path, params={"limit": 3, "cursor": first.json()["next_cursor"]}, headers=tenant.auth
    )
    failed = await api.get(path, params={"status": "failed"}, headers=tenant.auth)
    bad = await api.get(path, params={"cursor": "nonsense"}, headers=tenant.auth)
    unknown_status = await api.get(path, params={"status": "lost"}, headers=tenant.auth)

    everything = first.json()["data"] + second.json()["data"]
    assert len(everything) == 4
    assert first.json()["has_more"] is True
    assert second.json()["has_more"] is False
    assert everything[0]["event_id"] == failing.id, "newest first"
    assert [d["event_id"] for d in failed.json()["data"]] == [failing.id]
    assert failed.json()["data"][0]["last_status_code"] == 410
    assert bad.status_code == 400
    assert bad.json()["code"] == "invalid_cursor"
    assert unknown_status.status_code == 400


async def test_events_from_before_a_subscription_are_not_sent_to_it(
    api: httpx.AsyncClient, worker: None, tenant: Tenant, receiver: Receiver, bus: Bus
) -> None:
    early = await emit(bus, tenant)
    await asyncio.sleep(0.05)
    subscription = await subscribe(api, tenant, receiver.url("late"))
    late = await emit(bus, tenant)

    assert [d["event_id"] for d in await settled(api, tenant, subscription, 1)] == [late.id]
    assert early.id not in {r.headers["webhook-id"] for r in receiver.endpoints["late"].received}


async def test_the_worker_serves_health_readiness_and_metrics(
    api: httpx.AsyncClient, webhook_settings: InboxSettings
) -> None:
    app = build_app("webhooks-test", [worker_component(webhook_settings)])
    async with serving(app) as client:
        ready = await client.get("/readyz")
        metrics = await client.get("/metrics")

    assert ready.status_code == 200, ready.text
    assert set(ready.json()["checks"]) == {"webhooks.database", "webhooks.nats", "webhooks.worker"}
    assert "piazza_webhook_attempts_total" in metrics.text
