"""``/v1/labels``: the workspace's label catalogue."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Response, status

from services.inbox.dependencies import AdminDep, PrincipalDep, StateDep
from services.inbox.endpoints.workflow import publish
from services.inbox.models import Label
from services.inbox.schemas.people import Catalogue, LabelCreate, LabelOut, LabelUpdate
from services.inbox.service import labels as service
from shared.events import utcnow

router = APIRouter(prefix="/v1/labels", tags=["labels"])

_NAME_TAKEN: dict[int | str, dict[str, Any]] = {
    409: {"description": "The catalogue already has a label of this name, whatever its case"}
}


def _label_out(label: Label) -> LabelOut:
    return LabelOut.model_validate(label, from_attributes=True)


@router.get("")
async def list_labels(principal: PrincipalDep, state: StateDep) -> Catalogue[LabelOut]:
    """The workspace's label catalogue by name."""
    async with state.reading() as session:
        labels = await service.list_labels(session, principal.workspace_id)
    return Catalogue[LabelOut](data=[_label_out(label) for label in labels])


@router.get("/{label_id}")
async def get_label(label_id: UUID, principal: PrincipalDep, state: StateDep) -> LabelOut:
    """One label of the catalogue."""
    async with state.reading() as session:
        label = await service.get_label(session, principal.workspace_id, label_id)
    return _label_out(label)


@router.post("", status_code=status.HTTP_201_CREATED, responses=_NAME_TAKEN)
async def create_label(
    body: LabelCreate, principal: AdminDep, state: StateDep, response: Response
) -> LabelOut:
    """Add a label to the catalogue (admins only)."""
    async with state.transaction() as session:
        label = await service.create_label(
            session, principal, name=body.name, color=body.color, description=body.description, now=utcnow()
        )
    response.headers["Location"] = f"/v1/labels/{label.id}"
    return _label_out(label)


@router.patch("/{label_id}", responses=_NAME_TAKEN)
async def update_label(label_id: UUID, body: LabelUpdate, principal: AdminDep, state: StateDep) -> LabelOut:
    """Rename, recolour or redescribe a label (admins only); conversations keep it."""
    changes: dict[str, Any] = {field: getattr(body, field) for field in body.model_fields_set}
    async with state.transaction() as session:
        label = await service.update_label(session, principal, label_id, now=utcnow(), **changes)
    return _label_out(label)


@router.delete("/{label_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_label(label_id: UUID, principal: AdminDep, state: StateDep) -> None:
    """Remove a label from the catalogue and from every conversation that carries it (admins only)."""
    async with state.transaction() as session:
        entries = await service.delete_label(session, principal, label_id, utcnow())
    await publish(state, entries)
