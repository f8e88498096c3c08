"""Users, their tokens, teams and the label catalogue."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from uuid import UUID

from sqlalchemy import Select, and_, delete, func, or_, select
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from services.inbox.models import ApiToken, Label, Team, TeamMember, User


async def add_user(session: AsyncSession, user: User) -> None:
    """Store a new user (raises IntegrityError when the email is taken; see :func:`flush`)."""
    session.add(user)
    await session.flush()


async def flush(session: AsyncSession) -> bool:
    """Write pending changes; False when a unique constraint refused them (the transaction is then
    spoiled: the caller raises, and the request's transaction rolls back)."""
    try:
        await session.flush()
    except IntegrityError:
        return False
    return True


async def get_user(session: AsyncSession, workspace_id: UUID, user_id: UUID) -> User | None:
    """A user of the workspace."""
    return await session.scalar(select(User).where(User.id == user_id, User.workspace_id == workspace_id))


def _after_name(query: Select[User], after: tuple[str, UUID] | None) -> Select[User]:
    if after is None:
        return query
    name, row_id = after
    return query.where(or_(User.name > name, and_(User.name == name, User.id > row_id)))


async def list_users(
    session: AsyncSession,
    workspace_id: UUID,
    *,
    role: str | None,
    active: bool | None,
    after: tuple[str, UUID] | None,
    limit: int,
) -> list[User]:
    """The workspace's users by name, after a keyset position."""
    query = select(User).where(User.workspace_id == workspace_id)
    if role is not None:
        query = query.where(User.role == role)
    if active is True:
        query = query.where(User.deactivated_at.is_(None))
    elif active is False:
        query = query.where(User.deactivated_at.is_not(None))
    query = _after_name(query, after).order_by(User.name, User.id).limit(limit)
    return list((await session.scalars(query)).all())


async def lock_active_admins(session: AsyncSession, workspace_id: UUID) -> list[UUID]:
    """The ids of the workspace's active admins, locked until the transaction ends (PostgreSQL), so two
    admins demoting each other at once cannot both succeed."""
    query = (
        select(User.id)
        .where(User.workspace_id == workspace_id, User.role == "admin", User.deactivated_at.is_(None))
        .order_by(User.id)
        .with_for_update()
    )
    return list((await session.scalars(query)).all())


async def get_token(session: AsyncSession, workspace_id: UUID, token_id: UUID) -> ApiToken | None:
    """A token of the workspace, live or revoked."""
    return await session.scalar(
        select(ApiToken).where(ApiToken.id == token_id, ApiToken.workspace_id == workspace_id)
    )


async def list_tokens(
    session: AsyncSession,
    workspace_id: UUID,
    *,
    user_id: UUID | None,
    before: tuple[datetime, UUID] | None,
    limit: int,
) -> list[tuple[ApiToken, User | None]]:
    """The workspace's tokens, newest first, each with its user (None for an integration token)."""
    query = (
        select(ApiToken, User)
        .outerjoin(User, User.id == ApiToken.user_id)
        .where(ApiToken.workspace_id == workspace_id)
    )
    if user_id is not None:
        query = query.where(ApiToken.user_id == user_id)
    if before is not None:
        created_at, token_id = before
        query = query.where(
            or_(
                ApiToken.created_at < created_at,
                and_(ApiToken.created_at == created_at, ApiToken.id < token_id),
            )
        )
    query = query.order_by(ApiToken.created_at.desc(), ApiToken.id.desc()).limit(limit)
    return [(token, user) for token, user in (await session.execute(query)).all()]


async def get_team(session: AsyncSession, workspace_id: UUID, team_id: UUID) -> Team | None:
    """A team of the workspace."""
    return await session.scalar(select(Team).where(Team.id == team_id, Team.workspace_id == workspace_id))


async def list_teams(session: AsyncSession, workspace_id: UUID) -> list[Team]:
    """The workspace's teams by name."""
    query = select(Team).where(Team.workspace_id == workspace_id).order_by(Team.name, Team.id)
    return list((await session.scalars(query)).all())


async def team_members(session: AsyncSession, team_ids: Collection[UUID]) -> list[tuple[UUID, User]]:
    """``(team id, user)`` for every member of these teams, by name."""
    if not team_ids:
        return []
    query = (
        select(TeamMember.team_id, User)
        .join(User, User.id == TeamMember.user_id)
        .where(TeamMember.team_id.in_(team_ids))
        .order_by(User.name, User.id)
    )
    return [(team_id, user) for team_id, user in (await session.execute(query)).all()]


async def teams_of_user(session: AsyncSession, workspace_id: UUID, user_id: UUID) -> list[Team]:
    """The teams a user is a member of, by name."""
    query = (
        select(Team)
        .join(TeamMember, TeamMember.team_id == Team.id)
        .where(Team.workspace_id == workspace_id, TeamMember.user_id == user_id)
        .order_by(Team.name, Team.id)
    )
    return list((await session.scalars(query)).all())


async def team_names(session: AsyncSession, workspace_id: UUID) -> dict[UUID, str]:
    """Every team name of the workspace, by team id."""
    rows = await session.execute(select(Team.id, Team.name).where(Team.workspace_id == workspace_id))
    return {row.id: row.name for row in rows}


async def add(session: AsyncSession, row: Team | Label | TeamMember) -> None:
    """Stage a new row; :func:`flush` writes it."""
    session.add(row)


async def delete_row(session: AsyncSession, row: Team | Label) -> None:
    """Delete a team (its memberships go with it) or a label (it leaves every conversation)."""
    await session.delete(row)
    await session.flush()


async def add_member_if_missing(session: AsyncSession, team_id: UUID, user_id: UUID) -> bool:
    """Add a user to a team; False if they already were a member."""
    if await session.get(TeamMember, (team_id, user_id)) is not None:
        return False
    session.add(TeamMember(team_id=team_id, user_id=user_id))
    return await flush(session)


async def remove_member(session: AsyncSession, team_id: UUID, user_id: UUID) -> bool:
    """Remove a user from a team; False if they were not a member."""
    result = await session.execute(
        delete(TeamMember).where(TeamMember.team_id == team_id, TeamMember.user_id == user_id)
    )
    return bool(getattr(result, "rowcount", 0))


async def list_labels(session: AsyncSession, workspace_id: UUID) -> list[Label]:
    """The workspace's label catalogue by name."""
    query = select(Label).where(Label.workspace_id == workspace_id).order_by(func.lower(Label.name), Label.id)
    return list((await session.scalars(query)).all())


async def label_names(session: AsyncSession, workspace_id: UUID) -> dict[UUID, str]:
    """Every label name of the workspace, by label id."""
    rows = await session.execute(select(Label.id, Label.name).where(Label.workspace_id == workspace_id))
    return {row.id: row.name for row in rows}


async def get_label(
    session: AsyncSession, workspace_id: UUID, label_id: UUID, *, for_update: bool = False
) -> Label | None:
    """A label of the workspace's catalogue (``for_update``: locked for the rest of the transaction,
    which also holds off conversations being given it meanwhile)."""
    query = select(Label).where(Label.id == label_id, Label.workspace_id == workspace_id)
    return await session.scalar(query.with_for_update() if for_update else query)


async def labels_by_id(session: AsyncSession, workspace_id: UUID, label_ids: Collection[UUID]) -> list[Label]:
    """The workspace's labels among these ids."""
    if not label_ids:
        return []
    query = select(Label).where(Label.workspace_id == workspace_id, Label.id.in_(label_ids))
    return list((await session.scalars(query)).all())


async def users_by_id(session: AsyncSession, workspace_id: UUID, user_ids: Sequence[UUID]) -> list[User]:
    """The workspace's users among these ids."""
    if not user_ids:
        return []
    query = select(User).where(User.workspace_id == workspace_id, User.id.in_(user_ids))
    return list((await session.scalars(query)).all())
