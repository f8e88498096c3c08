"""Turning a batch of inbound events into the rows that store it.

Pure functions: no IO. The repository writes the plan with upserts whose conflict rules make the
result independent of delivery order and of redelivery (see ``repository/ingest.py``). Within a
batch, rows that share a key are folded here first with the same rules (contacts, identities,
conversations), or split into rounds (messages), because one ``INSERT ... ON CONFLICT`` may not
touch a row twice.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any
from uuid import UUID

import orjson

from services.inbox import ids
from shared.events import (
    Attachment,
    AuthorRef,
    MessageDeleted,
    MessageEdited,
    MessageReceived,
    ReactionChange,
    ReactionChanged,
    ThreadChanged,
)
from shared.events.registry import InboundFact
from shared.sentiment import SENTIMENT_LABELS, Sentiment, SentimentAnalyzer

Row = dict[str, Any]
MessageEvent = MessageReceived | MessageEdited | MessageDeleted

LANGUAGE_LENGTH = 16
"""The longest language tag a message keeps (``messages.language``)."""


@dataclass
class IngestPlan:
    """Every row a batch writes, grouped by statement."""

    contacts: dict[UUID, Row] = field(default_factory=dict)
    identities: dict[UUID, Row] = field(default_factory=dict)
    conversations: dict[UUID, Row] = field(default_factory=dict)
    message_rounds: list[list[Row]] = field(default_factory=list)
    revisions: list[Row] = field(default_factory=list)
    reactions: dict[tuple[UUID, str], Row] = field(default_factory=dict)
    thread_events: dict[UUID, Row] = field(default_factory=dict)
    channel_activity: dict[UUID, datetime] = field(default_factory=dict)
    received: list[Row] = field(default_factory=list)
    """The rows of created messages (``message.received`` events), to announce once stored."""
    message_conversations: set[UUID] = field(default_factory=set)
    """Conversations whose messages the plan writes: their sentiment and preview may change."""
    unscored: list[tuple[UUID, str]] = field(default_factory=list)
    """``(message id, why)`` of texts the analyzer failed on: they are stored without a sentiment."""

    @property
    def message_count(self) -> int:
        """How many message rows the plan writes."""
        return sum(len(r) for r in self.message_rounds)


@dataclass(frozen=True)
class Rejected:
    """An event the store refuses, with the reason (it is dead-lettered, the batch goes on)."""

    index: int
    reason: str


def plan_batch(
    events: Sequence[tuple[InboundFact, int]],
    channel_workspaces: Mapping[UUID, UUID],
    now: datetime,
    analyzer: SentimentAnalyzer | None = None,
) -> tuple[IngestPlan, list[Rejected]]:
    """Plan the rows for ``(event, bus sequence)`` pairs in delivery order.

    ``channel_workspaces`` maps each known channel to its workspace; the workspace always comes from
    there, never from the event, so a confused producer cannot write into another tenant. With an
    ``analyzer``, the text of each inbound message and of each edit is scored (an edit's direction is
    not known here: the upsert drops the score of a message that turns out not to be inbound).
    """
    plan = IngestPlan()
    rejected: list[Rejected] = []
    rounds_by_message: dict[UUID, int] = {}
    for index, (event, sequence) in enumerate(events):
        ref = event.payload
        workspace_id = channel_workspaces.get(ref.channel_id)
        if workspace_id is None:
            rejected.append(Rejected(index, f"unknown channel {ref.channel_id}"))
            continue
        plan.channel_activity[ref.channel_id] = now
        if isinstance(event, ReactionChanged):
            _add_reaction(plan, event, workspace_id, sequence, now)
            continue
        if isinstance(event, ThreadChanged):
            _add_thread_change(plan, event, workspace_id, sequence, now)
            continue
        message_ref = event.payload
        conversation_id = ids.conversation_id(message_ref.channel_id, message_ref.thread.external_id)
        message_id = ids.message_id(message_ref.channel_id, message_ref.external_id)
        message = _message_row(event, workspace_id, conversation_id, message_id, sequence, now)
        if analyzer is not None and message["direction"] == "inbound" and message["text"]:
            _score(plan, analyzer, message)
        plan.message_conversations.add(conversation_id)
        author = getattr(message_ref, "author", None)
        if author is not None:
            message["author_identity_id"] = _add_author(
                plan, workspace_id, author, message["occurred_at"], now
            )
        _add_conversation(plan, event, workspace_id, conversation_id, message["occurred_at"], sequence, now)
        if isinstance(event, MessageEdited):
            plan.revisions.append(_revision_row(event, message_id, now))
        round_index = rounds_by_message.get(message_id, 0)
        rounds_by_message[message_id] = round_index + 1
        if round_index == len(plan.message_rounds):
            plan.message_rounds.append([])
        plan.message_rounds[round_index].append(message)
        if isinstance(event, MessageReceived):
            plan.received.append(message)
    return plan, rejected


def _score(plan: IngestPlan, analyzer: SentimentAnalyzer, message: Row) -> None:
    """Put the analyzer's reading of the message's text on its row; a failure or a reading out of the
    contract leaves the row unscored (the message is stored all the same) and is noted in the plan."""
    try:
        found = analyzer.analyze(message["text"])
        checked = _checked(found)
    except Exception as exc:  # any analyzer bug: never lose the message over it
        plan.unscored.append((message["id"], f"{type(exc).__name__}: {exc}"))
        return
    message["sentiment"], message["sentiment_score"], message["language"] = checked


def _checked(found: Sentiment) -> tuple[str, float, str | None]:
    label, score, language = found.label, float(found.score), found.language
    if label not in SENTIMENT_LABELS:
        raise ValueError(f"label {label!r} is not one of {', '.join(SENTIMENT_LABELS)}")
    if not math.isfinite(score):
        raise ValueError(f"score {score!r} is not a number")
    if language is not None and not (isinstance(language, str) and 0 < len(language) <= LANGUAGE_LENGTH):
        language = None  # the label and score stand; a language the store cannot keep is left out
    return label, min(1.0, max(-1.0, score)), language


def _add_reaction(
    plan: IngestPlan, event: ReactionChanged, workspace_id: UUID, sequence: int, now: datetime
) -> None:
    change = event.payload
    actor_id = _add_author(plan, workspace_id, change.actor, change.reacted_at, now) if change.actor else None
    message_id = ids.message_id(change.channel_id, change.message_external_id)
    key = (message_id, str(actor_id) if actor_id else "anonymous")
    current = plan.reactions.get(key)
    if current is not None and (current["reacted_at"], current["received_seq"]) > (
        change.reacted_at,
        sequence,
    ):
        return
    plan.reactions[key] = {
        "workspace_id": workspace_id,
        "channel_id": change.channel_id,
        "message_id": message_id,
        "actor_key": key[1],
        "actor_identity_id": actor_id,
        "reactions": list(change.reactions),
        "reacted_at": change.reacted_at,
        "received_seq": sequence,
        "updated_at": now,
    }


def _add_thread_change(
    plan: IngestPlan, event: ThreadChanged, workspace_id: UUID, sequence: int, now: datetime
) -> None:
    change = event.payload
    conversation_id = ids.conversation_id(change.channel_id, change.thread.external_id)
    _add_conversation(plan, event, workspace_id, conversation_id, change.occurred_at, sequence, now)
    member = (
        _add_author(plan, workspace_id, change.member, change.occurred_at, now) if change.member else None
    )
    actor = _add_author(plan, workspace_id, change.actor, change.occurred_at, now) if change.actor else None
    event_id = ids.thread_event_id(change.channel_id, change.external_id)
    plan.thread_events[event_id] = {
        "id": event_id,
        "workspace_id": workspace_id,
        "channel_id": change.channel_id,
        "conversation_id": conversation_id,
        "external_id": change.external_id,
        "kind": change.change,
        "member_identity_id": member,
        "actor_identity_id": actor,
        "title": change.title,
        "occurred_at": change.occurred_at,
        "created_at": now,
    }


def _attachments(items: Sequence[Attachment]) -> list[dict[str, Any]]:
    return [a.model_dump(mode="json", exclude_none=True) for a in items]


def _newest(row: Row, name: str, value: str | None, at: datetime, sequence: int | None = None) -> None:
    """Keep the value of the newest event that gave one, as the upsert does. Ties on time go to the
    later bus sequence where the row keeps one (``<name>_seq``), else to the greater value."""
    if value is None:
        return
    current_at = row[f"{name}_at"]
    if sequence is None:
        newer = current_at is None or (at, value) > (current_at, row[name])
    else:
        newer = current_at is None or (at, sequence) > (current_at, row[f"{name}_seq"])
    if newer:
        row[name], row[f"{name}_at"] = value, at
        if sequence is not None:
            row[f"{name}_seq"] = sequence


def _add_author(plan: IngestPlan, workspace_id: UUID, author: AuthorRef, at: datetime, now: datetime) -> UUID:
    identity_id = ids.identity_id(workspace_id, author.namespace, author.external_id)
    contact_id = ids.first_contact_id(identity_id)
    contact = plan.contacts.setdefault(
        contact_id,
        {"id": contact_id, "workspace_id": workspace_id, "name": None, "created_at": now, "updated_at": now},
    )
    contact["name"] = contact["name"] or author.name or author.handle
    identity = plan.identities.setdefault(
        identity_id,
        {
            "id": identity_id,
            "workspace_id": workspace_id,
            "contact_id": contact_id,
            "namespace": author.namespace,
            "external_id": author.external_id,
            "handle": None,
            "handle_at": None,
            "display_name": None,
            "display_name_at": None,
            "created_at": now,
            "updated_at": now,
        },
    )
    _newest(identity, "handle", author.handle, at)
    _newest(identity, "display_name", author.name, at)
    return identity_id


def _add_conversation(
    plan: IngestPlan,
    event: InboundFact,
    workspace_id: UUID,
    conversation_id: UUID,
    at: datetime,
    sequence: int,
    now: datetime,
) -> None:
    """Fold an event into its conversation's row: a created message confirms the activity time."""
    ref = event.payload
    assert not isinstance(ref, ReactionChange)
    confirmed = isinstance(event, MessageReceived)
    row = plan.conversations.get(conversation_id)
    if row is None:
        row = {
            "id": conversation_id,
            "workspace_id": workspace_id,
            "channel_id": ref.channel_id,
            "external_id": ref.thread.external_id,
            "title": None,
            "title_at": None,
            "title_seq": None,
            "status": "open",
            "status_changed_at": now,
            "last_activity_at": at,
            "activity_confirmed": confirmed,
            "last_inbound_at": None,
            "version": 1,
            "created_at": now,
            "updated_at": now,
        }
        plan.conversations[conversation_id] = row
    elif confirmed and not row["activity_confirmed"]:
        row["last_activity_at"], row["activity_confirmed"] = at, True
    elif confirmed == row["activity_confirmed"]:
        row["last_activity_at"] = max(row["last_activity_at"], at)
    if isinstance(event, MessageReceived) and event.payload.direction == "inbound":
        row["last_inbound_at"] = max(row["last_inbound_at"] or at, at)
    _newest(row, "title", ref.thread.title, at, sequence)


