"""Presence: who is viewing or typing in a conversation right now.

Presence is ephemeral. Each change is announced on the live stream as a ``presence.updated`` domain
event, published straight to the bus (no outbox: a lost presence update is corrected by the next
one, and none outlives its expiry), and kept in the ``presence`` KV bucket under
``<workspace>.<conversation>.<user>`` so that a client that just opened a conversation can ask who is
there. An entry lasts a short while (``expires_at``) unless the client renews it; ``idle`` removes it
at once. Expiry makes no event: clients drop an entry at its ``expires_at`` unless a newer update came.
"""

from __future__ import annotations

import contextlib
from datetime import datetime, timedelta
from typing import Any, Literal
from uuid import UUID

from nats.js.errors import KeyNotFoundError
from pydantic import AwareDatetime, BaseModel, ConfigDict, ValidationError
from sqlalchemy.ext.asyncio import AsyncSession

from services.inbox.errors import ConversationNotFound, PresenceNeedsUser
from services.inbox.repository import reads
from services.inbox.service.access import Principal, Role
from services.inbox.service.events import SOURCE
from shared.bus.client import Bus
from shared.bus.topology import PRESENCE_BUCKET
from shared.errors import Forbidden
from shared.events.domain import DomainChange, DomainEvent, domain_subject

PresenceState = Literal["viewing", "typing", "idle"]


class Presence(BaseModel):
    """One person's presence in a conversation; ``expires_at`` is None once they went idle."""

    model_config = ConfigDict(frozen=True)

    conversation_id: UUID
    user_id: UUID
    user_name: str | None
    state: PresenceState
    updated_at: AwareDatetime
    expires_at: AwareDatetime | None

    def as_data(self) -> dict[str, Any]:
        """The JSON form, as stored and as the ``presence.updated`` event carries it."""
        return self.model_dump(mode="json")


def _key(workspace_id: UUID, conversation_id: UUID, user_id: UUID | str = "*") -> str:
    return f"{workspace_id}.{conversation_id}.{user_id}"


async def require_conversation(session: AsyncSession, workspace_id: UUID, conversation_id: UUID) -> None:
    """404 unless the workspace has the conversation."""
    if not await reads.conversation_exists(session, workspace_id, conversation_id):
        raise ConversationNotFound(f"conversation {conversation_id} not found")


def check_may_set(principal: Principal, state: PresenceState) -> UUID:
    """The user whose presence the caller sets; refuses tokens without a user, and viewers typing."""
    if principal.user_id is None:
        raise PresenceNeedsUser("Presence is a person's: this token does not act for a user.")
    if state == "typing" and principal.role is Role.VIEWER:
        raise Forbidden("Viewers cannot reply, so they cannot be typing; they may be 'viewing'.")
    return principal.user_id


async def set_presence(
    bus: Bus,
    principal: Principal,
    conversation_id: UUID,
    state: PresenceState,
    now: datetime,
    *,
    lasts: float,
) -> Presence:
    """Record the caller's presence (``lasts`` seconds, or gone when ``idle``) and announce it.

    Raises BusUnavailable (or a NATS error) when the bus does not take it.
    """
    user_id = check_may_set(principal, state)
    presence = Presence(
        conversation_id=conversation_id,
        user_id=user_id,
        user_name=principal.user_name,
        state=state,
        updated_at=now,
        expires_at=None if state == "idle" else now + timedelta(seconds=lasts),
    )
    board = await bus.key_value(PRESENCE_BUCKET.name)
    key = _key(principal.workspace_id, conversation_id, user_id)
    if state == "idle":
        await board.delete(key)
    else:
        await board.put(key, presence.model_dump_json().encode())
    await bus.publish(
        domain_subject(principal.workspace_id, "presence.updated"),
        DomainEvent(
            type="presence.updated",
            workspace=str(principal.workspace_id),
            source=SOURCE,
            occurred_at=now,
            payload=DomainChange(
                conversation_id=conversation_id, actor_user_id=user_id, data=presence.as_data()
            ),
        ),
    )
    return presence


async def present(bus: Bus, workspace_id: UUID, conversation_id: UUID, now: datetime) -> list[Presence]:
    """Who is viewing or typing in the conversation now (expired entries left out), by name."""
    board = await bus.key_value(PRESENCE_BUCKET.name)
    bucket = bus.names.bucket(PRESENCE_BUCKET.name)
    # The bucket's stream lists the keys under the conversation without a consumer: one request.
    info = await bus.js.stream_info(
        f"KV_{bucket}", subjects_filter=f"$KV.{bucket}.{_key(workspace_id, conversation_id)}"
    )
    found: list[Presence] = []
    for subject in sorted((info.state.subjects or {}).keys()):
        with contextlib.suppress(KeyNotFoundError):  # went idle, or lapsed, since the listing
            entry = await board.get(subject.removeprefix(f"$KV.{bucket}."))
            if entry.value:
                presence = _parse(entry.value)
                if presence is not None and presence.expires_at is not None and presence.expires_at > now:
                    found.append(presence)
    return sorted(found, key=lambda p: ((p.user_name or "").casefold(), str(p.user_id)))


def _parse(value: bytes) -> Presence | None:
    try:
        return Presence.model_validate_json(value)
    except ValidationError:
        return None  # not written by this code: ignore it, it lapses with the bucket's age limit
