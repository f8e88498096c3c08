"""Tables the inbox owns, one module per topic; import them from here."""

from services.inbox.models.base import VERSION_TABLE, Base
from services.inbox.models.contacts import ContactMerge
from services.inbox.models.saved_replies import SavedReply
from services.inbox.models.store import (
    ApiToken,
    AuditEntry,
    Channel,
    Contact,
    Conversation,
    ConversationEvent,
    IdempotencyKey,
    Identity,
    Message,
    MessageReaction,
    MessageRevision,
    OutboxEntry,
    Workspace,
)
from services.inbox.models.webhooks import WebhookAttempt, WebhookDelivery, WebhookSubscription
from services.inbox.models.workflow import ConversationLabel, ConversationRead, Label, Team, TeamMember, User

__all__ = [
    "VERSION_TABLE",
    "ApiToken",
    "AuditEntry",
    "Base",
    "Channel",
    "Contact",
    "ContactMerge",
    "Conversation",
    "ConversationEvent",
    "ConversationLabel",
    "ConversationRead",
    "IdempotencyKey",
    "Identity",
    "Label",
    "Message",
    "MessageReaction",
    "MessageRevision",
    "OutboxEntry",
    "SavedReply",
    "Team",
    "TeamMember",
    "User",
    "WebhookAttempt",
    "WebhookDelivery",
    "WebhookSubscription",
    "Workspace",
]
