"""Crisis alerts: each channel's signals (volume, negative share, watched keywords) assessed bucket by
bucket against a robust baseline; an anomaly opens an incident, a new peak updates it, calm closes it.

Assessment runs right after a batch touched the current bucket (streaming) and on a clock (so calm is
noticed even when nothing arrives). Each transition is written with its domain event in one
transaction (``alert.opened``, ``alert.updated``, ``alert.closed``): the live stream and outgoing
webhooks carry it. Event ids derive from the incident and the transition, so a replica doing the same
work publishes nothing twice; a partial unique index keeps one open incident per signal.
"""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from collections.abc import Iterable
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.analytics import crisis, outbox
from services.analytics.buckets import bucket_of
from services.analytics.config import AnalyticsSettings
from services.analytics.models import Bucket, Incident, WorkspaceSettings
from shared.bus.client import Bus, BusUnavailable
from shared.events import utcnow
from shared.events.domain import DomainChange, DomainType
from shared.logging import get_logger

log = get_logger(__name__)

Channel = tuple[uuid.UUID, uuid.UUID]


def rules_of(settings: AnalyticsSettings) -> crisis.Rules:
    """The detector's rules from the installation's settings."""
    return crisis.Rules(
        bucket_seconds=settings.bucket_seconds,
        baseline_buckets=settings.baseline_buckets,
        min_count=settings.alert_min_count,
        calm_buckets=settings.calm_buckets,
    )


def is_recent(start: datetime, settings: AnalyticsSettings, now: datetime) -> bool:
    """Whether a bucket is the current one or the one before (older data is history, never an alarm:
    a replay or a late backfill does not raise alerts about the past)."""
    return start >= bucket_of(now, settings.bucket_seconds) - timedelta(seconds=settings.bucket_seconds)


def alert_view(incident: Incident) -> dict[str, Any]:
    """An incident as the API and events show it."""
    return {
        "id": str(incident.id),
        "kind": incident.kind,
        "channel_id": str(incident.channel_id),
        "key": incident.key or None,
        "status": incident.status,
        "started_at": incident.started_at.isoformat(),
        "peak_at": incident.peak_at.isoformat(),
        "peak_value": incident.peak_value,
        "baseline": incident.baseline,
        "threshold": incident.threshold,
        "ended_at": incident.ended_at.isoformat() if incident.ended_at else None,
    }


async def detect(
    sessions: async_sessionmaker[AsyncSession],
    bus: Bus | None,
    settings: AnalyticsSettings,
    channels: Iterable[Channel],
    now: datetime,
) -> list[str]:
    """Assess these channels now; returns the ids of the alert events queued (and published)."""
    queued: list[str] = []
    for channel in sorted(set(channels), key=str):
        try:
            async with sessions() as session, session.begin():
                queued += await assess_channel(session, rules_of(settings), channel, now)
        except IntegrityError:  # another replica opened the same incident first: it announces it
            log.info("analytics.alert.raced", channel_id=str(channel[1]))
    if queued and bus is not None:
        with contextlib.suppress(BusUnavailable):  # queued: the sweep publishes them
            await outbox.publish(sessions, bus)
    return queued


async def assess_channel(
    session: AsyncSession, rules: crisis.Rules, channel: Channel, now: datetime
) -> list[str]:
    """Step every signal of one channel up to the current bucket, in the caller's transaction."""
    workspace_id, channel_id = channel
    seconds = rules.bucket_seconds
    current = bucket_of(now, seconds)
    open_incidents = {
        (i.kind, i.key): i
        for i in (
            await session.execute(
                select(Incident).where(
                    Incident.workspace_id == workspace_id,
                    Incident.channel_id == channel_id,
                    Incident.status == "open",
                )
            )
        ).scalars()
    }
    oldest_step = min((i.last_bucket_at or i.started_at for i in open_incidents.values()), default=current)
    oldest_step = max(oldest_step, current - timedelta(seconds=seconds * rules.baseline_buckets))
    first = oldest_step - timedelta(seconds=seconds * rules.baseline_buckets)
    rows = {
        b.start: b
        for b in (
            await session.execute(
                select(Bucket).where(
                    Bucket.workspace_id == workspace_id,
                    Bucket.channel_id == channel_id,
                    Bucket.start >= first,
                    Bucket.start <= current,
                )
            )
        ).scalars()
    }
    # The baseline starts where the channel's traffic does: the hours before its first message are
    # no evidence of a quiet channel (with them, any new channel's first busy minutes would alarm).
    born = (
        await session.execute(
            select(func.min(Bucket.start)).where(
                Bucket.workspace_id == workspace_id, Bucket.channel_id == channel_id
            )
        )
    ).scalar_one_or_none()
    if born is not None and born > first:
        first = min(born, current)
    starts = [
        first + timedelta(seconds=seconds * n)
        for n in range(int((current - first) / timedelta(seconds=seconds)) + 1)
    ]
    inbound = [float(rows[s].inbound) if s in rows else 0.0 for s in starts]
    negative = [float(rows[s].negative) if s in rows else 0.0 for s in starts]
    watched = await _watched(session, workspace_id)
    signals: set[tuple[str, str]] = {("volume", ""), ("negative_share", "")}
    signals |= {("keyword", k) for k in watched} | set(open_incidents)
    queued: list[str] = []
    for kind, key in sorted(signals):
        if kind == "keyword":
            values = [float(rows[s].keywords.get(key, 0)) if s in rows else 0.0 for s in starts]
        else:
            values = inbound
        incident = open_incidents.get((kind, key))
        since = (incident.last_bucket_at or incident.started_at) if incident else current
        for index, start in enumerate(starts):
            if start < since:
                continue
            lo = max(0, index - rules.baseline_buckets)
            if kind == "negative_share":
                totals = inbound[lo:index]
                shares = [n / t if t else 0.0 for n, t in zip(negative[lo:index], totals, strict=True)]
                assessment = crisis.assess(
                    "negative_share",
                    negative[index],
                    shares,
                    rules,
                    total=inbound[index],
                    history_totals=totals,
                )
            else:
                assessment = crisis.assess(kind, values[index], values[lo:index], rules, key=key)  # type: ignore[arg-type]
            if start == current and not assessment.anomalous:
                continue  # the bucket is still filling: it is not quiet yet
            incident, event = await _step(session, channel, incident, assessment, start, rules, now)
            if event:
                queued.append(event)
    return queued


