"""Users, teams and the label catalogue."""

from __future__ import annotations

from collections.abc import Collection
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.inbox.models import Label, Team, User


async def add_user(session: AsyncSession, user: User) -> None:
    """Store a new user."""
    session.add(user)
    await session.flush()


async def get_user(session: AsyncSession, workspace_id: UUID, user_id: UUID) -> User | None:
    """A user of the workspace."""
    return await session.scalar(select(User).where(User.id == user_id, User.workspace_id == workspace_id))


async def get_team(session: AsyncSession, workspace_id: UUID, team_id: UUID) -> Team | None:
    """A team of the workspace."""
    return await session.scalar(select(Team).where(Team.id == team_id, Team.workspace_id == workspace_id))


async def labels_by_id(session: AsyncSession, workspace_id: UUID, label_ids: Collection[UUID]) -> list[Label]:
    """The workspace's labels among these ids."""
    if not label_ids:
        return []
    query = select(Label).where(Label.workspace_id == workspace_id, Label.id.in_(label_ids))
    return list((await session.scalars(query)).all())
