"""The people who work the inbox and what they organise it with: users, teams, labels, read state."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy import ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.inbox.models.base import Base


class User(Base):
    """A person of a workspace with a role: admin, agent or viewer. Deactivated users keep their history."""

    __tablename__ = "users"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    email: Mapped[str | None] = mapped_column(String(320))
    role: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    deactivated_at: Mapped[datetime | None]

    __table_args__ = (UniqueConstraint("workspace_id", "email"),)


class Team(Base):
    """A group of users conversations can be routed to."""

    __tablename__ = "teams"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("workspace_id", "name"),)


class TeamMember(Base):
    """A user's membership of a team."""

    __tablename__ = "team_members"

    team_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("teams.id", ondelete="CASCADE"), primary_key=True)
    user_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("users.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class Label(Base):
    """A label of the workspace's catalogue; conversations carry labels from it only."""

    __tablename__ = "labels"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    color: Mapped[str | None] = mapped_column(String(7))
    description: Mapped[str | None] = mapped_column(Text)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("workspace_id", "name"),)


class ConversationLabel(Base):
    """A label on a conversation. It carries copies of its conversation's ``last_activity_at`` and
    ``priority`` (``repository/list_columns.py`` keeps them), so that its index gives a label's
    conversations in list order, with their priority at hand."""

    __tablename__ = "conversation_labels"

    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    label_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("labels.id", ondelete="CASCADE"), primary_key=True)
    last_activity_at: Mapped[datetime]
    priority: Mapped[str | None] = mapped_column(String(8))

    __table_args__ = (
        Index(
            "ix_conversation_labels_list_order",
            "label_id",
            "last_activity_at",
            "conversation_id",
            postgresql_include=["priority"],
        ),
    )


class ConversationRead(Base):
    """How far a user has read a conversation: every message up to ``read_up_to`` (its send time)."""

    __tablename__ = "conversation_reads"

    user_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    conversation_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("conversations.id", ondelete="CASCADE"), primary_key=True
    )
    read_up_to: Mapped[datetime]
    updated_at: Mapped[datetime]
