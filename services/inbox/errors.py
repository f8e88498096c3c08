"""Errors the inbox API reports."""

from __future__ import annotations

from shared.errors import (
    BadRequest,
    Conflict,
    Forbidden,
    NotFound,
    PreconditionFailed,
    ValidationFailed,
)


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


class UserNotFound(NotFound):
    """No such user in the caller's workspace."""

    code = "user_not_found"


class TokenNotFound(NotFound):
    """No such API token in the caller's workspace."""

    code = "token_not_found"


class TeamNotFound(NotFound):
    """No such team in the caller's workspace."""

    code = "team_not_found"


class LabelNotFound(NotFound):
    """No such label in the caller's workspace's catalogue."""

    code = "label_not_found"


class EmailTaken(Conflict):
    """Another user of the workspace has this email address."""

    code = "email_taken"


class TeamNameTaken(Conflict):
    """The workspace already has a team of this name (names compare case-insensitively)."""

    code = "team_name_taken"


class LabelNameTaken(Conflict):
    """The catalogue already has a label of this name (names compare case-insensitively)."""

    code = "label_name_taken"


class LastAdmin(Conflict):
    """The change would leave the workspace without an active admin user."""

    code = "last_admin"


class UserDeactivated(Conflict):
    """The user is deactivated: reactivate them first."""

    code = "user_deactivated"


class VersionMismatch(PreconditionFailed):
    """``If-Match`` named a version of the conversation that is no longer current."""

    code = "version_mismatch"


class ConversationClaimed(Conflict):
    """Another agent holds a live claim on the conversation."""

    code = "conversation_claimed"


class NoUser(Forbidden):
    """The action belongs to a person, and the token is an integration's (it has no user)."""

    code = "user_required"


class InvalidReference(ValidationFailed):
    """A user, team or label named in the request is not one of the workspace's (or cannot take it)."""

    code = "invalid_reference"


class WebhookSubscriptionNotFound(NotFound):
    """No such outgoing webhook subscription in the caller's workspace."""

    code = "webhook_subscription_not_found"


class WebhookDeliveryNotFound(NotFound):
    """No such delivery of this subscription."""

    code = "webhook_delivery_not_found"


class InvalidWebhookSubscription(ValidationFailed):
    """A subscription the request describes cannot be used: a URL that is not http(s), or that points
    at a private network, or an event type that does not exist; ``errors`` says which field."""

    code = "invalid_webhook_subscription"


class DeliveryInProgress(Conflict):
    """An attempt of this delivery is being made right now; ask again once it is recorded."""

    code = "webhook_delivery_in_progress"


class InvalidStreamPosition(BadRequest):
    """A ``Last-Event-ID`` (or ``last_event_id``) that is not an event id this stream issued."""

    code = "invalid_last_event_id"


class PresenceNeedsUser(Forbidden):
    """Presence is a person's: the token acts for no user (an integration's token)."""

    code = "user_required"


class ContactMerged(Conflict):
    """The contact was merged into another (``errors`` names it): act on that one, or undo the merge."""

    code = "contact_merged"


class ContactMergeRefused(Conflict):
    """The merge cannot be made (a contact merged with itself)."""

    code = "contact_merge_refused"


class ContactMergeNotFound(NotFound):
    """No such contact merge in the caller's workspace."""

    code = "contact_merge_not_found"


class ContactMergeNotUndoable(Conflict):
    """The merge cannot be undone exactly any more (already undone, or its target merged since)."""

    code = "contact_merge_not_undoable"


class SavedReplyNotFound(NotFound):
    """No such saved reply in the caller's workspace."""

    code = "saved_reply_not_found"


class ShortcutTaken(Conflict):
    """Another saved reply of the workspace has this shortcut."""

    code = "shortcut_taken"


class InvalidTemplate(ValidationFailed):
    """A saved reply's text uses an unknown placeholder or is not a valid template; ``errors`` says where."""

    code = "invalid_template"


class SentimentNotApplicable(Conflict):
    """Only a customer's (inbound) message has a sentiment to correct: not a reply, nor a note."""

    code = "sentiment_not_applicable"
