"""Request and response bodies of ``/v1/webhook-subscriptions``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

Url = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=2048)]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=500)]
EventType = Annotated[str, StringConstraints(min_length=1, max_length=64)]

_EVENTS_HELP = (
    "Domain event types to receive (see docs/outgoing-webhooks.md); empty or absent: every type. "
    "An unknown type is refused."
)


class WebhookSubscriptionCreate(BaseModel):
    """An endpoint to send the workspace's events to."""

    model_config = ConfigDict(extra="forbid")

    url: Url = Field(description="http or https URL Piazza POSTs each event to.")
    events: list[EventType] = Field(default_factory=list, max_length=100, description=_EVENTS_HELP)
    description: Description | None = None
    enabled: bool = True


class WebhookSubscriptionUpdate(BaseModel):
    """What to change; fields left out stay as they are (``description: null`` clears it)."""

    model_config = ConfigDict(extra="forbid")

    url: Url | None = None
    events: list[EventType] | None = Field(None, max_length=100, description=_EVENTS_HELP)
    description: Description | None = None
    enabled: bool | None = None

    def changes(self) -> dict[str, Any]:
        """The fields the request sets (null is a change only for ``description``)."""
        return {
            name: getattr(self, name)
            for name in self.model_fields_set
            if getattr(self, name) is not None or name == "description"
        }


class WebhookSubscriptionOut(BaseModel):
    """A subscription; its signing secret is shown only when it is created or rotated."""

    id: UUID
    url: str
    description: str | None
    events: list[str] = Field(description="Event types sent; empty: every type.")
    enabled: bool
    previous_secret_expires_at: datetime | None = Field(
        description="After a rotation, until when deliveries are signed with the previous secret too."
    )
    created_at: datetime
    updated_at: datetime


class WebhookSubscriptionWithSecret(WebhookSubscriptionOut):
    """A subscription with its signing secret: store it now, it is never shown again."""

    signing_secret: str = Field(description="whsec_... : verify each delivery's webhook-signature with it.")


class WebhookDeliveryOut(BaseModel):
    """One event owed to the subscription, and how its delivery stands."""

    id: UUID
    subscription_id: UUID
    event_id: str = Field(description="The event's id, also the webhook-id header of every attempt.")
    event_type: str
    status: Literal["pending", "succeeded", "failed"]
    attempt_count: int
    next_attempt_at: datetime | None = Field(description="When the next attempt is due (pending only).")
    last_status_code: int | None = Field(description="The HTTP status of the last attempt, if it got one.")
    last_error: str | None = Field(description="Why the last attempt got no answer (timeout, refused ...).")
    created_at: datetime
    updated_at: datetime
    delivered_at: datetime | None


class WebhookAttemptOut(BaseModel):
    """One HTTP request of a delivery."""

    at: datetime
    trigger: Literal["scheduled", "manual"]
    status_code: int | None
    response_ms: int = Field(description="Time to the endpoint's answer (or to the failure), in ms.")
    error: str | None
    response_excerpt: str | None = Field(description="The start of the endpoint's answer (1000 characters).")


class WebhookDeliveryDetail(WebhookDeliveryOut):
    """A delivery with its body and every attempt, oldest first."""

    payload: dict[str, Any] = Field(description="The body sent: the event as JSON.")
    attempts: list[WebhookAttemptOut]
