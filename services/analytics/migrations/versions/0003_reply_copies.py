"""reply copies: the platform ids Piazza replies became, and outbound messages' own platform ids

A platform may list a Piazza reply back as a message of its own (Reddit lists the account's comments;
a private reply's first message opens a thread of its own): such a copy is counted once, as the
reply. Facts stored before this revision keep counting as they did, and so would a rebuild
(``piazza analytics rebuild``): the ``conversation.message_sent`` events published before it do not
carry the platform ids their replies became.

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "analytics_sent_ids",
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("platform_id", sa.String(length=512), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.PrimaryKeyConstraint("channel_id", "platform_id", name=op.f("pk_analytics_sent_ids")),
    )
    with op.batch_alter_table("analytics_messages") as batch:
        batch.add_column(sa.Column("external_id", sa.String(length=512), nullable=True))
        batch.create_index("ix_analytics_messages_external", ["channel_id", "external_id"])


def downgrade() -> None:
    with op.batch_alter_table("analytics_messages") as batch:
        batch.drop_index("ix_analytics_messages_external")
        batch.drop_column("external_id")
    op.drop_table("analytics_sent_ids")
