"""One decoder for every event on the bus.

Decoding goes raw bytes -> dict -> upgrade functions (oldest version first) -> the pydantic model the
``type`` selects. A payload change that is not purely additive bumps the event's version and adds an
upgrade function from the previous version here, with a round-trip test.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Annotated, Any

import orjson
from pydantic import Field, TypeAdapter, ValidationError

from shared.events.activity import ReactionChanged, ThreadChanged
from shared.events.commands import (
    ModerationCompleted,
    ModerationRequested,
    ReadRequested,
    ReplyFailed,
    ReplyRequested,
    ReplySent,
)
from shared.events.domain import DOMAIN_TYPES, DomainEvent
from shared.events.envelope import Event
from shared.events.inbound import MessageDeleted, MessageEdited, MessageReceived

InboundFact = MessageReceived | MessageEdited | MessageDeleted | ReactionChanged | ThreadChanged
"""What connectors publish on ``inbound.>``: messages, reactions, thread changes."""

KnownEvent = (
    MessageReceived
    | MessageEdited
    | MessageDeleted
    | ReactionChanged
    | ThreadChanged
    | ReplyRequested
    | ReplySent
    | ReplyFailed
    | ModerationRequested
    | ModerationCompleted
    | ReadRequested
    | DomainEvent
)
AnyEvent = Annotated[KnownEvent, Field(discriminator="type")]
"""Every event type Piazza knows, discriminated by ``type``."""

Upgrade = Callable[[dict[str, Any]], dict[str, Any]]

UPGRADES: dict[tuple[str, int], Upgrade] = {}
"""``(type, version) -> function`` turning that version's raw event into the next version's."""

_ADAPTER: TypeAdapter[KnownEvent] = TypeAdapter(AnyEvent)


class EventDecodeError(Exception):
    """Bytes that are not a valid event of a known type and version; never worth retrying."""


def encode_event(event: Event) -> bytes:
    """The wire form of an event (UTF-8 JSON)."""
    return event.__pydantic_serializer__.to_json(event)


def decode_event(data: bytes) -> KnownEvent:
    """Parse, upgrade and validate an event, or raise :class:`EventDecodeError` saying why."""
    try:
        raw = orjson.loads(data)
    except orjson.JSONDecodeError as exc:
        raise EventDecodeError(f"not JSON: {exc}") from exc
    if not isinstance(raw, dict):
        raise EventDecodeError("an event must be a JSON object")
    raw = upgrade(raw)
    try:
        return _ADAPTER.validate_python(raw)
    except ValidationError as exc:
        raise EventDecodeError(_summarize(exc)) from exc


def _current_versions() -> dict[str, int]:
    versions = {}
    for model in KnownEvent.__args__:
        version = model.model_fields["version"].default
        if model is DomainEvent:
            versions.update(dict.fromkeys(DOMAIN_TYPES, version))
        else:
            versions[model.model_fields["type"].default] = version
    return versions


CURRENT_VERSIONS: dict[str, int] = _current_versions()
"""The version each event type is read at; older ones are upgraded to it, newer ones refused."""


def upgrade(raw: dict[str, Any]) -> dict[str, Any]:
    """Apply upgrade functions until the event is at its current version, or raise EventDecodeError."""
    while True:
        version = raw.get("version", 1)
        if not isinstance(version, int) or isinstance(version, bool):
            raise EventDecodeError(f"invalid event: version must be an integer, not {version!r}")
        step = UPGRADES.get((str(raw.get("type")), version))
        if step is None:
            break
        raw = step(raw)
    current = CURRENT_VERSIONS.get(str(raw.get("type")))
    if current is not None and version != current:
        raise EventDecodeError(
            f"unsupported version {version} of {raw.get('type')} (this build reads version {current})"
        )
    return raw


def _summarize(exc: ValidationError) -> str:
    parts = []
    for err in exc.errors()[:5]:
        where = ".".join(str(p) for p in err["loc"])
        parts.append(f"{where}: {err['msg']}" if where else err["msg"])
    return "invalid event: " + "; ".join(parts)
