"""Subscriptions, their delivery log and redelivery: what the admin API does."""

from __future__ import annotations

import uuid
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.inbox.errors import DeliveryInProgress, WebhookDeliveryNotFound, WebhookSubscriptionNotFound
from services.inbox.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from services.inbox.repository import webhooks as repo
from services.inbox.service.access import Principal
from services.inbox.service.events import audit
from services.inbox.service.webhooks.rules import DeliveryStatus, check_event_types, check_url, public_view
from shared.crypto import SecretBox
from shared.webhooks.signing import generate_secret


async def create_subscription(
    session: AsyncSession,
    box: SecretBox,
    principal: Principal,
    *,
    url: str,
    events: Sequence[str],
    description: str | None,
    enabled: bool,
    allow_private: bool,
    now: datetime,
) -> tuple[WebhookSubscription, str]:
    """Subscribe an endpoint; returns the subscription and its signing secret (shown once)."""
    secret = generate_secret()
    subscription = WebhookSubscription(
        id=uuid.uuid4(),
        workspace_id=principal.workspace_id,
        url=check_url(url, allow_private=allow_private),
        description=description,
        event_types=check_event_types(events),
        secret_sealed=box.seal(secret),
        previous_secret_sealed=None,
        previous_secret_expires_at=None,
        enabled=enabled,
        created_at=now,
        updated_at=now,
    )
    await repo.add_subscription(session, subscription)
    await audit(
        session,
        principal,
        action="webhook_subscription.created",
        target_type="webhook_subscription",
        target_id=subscription.id,
        now=now,
        after=public_view(subscription),
    )
    return subscription, secret


async def get_subscription(
    session: AsyncSession, workspace_id: uuid.UUID, subscription_id: uuid.UUID, *, for_update: bool = False
) -> WebhookSubscription:
    """A subscription of the workspace, or WebhookSubscriptionNotFound."""
    subscription = await repo.get_subscription(session, workspace_id, subscription_id, for_update=for_update)
    if subscription is None:
        raise WebhookSubscriptionNotFound(f"webhook subscription {subscription_id} not found")
    return subscription


