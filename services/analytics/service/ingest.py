"""Storing a batch of domain events: facts first, then everything derived from what they touched."""

from __future__ import annotations

import uuid
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.analytics import topics
from services.analytics.buckets import bucket_of, hour_of
from services.analytics.facts import (
    COPY,
    Fact,
    LabelsChanged,
    MessageSeen,
    SentimentCorrected,
    StatusChanged,
)
from services.analytics.hours import Schedule, ScheduleError, business_seconds, parse_schedule
from services.analytics.models import MessageFact, WorkspaceSettings
from services.analytics.repository import facts as repo
from services.analytics.repository import rollups
from shared.logging import get_logger

log = get_logger(__name__)


@dataclass
class Touched:
    """What a batch changed: the crisis buckets the detector should look at again."""

    buckets: set[tuple[uuid.UUID, uuid.UUID, datetime]] = field(default_factory=set)


async def store_facts(session: AsyncSession, facts: Sequence[Fact], *, bucket_seconds: int) -> Touched:
    """Store a batch's facts and bring the rollups they touch up to date, in the caller's transaction.

    Idempotent and order-independent: storing the same facts again, or in another order, in one
    batch or many, leaves the same tables.
    """
    messages = [f for f in facts if isinstance(f, MessageSeen)]
    statuses = [f for f in facts if isinstance(f, StatusChanged)]
    labels = [f for f in facts if isinstance(f, LabelsChanged)]
    corrections = [f for f in facts if isinstance(f, SentimentCorrected)]
    touched = Touched()

    # A platform's copy of a Piazza reply counts once, as the reply, whichever arrives first.
    await rollups.lock_channels(
        session,
        {
            (m.workspace_id, m.channel_id)
            for m in messages
            if m.channel_id and (m.platform_ids or m.external_id)
        },
        lock="copies",
    )
    await repo.record_sent_ids(session, messages)
    copies = await repo.copies_among(session, messages)
    messages = [replace(m, direction=COPY) if m.id in copies else m for m in messages]
    new_ids = await repo.insert_messages(session, messages)
    copied = await repo.mark_copies(session, messages)
    await repo.insert_keyed(session, statuses, labels, corrections)
    # A correction may have arrived before its message: apply both ways.
    corrected = {c.message_id for c in corrections} | await repo.corrected_ids(session, new_ids)
    if corrected:
        await repo.apply_corrections(session, corrected)
    recounted = corrected | copied  # stored before, changed now
    conversations = {m.conversation_id: m.workspace_id for m in messages if m.id in new_ids}
    conversations.update({s.conversation_id: s.workspace_id for s in statuses})
    conversations.update({c.conversation_id: c.workspace_id for c in labels})
    # What the rollups need of the changed messages: the new ones as they were just written (no
    # need to read them back), the older ones corrected or found to be copies from the store.
    written = {m.id: _stored(m) for m in messages if m.id in new_ids}
    changed = [*written.values(), *await repo.messages_by_id(session, recounted - new_ids)]
    conversations.update({m.conversation_id: m.workspace_id for m in changed})
    settings = await repo.workspace_settings(session, conversations.values())

    labels_before = await repo.current_labels(session, conversations)
    labels_after = await _finish_conversations(session, conversations, settings)
    await repo.replace_labels(session, conversations, labels_before, labels_after)
    # Replies whose event named no channel take their conversation's, once a message tells it.
    filled = await repo.fill_channels(session, conversations)
    if filled:
        changed = list(await repo.messages_by_id(session, new_ids | recounted))

    fresh = [m for m in changed if m.id in new_ids]
    await repo.record_authors(session, fresh)
    await repo.add_terms(session, _terms(fresh))
    hours = {(m.workspace_id, m.channel_id, m.hour) for m in changed if m.channel_id is not None}
    hours |= {(w, c, h) for w, c, h, _ in filled}
    label_hours = await _label_hours(session, conversations, labels_before, labels_after, changed, filled)
    touched.buckets = {
        (m.workspace_id, m.channel_id, bucket_of(m.occurred_at, bucket_seconds))
        for m in changed
        if m.channel_id is not None and m.direction == "inbound"
    }
    await rollups.lock_channels(
        session,
        {(w, c) for w, c, _ in hours}
        | {(w, c) for w, _, c, _ in label_hours}
        | {(w, c) for w, c, _ in touched.buckets},
    )
    await rollups.recompute_hours(session, hours)
    await rollups.recompute_label_hours(session, label_hours)
    keywords = {w: [str(k) for k in s.watched_keywords] for w, s in settings.items() if s.watched_keywords}
    await rollups.recompute_buckets(session, touched.buckets, bucket_seconds, keywords)
    return touched


