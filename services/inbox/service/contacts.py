"""Contacts: reading and searching them, editing their profile, merging two and undoing a merge.

A merge moves every identity of the source contact to the target (and with them the conversations
they wrote in), fills the target's empty fields from the source, and hides the source
(``merged_into_id``). The merge record keeps both rows as they were before and as the merge left
them, so an undo puts back exactly what the merge changed; see ``docs/contacts.md`` for the rules.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.inbox.errors import (
    ContactMerged,
    ContactMergeNotFound,
    ContactMergeNotUndoable,
    ContactMergeRefused,
    ContactNotFound,
)
from services.inbox.models import Contact, ContactMerge, Identity
from services.inbox.repository import contacts as repo
from services.inbox.repository.contacts import ContactFilter
from services.inbox.repository.reads import ConversationRows
from services.inbox.service.access import Principal
from services.inbox.service.events import announce, audit
from shared.errors import ValidationFailed
from shared.events.domain import DomainChange

PROFILE_FIELDS = ("name", "email", "phone")
"""The fields a merge fills on the target when they are empty there."""
MAX_ATTRIBUTES = 100
_ABSENT = object()


@dataclass(frozen=True)
class ContactView:
    """A contact with its identities."""

    contact: Contact
    identities: list[Identity]


@dataclass
class MergeOutcome:
    """A merge or its undoing: the record, both contacts now, and the events to publish."""

    merge: ContactMerge
    target: ContactView
    source: ContactView
    outbox_ids: list[str] = field(default_factory=list)


def snapshot(contact: Contact) -> dict[str, Any]:
    """A contact's row, JSON-ready, exactly enough to put it back."""
    return {
        "id": str(contact.id),
        "name": contact.name,
        "email": contact.email,
        "phone": contact.phone,
        "attributes": dict(contact.attributes),
        "merged_into_id": str(contact.merged_into_id) if contact.merged_into_id else None,
        "merged_at": contact.merged_at.isoformat() if contact.merged_at else None,
        "created_at": contact.created_at.isoformat(),
        "updated_at": contact.updated_at.isoformat(),
    }


def _set(contact: Contact, name: str, value: Any) -> None:
    """Set a field from its snapshot form."""
    if name == "merged_into_id":
        contact.merged_into_id = uuid.UUID(value) if value else None
    elif name in ("merged_at", "updated_at"):
        setattr(contact, name, datetime.fromisoformat(value) if value else None)
    elif name == "attributes":
        contact.attributes = dict(value)
    else:
        setattr(contact, name, value)


def filled_fields(merge: ContactMerge) -> list[str]:
    """What the merge filled on the target: profile fields, then ``attributes.<key>`` per key."""
    before, after = merge.target_before, merge.target_after
    filled = [name for name in PROFILE_FIELDS if before[name] != after[name]]
    filled += [f"attributes.{key}" for key in after["attributes"] if key not in before["attributes"]]
    return filled


def _changes(before: dict[str, Any], after: dict[str, Any]) -> dict[str, Any]:
    return {
        name: {"before": before[name], "after": after[name]}
        for name in before
        if name != "updated_at" and before[name] != after[name]
    }


async def _view(session: AsyncSession, contact: Contact) -> ContactView:
    identities = await repo.identities_of(session, [contact.id])
    return ContactView(contact, identities.get(contact.id, []))


