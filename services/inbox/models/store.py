"""The conversation store: workspaces, tokens, channel accounts, contacts, conversations, messages."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from services.inbox.models.base import Base


class Workspace(Base):
    """A tenant: an agency runs many brands, one workspace each."""

    __tablename__ = "workspaces"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime]


class ApiToken(Base):
    """A bearer token of a workspace; only its SHA-256 is stored.

    A user's token acts as that user with the user's current role; a token without a user is an
    integration's, with the role it was issued with.
    """

    __tablename__ = "api_tokens"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(200))
    role: Mapped[str] = mapped_column(String(16))
    user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    hint: Mapped[str] = mapped_column(String(16))
    created_at: Mapped[datetime]
    revoked_at: Mapped[datetime | None]


class Channel(Base):
    """A channel account: one webhook source, bot or platform account of a workspace."""

    __tablename__ = "channels"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    type: Mapped[str] = mapped_column(String(32))
    name: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(16), default="active")
    config: Mapped[dict[str, Any]] = mapped_column(default=dict)
    secrets: Mapped[list[Any]] = mapped_column(default=list)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    last_event_at: Mapped[datetime | None]

    __table_args__ = (Index(None, "workspace_id", "created_at", "id"),)


class Contact(Base):
    """A person, known through one or more platform identities.

    A contact merged into another keeps its row, hidden, with ``merged_into_id`` set, so the merge
    can be undone exactly (see ``contact_merges``).
    """

    __tablename__ = "contacts"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), index=True
    )
    name: Mapped[str | None] = mapped_column(String(1024))
    email: Mapped[str | None] = mapped_column(String(320))
    phone: Mapped[str | None] = mapped_column(String(64))
    attributes: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    merged_into_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("contacts.id"), index=True)
    merged_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (Index(None, "workspace_id", "created_at", "id"),)


class Identity(Base):
    """A contact's handle on one platform (or inside one webhook source)."""

    __tablename__ = "identities"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    contact_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("contacts.id"), index=True)
    namespace: Mapped[str] = mapped_column(String(128))
    external_id: Mapped[str] = mapped_column(String(512))
    handle: Mapped[str | None] = mapped_column(String(1024))
    handle_at: Mapped[datetime | None]
    display_name: Mapped[str | None] = mapped_column(String(1024))
    display_name_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("workspace_id", "namespace", "external_id"),)


class Conversation(Base):
    """A thread on a channel account, keyed by the platform's own thread identity.

    ``last_activity_at`` is the newest message's send time once a message is known
    (``activity_confirmed``); before that (only an edit or deletion was heard of) it is that event's
    time. ``title`` and an identity's ``handle``/``display_name`` carry the time of the event that
    set them, so an older event arriving late never undoes a newer one. ``sentiment`` is the effective
    sentiment of the newest inbound message that has one (``repository/sentiment.py`` keeps it).

    ``last_message_preview`` and ``labels_json`` are what a list shows of the conversation's messages
    and labels, kept on it so a page of fifty reads fifty rows and nothing else
    (``repository/list_columns.py`` derives them again wherever they may change).
    """

    __tablename__ = "conversations"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("channels.id"))
    external_id: Mapped[str] = mapped_column(String(512))
    title: Mapped[str | None] = mapped_column(String(1024))
    title_at: Mapped[datetime | None]
    title_seq: Mapped[int | None] = mapped_column(BigInteger)
    status: Mapped[str] = mapped_column(String(16), default="open")
    status_changed_at: Mapped[datetime | None]
    snoozed_until: Mapped[datetime | None]
    assignee_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    team_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("teams.id", ondelete="SET NULL"))
    priority: Mapped[str | None] = mapped_column(String(8))
    last_activity_at: Mapped[datetime]
    activity_confirmed: Mapped[bool] = mapped_column(Boolean, default=True)
    last_inbound_at: Mapped[datetime | None]
    first_response_at: Mapped[datetime | None]
    first_resolved_at: Mapped[datetime | None]
    resolved_at: Mapped[datetime | None]
    claimed_by_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    claim_expires_at: Mapped[datetime | None]
    sentiment: Mapped[str | None] = mapped_column(String(8))
    last_message_preview: Mapped[str | None] = mapped_column(Text)
    labels_json: Mapped[str] = mapped_column(Text, server_default="[]")
    version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("channel_id", "external_id"),
        Index(None, "workspace_id", "last_activity_at", "id"),
        Index(None, "workspace_id", "status", "last_activity_at", "id"),
        Index(None, "workspace_id", "channel_id", "last_activity_at", "id"),
        Index(None, "workspace_id", "assignee_id", "last_activity_at", "id"),
        Index(None, "workspace_id", "team_id", "last_activity_at", "id"),
        Index(None, "workspace_id", "priority", "last_activity_at", "id"),
        Index(None, "workspace_id", "sentiment", "last_activity_at", "id"),
        Index(None, "workspace_id", "updated_at"),
        Index(None, "status", "snoozed_until"),
    )


