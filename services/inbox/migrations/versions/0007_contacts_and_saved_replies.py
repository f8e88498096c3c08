"""contacts: profile fields, reversible merges; saved replies

Revision ID: 0007
Revises: 0006

The new ``contacts`` columns are added in place (``ALTER TABLE ... ADD COLUMN``, the foreign key
inline) rather than by copying the table: on SQLite a copy would drop ``contacts`` while identities
still reference its rows, which the enforced foreign keys refuse on a store that has data.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

import shared.db

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

JSON = sa.JSON().with_variant(postgresql.JSONB(astext_type=sa.Text()), "postgresql")
TIME = shared.db.types.UTCDateTime(timezone=True)


def upgrade() -> None:
    op.add_column("contacts", sa.Column("email", sa.String(length=320), nullable=True))
    op.add_column("contacts", sa.Column("phone", sa.String(length=64), nullable=True))
    op.add_column("contacts", sa.Column("attributes", JSON, nullable=False, server_default="{}"))
    op.add_column(
        "contacts",
        sa.Column(
            "merged_into_id",
            sa.Uuid(),
            sa.ForeignKey("contacts.id", name=op.f("fk_contacts_merged_into_id_contacts")),
            nullable=True,
        ),
        # SQLite cannot add a constraint to a table: declare it with the column there.
        inline_references=op.get_bind().dialect.name == "sqlite",
    )
    op.add_column("contacts", sa.Column("merged_at", TIME, nullable=True))
    op.create_index(op.f("ix_contacts_merged_into_id"), "contacts", ["merged_into_id"], unique=False)
    op.create_index(
        op.f("ix_contacts_workspace_id_created_at_id"),
        "contacts",
        ["workspace_id", "created_at", "id"],
        unique=False,
    )
    op.create_index(
        op.f("ix_messages_author_identity_id_conversation_id"),
        "messages",
        ["author_identity_id", "conversation_id"],
        unique=False,
    )

    op.create_table(
        "contact_merges",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("target_contact_id", sa.Uuid(), nullable=False),
        sa.Column("source_contact_id", sa.Uuid(), nullable=False),
        sa.Column("identity_ids", JSON, nullable=False),
        sa.Column("target_before", JSON, nullable=False),
        sa.Column("source_before", JSON, nullable=False),
        sa.Column("target_after", JSON, nullable=False),
        sa.Column("source_after", JSON, nullable=False),
        sa.Column("merged_by_token_id", sa.Uuid(), nullable=True),
        sa.Column("merged_by_user_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("undone_at", TIME, nullable=True),
        sa.Column("undone_by_token_id", sa.Uuid(), nullable=True),
        sa.Column("undone_by_user_id", sa.Uuid(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_contact_merges_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["target_contact_id"], ["contacts.id"], name=op.f("fk_contact_merges_target_contact_id_contacts")
        ),
        sa.ForeignKeyConstraint(
            ["source_contact_id"], ["contacts.id"], name=op.f("fk_contact_merges_source_contact_id_contacts")
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_contact_merges")),
    )
    op.create_index(
        op.f("ix_contact_merges_target_contact_id_created_at"),
        "contact_merges",
        ["target_contact_id", "created_at"],
        unique=False,
    )
    op.create_index(
        op.f("ix_contact_merges_source_contact_id_created_at"),
        "contact_merges",
        ["source_contact_id", "created_at"],
        unique=False,
    )

    op.create_table(
        "saved_replies",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("workspace_id", sa.Uuid(), nullable=False),
        sa.Column("shortcut", sa.String(length=64), nullable=False),
        sa.Column("title", sa.String(length=200), nullable=False),
        sa.Column("body", sa.Text(), nullable=False),
        sa.Column("created_by_id", sa.Uuid(), nullable=True),
        sa.Column("created_at", TIME, nullable=False),
        sa.Column("updated_at", TIME, nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_saved_replies_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.ForeignKeyConstraint(
            ["created_by_id"],
            ["users.id"],
            name=op.f("fk_saved_replies_created_by_id_users"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_saved_replies")),
        sa.UniqueConstraint("workspace_id", "shortcut", name=op.f("uq_saved_replies_workspace_id_shortcut")),
    )


def downgrade() -> None:
    op.drop_table("saved_replies")
    op.drop_index(op.f("ix_contact_merges_source_contact_id_created_at"), table_name="contact_merges")
    op.drop_index(op.f("ix_contact_merges_target_contact_id_created_at"), table_name="contact_merges")
    op.drop_table("contact_merges")
    op.drop_index(op.f("ix_messages_author_identity_id_conversation_id"), table_name="messages")
    op.drop_index(op.f("ix_contacts_workspace_id_created_at_id"), table_name="contacts")
    op.drop_index(op.f("ix_contacts_merged_into_id"), table_name="contacts")
    if op.get_bind().dialect.name == "postgresql":
        op.drop_constraint(op.f("fk_contacts_merged_into_id_contacts"), "contacts", type_="foreignkey")
    # SQLite (3.35+) drops a column whose foreign key is declared inline with it, in place.
    for column in ("merged_at", "merged_into_id", "attributes", "phone", "email"):
        op.drop_column("contacts", column)
