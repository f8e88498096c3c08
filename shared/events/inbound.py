"""Inbound message events: what every connector publishes, whatever the platform.

Connectors (the webhook ingress, Telegram, Reddit) normalise platform traffic into these three facts
and publish them on ``inbound.<platform>.<channel_id>``; the inbox consumes them into the store.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, Field, model_validator

from shared.events.envelope import Event, Frozen


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold U+0000; refusing it here keeps SQLite and PostgreSQL alike.
    if "\x00" in value:
        raise ValueError("must not contain the NUL character (U+0000)")
    return value


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(2100, 1, 1, tzinfo=UTC)


def _utc_in_range(value: datetime) -> datetime:
    try:
        value = value.astimezone(UTC)
    except OverflowError:
        raise ValueError("is out of range") from None
    if not EARLIEST <= value < LATEST:
        raise ValueError("must be between 1970 and 2100")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
ExternalId = Annotated[str, Field(min_length=1, max_length=512), AfterValidator(_no_nul)]
ShortText = Annotated[str, Field(max_length=1024), AfterValidator(_no_nul)]
Url = Annotated[str, Field(max_length=4096), AfterValidator(_no_nul)]
Kind = Annotated[str, Field(min_length=1, max_length=64), AfterValidator(_no_nul)]
Mime = Annotated[str, Field(max_length=255), AfterValidator(_no_nul)]
Namespace = Annotated[str, Field(min_length=1, max_length=128), AfterValidator(_no_nul)]
Platform = Annotated[str, Field(min_length=1, max_length=32), AfterValidator(_no_nul)]
Timestamp = Annotated[AwareDatetime, AfterValidator(_utc_in_range)]
"""A timezone-aware time between 1970 and 2100, normalised to UTC."""


class Attachment(Frozen):
    """A file attached to a message, referenced by URL or by the platform's file id."""

    type: Kind
    url: Url | None = None
    file_ref: ShortText | None = None
    mime: Mime | None = None
    size: Annotated[int, Field(ge=0)] | None = None
    name: ShortText | None = None


class ThreadRef(Frozen):
    """The platform's identity of the thread a message belongs to: it keys the conversation."""

    external_id: ExternalId
    title: ShortText | None = None


class AuthorRef(Frozen):
    """Who wrote a message, as the platform knows them.

    Identities are unique per (workspace, ``namespace``, ``external_id``). Platform-wide ids use the
    platform as namespace (``telegram``), so every channel of that platform shares the person; ids that
    mean something only inside one source use a namespace of their own (``webhook:<channel_id>``).
    """

    namespace: Namespace
    external_id: ExternalId
    handle: ShortText | None = None
    name: ShortText | None = None


class MessageRef(Frozen):
    """Where a message lives: channel account, thread and the platform's message id."""

    channel_id: UUID
    platform: Platform
    thread: ThreadRef
    external_id: ExternalId


class InboundMessage(MessageRef):
    """A new message as the platform delivered it."""

    author: AuthorRef
    direction: Literal["inbound", "outbound"] = "inbound"
    text: Text | None = None
    attachments: tuple[Attachment, ...] = ()
    reply_to_external_id: ExternalId | None = None
    sent_at: Timestamp
    meta: dict[str, Any] = Field(default_factory=dict)
    """Platform details a frontend may render: ``entities`` (formatting, UTF-16 offsets),
    ``forwarded_from``, ``media_group_id``..."""

    @model_validator(mode="after")
    def _has_content(self) -> InboundMessage:
        if not self.text and not self.attachments:
            raise ValueError("a message needs text or at least one attachment")
        return self


class MessageEdit(MessageRef):
    """A new version of a message's content."""

    author: AuthorRef | None = None
    text: Text | None = None
    attachments: tuple[Attachment, ...] = ()
    edited_at: Timestamp
    meta: dict[str, Any] = Field(default_factory=dict)


class MessageDeletion(MessageRef):
    """The platform reports a message deleted."""

    deleted_at: Timestamp


class MessageReceived(Event):
    """A connector received a new message."""

    type: Literal["message.received"] = "message.received"
    payload: InboundMessage


class MessageEdited(Event):
    """A connector received a new version of a message."""

    type: Literal["message.edited"] = "message.edited"
    payload: MessageEdit


class MessageDeleted(Event):
    """A connector learned that a message was deleted on the platform."""

    type: Literal["message.deleted"] = "message.deleted"
    payload: MessageDeletion


InboundEvent = MessageReceived | MessageEdited | MessageDeleted
"""A message event on the ``inbound.>`` subjects (reactions and thread changes travel there too)."""


def inbound_subject(platform: str, channel_id: UUID) -> str:
    """The subject a connector publishes a channel's inbound events on."""
    return f"inbound.{platform}.{channel_id}"
