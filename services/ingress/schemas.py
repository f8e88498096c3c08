"""The generic webhook body: one event, or ``{"events": [...]}``.

Unknown fields are ignored, so a source may send more than Piazza reads.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator

from shared.events import utcnow
from shared.events.inbound import ExternalId, Kind, Mime, ShortText, Text, Timestamp, Url

FUTURE_TOLERANCE = timedelta(days=1)


def _not_in_the_future(value: datetime) -> datetime:
    if value > utcnow() + FUTURE_TOLERANCE:
        raise ValueError("is more than a day in the future; check the sender's clock")
    return value


OccurredAt = Annotated[Timestamp, AfterValidator(_not_in_the_future)]


class _Body(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class WebhookThread(_Body):
    """The thread the message belongs to; it keys the conversation."""

    id: ExternalId
    title: ShortText | None = None


class WebhookAuthor(_Body):
    """The message's author as the source knows them."""

    id: ExternalId
    handle: ShortText | None = None
    name: ShortText | None = None


class WebhookAttachment(_Body):
    """A file attached to the message."""

    type: Kind
    url: Url | None = None
    mime: Mime | None = None
    size: Annotated[int, Field(ge=0)] | None = None
    name: ShortText | None = None


class WebhookEvent(_Body):
    """A message created, edited or deleted at the source (edits and deletes repeat the ``id``)."""

    type: Literal["message.created", "message.edited", "message.deleted"]
    id: ExternalId
    thread: WebhookThread
    author: WebhookAuthor | None = None
    text: Text | None = None
    attachments: list[WebhookAttachment] = Field(default_factory=list, max_length=50)
    reply_to: ExternalId | None = None
    occurred_at: OccurredAt

    @model_validator(mode="after")
    def _created_is_complete(self) -> WebhookEvent:
        if self.type == "message.created":
            if self.author is None:
                raise ValueError("message.created needs an author")
            if not self.text and not self.attachments:
                raise ValueError("message.created needs text or at least one attachment")
        return self


class WebhookBatch(_Body):
    """Several events in one request: a 202 means every one was stored. After a 503, some may have
    been; the sender's retry stores the rest, and none twice."""

    events: list[WebhookEvent] = Field(min_length=1)
