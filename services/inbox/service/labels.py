"""The workspace's label catalogue: conversations carry labels from it only."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.inbox.errors import LabelNameTaken, LabelNotFound
from services.inbox.models import Label
from services.inbox.repository import list_columns
from services.inbox.repository import users as repo
from services.inbox.repository import workflow as workflow_repo
from services.inbox.service import workflow
from services.inbox.service.access import Principal
from services.inbox.service.events import audit

_UNSET: Any = object()
"""Marks a field the caller did not send (``None`` clears it)."""


def _snapshot(label: Label) -> dict[str, Any]:
    return {"name": label.name, "color": label.color, "description": label.description}


async def _refuse_taken_name(
    session: AsyncSession, workspace_id: uuid.UUID, name: str, keep: uuid.UUID | None = None
) -> None:
    # Names compare case-insensitively (in Python, so non-ASCII letters fold alike on SQLite and
    # PostgreSQL); a catalogue is small. Two admins racing with "Bug" and "bug" could both pass: the
    # exact-name constraint still refuses identical names.
    folded = name.casefold()
    for label_id, other in (await repo.label_names(session, workspace_id)).items():
        if label_id != keep and other.casefold() == folded:
            raise LabelNameTaken(f"The catalogue already has a label named {other!r}.")


async def list_labels(session: AsyncSession, workspace_id: uuid.UUID) -> list[Label]:
    """The catalogue, by name."""
    return await repo.list_labels(session, workspace_id)


async def get_label(
    session: AsyncSession, workspace_id: uuid.UUID, label_id: uuid.UUID, *, for_update: bool = False
) -> Label:
    """A label of the catalogue; 404 otherwise."""
    label = await repo.get_label(session, workspace_id, label_id, for_update=for_update)
    if label is None:
        raise LabelNotFound(f"label {label_id} not found")
    return label


async def create_label(
    session: AsyncSession,
    principal: Principal,
    *,
    name: str,
    color: str | None,
    description: str | None,
    now: datetime,
) -> Label:
    """An admin adds a label to the catalogue."""
    await _refuse_taken_name(session, principal.workspace_id, name)
    label = Label(
        id=uuid.uuid4(),
        workspace_id=principal.workspace_id,
        name=name,
        color=color,
        description=description,
        created_at=now,
        updated_at=now,
    )
    await repo.add(session, label)
    if not await repo.flush(session):
        raise LabelNameTaken(f"The catalogue already has a label named {name!r}.")
    await audit(
        session, principal, action="label.created", target_type="label", target_id=label.id, now=now,
        after=_snapshot(label),
    )  # fmt: skip
    return label


async def update_label(
    session: AsyncSession,
    principal: Principal,
    label_id: uuid.UUID,
    *,
    now: datetime,
    name: str | None = None,
    color: str | None = _UNSET,
    description: str | None = _UNSET,
) -> Label:
    """An admin renames, recolours or redescribes a label; conversations keep it."""
    label = await get_label(session, principal.workspace_id, label_id)
    before = _snapshot(label)
    if name is not None and name != label.name:
        await _refuse_taken_name(session, principal.workspace_id, name, keep=label.id)
        label.name = name
    if color is not _UNSET:
        label.color = color
    if description is not _UNSET:
        label.description = description
    if _snapshot(label) == before:
        return label
    label.updated_at = now
    if not await repo.flush(session):
        raise LabelNameTaken(f"The catalogue already has a label named {name!r}.")
    if (label.name, label.color) != (before["name"], before["color"]):
        await list_columns.refresh_label(session, label.id)
    await audit(
        session, principal, action="label.updated", target_type="label", target_id=label.id, now=now,
        before=before, after=_snapshot(label),
    )  # fmt: skip
    return label


async def delete_label(
    session: AsyncSession, principal: Principal, label_id: uuid.UUID, now: datetime
) -> list[str]:
    """An admin removes a label from the catalogue, and so from every conversation that carried it
    (each one changes version, is audited and announced, as if an agent had taken the label off).
    Returns the outbox ids of those announcements."""
    # Locked first: a conversation given the label while it is being deleted would otherwise lose
    # it by the foreign key's cascade and still show it in its lists.
    label = await get_label(session, principal.workspace_id, label_id, for_update=True)
    labelled = await workflow_repo.conversations_labelled(session, label.id)
    _, _, changed = await workflow.bulk_update(
        session, principal, labelled, {"remove_labels": [label.id]}, now, action="conversation.label_deleted"
    )
    before = _snapshot(label)
    await repo.delete_row(session, label)
    await audit(
        session, principal, action="label.deleted", target_type="label", target_id=label_id, now=now,
        before=before,
    )  # fmt: skip
    return changed.outbox_ids
