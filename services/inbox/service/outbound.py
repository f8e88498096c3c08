"""Replies and moderation: what an agent asks for, written with its command in one transaction.

The command goes through the outbox (published after the commit), so the stored state and the
command never diverge; the reply service acts and publishes an outcome, which the inbox worker
records (:func:`apply_outcome`).
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

import orjson
from sqlalchemy.ext.asyncio import AsyncSession

from services.inbox.errors import ConversationNotFound, MessageNotFound
from services.inbox.models import AuditEntry, Channel, Conversation, Message, OutboxEntry
from services.inbox.repository import channels as channel_repo
from services.inbox.repository import outbound as repo
from services.inbox.repository import reads
from services.inbox.service.events import announce, announce_conversation_change, json_ready
from shared.errors import BadRequest, Conflict, NotFound
from shared.events import Event, encode_event
from shared.events.commands import (
    ModerationAction,
    ModerationCompleted,
    ModerationRequest,
    ModerationRequested,
    ReadRequest,
    ReadRequested,
    ReplyFailed,
    ReplyRequest,
    ReplyRequested,
    ReplySent,
    command_subject,
)
from shared.events.domain import DomainChange, DomainType

REPLYING_PLATFORMS = frozenset({"telegram", "reddit"})
"""Channel types Piazza can send through (webhook sources only send to Piazza)."""


class RepliesNotSupported(Conflict):
    """The channel cannot carry replies."""

    code = "replies_not_supported"


class IdempotencyKeyReused(Conflict):
    """The same ``Idempotency-Key`` came with a different request."""

    code = "idempotency_key_reused"


@dataclass(frozen=True)
class Replay:
    """The stored answer to a request repeated with the same ``Idempotency-Key``."""

    status_code: int
    body: dict[str, Any]


def request_hash(*parts: object) -> str:
    """A fingerprint of a request, to tell a repeat from a different request under the same key."""
    return hashlib.sha256(orjson.dumps(parts, default=str, option=orjson.OPT_SORT_KEYS)).hexdigest()


async def replay(session: AsyncSession, workspace_id: uuid.UUID, key: str, fingerprint: str) -> Replay | None:
    """The earlier answer to this key, if the request is the same; IdempotencyKeyReused if not."""
    stored = await repo.idempotent_answer(session, workspace_id, key)
    if stored is None:
        return None
    if stored.request_hash != fingerprint:
        raise IdempotencyKeyReused("This Idempotency-Key was used for a different request.")
    return Replay(stored.status_code, stored.response)


async def remember(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    key: str,
    fingerprint: str,
    status: int,
    body: dict[str, Any],
    now: datetime,
) -> None:
    """Keep the answer for repeats; a concurrent twin that got there first makes this one fail."""
    if not await repo.remember_answer(session, workspace_id, key, fingerprint, status, body, now):
        raise Conflict("A request with this Idempotency-Key is being handled; retry to get its answer.")


async def _queue(session: AsyncSession, subject: str, event: Event, now: datetime) -> str:
    await repo.add_outbox(
        session,
        OutboxEntry(id=event.id, subject=subject, payload=encode_event(event).decode(), created_at=now),
    )
    return event.id


async def _channel(session: AsyncSession, workspace_id: uuid.UUID, channel_id: uuid.UUID) -> Channel:
    channel = await channel_repo.get_channel(session, workspace_id, channel_id)
    if channel is None:
        raise NotFound("the conversation's channel no longer exists")
    return channel


async def send_reply(
    session: AsyncSession,
    *,
    workspace_id: uuid.UUID,
    token_id: uuid.UUID | None,
    conversation_id: uuid.UUID,
    text: str,
    user_id: uuid.UUID | None = None,
    reply_to_message_id: uuid.UUID | None,
    now: datetime,
    private: bool = False,
) -> tuple[Message, str]:
    """Store a pending reply and queue its command; returns the message and the outbox entry id."""
    found = await reads.get_conversation(session, workspace_id, conversation_id)
    if found is None:
        raise ConversationNotFound(f"conversation {conversation_id} not found")
    conversation = found
    channel = await _channel(session, workspace_id, conversation.channel_id)
    if channel.type not in REPLYING_PLATFORMS:
        raise RepliesNotSupported(
            f"{channel.type} channels only send events to Piazza; there is nowhere to reply through."
        )
    target = None
    if reply_to_message_id is not None:
        target = await reads.get_message(session, workspace_id, reply_to_message_id)
        if target is None or target.conversation_id != conversation.id:
            raise MessageNotFound(f"message {reply_to_message_id} is not in this conversation")
        if target.external_id.startswith("piazza:"):
            raise BadRequest(
                in_private_thread(target, "reply")
                or "That reply has not reached the platform yet; reply to it once it is sent."
            )
    if channel.type == "reddit" and len(text) > REDDIT_TEXT_LIMIT:
        raise BadRequest(
            f"Reddit takes at most {REDDIT_TEXT_LIMIT:,} characters; this reply has {len(text):,}.",
            code="too_long",
        )
    private_to = await _private_recipient(session, channel, target) if private else None
    message_id = uuid.uuid4()
    message = Message(
        id=message_id,
        workspace_id=workspace_id,
        channel_id=channel.id,
        conversation_id=conversation.id,
        external_id=f"piazza:{message_id}",
        direction="outbound",
        author_identity_id=None,
        text=text,
        attachments=[],
        reply_to_external_id=target.external_id if target else None,
        sent_at=None,
        occurred_at=now,
        received_seq=0,
        text_version_at=now,
        original_saved=False,
        edited_at=None,
        deleted_at=None,
        # A private reply starts a thread of its own on the platform (see ``mark_sent``).
        meta={"private_to": private_to} if private_to else {},
        delivery_status="pending",
        sent_by_token_id=token_id,
        sent_by_user_id=user_id,
        created_at=now,
        updated_at=now,
    )
    await repo.add_message(session, message)
    command = ReplyRequested(
        workspace=str(workspace_id),
        source="inbox",
        payload=ReplyRequest(
            message_id=message_id,
            channel_id=channel.id,
            platform=channel.type,
            thread_external_id=conversation.external_id,
            text=text,
            reply_to_external_id=target.external_id if target else None,
            reply_to_meta=target.meta if target else {},
            private_to=private_to,
            subject=_subject(conversation.title) if private_to else None,
        ),
    )
    return message, await _queue(session, command_subject("reply", channel.id), command, now)


def in_private_thread(message: Message, action: str) -> str | None:
    """For a private reply (whose platform copy is the first message of a conversation of its own,
    see ``mark_sent``): where to ``action`` it instead."""
    recipient = message.meta.get("private_to")
    if not recipient:
        return None
    return (
        f"That private reply started a private thread with u/{recipient}, which is a conversation of "
        f"its own in Piazza: {action} its copy there."
    )


REDDIT_TEXT_LIMIT = 10_000
"""Reddit's limit on a comment or private message (``VMarkdownLength(max_length=10000)``)."""


