"""Users of a workspace and their tokens: who may do what."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.inbox.errors import (
    EmailTaken,
    LastAdmin,
    TokenNotFound,
    UserDeactivated,
    UserNotFound,
    WorkspaceNotFound,
)
from services.inbox.models import ApiToken, Team, User, Workspace
from services.inbox.repository import access as access_repo
from services.inbox.repository import users as repo
from services.inbox.service import access
from services.inbox.service.access import Principal, Role
from services.inbox.service.events import audit

_UNSET: Any = object()
"""Marks a field the caller did not send (``None`` clears an email)."""


def normalize_email(email: str | None) -> str | None:
    """Emails compare case-insensitively, so they are stored lower-cased (the constraint then decides)."""
    return email.strip().lower() if email else None


def snapshot(user: User) -> dict[str, Any]:
    """What the audit log keeps of a user."""
    return {
        "name": user.name,
        "email": user.email,
        "role": user.role,
        "active": user.deactivated_at is None,
    }


def token_snapshot(token: ApiToken) -> dict[str, Any]:
    """What the audit log keeps of a token: never its value, hash or hint."""
    return {
        "name": token.name,
        "user_id": str(token.user_id) if token.user_id else None,
        "role": token.role,
        "revoked": token.revoked_at is not None,
    }


async def create_user(
    session: AsyncSession, workspace_id: uuid.UUID, *, name: str, role: Role, now: datetime, email: str | None
) -> User:
    """A new user of the workspace."""
    if await access_repo.get_workspace(session, workspace_id) is None:
        raise WorkspaceNotFound(f"workspace {workspace_id} does not exist")
    email_key = normalize_email(email)
    user = User(
        id=uuid.uuid4(),
        workspace_id=workspace_id,
        name=name,
        email=email_key,
        role=role.value,
        created_at=now,
        updated_at=now,
        deactivated_at=None,
    )
    session.add(user)
    if not await repo.flush(session):
        raise EmailTaken(f"Another user of the workspace has the email {email_key}.")
    return user


async def add_user(
    session: AsyncSession,
    principal: Principal,
    *,
    name: str,
    email: str | None,
    role: Role,
    token_name: str | None,
    now: datetime,
) -> tuple[User, ApiToken | None, str | None]:
    """An admin adds a user, and a first token for them if ``token_name`` is given (its plain value is
    returned here once)."""
    user = await create_user(session, principal.workspace_id, name=name, role=role, now=now, email=email)
    await audit(
        session, principal, action="user.created", target_type="user", target_id=user.id, now=now,
        after=snapshot(user),
    )  # fmt: skip
    token, plain = None, None
    if token_name is not None:
        token, plain = await issue_token(session, principal, user.id, token_name, now)
    return user, token, plain


async def get_user(session: AsyncSession, workspace_id: uuid.UUID, user_id: uuid.UUID) -> User:
    """A user of the workspace; 404 otherwise."""
    user = await repo.get_user(session, workspace_id, user_id)
    if user is None:
        raise UserNotFound(f"user {user_id} not found")
    return user


async def list_users(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    role: Role | None,
    active: bool | None,
    after: tuple[str, uuid.UUID] | None,
    limit: int,
) -> list[User]:
    """The workspace's users by name."""
    return await repo.list_users(
        session, workspace_id, role=role.value if role else None, active=active, after=after, limit=limit
    )


