"""a label's conversations in list order: ``conversation_labels`` carries its conversation's
``last_activity_at`` and ``priority`` (``repository/list_columns.py`` keeps them from here on), and
an index walks a label's conversations newest first with their priority at hand

It replaces the (label, conversation) index, whose work the new one's leading column does.

Revision ID: 0011
Revises: 0010
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

OLD_INDEX = "ix_conversation_labels_label_id_conversation_id"
ORDER_INDEX = "ix_conversation_labels_list_order"

conversations = sa.table(
    "conversations",
    sa.column("id", sa.Uuid()),
    sa.column("last_activity_at", sa.DateTime(timezone=True)),
    sa.column("priority", sa.String(8)),
)
conversation_labels = sa.table(
    "conversation_labels",
    sa.column("conversation_id", sa.Uuid()),
    sa.column("last_activity_at", sa.DateTime(timezone=True)),
    sa.column("priority", sa.String(8)),
)


def upgrade() -> None:
    op.add_column(
        "conversation_labels",
        sa.Column("last_activity_at", shared.db.types.UTCDateTime(timezone=True), nullable=True),
    )
    op.add_column("conversation_labels", sa.Column("priority", sa.String(length=8), nullable=True))
    if op.get_bind().dialect.name == "postgresql":
        # No conversation may move between the copy and the end of the migration.
        op.execute("LOCK TABLE conversations IN SHARE MODE")
    carrying = conversations.c.id == conversation_labels.c.conversation_id
    op.execute(
        conversation_labels.update().values(
            last_activity_at=sa.select(conversations.c.last_activity_at).where(carrying).scalar_subquery(),
            priority=sa.select(conversations.c.priority).where(carrying).scalar_subquery(),
        )
    )
    with op.batch_alter_table("conversation_labels") as batch_op:
        batch_op.alter_column(
            "last_activity_at", existing_type=shared.db.types.UTCDateTime(timezone=True), nullable=False
        )
        batch_op.drop_index(OLD_INDEX)
        batch_op.create_index(
            ORDER_INDEX,
            ["label_id", "last_activity_at", "conversation_id"],
            unique=False,
            postgresql_include=["priority"],
        )


def downgrade() -> None:
    with op.batch_alter_table("conversation_labels") as batch_op:
        batch_op.drop_index(ORDER_INDEX)
        batch_op.create_index(OLD_INDEX, ["label_id", "conversation_id"], unique=False)
        batch_op.drop_column("priority")
        batch_op.drop_column("last_activity_at")
