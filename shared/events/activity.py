"""Inbound facts that are not messages: reactions, and changes to a thread's membership or name.

Telegram is the first platform to publish them; they travel on the same ``inbound.>`` subjects as
messages and are stored by the inbox next to the messages they concern.
"""

from __future__ import annotations

from typing import Literal
from uuid import UUID

from shared.events.envelope import Event, Frozen
from shared.events.inbound import AuthorRef, ExternalId, Platform, ShortText, ThreadRef, Timestamp


class ReactionChange(Frozen):
    """Someone's reactions to a message, as they now stand (an empty set withdraws them)."""

    channel_id: UUID
    platform: Platform
    message_external_id: ExternalId
    actor: AuthorRef | None = None
    reactions: tuple[ShortText, ...] = ()
    reacted_at: Timestamp


class ThreadChange(Frozen):
    """A member joined or left a thread, or the thread was named (renamed, or a forum topic opened)."""

    channel_id: UUID
    platform: Platform
    thread: ThreadRef
    external_id: ExternalId
    change: Literal["member_joined", "member_left", "renamed"]
    member: AuthorRef | None = None
    actor: AuthorRef | None = None
    title: ShortText | None = None
    occurred_at: Timestamp


class ReactionChanged(Event):
    """A connector saw someone react to a message."""

    type: Literal["reaction.changed"] = "reaction.changed"
    payload: ReactionChange


class ThreadChanged(Event):
    """A connector saw a thread's membership or name change."""

    type: Literal["thread.changed"] = "thread.changed"
    payload: ThreadChange
