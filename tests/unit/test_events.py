"""Event contracts: the wire form round-trips, bad bytes fail helpfully, old versions upgrade."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import orjson
import pytest

from shared.events import (
    Attachment,
    EventDecodeError,
    MessageDeleted,
    MessageEdited,
    MessageReceived,
    decode_event,
    encode_event,
    registry,
)
from tests.unit.factories import T0, author, deleted, edited, new_channel, received

pytestmark = pytest.mark.unit

UNICODE_TEXTS = [
    "plain ascii",
    "emoji 👩🏽‍💻🇮🇹 and a family 👨‍👩‍👧‍👦",
    "RTL: مرحبا بالعالم and שלום",
    "combining: e\u0301 vs \u00e9, a\u0308\u0304",
    "zero width\u200b joiner\u200d and BOM \ufeff",
    "line\nbreaks\r\nand\ttabs",
]


def _raw(event: MessageReceived | MessageEdited | MessageDeleted) -> dict[str, Any]:
    raw: dict[str, Any] = orjson.loads(encode_event(event))
    return raw


def _decode_error(raw: object) -> str:
    with pytest.raises(EventDecodeError) as caught:
        decode_event(orjson.dumps(raw))
    return str(caught.value)


@pytest.mark.parametrize("text", UNICODE_TEXTS)
def test_a_received_message_round_trips_byte_for_byte(text: str) -> None:
    event = received(
        new_channel(),
        text=text,
        title=text,
        by=author(name=text, handle="@" + text),
        attachments=(Attachment(type="image", url="https://example.test/a.png", size=10, name=text),),
    )

    decoded = decode_event(encode_event(event))

    assert decoded == event
    assert isinstance(decoded, MessageReceived)
    assert decoded.payload.text is not None
    assert decoded.payload.text.encode() == text.encode()
    assert encode_event(decoded) == encode_event(event)


@pytest.mark.parametrize("text", UNICODE_TEXTS)
def test_an_edit_round_trips_byte_for_byte(text: str) -> None:
    event = edited(new_channel(), text=text, by=author(name=text))

    decoded = decode_event(encode_event(event))

    assert decoded == event
    assert isinstance(decoded, MessageEdited)
    assert decoded.payload.text is not None
    assert decoded.payload.text.encode() == text.encode()


def test_a_deletion_round_trips() -> None:
    event = deleted(new_channel(), message="m-9", thread="thread ✨", deleted_at=T0 + timedelta(hours=1))

    decoded = decode_event(encode_event(event))

    assert decoded == event
    assert isinstance(decoded, MessageDeleted)
    assert decoded.payload.deleted_at == T0 + timedelta(hours=1)


def test_the_envelope_survives_the_round_trip() -> None:
    event = received(new_channel(), workspace="acme")

    decoded = decode_event(encode_event(event))

    assert (decoded.id, decoded.type, decoded.version) == (event.id, "message.received", 1)
    assert (decoded.workspace, decoded.correlation_id) == ("acme", event.correlation_id)
    assert decoded.occurred_at == event.occurred_at


def test_the_wire_form_is_utf8_json_not_escaped_ascii() -> None:
    wire = encode_event(received(new_channel(), text="caffè ☕"))

    assert "caffè ☕".encode() in wire


def test_bytes_that_are_not_json_are_a_decode_error() -> None:
    with pytest.raises(EventDecodeError, match="not JSON"):
        decode_event(b"\x00\xff not json")


@pytest.mark.parametrize("raw", [[1, 2], "message.received", 42, None])
def test_json_that_is_not_an_object_is_a_decode_error(raw: object) -> None:
    assert _decode_error(raw) == "an event must be a JSON object"


def test_an_unknown_type_is_a_decode_error_naming_the_type() -> None:
    raw = _raw(received(new_channel())) | {"type": "message.exploded"}

    message = _decode_error(raw)

    assert "message.exploded" in message
    assert "message.received" in message  # the types it would have accepted


def test_a_missing_type_is_a_decode_error() -> None:
    raw = _raw(received(new_channel()))
    del raw["type"]

    assert "type" in _decode_error(raw)


def test_a_missing_field_is_a_decode_error_naming_its_path() -> None:
    raw = _raw(received(new_channel()))
    del raw["payload"]["sent_at"]

    message = _decode_error(raw)

    assert "payload.sent_at" in message
    assert "required" in message.lower()


def test_a_nul_character_in_text_is_a_decode_error() -> None:
    raw = _raw(received(new_channel()))
    raw["payload"]["text"] = "before\x00after"

    message = _decode_error(raw)

    assert "payload.text" in message
    assert "NUL" in message


def test_a_naive_timestamp_is_a_decode_error() -> None:
    raw = _raw(received(new_channel()))
    raw["payload"]["sent_at"] = "2025-03-01T12:00:00"

    assert "payload.sent_at" in _decode_error(raw)


def test_a_received_message_without_text_or_attachments_is_a_decode_error() -> None:
    raw = _raw(received(new_channel()))
    raw["payload"]["text"] = None

    assert "text or at least one attachment" in _decode_error(raw)


def test_fields_from_a_newer_producer_are_ignored() -> None:
    event = received(new_channel())
    raw = _raw(event)
    raw["priority"] = "high"
    raw["payload"]["reactions"] = [{"emoji": "👍"}]
    raw["payload"]["thread"]["pinned"] = True
    raw["payload"]["author"]["avatar"] = "https://example.test/a.png"

    decoded = decode_event(orjson.dumps(raw))

    assert decoded == event


def test_events_are_immutable() -> None:
    event = received(new_channel())

    with pytest.raises(ValueError, match="frozen"):
        event.workspace = "other"  # type: ignore[misc]


def _rename_body_to_text(raw: dict[str, Any]) -> dict[str, Any]:
    payload = dict(raw["payload"])
    payload["text"] = payload.pop("body")
    return {**raw, "version": 1, "payload": payload}


def test_an_old_version_is_upgraded_before_validation(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.UPGRADES, ("message.received", 0), _rename_body_to_text)
    current = received(new_channel(), text="from version zero")
    old = _raw(current)
    old["version"] = 0
    old["payload"]["body"] = old["payload"].pop("text")

    decoded = decode_event(orjson.dumps(old))

    assert decoded == current
    assert decoded.version == 1


def test_upgrades_chain_from_the_oldest_version(monkeypatch: pytest.MonkeyPatch) -> None:
    def from_minus_one(raw: dict[str, Any]) -> dict[str, Any]:
        return {**raw, "version": 0, "workspace": raw.pop("tenant")}

    monkeypatch.setitem(registry.UPGRADES, ("message.received", -1), from_minus_one)
    monkeypatch.setitem(registry.UPGRADES, ("message.received", 0), _rename_body_to_text)
    current = received(new_channel(), workspace="acme")
    old = _raw(current)
    old["version"] = -1
    old["tenant"] = old.pop("workspace")
    old["payload"]["body"] = old["payload"].pop("text")

    assert decode_event(orjson.dumps(old)) == current


def test_an_upgrade_applies_only_to_its_own_type_and_version(monkeypatch: pytest.MonkeyPatch) -> None:
    seen: list[dict[str, Any]] = []

    def spy(raw: dict[str, Any]) -> dict[str, Any]:
        seen.append(raw)
        return _rename_body_to_text(raw)

    monkeypatch.setitem(registry.UPGRADES, ("message.received", 0), spy)

    decode_event(encode_event(received(new_channel())))
    with pytest.raises(EventDecodeError):
        decode_event(orjson.dumps(_raw(edited(new_channel())) | {"version": 0, "payload": {}}))

    assert seen == []


def test_a_current_event_passes_through_untouched_by_upgrades(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(registry.UPGRADES, ("message.received", 0), _rename_body_to_text)
    event = received(new_channel())

    assert decode_event(encode_event(event)) == event


@pytest.mark.parametrize("version", ["v2", None, [1], {"major": 1}])
def test_a_non_integer_version_is_a_decode_error(version: object) -> None:
    raw = _raw(received(new_channel())) | {"version": version}

    with pytest.raises(EventDecodeError):
        decode_event(orjson.dumps(raw))


@pytest.mark.parametrize("version", [0, 2, 99])
def test_a_version_without_an_upgrade_path_is_a_decode_error(version: int) -> None:
    raw = _raw(received(new_channel())) | {"version": version}

    with pytest.raises(EventDecodeError):
        decode_event(orjson.dumps(raw))
