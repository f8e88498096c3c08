"""Time buckets: UTC hours for rollups, short fixed buckets for crisis detection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def hour_of(moment: datetime) -> datetime:
    """The UTC hour ``moment`` falls in."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def bucket_of(moment: datetime, seconds: int) -> datetime:
    """The start (UTC, aligned to the epoch, exact to the microsecond) of the ``seconds``-long
    bucket ``moment`` falls in; a naive ``moment`` or a bucket length below 1 is a ValueError."""
    if moment.tzinfo is None:
        raise ValueError("bucket_of needs a timezone-aware datetime")
    if seconds <= 0:
        raise ValueError("bucket length must be positive")
    length = timedelta(seconds=seconds)
    return EPOCH + ((moment.astimezone(UTC) - EPOCH) // length) * length
