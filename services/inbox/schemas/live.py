"""HTTP shapes of presence (``/v1/conversations/{id}/presence``); the live stream's are in docs/stream.md."""

from __future__ import annotations

from datetime import datetime
from typing import Literal
from uuid import UUID

from pydantic import BaseModel, ConfigDict


class PresenceIn(BaseModel):
    """What the caller is doing in the conversation."""

    model_config = ConfigDict(extra="forbid")

    state: Literal["viewing", "typing", "idle"]


class PresenceOut(BaseModel):
    """A person's presence in a conversation; ``expires_at`` is when it lapses unless renewed (null once
    idle)."""

    conversation_id: UUID
    user_id: UUID
    user_name: str | None
    state: Literal["viewing", "typing", "idle"]
    updated_at: datetime
    expires_at: datetime | None


class PresenceList(BaseModel):
    """Who is viewing or typing in a conversation now."""

    data: list[PresenceOut]
