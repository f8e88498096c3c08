"""``/v1/alerts``: crisis incidents, open and closed, newest first."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from fastapi import APIRouter, Query
from sqlalchemy import or_, select

from services.analytics.auth import CallerDep
from services.analytics.endpoints.common import StateDep
from services.analytics.models import Incident
from services.analytics.service.alerts import alert_view
from shared.errors import BadRequest, NotFound
from shared.http.pagination import CursorError, decode_cursor, encode_cursor

router = APIRouter(prefix="/v1/alerts", tags=["alerts"])


@router.get("")
async def list_alerts(
    caller: CallerDep,
    state: StateDep,
    status: Annotated[
        Literal["open", "closed"] | None, Query(description="Only open or closed ones.")
    ] = None,
    channel: Annotated[list[UUID] | None, Query(description="Only these channels (repeatable).")] = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
    cursor: Annotated[str | None, Query(description="next_cursor of the previous page.")] = None,
) -> dict[str, Any]:
    """Crisis incidents of the workspace (volume spikes, negative-share jumps, watched keywords), each
    with its start, peak and end, newest first."""
    query = select(Incident).where(Incident.workspace_id == caller.workspace_id)
    if status is not None:
        query = query.where(Incident.status == status)
    if channel:
        query = query.where(Incident.channel_id.in_(channel))
    if cursor is not None:
        try:
            started, after_id = decode_cursor(cursor, datetime, UUID)
        except CursorError as exc:
            raise BadRequest(f"Invalid cursor: {exc}.", code="invalid_cursor") from exc
        query = query.where(
            or_(Incident.started_at < started, (Incident.started_at == started) & (Incident.id < after_id))
        )
    query = query.order_by(Incident.started_at.desc(), Incident.id.desc()).limit(limit + 1)
    async with state.reading() as session:
        rows = list((await session.execute(query)).scalars())
    page = rows[:limit]
    more = len(rows) > limit
    return {
        "data": [alert_view(i) for i in page],
        "next_cursor": encode_cursor(page[-1].started_at, page[-1].id) if more and page else None,
    }


@router.get("/{alert_id}")
async def get_alert(caller: CallerDep, state: StateDep, alert_id: UUID) -> dict[str, Any]:
    """One incident."""
    async with state.reading() as session:
        incident = await session.get(Incident, alert_id)
    if incident is None or incident.workspace_id != caller.workspace_id:
        raise NotFound("No such alert in this workspace.")
    return alert_view(incident)
