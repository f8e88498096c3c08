"""The statements that store an ingest plan: bulk upserts whose conflict rules merge, never clobber.

Every rule below gives the same final row whatever order the events arrive in and however often
they are redelivered:

* conversations: ``last_activity_at`` follows the newest received message; a placeholder (an edit
  or delete heard of before its create) never moves an existing conversation;
* messages: the content with the newest ``text_version_at`` wins (an edit beats a create at the same
  instant); the create's content is kept in ``original_*`` once an edit replaces it; the first
  deletion stays; the create sets the send time and the position in the conversation; the sentiment
  goes with the content it was read from, and only an inbound message keeps one; an agent's
  correction is never touched here;
* a conversation's sentiment and preview are derived from its messages once they are written
  (``repository/sentiment.py``, ``repository/list_columns.py``);
* identities and contacts: a non-empty handle or name replaces an older one; contacts keep theirs.
"""

from __future__ import annotations

from collections.abc import Collection, Mapping, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import ColumnElement, and_, case, func, null, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.inbox.ingest import IngestPlan, Row
from services.inbox.models import (
    Channel,
    Contact,
    Conversation,
    ConversationEvent,
    Identity,
    Message,
    MessageReaction,
    MessageRevision,
)
from services.inbox.repository import list_columns, sentiment
from shared.db import insert_for

REOPENED_BY_INBOUND = ("resolved", "snoozed", "pending")
"""Statuses a new inbound message takes a conversation out of."""

# Keep each statement's bound parameters well under SQLite's and asyncpg's limits.
_CHUNK = 500


def _chunks(rows: Sequence[Row]) -> list[Sequence[Row]]:
    return [rows[i : i + _CHUNK] for i in range(0, len(rows), _CHUNK)]


async def channel_workspaces(session: AsyncSession, channel_ids: set[UUID]) -> dict[UUID, UUID]:
    """The workspace of each of these channels that exists."""
    if not channel_ids:
        return {}
    result = await session.execute(
        select(Channel.id, Channel.workspace_id).where(Channel.id.in_(channel_ids))
    )
    return {row.id: row.workspace_id for row in result}


async def store_plan(session: AsyncSession, plan: IngestPlan) -> dict[UUID, Row]:
    """Write every row of the plan inside the caller's transaction. Returns the conversations its
    customer messages may reopen (resolved, snoozed or pending) as they were just before
    (:func:`reopened` tells which it did).

    Tables are written in foreign-key order and rows in key order, so concurrent batches take their
    row locks in the same order and cannot deadlock each other.
    """
    dialect = session.get_bind().dialect.name
    await _upsert_contacts(session, dialect, _by_id(plan.contacts))
    await _upsert_identities(session, dialect, _by_id(plan.identities))
    dormant = await _dormant_conversations(session, plan)
    labelled = await _upsert_conversations(session, dialect, _by_id(plan.conversations))
    await list_columns.order_labels(session, labelled)
    for message_round in plan.message_rounds:
        await _upsert_messages(session, dialect, sorted(message_round, key=lambda row: row["id"]))
    await list_columns.derive(
        session,
        plan.message_conversations,
        {"sentiment": sentiment.newest_label(), "last_message_preview": list_columns.newest_preview()},
    )
    await _insert_revisions(
        session, dialect, sorted(plan.revisions, key=lambda row: (row["message_id"], row["digest"]))
    )
    await _upsert_reactions(session, dialect, [plan.reactions[key] for key in sorted(plan.reactions)])
    await _insert_thread_events(session, dialect, _by_id(plan.thread_events))
    await _touch_channels(session, dict(sorted(plan.channel_activity.items())))
    return dormant


def _by_id(rows: Mapping[UUID, Row]) -> list[Row]:
    return [rows[key] for key in sorted(rows)]


async def _execute(session: AsyncSession, statement: Any, rows: Sequence[Row]) -> None:
    for chunk in _chunks(rows):
        await session.execute(statement, list(chunk))


