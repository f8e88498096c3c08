"""The generic webhook endpoint, from a sender's point of view: every answer it can give."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta

import httpx
import orjson
import pytest

from shared.webhooks.signing import sign
from tests.support import (
    Tenant,
    conversation_messages,
    make_channel,
    message_event,
    send_events,
    signed_headers,
    unique,
    wait_for,
)

pytestmark = pytest.mark.e2e


async def test_a_signed_event_is_accepted_and_stored(api: httpx.AsyncClient, tenant: Tenant) -> None:
    channel = await make_channel(api, tenant)
    response = await send_events(api, channel, message_event(thread="t-1", text="Ciao! 👋"))
    assert response.status_code == 202
    assert response.json() == {"accepted": 1, "duplicates": 0}
    messages = await wait_for(lambda: conversation_messages(api, tenant, channel.id, "t-1"))
    assert [m["text"] for m in messages] == ["Ciao! 👋"]


async def test_a_batch_of_one_hundred_is_stored_whole(api: httpx.AsyncClient, tenant: Tenant) -> None:
    channel = await make_channel(api, tenant)
    events = [message_event(thread="batch", message_id=f"b-{i:03}", text=f"n{i}") for i in range(100)]
    response = await send_events(api, channel, events)
    assert response.status_code == 202
    assert response.json()["accepted"] == 100

    async def all_there() -> list[dict[str, object]] | None:
        messages = await conversation_messages(api, tenant, channel.id, "batch")
        return messages if len(messages) == 100 else None

    messages = await wait_for(all_there)
    assert sorted(m["external_id"] for m in messages) == [f"b-{i:03}" for i in range(100)]


async def test_more_events_than_the_batch_limit_is_a_400(api: httpx.AsyncClient, tenant: Tenant) -> None:
    channel = await make_channel(api, tenant)
    response = await send_events(api, channel, [message_event() for _ in range(101)])
    assert response.status_code == 400
    assert response.json()["code"] == "validation_failed"
    assert response.json()["errors"][0]["field"] == "body.events"


async def test_a_redelivered_webhook_is_stored_once(api: httpx.AsyncClient, tenant: Tenant) -> None:
    channel = await make_channel(api, tenant)
    event = message_event(thread="redelivered")
    first = await send_events(api, channel, event, webhook_id="msg_same")
    again = await send_events(api, channel, event, webhook_id="msg_same")
    assert (first.status_code, again.status_code) == (202, 202)
    assert again.json() == {"accepted": 1, "duplicates": 1}
    await wait_for(lambda: conversation_messages(api, tenant, channel.id, "redelivered"))
    # A later, differently-identified delivery of the same platform message is absorbed by the store.
    third = await send_events(api, channel, event, webhook_id="msg_other")
    assert third.json() == {"accepted": 1, "duplicates": 0}
    marker = await send_events(api, channel, message_event(thread="redelivered", text="after"))
    assert marker.status_code == 202

    async def both() -> list[dict[str, object]] | None:
        messages = await conversation_messages(api, tenant, channel.id, "redelivered")
        return messages if len(messages) >= 2 else None

    messages = await wait_for(both)
    assert [m["external_id"] for m in messages].count(event["id"]) == 1
    assert len(messages) == 2


@pytest.mark.parametrize(
    ("headers_of", "reason"),
    [
        (lambda h: {k: v for k, v in h.items() if k != "webhook-signature"}, "missing"),
        (
            lambda h: {**h, "webhook-signature": "v1,bm90LXRoZS1yaWdodC1zaWduYXR1cmUtYXQtYWxsLXJlYWxseQ=="},
            "no signature matches",
        ),
        (lambda h: {**h, "webhook-signature": "v1,!!!not base64!!!"}, "no v1 signature"),
        (lambda h: {**h, "webhook-signature": "v2,abc v1a,def"}, "no v1 signature"),
        (lambda h: {**h, "webhook-timestamp": "yesterday"}, "not an integer"),
    ],
)
async def test_bad_signatures_are_401(
    api: httpx.AsyncClient, tenant: Tenant, headers_of: object, reason: str
) -> None:
    channel = await make_channel(api, tenant)
    body = orjson.dumps(message_event())
    headers = headers_of(signed_headers(channel.secret, body))  # type: ignore[operator]
    response = await api.post(channel.path, content=body, headers=headers)
    assert response.status_code == 401
    assert response.json()["code"] == "invalid_signature"
    assert reason in response.json()["detail"]


async def test_a_non_ascii_signature_header_is_401_not_500(api: httpx.AsyncClient, tenant: Tenant) -> None:
    channel = await make_channel(api, tenant)
    body = orjson.dumps(message_event())
    headers = signed_headers(channel.secret, body)
    raw = [(k.encode(), v.encode()) for k, v in headers.items() if k != "webhook-signature"]
    raw.append((b"webhook-signature", "v1,çé€".encode("latin-1", "replace")))
    response = await api.post(channel.path, content=body, headers=raw)
    assert response.status_code == 401


@pytest.mark.parametrize("skew", [-301, 301])
async def test_stale_or_future_timestamps_are_401(api: httpx.AsyncClient, tenant: Tenant, skew: int) -> None:
    channel = await make_channel(api, tenant)
    body = orjson.dumps(message_event())
    response = await api.post(
        channel.path,
        content=body,
        headers=signed_headers(channel.secret, body, timestamp=int(time.time()) + skew),
    )
    assert response.status_code == 401
    assert "too" in response.json()["detail"]


async def test_timestamps_within_tolerance_are_accepted(api: httpx.AsyncClient, tenant: Tenant) -> None:
    channel = await make_channel(api, tenant)
    for skew in (-280, 280):
        body = orjson.dumps(message_event())
        response = await api.post(
            channel.path,
            content=body,
            headers=signed_headers(channel.secret, body, timestamp=int(time.time()) + skew),
        )
        assert response.status_code == 202, response.text


async def test_a_tampered_body_is_401(api: httpx.AsyncClient, tenant: Tenant) -> None:
    channel = await make_channel(api, tenant)
    body = orjson.dumps(message_event())
    headers = signed_headers(channel.secret, body)
    response = await api.post(channel.path, content=body.replace(b":", b": ", 1), headers=headers)
    assert response.status_code == 401


async def test_several_signatures_are_accepted_when_one_matches(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    channel = await make_channel(api, tenant)
    body = orjson.dumps(message_event())
    now = int(time.time())
    other = sign("whsec_" + "QUJDREVGR0hJSktMTU5PUFFSU1RVVldYWVo=", "msg_rot", now, body).signature
    mine = sign(channel.secret, "msg_rot", now, body)
    headers = {
        **mine.as_dict(),
        "webhook-signature": f"{other} {mine.signature}",
        "content-type": "application/json",
    }
    response = await api.post(channel.path, content=body, headers=headers)
    assert response.status_code == 202


async def test_a_rotated_secret_keeps_working_during_its_grace(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    channel = await make_channel(api, tenant)
    rotated = await api.post(f"/v1/channels/{channel.id}/rotate-secret", headers=tenant.auth)
    assert rotated.status_code == 200
    new_secret = rotated.json()["signing_secret"]
    assert new_secret != channel.secret
    for secret in (channel.secret, new_secret):
        body = orjson.dumps(message_event())
        response = await api.post(channel.path, content=body, headers=signed_headers(secret, body))
        assert response.status_code == 202, response.text


async def test_malformed_json_is_400(api: httpx.AsyncClient, tenant: Tenant) -> None:
    channel = await make_channel(api, tenant)
    body = b'{"type": "message.created", "id": '
    response = await api.post(channel.path, content=body, headers=signed_headers(channel.secret, body))
    assert response.status_code == 400
    assert response.json()["code"] == "malformed_json"
    assert response.headers["content-type"] == "application/problem+json"


@pytest.mark.parametrize(
    ("event", "field"),
    [
        (
            {
                "type": "message.created",
                "id": "x",
                "thread": {"id": "t"},
                "author": {"id": "a"},
                "text": "hi",
            },
            "body.occurred_at",
        ),
        ({**message_event(), "type": "message.exploded"}, "body.type"),
        ({**message_event(), "thread": {}}, "body.thread.id"),
        ({**message_event(), "occurred_at": "2026-11-24T10:00:00"}, "body.occurred_at"),
        ({**message_event(), "text": "nul \u0000 inside"}, "body.text"),
        ({**message_event(), "id": ""}, "body.id"),
        ({**message_event(), "attachments": [{"type": "image", "size": -1}]}, "body.attachments.0.size"),
        ({**message_event(), "attachments": [{"type": "im\u0000age"}]}, "body.attachments.0.type"),
        ({**message_event(), "occurred_at": "9999-12-31T23:59:59-05:00"}, "body.occurred_at"),
        ({**message_event(), "occurred_at": "0001-01-01T00:00:00+05:00"}, "body.occurred_at"),
        ({**message_event(), "occurred_at": "1969-12-31T23:59:59Z"}, "body.occurred_at"),
        (
            {**message_event(), "occurred_at": (datetime.now(UTC) + timedelta(days=2)).isoformat()},
            "body.occurred_at",
        ),
    ],
)
async def test_schema_errors_are_400_with_the_field(
    api: httpx.AsyncClient, tenant: Tenant, event: dict[str, object], field: str
) -> None:
    channel = await make_channel(api, tenant)
    response = await send_events(api, channel, event)
    assert response.status_code == 400, response.text
    problem = response.json()
    assert problem["code"] == "validation_failed"
    assert field in [e["field"] for e in problem["errors"]]


async def test_a_created_message_without_author_or_content_is_400(
    api: httpx.AsyncClient, tenant: Tenant
) -> None:
    channel = await make_channel(api, tenant)
    no_author = {k: v for k, v in message_event().items() if k != "author"}
    no_content = {k: v for k, v in message_event().items() if k != "text"}
    for event, words in ((no_author, "author"), (no_content, "text or at least one attachment")):
        response = await send_events(api, channel, event)
        assert response.status_code == 400
        assert words in response.text


async def test_a_json_array_body_is_400(api: httpx.AsyncClient, tenant: Tenant) -> None:
    channel = await make_channel(api, tenant)
    body = b"[1, 2, 3]"
    response = await api.post(channel.path, content=body, headers=signed_headers(channel.secret, body))
    assert response.status_code == 400
    assert response.json()["errors"][0]["field"] == "body"


async def test_a_body_over_the_limit_is_413(api: httpx.AsyncClient, tenant: Tenant) -> None:
    channel = await make_channel(api, tenant)
    body = orjson.dumps(message_event(text="x" * (1024 * 1024 + 1)))
    response = await api.post(channel.path, content=body, headers=signed_headers(channel.secret, body))
    assert response.status_code == 413
    assert response.json()["code"] == "payload_too_large"


async def test_a_streamed_body_over_the_limit_is_413(api: httpx.AsyncClient, tenant: Tenant) -> None:
    channel = await make_channel(api, tenant)

    async def chunks():  # type: ignore[no-untyped-def]
        for _ in range(40):
            yield b"x" * 32768

    response = await api.post(
        channel.path, content=chunks(), headers={"content-type": "application/json", "webhook-id": "m"}
    )
    assert response.status_code == 413


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", ""])
async def test_a_non_json_body_is_415(api: httpx.AsyncClient, tenant: Tenant, content_type: str) -> None:
    channel = await make_channel(api, tenant)
    body = orjson.dumps(message_event())
    headers = {**signed_headers(channel.secret, body), "content-type": content_type}
    response = await api.post(channel.path, content=body, headers=headers)
    assert response.status_code == 415


@pytest.mark.parametrize("channel_id", ["00000000-0000-4000-8000-00000000dead", "not-a-uuid"])
async def test_an_unknown_channel_is_404(api: httpx.AsyncClient, channel_id: str) -> None:
    body = orjson.dumps(message_event())
    response = await api.post(
        f"/webhooks/{channel_id}", content=body, headers=signed_headers("whsec_QUJD", body)
    )
    assert response.status_code == 404
    assert response.json()["code"] == "channel_not_found"


async def test_bad_signatures_show_on_the_channel_health(api: httpx.AsyncClient, tenant: Tenant) -> None:
    channel = await make_channel(api, tenant)
    body = orjson.dumps(message_event())
    await api.post(channel.path, content=body, headers=signed_headers("whsec_QUJDREVGR0g=", body))

    async def unhealthy() -> dict[str, object] | None:
        health = (await api.get(f"/v1/channels/{channel.id}", headers=tenant.auth)).json()["health"]
        return health if health["status"] == "error" else None

    health = await wait_for(unhealthy)
    assert health["last_error"]["code"] == "invalid_signature"  # type: ignore[index]


async def test_the_bus_down_answers_503_with_retry_after(api: httpx.AsyncClient, tenant: Tenant) -> None:
    channel = await make_channel(api, tenant)
    await api.app.state.ingress_bus.nc.close()  # type: ignore[attr-defined]
    response = await send_events(api, channel, message_event())
    assert response.status_code == 503
    assert int(response.headers["retry-after"]) > 0
    assert response.json()["code"] == "service_unavailable"


async def test_unicode_round_trips_byte_for_byte(api: httpx.AsyncClient, tenant: Tenant) -> None:
    channel = await make_channel(api, tenant)
    texts = {
        "emoji": "Ciao! 👋🏽 👩‍👩‍👧‍👦 🇮🇹",
        "rtl": "שלום עולם مرحبا بالعالم",
        "combining": "e\u0301 n\u0303 a\u030a\u0323 Z\u0351\u0352\u0353",
        "four-byte": "𝄞 𠜎 𐍈 🀄",
        "mixed": "Zoë — «naïve» café\u200d\ufeff\u2028end",
    }
    thread = unique("unicode")
    events = [
        message_event(thread=thread, message_id=key, text=text, author="авторка-☃")
        for key, text in texts.items()
    ]
    assert (await send_events(api, channel, events)).status_code == 202

    async def stored() -> list[dict[str, object]] | None:
        messages = await conversation_messages(api, tenant, channel.id, thread)
        return messages if len(messages) == len(texts) else None

    messages = await wait_for(stored)
    for message in messages:
        assert message["text"].encode() == texts[message["external_id"]].encode()  # type: ignore[union-attr,index]
        assert message["author"]["external_id"] == "авторка-☃"  # type: ignore[index]
