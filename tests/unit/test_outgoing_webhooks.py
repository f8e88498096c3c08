"""Outgoing webhooks without IO: signatures, the retry schedule, URL and filter rules, the sender."""

from __future__ import annotations

import base64
import hashlib
import hmac
import itertools
import uuid
from datetime import timedelta

import httpx
import orjson
import pytest

from services.inbox.deliveries import Sender
from services.inbox.errors import InvalidWebhookSubscription
from services.inbox.models import WebhookSubscription
from services.inbox.service.webhooks import (
    Claimed,
    RetryPolicy,
    check_event_types,
    check_url,
    is_public_host,
    matches,
    private_urls_allowed,
    signature_header,
)
from services.inbox.service.webhooks.rules import is_public_address
from shared.config import Environment
from shared.events import utcnow
from shared.events.domain import DOMAIN_TYPES, DomainChange, DomainEvent
from shared.webhooks.signing import generate_secret, verify

pytestmark = pytest.mark.unit

# The test vector published by the Standard Webhooks specification.
VECTOR_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
VECTOR_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
VECTOR_TIMESTAMP = 1614265330
VECTOR_BODY = b'{"test": 2432232314}'
VECTOR_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="


def documented_signature(secret: str, webhook_id: str, timestamp: str, body: bytes) -> str:
    """The verification recipe of docs/outgoing-webhooks.md, written out independently."""
    key = base64.b64decode(secret.removeprefix("whsec_"))
    digest = hmac.new(key, f"{webhook_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(digest).decode()


# --- signatures ---------------------------------------------------------------------------------------


def test_one_secret_signs_as_the_specification_says() -> None:
    assert signature_header([VECTOR_SECRET], VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY) == VECTOR_SIGNATURE


def test_after_a_rotation_both_secrets_sign_and_either_verifies() -> None:
    new, old = generate_secret(), VECTOR_SECRET

    header = signature_header([new, old], VECTOR_ID, VECTOR_TIMESTAMP, VECTOR_BODY)

    assert header.split(" ") == [
        documented_signature(new, VECTOR_ID, str(VECTOR_TIMESTAMP), VECTOR_BODY),
        VECTOR_SIGNATURE,
    ]
    for secret in (new, old):
        assert (
            verify(
                [secret],
                webhook_id=VECTOR_ID,
                timestamp=str(VECTOR_TIMESTAMP),
                signature=header,
                body=VECTOR_BODY,
                now=VECTOR_TIMESTAMP,
            )
            == VECTOR_TIMESTAMP
        )


# --- the retry schedule -------------------------------------------------------------------------------

DEFAULT_SCHEDULE = (5.0, 300.0, 1800.0, 7200.0, 18000.0, 28800.0, 28800.0)


def test_the_default_schedule_retries_for_a_day_then_gives_up() -> None:
    policy = RetryPolicy(DEFAULT_SCHEDULE, jitter=0)

    delays = [policy.delay(n) for n in range(1, 9)]

    assert delays == [5.0, 300.0, 1800.0, 7200.0, 18000.0, 28800.0, 28800.0, None]
    growing = [d for d in delays[:6] if d is not None]
    assert all(b > a for a, b in itertools.pairwise(growing)), "backs off exponentially"
    assert timedelta(hours=23) < timedelta(seconds=policy.window) <= timedelta(hours=24)
    assert policy.delay(0) is None


def test_jitter_only_shortens_a_delay_so_the_window_holds() -> None:
    policy = RetryPolicy(DEFAULT_SCHEDULE, jitter=0.2)

    assert policy.delay(2, rng=lambda: 0.0) == 300.0
    assert policy.delay(2, rng=lambda: 0.999999) == pytest.approx(240.0, rel=1e-4)
    spread = {policy.delay(3) for _ in range(50)}
    assert len(spread) > 1
    assert all(d is not None and 1440.0 <= d <= 1800.0 for d in spread)


def test_the_scale_shrinks_every_delay() -> None:
    policy = RetryPolicy(DEFAULT_SCHEDULE, scale=0.001, jitter=0)

    assert policy.delay(1) == pytest.approx(0.005)
    assert policy.window == pytest.approx(84.905)


def test_an_empty_schedule_means_one_attempt() -> None:
    assert RetryPolicy(()).delay(1) is None


# --- what may be subscribed ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "url",
    ["https://hooks.example.com/piazza", "http://example.com:8080/x?y=1", "HTTPS://Example.com/path"],
)
def test_public_http_urls_are_accepted(url: str) -> None:
    assert check_url(f"  {url} ", allow_private=False) == url


