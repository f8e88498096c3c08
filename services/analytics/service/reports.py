"""Periodic reports: a week or a month of a workspace, gathered from the rollups, rendered as HTML
with charts or as CSV at conversation grain, and delivered on schedule to a folder and/or the
workspace's outgoing webhooks (``report.generated``).

A scheduled report is claimed by inserting its run (workspace, kind, period start) first, so replicas
never deliver one twice; a run that failed is retried at the next check.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Sequence
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.analytics import outbox
from services.analytics.config import AnalyticsSettings
from services.analytics.hours import ScheduleError, zone
from services.analytics.models import ConversationFact, Incident, ReportRun, WorkspaceSettings
from services.analytics.reports import data
from services.analytics.repository.queries import Scope
from services.analytics.service import kpis, topics_query
from shared.bus.client import Bus, BusUnavailable
from shared.db import insert_for
from shared.events import utcnow
from shared.events.domain import DomainChange
from shared.logging import get_logger

log = get_logger(__name__)

Kind = Literal["weekly", "monthly"]


def period_bounds(kind: Kind, day: date, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The local week (Monday to Monday) or month holding ``day``, as UTC instants."""
    if kind == "weekly":
        first = day - timedelta(days=day.weekday())
        following = first + timedelta(days=7)
    else:
        first = day.replace(day=1)
        following = (first + timedelta(days=32)).replace(day=1)
    return (
        datetime(first.year, first.month, first.day, tzinfo=tz).astimezone(UTC),
        datetime(following.year, following.month, following.day, tzinfo=tz).astimezone(UTC),
    )


def last_complete(kind: Kind, now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime]:
    """The latest week or month that has ended by ``now``."""
    current_start, _ = period_bounds(kind, now.astimezone(tz).date(), tz)
    return period_bounds(kind, (current_start.astimezone(tz) - timedelta(days=1)).date(), tz)


def _summary(figures: dict[str, Any]) -> data.Summary:
    return data.Summary(
        inbound=figures["messages"]["inbound"],
        outbound=figures["messages"]["outbound"],
        new_conversations=figures["conversations"]["new"],
        resolved_conversations=figures["conversations"]["resolved"],
        unique_authors=figures["authors"]["unique"],
        first_time_authors=figures["authors"]["first_time"],
        returning_authors=figures["authors"]["returning"],
        reopened=figures["conversations"]["reopened"],
        sentiment_corrections=figures["sentiment"]["corrections"],
    )


async def build(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    workspace_name: str,
    kind: Kind,
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
) -> data.Report:
    """Gather one report's figures."""
    scope = Scope(workspace_id, start, end)
    figures = await kpis.summary(session, scope)
    previous_start = (
        start - (end - start)
        if kind == "weekly"
        else period_bounds(kind, (start.astimezone(tz) - timedelta(days=1)).date(), tz)[0]
    )
    previous = await kpis.summary(session, Scope(workspace_id, previous_start, start))
    edges = kpis.bucket_edges(start, end, "day", tz)
    points = await kpis.timeseries(session, scope, edges)
    hot = await topics_query.hot_topics(
        session, scope, baseline_days=(end - start).days or 1, min_count=3, limit=10
    )
    agents = await kpis.agents(session, scope)
    channels = await kpis.channels(session, scope)
    incidents = (
        await session.execute(
            select(Incident)
            .where(
                Incident.workspace_id == workspace_id,
                Incident.started_at < end,
                or_(Incident.ended_at.is_(None), Incident.ended_at >= start),
            )
            .order_by(Incident.started_at)
        )
    ).scalars()
    first = figures["first_response"]
    business = figures["business_first_response"]
    return data.Report(
        workspace_name=workspace_name,
        period=data.ReportPeriod(kind, start, end, tz.key),
        summary=_summary(figures),
        previous=_summary(previous)
        if previous["messages"]["inbound"] or previous["conversations"]["new"]
        else None,
        volume=tuple(
            data.VolumePoint(p["start"], p["inbound"], p["outbound"], p["new_conversations"], p["resolved"])
            for p in points
        ),
        response=data.ResponseTimes(
            first["median_seconds"],
            first["p90_seconds"],
            business["median_seconds"],
            business["p90_seconds"],
            first["count"],
        ),
        response_series=tuple(
            data.ResponsePoint(
                p["start"], p["first_response_median_seconds"], p["first_response_p90_seconds"]
            )
            for p in points
        ),
        sentiment=tuple(
            data.SentimentPoint(p["start"], p["negative"], p["neutral"], p["positive"]) for p in points
        ),
        topics=tuple(
            data.TopicRow(
                t["term"],
                t["kind"],
                t["count"],
                t["baseline_count"],
                t["score"],
                tuple(e["text"] for e in t["examples"]),
            )
            for t in hot
        ),
        agents=tuple(
            data.AgentRow(
                a["agent_id"],
                None,
                a["replies"],
                a["first_responses"],
                a["resolutions"],
                a["first_response_median_seconds"],
            )
            for a in agents
        ),
        channels=tuple(
            data.ChannelRow(
                c["channel_id"],
                None,
                None,
                c["messages"]["inbound"],
                c["messages"]["outbound"],
                c["authors"]["unique"],
            )
            for c in channels
        ),
        alerts=tuple(
            data.AlertRow(i.kind, i.channel_id, i.key, i.started_at, i.ended_at, i.peak_value)
            for i in incidents
        ),
        generated_at=utcnow(),
    )