async def list_subscriptions(
    session: AsyncSession, workspace_id: uuid.UUID, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[WebhookSubscription]:
    """A page of the workspace's subscriptions, oldest first."""
    return await repo.list_subscriptions(session, workspace_id, after, limit)


async def update_subscription(
    session: AsyncSession,
    principal: Principal,
    subscription_id: uuid.UUID,
    changes: Mapping[str, Any],
    *,
    allow_private: bool,
    now: datetime,
) -> WebhookSubscription:
    """Change ``url``, ``events``, ``description`` or ``enabled``. Pending deliveries go to the new URL;
    a disabled subscription is owed no new events and sends nothing until it is enabled again."""
    subscription = await get_subscription(session, principal.workspace_id, subscription_id, for_update=True)
    before = public_view(subscription)
    if "url" in changes:
        subscription.url = check_url(changes["url"], allow_private=allow_private)
    if "events" in changes:
        subscription.event_types = check_event_types(changes["events"])
    if "description" in changes:
        subscription.description = changes["description"]
    if "enabled" in changes:
        subscription.enabled = bool(changes["enabled"])
    after = public_view(subscription)
    if after != before:
        subscription.updated_at = now
        await session.flush()
        await audit(
            session,
            principal,
            action="webhook_subscription.updated",
            target_type="webhook_subscription",
            target_id=subscription.id,
            now=now,
            before={k: v for k, v in before.items() if after[k] != v},
            after={k: v for k, v in after.items() if before[k] != v},
        )
    return subscription


async def delete_subscription(
    session: AsyncSession, principal: Principal, subscription_id: uuid.UUID, now: datetime
) -> None:
    """Unsubscribe: the subscription goes, with its delivery log; nothing more is sent."""
    subscription = await get_subscription(session, principal.workspace_id, subscription_id, for_update=True)
    before = public_view(subscription)
    await repo.delete_subscription(session, subscription.id)
    await audit(
        session,
        principal,
        action="webhook_subscription.deleted",
        target_type="webhook_subscription",
        target_id=subscription_id,
        now=now,
        before=before,
    )


async def rotate_secret(
    session: AsyncSession,
    box: SecretBox,
    principal: Principal,
    subscription_id: uuid.UUID,
    *,
    grace: timedelta,
    now: datetime,
) -> tuple[WebhookSubscription, str]:
    """A new signing secret; deliveries are signed with the previous one too for ``grace``, so the
    receiver can switch over without refusing anything. Returns the new secret (shown once)."""
    subscription = await get_subscription(session, principal.workspace_id, subscription_id, for_update=True)
    secret = generate_secret()
    subscription.previous_secret_sealed = subscription.secret_sealed if grace > timedelta(0) else None
    subscription.previous_secret_expires_at = now + grace if grace > timedelta(0) else None
    subscription.secret_sealed = box.seal(secret)
    subscription.updated_at = now
    await session.flush()
    await audit(
        session,
        principal,
        action="webhook_subscription.secret_rotated",
        target_type="webhook_subscription",
        target_id=subscription.id,
        now=now,
        detail={"previous_secret_expires_at": subscription.previous_secret_expires_at.isoformat()}
        if subscription.previous_secret_expires_at
        else {},
    )
    return subscription, secret


# --- the delivery log ---------------------------------------------------------------------------------


async def list_deliveries(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    subscription_id: uuid.UUID,
    *,
    status: DeliveryStatus | None,
    event_type: str | None,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[WebhookDelivery]:
    """A page of a subscription's deliveries, newest first."""
    await get_subscription(session, workspace_id, subscription_id)
    return await repo.list_deliveries(
        session, subscription_id, status=status, event_type=event_type, before=before, limit=limit
    )


async def get_delivery(
    session: AsyncSession, workspace_id: uuid.UUID, subscription_id: uuid.UUID, delivery_id: uuid.UUID
) -> tuple[WebhookDelivery, list[WebhookAttempt]]:
    """A delivery with every attempt made, oldest first."""
    delivery = await repo.get_delivery(session, workspace_id, subscription_id, delivery_id)
    if delivery is None:
        raise WebhookDeliveryNotFound(f"delivery {delivery_id} not found")
    return delivery, await repo.attempts_of(session, delivery.id)


async def redeliver(
    session: AsyncSession,
    principal: Principal,
    subscription_id: uuid.UUID,
    delivery_id: uuid.UUID,
    now: datetime,
) -> WebhookDelivery:
    """Attempt a delivery again now: once more if it had succeeded or failed, or as its next
    scheduled attempt if it is still being retried. Refused while an attempt is under way."""
    await get_subscription(session, principal.workspace_id, subscription_id)
    delivery = await repo.get_delivery(
        session, principal.workspace_id, subscription_id, delivery_id, for_update=True
    )
    if delivery is None:
        raise WebhookDeliveryNotFound(f"delivery {delivery_id} not found")
    if delivery.claimed_until is not None and delivery.claimed_until > now:
        raise DeliveryInProgress("An attempt of this delivery is under way; redeliver once it is logged.")
    before = {"status": delivery.status, "next_attempt_at": _iso(delivery.next_attempt_at)}
    # Asked twice before the worker picked it up, it is still the one extra attempt; and a worker whose
    # lease lapsed must not record its late result over this request.
    delivery.manual = delivery.manual or delivery.status != "pending"
    delivery.claimed_by = delivery.claimed_until = None
    delivery.status = "pending"
    delivery.next_attempt_at = now
    delivery.updated_at = now
    await session.flush()
    await audit(
        session,
        principal,
        action="webhook_delivery.redelivered",
        target_type="webhook_delivery",
        target_id=delivery.id,
        now=now,
        before=before,
        after={"status": delivery.status, "next_attempt_at": _iso(delivery.next_attempt_at)},
        detail={"subscription_id": str(subscription_id), "event_id": delivery.event_id},
    )
    return delivery


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None
