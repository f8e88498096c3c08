"""What every analytics endpoint takes: the caller's state, and the scope of a figure."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Annotated
from uuid import UUID
from zoneinfo import ZoneInfo

from fastapi import Depends, Query, Request

from services.analytics.auth import CallerDep
from services.analytics.hours import ScheduleError, zone
from services.analytics.repository.queries import Scope
from services.analytics.service import kpis
from services.analytics.service import settings as workspace_settings
from services.analytics.state import AnalyticsState
from shared.errors import BadRequest
from shared.events import utcnow

DEFAULT_DAYS = 7


async def analytics_state(request: Request) -> AnalyticsState:
    """The analytics API's process state."""
    state: AnalyticsState = request.app.state.analytics
    return state


StateDep = Annotated[AnalyticsState, Depends(analytics_state)]


@dataclass(frozen=True, slots=True)
class Window:
    """A scope and the time zone its buckets are read in."""

    scope: Scope
    zone: ZoneInfo


def aware(value: datetime | None, name: str) -> datetime | None:
    """A timestamp with its offset; a bare one is a 400 (it would be read in the wrong zone)."""
    if value is not None and value.tzinfo is None:
        raise BadRequest(f"{name} needs a time zone offset, e.g. 2026-11-01T00:00:00Z.", code="invalid_time")
    return value


async def window(
    caller: CallerDep,
    state: StateDep,
    since: Annotated[
        datetime | None,
        Query(description="Start (inclusive, ISO 8601 with offset); default: 7 days before until."),
    ] = None,
    until: Annotated[datetime | None, Query(description="End (exclusive); default: now.")] = None,
    channel: Annotated[list[UUID] | None, Query(description="Only these channels (repeatable).")] = None,
    label: Annotated[
        list[str] | None,
        Query(description="Only conversations with every one of these label ids (repeatable)."),
    ] = None,
    timezone: Annotated[
        str | None, Query(description="IANA zone for day and week buckets; default: the workspace's.")
    ] = None,
) -> Window:
    """The range, channels, labels and time zone a request asks about (whole UTC hours)."""
    end = aware(until, "until") or utcnow()
    start = aware(since, "since") or end - timedelta(days=DEFAULT_DAYS)
    if end <= start:
        raise BadRequest("until must be after since.", code="invalid_range")
    if end - start > timedelta(days=3 * 366):
        raise BadRequest("A range can span at most three years.", code="invalid_range")
    if timezone is None:
        async with state.reading() as session:
            timezone = (await workspace_settings.current(session, caller.workspace_id))["timezone"]
    try:
        tz = zone(timezone)
    except ScheduleError as exc:
        raise BadRequest(str(exc), code="invalid_timezone") from exc
    return Window(kpis.scope_of(caller.workspace_id, start, end, channel or (), label or ()), tz)


WindowDep = Annotated[Window, Depends(window)]
