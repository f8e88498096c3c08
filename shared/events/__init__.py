"""Event contracts: the envelope, payload models, and the one decoder for all of them."""

from shared.events.activity import ReactionChange, ReactionChanged, ThreadChange, ThreadChanged
from shared.events.envelope import Event, Frozen, new_id, utcnow
from shared.events.inbound import (
    Attachment,
    AuthorRef,
    InboundEvent,
    InboundMessage,
    MessageDeleted,
    MessageDeletion,
    MessageEdit,
    MessageEdited,
    MessageReceived,
    MessageRef,
    ThreadRef,
    inbound_subject,
)
from shared.events.registry import AnyEvent, EventDecodeError, decode_event, encode_event

__all__ = [
    "AnyEvent",
    "Attachment",
    "AuthorRef",
    "Event",
    "EventDecodeError",
    "Frozen",
    "InboundEvent",
    "InboundMessage",
    "MessageDeleted",
    "MessageDeletion",
    "MessageEdit",
    "MessageEdited",
    "MessageReceived",
    "MessageRef",
    "ReactionChange",
    "ReactionChanged",
    "ThreadChange",
    "ThreadChanged",
    "ThreadRef",
    "decode_event",
    "encode_event",
    "inbound_subject",
    "new_id",
    "utcnow",
]
