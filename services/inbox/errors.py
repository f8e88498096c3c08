"""Errors the inbox API reports."""

from __future__ import annotations

from shared.errors import BadRequest, NotFound


class ConversationNotFound(NotFound):
    """No such conversation in the caller's workspace."""

    code = "conversation_not_found"


class ChannelNotFound(NotFound):
    """No such channel in the caller's workspace."""

    code = "channel_not_found"


class ContactNotFound(NotFound):
    """No such contact in the caller's workspace."""

    code = "contact_not_found"


class MessageNotFound(NotFound):
    """No such message in the caller's workspace."""

    code = "message_not_found"


class WorkspaceNotFound(NotFound):
    """No such workspace."""

    code = "workspace_not_found"


class InvalidCursor(BadRequest):
    """A pagination cursor that this endpoint did not issue."""

    code = "invalid_cursor"
