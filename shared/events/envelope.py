"""The envelope every event travels in.

``id`` doubles as the JetStream ``Nats-Msg-Id``, so a publish repeated within the stream's duplicate
window is dropped by the server. ``type`` names a past-tense fact and selects the payload model;
``version`` changes only when a payload changes incompatibly (see ``shared.events.registry``).
"""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field


class Frozen(BaseModel):
    """Base of every event payload: immutable, and tolerant of fields added by newer producers."""

    model_config = ConfigDict(frozen=True, extra="ignore")


def new_id() -> str:
    """A fresh random event or correlation id."""
    return uuid.uuid4().hex


def utcnow() -> datetime:
    """The current time, timezone-aware in UTC."""
    return datetime.now(UTC)


class Event(Frozen):
    """Fields common to every event; subclasses fix ``type`` and ``payload``."""

    id: str = Field(default_factory=new_id, min_length=1, max_length=512)
    type: str
    version: int = 1
    occurred_at: AwareDatetime = Field(default_factory=utcnow)
    workspace: str = Field(min_length=1)
    source: str = Field(min_length=1)
    correlation_id: str = Field(default_factory=new_id)