async def conversation_rows(
    session: AsyncSession, workspace_id: uuid.UUID, start: datetime, end: datetime
) -> list[data.ConversationRow]:
    """The conversations opened in ``[start, end)``, oldest first: one CSV row each."""
    c = ConversationFact
    query = (
        select(
            c.id,
            c.channel_id,
            c.opened_at,
            c.first_response_at,
            c.first_response_seconds,
            c.business_first_response_seconds,
            c.resolved_at,
            c.resolution_seconds,
            c.reopen_count,
            c.inbound_messages,
            c.outbound_messages,
            c.first_responder_key,
            c.last_sentiment,
            c.sentiment_score_avg,
            c.labels,
            c.first_sentiment,
        )
        .where(c.workspace_id == workspace_id, c.opened_at >= start, c.opened_at < end)
        .order_by(c.opened_at, c.id)
    )
    # Plain tuples off the connection, not ORM rows: a month can be a hundred thousand conversations.
    rows: Any = await (await session.connection()).execute(query)
    # The row's values in the select's order, the platform (unknown to analytics) after the channel.
    return [
        data.ConversationRow(  # type: ignore[call-arg]  # mypy cannot count starred slices
            *row[:2], None, *row[2:14], tuple(str(label) for label in row[14] or ()), row[15]
        )
        for row in rows
    ]


def report_folder(settings: AnalyticsSettings) -> Path:
    """Where scheduled reports are written: the configured folder, else ``<data dir>/reports``."""
    return settings.report_folder or settings.data_dir / "reports"


async def deliver_due(
    sessions: async_sessionmaker[AsyncSession], bus: Bus | None, settings: AnalyticsSettings, now: datetime
) -> int:
    """Deliver every scheduled report whose period has ended and was not delivered; returns how many."""
    from services.analytics.reports.csv_export import render_csv
    from services.analytics.reports.html import render_html

    async with sessions() as session:
        configured = list((await session.execute(select(WorkspaceSettings))).scalars())
    delivered = 0
    for ws in configured:
        schedule = ws.report_schedule or {}
        kinds: Sequence[Kind] = schedule.get("kinds") or ()
        if not kinds or not (schedule.get("folder") or schedule.get("webhook")):
            continue
        try:
            tz = zone(ws.timezone)
        except ScheduleError:
            continue
        for kind in kinds:
            start, end = last_complete(kind, now, tz)
            if end <= ws.updated_at:
                continue  # ended before the schedule was saved: a new schedule starts with the next
            if not await _claim(sessions, ws.workspace_id, kind, start, now):
                continue
            try:
                async with sessions() as session:
                    report = await build(session, ws.workspace_id, str(ws.workspace_id), kind, start, end, tz)
                    rows = await conversation_rows(session, ws.workspace_id, start, end)
                detail: dict[str, Any] = {}
                if schedule.get("folder"):
                    folder = report_folder(settings) / str(ws.workspace_id)
                    stem = f"{kind}-{start.astimezone(tz).date().isoformat()}"
                    html, csv_text = render_html(report), "".join(render_csv(rows))
                    await asyncio.to_thread(_write, folder, stem, html, csv_text)
                    detail["files"] = [str(folder / f"{stem}.html"), str(folder / f"{stem}.csv")]
                async with sessions() as session, session.begin():
                    if schedule.get("webhook"):
                        await _announce(session, ws.workspace_id, kind, start, end, tz, report, schedule, now)
                    await _finish(session, ws.workspace_id, kind, start, "delivered", detail, now)
                delivered += 1
                log.info(
                    "analytics.report.delivered",
                    workspace_id=str(ws.workspace_id),
                    kind=kind,
                    start=start.isoformat(),
                )
            except Exception as exc:  # noted on the run; retried at the next check
                log.warning(
                    "analytics.report.failed",
                    workspace_id=str(ws.workspace_id),
                    kind=kind,
                    error=f"{type(exc).__name__}: {exc}",
                )
                async with sessions() as session, session.begin():
                    await _finish(
                        session,
                        ws.workspace_id,
                        kind,
                        start,
                        "failed",
                        {"error": f"{type(exc).__name__}: {exc}"},
                        now,
                    )
    if delivered and bus is not None:
        with contextlib.suppress(BusUnavailable):
            await outbox.publish(sessions, bus)
    return delivered


