"""Time buckets: UTC hours for rollups, short fixed buckets for crisis detection."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def hour_of(moment: datetime) -> datetime:
    """The UTC hour ``moment`` falls in."""
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def bucket_of(moment: datetime, seconds: int) -> datetime:
    """The start of the ``seconds``-long bucket (aligned to the epoch) ``moment`` falls in."""
    elapsed = int((moment - EPOCH).total_seconds())
    return EPOCH + timedelta(seconds=elapsed - elapsed % seconds)
