"""Statements behind contacts: listing and search, profile updates, merges and their undoing."""

from __future__ import annotations

from collections.abc import Collection
from dataclasses import dataclass
from datetime import datetime
from uuid import UUID

from sqlalchemy import ColumnElement, and_, func, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import QueryableAttribute

from services.inbox.models import Contact, ContactMerge, Conversation, Identity, Message

# The conversation list's own query and shaping, so a contact's conversations come out exactly
# like the inbox's.
from services.inbox.repository.reads import (
    ConversationRows,
    conversation_rows,
    newest_first,
    page_values,
    read_rows,
    row_params,
)


@dataclass(frozen=True)
class ContactFilter:
    """What ``GET /v1/contacts`` narrows by."""

    q: str | None = None
    """A case-insensitive substring of the name, email, phone, or an identity's handle or name."""
    namespace: str | None = None
    """Contacts with an identity in this namespace (``webhook`` matches every webhook source)."""


def _like(text: str) -> str:
    escaped = text.lower().replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")
    return f"%{escaped}%"


def _contains(column: QueryableAttribute[str | None], pattern: str) -> ColumnElement[bool]:
    return func.lower(column).like(pattern, escape="\\")


def _namespace_clause(namespace: str) -> ColumnElement[bool]:
    if ":" in namespace:
        return Identity.namespace == namespace
    # A platform name also matches its per-source namespaces (``webhook`` -> ``webhook:<channel>``).
    return or_(Identity.namespace == namespace, Identity.namespace.like(f"{namespace}:%"))


async def list_contacts(
    session: AsyncSession,
    workspace_id: UUID,
    where: ContactFilter,
    before: tuple[datetime, UUID] | None,
    limit: int,
) -> list[Contact]:
    """Visible contacts (not merged away), newest first, strictly after the keyset position ``before``."""
    query = select(Contact).where(Contact.workspace_id == workspace_id, Contact.merged_into_id.is_(None))
    if where.q:
        pattern = _like(where.q)
        query = query.where(
            or_(
                _contains(Contact.name, pattern),
                _contains(Contact.email, pattern),
                _contains(Contact.phone, pattern),
                select(Identity.id)
                .where(
                    Identity.contact_id == Contact.id,
                    or_(_contains(Identity.handle, pattern), _contains(Identity.display_name, pattern)),
                )
                .exists(),
            )
        )
    if where.namespace:
        query = query.where(
            select(Identity.id)
            .where(Identity.contact_id == Contact.id, _namespace_clause(where.namespace))
            .exists()
        )
    if before is not None:
        at, contact_id = before
        query = query.where(
            or_(Contact.created_at < at, and_(Contact.created_at == at, Contact.id < contact_id))
        )
    query = query.order_by(Contact.created_at.desc(), Contact.id.desc()).limit(limit)
    return list((await session.scalars(query)).all())


async def get_contact(session: AsyncSession, workspace_id: UUID, contact_id: UUID) -> Contact | None:
    """A contact of the workspace (merged away or not)."""
    return await session.scalar(
        select(Contact).where(Contact.id == contact_id, Contact.workspace_id == workspace_id)
    )


async def contacts_for_update(
    session: AsyncSession, workspace_id: UUID, contact_ids: Collection[UUID]
) -> dict[UUID, Contact]:
    """The workspace's contacts among these ids, locked in key order for the rest of the transaction
    (PostgreSQL; SQLite writers are serialised already)."""
    query = (
        select(Contact)
        .where(Contact.workspace_id == workspace_id, Contact.id.in_(sorted(contact_ids)))
        .order_by(Contact.id)
        .with_for_update()
    )
    return {contact.id: contact for contact in (await session.scalars(query)).all()}


async def identities_of(session: AsyncSession, contact_ids: Collection[UUID]) -> dict[UUID, list[Identity]]:
    """Each contact's identities, oldest first."""
    if not contact_ids:
        return {}
    query = (
        select(Identity)
        .where(Identity.contact_id.in_(sorted(contact_ids)))
        .order_by(Identity.created_at, Identity.id)
    )
    found: dict[UUID, list[Identity]] = {}
    for identity in (await session.scalars(query)).all():
        found.setdefault(identity.contact_id, []).append(identity)
    return found


async def move_identities(
    session: AsyncSession,
    workspace_id: UUID,
    *,
    from_contact: UUID,
    to_contact: UUID,
    only: Collection[UUID] | None = None,
) -> list[UUID]:
    """Move the identities of ``from_contact`` (or just those of ``only`` it still has) to
    ``to_contact``; returns the ids moved, sorted. Only ``contact_id`` changes."""
    statement = update(Identity).where(
        Identity.workspace_id == workspace_id, Identity.contact_id == from_contact
    )
    if only is not None:
        statement = statement.where(Identity.id.in_(sorted(only)))
    result = await session.execute(
        statement.values(contact_id=to_contact).returning(Identity.id),
        execution_options={"synchronize_session": False},
    )
    return sorted(result.scalars().all())


async def add_merge(session: AsyncSession, merge: ContactMerge) -> None:
    """Record a merge."""
    session.add(merge)
    await session.flush()


async def get_merge(
    session: AsyncSession, workspace_id: UUID, merge_id: UUID, *, for_update: bool = False
) -> ContactMerge | None:
    """A merge of the workspace (locked for the transaction when ``for_update``)."""
    query = select(ContactMerge).where(ContactMerge.id == merge_id, ContactMerge.workspace_id == workspace_id)
    if for_update:
        query = query.with_for_update()
    return await session.scalar(query)


async def list_merges(
    session: AsyncSession,
    workspace_id: UUID,
    contact_id: UUID,
    before: tuple[datetime, UUID] | None,
    limit: int,
) -> list[ContactMerge]:
    """The merges a contact took part in (as target or source), newest first."""
    query = select(ContactMerge).where(
        ContactMerge.workspace_id == workspace_id,
        or_(ContactMerge.target_contact_id == contact_id, ContactMerge.source_contact_id == contact_id),
    )
    if before is not None:
        at, merge_id = before
        query = query.where(
            or_(
                ContactMerge.created_at < at,
                and_(ContactMerge.created_at == at, ContactMerge.id < merge_id),
            )
        )
    query = query.order_by(ContactMerge.created_at.desc(), ContactMerge.id.desc()).limit(limit)
    return list((await session.scalars(query)).all())


async def contact_conversations(
    session: AsyncSession,
    workspace_id: UUID,
    contact_id: UUID,
    before: tuple[datetime, UUID] | None,
    limit: int,
    reader: UUID | None = None,
) -> ConversationRows:
    """The conversations a contact's identities wrote in, newest activity first, strictly after the
    keyset position ``before``; ``reader`` is the user whose unread counts to give."""
    authored = (
        select(Message.conversation_id)
        .join(Identity, Identity.id == Message.author_identity_id)
        .where(Identity.contact_id == contact_id, Identity.workspace_id == workspace_id)
    )
    query = conversation_rows(reader).where(
        Conversation.workspace_id == workspace_id, Conversation.id.in_(authored)
    )
    query = newest_first(query, after_position=before is not None)
    rows = (await session.execute(query, row_params(reader) | page_values(before, limit))).all()
    return read_rows(query, rows)