async def _private_recipient(session: AsyncSession, channel: Channel, target: Message | None) -> str:
    """The Reddit username a private reply to ``target`` goes to."""
    if channel.type != "reddit":
        raise BadRequest("Private replies exist on Reddit only.", code="private_not_supported")
    if target is None:
        raise BadRequest("A private reply needs reply_to_message_id: whose author to write to.")
    identity = (
        await reads.get_identity(session, target.workspace_id, target.author_identity_id)
        if target.author_identity_id
        else None
    )
    if target.direction != "inbound" or identity is None or identity.external_id == "[deleted]":
        raise BadRequest("That message has no author Piazza can write to.", code="no_recipient")
    return identity.external_id


def _subject(title: str | None) -> str:
    subject = f"re: {title}" if title else "a message for you"
    return subject[:100]


async def request_moderation(
    session: AsyncSession,
    *,
    workspace_id: uuid.UUID,
    token_id: uuid.UUID | None,
    action: ModerationAction,
    conversation_id: uuid.UUID,
    message: Message | None = None,
    user_external_id: str | None = None,
    target_label: str,
    now: datetime,
) -> tuple[AuditEntry, str]:
    """Record a moderation request in the audit log and queue its command."""
    found = await reads.get_conversation(session, workspace_id, conversation_id)
    if found is None:
        raise ConversationNotFound(f"conversation {conversation_id} not found")
    channel = await _channel(session, workspace_id, found.channel_id)
    if channel.type not in REPLYING_PLATFORMS:
        raise RepliesNotSupported(f"Piazza cannot moderate {channel.type} channels on the platform.")
    entry = AuditEntry(
        id=uuid.uuid4(),
        workspace_id=workspace_id,
        actor_token_id=token_id,
        action=action,
        target_type="message" if message is not None else "identity",
        target_id=target_label,
        status="requested",
        detail={"conversation_id": str(conversation_id)},
        created_at=now,
        updated_at=now,
    )
    await repo.add_audit(session, entry)
    command = ModerationRequested(
        workspace=str(workspace_id),
        source="inbox",
        payload=ModerationRequest(
            action_id=entry.id,
            channel_id=channel.id,
            platform=channel.type,
            action=action,
            thread_external_id=found.external_id,
            message_external_id=message.external_id if message is not None else None,
            user_external_id=user_external_id,
            own=message is not None and message.direction == "outbound",
        ),
    )
    return entry, await _queue(session, command_subject("moderation", channel.id), command, now)


