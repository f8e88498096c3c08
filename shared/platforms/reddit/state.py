"""What the Reddit connector remembers between polls, kept in the ``reddit-cursors`` KV bucket.

Per channel and source (``<channel>.src.<source>``) a :class:`SourceCursor`: the ``before`` anchor of
the next poll and the fullnames already published. Per channel (``<channel>.recent``) the items
watched for edits, and (``<channel>.backfill``) a pending history import asked for by an operator.
Every write happens after JetStream stored the events it accounts for: a crash means items come
again and are deduplicated by their event ids, never that they are lost.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable
from uuid import UUID

import orjson
from nats.errors import Error as NatsError
from nats.js.errors import Error as JetStreamError
from nats.js.errors import KeyDeletedError, KeyNotFoundError
from nats.js.kv import KeyValue
from pydantic import BaseModel, Field, ValidationError

from shared.bus.client import BusUnavailable

SEEN_LIMIT = 2000
"""Fullnames remembered per source: well over the 1,000 a listing can reach back."""


class SourceCursor(BaseModel):
    """Where a source's polling stands."""

    before: str | None = None
    seen: list[str] = Field(default_factory=list)
    """Published fullnames, oldest first."""
    floor: float = 0.0
    """Items created before this (epoch seconds) were published or skipped long ago."""
    backfilled: bool = False

    def remember(self, items: Iterable[tuple[str, float]]) -> None:
        """Add published ``(fullname, created_utc)``, forgetting the oldest past the limit."""
        created = dict(items)
        known = set(self.seen)
        for name in created:
            if name not in known:
                self.seen.append(name)
                known.add(name)
        if len(self.seen) > SEEN_LIMIT:
            dropped = self.seen[: len(self.seen) - SEEN_LIMIT]
            self.seen = self.seen[len(dropped) :]
            self.floor = max([self.floor, *(created.get(n, 0.0) for n in dropped)])


class WatchedItem(BaseModel):
    """A published item checked again for edits: its kind, content fingerprint and creation time."""

    kind: str
    digest: str
    created_utc: float


class BackfillRequest(BaseModel):
    """An operator's request to import a channel's history again (``piazza reddit backfill``)."""

    id: str
    depth: int = Field(ge=1, le=1000)
    sources: list[str] = Field(default_factory=list)
    """Source keys; empty means every source of the channel."""

    @classmethod
    def new(cls, depth: int, sources: list[str] | None = None) -> BackfillRequest:
        """A fresh request (its id tells it from an earlier one)."""
        return cls(id=uuid.uuid4().hex, depth=depth, sources=sources or [])


class CursorStore:
    """Typed access to the ``reddit-cursors`` bucket."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    async def _get(self, key: str) -> bytes | None:
        try:
            entry = await self._kv.get(key)
        except (KeyNotFoundError, KeyDeletedError):
            return None
        except (NatsError, JetStreamError, TimeoutError) as exc:
            raise BusUnavailable(f"reddit state read failed: {exc}") from exc
        return entry.value or None

    async def _put(self, key: str, value: bytes) -> None:
        try:
            await self._kv.put(key, value)
        except (NatsError, JetStreamError, TimeoutError) as exc:
            raise BusUnavailable(f"reddit state write failed: {exc}") from exc

    async def cursor(self, channel_id: UUID, source: str) -> SourceCursor | None:
        """A source's cursor; None for a source never polled (its history is imported first)."""
        raw = await self._get(f"{channel_id}.src.{source}")
        try:
            return SourceCursor.model_validate_json(raw) if raw else None
        except ValidationError:
            return None

    async def save_cursor(self, channel_id: UUID, source: str, cursor: SourceCursor) -> None:
        """Store a cursor (after the events it accounts for are on the bus)."""
        await self._put(f"{channel_id}.src.{source}", cursor.model_dump_json().encode())

    async def watched(self, channel_id: UUID) -> dict[str, WatchedItem]:
        """The items checked for edits."""
        raw = await self._get(f"{channel_id}.recent")
        if not raw:
            return {}
        try:
            return {k: WatchedItem.model_validate(v) for k, v in _loads(raw).items()}
        except (ValidationError, ValueError, AttributeError):
            return {}

    async def save_watched(self, channel_id: UUID, items: dict[str, WatchedItem]) -> None:
        """Store the items checked for edits."""
        payload = {k: v.model_dump() for k, v in items.items()}
        await self._put(f"{channel_id}.recent", _dumps(payload))

    async def backfill_request(self, channel_id: UUID) -> BackfillRequest | None:
        """A pending history import, if an operator asked for one."""
        raw = await self._get(f"{channel_id}.backfill")
        try:
            return BackfillRequest.model_validate_json(raw) if raw else None
        except ValidationError:
            return None

    async def request_backfill(self, channel_id: UUID, request: BackfillRequest) -> None:
        """Ask the channel's poller to import history again."""
        await self._put(f"{channel_id}.backfill", request.model_dump_json().encode())

    async def clear_backfill(self, channel_id: UUID, request_id: str) -> None:
        """Remove a served request (unless a newer one replaced it)."""
        current = await self.backfill_request(channel_id)
        if current is not None and current.id == request_id:
            try:
                await self._kv.delete(f"{channel_id}.backfill")
            except (NatsError, JetStreamError, TimeoutError) as exc:
                raise BusUnavailable(f"reddit state write failed: {exc}") from exc


def _loads(raw: bytes) -> dict[str, object]:
    value = orjson.loads(raw)
    if not isinstance(value, dict):
        raise ValueError("not an object")
    return value


def _dumps(value: object) -> bytes:
    return orjson.dumps(value)
