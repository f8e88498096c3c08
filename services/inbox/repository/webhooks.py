"""Outgoing webhook subscriptions, their deliveries and attempts."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any
from uuid import UUID

from sqlalchemy import and_, delete, or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from services.inbox.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from shared.db import insert_for

_INSERT_CHUNK = 500
"""Rows per INSERT: SQLite caps the parameters of one statement."""


async def add_subscription(session: AsyncSession, subscription: WebhookSubscription) -> None:
    """Store a new subscription."""
    session.add(subscription)
    await session.flush()


async def get_subscription(
    session: AsyncSession, workspace_id: UUID, subscription_id: UUID, *, for_update: bool = False
) -> WebhookSubscription | None:
    """A subscription of the workspace; ``for_update`` locks its row until the transaction ends."""
    query = select(WebhookSubscription).where(
        WebhookSubscription.id == subscription_id, WebhookSubscription.workspace_id == workspace_id
    )
    return await session.scalar(query.with_for_update() if for_update else query)


async def list_subscriptions(
    session: AsyncSession, workspace_id: UUID, after: tuple[datetime, UUID] | None, limit: int
) -> list[WebhookSubscription]:
    """The workspace's subscriptions, oldest first, after a keyset position."""
    query = select(WebhookSubscription).where(WebhookSubscription.workspace_id == workspace_id)
    if after is not None:
        created_at, subscription_id = after
        query = query.where(
            or_(
                WebhookSubscription.created_at > created_at,
                and_(WebhookSubscription.created_at == created_at, WebhookSubscription.id > subscription_id),
            )
        )
    query = query.order_by(WebhookSubscription.created_at, WebhookSubscription.id).limit(limit)
    return list((await session.scalars(query)).all())


async def delete_subscription(session: AsyncSession, subscription_id: UUID) -> None:
    """Remove a subscription with its deliveries and their attempts."""
    deliveries = select(WebhookDelivery.id).where(WebhookDelivery.subscription_id == subscription_id)
    # Explicit rather than left to ON DELETE CASCADE, which SQLite applies only with foreign keys on.
    await session.execute(delete(WebhookAttempt).where(WebhookAttempt.delivery_id.in_(deliveries)))
    await session.execute(delete(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id))
    await session.execute(delete(WebhookSubscription).where(WebhookSubscription.id == subscription_id))


async def enabled_subscriptions(
    session: AsyncSession, workspace_ids: Collection[UUID]
) -> list[WebhookSubscription]:
    """The enabled subscriptions of these workspaces."""
    if not workspace_ids:
        return []
    query = select(WebhookSubscription).where(
        WebhookSubscription.workspace_id.in_(sorted(workspace_ids)), WebhookSubscription.enabled.is_(True)
    )
    return list((await session.scalars(query)).all())


async def add_deliveries(session: AsyncSession, rows: Sequence[dict[str, Any]]) -> int:
    """Insert deliveries; one that exists for its (subscription, event) is left as it is. Returns how
    many were new."""
    dialect = session.get_bind().dialect.name
    created = 0
    ordered = sorted(rows, key=lambda row: (row["subscription_id"], row["event_id"]))
    for start in range(0, len(ordered), _INSERT_CHUNK):
        chunk = ordered[start : start + _INSERT_CHUNK]
        statement = (
            insert_for(dialect, WebhookDelivery)
            .values(chunk)
            .on_conflict_do_nothing(index_elements=["subscription_id", "event_id"])
            .returning(WebhookDelivery.id)
        )
        created += len((await session.execute(statement)).all())
    return created


async def list_deliveries(
    session: AsyncSession,
    subscription_id: UUID,
    *,
    status: str | None,
    event_type: str | None,
    before: tuple[datetime, UUID] | None,
    limit: int,
) -> list[WebhookDelivery]:
    """A subscription's deliveries, newest first, before a keyset position."""
    query = select(WebhookDelivery).where(WebhookDelivery.subscription_id == subscription_id)
    if status is not None:
        query = query.where(WebhookDelivery.status == status)
    if event_type is not None:
        query = query.where(WebhookDelivery.event_type == event_type)
    if before is not None:
        created_at, delivery_id = before
        query = query.where(
            or_(
                WebhookDelivery.created_at < created_at,
                and_(WebhookDelivery.created_at == created_at, WebhookDelivery.id < delivery_id),
            )
        )
    query = query.order_by(WebhookDelivery.created_at.desc(), WebhookDelivery.id.desc()).limit(limit)
    return list((await session.scalars(query)).all())


