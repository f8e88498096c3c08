"""``/v1/contacts``: the people behind the messages."""

from __future__ import annotations

from uuid import UUID

from fastapi import APIRouter

from services.inbox.dependencies import PrincipalDep, StateDep
from services.inbox.schemas import ContactOut, IdentityOut
from services.inbox.service import conversations as service

router = APIRouter(prefix="/v1/contacts", tags=["contacts"])


@router.get("/{contact_id}")
async def get_contact(contact_id: UUID, principal: PrincipalDep, state: StateDep) -> ContactOut:
    """A contact with every platform identity it is known by."""
    async with state.reading() as session:
        contact, identities = await service.get_contact(session, principal.workspace_id, contact_id)
    return ContactOut(
        id=contact.id,
        name=contact.name,
        created_at=contact.created_at,
        updated_at=contact.updated_at,
        identities=[
            IdentityOut(
                id=i.id,
                namespace=i.namespace,
                external_id=i.external_id,
                handle=i.handle,
                name=i.display_name,
                created_at=i.created_at,
            )
            for i in identities
        ],
    )