async def _watched(session: AsyncSession, workspace_id: uuid.UUID) -> list[str]:
    settings = await session.get(WorkspaceSettings, workspace_id)
    return [str(k) for k in settings.watched_keywords] if settings else []


async def _step(
    session: AsyncSession,
    channel: Channel,
    row: Incident | None,
    assessment: crisis.Assessment,
    start: datetime,
    rules: crisis.Rules,
    now: datetime,
) -> tuple[Incident | None, str | None]:
    state = _state(row) if row is not None else None
    state, transition = crisis.step(state, assessment, start, rules)
    if state is None:
        return row, None
    if row is None:
        row = Incident(
            id=uuid.uuid4(),
            workspace_id=channel[0],
            channel_id=channel[1],
            kind=assessment.kind,
            key=assessment.key,
            status="open",
            baseline=assessment.baseline,
            threshold=assessment.threshold,
            updated_at=now,
        )
        _copy(state, row)
        async with session.begin_nested():
            session.add(row)
    else:
        _copy(state, row)
        row.updated_at = now
        if transition == "updated":
            row.baseline, row.threshold = assessment.baseline, assessment.threshold
    event_type: DomainType | None = None
    event_id = f"alert-{row.id.hex}-{transition}"
    if transition == "opened":
        event_type = "alert.opened"
    elif transition == "updated":
        event_type = "alert.updated"
        event_id += f"-{row.peak_at.isoformat()}-{row.peak_value:g}"
    elif transition == "closed":
        event_type = "alert.closed"
        row.status = "closed"
    await session.flush()
    if event_type is None:
        return row, None
    log.info(
        "analytics.alert.changed", transition=transition, incident_id=str(row.id), kind=row.kind, key=row.key
    )
    change = DomainChange(data=alert_view(row))
    queued = await outbox.announce(session, channel[0], event_type, change, now, event_id=event_id)
    return (None if row.status == "closed" else row), queued


def _state(row: Incident) -> crisis.Incident:
    return crisis.Incident(
        kind=row.kind,  # type: ignore[arg-type]
        key=row.key,
        started_at=row.started_at,
        peak_at=row.peak_at,
        peak_value=row.peak_value,
        last_anomalous_at=row.last_anomalous_at,
        quiet_buckets=row.quiet_buckets,
        ended_at=row.ended_at,
        quiet_since=row.quiet_since,
        last_bucket_at=row.last_bucket_at,
    )


def _copy(state: crisis.Incident, row: Incident) -> None:
    row.started_at = state.started_at
    row.peak_at = state.peak_at
    row.peak_value = state.peak_value
    row.last_anomalous_at = state.last_anomalous_at
    row.quiet_buckets = state.quiet_buckets
    row.quiet_since = state.quiet_since
    row.last_bucket_at = state.last_bucket_at
    row.ended_at = state.ended_at


async def active_channels(session: AsyncSession, settings: AnalyticsSettings, now: datetime) -> set[Channel]:
    """Channels with messages in the current or previous bucket, or an open incident."""
    since = bucket_of(now, settings.bucket_seconds) - timedelta(seconds=settings.bucket_seconds)
    recent = await session.execute(
        select(Bucket.workspace_id, Bucket.channel_id).where(Bucket.start >= since).distinct()
    )
    ongoing = await session.execute(
        select(Incident.workspace_id, Incident.channel_id).where(Incident.status == "open").distinct()
    )
    return {(w, c) for w, c in recent.all()} | {(w, c) for w, c in ongoing.all()}


async def watch(
    sessions: async_sessionmaker[AsyncSession], bus: Bus, settings: AnalyticsSettings, stop: asyncio.Event
) -> None:
    """Assess active channels on a clock, so incidents close when things calm down."""
    while not stop.is_set():
        try:
            now = utcnow()
            async with sessions() as session:
                channels = await active_channels(session, settings, now)
            if channels:
                await detect(sessions, bus, settings, channels, now)
        except Exception as exc:  # the database away: try again next round
            log.warning("analytics.watch.failed", error=f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), settings.detect_every_seconds)
