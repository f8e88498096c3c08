"""``/v1/webhook-subscriptions``: outgoing webhooks, their delivery log, and redelivery (admins only)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal
from uuid import UUID

import orjson
from fastapi import APIRouter, Query, Response
from fastapi import status as http

from services.inbox.dependencies import AdminDep, StateDep
from services.inbox.errors import InvalidCursor
from services.inbox.models import WebhookAttempt, WebhookDelivery, WebhookSubscription
from services.inbox.schemas import Page
from services.inbox.schemas.webhooks import (
    WebhookAttemptOut,
    WebhookDeliveryDetail,
    WebhookDeliveryOut,
    WebhookSubscriptionCreate,
    WebhookSubscriptionOut,
    WebhookSubscriptionUpdate,
    WebhookSubscriptionWithSecret,
)
from services.inbox.service import webhooks as service
from services.inbox.state import InboxState
from shared.events import utcnow
from shared.events.domain import DomainType
from shared.http.pagination import CursorError, decode_cursor, encode_cursor
from shared.logging import get_logger

log = get_logger(__name__)

router = APIRouter(prefix="/v1/webhook-subscriptions", tags=["outgoing webhooks"])

Limit = Annotated[int, Query(ge=1, le=200, description="Page size (1-200).")]


def _subscription(subscription: WebhookSubscription) -> WebhookSubscriptionOut:
    return WebhookSubscriptionOut(
        id=subscription.id,
        url=subscription.url,
        description=subscription.description,
        events=list(subscription.event_types),
        enabled=subscription.enabled,
        previous_secret_expires_at=subscription.previous_secret_expires_at,
        created_at=subscription.created_at,
        updated_at=subscription.updated_at,
    )


def _with_secret(subscription: WebhookSubscription, secret: str) -> WebhookSubscriptionWithSecret:
    return WebhookSubscriptionWithSecret(**_subscription(subscription).model_dump(), signing_secret=secret)


def _delivery_fields(delivery: WebhookDelivery) -> dict[str, object]:
    return {
        "id": delivery.id,
        "subscription_id": delivery.subscription_id,
        "event_id": delivery.event_id,
        "event_type": delivery.event_type,
        "status": delivery.status,
        "attempt_count": delivery.attempts,
        "next_attempt_at": delivery.next_attempt_at,
        "last_status_code": delivery.last_status_code,
        "last_error": delivery.last_error,
        "created_at": delivery.created_at,
        "updated_at": delivery.updated_at,
        "delivered_at": delivery.delivered_at,
    }


def _attempt(attempt: WebhookAttempt) -> WebhookAttemptOut:
    return WebhookAttemptOut(
        at=attempt.attempted_at,
        trigger=attempt.trigger,
        status_code=attempt.status_code,
        response_ms=attempt.response_ms,
        error=attempt.error,
        response_excerpt=attempt.response_excerpt,
    )


def _allow_private(state: InboxState) -> bool:
    return service.private_urls_allowed(state.settings.webhook_allow_private_urls, state.settings.env)


def _position(cursor: str | None) -> tuple[datetime, UUID] | None:
    if cursor is None:
        return None
    try:
        created_at, item_id = decode_cursor(cursor, datetime, UUID)
    except CursorError as exc:
        raise InvalidCursor(str(exc)) from exc
    return created_at, item_id


@router.post("", status_code=http.HTTP_201_CREATED)
async def create_subscription(
    body: WebhookSubscriptionCreate, principal: AdminDep, state: StateDep, response: Response
) -> WebhookSubscriptionWithSecret:
    """Subscribe an endpoint to the workspace's events. The answer holds the signing secret
    (``whsec_...``), shown only this once: store it to verify deliveries."""
    async with state.transaction() as session:
        subscription, secret = await service.create_subscription(
            session,
            state.box,
            principal,
            url=body.url,
            events=body.events,
            description=body.description,
            enabled=body.enabled,
            allow_private=_allow_private(state),
            now=utcnow(),
        )
    log.info("inbox.webhook_subscription.created", subscription_id=str(subscription.id))
    response.headers["Location"] = f"{router.prefix}/{subscription.id}"
    return _with_secret(subscription, secret)


@router.get("")
async def list_subscriptions(
    principal: AdminDep, state: StateDep, cursor: str | None = None, limit: Limit = 50
) -> Page[WebhookSubscriptionOut]:
    """The workspace's webhook subscriptions, oldest first."""
    after = _position(cursor)
    async with state.reading() as session:
        found = await service.list_subscriptions(session, principal.workspace_id, after, limit + 1)
    page = found[:limit]
    return Page[WebhookSubscriptionOut](
        data=[_subscription(s) for s in page],
        has_more=len(found) > limit,
        next_cursor=encode_cursor(page[-1].created_at, page[-1].id) if page else cursor,
    )


