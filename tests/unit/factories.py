"""Builders of inbound events for unit tests: valid by default, every field overridable."""

from __future__ import annotations

from datetime import UTC, datetime
from uuid import UUID, uuid4

from shared.events import (
    Attachment,
    AuthorRef,
    InboundMessage,
    MessageDeleted,
    MessageDeletion,
    MessageEdit,
    MessageEdited,
    MessageReceived,
    ThreadRef,
)

T0 = datetime(2025, 3, 1, 12, 0, tzinfo=UTC)


def author(external_id: str = "alice", *, handle: str | None = None, name: str | None = None) -> AuthorRef:
    """An author in the ``test`` namespace."""
    return AuthorRef(namespace="test", external_id=external_id, handle=handle, name=name)


def received(
    channel_id: UUID,
    *,
    message: str = "m1",
    thread: str = "t1",
    title: str | None = None,
    text: str | None = "hello",
    attachments: tuple[Attachment, ...] = (),
    sent_at: datetime = T0,
    by: AuthorRef | None = None,
    workspace: str = "ws",
) -> MessageReceived:
    """A new message on ``channel_id``."""
    return MessageReceived(
        workspace=workspace,
        source="unit",
        payload=InboundMessage(
            channel_id=channel_id,
            platform="test",
            thread=ThreadRef(external_id=thread, title=title),
            external_id=message,
            author=by or author(),
            text=text,
            attachments=attachments,
            sent_at=sent_at,
        ),
    )


def edited(
    channel_id: UUID,
    *,
    message: str = "m1",
    thread: str = "t1",
    title: str | None = None,
    text: str | None = "hello, edited",
    attachments: tuple[Attachment, ...] = (),
    edited_at: datetime = T0,
    by: AuthorRef | None = None,
    workspace: str = "ws",
) -> MessageEdited:
    """A new version of a message on ``channel_id``."""
    return MessageEdited(
        workspace=workspace,
        source="unit",
        payload=MessageEdit(
            channel_id=channel_id,
            platform="test",
            thread=ThreadRef(external_id=thread, title=title),
            external_id=message,
            author=by,
            text=text,
            attachments=attachments,
            edited_at=edited_at,
        ),
    )


def deleted(
    channel_id: UUID,
    *,
    message: str = "m1",
    thread: str = "t1",
    deleted_at: datetime = T0,
    workspace: str = "ws",
) -> MessageDeleted:
    """A message on ``channel_id`` reported deleted."""
    return MessageDeleted(
        workspace=workspace,
        source="unit",
        payload=MessageDeletion(
            channel_id=channel_id,
            platform="test",
            thread=ThreadRef(external_id=thread),
            external_id=message,
            deleted_at=deleted_at,
        ),
    )


def new_channel() -> UUID:
    """A fresh channel id, so tests never share one."""
    return uuid4()
