"""a conversation's list columns: the preview of its newest visible message and its labels, kept on
the conversation (``repository/list_columns.py`` keeps them from here on)

The backfill derives both from the stored messages and labels, as the repository does: previews in
one statement, labels conversation by conversation for the conversations that carry any.

Revision ID: 0010
Revises: 0009
"""

from collections.abc import Sequence
from typing import Any

import orjson
import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

PREVIEW_LENGTH = 280
_CHUNK = 1000

conversations = sa.table(
    "conversations",
    sa.column("id", sa.Uuid()),
    sa.column("last_message_preview", sa.Text()),
    sa.column("labels_json", sa.Text()),
)
messages = sa.table(
    "messages",
    sa.column("conversation_id", sa.Uuid()),
    sa.column("text", sa.Text()),
    sa.column("attachments", shared.db.types.JSONType),
    sa.column("deleted_at", sa.DateTime(timezone=True)),
    sa.column("direction", sa.String(16)),
    sa.column("occurred_at", sa.DateTime(timezone=True)),
    sa.column("received_seq", sa.BigInteger()),
)
labels = sa.table(
    "labels", sa.column("id", sa.Uuid()), sa.column("name", sa.String()), sa.column("color", sa.String())
)
conversation_labels = sa.table(
    "conversation_labels", sa.column("conversation_id", sa.Uuid()), sa.column("label_id", sa.Uuid())
)


def upgrade() -> None:
    op.add_column("conversations", sa.Column("last_message_preview", sa.Text(), nullable=True))
    op.add_column("conversations", sa.Column("labels_json", sa.Text(), server_default="[]", nullable=False))
    _backfill_previews()
    _backfill_labels()


def _backfill_previews() -> None:
    first = messages.c.attachments[0].as_string()
    kind = sa.func.coalesce(messages.c.attachments[(0, "type")].as_string(), "attachment")
    preview = sa.case(
        (sa.func.coalesce(messages.c.text, "") != "", sa.func.substr(messages.c.text, 1, PREVIEW_LENGTH)),
        (first.is_not(None), "[" + kind + "]"),
        else_=sa.null(),
    )
    newest = (
        sa.select(preview)
        .where(
            messages.c.conversation_id == conversations.c.id,
            messages.c.deleted_at.is_(None),
            messages.c.direction != "note",
        )
        .order_by(messages.c.occurred_at.desc(), messages.c.received_seq.desc())
        .limit(1)
        .scalar_subquery()
    )
    op.execute(conversations.update().values(last_message_preview=newest))


def _backfill_labels() -> None:
    bind = op.get_bind()
    rows = bind.execute(
        sa.select(conversation_labels.c.conversation_id, labels.c.id, labels.c.name, labels.c.color)
        .join(labels, labels.c.id == conversation_labels.c.label_id)
        .order_by(conversation_labels.c.conversation_id, labels.c.name)
    )
    carried: dict[Any, list[dict[str, Any]]] = {}
    for conversation_id, label_id, name, color in rows:
        carried.setdefault(conversation_id, []).append({"id": str(label_id), "name": name, "color": color})
    update = (
        conversations.update()
        .where(conversations.c.id == sa.bindparam("b_id"))
        .values(labels_json=sa.bindparam("b_labels"))
    )
    items = [{"b_id": key, "b_labels": orjson.dumps(value).decode()} for key, value in carried.items()]
    for start in range(0, len(items), _CHUNK):
        bind.execute(update, items[start : start + _CHUNK])


def downgrade() -> None:
    op.drop_column("conversations", "labels_json")
    op.drop_column("conversations", "last_message_preview")
