"""The webhook ingress's pure parts: bus ids of redelivered webhooks, and the body schema."""

from __future__ import annotations

from typing import Any
from uuid import uuid4

import pytest
from pydantic import ValidationError

from services.ingress.schemas import WebhookBatch, WebhookEvent
from services.ingress.service import event_id

pytestmark = pytest.mark.unit


# --- services/ingress/service.py: event_id ---------------------------------------------------------


def test_a_redelivered_webhook_gets_the_same_event_ids() -> None:
    channel = uuid4()

    assert event_id(channel, "msg_1", 0) == event_id(channel, "msg_1", 0)


def test_event_ids_differ_by_channel_webhook_id_and_position() -> None:
    channel, other = uuid4(), uuid4()

    ids = {
        event_id(channel, "msg_1", 0),
        event_id(other, "msg_1", 0),
        event_id(channel, "msg_2", 0),
        event_id(channel, "msg_1", 1),
    }

    assert len(ids) == 4


def test_an_event_id_is_a_short_hex_string() -> None:
    value = event_id(uuid4(), "msg_✨ unicode", 3)

    assert len(value) == 40
    assert int(value, 16) >= 0


def test_event_ids_cannot_be_forged_by_a_separator_in_the_webhook_id() -> None:
    channel = uuid4()

    assert event_id(channel, "msg\x1f1", 0) != event_id(channel, "msg", 10)
    assert event_id(channel, "msg_1", 12) != event_id(channel, "msg_11", 2)


# --- services/ingress/schemas.py: WebhookEvent -----------------------------------------------------


def _body(**overrides: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": "message.created",
        "id": "m-1",
        "thread": {"id": "t-1", "title": "Order #1"},
        "author": {"id": "u-1", "handle": "@ada", "name": "Ada"},
        "text": "hello",
        "occurred_at": "2025-03-01T12:00:00Z",
    }
    body.update(overrides)
    return {key: value for key, value in body.items() if value is not ...}


def _errors(body: dict[str, Any]) -> str:
    with pytest.raises(ValidationError) as caught:
        WebhookEvent.model_validate(body)
    return str(caught.value)


def test_a_complete_created_event_is_accepted() -> None:
    event = WebhookEvent.model_validate(_body())

    assert (event.type, event.id, event.thread.id, event.text) == ("message.created", "m-1", "t-1", "hello")
    assert event.author is not None
    assert event.author.name == "Ada"
    assert event.occurred_at.utcoffset() is not None


def test_a_created_event_needs_an_author() -> None:
    assert "message.created needs an author" in _errors(_body(author=...))


@pytest.mark.parametrize("text", [..., None, ""])
def test_a_created_event_needs_text_or_an_attachment(text: object) -> None:
    assert "needs text or at least one attachment" in _errors(_body(text=text))


def test_a_created_event_with_only_an_attachment_is_accepted() -> None:
    event = WebhookEvent.model_validate(
        _body(text=..., attachments=[{"type": "image", "url": "https://x.test/a"}])
    )

    assert [a.type for a in event.attachments] == ["image"]


@pytest.mark.parametrize("kind", ["message.edited", "message.deleted"])
def test_edits_and_deletions_need_no_author_nor_content(kind: str) -> None:
    event = WebhookEvent.model_validate(_body(type=kind, author=..., text=...))

    assert event.author is None
    assert event.text is None


@pytest.mark.parametrize("occurred_at", ["2025-03-01T12:00:00", "2025-03-01", "12:00:00Z"])
def test_a_time_without_a_zone_is_refused(occurred_at: object) -> None:
    assert "occurred_at" in _errors(_body(occurred_at=occurred_at))


def test_a_time_with_an_offset_is_the_same_instant_in_utc() -> None:
    event = WebhookEvent.model_validate(_body(occurred_at="2025-03-01T14:00:00+02:00"))

    assert event.occurred_at.isoformat() == "2025-03-01T12:00:00+00:00"


@pytest.mark.parametrize(
    "overrides",
    [
        {"text": "a\x00b"},
        {"id": "m\x00"},
        {"thread": {"id": "t\x00"}},
        {"thread": {"id": "t", "title": "\x00"}},
        {"author": {"id": "u-1", "name": "A\x00da"}},
        {"reply_to": "m\x000"},
    ],
)
def test_a_nul_character_anywhere_is_refused(overrides: dict[str, Any]) -> None:
    assert "NUL" in _errors(_body(**overrides))


@pytest.mark.parametrize("kind", ["message.reacted", "created", ""])
def test_an_unknown_event_type_is_refused(kind: str) -> None:
    assert "type" in _errors(_body(type=kind))


@pytest.mark.parametrize(
    "overrides", [{"id": ""}, {"thread": {"id": ""}}, {"id": "x" * 513}, {"author": {"id": ""}}]
)
def test_empty_or_oversized_ids_are_refused(overrides: dict[str, Any]) -> None:
    _errors(_body(**overrides))


def test_more_than_fifty_attachments_are_refused() -> None:
    attachments = [{"type": "file", "url": f"https://x.test/{i}"} for i in range(51)]

    assert "attachments" in _errors(_body(attachments=attachments))


def test_unknown_fields_are_ignored() -> None:
    body = _body(priority="high", thread={"id": "t-1", "color": "blue"}, author={"id": "u-1", "karma": 3})

    event = WebhookEvent.model_validate(body)

    assert event == WebhookEvent.model_validate(_body(thread={"id": "t-1"}, author={"id": "u-1"}))
    assert not hasattr(event, "priority")


def test_a_batch_holds_at_least_one_event() -> None:
    with pytest.raises(ValidationError):
        WebhookBatch.model_validate({"events": []})

    batch = WebhookBatch.model_validate({"events": [_body(), _body(id="m-2", type="message.deleted")]})

    assert [event.id for event in batch.events] == ["m-1", "m-2"]


def test_one_bad_event_fails_the_whole_batch_with_its_position() -> None:
    with pytest.raises(ValidationError) as caught:
        WebhookBatch.model_validate({"events": [_body(), _body(author=...)]})

    assert caught.value.errors()[0]["loc"][:2] == ("events", 1)
