"""inbox workflow: users, teams, labels, read state, conversation workflow

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import shared.db

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TIME = shared.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "labels",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("color", sa.String(length=7), nullable=True),
        sa.Column("description", sa.Text(), nullable=True),
        sa.Column("created_at", shared.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shared.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_labels_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_labels")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_labels_workspace_id_name")),
    )
    op.create_table(
        "teams",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("created_at", shared.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shared.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_teams_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_teams")),
        sa.UniqueConstraint("workspace_id", "name", name=op.f("uq_teams_workspace_id_name")),
    )
    op.create_table(
        "users",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("name", sa.String(length=200), nullable=False),
        sa.Column("email", sa.String(length=320), nullable=True),
        sa.Column("role", sa.String(length=16), nullable=False),
        sa.Column("created_at", shared.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shared.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("deactivated_at", shared.db.types.UTCDateTime(timezone=True), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_users_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("workspace_id", "email", name=op.f("uq_users_workspace_id_email")),
    )
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_users_workspace_id"), ["workspace_id"], unique=False)

    op.create_table(
        "team_members",
        sa.Column("team_id", sa.Uuid(), nullable=False),
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["team_id"], ["teams.id"], name=op.f("fk_team_members_team_id_teams"), ondelete="CASCADE"
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_team_members_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("team_id", "user_id", name=op.f("pk_team_members")),
    )
    with op.batch_alter_table("team_members", schema=None) as batch_op:
        batch_op.create_index(batch_op.f("ix_team_members_user_id"), ["user_id"], unique=False)

    op.create_table(
        "conversation_labels",
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("label_id", sa.Uuid(), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_labels_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["label_id"],
            ["labels.id"],
            name=op.f("fk_conversation_labels_label_id_labels"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("conversation_id", "label_id", name=op.f("pk_conversation_labels")),
    )
    with op.batch_alter_table("conversation_labels", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_conversation_labels_label_id_conversation_id"),
            ["label_id", "conversation_id"],
            unique=False,
        )

    op.create_table(
        "conversation_reads",
        sa.Column("user_id", sa.Uuid(), nullable=False),
        sa.Column("conversation_id", sa.Uuid(), nullable=False),
        sa.Column("read_up_to", shared.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.Column("updated_at", shared.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["conversation_id"],
            ["conversations.id"],
            name=op.f("fk_conversation_reads_conversation_id_conversations"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], name=op.f("fk_conversation_reads_user_id_users"), ondelete="CASCADE"
        ),
        sa.PrimaryKeyConstraint("user_id", "conversation_id", name=op.f("pk_conversation_reads")),
    )
    # Columns are added in place (no table copy): on SQLite, copying a table that stored rows reference
    # (conversations, messages) fails its foreign keys, so a store with data could not upgrade.
    # SQLite cannot add a constraint to a table: there it is declared with the column.
    inline = op.get_bind().dialect.name == "sqlite"
    if inline:
        # Alembic's inline references leave out ON DELETE: say it in SQLite's own words.
        op.execute(
            "ALTER TABLE api_tokens ADD COLUMN user_id CHAR(32) CONSTRAINT fk_api_tokens_user_id_users REFERENCES users (id) ON DELETE CASCADE"
        )
    else:
        op.add_column(
            "api_tokens",
            sa.Column(
                "user_id",
                sa.Uuid(),
                sa.ForeignKey("users.id", name=op.f("fk_api_tokens_user_id_users"), ondelete="CASCADE"),
                nullable=True,
            ),
        )
    op.create_index(op.f("ix_api_tokens_user_id"), "api_tokens", ["user_id"], unique=False)
    op.add_column("audit_log", sa.Column("actor_user_id", sa.Uuid(), nullable=True))
    op.add_column("audit_log", sa.Column("before", JSON, nullable=True))
    op.add_column("audit_log", sa.Column("after", JSON, nullable=True))
    for column in (
        sa.Column("status_changed_at", TIME, nullable=True),
        sa.Column("snoozed_until", TIME, nullable=True),
        sa.Column(
            "assignee_id",
            sa.Uuid(),
            sa.ForeignKey("users.id", name=op.f("fk_conversations_assignee_id_users")),
            nullable=True,
        ),
        sa.Column("priority", sa.String(length=8), nullable=True),
        sa.Column("last_inbound_at", TIME, nullable=True),
        sa.Column("first_response_at", TIME, nullable=True),
        sa.Column("first_resolved_at", TIME, nullable=True),
        sa.Column("resolved_at", TIME, nullable=True),
        sa.Column(
            "claimed_by_id",
            sa.Uuid(),
            sa.ForeignKey("users.id", name=op.f("fk_conversations_claimed_by_id_users")),
            nullable=True,
        ),
        sa.Column("claim_expires_at", TIME, nullable=True),
    ):
        op.add_column("conversations", column, inline_references=inline)
    if inline:
        op.execute(
            "ALTER TABLE conversations ADD COLUMN team_id CHAR(32) CONSTRAINT fk_conversations_team_id_teams REFERENCES teams (id) ON DELETE SET NULL"
        )
    else:
        op.add_column(
            "conversations",
            sa.Column(
                "team_id",
                sa.Uuid(),
                sa.ForeignKey("teams.id", name=op.f("fk_conversations_team_id_teams"), ondelete="SET NULL"),
                nullable=True,
            ),
        )
    op.create_index(
        op.f("ix_conversations_status_snoozed_until"),
        "conversations",
        ["status", "snoozed_until"],
        unique=False,
    )
    op.create_index(
        op.f("ix_conversations_workspace_id_assignee_id_last_activity_at_id"),
        "conversations",
        ["workspace_id", "assignee_id", "last_activity_at", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_conversations_workspace_id_team_id_last_activity_at_id"),
        "conversations",
        ["workspace_id", "team_id", "last_activity_at", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_conversations_workspace_id_priority_last_activity_at_id"),
        "conversations",
        ["workspace_id", "priority", "last_activity_at", "id"],
        unique=False,
    )
    op.add_column(
        "messages",
        sa.Column(
            "sent_by_user_id",
            sa.Uuid(),
            sa.ForeignKey("users.id", name=op.f("fk_messages_sent_by_user_id_users")),
            nullable=True,
        ),
        inline_references=inline,
    )

    # Conversations stored before this revision: their inbound activity, and open since they began.
    op.execute(
        "UPDATE conversations SET status_changed_at = created_at, last_inbound_at = ("
        " SELECT max(m.occurred_at) FROM messages m"
        " WHERE m.conversation_id = conversations.id AND m.direction = 'inbound')"
    )


def _drop_foreign_key(batch_op: Any, name: str) -> None:
    # On SQLite the keys were declared with their columns, unnamed: dropping the column drops them.
    if op.get_bind().dialect.name != "sqlite":
        batch_op.drop_constraint(batch_op.f(name), type_="foreignkey")


def downgrade() -> None:
    with op.batch_alter_table("messages", schema=None) as batch_op:
        _drop_foreign_key(batch_op, "fk_messages_sent_by_user_id_users")
        batch_op.drop_column("sent_by_user_id")

    with op.batch_alter_table("conversations", schema=None) as batch_op:
        _drop_foreign_key(batch_op, "fk_conversations_assignee_id_users")
        _drop_foreign_key(batch_op, "fk_conversations_claimed_by_id_users")
        _drop_foreign_key(batch_op, "fk_conversations_team_id_teams")
        batch_op.drop_index(batch_op.f("ix_conversations_workspace_id_priority_last_activity_at_id"))
        batch_op.drop_index(batch_op.f("ix_conversations_workspace_id_team_id_last_activity_at_id"))
        batch_op.drop_index(batch_op.f("ix_conversations_workspace_id_assignee_id_last_activity_at_id"))
        batch_op.drop_index(batch_op.f("ix_conversations_status_snoozed_until"))
        batch_op.drop_column("claim_expires_at")
        batch_op.drop_column("claimed_by_id")
        batch_op.drop_column("resolved_at")
        batch_op.drop_column("first_resolved_at")
        batch_op.drop_column("first_response_at")
        batch_op.drop_column("last_inbound_at")
        batch_op.drop_column("priority")
        batch_op.drop_column("team_id")
        batch_op.drop_column("assignee_id")
        batch_op.drop_column("snoozed_until")
        batch_op.drop_column("status_changed_at")

    with op.batch_alter_table("audit_log", schema=None) as batch_op:
        batch_op.drop_column("after")
        batch_op.drop_column("before")
        batch_op.drop_column("actor_user_id")

    with op.batch_alter_table("api_tokens", schema=None) as batch_op:
        _drop_foreign_key(batch_op, "fk_api_tokens_user_id_users")
        batch_op.drop_index(batch_op.f("ix_api_tokens_user_id"))
        batch_op.drop_column("user_id")

    op.drop_table("conversation_reads")
    with op.batch_alter_table("conversation_labels", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_conversation_labels_label_id_conversation_id"))

    op.drop_table("conversation_labels")
    with op.batch_alter_table("team_members", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_team_members_user_id"))

    op.drop_table("team_members")
    with op.batch_alter_table("users", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_users_workspace_id"))

    op.drop_table("users")
    op.drop_table("teams")
    op.drop_table("labels")
