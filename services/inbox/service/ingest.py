"""Storing inbound events."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.inbox.ingest import IngestPlan, plan_batch
from services.inbox.repository import ingest as repo
from shared.events.registry import InboundFact

CHANNEL_TOUCH_SECONDS = 5.0
"""How stale a channel's ``last_event_at`` may get: it is written at most this often per worker."""


@dataclass
class IngestMemory:
    """What this worker has already committed, so a batch can skip statements that change nothing.

    Only ever filled after a commit (:meth:`remember`) and emptied on any failure (:meth:`forget`).
    It holds facts no other worker can make stale: a channel's workspace never changes, and a
    channel's ``last_event_at`` needs writing only every few seconds.
    """

    workspaces: dict[UUID, UUID] = field(default_factory=dict)
    touched: dict[UUID, float] = field(default_factory=dict)

    def prune(self, plan: IngestPlan) -> None:
        """Drop the channel touches of ``plan`` that this worker wrote moments ago."""
        now = time.monotonic()
        for channel_id in list(plan.channel_activity):
            if self.touched.get(channel_id, float("-inf")) > now - CHANNEL_TOUCH_SECONDS:
                del plan.channel_activity[channel_id]

    def remember(self, plan: IngestPlan, workspaces: dict[UUID, UUID]) -> None:
        """Record a committed plan."""
        self.workspaces.update(workspaces)
        now = time.monotonic()
        for channel_id in plan.channel_activity:
            self.touched[channel_id] = now

    def forget(self) -> None:
        """Start afresh (after a failed batch, nothing remembered is trusted)."""
        self.workspaces.clear()
        self.touched.clear()


@dataclass
class StoredBatch:
    """The outcome of :func:`store_events`: what was written and what was refused."""

    plan: IngestPlan
    workspaces: dict[UUID, UUID]
    refused: dict[int, str]


async def store_events(
    session: AsyncSession,
    events: Sequence[tuple[InboundFact, int]],
    now: datetime,
    memory: IngestMemory | None = None,
) -> StoredBatch:
    """Store a batch of ``(event, bus sequence)`` in the caller's transaction.

    Idempotent: storing the same events again, in any order, changes nothing. With ``memory``, rows
    the worker already committed are skipped; call ``memory.remember`` after the commit.
    """
    memory = memory or IngestMemory()
    wanted = {event.payload.channel_id for event, _ in events}
    workspaces = {c: memory.workspaces[c] for c in wanted if c in memory.workspaces}
    if len(workspaces) < len(wanted):
        workspaces.update(await repo.channel_workspaces(session, wanted - set(workspaces)))
    plan, rejected = plan_batch(events, workspaces, now)
    memory.prune(plan)
    await repo.store_plan(session, plan)
    return StoredBatch(plan, workspaces, {r.index: r.reason for r in rejected})
