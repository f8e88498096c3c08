"""``/v1/analytics``: summary, time series, agents, channels and hot topics."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from services.analytics.auth import CallerDep
from services.analytics.endpoints.common import StateDep, WindowDep
from services.analytics.service import kpis, topics_query
from shared.errors import BadRequest

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])


def _period(window: WindowDep) -> dict[str, Any]:
    return {"since": window.scope.since, "until": window.scope.until, "timezone": window.zone.key}


@router.get("/summary")
async def summary(caller: CallerDep, state: StateDep, window: WindowDep) -> dict[str, Any]:
    """Headline KPIs of a range: volumes, conversations, authors, response and resolution times
    (median, p90, mean; clock and business hours) and sentiment."""
    async with state.reading() as session:
        figures = await kpis.summary(session, window.scope)
    return {"period": _period(window), **figures}


@router.get("/timeseries")
async def timeseries(
    caller: CallerDep,
    state: StateDep,
    window: WindowDep,
    granularity: Annotated[kpis.Granularity, Query(description="hour, day or week (local time).")] = "day",
) -> dict[str, Any]:
    """The KPIs per hour, local day or local week of the range."""
    try:
        edges = kpis.bucket_edges(window.scope.since, window.scope.until, granularity, window.zone)
    except kpis.RangeError as exc:
        raise BadRequest(str(exc), code="too_many_points") from exc
    async with state.reading() as session:
        points = await kpis.timeseries(session, window.scope, edges)
    return {"period": _period(window), "granularity": granularity, "points": points}


@router.get("/agents")
async def agents(caller: CallerDep, state: StateDep, window: WindowDep) -> dict[str, Any]:
    """Per agent: replies, first responses with their median and p90, resolutions."""
    async with state.reading() as session:
        rows = await kpis.agents(session, window.scope)
    return {"period": _period(window), "agents": rows}


@router.get("/channels")
async def channels(caller: CallerDep, state: StateDep, window: WindowDep) -> dict[str, Any]:
    """Per channel with traffic in the range: the summary's figures."""
    async with state.reading() as session:
        rows = await kpis.channels(session, window.scope)
    return {"period": _period(window), "channels": rows}


@router.get("/topics")
async def topics(
    caller: CallerDep,
    state: StateDep,
    window: WindowDep,
    baseline_days: Annotated[
        int, Query(ge=1, le=90, description="Length of the baseline before the range.")
    ] = 7,
    min_count: Annotated[int, Query(ge=1, le=10_000, description="Messages a term needs in the range.")] = 3,
    limit: Annotated[int, Query(ge=1, le=100)] = 20,
) -> dict[str, Any]:
    """Hot topics: terms, phrases, hashtags and emoji rising in the range against the baseline
    before it, each with example messages."""
    async with state.reading() as session:
        rows = await topics_query.hot_topics(
            session, window.scope, baseline_days=baseline_days, min_count=min_count, limit=limit
        )
    return {"period": _period(window), "baseline_days": baseline_days, "topics": rows}
