"""Keyset cursors: what a page hands out comes back intact; anything else is a CursorError."""

from __future__ import annotations

import base64
from datetime import UTC, datetime, timedelta, timezone
from uuid import UUID, uuid4

import orjson
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from shared.http.pagination import CursorError, CursorValue, decode_cursor, encode_cursor

pytestmark = pytest.mark.unit

WHEN = datetime(2025, 3, 1, 12, 30, 15, 123456, tzinfo=UTC)


def _cursor(values: object) -> str:
    """A cursor holding arbitrary JSON, as a client tampering with one would build it."""
    return base64.urlsafe_b64encode(orjson.dumps(values)).decode().rstrip("=")


def test_a_time_and_uuid_cursor_round_trips() -> None:
    item = uuid4()

    assert decode_cursor(encode_cursor(WHEN, item), datetime, UUID) == (WHEN, item)


def test_a_time_and_integer_cursor_round_trips() -> None:
    assert decode_cursor(encode_cursor(WHEN, 42), datetime, int) == (WHEN, 42)


def test_a_cursor_keeps_the_instant_to_the_microsecond_in_utc() -> None:
    when = datetime(2025, 3, 1, 23, 59, 59, 999999, tzinfo=timezone(timedelta(hours=-5, minutes=-30)))

    (decoded,) = decode_cursor(encode_cursor(when), datetime)

    assert decoded == when
    assert decoded.utcoffset() == timedelta(0)
    assert decoded.microsecond == 999999


def test_a_cursor_time_beyond_the_calendar_in_utc_is_a_cursor_error() -> None:
    edge = datetime(9999, 12, 31, 23, 59, 59, tzinfo=timezone(timedelta(hours=-1)))

    with pytest.raises(CursorError):
        decode_cursor(encode_cursor(edge), datetime)


def test_a_cursor_is_url_safe_without_padding() -> None:
    cursor = encode_cursor(WHEN, uuid4(), 2**40, "x?y/z+")

    assert "=" not in cursor
    assert set(cursor) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


@settings(database=None, max_examples=200)
@given(
    when=st.datetimes(
        min_value=datetime(1900, 1, 1),  # noqa: DTZ001 - hypothesis wants naive bounds
        max_value=datetime(2200, 1, 1),  # noqa: DTZ001
        timezones=st.timezones(),
    ),
    item=st.uuids(),
    number=st.integers(min_value=-(2**63), max_value=2**63 - 1),
    text=st.text(),
)
def test_any_sort_key_round_trips(when: datetime, item: UUID, number: int, text: str) -> None:
    values: tuple[CursorValue, ...] = (when, item, number, text)

    decoded_when, *rest = decode_cursor(encode_cursor(*values), datetime, UUID, int, str)

    # Compared as instants: cursors carry UTC (a zone's name and offset need not survive), and
    # PEP 495 makes times inside a DST fold unequal to any other zone's.
    assert decoded_when.astimezone(UTC) == when.astimezone(UTC)
    assert decoded_when.utcoffset() == timedelta(0)
    assert tuple(rest) == (item, number, text)


@pytest.mark.parametrize("cursor", ["", "garbage", "!!!!", "%%%", "é", "a", "bnVsbA", "e30"])
def test_garbage_is_a_cursor_error(cursor: str) -> None:
    with pytest.raises(CursorError):
        decode_cursor(cursor, datetime, UUID)


@pytest.mark.parametrize("values", [[], ["2025-03-01T12:00:00+00:00"], ["2025-03-01T12:00:00+00:00", 1, 2]])
def test_a_cursor_of_the_wrong_arity_is_a_cursor_error(values: list[object]) -> None:
    with pytest.raises(CursorError):
        decode_cursor(_cursor(values), datetime, int)


@pytest.mark.parametrize(
    "values", [{"at": "2025-03-01T12:00:00+00:00"}, "2025-03-01T12:00:00+00:00", 7, None]
)
def test_a_cursor_that_is_not_a_list_is_a_cursor_error(values: object) -> None:
    with pytest.raises(CursorError):
        decode_cursor(_cursor(values), datetime, int)


@pytest.mark.parametrize(
    ("values", "types"),
    [
        (["not a time", 1], (datetime, int)),
        ([1700000000, 1], (datetime, int)),
        ([None, 1], (datetime, int)),
        (["2025-03-01T12:00:00+00:00", "not-a-uuid"], (datetime, UUID)),
        (["2025-03-01T12:00:00+00:00", None], (datetime, UUID)),
        (["2025-03-01T12:00:00+00:00", "1"], (datetime, int)),
        (["2025-03-01T12:00:00+00:00", 1.5], (datetime, int)),
        (["2025-03-01T12:00:00+00:00", None], (datetime, int)),
        ([1], (str,)),
    ],
)
def test_a_value_of_the_wrong_type_is_a_cursor_error(values: list[object], types: tuple[type, ...]) -> None:
    with pytest.raises(CursorError):
        decode_cursor(_cursor(values), *types)


def test_a_naive_time_is_a_cursor_error() -> None:
    with pytest.raises(CursorError):
        decode_cursor(_cursor(["2025-03-01T12:00:00", 1]), datetime, int)


@pytest.mark.parametrize("flag", [True, False])
def test_a_boolean_is_not_an_integer(flag: bool) -> None:
    with pytest.raises(CursorError):
        decode_cursor(_cursor(["2025-03-01T12:00:00+00:00", flag]), datetime, int)


def test_cursor_error_is_a_value_error() -> None:
    # Callers that already catch ValueError keep working.
    assert issubclass(CursorError, ValueError)


@pytest.mark.parametrize("value", [5, [1], {"id": 1}, True])
def test_a_number_where_a_uuid_belongs_is_a_cursor_error(value: object) -> None:
    with pytest.raises(CursorError):
        decode_cursor(_cursor(["2025-03-01T12:00:00+00:00", value]), datetime, UUID)
