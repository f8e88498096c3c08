"""Analytics' outbox: alert and report events are queued with the change that causes them, published
after the commit, and swept up by the worker if a crash or an outage came in between."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from datetime import datetime, timedelta

from sqlalchemy import delete, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.analytics.models import OutboxEntry
from shared.bus.client import Bus, BusUnavailable
from shared.events import utcnow
from shared.events.domain import DomainChange, DomainEvent, DomainType, domain_subject
from shared.events.registry import encode_event
from shared.logging import get_logger

log = get_logger(__name__)
SOURCE = "analytics"


async def announce(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    event_type: DomainType,
    change: DomainChange,
    now: datetime,
    *,
    event_id: str,
) -> str:
    """Queue a domain event in the caller's transaction; its id makes a second publish a no-op."""
    event = DomainEvent(
        id=event_id,
        type=event_type,
        workspace=str(workspace_id),
        source=SOURCE,
        occurred_at=now,
        payload=change,
    )
    session.add(
        OutboxEntry(
            id=event.id,
            subject=domain_subject(workspace_id, event_type),
            payload=encode_event(event).decode(),
            created_at=now,
        )
    )
    return event.id


async def publish(
    sessions: async_sessionmaker[AsyncSession], bus: Bus, *, older_than: timedelta | None = None
) -> int:
    """Publish queued events (all, or those older than ``older_than``) and drop them; returns how many.
    Raises :class:`BusUnavailable` when the bus does not take them (they stay queued)."""
    async with sessions() as session:
        query = select(OutboxEntry).order_by(OutboxEntry.created_at, OutboxEntry.id).limit(500)
        if older_than is not None:
            query = query.where(OutboxEntry.created_at < utcnow() - older_than)
        entries = list((await session.execute(query)).scalars())
    if not entries:
        return 0
    await bus.publish_encoded([(e.subject, e.id, e.payload.encode()) for e in entries])
    async with sessions() as session, session.begin():
        await session.execute(delete(OutboxEntry).where(OutboxEntry.id.in_([e.id for e in entries])))
    return len(entries)


async def sweep(
    sessions: async_sessionmaker[AsyncSession], bus: Bus, stop: asyncio.Event, *, every: float = 2.0
) -> None:
    """Publish what was left queued (NATS away at the time, or a crash after the commit)."""
    while not stop.is_set():
        try:
            published = await publish(sessions, bus, older_than=timedelta(seconds=every))
            if published:
                log.info("analytics.outbox.swept", count=published)
        except BusUnavailable as exc:
            log.warning("analytics.outbox.bus_unavailable", error=str(exc))
        except Exception as exc:  # the database away: try again next round
            log.warning("analytics.outbox.sweep_failed", error=f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