def _newer(new: ColumnElement[Any], old: ColumnElement[Any]) -> ColumnElement[bool]:
    return or_(old.is_(None), new > old)


async def _upsert_contacts(session: AsyncSession, dialect: str, rows: list[Row]) -> None:
    if not rows:
        return
    table = Contact.__table__
    statement = insert_for(dialect, table)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.id],
        set_={"name": func.coalesce(table.c.name, statement.excluded.name)},
        where=and_(table.c.name.is_(None), statement.excluded.name.is_not(None)),
    )
    await _execute(session, statement, rows)


def _newest(
    value: str, new: Any, old: Any, tiebreak: str | None = None
) -> tuple[ColumnElement[bool], dict[str, Any]]:
    """SET clauses keeping ``value`` from the newest event that gave one. Ties on time go to the
    greater ``tiebreak`` column (the bus sequence) when given, else to the greater value."""
    stamp = f"{value}_at"
    on_tie = tiebreak or value
    wins = and_(
        getattr(new, value).is_not(None),
        or_(
            getattr(old, stamp).is_(None),
            getattr(new, stamp) > getattr(old, stamp),
            and_(getattr(new, stamp) == getattr(old, stamp), getattr(new, on_tie) > getattr(old, on_tie)),
        ),
    )
    columns = [value, stamp, *([tiebreak] if tiebreak else [])]
    return wins, {
        column: case((wins, getattr(new, column)), else_=getattr(old, column)) for column in columns
    }


async def _upsert_identities(session: AsyncSession, dialect: str, rows: list[Row]) -> None:
    if not rows:
        return
    table = Identity.__table__
    statement = insert_for(dialect, table)
    new = statement.excluded
    handle_wins, handle = _newest("handle", new, table.c)
    name_wins, name = _newest("display_name", new, table.c)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.workspace_id, table.c.namespace, table.c.external_id],
        set_={**handle, **name, "updated_at": new.updated_at},
        where=or_(handle_wins, name_wins),
    )
    await _execute(session, statement, rows)


async def _upsert_conversations(
    session: AsyncSession, dialect: str, rows: list[Row]
) -> list[list_columns.LabelOrder]:
    """One statement for every conversation a batch touches, so row locks are taken in key order.
    Returns the activity and priority of those carrying labels, for their labels to copy.

    A confirmed activity time (from a created message) replaces a placeholder's (from an edit or
    deletion heard of first) and then only moves forward; a placeholder's moves forward among
    placeholders. Every event touching the conversation moves ``updated_at``.
    """
    if not rows:
        return []
    table = Conversation.__table__
    statement = insert_for(dialect, table)
    new, old = statement.excluded, table.c
    moves = or_(
        and_(
            new.activity_confirmed, or_(~old.activity_confirmed, new.last_activity_at >= old.last_activity_at)
        ),
        and_(~new.activity_confirmed, ~old.activity_confirmed, new.last_activity_at > old.last_activity_at),
    )
    _, title = _newest("title", new, old, tiebreak="title_seq")
    # A customer writing after a conversation was resolved or snoozed reopens it (by the message's own
    # send time, so an old message delivered late does not).
    reopens = and_(
        # Not ``IN (...)``: an expanding parameter cannot go in an executemany, which then failed any
        # batch touching two conversations (and the consumer fell back to one event per transaction).
        or_(*(old.status == status for status in REOPENED_BY_INBOUND)),
        new.last_inbound_at.is_not(None),
        or_(old.status_changed_at.is_(None), new.last_inbound_at > old.status_changed_at),
    )
    upsert = statement.on_conflict_do_update(
        index_elements=[old.channel_id, old.external_id],
        set_={
            **title,
            "last_activity_at": case((moves, new.last_activity_at), else_=old.last_activity_at),
            "activity_confirmed": or_(old.activity_confirmed, new.activity_confirmed),
            "last_inbound_at": case(
                (_newer(new.last_inbound_at, old.last_inbound_at), new.last_inbound_at),
                else_=old.last_inbound_at,
            ),
            "status": case((reopens, "open"), else_=old.status),
            "status_changed_at": case((reopens, new.updated_at), else_=old.status_changed_at),
            "snoozed_until": case((reopens, None), else_=old.snoozed_until),
            "resolved_at": case((reopens, None), else_=old.resolved_at),
            "version": case((reopens, old.version + 1), else_=old.version),
            "updated_at": new.updated_at,
        },
    ).returning(old.id, old.last_activity_at, old.priority, old.labels_json)
    labelled = []
    for chunk in _chunks(rows):
        for key, moved, priority, labels in await session.execute(upsert, list(chunk)):
            if labels != list_columns.NO_LABELS:
                labelled.append((key, moved, priority))
    return labelled


