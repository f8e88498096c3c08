"""Workspaces and API tokens."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from services.inbox.models import ApiToken, User, Workspace
from shared.db import insert_for


async def add_workspace(session: AsyncSession, workspace_id: UUID, name: str, now: datetime) -> None:
    """Create a workspace unless one with this id exists."""
    table = Workspace.__table__
    statement = insert_for(session.get_bind().dialect.name, table).on_conflict_do_nothing(
        index_elements=[table.c.id]
    )
    await session.execute(statement, [{"id": workspace_id, "name": name, "created_at": now}])


async def get_workspace(session: AsyncSession, workspace_id: UUID) -> Workspace | None:
    """A workspace by id."""
    return await session.get(Workspace, workspace_id)


async def list_workspaces(session: AsyncSession) -> list[Workspace]:
    """Every workspace, oldest first."""
    return list((await session.scalars(select(Workspace).order_by(Workspace.created_at))).all())


async def add_token(session: AsyncSession, token: ApiToken) -> None:
    """Store a new token (its hash)."""
    session.add(token)
    await session.flush()


async def token_with_user(session: AsyncSession, token_hash: str) -> tuple[ApiToken, User | None] | None:
    """The live token with this hash, and its user if it has one."""
    row = (
        await session.execute(
            select(ApiToken, User)
            .outerjoin(User, User.id == ApiToken.user_id)
            .where(ApiToken.token_hash == token_hash, ApiToken.revoked_at.is_(None))
        )
    ).first()
    return (row[0], row[1]) if row is not None else None


async def add_user_if_missing(session: AsyncSession, values: dict[str, object]) -> None:
    """Store a user unless one with its id exists (two processes starting at once both may try)."""
    table = User.__table__
    statement = insert_for(session.get_bind().dialect.name, table).on_conflict_do_nothing(
        index_elements=[table.c.id]
    )
    await session.execute(statement, [values])


async def list_tokens(session: AsyncSession, workspace_id: UUID) -> list[ApiToken]:
    """The workspace's tokens, newest first."""
    return list(
        (
            await session.scalars(
                select(ApiToken)
                .where(ApiToken.workspace_id == workspace_id)
                .order_by(ApiToken.created_at.desc())
            )
        ).all()
    )


async def get_token(session: AsyncSession, token_id: UUID) -> ApiToken | None:
    """A token by id."""
    return await session.get(ApiToken, token_id)