def _message_row(
    event: MessageEvent,
    workspace_id: UUID,
    conversation_id: UUID,
    message_id: UUID,
    sequence: int,
    now: datetime,
) -> Row:
    ref = event.payload
    row: Row = {
        "id": message_id,
        "workspace_id": workspace_id,
        "channel_id": ref.channel_id,
        "conversation_id": conversation_id,
        "external_id": ref.external_id,
        "direction": "inbound",
        "author_identity_id": None,
        "text": None,
        "attachments": [],
        "reply_to_external_id": None,
        "sent_at": None,
        "received_seq": sequence,
        "text_version_at": None,
        "original_saved": False,
        "original_text": None,
        "original_attachments": None,
        "edited_at": None,
        "deleted_at": None,
        "meta": {},
        "sentiment": None,
        "sentiment_score": None,
        "language": None,
        "created_at": now,
        "updated_at": now,
    }
    if isinstance(event, MessageReceived):
        payload = event.payload
        row.update(
            direction=payload.direction,
            text=payload.text,
            attachments=_attachments(payload.attachments),
            reply_to_external_id=payload.reply_to_external_id,
            sent_at=payload.sent_at,
            occurred_at=payload.sent_at,
            text_version_at=payload.sent_at,
            meta=payload.meta,
        )
    elif isinstance(event, MessageEdited):
        edit = event.payload
        row.update(
            text=edit.text,
            attachments=_attachments(edit.attachments),
            occurred_at=edit.edited_at,
            text_version_at=edit.edited_at,
            edited_at=edit.edited_at,
            meta=edit.meta,
        )
    else:
        row.update(occurred_at=event.payload.deleted_at, deleted_at=event.payload.deleted_at)
    return row


def _revision_row(event: MessageEdited, message_id: UUID, now: datetime) -> Row:
    edit = event.payload
    attachments = _attachments(edit.attachments)
    digest = hashlib.sha256(
        orjson.dumps([edit.edited_at.isoformat(), edit.text, attachments], option=orjson.OPT_SORT_KEYS)
    ).hexdigest()
    return {
        "message_id": message_id,
        "text": edit.text,
        "attachments": attachments,
        "edited_at": edit.edited_at,
        "digest": digest,
        "created_at": now,
    }
