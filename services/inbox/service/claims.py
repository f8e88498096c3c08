"""Claims: an agent holds a conversation for a while, and other agents' replies are refused (unless
forced) until the claim is released or lapses."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from services.inbox.errors import ConversationClaimed
from services.inbox.models import Conversation
from services.inbox.service.access import Principal
from services.inbox.service.events import announce, audit
from services.inbox.service.workflow import locked_conversation, require_user
from shared.events.domain import DomainChange


def live_claim(conversation: Conversation, now: datetime) -> tuple[uuid.UUID, datetime] | None:
    """Who holds the conversation's claim and until when, if it has not lapsed."""
    return held(conversation.claimed_by_id, conversation.claim_expires_at, now)


def held(
    holder: uuid.UUID | None, until: datetime | None, now: datetime
) -> tuple[uuid.UUID, datetime] | None:
    """A claim's holder and end, if it has one and it has not lapsed at ``now``."""
    if holder is None or until is None or until <= now:
        return None
    return holder, until


def _refuse_claimed(holder: uuid.UUID, until: datetime, doing: str) -> ConversationClaimed:
    return ConversationClaimed(
        f"Another agent ({holder}) has claimed this conversation until {until.isoformat()}; "
        f"{doing} with force to override.",
        errors=[{"claimed_by": str(holder), "expires_at": until.isoformat()}],
    )


async def claim(
    session: AsyncSession,
    principal: Principal,
    conversation_id: uuid.UUID,
    ttl: timedelta,
    *,
    force: bool,
    now: datetime,
) -> tuple[Conversation, list[str]]:
    """Claim (or renew a claim on) a conversation for the caller."""
    user_id = require_user(principal)
    conversation = await locked_conversation(session, principal.workspace_id, conversation_id)
    held = live_claim(conversation, now)
    if held is not None and held[0] != user_id and not force:
        raise _refuse_claimed(*held, "claim it")
    conversation.claimed_by_id = user_id
    conversation.claim_expires_at = now + ttl
    entry = await announce(
        session,
        conversation.workspace_id,
        "conversation.claimed",
        DomainChange(
            conversation_id=conversation.id,
            actor_user_id=user_id,
            data={"user_id": str(user_id), "expires_at": conversation.claim_expires_at.isoformat()},
        ),
        now,
    )
    if held is not None and held[0] != user_id:
        await audit(
            session,
            principal,
            action="conversation.claim_taken_over",
            target_type="conversation",
            target_id=conversation.id,
            now=now,
            before={"claimed_by": str(held[0])},
            after={"claimed_by": str(user_id)},
        )
    return conversation, [entry]


async def release(
    session: AsyncSession, principal: Principal, conversation_id: uuid.UUID, *, force: bool, now: datetime
) -> list[str]:
    """Give up the caller's claim (another's only with ``force``)."""
    user_id = require_user(principal)
    conversation = await locked_conversation(session, principal.workspace_id, conversation_id)
    held = live_claim(conversation, now)
    if held is None:
        conversation.claimed_by_id = conversation.claim_expires_at = None
        return []
    if held[0] != user_id and not force:
        raise _refuse_claimed(*held, "release it")
    conversation.claimed_by_id = conversation.claim_expires_at = None
    entry = await announce(
        session,
        conversation.workspace_id,
        "conversation.released",
        DomainChange(conversation_id=conversation.id, actor_user_id=user_id, data={"user_id": str(held[0])}),
        now,
    )
    return [entry]


async def before_reply(
    session: AsyncSession, principal: Principal, conversation_id: uuid.UUID, *, force: bool, now: datetime
) -> None:
    """Refuse a reply into a conversation another agent has claimed; record the first response."""
    conversation = await locked_conversation(session, principal.workspace_id, conversation_id)
    held = live_claim(conversation, now)
    if held is not None and held[0] != principal.user_id and not force:
        raise _refuse_claimed(*held, "send the reply")
    if conversation.first_response_at is None and conversation.last_inbound_at is not None:
        conversation.first_response_at = now
