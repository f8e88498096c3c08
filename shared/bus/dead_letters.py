"""Reading and replaying dead letters (``piazza dead-letters ...``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime

from nats.js.errors import NotFoundError

from shared.bus.client import MSG_ID_HEADER, Bus
from shared.bus.topology import (
    DEAD_LETTER_DELIVERIES,
    DEAD_LETTER_REASON,
    DEAD_LETTER_SUBJECT,
    DEAD_LETTERS,
)


@dataclass(frozen=True)
class DeadLetter:
    """One message a consumer gave up on."""

    sequence: int
    consumer: str
    original_subject: str
    reason: str
    deliveries: int
    at: datetime | None
    data: bytes


class DeadLetterNotFound(LookupError):
    """No dead letter with that sequence (never was, or already replayed)."""


async def dead_letters(bus: Bus) -> AsyncIterator[DeadLetter]:
    """Every dead letter still kept, oldest first."""
    stream = bus.names.stream(DEAD_LETTERS.name)
    info = await bus.js.stream_info(stream)
    if not info.state.messages:
        return
    for sequence in range(info.state.first_seq, info.state.last_seq + 1):
        try:
            yield await _get(bus, sequence)
        except DeadLetterNotFound:
            continue  # replayed or expired


async def _get(bus: Bus, sequence: int) -> DeadLetter:
    try:
        raw = await bus.js.get_msg(bus.names.stream(DEAD_LETTERS.name), sequence)
    except NotFoundError as exc:
        raise DeadLetterNotFound(f"no dead letter {sequence}") from exc
    headers = raw.headers or {}
    subject = bus.names.unprefixed(raw.subject or "")
    return DeadLetter(
        sequence=sequence,
        consumer=subject.removeprefix("deadletter."),
        original_subject=headers.get(DEAD_LETTER_SUBJECT, ""),
        reason=headers.get(DEAD_LETTER_REASON, ""),
        deliveries=int(headers.get(DEAD_LETTER_DELIVERIES, "0") or 0),
        at=getattr(raw, "time", None),
        data=raw.data or b"",
    )


async def replay(bus: Bus, sequence: int) -> DeadLetter:
    """Publish a dead letter back to its original subject, then remove it.

    The replay has a bus id of its own, so JetStream does not drop it as a duplicate of the original;
    the consumer's idempotency absorbs it if the original was stored after all.
    """
    letter = await _get(bus, sequence)
    if not letter.original_subject:
        raise DeadLetterNotFound(f"dead letter {sequence} does not name its original subject")
    await bus.js.publish(
        bus.names.subject(letter.original_subject),
        letter.data,
        headers={MSG_ID_HEADER: f"replay:{bus.names.stream(DEAD_LETTERS.name)}:{sequence}"},
    )
    await bus.js.delete_msg(bus.names.stream(DEAD_LETTERS.name), sequence)
    return letter