@router.get("/{subscription_id}")
async def get_subscription(
    subscription_id: UUID, principal: AdminDep, state: StateDep
) -> WebhookSubscriptionOut:
    """One webhook subscription (without its secret)."""
    async with state.reading() as session:
        subscription = await service.get_subscription(session, principal.workspace_id, subscription_id)
    return _subscription(subscription)


@router.patch("/{subscription_id}")
async def update_subscription(
    subscription_id: UUID, body: WebhookSubscriptionUpdate, principal: AdminDep, state: StateDep
) -> WebhookSubscriptionOut:
    """Change the URL, the event filter, the description, or pause (``enabled: false``) and resume a
    subscription. Deliveries still being retried go to the new URL; a paused subscription is owed no
    new events and sends nothing until resumed."""
    async with state.transaction() as session:
        subscription = await service.update_subscription(
            session,
            principal,
            subscription_id,
            body.changes(),
            allow_private=_allow_private(state),
            now=utcnow(),
        )
    return _subscription(subscription)


@router.delete("/{subscription_id}", status_code=http.HTTP_204_NO_CONTENT)
async def delete_subscription(subscription_id: UUID, principal: AdminDep, state: StateDep) -> Response:
    """Unsubscribe: nothing more is sent, and the subscription's delivery log goes with it."""
    async with state.transaction() as session:
        await service.delete_subscription(session, principal, subscription_id, utcnow())
    log.info("inbox.webhook_subscription.deleted", subscription_id=str(subscription_id))
    return Response(status_code=http.HTTP_204_NO_CONTENT)


@router.post("/{subscription_id}/rotate-secret")
async def rotate_secret(
    subscription_id: UUID, principal: AdminDep, state: StateDep
) -> WebhookSubscriptionWithSecret:
    """Issue a new signing secret (shown only in this answer). For the grace period (24 h) every
    delivery carries signatures by both the new and the previous secret, so the receiver can switch
    over without refusing anything."""
    grace = timedelta(hours=state.settings.secret_grace_hours)
    async with state.transaction() as session:
        subscription, secret = await service.rotate_secret(
            session, state.box, principal, subscription_id, grace=grace, now=utcnow()
        )
    log.info("inbox.webhook_subscription.secret_rotated", subscription_id=str(subscription_id))
    return _with_secret(subscription, secret)


@router.get("/{subscription_id}/deliveries")
async def list_deliveries(
    subscription_id: UUID,
    principal: AdminDep,
    state: StateDep,
    status: Literal["pending", "succeeded", "failed"] | None = None,
    event_type: DomainType | None = None,
    cursor: str | None = None,
    limit: Limit = 50,
) -> Page[WebhookDeliveryOut]:
    """The subscription's delivery log, newest first: each event, its status, attempts made, the last
    HTTP status or error, and when the next attempt is due."""
    before = _position(cursor)
    async with state.reading() as session:
        found = await service.list_deliveries(
            session,
            principal.workspace_id,
            subscription_id,
            status=status,
            event_type=event_type,
            before=before,
            limit=limit + 1,
        )
    page = found[:limit]
    return Page[WebhookDeliveryOut](
        data=[WebhookDeliveryOut.model_validate(_delivery_fields(d)) for d in page],
        has_more=len(found) > limit,
        next_cursor=encode_cursor(page[-1].created_at, page[-1].id) if page else cursor,
    )


@router.get("/{subscription_id}/deliveries/{delivery_id}")
async def get_delivery(
    subscription_id: UUID, delivery_id: UUID, principal: AdminDep, state: StateDep
) -> WebhookDeliveryDetail:
    """One delivery with its body and every attempt: when, the HTTP status, the response time, the
    error and the start of the answer."""
    async with state.reading() as session:
        delivery, attempts = await service.get_delivery(
            session, principal.workspace_id, subscription_id, delivery_id
        )
    return WebhookDeliveryDetail.model_validate(
        {
            **_delivery_fields(delivery),
            "payload": orjson.loads(delivery.payload),
            "attempts": [_attempt(a) for a in attempts],
        }
    )


@router.post("/{subscription_id}/deliveries/{delivery_id}/redeliver", status_code=http.HTTP_202_ACCEPTED)
async def redeliver(
    subscription_id: UUID, delivery_id: UUID, principal: AdminDep, state: StateDep
) -> WebhookDeliveryOut:
    """Send a delivery again now, with the same ``webhook-id``: one more attempt of a delivery that
    succeeded or failed, or the next attempt of one still being retried, brought forward. 409 while
    an attempt is under way."""
    async with state.transaction() as session:
        delivery = await service.redeliver(session, principal, subscription_id, delivery_id, utcnow())
    log.info(
        "inbox.webhook_delivery.redelivery_requested",
        subscription_id=str(subscription_id),
        delivery_id=str(delivery_id),
    )
    return WebhookDeliveryOut.model_validate(_delivery_fields(delivery))
