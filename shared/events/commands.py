"""Commands to act on a platform, and what became of them.

The inbox asks (``reply.requested``, ``moderation.requested`` on ``command.<kind>.<channel_id>``);
the reply service acts and reports (``reply.sent``/``reply.failed``, ``moderation.applied``/
``moderation.failed`` on ``outcome.<kind>.<channel_id>``); the inbox records the outcome.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal
from uuid import UUID

from pydantic import Field

from shared.events.envelope import Event, Frozen
from shared.events.inbound import ExternalId, Platform, ShortText, Text, Timestamp

ReplyFailureCode = Literal[
    "forbidden", "rejected", "too_long", "unreachable", "delivery_unknown", "unsupported"
]


class ReplyRequest(Frozen):
    """Send ``text`` into a conversation, optionally as a reply to one of its messages."""

    message_id: UUID
    channel_id: UUID
    platform: Platform
    thread_external_id: ExternalId
    text: Annotated[Text, Field(min_length=1, max_length=65536)]
    reply_to_external_id: ExternalId | None = None
    reply_to_meta: dict[str, Any] = Field(default_factory=dict)
    private_to: ShortText | None = None
    """Reddit: send a new private message to this user instead of replying in the thread."""
    subject: ShortText | None = None
    """Reddit: the private message's subject."""


class ReplySending(Frozen):
    """A reply reached the platform: the ids it got there, one per part it was split into."""

    message_id: UUID
    channel_id: UUID
    platform_message_ids: tuple[ExternalId, ...]
    sent_at: Timestamp


class ReplyFailure(Frozen):
    """A reply that was not sent (or may not have been: ``delivery_unknown``), and why."""

    message_id: UUID
    channel_id: UUID
    code: ReplyFailureCode
    reason: ShortText
    failed_at: Timestamp


ModerationAction = Literal[
    "delete_message", "ban", "unban", "remove", "remove_spam", "approve", "lock", "unlock"
]
"""``delete_message``/``ban``/``unban`` (Telegram; Reddit deletes its own items), and the Reddit
moderator actions ``remove`` (``remove_spam`` as spam), ``approve``, ``lock`` and ``unlock``."""


class ModerationRequest(Frozen):
    """Act on a message (delete, remove, approve, lock, unlock), or ban or unban an author from a group."""

    action_id: UUID
    channel_id: UUID
    platform: Platform
    action: ModerationAction
    thread_external_id: ExternalId
    message_external_id: ExternalId | None = None
    user_external_id: ExternalId | None = None
    own: bool = False
    """The message is the account's own (Reddit deletes it itself rather than removing it)."""


class ModerationOutcome(Frozen):
    """What the platform said to a moderation request."""

    action_id: UUID
    channel_id: UUID
    action: ModerationAction
    ok: bool
    reason: ShortText | None = None
    at: Timestamp


class ReadRequest(Frozen):
    """Mark inbox items read on the platform (Reddit: an agent opened their conversation)."""

    channel_id: UUID
    platform: Platform
    thread_external_id: ExternalId
    external_ids: tuple[ExternalId, ...] = Field(min_length=1, max_length=1000)


class ReplyRequested(Event):
    """An agent wrote a reply; it is pending until a ``reply.sent`` or ``reply.failed``."""

    type: Literal["reply.requested"] = "reply.requested"
    payload: ReplyRequest


class ReplySent(Event):
    """The platform accepted a reply."""

    type: Literal["reply.sent"] = "reply.sent"
    payload: ReplySending


class ReplyFailed(Event):
    """A reply could not be sent."""

    type: Literal["reply.failed"] = "reply.failed"
    payload: ReplyFailure


class ModerationRequested(Event):
    """An agent asked for a moderation action."""

    type: Literal["moderation.requested"] = "moderation.requested"
    payload: ModerationRequest


class ModerationCompleted(Event):
    """The platform answered a moderation action (``ok`` or not)."""

    type: Literal["moderation.completed"] = "moderation.completed"
    payload: ModerationOutcome


class ReadRequested(Event):
    """An agent read a conversation: its unread platform items may be marked read (best effort)."""

    type: Literal["read.requested"] = "read.requested"
    payload: ReadRequest


def command_subject(kind: Literal["reply", "moderation", "read"], channel_id: UUID) -> str:
    """Where a command for a channel is published."""
    return f"command.{kind}.{channel_id}"


def outcome_subject(kind: Literal["reply", "moderation"], channel_id: UUID) -> str:
    """Where the outcome of a command for a channel is published."""
    return f"outcome.{kind}.{channel_id}"
