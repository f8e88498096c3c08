"""KPIs: summary, time series, agents and channels, in the workspace's time zone."""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics.repository import queries
from services.analytics.repository.queries import By, ConversationFigures, Durations, Scope, Volumes

Granularity = Literal["hour", "day", "week"]
MAX_BUCKETS = 750
"""A time series has at most this many points (a month by the hour, two years by the day)."""


class RangeError(ValueError):
    """A time range or granularity that cannot be answered."""


def durations(figures: Durations) -> dict[str, Any]:
    """Median, p90, mean and count of durations in seconds."""
    return {
        "count": figures.count,
        "median_seconds": figures.median,
        "p90_seconds": figures.p90,
        "mean_seconds": figures.mean,
    }


def whole_hours(since: datetime, until: datetime) -> tuple[datetime, datetime]:
    """The range widened to whole UTC hours (the rollups' grain)."""
    start = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
    end = until.astimezone(UTC)
    if end != end.replace(minute=0, second=0, microsecond=0):
        end = end.replace(minute=0, second=0, microsecond=0) + timedelta(hours=1)
    if end <= start:
        raise RangeError("until must be after since")
    return start, end


def bucket_edges(
    since: datetime, until: datetime, granularity: Granularity, zone: ZoneInfo
) -> list[datetime]:
    """The starts of the buckets covering ``[since, until)`` in local time, then ``until``: hours,
    local days (midnight to midnight, 23 or 25 hours across daylight-saving changes) or ISO weeks
    starting on Monday."""
    local = since.astimezone(zone)
    if granularity == "hour":
        current = since.astimezone(UTC).replace(minute=0, second=0, microsecond=0)
        step = timedelta(hours=1)
        edges = []
        while current < until:
            edges.append(current)
            current += step
            if len(edges) > MAX_BUCKETS:
                raise RangeError(
                    f"more than {MAX_BUCKETS} hourly points: use a shorter range or granularity=day"
                )
        return [*edges, until]
    day = local.date()
    if granularity == "week":
        day -= timedelta(days=day.weekday())
    edges = []
    while True:
        start = datetime(day.year, day.month, day.day, tzinfo=zone).astimezone(UTC)
        if start >= until:
            break
        edges.append(start)
        day += timedelta(days=7 if granularity == "week" else 1)
        if len(edges) > MAX_BUCKETS:
            raise RangeError(f"more than {MAX_BUCKETS} points: use a shorter range or a coarser granularity")
    edges[0] = min(edges[0], since) if edges else since
    return [*edges, until]


async def summary(session: AsyncSession, scope: Scope) -> dict[str, Any]:
    """Every headline figure of a scope."""
    return (await _headlines(session, scope, queries.WHOLE)).get(0) or _figures()


async def channels(session: AsyncSession, scope: Scope) -> list[dict[str, Any]]:
    """Per channel with a message, or a conversation opened, resolved or reopened, in the scope:
    the summary's figures."""
    rows = [
        {"channel_id": channel_id, **figures}
        for channel_id, figures in (await _headlines(session, scope, queries.BY_CHANNEL)).items()
        if channel_id is not None
    ]
    rows.sort(key=lambda r: (-r["messages"]["inbound"], str(r["channel_id"])))
    return rows


async def _headlines(session: AsyncSession, scope: Scope, by: By) -> dict[Any, dict[str, Any]]:
    volumes = await queries.volumes(session, scope, by)
    unique = await queries.unique_authors(session, scope, by)
    first_time = await queries.first_time_authors(session, scope, by)
    conversations = await queries.conversation_figures(session, scope, by)
    corrected = await queries.corrections(session, scope, by)
    return {
        key: _figures(
            volumes.get(key, Volumes()),
            unique.get(key, 0),
            first_time.get(key, 0),
            conversations.get(key, ConversationFigures()),
            corrected.get(key, 0),
        )
        for key in volumes.keys() | unique.keys() | conversations.keys()
    }


def _figures(
    volumes: Volumes | None = None,
    unique: int = 0,
    first_time: int = 0,
    conversations: ConversationFigures | None = None,
    corrected: int = 0,
) -> dict[str, Any]:
    v = volumes or Volumes()
    c = conversations or ConversationFigures()
    scored = v.negative + v.neutral + v.positive
    return {
        "messages": {"inbound": v.inbound, "outbound": v.outbound},
        "conversations": {"new": c.opened, "resolved": c.resolved, "reopened": c.reopened},
        "authors": {
            "unique": unique,
            "first_time": min(first_time, unique),
            "returning": max(unique - first_time, 0),
        },
        "first_response": durations(c.first_response),
        "business_first_response": durations(c.business_first_response),
        "resolution": durations(c.resolution),
        "sentiment": {
            "negative": v.negative,
            "neutral": v.neutral,
            "positive": v.positive,
            "negative_share": v.negative / scored if scored else None,
            "corrections": corrected,
        },
    }


async def timeseries(session: AsyncSession, scope: Scope, edges: list[datetime]) -> list[dict[str, Any]]:
    """One point per bucket of ``edges``."""
    by = queries.buckets(edges)
    volumes = await queries.volumes(session, scope, by)
    authors = await queries.unique_authors(session, scope, by)
    conversations = await queries.conversation_figures(session, scope, by)
    points = []
    for index, start in enumerate(edges[:-1]):
        v = volumes.get(index, Volumes())
        c = conversations.get(index, ConversationFigures())
        points.append(
            {
                "start": start,
                "end": edges[index + 1],
                "inbound": v.inbound,
                "outbound": v.outbound,
                "new_conversations": c.opened,
                "resolved": c.resolved,
                "unique_authors": authors.get(index, 0),
                "negative": v.negative,
                "neutral": v.neutral,
                "positive": v.positive,
                "first_response_median_seconds": c.first_response.median,
                "first_response_p90_seconds": c.first_response.p90,
                "business_first_response_median_seconds": c.business_first_response.median,
            }
        )
    return points


async def agents(session: AsyncSession, scope: Scope) -> list[dict[str, Any]]:
    """Per agent: replies, first responses (median and p90) and resolutions, busiest first."""
    rows: list[dict[str, Any]] = []
    for agent, figures in (await queries.agent_figures(session, scope)).items():
        rows.append(
            {
                "agent_id": agent,
                "replies": figures.replies,
                "first_responses": figures.first_responses.count,
                "first_response_median_seconds": figures.first_responses.median,
                "first_response_p90_seconds": figures.first_responses.p90,
                "resolutions": figures.resolutions,
            }
        )
    rows.sort(key=lambda r: (-r["replies"], -r["resolutions"], r["agent_id"]))
    return rows


def scope_of(
    workspace_id: uuid.UUID,
    since: datetime,
    until: datetime,
    channels: Sequence[uuid.UUID] = (),
    labels: Sequence[str] = (),
) -> Scope:
    """A scope over whole hours."""
    start, end = whole_hours(since, until)
    return Scope(workspace_id, start, end, tuple(channels), tuple(labels))
