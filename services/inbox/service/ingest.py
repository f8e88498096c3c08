"""Storing inbound events."""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy.ext.asyncio import AsyncSession

from services.inbox.ingest import IngestPlan, plan_batch
from services.inbox.repository import ingest as repo
from services.inbox.service import events as announcements
from shared.events.domain import DomainChange, DomainEvent, domain_subject
from shared.events.registry import InboundFact, encode_event
from shared.logging import get_logger
from shared.sentiment import SentimentAnalyzer

log = get_logger(__name__)

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
    """The outcome of :func:`store_events`: what was written and what was refused.

    ``outbox_ids`` are the domain events queued with the change (conversations reopened);
    :meth:`received_events` are the ``conversation.message_received`` events to publish after the
    commit (their ids derive from the message, so publishing them again after a redelivery is dropped
    by JetStream).
    """

    plan: IngestPlan
    workspaces: dict[UUID, UUID]
    refused: dict[int, str]
    outbox_ids: list[str] = field(default_factory=list)

    def received_events(self) -> list[tuple[str, str, bytes]]:
        """``(subject, event id, bytes)`` of a ``conversation.message_received`` per created message."""
        return [_received_event(row) for row in self.plan.received]


def _received_event(row: dict[str, Any]) -> tuple[str, str, bytes]:
    event = DomainEvent(
        id=f"{row['id'].hex}-received",
        type="conversation.message_received",
        workspace=str(row["workspace_id"]),
        source=announcements.SOURCE,
        occurred_at=row["created_at"],
        payload=DomainChange(
            conversation_id=row["conversation_id"],
            message_id=row["id"],
            data={
                "id": str(row["id"]),
                "conversation_id": str(row["conversation_id"]),
                "channel_id": str(row["channel_id"]),
                "external_id": row["external_id"],
                "direction": row["direction"],
                "author_identity_id": str(row["author_identity_id"]) if row["author_identity_id"] else None,
                "text": row["text"],
                "attachments": row["attachments"],
                "sent_at": row["sent_at"].isoformat() if row["sent_at"] else None,
                "sentiment": {
                    "label": row["sentiment"],
                    "score": row["sentiment_score"],
                    "language": row["language"],
                }
                if row["sentiment"] is not None
                else None,
            },
        ),
    )
    return domain_subject(row["workspace_id"], event.type), event.id, encode_event(event)


async def store_events(
    session: AsyncSession,
    events: Sequence[tuple[InboundFact, int]],
    now: datetime,
    memory: IngestMemory | None = None,
    analyzer: SentimentAnalyzer | None = None,
) -> StoredBatch:
    """Store a batch of ``(event, bus sequence)`` in the caller's transaction.

    Idempotent: storing the same events again, in any order, changes nothing. With ``memory``, rows
    the worker already committed are skipped; call ``memory.remember`` after the commit. With an
    ``analyzer``, inbound texts are scored for sentiment (a text it fails on is stored unscored).
    """
    memory = memory or IngestMemory()
    wanted = {event.payload.channel_id for event, _ in events}
    workspaces = {c: memory.workspaces[c] for c in wanted if c in memory.workspaces}
    if len(workspaces) < len(wanted):
        workspaces.update(await repo.channel_workspaces(session, wanted - set(workspaces)))
    plan, rejected = plan_batch(events, workspaces, now, analyzer)
    if plan.unscored:
        # One line per batch: a broken analyzer fails on every message.
        log.warning(
            "inbox.sentiment.failed",
            count=len(plan.unscored),
            message_ids=[str(message_id) for message_id, _ in plan.unscored[:10]],
            error=plan.unscored[0][1][:300],
        )
    memory.prune(plan)
    dormant = await repo.store_plan(session, plan)
    outbox_ids = []
    for conversation_id, version in (await repo.reopened(session, dormant, now)).items():
        before = dormant[conversation_id]
        outbox_ids.append(
            await announcements.announce(
                session,
                before["workspace_id"],
                "conversation.updated",
                DomainChange(
                    conversation_id=conversation_id,
                    changes={
                        "status": {"before": before["status"], "after": "open"},
                        "version": {"before": before["version"], "after": version},
                    },
                    data={"reason": "inbound_message", "channel_id": str(before["channel_id"])},
                ),
                now,
            )
        )
    return StoredBatch(plan, workspaces, {r.index: r.reason for r in rejected}, outbox_ids)