async def _dormant_conversations(session: AsyncSession, plan: IngestPlan) -> dict[UUID, Row]:
    """Of the conversations a customer message of the plan goes to, the resolved, snoozed or pending
    ones. Read with the locks the conversations' upsert takes right after (all of the plan's, in key
    order, as it takes them): read without, an agent's status change committed in between would be
    reopened by the upsert unannounced."""
    candidates = {c for c, row in plan.conversations.items() if row["last_inbound_at"] is not None}
    if not candidates:
        return {}
    columns = (
        Conversation.id,
        Conversation.workspace_id,
        Conversation.channel_id,
        Conversation.status,
        Conversation.snoozed_until,
        Conversation.version,
    )
    keys = sorted(plan.conversations)
    dormant: dict[UUID, Row] = {}
    for start in range(0, len(keys), _CHUNK):
        result = await session.execute(
            select(*columns)
            .where(Conversation.id.in_(keys[start : start + _CHUNK]))
            .order_by(Conversation.id)
            .with_for_update()
        )
        dormant.update(
            (row.id, dict(row._mapping))
            for row in result
            if row.id in candidates and row.status in REOPENED_BY_INBOUND
        )
    return dormant


async def reopened(session: AsyncSession, candidates: Collection[UUID], now: datetime) -> dict[UUID, int]:
    """Of these formerly dormant conversations, the ones this batch reopened (the upsert stamps
    ``status_changed_at`` with the batch's time; an agent or the snooze alarm reopening one meanwhile
    stamps another), with their version."""
    if not candidates:
        return {}
    result = await session.execute(
        select(Conversation.id, Conversation.version).where(
            Conversation.id.in_(sorted(candidates)),
            Conversation.status == "open",
            Conversation.status_changed_at == now,
        )
    )
    return {row.id: row.version for row in result}


