"""What contacts keep beyond the store's rows: the merges of one contact into another."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index
from sqlalchemy.orm import Mapped, mapped_column

from services.inbox.models.base import Base


class ContactMerge(Base):
    """One contact (the source) merged into another (the target), with what it takes to undo it.

    ``target_before``/``source_before`` are both rows as they were just before the merge and
    ``target_after``/``source_after`` as the merge left them (JSON-ready snapshots);
    ``identity_ids`` are the identities that moved from the source to the target.
    """

    __tablename__ = "contact_merges"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    target_contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id"))
    source_contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id"))
    identity_ids: Mapped[list[Any]]
    target_before: Mapped[dict[str, Any]]
    source_before: Mapped[dict[str, Any]]
    target_after: Mapped[dict[str, Any]]
    source_after: Mapped[dict[str, Any]]
    merged_by_token_id: Mapped[uuid.UUID | None]
    merged_by_user_id: Mapped[uuid.UUID | None]
    created_at: Mapped[datetime]
    undone_at: Mapped[datetime | None]
    undone_by_token_id: Mapped[uuid.UUID | None]
    undone_by_user_id: Mapped[uuid.UUID | None]

    __table_args__ = (
        Index(None, "target_contact_id", "created_at"),
        Index(None, "source_contact_id", "created_at"),
    )