class Message(Base):
    """One message of a conversation, with its current content and its platform lifecycle.

    ``text``/``attachments`` hold the newest version (by ``text_version_at``); the version a create
    delivered is kept in ``original_*`` once an edit replaces it, and every edit in
    ``message_revisions``. ``occurred_at`` orders the conversation (the platform's send time, or the
    first time heard of until the create arrives) with ``received_seq`` (the bus sequence) breaking ties.

    An inbound message's ``sentiment``, ``sentiment_score`` and ``language`` are the analyzer's reading
    of its current text (scored when stored, again when an edit replaces the text); an agent's
    ``sentiment_correction`` wins over the analyzer's label wherever the sentiment is shown or counted.
    """

    __tablename__ = "messages"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("channels.id"))
    conversation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("conversations.id"))
    external_id: Mapped[str] = mapped_column(String(512))
    direction: Mapped[str] = mapped_column(String(16))
    author_identity_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("identities.id"))
    text: Mapped[str | None] = mapped_column(Text)
    attachments: Mapped[list[Any]] = mapped_column(default=list)
    reply_to_external_id: Mapped[str | None] = mapped_column(String(512))
    sent_at: Mapped[datetime | None]
    occurred_at: Mapped[datetime]
    received_seq: Mapped[int] = mapped_column(BigInteger)
    text_version_at: Mapped[datetime | None]
    original_saved: Mapped[bool] = mapped_column(Boolean, default=False)
    original_text: Mapped[str | None] = mapped_column(Text)
    original_attachments: Mapped[list[Any] | None]
    edited_at: Mapped[datetime | None]
    deleted_at: Mapped[datetime | None]
    meta: Mapped[dict[str, Any]] = mapped_column(default=dict, server_default="{}")
    delivery_status: Mapped[str | None] = mapped_column(String(16))
    delivery_error: Mapped[str | None] = mapped_column(Text)
    sent_by_token_id: Mapped[uuid.UUID | None]
    sent_by_user_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("users.id"))
    sentiment: Mapped[str | None] = mapped_column(String(8))
    sentiment_score: Mapped[float | None] = mapped_column(Float)
    language: Mapped[str | None] = mapped_column(String(16))
    sentiment_correction: Mapped[str | None] = mapped_column(String(8))
    # A record of who acted, like the audit log's actor (no foreign key: SQLite could not drop the
    # column on downgrade without rebuilding the table and its full-text triggers).
    sentiment_corrected_by: Mapped[uuid.UUID | None]
    sentiment_corrected_at: Mapped[datetime | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("channel_id", "external_id"),
        Index(None, "conversation_id", "occurred_at", "received_seq"),
        Index(None, "author_identity_id", "conversation_id"),
    )


class MessageRevision(Base):
    """One edit of a message, as the platform delivered it."""

    __tablename__ = "message_revisions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    message_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("messages.id"))
    text: Mapped[str | None] = mapped_column(Text)
    attachments: Mapped[list[Any]] = mapped_column(default=list)
    edited_at: Mapped[datetime]
    digest: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("message_id", "digest"),)


class MessageReaction(Base):
    """One person's reactions to a message, as they last stood.

    Keyed by the message's deterministic id without a foreign key: a reaction may be heard of before
    the message it is on. The newest change wins by ``reacted_at``, then by arrival on the bus
    (Telegram dates are whole seconds; a quick toggle lands in one).
    """

    __tablename__ = "message_reactions"

    id: Mapped[int] = mapped_column(BigInteger().with_variant(Integer, "sqlite"), primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("channels.id"))
    message_id: Mapped[uuid.UUID]
    actor_key: Mapped[str] = mapped_column(String(64))
    actor_identity_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("identities.id"))
    reactions: Mapped[list[Any]] = mapped_column(default=list)
    reacted_at: Mapped[datetime]
    received_seq: Mapped[int] = mapped_column(BigInteger)
    updated_at: Mapped[datetime]

    __table_args__ = (UniqueConstraint("message_id", "actor_key"),)


class ConversationEvent(Base):
    """Something that happened to a thread that is not a message: a member joined or left, a rename."""

    __tablename__ = "conversation_events"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    channel_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("channels.id"))
    conversation_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("conversations.id"))
    external_id: Mapped[str] = mapped_column(String(512))
    kind: Mapped[str] = mapped_column(String(32))
    member_identity_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("identities.id"))
    actor_identity_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("identities.id"))
    title: Mapped[str | None] = mapped_column(String(1024))
    occurred_at: Mapped[datetime]
    created_at: Mapped[datetime]

    __table_args__ = (
        UniqueConstraint("channel_id", "external_id"),
        Index(None, "conversation_id", "occurred_at"),
    )


class OutboxEntry(Base):
    """An event written in the same transaction as the change it announces, published after commit.

    The API publishes it at once; the worker sweeps up any left behind (a crash between commit and
    publish), so a change and its event never diverge. The entry id is the event's bus id, so a
    double publish is dropped by JetStream.
    """

    __tablename__ = "outbox"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    subject: Mapped[str] = mapped_column(String(255))
    payload: Mapped[str] = mapped_column(Text)
    created_at: Mapped[datetime]
    published_at: Mapped[datetime | None]

    __table_args__ = (Index(None, "published_at", "created_at"),)


class IdempotencyKey(Base):
    """The answer to a POST made with an ``Idempotency-Key``, replayed when the same request comes again."""

    __tablename__ = "idempotency_keys"

    workspace_id: Mapped[uuid.UUID] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    request_hash: Mapped[str] = mapped_column(String(64))
    status_code: Mapped[int] = mapped_column(Integer)
    response: Mapped[dict[str, Any]]
    created_at: Mapped[datetime]


class AuditEntry(Base):
    """Something an agent or admin did, and what came of it: who, what, when, the state before and after."""

    __tablename__ = "audit_log"

    id: Mapped[uuid.UUID] = mapped_column(primary_key=True)
    workspace_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    actor_token_id: Mapped[uuid.UUID | None]
    actor_user_id: Mapped[uuid.UUID | None]
    action: Mapped[str] = mapped_column(String(64))
    target_type: Mapped[str] = mapped_column(String(32))
    target_id: Mapped[str] = mapped_column(String(512))
    status: Mapped[str] = mapped_column(String(16))
    detail: Mapped[dict[str, Any]] = mapped_column(default=dict)
    before: Mapped[dict[str, Any] | None]
    after: Mapped[dict[str, Any] | None]
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]

    __table_args__ = (Index(None, "workspace_id", "created_at", "id"),)
