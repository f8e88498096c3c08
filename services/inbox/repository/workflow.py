"""Statements behind the conversation workflow: status, assignment, labels, claims, read state."""

from __future__ import annotations

from collections.abc import Collection
from datetime import UTC, datetime
from uuid import UUID

from sqlalchemy import ColumnElement, and_, delete, func, select, true, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.sql.elements import BindParameter

from services.inbox.models import Conversation, ConversationLabel, ConversationRead, Label, Message
from services.inbox.repository import list_columns
from shared.db import insert_for

NEVER = datetime(1970, 1, 1, tzinfo=UTC)
"""Before any message: the read mark of a user who never read the conversation."""


async def conversation_for_update(
    session: AsyncSession, workspace_id: UUID, conversation_id: UUID
) -> Conversation | None:
    """A conversation of the workspace, locked for the rest of the transaction (PostgreSQL)."""
    query = (
        select(Conversation)
        .where(Conversation.id == conversation_id, Conversation.workspace_id == workspace_id)
        .with_for_update()
        .execution_options(populate_existing=True)  # the locked row, even if loaded before
    )
    return await session.scalar(query)


async def conversations_for_update(
    session: AsyncSession, workspace_id: UUID, conversation_ids: Collection[UUID]
) -> list[Conversation]:
    """The workspace's conversations among these ids, locked in key order."""
    if not conversation_ids:
        return []
    query = (
        select(Conversation)
        .where(Conversation.workspace_id == workspace_id, Conversation.id.in_(sorted(conversation_ids)))
        .order_by(Conversation.id)
        .with_for_update()
        .execution_options(populate_existing=True)
    )
    return list((await session.scalars(query)).all())


async def label_ids(session: AsyncSession, conversation_id: UUID) -> set[UUID]:
    """The labels on a conversation."""
    query = select(ConversationLabel.label_id).where(ConversationLabel.conversation_id == conversation_id)
    return set((await session.scalars(query)).all())


async def change_labels(
    session: AsyncSession, conversation_id: UUID, added: Collection[UUID], removed: Collection[UUID]
) -> None:
    """Put labels on a conversation and take others off (labels already on it stay on), then write
    the labels its lists show again. New labels copy the conversation's list order as stored
    (``list_columns.order_labels``), so its pending changes are flushed first."""
    if not added and not removed:
        return
    table = ConversationLabel.__table__
    if added:
        await session.flush()
        carried = (
            select(Conversation.id, Label.id, Conversation.last_activity_at, Conversation.priority)
            .join(Label, true())  # each label with the conversation's row
            .where(Conversation.id == conversation_id, Label.id.in_(sorted(added)))
        )
        statement = (
            insert_for(session.get_bind().dialect.name, table)
            .from_select(["conversation_id", "label_id", "last_activity_at", "priority"], carried)
            .on_conflict_do_nothing(index_elements=[table.c.conversation_id, table.c.label_id])
        )
        await session.execute(statement)
    if removed:
        await session.execute(
            delete(ConversationLabel).where(
                ConversationLabel.conversation_id == conversation_id, ConversationLabel.label_id.in_(removed)
            )
        )
    await list_columns.refresh_labels(session, [conversation_id])


async def newest_message_time(session: AsyncSession, conversation_id: UUID) -> datetime | None:
    """When the conversation's newest message was sent."""
    return await session.scalar(
        select(func.max(Message.occurred_at)).where(Message.conversation_id == conversation_id)
    )


async def mark_read(
    session: AsyncSession, user_id: UUID, conversation_id: UUID, up_to: datetime, now: datetime
) -> None:
    """Record that the user read the conversation up to ``up_to`` (never moving backwards)."""
    table = ConversationRead.__table__
    statement = insert_for(session.get_bind().dialect.name, table)
    statement = statement.on_conflict_do_update(
        index_elements=[table.c.user_id, table.c.conversation_id],
        set_={"read_up_to": statement.excluded.read_up_to, "updated_at": statement.excluded.updated_at},
        where=statement.excluded.read_up_to > table.c.read_up_to,
    )
    await session.execute(
        statement,
        [{"user_id": user_id, "conversation_id": conversation_id, "read_up_to": up_to, "updated_at": now}],
    )


async def mark_unread(session: AsyncSession, user_id: UUID, conversation_id: UUID) -> None:
    """Forget the user's read position: every inbound message counts as unread again."""
    await session.execute(
        delete(ConversationRead).where(
            ConversationRead.user_id == user_id, ConversationRead.conversation_id == conversation_id
        )
    )


