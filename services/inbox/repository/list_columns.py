"""What a conversation list shows of a conversation's messages and labels, kept on the conversation.

* ``last_message_preview``: the newest visible message (not deleted, not a note; by send time, then
  bus sequence), as a list shows it: the first :data:`PREVIEW_LENGTH` characters of its text, or its
  first attachment's type in brackets (``[photo]``) when it has no text.
* ``labels_json``: the conversation's labels as the API writes them, a JSON array of
  ``{id, name, color}`` by name.

Both are derived from the stored rows, never carried from event to event, so they are the same
whatever order events arrive in, and derived again wherever they may change: the preview after every
ingest batch (for the conversations whose messages it wrote), a reply and an agent's deletion; the
labels after a conversation's labels change and after a label is renamed or recoloured.

Computing them on every read took four correlated lookups per listed conversation: two thirds of a
list page's database work at a million messages (``bench/listing.py``).

The other way round, each label on a conversation carries copies of the conversation's
``last_activity_at`` and ``priority`` (:func:`order_labels`), which ingest and the workflow copy
again wherever they change (the only writers of either), so a list filtered by a label walks the
label's own index newest first instead of probing every conversation for it.
"""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from functools import cache
from typing import Any, cast
from uuid import UUID

import orjson
from sqlalchemy import ColumnElement, String, Table, bindparam, case, func, null, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased

from services.inbox.models import Conversation, ConversationLabel, Label, Message
from shared.db import UTCDateTime

PREVIEW_LENGTH = 280
NO_LABELS = "[]"
"""``labels_json`` of a conversation without labels."""
_CHUNK = 500


def preview_of(message: Any) -> ColumnElement[str | None]:
    """How a list shows a message: its text's first characters, else ``[<first attachment's type>]``."""
    first = message.attachments[0].as_string()
    kind = func.coalesce(message.attachments[(0, "type")].as_string(), "attachment")
    return case(
        (func.coalesce(message.text, "") != "", func.substr(message.text, 1, PREVIEW_LENGTH)),
        (first.is_not(None), "[" + kind + "]"),
        else_=null(),
    )


@cache
def newest_preview() -> Any:
    """The preview of a conversation's newest visible message (correlated)."""
    message = aliased(Message)
    return (
        select(preview_of(message))
        .where(
            message.conversation_id == Conversation.id,
            message.deleted_at.is_(None),
            message.direction != "note",
        )
        .order_by(message.occurred_at.desc(), message.received_seq.desc())
        .limit(1)
        .correlate(Conversation)
        .scalar_subquery()
    )


def _table() -> Table:
    return cast(Table, Conversation.__table__)


async def lock(session: AsyncSession, conversation_ids: Collection[UUID]) -> None:
    """Lock these conversations, in key order, for the rest of the transaction (PostgreSQL; SQLite
    has one writer at a time). Take it before writing their messages, labels or catalogue entries,
    as the ingest's upsert does: a write that locked a message first and its conversation second
    could deadlock with an ingest batch, and a derivation run while waiting for the lock would read
    the messages as they were before the batch it waited for."""
    ordered = sorted(conversation_ids)
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        await session.execute(
            select(Conversation.id)
            .where(Conversation.id.in_(chunk))
            .order_by(Conversation.id)
            .with_for_update()
        )


async def refresh_previews(session: AsyncSession, conversation_ids: Collection[UUID]) -> None:
    """Derive these conversations' previews again from their messages, writing only those that
    changed. The caller holds their locks (:func:`lock`, or the ingest's upsert)."""
    await derive(session, conversation_ids, {"last_message_preview": newest_preview()})


