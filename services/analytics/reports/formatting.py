"""How numbers, durations and dates read in a report: short, human, and independent of the host locale."""

from __future__ import annotations

import math
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

NONE = "—"
# Spelled out rather than strftime("%b"), whose output follows the process locale.
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


def duration(seconds: float | None) -> str:
    """``45 s``, ``4 min``, ``2 h 5 min``, ``3 d 4 h``; ``—`` when nothing was measured."""
    if seconds is None or not math.isfinite(seconds):
        return NONE
    seconds = max(seconds, 0.0)
    if round(seconds) < 60:
        return f"{round(seconds)} s"
    minutes = round(seconds / 60)
    if minutes < 60:
        return f"{minutes} min"
    hours, minutes = divmod(minutes, 60)
    if hours < 24:
        return f"{hours} h {minutes} min" if minutes else f"{hours} h"
    days, hours = divmod(hours, 24)
    return f"{days} d {hours} h" if hours else f"{days} d"


def count(value: int) -> str:
    return f"{value:,}"


def share(part: int, total: int) -> str:
    """``part`` as a whole percentage of ``total`` (``—`` for an empty total)."""
    if total <= 0:
        return NONE
    return f"{round(100 * part / total)}%"


def change(current: int, previous: int | None) -> str:
    """The change against the previous period: ``▲ 12%``, ``▼ 5%``, ``= 0%``, or "" when unknown."""
    if previous is None:
        return ""
    if previous == 0:
        # No base to divide by: a percentage would be infinite, so say what happened instead.
        return "= 0%" if current == 0 else "▲ new"
    percent = round(100 * (current - previous) / previous)
    if percent > 0:
        return f"▲ {percent}%"
    if percent < 0:
        return f"▼ {-percent}%"
    return "= 0%"


def span(first: str, last: str) -> str:
    """The two ends of a range joined by an en dash, as typography has it."""
    return f"{first} \N{EN DASH} {last}"


def day(value: datetime, zone: ZoneInfo) -> str:
    """``3 Mar 2025`` in ``zone``."""
    local = value.astimezone(zone)
    return f"{local.day} {MONTHS[local.month - 1]} {local.year}"


def timestamp(value: datetime, zone: ZoneInfo) -> str:
    """``3 Mar 2025 14:05`` in ``zone``."""
    local = value.astimezone(zone)
    return f"{day(local, zone)} {local:%H:%M}"


def last_day(end: datetime, zone: ZoneInfo) -> str:
    """The last day of a period ending (excluded) at ``end``: a period ending at midnight ends the day before."""
    return day(end - timedelta(microseconds=1), zone)


def bucket_label(bucket: datetime, zone: ZoneInfo) -> str:
    """A chart's x label: ``3 Mar`` for a day bucket, ``3 Mar 14:00`` for any other."""
    local = bucket.astimezone(zone)
    label = f"{local.day} {MONTHS[local.month - 1]}"
    if (local.hour, local.minute) != (0, 0):
        label += f" {local:%H:%M}"
    return label