@pytest.mark.parametrize(
    ("url", "reason"),
    [
        ("ftp://example.com/x", "only http and https"),
        ("example.com/hook", "only http and https"),
        ("https:///path", "no host"),
        ("https://user:pass@example.com/", "credentials"),
        ("https://example.com:99999/", "not a valid URL"),
        ("https://exa mple.com/", "spaces"),
        ("https://localhost/hook", "loopback, private"),
        ("http://127.0.0.1:8080/", "loopback, private"),
        ("http://10.1.2.3/", "loopback, private"),
        ("http://169.254.169.254/latest/meta-data", "loopback, private"),
        ("http://[::1]/", "loopback, private"),
        ("http://[::ffff:192.168.0.1]/", "loopback, private"),
        ("http://db.internal/", "loopback, private"),
        ("https://" + "a" * 2050, "2048"),
    ],
)
def test_unusable_urls_are_refused_with_the_reason(url: str, reason: str) -> None:
    with pytest.raises(InvalidWebhookSubscription) as caught:
        check_url(url, allow_private=False)

    assert reason in caught.value.message
    assert caught.value.status_code == 400
    assert caught.value.errors[0]["field"] == "body.url"


def test_private_urls_are_allowed_where_the_setting_says() -> None:
    assert check_url("http://127.0.0.1:9000/hook", allow_private=True) == "http://127.0.0.1:9000/hook"
    assert private_urls_allowed(None, Environment.DEVELOPMENT)
    assert private_urls_allowed(None, Environment.TEST)
    assert not private_urls_allowed(None, Environment.PRODUCTION)
    assert private_urls_allowed(True, Environment.PRODUCTION)
    assert not private_urls_allowed(False, Environment.DEVELOPMENT)
    assert is_public_host("hooks.example.com")
    assert is_public_host("8.8.8.8")
    assert not is_public_host("LOCALHOST.")


def test_event_filters_name_known_types_only() -> None:
    assert check_event_types([]) == []
    assert check_event_types(["conversation.assigned", "conversation.assigned", "contact.merged"]) == [
        "conversation.assigned",
        "contact.merged",
    ]
    with pytest.raises(InvalidWebhookSubscription) as caught:
        check_event_types(["conversation.assigned", "message.exploded"])
    assert "message.exploded" in caught.value.message
    assert [e["field"] for e in caught.value.errors] == ["body.events.1"]


def _subscription(events: list[str]) -> WebhookSubscription:
    now = utcnow()
    return WebhookSubscription(id=uuid.uuid4(), event_types=events, created_at=now - timedelta(seconds=1))


def _event(event_type: str, *, age: float = 0.0) -> DomainEvent:
    return DomainEvent(
        type=event_type,  # type: ignore[arg-type]
        workspace=str(uuid.uuid4()),
        source="tests",
        occurred_at=utcnow() - timedelta(seconds=age),
        payload=DomainChange(),
    )


def test_a_filter_takes_its_types_and_an_empty_one_every_type_but_presence() -> None:
    only_assigned = _subscription(["conversation.assigned"])
    everything = _subscription([])
    presence = _subscription(["presence.updated"])

    assert matches(only_assigned, _event("conversation.assigned"))
    assert not matches(only_assigned, _event("conversation.message_received"))
    assert all(matches(everything, _event(t)) for t in DOMAIN_TYPES if t != "presence.updated")
    assert not matches(everything, _event("presence.updated")), "typing pings only when asked for"
    assert matches(presence, _event("presence.updated"))


@pytest.mark.parametrize(
    ("address", "public"),
    [
        ("8.8.8.8", True),
        ("2606:4700::1111", True),
        ("64:ff9b::808:808", True),
        ("10.0.0.1", False),
        ("::ffff:10.0.0.1", False),
        ("64:ff9b::a9fe:a9fe", False),  # NAT64 of the metadata address
        ("2002:a9fe:a9fe::1", False),  # 6to4 of it
        ("::a9fe:a9fe", False),  # IPv4-compatible
        ("::1", False),
    ],
)
def test_addresses_inside_ipv6_are_judged_by_the_ipv4_they_reach(address: str, public: bool) -> None:
    assert is_public_address(address) is public