async def request_read(
    session: AsyncSession,
    *,
    workspace_id: uuid.UUID,
    conversation_id: uuid.UUID,
    message_ids: list[uuid.UUID],
    now: datetime,
) -> str | None:
    """An agent opened messages still unread on Reddit: note them read and queue marking them read
    there (when the channel asks for it). Returns the outbox entry id, if anything was queued."""
    found = await reads.get_conversation(session, workspace_id, conversation_id)
    if found is None:
        return None
    channel = await _channel(session, workspace_id, found.channel_id)
    if channel.type != "reddit" or channel.config.get("mark_read") != "opened":
        return None
    unread = [
        m for m in await repo.messages_by_id(session, workspace_id, message_ids) if m.meta.get("unread")
    ]
    if not unread:
        return None
    for message in unread:
        message.meta = {**message.meta, "unread": False}
        message.updated_at = now
    command = ReadRequested(
        workspace=str(workspace_id),
        source="inbox",
        payload=ReadRequest(
            channel_id=channel.id,
            platform=channel.type,
            thread_external_id=found.external_id,
            external_ids=tuple(m.external_id for m in unread),
        ),
    )
    return await _queue(session, command_subject("read", channel.id), command, now)


OutcomeEvent = ReplySent | ReplyFailed | ModerationCompleted


async def apply_outcome(session: AsyncSession, event: OutcomeEvent, now: datetime) -> list[str]:
    """Record what the reply service reports; applying the same outcome twice changes nothing.

    Returns the outbox ids of the domain events it queued (a reply sent or failed; a private reply's
    thread given to its sender).
    """
    if isinstance(event, ReplySent):
        sent = event.payload
        message = await session.get(Message, sent.message_id)
        # Read before the update: the ORM update writes its values into the loaded object too.
        prior = message.delivery_status if message is not None else None
        await repo.mark_sent(session, sent.message_id, list(sent.platform_message_ids), sent.sent_at, now)
        announced = await _announce_delivery(session, message, prior, "sent", None, now)
        first_time = prior != "sent"
        if (
            message is not None
            and message.meta.get("private_to")
            and first_time
            and sent.platform_message_ids
        ):
            announced += await _adopt_private_thread(session, message, sent.platform_message_ids[0], now)
        return announced
    if isinstance(event, ReplyFailed):
        failure = event.payload
        status: Literal["failed", "unknown"] = "unknown" if failure.code == "delivery_unknown" else "failed"
        message = await session.get(Message, failure.message_id)
        prior = message.delivery_status if message is not None else None
        reason = f"{failure.code}: {failure.reason}"
        await repo.mark_failed(session, failure.message_id, status, reason, now)
        return await _announce_delivery(session, message, prior, status, reason, now)
    await _apply_moderation(session, event, now)
    return []


PRIVATE_THREAD_FIELDS = ("status", "assignee_id", "team_id")