async def list_contacts(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    where: ContactFilter,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[ContactView]:
    """A page of the workspace's visible contacts with their identities, newest first."""
    contacts = await repo.list_contacts(session, workspace_id, where, before, limit)
    identities = await repo.identities_of(session, [c.id for c in contacts])
    return [ContactView(c, identities.get(c.id, [])) for c in contacts]


async def _contact(session: AsyncSession, workspace_id: uuid.UUID, contact_id: uuid.UUID) -> Contact:
    contact = await repo.get_contact(session, workspace_id, contact_id)
    if contact is None:
        raise ContactNotFound(f"contact {contact_id} not found")
    return contact


async def get_contact(session: AsyncSession, workspace_id: uuid.UUID, contact_id: uuid.UUID) -> ContactView:
    """A contact and its identities (a merged-away one too: it shows where it went), or ContactNotFound."""
    return await _view(session, await _contact(session, workspace_id, contact_id))


def _refuse_merged(contact: Contact, doing: str) -> None:
    if contact.merged_into_id is not None:
        raise ContactMerged(
            f"contact {contact.id} was merged into contact {contact.merged_into_id}: {doing}",
            errors=[{"contact_id": str(contact.id), "merged_into_id": str(contact.merged_into_id)}],
        )


async def update_contact(
    session: AsyncSession,
    principal: Principal,
    contact_id: uuid.UUID,
    wanted: dict[str, Any],
    now: datetime,
) -> tuple[ContactView, list[str]]:
    """Change a contact's profile; ``wanted`` holds only the fields sent (``None`` clears one, and
    ``attributes`` is merged key by key, ``None`` removing a key). Audited and announced when
    something changed; returns the contact and the outbox ids to publish."""
    contacts = await repo.contacts_for_update(session, principal.workspace_id, [contact_id])
    contact = contacts.get(contact_id)
    if contact is None:
        raise ContactNotFound(f"contact {contact_id} not found")
    _refuse_merged(contact, "edit that contact instead")
    before = snapshot(contact)
    for name in PROFILE_FIELDS:
        if name in wanted:
            setattr(contact, name, wanted[name])
    if wanted.get("attributes") is not None:
        attributes = dict(contact.attributes)
        for key, value in wanted["attributes"].items():
            if value is None:
                attributes.pop(key, None)
            else:
                attributes[key] = value
        if len(attributes) > MAX_ATTRIBUTES:
            raise ValidationFailed(
                f"a contact has at most {MAX_ATTRIBUTES} attributes",
                errors=[{"field": "body.attributes", "message": f"at most {MAX_ATTRIBUTES} attributes"}],
            )
        contact.attributes = attributes
    changes = _changes(before, snapshot(contact))
    if not changes:
        return await _view(session, contact), []
    contact.updated_at = now
    after = snapshot(contact)
    await audit(
        session,
        principal,
        action="contact.update",
        target_type="contact",
        target_id=contact.id,
        now=now,
        before={name: change["before"] for name, change in changes.items()},
        after={name: change["after"] for name, change in changes.items()},
    )
    event = await announce(
        session,
        principal.workspace_id,
        "contact.updated",
        DomainChange(contact_id=contact.id, actor_user_id=principal.user_id, changes=changes, data=after),
        now,
    )
    return await _view(session, contact), [event]


async def merge_contacts(
    session: AsyncSession,
    principal: Principal,
    target_id: uuid.UUID,
    source_id: uuid.UUID,
    now: datetime,
) -> MergeOutcome:
    """Merge ``source_id`` into ``target_id``: identities move, empty target fields are filled from
    the source, and the source is hidden. Audited and announced (``contact.merged``)."""
    if target_id == source_id:
        raise ContactMergeRefused("a contact cannot be merged with itself")
    contacts = await repo.contacts_for_update(session, principal.workspace_id, [target_id, source_id])
    for contact_id in (target_id, source_id):
        if contact_id not in contacts:
            raise ContactNotFound(f"contact {contact_id} not found")
    target, source = contacts[target_id], contacts[source_id]
    _refuse_merged(target, "merge into that contact instead")
    _refuse_merged(source, "it is part of that contact already")
    target_before, source_before = snapshot(target), snapshot(source)

    moved = await repo.move_identities(
        session, principal.workspace_id, from_contact=source.id, to_contact=target.id
    )
    for name in PROFILE_FIELDS:
        if not getattr(target, name) and getattr(source, name):
            setattr(target, name, getattr(source, name))
    target.attributes = {**source.attributes, **target.attributes}
    target.updated_at = now
    source.merged_into_id = target.id
    source.merged_at = now
    source.updated_at = now
    target_after, source_after = snapshot(target), snapshot(source)

    merge = ContactMerge(
        id=uuid.uuid4(),
        workspace_id=principal.workspace_id,
        target_contact_id=target.id,
        source_contact_id=source.id,
        identity_ids=[str(i) for i in moved],
        target_before=target_before,
        source_before=source_before,
        target_after=target_after,
        source_after=source_after,
        merged_by_token_id=principal.token_id,
        merged_by_user_id=principal.user_id,
        created_at=now,
        undone_at=None,
        undone_by_token_id=None,
        undone_by_user_id=None,
    )
    await repo.add_merge(session, merge)
    return await _recorded(
        session,
        principal,
        merge,
        target,
        source,
        undo=False,
        before=(target_before, source_before),
        after=(target_after, source_after),
        now=now,
    )


async def _recorded(
    session: AsyncSession,
    principal: Principal,
    merge: ContactMerge,
    target: Contact,
    source: Contact,
    *,
    undo: bool,
    before: tuple[dict[str, Any], dict[str, Any]],
    after: tuple[dict[str, Any], dict[str, Any]],
    now: datetime,
) -> MergeOutcome:
    """Audit a merge or its undo (both contacts, before and after) and announce it."""
    detail = {"merge_id": str(merge.id), "identity_ids": merge.identity_ids}
    await audit(
        session,
        principal,
        action="contact.unmerge" if undo else "contact.merge",
        target_type="contact",
        target_id=target.id,
        now=now,
        before={"target": before[0], "source": before[1]},
        after={"target": after[0], "source": after[1]},
        detail=detail,
    )
    event = await announce(
        session,
        principal.workspace_id,
        "contact.unmerged" if undo else "contact.merged",
        DomainChange(
            contact_id=target.id,
            actor_user_id=principal.user_id,
            changes=_changes(before[0], after[0]),
            data={**detail, "source_contact_id": str(source.id), "contact": after[0]},
        ),
        now,
    )
    return MergeOutcome(merge, await _view(session, target), await _view(session, source), [event])


def _revert(contact: Contact, before: dict[str, Any], after: dict[str, Any], now: datetime) -> None:
    """Put back what the merge changed on a contact.

    Untouched since the merge, the row gets back exactly as it was (its ``updated_at`` too).
    Otherwise each field the merge changed is put back if it still holds the merge's value, and what
    was edited since is kept.
    """
    current = snapshot(contact)
    if current == after:
        for name, value in before.items():
            if name not in ("id", "created_at"):
                _set(contact, name, value)
        return
    for name in (*PROFILE_FIELDS, "merged_into_id", "merged_at"):
        if before[name] != after[name] and current[name] == after[name]:
            _set(contact, name, before[name])
    attributes = dict(contact.attributes)
    for key in {*before["attributes"], *after["attributes"]}:
        was, left = before["attributes"].get(key, _ABSENT), after["attributes"].get(key, _ABSENT)
        if was != left and attributes.get(key, _ABSENT) == left:
            if was is _ABSENT:
                attributes.pop(key, None)
            else:
                attributes[key] = was
    contact.attributes = attributes
    contact.updated_at = now


async def undo_merge(
    session: AsyncSession, principal: Principal, merge_id: uuid.UUID, now: datetime
) -> MergeOutcome:
    """Undo a merge: the identities it moved go back to the source, both rows get back what the merge
    changed, and the source is visible again. Refused (409) when that cannot be done exactly."""
    merge = await repo.get_merge(session, principal.workspace_id, merge_id, for_update=True)
    if merge is None:
        raise ContactMergeNotFound(f"contact merge {merge_id} not found")
    if merge.undone_at is not None:
        raise ContactMergeNotUndoable(
            f"contact merge {merge_id} was already undone", code="contact_merge_already_undone"
        )
    contacts = await repo.contacts_for_update(
        session, principal.workspace_id, [merge.target_contact_id, merge.source_contact_id]
    )
    target, source = contacts[merge.target_contact_id], contacts[merge.source_contact_id]
    if target.merged_into_id is not None:
        raise ContactMergeNotUndoable(
            f"contact {target.id} has since been merged into contact {target.merged_into_id}: "
            "undo that merge first",
            code="contact_merge_target_merged",
            errors=[{"contact_id": str(target.id), "merged_into_id": str(target.merged_into_id)}],
        )
    if source.merged_into_id != target.id:
        raise ContactMergeNotUndoable(f"contact {source.id} is no longer merged into contact {target.id}")
    expected = sorted(uuid.UUID(i) for i in merge.identity_ids)
    moved = await repo.move_identities(
        session, principal.workspace_id, from_contact=target.id, to_contact=source.id, only=expected
    )
    if moved != expected:
        # Raising rolls the whole transaction back, the identities moved so far included.
        raise ContactMergeNotUndoable(
            f"some identities of contact merge {merge_id} are no longer on contact {target.id}"
        )
    target_before, source_before = snapshot(target), snapshot(source)
    _revert(target, merge.target_before, merge.target_after, now)
    _revert(source, merge.source_before, merge.source_after, now)
    target_after, source_after = snapshot(target), snapshot(source)
    merge.undone_at = now
    merge.undone_by_token_id = principal.token_id
    merge.undone_by_user_id = principal.user_id

    return await _recorded(
        session,
        principal,
        merge,
        target,
        source,
        undo=True,
        before=(target_before, source_before),
        after=(target_after, source_after),
        now=now,
    )


async def list_merges(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    contact_id: uuid.UUID,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[ContactMerge]:
    """The merges a contact took part in, newest first (ContactNotFound if there is no such contact)."""
    await _contact(session, workspace_id, contact_id)
    return await repo.list_merges(session, workspace_id, contact_id, before, limit)


async def get_merge(session: AsyncSession, workspace_id: uuid.UUID, merge_id: uuid.UUID) -> ContactMerge:
    """A merge of the workspace, or ContactMergeNotFound."""
    merge = await repo.get_merge(session, workspace_id, merge_id)
    if merge is None:
        raise ContactMergeNotFound(f"contact merge {merge_id} not found")
    return merge


async def contact_conversations(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    contact_id: uuid.UUID,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
    reader: uuid.UUID | None,
) -> ConversationRows:
    """The conversations a contact's identities wrote in, newest activity first (ContactNotFound if
    there is no such contact; a merged-away contact has none: they moved with its identities)."""
    await _contact(session, workspace_id, contact_id)
    return await repo.contact_conversations(session, workspace_id, contact_id, before, limit, reader)