async def get_delivery(
    session: AsyncSession,
    workspace_id: UUID,
    subscription_id: UUID,
    delivery_id: UUID,
    *,
    for_update: bool = False,
) -> WebhookDelivery | None:
    """A delivery of a subscription of the workspace."""
    query = select(WebhookDelivery).where(
        WebhookDelivery.id == delivery_id,
        WebhookDelivery.subscription_id == subscription_id,
        WebhookDelivery.workspace_id == workspace_id,
    )
    return await session.scalar(query.with_for_update() if for_update else query)


async def attempts_of(session: AsyncSession, delivery_id: UUID) -> list[WebhookAttempt]:
    """A delivery's attempts, oldest first."""
    query = (
        select(WebhookAttempt)
        .where(WebhookAttempt.delivery_id == delivery_id)
        .order_by(WebhookAttempt.attempted_at, WebhookAttempt.id)
    )
    return list((await session.scalars(query)).all())


async def due_deliveries(
    session: AsyncSession, now: datetime, *, limit: int, skip_subscriptions: Collection[UUID]
) -> list[tuple[UUID, UUID]]:
    """(delivery id, subscription id) of pending deliveries of enabled subscriptions that are due and
    not leased, soonest first; locked until the transaction ends, skipping rows another worker holds
    (PostgreSQL; SQLite has one writer at a time anyway)."""
    query = (
        select(WebhookDelivery.id, WebhookDelivery.subscription_id)
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .where(
            WebhookDelivery.status == "pending",
            WebhookDelivery.next_attempt_at <= now,
            or_(WebhookDelivery.claimed_until.is_(None), WebhookDelivery.claimed_until < now),
            WebhookSubscription.enabled.is_(True),
        )
    )
    if skip_subscriptions:
        query = query.where(WebhookDelivery.subscription_id.not_in(sorted(skip_subscriptions)))
    query = (
        query.order_by(WebhookDelivery.next_attempt_at)
        .limit(limit)
        .with_for_update(skip_locked=True, of=WebhookDelivery)
    )
    return [(row[0], row[1]) for row in (await session.execute(query)).all()]


async def lease(session: AsyncSession, delivery_ids: Sequence[UUID], worker: str, until: datetime) -> None:
    """Mark deliveries as being sent by ``worker`` until ``until``."""
    await session.execute(
        update(WebhookDelivery)
        .where(WebhookDelivery.id.in_(delivery_ids))
        .values(claimed_by=worker, claimed_until=until)
    )


async def leased(
    session: AsyncSession, delivery_ids: Sequence[UUID]
) -> list[tuple[WebhookDelivery, WebhookSubscription]]:
    """Deliveries with their subscriptions."""
    query = (
        select(WebhookDelivery, WebhookSubscription)
        .join(WebhookSubscription, WebhookSubscription.id == WebhookDelivery.subscription_id)
        .where(WebhookDelivery.id.in_(delivery_ids))
    )
    return [(row[0], row[1]) for row in (await session.execute(query)).all()]


async def add_attempt(session: AsyncSession, attempt: WebhookAttempt) -> None:
    """Log an attempt."""
    session.add(attempt)
    await session.flush()


async def get_leased(session: AsyncSession, delivery_id: UUID, worker: str) -> WebhookDelivery | None:
    """A delivery still leased by ``worker`` (None if the lease lapsed and another took it, or the
    subscription was deleted meanwhile)."""
    query = select(WebhookDelivery).where(
        WebhookDelivery.id == delivery_id, WebhookDelivery.claimed_by == worker
    )
    return await session.scalar(query.with_for_update())