async def _adopt_private_thread(
    session: AsyncSession, reply: Message, thread_external_id: str, now: datetime
) -> list[str]:
    """The private thread a private reply started is the replying agent's: its conversation goes to
    them (and to the public conversation's team) unless someone assigned it already, and waits on
    the customer (``pending``) unless the customer has written in it or its status was changed.
    Both outcomes, the reply's and the connector's copy of it, may come first; either way the thread
    ends the same. Returns the outbox ids of what it announced (nothing when nothing changed)."""
    channel = await session.get(Channel, reply.channel_id)
    if channel is None or not channel.config.get("inbox", True):
        return []  # the account's private messages are not followed: the thread never arrives
    parent = await session.get(Conversation, reply.conversation_id)
    thread = await repo.private_thread(session, reply, thread_external_id, now)
    before = {name: getattr(thread, name) for name in PRIVATE_THREAD_FIELDS}
    thread.assignee_id = thread.assignee_id or reply.sent_by_user_id
    thread.team_id = thread.team_id or (parent.team_id if parent is not None else None)
    untouched = thread.status == "open" and thread.status_changed_at == thread.created_at
    if untouched and thread.last_inbound_at is None:
        # With no time of change, any answer of the customer's takes it back to open. A time would
        # not do: Reddit's are whole seconds, and the answer could look older than it.
        thread.status = "pending"
        thread.status_changed_at = None
    changes: dict[str, Any] = {
        name: {"before": json_ready(before[name]), "after": json_ready(getattr(thread, name))}
        for name in PRIVATE_THREAD_FIELDS
        if before[name] != getattr(thread, name)
    }
    if not changes:
        return []
    thread.version += 1
    thread.updated_at = now
    changes["version"] = {"before": thread.version - 1, "after": thread.version}
    return await announce_conversation_change(session, thread, changes, now)


async def _announce_delivery(
    session: AsyncSession,
    message: Message | None,
    prior: str | None,
    status: str,
    error: str | None,
    now: datetime,
) -> list[str]:
    """A reply's delivery changed from ``prior``: tell live clients and subscribers (once: not when it
    already was so)."""
    if message is None or prior == status:
        return []
    await session.refresh(message)
    if message.delivery_status != status:
        return []
    event_type: DomainType = (
        "conversation.message_sent" if status == "sent" else "conversation.message_failed"
    )
    change = DomainChange(
        conversation_id=message.conversation_id,
        message_id=message.id,
        actor_user_id=message.sent_by_user_id,
        changes={"delivery": {"before": prior, "after": status}},
        data={
            "id": str(message.id),
            "channel_id": str(message.channel_id),
            "external_id": message.external_id,
            "text": message.text,
            "delivery": {"status": status, "error": error},
            **(
                {
                    "sent_at": message.sent_at.isoformat() if message.sent_at else None,
                    "platform_message_ids": list(message.meta.get("platform_message_ids") or []),
                }
                if status == "sent"
                else {}
            ),
        },
    )
    return [await announce(session, message.workspace_id, event_type, change, now)]


async def _apply_moderation(session: AsyncSession, event: ModerationCompleted, now: datetime) -> None:
    outcome = event.payload
    entry = await repo.complete_audit(
        session, outcome.action_id, ok=outcome.ok, reason=outcome.reason, now=now
    )
    if entry is None or not outcome.ok or entry.target_type != "message":
        return
    message_id = uuid.UUID(entry.target_id)
    if outcome.action == "delete_message":
        await repo.mark_deleted_by_agent(session, message_id, outcome.at, now)
    elif outcome.action in MODERATION_STATES:
        state = {**MODERATION_STATES[outcome.action], "at": outcome.at.isoformat()}
        await repo.note_moderation(session, message_id, state, now)


MODERATION_STATES: dict[str, dict[str, Any]] = {
    "remove": {"state": "removed", "spam": False},
    "remove_spam": {"state": "removed", "spam": True},
    "approve": {"state": "approved", "spam": False},
    "lock": {"locked": True},
    "unlock": {"locked": False},
}
"""What a Reddit moderator action leaves on the message's ``meta.moderation``."""