def _write(folder: Path, stem: str, html: str, csv_text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    for suffix, content in ((".html", html), (".csv", csv_text)):
        partial = folder / f"{stem}{suffix}.partial"
        partial.write_text(content, encoding="utf-8")
        partial.replace(folder / f"{stem}{suffix}")  # readers never see half a file


async def _claim(
    sessions: async_sessionmaker[AsyncSession],
    workspace_id: uuid.UUID,
    kind: str,
    start: datetime,
    now: datetime,
) -> bool:
    """Take the run of this report: new, or failed before (retried), never one delivered or running
    (a run stuck 'running' for an hour is taken over: its worker died)."""
    async with sessions() as session, session.begin():
        dialect = session.get_bind().dialect.name
        inserted = await session.execute(
            insert_for(dialect, ReportRun)
            .values(
                workspace_id=workspace_id,
                kind=kind,
                period_start=start,
                status="running",
                detail={},
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing()
            .returning(ReportRun.kind)
        )
        if inserted.first() is not None:
            return True
        retaken = await session.execute(
            update(ReportRun)
            .where(
                ReportRun.workspace_id == workspace_id,
                ReportRun.kind == kind,
                ReportRun.period_start == start,
                or_(
                    ReportRun.status == "failed",
                    (ReportRun.status == "running") & (ReportRun.updated_at < now - timedelta(hours=1)),
                ),
            )
            .values(status="running", updated_at=now)
        )
        return bool(retaken.rowcount)  # type: ignore[attr-defined]


async def _finish(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    kind: str,
    start: datetime,
    status: str,
    detail: dict[str, Any],
    now: datetime,
) -> None:
    await session.execute(
        update(ReportRun)
        .where(
            ReportRun.workspace_id == workspace_id, ReportRun.kind == kind, ReportRun.period_start == start
        )
        .values(status=status, detail=detail, updated_at=now)
    )


async def _announce(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    kind: Kind,
    start: datetime,
    end: datetime,
    tz: ZoneInfo,
    report: data.Report,
    schedule: dict[str, Any],
    now: datetime,
) -> None:
    day = start.astimezone(tz).date().isoformat()
    base = str(schedule.get("base_url") or "").rstrip("/")
    links = {
        "html": f"{base}/v1/reports/{kind}?start={day}",
        "csv": f"{base}/v1/reports/{kind}?start={day}&format=csv",
    }
    summary = report.summary
    await outbox.announce(
        session,
        workspace_id,
        "report.generated",
        DomainChange(
            data={
                "kind": kind,
                "start": start.isoformat(),
                "end": end.isoformat(),
                "timezone": tz.key,
                "summary": {
                    "inbound": summary.inbound,
                    "outbound": summary.outbound,
                    "new_conversations": summary.new_conversations,
                    "resolved_conversations": summary.resolved_conversations,
                    "unique_authors": summary.unique_authors,
                    "first_response_median_seconds": report.response.median_seconds,
                    "first_response_p90_seconds": report.response.p90_seconds,
                },
                "links": links,
            }
        ),
        now,
        event_id=f"report-{workspace_id.hex}-{kind}-{day}",
    )


async def schedule(
    sessions: async_sessionmaker[AsyncSession], bus: Bus, settings: AnalyticsSettings, stop: asyncio.Event
) -> None:
    """Look for due reports on a clock."""
    while not stop.is_set():
        try:
            await deliver_due(sessions, bus, settings, utcnow())
        except Exception as exc:  # the database away: try again next round
            log.warning("analytics.reports.check_failed", error=f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.report_check_seconds)