async def due_snoozes(
    session: AsyncSession, now: datetime, limit: int = 500
) -> list[tuple[UUID, UUID, UUID, int]]:
    """Snoozed conversations whose time has come: ``(id, workspace, channel, version)``."""
    query = (
        select(Conversation.id, Conversation.workspace_id, Conversation.channel_id, Conversation.version)
        .where(Conversation.status == "snoozed", Conversation.snoozed_until <= now)
        .order_by(Conversation.snoozed_until, Conversation.id)  # one lock order for every replica
        .limit(limit)
    )
    return [(row.id, row.workspace_id, row.channel_id, row.version) for row in await session.execute(query)]


async def wake(session: AsyncSession, conversation_id: UUID, version: int, now: datetime) -> bool:
    """Reopen a snoozed conversation if nobody changed it since it was seen at ``version``."""
    result = await session.execute(
        update(Conversation)
        .where(
            Conversation.id == conversation_id,
            Conversation.version == version,
            Conversation.status == "snoozed",
        )
        .values(
            status="open",
            snoozed_until=None,
            status_changed_at=now,
            version=Conversation.version + 1,
            updated_at=now,
        )
    )
    return bool(getattr(result, "rowcount", 0))


def unread_for(user_id: UUID | BindParameter[UUID]) -> ColumnElement[bool]:
    """A filter on conversations: the user has not read up to the newest customer message."""
    read = select(ConversationRead.user_id).where(
        ConversationRead.user_id == user_id,
        ConversationRead.conversation_id == Conversation.id,
        ConversationRead.read_up_to >= Conversation.last_inbound_at,
    )
    return and_(Conversation.last_inbound_at.is_not(None), ~read.exists())


async def counts(
    session: AsyncSession,
    workspace_id: UUID,
    user_id: UUID | None,
    sentiment: Collection[str] | None = None,
) -> dict[str, int]:
    """Conversations by status; and of the open or pending ones: unread by, assigned to the user, unassigned.
    With ``sentiment``, only conversations with one of those labels count."""
    found = {"open": 0, "pending": 0, "snoozed": 0, "resolved": 0}
    scope = and_(
        Conversation.workspace_id == workspace_id,
        *([Conversation.sentiment.in_(sorted(sentiment))] if sentiment else []),
    )
    by_status = select(Conversation.status, func.count()).where(scope)
    for status, count in (await session.execute(by_status.group_by(Conversation.status))).all():
        found[status] = count
    active = and_(scope, Conversation.status.in_(("open", "pending")))
    unassigned = func.count().filter(Conversation.assignee_id.is_(None))
    query = select(unassigned.label("unassigned"))
    if user_id is not None:
        query = query.add_columns(
            func.count().filter(Conversation.assignee_id == user_id).label("mine"),
            func.count().filter(unread_for(user_id)).label("unread"),
        )
    row = (await session.execute(query.where(active))).one()
    found["unassigned"] = row.unassigned
    found["assigned_to_me"] = row.mine if user_id is not None else 0
    found["unread"] = row.unread if user_id is not None else 0
    return found


async def inbound_message_ids(
    session: AsyncSession, conversation_id: UUID, up_to: datetime | None = None, limit: int = 1000
) -> list[UUID]:
    """The newest inbound messages of a conversation, up to a time if given (what a platform may still
    show as unread)."""
    query = (
        select(Message.id)
        .where(
            Message.conversation_id == conversation_id,
            Message.direction == "inbound",
            *([Message.occurred_at <= up_to] if up_to is not None else []),
        )
        .order_by(Message.occurred_at.desc())
        .limit(limit)
    )
    return list((await session.scalars(query)).all())


async def conversations_labelled(session: AsyncSession, label_id: UUID) -> list[UUID]:
    """The conversations carrying a label."""
    query = select(ConversationLabel.conversation_id).where(ConversationLabel.label_id == label_id)
    return list((await session.scalars(query)).all())


async def conversations_of_team(session: AsyncSession, workspace_id: UUID, team_id: UUID) -> list[UUID]:
    """The conversations routed to a team."""
    query = select(Conversation.id).where(
        Conversation.workspace_id == workspace_id, Conversation.team_id == team_id
    )
    return list((await session.scalars(query)).all())
