"""``/v1/contacts``: the people behind the messages, their profiles, and merging them."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query
from sqlalchemy.exc import SQLAlchemyError

from services.inbox.dependencies import AgentDep, PrincipalDep, StateDep
from services.inbox.endpoints.shapes import conversations_out
from services.inbox.errors import InvalidCursor
from services.inbox.models import ContactMerge, Identity
from services.inbox.outbox import publish_outbox
from services.inbox.repository.contacts import ContactFilter
from services.inbox.schemas import ConversationOut, IdentityOut, Page
from services.inbox.schemas.contacts import (
    ContactMergeOut,
    ContactOut,
    ContactUpdate,
    MergeCreate,
    MergeResultOut,
)
from services.inbox.service import contacts as service
from services.inbox.service.contacts import ContactView, MergeOutcome
from services.inbox.state import InboxState
from shared.bus.client import BusUnavailable
from shared.events import utcnow
from shared.http.pagination import CursorError, decode_cursor, encode_cursor
from shared.logging import get_logger

log = get_logger(__name__)

router = APIRouter(prefix="/v1/contacts", tags=["contacts"])

Limit = Annotated[int, Query(ge=1, le=200, description="Page size (1-200).")]


def _identity(identity: Identity) -> IdentityOut:
    return IdentityOut(
        id=identity.id,
        namespace=identity.namespace,
        external_id=identity.external_id,
        handle=identity.handle,
        name=identity.display_name,
        created_at=identity.created_at,
    )


def contact_out(view: ContactView) -> ContactOut:
    """The API shape of a contact."""
    contact = view.contact
    return ContactOut(
        id=contact.id,
        name=contact.name,
        email=contact.email,
        phone=contact.phone,
        attributes=contact.attributes,
        identities=[_identity(i) for i in view.identities],
        merged_into_id=contact.merged_into_id,
        merged_at=contact.merged_at,
        created_at=contact.created_at,
        updated_at=contact.updated_at,
    )


def _merge(merge: ContactMerge) -> ContactMergeOut:
    return ContactMergeOut(
        id=merge.id,
        target_contact_id=merge.target_contact_id,
        source_contact_id=merge.source_contact_id,
        identity_ids=[UUID(i) for i in merge.identity_ids],
        filled_fields=service.filled_fields(merge),
        merged_by_user_id=merge.merged_by_user_id,
        created_at=merge.created_at,
        undone_at=merge.undone_at,
        undone_by_user_id=merge.undone_by_user_id,
    )


def _result(outcome: MergeOutcome) -> MergeResultOut:
    return MergeResultOut(
        merge=_merge(outcome.merge), target=contact_out(outcome.target), source=contact_out(outcome.source)
    )


def cursor_position(cursor: str | None, *types: type) -> tuple[Any, ...] | None:
    if cursor is None:
        return None
    try:
        return decode_cursor(cursor, *types)
    except CursorError as exc:
        raise InvalidCursor(f"The cursor is not valid here: {exc}.") from exc


async def _publish(state: InboxState, ids: list[str]) -> None:
    """Publish the events of a committed change; what fails here the worker's outbox sweep publishes."""
    if not ids:
        return
    try:
        await publish_outbox(state.sessions, state.read_sessions, state.bus, ids=ids)
    except (BusUnavailable, SQLAlchemyError) as exc:
        log.warning("inbox.contacts.publish_deferred", count=len(ids), error=str(exc))


@router.get("")
async def list_contacts(
    principal: PrincipalDep,
    state: StateDep,
    q: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=200,
            description="Case-insensitive text in the name, email, phone, or an identity's handle or name.",
        ),
    ] = None,
    namespace: Annotated[
        str | None,
        Query(
            min_length=1,
            max_length=128,
            description="Only contacts with an identity here: a platform (telegram, reddit, webhook) "
            "or one webhook source (webhook:<channel id>).",
        ),
    ] = None,
    cursor: str | None = None,
    limit: Limit = 50,
) -> Page[ContactOut]:
    """Contacts with their identities, newest first, with keyset pagination.

    Contacts merged into another are not listed (their identities are on the contact they were
    merged into).
    """
    before = cursor_position(cursor, datetime, UUID)
    where = ContactFilter(q=q, namespace=namespace)
    async with state.reading() as session:
        views = await service.list_contacts(session, principal.workspace_id, where, before, limit + 1)
    page = views[:limit]
    last = page[-1].contact if page else None
    return Page[ContactOut](
        data=[contact_out(v) for v in page],
        has_more=len(views) > limit,
        next_cursor=encode_cursor(last.created_at, last.id) if last else cursor,
    )


