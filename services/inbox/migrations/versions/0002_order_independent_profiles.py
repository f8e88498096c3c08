"""order-independent titles, profiles and conversation activity

Revision ID: 0002
Revises: 0001
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("title_at", shared.db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("activity_confirmed", sa.Boolean(), nullable=False, server_default=sa.true())
        )
        batch_op.drop_column("last_message_preview")
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.add_column(sa.Column("handle_at", shared.db.types.UTCDateTime(timezone=True), nullable=True))
        batch_op.add_column(
            sa.Column("display_name_at", shared.db.types.UTCDateTime(timezone=True), nullable=True)
        )


def downgrade() -> None:
    with op.batch_alter_table("identities", schema=None) as batch_op:
        batch_op.drop_column("display_name_at")
        batch_op.drop_column("handle_at")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("last_message_preview", sa.String(length=280), nullable=True))
        batch_op.drop_column("activity_confirmed")
        batch_op.drop_column("title_at")
