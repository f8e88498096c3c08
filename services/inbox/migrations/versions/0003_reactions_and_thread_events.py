"""reactions, thread events, message metadata, title ordering by bus sequence

Revision ID: 0003
Revises: 0002
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import shared.db

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TIME = shared.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.add_column(sa.Column("meta", JSON, nullable=False, server_default="{}"))
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.add_column(sa.Column("title_seq", sa.BigInteger(), nullable=True))
    op.create_table(
        "message_reactions",
        sa.Column("id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("message_id", sa.Uuid(), nullable=False),
        sa.Column("actor_key", sa.String(length=64), nullable=False),
        sa.Column("actor_identity_id", sa.Uuid(), nullable=True),
        sa.Column("reactions", JSON, nullable=False),
        sa.Column("reacted_at", TIME, nullable=False),
        sa.Column("received_seq", sa.BigInteger(), nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_message_reactions_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"], name=op.f("fk_message_reactions_channel_id_channels")
        ),
        sa.ForeignKeyConstraint(
            ["actor_identity_id"],
            ["identities.id"],
            name=op.f("fk_message_reactions_actor_identity_id_identities"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_message_reactions")),
        sa.UniqueConstraint(
            "message_id", "actor_key", name=op.f("uq_message_reactions_message_id_actor_key")
        ),
    )
    op.create_table(
        "conversation_events",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("channel_id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("external_id", sa.String(length=512), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("member_identity_id", sa.Uuid(), nullable=True),
        sa.Column("actor_identity_id", sa.Uuid(), nullable=True),
        sa.Column("title", sa.String(length=1024), nullable=True),
        sa.Column("occurred_at", TIME, nullable=False),
        sa.Column("created_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_conversation_events_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["channel_id"], ["channels.id"], name=op.f("fk_conversation_events_channel_id_channels")
        ),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_events_conversation_id_conversations"),
        ),
        sa.ForeignKeyConstraint(
            ["member_identity_id"],
            ["identities.id"],
            name=op.f("fk_conversation_events_member_identity_id_identities"),
        ),
        sa.ForeignKeyConstraint(
            ["actor_identity_id"],
            ["identities.id"],
            name=op.f("fk_conversation_events_actor_identity_id_identities"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_conversation_events")),
        sa.UniqueConstraint(
            "channel_id", "external_id", name=op.f("uq_conversation_events_channel_id_external_id")
        ),
    )
    with op.batch_alter_table("conversation_events", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conversation_events_conversation_id_occurred_at"),
            ["conversation_id", "occurred_at"],
            unique=False,
        )


def downgrade() -> None:
    with op.batch_alter_table("conversation_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversation_events_conversation_id_occurred_at"))
    op.drop_table("conversation_events")
    op.drop_table("message_reactions")
    with op.batch_alter_table("conversations", schema=None) as batch_op:
        batch_op.drop_column("title_seq")
    with op.batch_alter_table("messages", schema=None) as batch_op:
        batch_op.drop_column("meta")
