"""``piazza analytics rebuild``: forget every fact and rollup, then replay the domain event stream.

Safe while the analytics worker runs: both store facts idempotently, so an event the worker stores
during the rebuild is simply stored once. Incidents, settings and report runs are kept: they record
what happened and what was configured, not figures derived from events. The stream keeps domain
events for 400 days (``shared.bus.topology.DOMAIN``); older ones cannot be replayed.
"""

from __future__ import annotations

from collections.abc import Callable

from nats.errors import TimeoutError as NatsTimeoutError
from nats.js.api import AckPolicy, ConsumerConfig, DeliverPolicy
from nats.js.errors import FetchTimeoutError
from sqlalchemy import delete
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.analytics.config import AnalyticsSettings
from services.analytics.facts import Fact, facts_of
from services.analytics.models import (
    Author,
    AuthorHour,
    Bucket,
    ConversationFact,
    ConversationLabel,
    CorrectionFact,
    HourlyRollup,
    LabelAuthorHour,
    LabelFact,
    LabelHourlyRollup,
    MessageFact,
    SentId,
    StatusFact,
    TermCount,
)
from services.analytics.service.ingest import store_facts
from shared.bus.client import Bus
from shared.bus.topology import DOMAIN
from shared.events import EventDecodeError, decode_event
from shared.events.domain import DomainEvent
from shared.logging import get_logger

log = get_logger(__name__)

DERIVED = (
    MessageFact,
    SentId,
    StatusFact,
    LabelFact,
    CorrectionFact,
    ConversationFact,
    ConversationLabel,
    HourlyRollup,
    LabelHourlyRollup,
    AuthorHour,
    LabelAuthorHour,
    Author,
    TermCount,
    Bucket,
)
"""Every table a replay fills again."""

Progress = Callable[[int, int], None]
"""Told ``(events read, events to read)`` after each batch."""


async def forget(sessions: async_sessionmaker[AsyncSession]) -> None:
    """Empty every table the replay fills."""
    async with sessions() as session, session.begin():
        for table in DERIVED:
            await session.execute(delete(table))


async def rebuild(
    settings: AnalyticsSettings,
    sessions: async_sessionmaker[AsyncSession],
    bus: Bus,
    *,
    progress: Progress | None = None,
    batch_size: int = 1000,
) -> int:
    """Replay the whole domain stream into empty tables; returns the events read."""
    stream = bus.names.stream(DOMAIN.name)
    # Forget first: an event the worker stores after this is in the stream up to ``last`` (replayed)
    # or after it (stored by the worker itself), so nothing falls in between.
    await forget(sessions)
    info = await bus.js.stream_info(stream)
    first, last = info.state.first_seq, info.state.last_seq
    total = max(last - first + 1, 0) if info.state.messages else 0
    if progress:
        progress(0, total)
    if not total:
        return 0
    subscription = await bus.js.pull_subscribe(
        bus.names.subject("domain.>"),
        stream=stream,
        config=ConsumerConfig(
            deliver_policy=DeliverPolicy.ALL,
            ack_policy=AckPolicy.ALL,
            inactive_threshold=60.0,
            mem_storage=True,
            num_replicas=1,
        ),
    )
    read = 0
    try:
        while True:
            try:
                msgs = await subscription.fetch(batch_size, timeout=2.0)
            except (FetchTimeoutError, NatsTimeoutError):
                break
            facts: list[Fact] = []
            position = first
            for msg in msgs:
                position = msg.metadata.sequence.stream
                try:
                    event = decode_event(msg.data)
                except EventDecodeError as exc:
                    log.warning("analytics.rebuild.undecodable", sequence=position, error=str(exc))
                    continue
                if isinstance(event, DomainEvent):
                    facts.extend(facts_of(event))
            async with sessions() as session, session.begin():
                await store_facts(session, facts, bucket_seconds=settings.bucket_seconds)
            await msgs[-1].ack()
            read = position - first + 1
            if progress:
                progress(min(read, total), total)
            if position >= last:
                break
    finally:
        await subscription.unsubscribe()
    log.info("analytics.rebuilt", events=read)
    return read
