"""Deterministic ids: the same platform object always gets the same row id.

Derived (UUIDv5) from the platform's own keys, so a consumer can write a whole batch without reading
back generated ids, and a redelivered event lands on the row it created the first time. The unique
constraints on the natural keys stay the authority; the ids merely agree with them.
"""

from __future__ import annotations

import uuid

_NAMESPACE = uuid.UUID("6f1c9c39-2a53-5d3e-9f43-7d6a1b1f2e10")


def conversation_id(channel_id: uuid.UUID, thread_external_id: str) -> uuid.UUID:
    """The conversation of a thread on a channel account."""
    return uuid.uuid5(_NAMESPACE, f"conversation\x1f{channel_id}\x1f{thread_external_id}")


def message_id(channel_id: uuid.UUID, external_id: str) -> uuid.UUID:
    """A platform message on a channel account."""
    return uuid.uuid5(_NAMESPACE, f"message\x1f{channel_id}\x1f{external_id}")


def identity_id(workspace_id: uuid.UUID, namespace: str, external_id: str) -> uuid.UUID:
    """A person's identity in a namespace (a platform, or one webhook source)."""
    return uuid.uuid5(_NAMESPACE, f"identity\x1f{workspace_id}\x1f{namespace}\x1f{external_id}")


def first_contact_id(identity: uuid.UUID) -> uuid.UUID:
    """The contact an identity starts with (merges may later move it to another contact)."""
    return uuid.uuid5(_NAMESPACE, f"contact\x1f{identity}")


def thread_event_id(channel_id: uuid.UUID, external_id: str) -> uuid.UUID:
    """A membership change or rename of a thread, as the platform identified it."""
    return uuid.uuid5(_NAMESPACE, f"thread-event\x1f{channel_id}\x1f{external_id}")
