"""Working hours: how much of a wait fell inside a workspace's business hours, in its time zone.

A schedule maps weekdays (``mon`` .. ``sun``) to intervals of local time (``["09:00", "18:00"]``);
a day not named is closed. An empty schedule means "always open", so business time equals clock
time. Intervals are read in the workspace's time zone on each calendar day, so daylight-saving
changes shift them the way a wall clock does.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from datetime import UTC, date, datetime, time, timedelta
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

DAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_MAX_DAYS = 400  # beyond this a wait is counted in whole weeks (see business_seconds)


class ScheduleError(ValueError):
    """A time zone or working-hours definition that cannot be used."""


@dataclass(frozen=True, slots=True)
class Schedule:
    """A time zone and, per weekday (0 = Monday), the open intervals of local time."""

    zone: ZoneInfo
    days: tuple[tuple[tuple[time, time], ...], ...]

    @property
    def always_open(self) -> bool:
        """No working hours were given: every second counts."""
        return not any(self.days)


def zone(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; :class:`ScheduleError` if there is none."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ScheduleError(f"unknown time zone {name!r}") from exc


def parse_schedule(timezone: str, working_hours: dict[str, Any] | None) -> Schedule:
    """Validate and build a schedule; raises :class:`ScheduleError` with what is wrong."""
    days: list[tuple[tuple[time, time], ...]] = []
    hours = working_hours or {}
    unknown = set(hours) - set(DAYS)
    if unknown:
        raise ScheduleError(f"unknown day(s) {sorted(unknown)}: use {', '.join(DAYS)}")
    for day in DAYS:
        intervals = []
        for interval in _intervals(day, hours.get(day)):
            start, end = (_clock(day, value) for value in interval)
            if end != time(0) and end <= start:
                raise ScheduleError(f"{day}: {interval[0]}-{interval[1]} ends before it starts")
            intervals.append((start, end))
        intervals.sort()
        for (_, first_end), (second_start, _) in itertools.pairwise(intervals):
            if first_end == time(0) or second_start < first_end:
                raise ScheduleError(f"{day}: intervals overlap")
        days.append(tuple(intervals))
    return Schedule(zone(timezone), tuple(days))


def _intervals(day: str, value: Any) -> list[list[str]]:
    if value is None:
        return []
    if isinstance(value, list) and len(value) == 2 and all(isinstance(v, str) for v in value):
        return [value]  # one interval written flat: ["09:00", "18:00"]
    if isinstance(value, list) and all(
        isinstance(v, list) and len(v) == 2 and all(isinstance(x, str) for x in v) for v in value
    ):
        return value
    raise ScheduleError(f'{day}: expected ["HH:MM", "HH:MM"] or a list of them')


def _clock(day: str, value: str) -> time:
    if value == "24:00":
        return time(0)  # end of the day
    try:
        return time.fromisoformat(value)
    except ValueError as exc:
        raise ScheduleError(f"{day}: {value!r} is not a time of day (HH:MM)") from exc


def business_seconds(start: datetime, end: datetime, schedule: Schedule) -> float:
    """Seconds between ``start`` and ``end`` that fall inside working hours (0 if end <= start)."""
    if end <= start:
        return 0.0
    if schedule.always_open:
        return (end - start).total_seconds()
    total = 0.0
    first = start.astimezone(schedule.zone).date() - timedelta(days=1)
    last = end.astimezone(schedule.zone).date()
    days = (last - first).days + 1
    if days > _MAX_DAYS:
        # A wait of more than a year: count the whole weeks in the middle at a week's open time.
        weeks = (days - 14) // 7
        middle = first + timedelta(days=7)
        total += weeks * _open_seconds_in_week(middle, schedule)
        skipped_from, skipped_to = middle, middle + timedelta(days=7 * weeks)
    else:
        skipped_from = skipped_to = last + timedelta(days=1)
    day = first
    while day <= last:
        if skipped_from <= day < skipped_to:
            day = skipped_to
            continue
        for opens, closes in _day_intervals(day, schedule):
            overlap = (min(end, closes) - max(start, opens)).total_seconds()
            if overlap > 0:
                total += overlap
        day += timedelta(days=1)
    return total


def _day_intervals(day: date, schedule: Schedule) -> list[tuple[datetime, datetime]]:
    result = []
    for opens, closes in schedule.days[day.weekday()]:
        start = datetime.combine(day, opens, tzinfo=schedule.zone).astimezone(UTC)
        end_day = day + timedelta(days=1) if closes == time(0) else day
        end = datetime.combine(end_day, closes, tzinfo=schedule.zone).astimezone(UTC)
        result.append((start, end))
    return result


def _open_seconds_in_week(monday: date, schedule: Schedule) -> float:
    return sum(
        (end - start).total_seconds()
        for offset in range(7)
        for start, end in _day_intervals(monday + timedelta(days=offset), schedule)
    )
