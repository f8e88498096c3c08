"""Users of a workspace."""

from __future__ import annotations

import uuid
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.inbox.errors import WorkspaceNotFound
from services.inbox.models import User
from services.inbox.repository import access as access_repo
from services.inbox.repository import users as repo
from services.inbox.service.access import Role


async def create_user(
    session: AsyncSession, workspace_id: uuid.UUID, *, name: str, role: Role, now: datetime, email: str | None
) -> User:
    """A new user of the workspace."""
    if await access_repo.get_workspace(session, workspace_id) is None:
        raise WorkspaceNotFound(f"workspace {workspace_id} does not exist")
    user = User(
        id=uuid.uuid4(),
        workspace_id=workspace_id,
        name=name,
        email=email,
        role=role.value,
        created_at=now,
        updated_at=now,
        deactivated_at=None,
    )
    await repo.add_user(session, user)
    return user
