"""A workspace's analytics settings: time zone, working hours, watched keywords, report delivery."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics.hours import ScheduleError, business_seconds, parse_schedule, zone
from services.analytics.models import ConversationFact, WorkspaceSettings
from shared.errors import ValidationFailed

DEFAULTS: dict[str, Any] = {
    "timezone": "UTC",
    "working_hours": {},
    "watched_keywords": [],
    "report_schedule": {},
}


async def current(session: AsyncSession, workspace_id: uuid.UUID) -> dict[str, Any]:
    """The workspace's settings (the defaults if it never saved any)."""
    found = await session.get(WorkspaceSettings, workspace_id)
    if found is None:
        return dict(DEFAULTS)
    return {
        "timezone": found.timezone,
        "working_hours": found.working_hours,
        "watched_keywords": found.watched_keywords,
        "report_schedule": found.report_schedule,
    }


async def save(
    session: AsyncSession, workspace_id: uuid.UUID, wanted: dict[str, Any], now: datetime
) -> dict[str, Any]:
    """Validate and store settings (fields not given keep their value). When the time zone or the
    working hours change, every conversation's business-hours response time is recomputed."""
    merged = {**await current(session, workspace_id), **{k: v for k, v in wanted.items() if v is not None}}
    try:
        zone(merged["timezone"])
    except ScheduleError as exc:
        raise ValidationFailed(str(exc), errors=[{"field": "timezone", "message": str(exc)}]) from exc
    try:
        schedule = parse_schedule(merged["timezone"], merged["working_hours"])
    except ScheduleError as exc:
        raise ValidationFailed(str(exc), errors=[{"field": "working_hours", "message": str(exc)}]) from exc
    found = await session.get(WorkspaceSettings, workspace_id)
    hours_changed = found is None or (found.timezone, found.working_hours) != (
        merged["timezone"],
        merged["working_hours"],
    )
    if found is None:
        found = WorkspaceSettings(workspace_id=workspace_id, updated_at=now, **merged)
        session.add(found)
    else:
        for name, value in merged.items():
            setattr(found, name, value)
        found.updated_at = now
    if hours_changed:
        rows = await session.execute(
            select(ConversationFact.id, ConversationFact.opened_at, ConversationFact.first_response_at).where(
                ConversationFact.workspace_id == workspace_id, ConversationFact.first_response_at.is_not(None)
            )
        )
        changes = [
            {"id": cid, "business_first_response_seconds": business_seconds(opened, responded, schedule)}
            for cid, opened, responded in rows.all()
            if opened is not None and responded is not None
        ]
        for start in range(0, len(changes), 1000):
            await session.execute(update(ConversationFact), changes[start : start + 1000])
    return merged