async def derive(
    session: AsyncSession, conversation_ids: Collection[UUID], columns: dict[str, ColumnElement[Any]]
) -> None:
    """Derive columns of these conversations again, each from a correlated expression over their
    messages (:func:`newest_preview`, ``sentiment.newest_label``): one select of them all, then one
    update per conversation where any changed. The caller holds their locks. Ingest derives the
    sentiment and the preview together: a select and an update each cost it about a tenth."""
    ordered = sorted(conversation_ids)
    table = _table()
    names = list(columns)
    current = [table.c[name] for name in names]
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        rows = await session.execute(
            select(table.c.id, *current, *columns.values()).where(table.c.id.in_(chunk))
        )
        changed = []
        for key, *values in rows:
            shown, derived = values[: len(names)], values[len(names) :]
            if shown != derived:
                changed.append(
                    {"b_id": key, **{f"b_{name}": value for name, value in zip(names, derived, strict=True)}}
                )
        if changed:
            # Core executemany: one UPDATE per changed conversation, by key, nothing synchronised.
            await session.execute(
                update(table)
                .where(table.c.id == bindparam("b_id"))
                .values({name: bindparam(f"b_{name}") for name in names}),
                changed,
            )


async def refresh_labels(session: AsyncSession, conversation_ids: Collection[UUID]) -> None:
    """Write these conversations' labels again, from the labels they carry and the catalogue. The
    caller holds their locks (:func:`lock`)."""
    ordered = sorted(conversation_ids)
    table = _table()
    for start in range(0, len(ordered), _CHUNK):
        chunk = ordered[start : start + _CHUNK]
        carried: dict[UUID, list[dict[str, Any]]] = {conversation_id: [] for conversation_id in chunk}
        rows = await session.execute(
            select(ConversationLabel.conversation_id, Label.id, Label.name, Label.color)
            .join(Label, Label.id == ConversationLabel.label_id)
            .where(ConversationLabel.conversation_id.in_(chunk))
            .order_by(ConversationLabel.conversation_id, Label.name)
        )
        for conversation_id, label_id, name, color in rows:
            carried[conversation_id].append({"id": str(label_id), "name": name, "color": color})
        # Core executemany: one UPDATE per conversation, by key, nothing synchronised.
        await session.execute(
            update(table).where(table.c.id == bindparam("b_id")).values(labels_json=bindparam("b_labels")),
            [{"b_id": key, "b_labels": labels_json(labels)} for key, labels in carried.items()],
        )


def labels_json(labels: list[dict[str, Any]]) -> str:
    """Labels as ``labels_json`` holds them."""
    return orjson.dumps(labels).decode()


async def refresh_label(session: AsyncSession, label_id: UUID) -> None:
    """A label was renamed or recoloured: write the labels of every conversation carrying it again.
    They are locked first, so a label an agent puts on or takes off meanwhile is not written over."""
    query = select(ConversationLabel.conversation_id).where(ConversationLabel.label_id == label_id)
    carrying = list((await session.scalars(query)).all())
    await lock(session, carrying)
    # Read again under the locks: a conversation given the label while they were taken counts too.
    await refresh_labels(session, set(carrying) | set((await session.scalars(query)).all()))


LabelOrder = tuple[UUID, datetime, str | None]
"""A conversation's id, ``last_activity_at`` and ``priority``, as its labels copy them."""


async def order_labels(session: AsyncSession, orders: Collection[LabelOrder]) -> None:
    """Copy each conversation's ``last_activity_at`` and ``priority``, as given (its stored values,
    its lock held), onto the labels it carries, where they differ: one UPDATE per conversation by
    key, sent together."""
    if not orders:
        return
    labels = cast(Table, ConversationLabel.__table__)
    at, priority = bindparam("b_at", type_=UTCDateTime()), bindparam("b_priority", type_=String())
    statement = (
        update(labels)
        .where(
            labels.c.conversation_id == bindparam("b_id"),
            or_(labels.c.last_activity_at != at, labels.c.priority.is_distinct_from(priority)),
        )
        .values(last_activity_at=at, priority=priority)
    )
    await session.execute(
        statement, [{"b_id": key, "b_at": moved, "b_priority": level} for key, moved, level in sorted(orders)]
    )
