"""KPIs: summary, time series, agents and channels, in the workspace's time zone."""

from __future__ import annotations

import math
import uuid
from collections.abc import Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Literal
from zoneinfo import ZoneInfo

from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics.repository import queries
from services.analytics.repository.queries import ConversationFigures, Scope

Granularity = Literal["hour", "day", "week"]
MAX_BUCKETS = 750
"""A time series has at most this many points (a month by the hour, two years by the day)."""


class RangeError(ValueError):
    """A time range or granularity that cannot be answered."""


def percentile(values: Sequence[float], q: float) -> float | None:
    """The ``q`` quantile (0..1) with linear interpolation between ranks, as PostgreSQL's
    ``percentile_cont``; None for no values."""
    if not values:
        return None
    ordered = sorted(values)
    rank = q * (len(ordered) - 1)
    low, high = math.floor(rank), math.ceil(rank)
    return ordered[low] + (ordered[high] - ordered[low]) * (rank - low)


def durations(values: Sequence[float]) -> dict[str, Any]:
    """Median, p90, mean and count of durations in seconds."""
    return {
        "count": len(values),
        "median_seconds": percentile(values, 0.5),
        "p90_seconds": percentile(values, 0.9),
        "mean_seconds": sum(values) / len(values) if values else None,
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
    volumes = (await queries.volumes(session, scope)).get(0, queries.Volumes())
    unique = (await queries.unique_authors(session, scope)).get(0, 0)
    first_time = await queries.first_time_authors(session, scope)
    conversations = (await queries.conversation_figures(session, scope)).get(0, ConversationFigures())
    corrected = await queries.corrections(session, scope)
    scored = volumes.negative + volumes.neutral + volumes.positive
    return {
        "messages": {"inbound": volumes.inbound, "outbound": volumes.outbound},
        "conversations": {
            "new": conversations.opened,
            "resolved": conversations.resolved,
            "reopened": conversations.reopened,
        },
        "authors": {
            "unique": unique,
            "first_time": min(first_time, unique),
            "returning": max(unique - first_time, 0),
        },
        "first_response": durations(conversations.first_response),
        "business_first_response": durations(conversations.business_first_response),
        "resolution": durations(conversations.resolution),
        "sentiment": {
            "negative": volumes.negative,
            "neutral": volumes.neutral,
            "positive": volumes.positive,
            "negative_share": volumes.negative / scored if scored else None,
            "corrections": corrected,
        },
    }


async def timeseries(session: AsyncSession, scope: Scope, edges: list[datetime]) -> list[dict[str, Any]]:
    """One point per bucket of ``edges``."""
    volumes = await queries.volumes(session, scope, edges)
    authors = await queries.unique_authors(session, scope, edges)
    conversations = await queries.conversation_figures(session, scope, edges)
    points = []
    for index, start in enumerate(edges[:-1]):
        v = volumes.get(index, queries.Volumes())
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
                "first_response_median_seconds": percentile(c.first_response, 0.5),
                "first_response_p90_seconds": percentile(c.first_response, 0.9),
                "business_first_response_median_seconds": percentile(c.business_first_response, 0.5),
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
                "first_responses": len(figures.first_responses),
                "first_response_median_seconds": percentile(figures.first_responses, 0.5),
                "first_response_p90_seconds": percentile(figures.first_responses, 0.9),
                "resolutions": figures.resolutions,
            }
        )
    rows.sort(key=lambda r: (-r["replies"], -r["resolutions"], r["agent_id"]))
    return rows


async def channels(session: AsyncSession, scope: Scope) -> list[dict[str, Any]]:
    """Per channel with traffic: the summary's main figures."""
    rows: list[dict[str, Any]] = []
    for channel_id in await queries.channel_ids(session, scope):
        one = Scope(scope.workspace_id, scope.since, scope.until, (channel_id,), scope.labels)
        figures = await summary(session, one)
        rows.append({"channel_id": channel_id, **figures})
    rows.sort(key=lambda r: (-r["messages"]["inbound"], str(r["channel_id"])))
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
