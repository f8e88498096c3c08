"""Opaque keyset cursors: the sort key of the last item of a page, as URL-safe base64 JSON."""

from __future__ import annotations

import base64
import binascii
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

import orjson

CursorValue = datetime | UUID | int | str


class CursorError(ValueError):
    """The cursor is not one this endpoint issued."""


def encode_cursor(*values: CursorValue) -> str:
    """A cursor pointing just after an item whose sort key is ``values``."""
    raw = orjson.dumps(
        [v.isoformat() if isinstance(v, datetime) else str(v) if isinstance(v, UUID) else v for v in values]
    )
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *types: type[CursorValue]) -> tuple[Any, ...]:
    """The sort key inside a cursor, converted to ``types``; raises :class:`CursorError`."""
    try:
        raw = orjson.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))
    except (binascii.Error, ValueError) as exc:
        raise CursorError("cursor is malformed") from exc
    if not isinstance(raw, list) or len(raw) != len(types):
        raise CursorError("cursor has the wrong shape")
    return tuple(_convert(value, kind) for value, kind in zip(raw, types, strict=True))


def _convert(value: Any, kind: type[CursorValue]) -> CursorValue:
    if kind is datetime:
        if not isinstance(value, str):
            raise CursorError("cursor time is not a string")
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError as exc:
            raise CursorError("cursor time is not ISO 8601") from exc
        if parsed.tzinfo is None:
            raise CursorError("cursor time has no zone")
        try:
            return parsed.astimezone(UTC)
        except OverflowError as exc:
            raise CursorError("cursor time is out of range") from exc
    if kind is UUID:
        if not isinstance(value, str):
            raise CursorError("cursor id is not a string")
        try:
            return UUID(value)
        except ValueError as exc:
            raise CursorError("cursor id is not a UUID") from exc
    if kind is int:
        if not isinstance(value, int) or isinstance(value, bool):
            raise CursorError("cursor number is not an integer")
        return value
    if not isinstance(value, str):
        raise CursorError("cursor text is not a string")
    return value
