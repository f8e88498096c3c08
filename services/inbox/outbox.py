"""Publishing the outbox: at once after a commit (the API), and a sweep for anything left behind (the
worker), so a command written with its state change always reaches the bus."""

from __future__ import annotations

import asyncio
import contextlib
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.inbox.repository import outbound as repo
from shared.bus.client import Bus, BusUnavailable
from shared.events import utcnow
from shared.logging import get_logger

log = get_logger(__name__)


async def publish_outbox(
    sessions: async_sessionmaker[AsyncSession],
    read_sessions: async_sessionmaker[AsyncSession],
    bus: Bus,
    *,
    ids: list[str] | None = None,
    older_than: timedelta | None = None,
) -> int:
    """Publish unpublished entries (these ids, or those older than ``older_than``); returns how many.

    Raises BusUnavailable if the bus does not take them; they stay queued for the next attempt. An
    entry published twice (by two processes) is dropped by JetStream: its id is the event's. The
    look-up takes no transaction (nor, on SQLite, the write lock), so an idle sweep costs the store
    one indexed read.
    """
    async with read_sessions() as session:
        entries = await repo.unpublished(
            session, ids=ids, before=utcnow() - older_than if older_than is not None else None
        )
    if not entries:
        return 0
    await bus.publish_encoded([(e.subject, e.id, e.payload.encode()) for e in entries])
    async with sessions() as session, session.begin():
        await repo.mark_published(session, [e.id for e in entries], utcnow())
    return len(entries)


async def sweep(
    sessions: async_sessionmaker[AsyncSession],
    read_sessions: async_sessionmaker[AsyncSession],
    bus: Bus,
    stop: asyncio.Event,
    *,
    every: float = 1.0,
    grace: float = 2.0,
) -> None:
    """Publish what the API could not (NATS away at the time, or a crash after its commit)."""
    while not stop.is_set():
        try:
            published = await publish_outbox(
                sessions, read_sessions, bus, older_than=timedelta(seconds=grace)
            )
            if published:
                log.info("inbox.outbox.swept", count=published)
        except BusUnavailable as exc:
            log.warning("inbox.outbox.bus_unavailable", error=str(exc))
        except Exception as exc:  # the database away: try again next round
            log.warning("inbox.outbox.sweep_failed", error=f"{type(exc).__name__}: {exc}")
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(stop.wait(), every)