async def update_user(
    session: AsyncSession,
    principal: Principal,
    user_id: uuid.UUID,
    *,
    now: datetime,
    name: str | None = None,
    email: str | None = _UNSET,
    role: Role | None = None,
    active: bool | None = None,
) -> tuple[User, bool]:
    """An admin renames, re-roles, deactivates or reactivates a user. Returns the user and whether
    what their tokens may do changed (a role change or (de)activation): cached principals must go.

    The workspace keeps at least one active admin user: demoting or deactivating the last is refused.
    """
    user = await get_user(session, principal.workspace_id, user_id)
    before = snapshot(user)
    stays_admin = (role or Role(user.role)) is Role.ADMIN and (
        active if active is not None else user.deactivated_at is None
    )
    if before["role"] == Role.ADMIN.value and before["active"] and not stays_admin:
        others = [a for a in await repo.lock_active_admins(session, principal.workspace_id) if a != user.id]
        if not others:
            raise LastAdmin("This is the workspace's last active admin: make another user admin first.")
    if name is not None:
        user.name = name
    if email is not _UNSET:
        user.email = normalize_email(email)
    if role is not None:
        user.role = role.value
    if active is False and user.deactivated_at is None:
        user.deactivated_at = now
    elif active is True:
        user.deactivated_at = None
    after = snapshot(user)
    if after == before:
        return user, False
    user.updated_at = now
    wanted = user.email  # read before the flush: a refused flush expires the row
    if not await repo.flush(session):
        raise EmailTaken(f"Another user of the workspace has the email {wanted}.")
    action = "user.updated"
    if before["active"] != after["active"]:
        action = "user.deactivated" if not after["active"] else "user.reactivated"
    await audit(
        session, principal, action=action, target_type="user", target_id=user.id, now=now,
        before=before, after=after,
    )  # fmt: skip
    return user, before["role"] != after["role"] or before["active"] != after["active"]


async def issue_token(
    session: AsyncSession, principal: Principal, user_id: uuid.UUID, name: str, now: datetime
) -> tuple[ApiToken, str]:
    """An admin issues a token to an active user; the plain value is returned here once. The token
    acts as the user with whatever role the user has when it is used."""
    user = await get_user(session, principal.workspace_id, user_id)
    if user.deactivated_at is not None:
        raise UserDeactivated(f"User {user_id} is deactivated: reactivate them before issuing tokens.")
    token, plain = await access.create_token(
        session, principal.workspace_id, name, Role(user.role), now, user_id=user.id
    )
    await audit(
        session, principal, action="token.created", target_type="token", target_id=token.id, now=now,
        after=token_snapshot(token),
    )  # fmt: skip
    return token, plain


async def list_tokens(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    *,
    user_id: uuid.UUID | None,
    before: tuple[datetime, uuid.UUID] | None,
    limit: int,
) -> list[tuple[ApiToken, User | None]]:
    """The workspace's tokens, newest first, with their users."""
    return await repo.list_tokens(session, workspace_id, user_id=user_id, before=before, limit=limit)


async def revoke_token(
    session: AsyncSession, principal: Principal, token_id: uuid.UUID, now: datetime
) -> bool:
    """An admin revokes a token of the workspace; False if it already was revoked (nothing changes)."""
    token = await repo.get_token(session, principal.workspace_id, token_id)
    if token is None:
        raise TokenNotFound(f"token {token_id} not found")
    if token.revoked_at is not None:
        return False
    before = token_snapshot(token)
    token.revoked_at = now
    await audit(
        session, principal, action="token.revoked", target_type="token", target_id=token.id, now=now,
        before=before, after=token_snapshot(token),
    )  # fmt: skip
    return True


@dataclass(frozen=True)
class Me:
    """Who the caller is: their user (None for an integration token), workspace, token and teams."""

    principal: Principal
    workspace: Workspace
    user: User | None
    token: ApiToken | None
    teams: list[Team]


async def me(session: AsyncSession, principal: Principal) -> Me:
    """The caller as the API knows them."""
    workspace = await access_repo.get_workspace(session, principal.workspace_id)
    if workspace is None:
        raise WorkspaceNotFound(f"workspace {principal.workspace_id} does not exist")
    user = token = None
    teams: list[Team] = []
    if principal.user_id is not None:
        user = await repo.get_user(session, principal.workspace_id, principal.user_id)
        teams = await repo.teams_of_user(session, principal.workspace_id, principal.user_id)
    if principal.token_id is not None:
        token = await repo.get_token(session, principal.workspace_id, principal.token_id)
    return Me(principal, workspace, user, token, teams)
