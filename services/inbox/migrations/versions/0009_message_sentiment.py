"""message sentiment: the analyzer's label, score and language, an agent's correction; a conversation's
sentiment and its list index

Columns are added in place and dropped in place (SQLite 3.35+ drops a column without copying the
table), so the full-text triggers of 0008 on ``messages`` stay as they are. Messages stored before
this revision have no sentiment: they are not scored again.

Revision ID: 0009
Revises: 0008
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import shared.db

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TIME = shared.db.types.UTCDateTime(timezone=True)
MESSAGE_COLUMNS = (
    ("sentiment", sa.String(length=8)),
    ("sentiment_score", sa.Float()),
    ("language", sa.String(length=16)),
    ("sentiment_correction", sa.String(length=8)),
    ("sentiment_corrected_by", sa.Uuid()),
    ("sentiment_corrected_at", TIME),
)
LIST_INDEX = "ix_conversations_workspace_id_sentiment_last_activity_at_id"


def upgrade() -> None:
    for name, type_ in MESSAGE_COLUMNS:
        op.add_column("messages", sa.Column(name, type_, nullable=True))
    op.add_column("conversations", sa.Column("sentiment", sa.String(length=8), nullable=True))
    op.create_index(
        op.f(LIST_INDEX),
        "conversations",
        ["workspace_id", "sentiment", "last_activity_at", "id"],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index(op.f(LIST_INDEX), table_name="conversations")
    op.drop_column("conversations", "sentiment")
    for name, _ in reversed(MESSAGE_COLUMNS):
        op.drop_column("messages", name)