def test_events_from_before_the_subscription_are_not_owed_to_it() -> None:
    assert not matches(_subscription([]), _event("conversation.updated", age=60))


# --- one attempt, against httpx's mock transport -------------------------------------------------------


async def public_dns(host: str, port: int) -> list[str]:
    """Every name is one public address (the tests have no DNS)."""
    return ["93.184.216.34"]


async def private_dns(host: str, port: int) -> list[str]:
    """A name that resolves to a public and a private address (DNS rebinding)."""
    return ["93.184.216.34", "10.0.0.7"]


def _claimed(secret: str) -> Claimed:
    return Claimed(
        delivery_id=uuid.uuid4(),
        subscription_id=uuid.uuid4(),
        event_id="evt-1",
        event_type="conversation.updated",
        url="https://hooks.example.com/in",
        payload=orjson.dumps({"id": "evt-1", "type": "conversation.updated", "payload": {"x": "é"}}).decode(),
        secrets=(secret,),
        manual=False,
    )


async def test_an_attempt_sends_the_signed_body_and_keeps_the_start_of_the_answer() -> None:
    secret = generate_secret()
    seen: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        seen.append(request)
        return httpx.Response(201, text="ok " + "x" * 5000)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        result = await Sender(http, timeout=5, allow_private=False, resolve=public_dns).send(_claimed(secret))

    (request,) = seen
    assert result.ok
    assert result.status_code == 201
    assert result.response_excerpt is not None
    assert result.response_excerpt.startswith("ok xxx")
    assert len(result.response_excerpt) == 1000
    assert result.response_ms >= 0
    assert request.headers["webhook-id"] == "evt-1"
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-signature"] == documented_signature(
        secret, "evt-1", request.headers["webhook-timestamp"], request.content
    )
    assert orjson.loads(request.content)["payload"] == {"x": "é"}


@pytest.mark.parametrize(
    ("answer", "status", "error"),
    [
        (lambda r: httpx.Response(500, text="boom"), 500, None),
        (lambda r: httpx.Response(302, headers={"location": "https://elsewhere.example/"}), 302, None),
        (lambda r: (_ for _ in ()).throw(httpx.ConnectError("refused", request=r)), None, "ConnectError"),
        (lambda r: (_ for _ in ()).throw(httpx.ReadTimeout("slow", request=r)), None, "no answer within 5 s"),
    ],
    ids=["server-error", "redirect-not-followed", "refused", "timeout"],
)
async def test_failed_attempts_say_why(answer, status: int | None, error: str | None) -> None:
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        result = await Sender(http, timeout=5, allow_private=False, resolve=public_dns).send(
            _claimed(generate_secret())
        )

    assert not result.ok
    assert result.status_code == status
    if error is None:
        assert result.error is None
    else:
        assert result.error is not None
        assert error in result.error


async def test_a_name_resolving_to_a_private_address_is_not_called() -> None:
    calls: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200)

    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        for resolve, url in (
            (public_dns, "http://localhost.:8080/in"),
            (private_dns, "https://rebound.example/"),
        ):
            claimed = Claimed(**{**_claimed(generate_secret()).__dict__, "url": url})
            result = await Sender(http, timeout=5, allow_private=False, resolve=resolve).send(claimed)
            assert result.error is not None
            assert "private" in result.error
        allowed = await Sender(http, timeout=5, allow_private=True, resolve=private_dns).send(claimed)

    assert allowed.ok
    assert len(calls) == 1


async def test_a_secret_that_no_longer_opens_fails_the_attempt_without_sending() -> None:
    calls: list[httpx.Request] = []

    def answer(request: httpx.Request) -> httpx.Response:
        calls.append(request)
        return httpx.Response(200)

    claimed = Claimed(**{**_claimed(generate_secret()).__dict__, "secrets": ()})
    async with httpx.AsyncClient(transport=httpx.MockTransport(answer)) as http:
        result = await Sender(http, timeout=5, allow_private=False, resolve=public_dns).send(claimed)

    assert calls == []
    assert not result.ok
    assert result.error is not None
    assert "PIAZZA_SECRET_KEYS" in result.error
