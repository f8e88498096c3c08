"""``/v1/reports/weekly`` and ``/v1/reports/monthly``: HTML with charts, or CSV at conversation grain."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from fastapi import APIRouter, Query
from fastapi.responses import HTMLResponse, Response, StreamingResponse

from services.analytics.auth import CallerDep
from services.analytics.endpoints.common import StateDep
from services.analytics.hours import ScheduleError, zone
from services.analytics.service import reports
from services.analytics.service import settings as workspace_settings
from shared.errors import BadRequest
from shared.events import utcnow

router = APIRouter(prefix="/v1/reports", tags=["reports"])

_RESPONSES: dict[int | str, dict[str, object]] = {
    200: {"content": {"text/html": {}, "text/csv": {}}, "description": "The report."}
}


async def _report(
    kind: reports.Kind, caller: CallerDep, state: StateDep, start: date | None, fmt: str, timezone: str | None
) -> Response:
    async with state.reading() as session:
        tz_name = timezone or (await workspace_settings.current(session, caller.workspace_id))["timezone"]
        try:
            tz = zone(tz_name)
        except ScheduleError as exc:
            raise BadRequest(str(exc), code="invalid_timezone") from exc
        if start is None:
            begin, end = reports.last_complete(kind, utcnow(), tz)
        else:
            begin, end = reports.period_bounds(kind, start, tz)
        day = begin.astimezone(tz).date().isoformat()
        if fmt == "csv":
            from services.analytics.reports.csv_export import render_csv

            rows = await reports.conversation_rows(session, caller.workspace_id, begin, end)
            return StreamingResponse(
                render_csv(rows),
                media_type="text/csv; charset=utf-8",
                headers={"Content-Disposition": f'attachment; filename="{kind}-{day}.csv"'},
            )
        report = await reports.build(
            session, caller.workspace_id, caller.workspace_name, kind, begin, end, tz
        )
    from services.analytics.reports.html import render_html

    return HTMLResponse(render_html(report))


Start = Annotated[
    date | None,
    Query(description="A day of the period (its week or month is reported); default: the last complete one."),
]
Format = Annotated[
    Literal["html", "csv"],
    Query(alias="format", description="html (with charts) or csv (one row per conversation)."),
]
Zone = Annotated[str | None, Query(description="IANA time zone; default: the workspace's.")]


@router.get("/weekly", response_class=Response, responses=_RESPONSES)
async def weekly(
    caller: CallerDep, state: StateDep, start: Start = None, fmt: Format = "html", timezone: Zone = None
) -> Response:
    """The weekly report (Monday to Monday, local time): KPIs against the week before, volume,
    response-time, sentiment and topic charts, agents, channels and alerts; or its conversations as CSV."""
    return await _report("weekly", caller, state, start, fmt, timezone)


@router.get("/monthly", response_class=Response, responses=_RESPONSES)
async def monthly(
    caller: CallerDep, state: StateDep, start: Start = None, fmt: Format = "html", timezone: Zone = None
) -> Response:
    """The monthly report (calendar month, local time), like the weekly one."""
    return await _report("monthly", caller, state, start, fmt, timezone)