def _stored(m: MessageSeen) -> MessageFact:
    """A new message as its row reads (not added to the session: it is only read from)."""
    return MessageFact(
        id=m.id,
        workspace_id=m.workspace_id,
        channel_id=m.channel_id,
        conversation_id=m.conversation_id,
        direction=m.direction,
        author_key=m.author_key,
        occurred_at=m.occurred_at,
        hour=hour_of(m.occurred_at),
        sentiment=m.sentiment,
        sentiment_score=m.sentiment_score,
        language=m.language,
        text=m.text,
        external_id=m.external_id,
    )


def _terms(messages: Sequence[MessageFact]) -> Counter[tuple[uuid.UUID, uuid.UUID, datetime, str]]:
    counts: Counter[tuple[uuid.UUID, uuid.UUID, datetime, str]] = Counter()
    for m in messages:
        if m.direction != "inbound" or not m.text or m.channel_id is None:
            continue
        for term in topics.message_terms(m.text, m.language):
            counts[(m.workspace_id, m.channel_id, m.hour, term)] += 1
    return counts


def schedule_of(settings: WorkspaceSettings | None) -> Schedule:
    """A workspace's working hours (always open when it has none, or they no longer parse)."""
    if settings is None:
        return parse_schedule("UTC", None)
    try:
        return parse_schedule(settings.timezone, settings.working_hours)
    except ScheduleError as exc:  # validated when saved; a zone database change could still break it
        log.warning("analytics.schedule.invalid", workspace_id=str(settings.workspace_id), error=str(exc))
        return parse_schedule("UTC", None)


async def _label_hours(
    session: AsyncSession,
    conversations: dict[uuid.UUID, uuid.UUID],
    before: dict[uuid.UUID, set[str]],
    after: dict[uuid.UUID, set[str]],
    changed: Sequence[MessageFact],
    filled: set[tuple[uuid.UUID, uuid.UUID, datetime, uuid.UUID]],
) -> set[rollups.LabelHourKey]:
    """The label rollup rows a batch changes: every hour of a conversation for the labels it gained
    or lost, and the hours of the messages that changed (new, corrected, given a channel) for the
    labels their conversation carries."""
    keys: set[rollups.LabelHourKey] = set()
    relabelled = {c: before.get(c, set()) ^ after.get(c, set()) for c in conversations}
    relabelled = {c: labels for c, labels in relabelled.items() if labels}
    for conversation, channel, hour in await repo.message_hours(session, relabelled):
        keys.update((conversations[conversation], label, channel, hour) for label in relabelled[conversation])
    touched = {(m.workspace_id, m.conversation_id, m.channel_id, m.hour) for m in changed if m.channel_id}
    touched |= {(w, conversation, c, h) for w, c, h, conversation in filled}
    for workspace_id, conversation, channel, hour in touched:
        keys.update((workspace_id, label, channel, hour) for label in after.get(conversation, ()))
    return keys


async def _finish_conversations(
    session: AsyncSession,
    conversations: dict[uuid.UUID, uuid.UUID],
    settings: dict[uuid.UUID, WorkspaceSettings],
) -> dict[uuid.UUID, set[str]]:
    """Recompute the conversations' grain; returns the labels each carries now."""
    if not conversations:
        return {}
    states = await rollups.recompute_conversations(session, conversations)
    schedules: dict[uuid.UUID, Schedule] = {}
    rows = []
    for state in states:
        schedule = schedules.get(state.workspace_id)
        if schedule is None:
            schedule = schedules[state.workspace_id] = schedule_of(settings.get(state.workspace_id))
        rows.append(conversation_row(state, schedule))
    await rollups.finish_conversations(session, rows)
    return {state.id: {str(label) for label in state.labels} for state in states}


def conversation_row(state: rollups.ConversationState, schedule: Schedule) -> dict[str, object]:
    """The derived columns of a conversation: its durations, clock and business time."""
    responded = state.first_response_at if state.opened_at else None
    resolved = state.resolved_at if state.opened_at else None
    return {
        "id": state.id,
        "channel_id": state.channel_id,
        "first_response_at": responded,
        "first_responder_key": state.first_responder_key if responded else None,
        "first_response_seconds": _seconds(state.opened_at, responded),
        "business_first_response_seconds": (
            business_seconds(state.opened_at, responded, schedule) if state.opened_at and responded else None
        ),
        "resolved_at": resolved,
        "resolution_seconds": _seconds(state.opened_at, resolved),
        "reopen_count": state.reopen_count,
        "status": state.status,
        "first_sentiment": state.first_sentiment,
        "last_sentiment": state.last_sentiment,
        "labels": state.labels,
    }


def _seconds(start: datetime | None, end: datetime | None) -> float | None:
    return (end - start).total_seconds() if start and end else None
