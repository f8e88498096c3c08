"""The worker's side: events into deliveries, leasing due ones, and what an attempt decides."""

from __future__ import annotations

import uuid
from collections.abc import Callable, Collection, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.inbox.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from services.inbox.repository import webhooks as repo
from services.inbox.service.webhooks.rules import DeliveryStatus, RetryPolicy, matches, signing_secrets
from shared.crypto import SecretBox, SecretBoxError
from shared.events.domain import DomainEvent
from shared.events.registry import encode_event


async def fan_out(session: AsyncSession, events: Sequence[DomainEvent], now: datetime) -> int:
    """Owe each event to every enabled subscription of its workspace that takes it; returns how many
    deliveries are new (an event seen again adds none: the (subscription, event) key decides)."""
    workspaces: dict[str, uuid.UUID] = {}
    for event in events:
        try:
            workspaces[event.workspace] = uuid.UUID(event.workspace)
        except ValueError:
            continue  # not a workspace of this store: nobody can have subscribed to it
    by_workspace: dict[uuid.UUID, list[WebhookSubscription]] = {}
    for subscription in await repo.enabled_subscriptions(session, set(workspaces.values())):
        by_workspace.setdefault(subscription.workspace_id, []).append(subscription)
    rows: list[dict[str, Any]] = []
    for event in events:
        workspace_id = workspaces.get(event.workspace)
        subscriptions = by_workspace.get(workspace_id) if workspace_id else None
        if not subscriptions:
            continue
        payload = encode_event(event).decode()
        rows += [
            {
                "id": uuid.uuid4(),
                "workspace_id": workspace_id,
                "subscription_id": subscription.id,
                "event_id": event.id,
                "event_type": event.type,
                "payload": payload,
                "status": "pending",
                "attempts": 0,
                "manual": False,
                "next_attempt_at": now,
                "created_at": now,
                "updated_at": now,
            }
            for subscription in subscriptions
            if matches(subscription, event)
        ]
    return await repo.add_deliveries(session, rows) if rows else 0


@dataclass(frozen=True)
class Claimed:
    """A delivery a worker holds the lease of, with what it needs to send it."""

    delivery_id: uuid.UUID
    subscription_id: uuid.UUID
    event_id: str
    event_type: str
    url: str
    payload: str
    secrets: tuple[str, ...]
    """The secrets to sign with; empty if the sealed secret no longer opens (keys changed)."""
    manual: bool


async def claim_due(
    session: AsyncSession,
    box: SecretBox,
    *,
    worker: str,
    now: datetime,
    lease: timedelta,
    limit: int,
    room: Callable[[uuid.UUID], int],
    full: Collection[uuid.UUID],
) -> list[Claimed]:
    """Lease up to ``limit`` due deliveries, at most ``room(subscription)`` of each subscription
    (``full`` ones have none), so one subscription's backlog never takes every slot."""
    candidates = await repo.due_deliveries(session, now, limit=limit * 4, skip_subscriptions=full)
    taken: dict[uuid.UUID, int] = {}
    chosen: list[uuid.UUID] = []
    for delivery_id, subscription_id in candidates:
        if len(chosen) >= limit:
            break
        if taken.get(subscription_id, 0) >= room(subscription_id):
            continue
        taken[subscription_id] = taken.get(subscription_id, 0) + 1
        chosen.append(delivery_id)
    if not chosen:
        return []
    await repo.lease(session, chosen, worker, now + lease)
    claimed = []
    for delivery, subscription in await repo.leased(session, chosen):
        try:
            secrets = tuple(signing_secrets(subscription, box, now))
        except SecretBoxError:
            secrets = ()  # the attempt fails and says so; one bad row must not stop the others
        claimed.append(
            Claimed(
                delivery_id=delivery.id,
                subscription_id=subscription.id,
                event_id=delivery.event_id,
                event_type=delivery.event_type,
                url=subscription.url,
                payload=delivery.payload,
                secrets=secrets,
                manual=delivery.manual,
            )
        )
    return claimed


@dataclass(frozen=True)
class AttemptResult:
    """What one HTTP request of a delivery came to."""

    attempted_at: datetime
    response_ms: int
    status_code: int | None = None
    error: str | None = None
    response_excerpt: str | None = None

    @property
    def ok(self) -> bool:
        """A 2xx answer: the receiver has the event."""
        return self.status_code is not None and 200 <= self.status_code < 300


async def record_attempt(
    session: AsyncSession,
    claimed: Claimed,
    result: AttemptResult,
    *,
    worker: str,
    policy: RetryPolicy,
    now: datetime,
) -> DeliveryStatus | None:
    """Log an attempt and decide what follows: succeeded, another try later (pending), or failed.
    Returns the delivery's status, or None if the delivery is gone or no longer leased by ``worker``
    (the attempt is logged all the same, if the delivery still exists)."""
    delivery = await repo.get_leased(session, claimed.delivery_id, worker)
    if delivery is None and await session.get(WebhookDelivery, claimed.delivery_id) is None:
        return None
    await repo.add_attempt(
        session,
        WebhookAttempt(
            id=uuid.uuid4(),
            delivery_id=claimed.delivery_id,
            attempted_at=result.attempted_at,
            trigger="manual" if claimed.manual else "scheduled",
            status_code=result.status_code,
            response_ms=result.response_ms,
            error=result.error,
            response_excerpt=result.response_excerpt,
        ),
    )
    if delivery is None:
        return None
    delivery.attempts += 1
    delivery.last_status_code = result.status_code
    delivery.last_error = result.error
    delivery.claimed_by = None
    delivery.claimed_until = None
    delivery.updated_at = now
    delay = None if claimed.manual else policy.delay(delivery.attempts)
    if result.ok:
        delivery.status = "succeeded"
        delivery.delivered_at = result.attempted_at
        delivery.next_attempt_at = None
    elif delay is None:
        delivery.status = "failed"
        delivery.next_attempt_at = None
    else:
        delivery.status = "pending"
        delivery.next_attempt_at = now + timedelta(seconds=delay)
    delivery.manual = False
    await session.flush()
    status: DeliveryStatus = delivery.status  # type: ignore[assignment]
    return status