@router.get("/merges/{merge_id}")
async def get_merge(merge_id: UUID, principal: PrincipalDep, state: StateDep) -> ContactMergeOut:
    """One contact merge."""
    async with state.reading() as session:
        merge = await service.get_merge(session, principal.workspace_id, merge_id)
    return _merge(merge)


@router.post("/merges/{merge_id}/undo")
async def undo_merge(merge_id: UUID, principal: AgentDep, state: StateDep) -> MergeResultOut:
    """Undo a merge: its identities (and their conversations) go back to the source contact, both
    contacts get back what the merge changed, and the source is listed again.

    409 when that cannot be done exactly: the merge was already undone
    (``contact_merge_already_undone``), or the target has since been merged into another contact
    (``contact_merge_target_merged``: undo that merge first).
    """
    async with state.transaction() as session:
        outcome = await service.undo_merge(session, principal, merge_id, utcnow())
    await _publish(state, outcome.outbox_ids)
    return _result(outcome)


@router.get("/{contact_id}")
async def get_contact(contact_id: UUID, principal: PrincipalDep, state: StateDep) -> ContactOut:
    """A contact with every platform identity it is known by.

    A contact merged into another is still found here, with ``merged_into_id`` naming that contact
    and no identities (they moved there).
    """
    async with state.reading() as session:
        view = await service.get_contact(session, principal.workspace_id, contact_id)
    return contact_out(view)


@router.patch("/{contact_id}")
async def update_contact(
    contact_id: UUID, body: ContactUpdate, principal: AgentDep, state: StateDep
) -> ContactOut:
    """Edit a contact's name, email, phone or attributes; only the fields sent change.

    ``attributes`` is merged into the stored ones key by key (a key set to null is removed). A
    contact merged into another answers 409 ``contact_merged``: edit that one.
    """
    wanted = body.model_dump(exclude_unset=True)
    async with state.transaction() as session:
        view, outbox_ids = await service.update_contact(session, principal, contact_id, wanted, utcnow())
    await _publish(state, outbox_ids)
    return contact_out(view)


@router.get("/{contact_id}/conversations")
async def contact_conversations(
    contact_id: UUID,
    principal: PrincipalDep,
    state: StateDep,
    cursor: str | None = None,
    limit: Limit = 50,
) -> Page[ConversationOut]:
    """The conversations the contact's identities wrote in, most recent activity first.

    Merging contacts moves conversations with the identities; undoing the merge moves them back.
    """
    before = cursor_position(cursor, datetime, UUID)
    async with state.reading() as session:
        rows = await service.contact_conversations(
            session, principal.workspace_id, contact_id, before, limit + 1, principal.user_id
        )
    page = rows.first(limit)
    return Page[ConversationOut](
        data=conversations_out(page),
        has_more=len(rows) > limit,
        next_cursor=encode_cursor(*page.position(-1)) if page else cursor,
    )


@router.get("/{contact_id}/merges")
async def list_merges(
    contact_id: UUID,
    principal: PrincipalDep,
    state: StateDep,
    cursor: str | None = None,
    limit: Limit = 50,
) -> Page[ContactMergeOut]:
    """The merges the contact took part in, as target or source, newest first (undone ones too)."""
    before = cursor_position(cursor, datetime, UUID)
    async with state.reading() as session:
        merges = await service.list_merges(session, principal.workspace_id, contact_id, before, limit + 1)
    page = merges[:limit]
    last = page[-1] if page else None
    return Page[ContactMergeOut](
        data=[_merge(m) for m in page],
        has_more=len(merges) > limit,
        next_cursor=encode_cursor(last.created_at, last.id) if last else cursor,
    )


@router.post("/{contact_id}/merge", status_code=201)
async def merge_contacts(
    contact_id: UUID, body: MergeCreate, principal: AgentDep, state: StateDep
) -> MergeResultOut:
    """Merge another contact (the source) into this one.

    The source's identities move here, and with them the conversations they wrote in; this
    contact's empty fields (name, email, phone, attributes it lacks) are filled from the source;
    the source is hidden from lists and answers with ``merged_into_id``. The merge can be undone
    exactly with ``POST /v1/contacts/merges/{merge_id}/undo``. 409 for a contact merged with itself
    (``contact_merge_refused``) or one already merged away (``contact_merged``).
    """
    async with state.transaction() as session:
        outcome = await service.merge_contacts(
            session, principal, contact_id, body.source_contact_id, utcnow()
        )
    await _publish(state, outcome.outbox_ids)
    return _result(outcome)