async def _upsert_messages(session: AsyncSession, dialect: str, rows: list[Row]) -> None:
    table = Message.__table__
    statement = insert_for(dialect, table)
    new = statement.excluded
    old = table.c
    new_is_create = new.sent_at.is_not(None)
    old_is_create = old.sent_at.is_not(None)
    # Versions compare by (time, edit over create, text): an edit at the create's instant wins, and
    # two edits at the same second (Telegram's resolution) settle the same way in any order.
    new_rank = case((new_is_create, 0), else_=1)
    old_rank = case((and_(old.edited_at.is_not(None), old.edited_at == old.text_version_at), 1), else_=0)
    newer = and_(
        new.text_version_at.is_not(None),
        or_(
            old.text_version_at.is_(None),
            new.text_version_at > old.text_version_at,
            and_(
                new.text_version_at == old.text_version_at,
                or_(
                    new_rank > old_rank,
                    and_(new_rank == old_rank, func.coalesce(new.text, "") > func.coalesce(old.text, "")),
                ),
            ),
        ),
    )
    # The create's content is saved aside when an edit replaces it (edit after create), or when a
    # create arrives for a row an earlier-heard edit already holds (edit before create).
    edit_replaces_create = and_(old_is_create, ~new_is_create, newer)
    late_create = and_(~old_is_create, new_is_create, ~newer)
    keep_original = old.original_saved
    direction = case((and_(~old_is_create, new_is_create), new.direction), else_=old.direction)
    # The sentiment is the reading of the text kept; an edit heard of first was scored as if inbound,
    # so it is dropped if the create says the message is not.
    reading = {
        name: case((direction != "inbound", null()), (newer, new[name]), else_=old[name])
        for name in ("sentiment", "sentiment_score", "language")
    }
    statement = statement.on_conflict_do_update(
        index_elements=[old.channel_id, old.external_id],
        set_={
            "direction": direction,
            **reading,
            "author_identity_id": func.coalesce(old.author_identity_id, new.author_identity_id),
            "text": case((newer, new.text), else_=old.text),
            "meta": case((newer, new.meta), else_=old.meta),
            "attachments": case((newer, new.attachments), else_=old.attachments),
            "text_version_at": case((newer, new.text_version_at), else_=old.text_version_at),
            "original_text": case(
                (keep_original, old.original_text),
                (edit_replaces_create, old.text),
                (late_create, new.text),
                else_=old.original_text,
            ),
            "original_attachments": case(
                (keep_original, old.original_attachments),
                (edit_replaces_create, old.attachments),
                (late_create, new.attachments),
                else_=old.original_attachments,
            ),
            "original_saved": or_(keep_original, edit_replaces_create, late_create),
            "reply_to_external_id": func.coalesce(old.reply_to_external_id, new.reply_to_external_id),
            "sent_at": func.coalesce(old.sent_at, new.sent_at),
            "occurred_at": case((and_(~old_is_create, new_is_create), new.sent_at), else_=old.occurred_at),
            "edited_at": case((_newer(new.edited_at, old.edited_at), new.edited_at), else_=old.edited_at),
            "deleted_at": func.coalesce(old.deleted_at, new.deleted_at),
            "updated_at": new.updated_at,
        },
    )
    await _execute(session, statement, rows)


async def _insert_revisions(session: AsyncSession, dialect: str, rows: list[Row]) -> None:
    if not rows:
        return
    table = MessageRevision.__table__
    statement = insert_for(dialect, table).on_conflict_do_nothing(
        index_elements=[table.c.message_id, table.c.digest]
    )
    await _execute(session, statement, rows)


async def _upsert_reactions(session: AsyncSession, dialect: str, rows: list[Row]) -> None:
    """A person's newest reactions to a message replace their older ones."""
    if not rows:
        return
    table = MessageReaction.__table__
    statement = insert_for(dialect, table)
    new, old = statement.excluded, table.c
    statement = statement.on_conflict_do_update(
        index_elements=[old.message_id, old.actor_key],
        set_={
            "reactions": new.reactions,
            "reacted_at": new.reacted_at,
            "received_seq": new.received_seq,
            "actor_identity_id": new.actor_identity_id,
            "updated_at": new.updated_at,
        },
        where=or_(
            new.reacted_at > old.reacted_at,
            and_(new.reacted_at == old.reacted_at, new.received_seq > old.received_seq),
        ),
    )
    await _execute(session, statement, rows)


async def _insert_thread_events(session: AsyncSession, dialect: str, rows: list[Row]) -> None:
    if not rows:
        return
    table = ConversationEvent.__table__
    statement = insert_for(dialect, table).on_conflict_do_nothing(
        index_elements=[table.c.channel_id, table.c.external_id]
    )
    await _execute(session, statement, rows)


async def _touch_channels(session: AsyncSession, activity: Mapping[UUID, datetime]) -> None:
    for channel_id, at in activity.items():
        await session.execute(
            update(Channel)
            .where(Channel.id == channel_id, or_(Channel.last_event_at.is_(None), Channel.last_event_at < at))
            .values(last_event_at=at)
        )
