"""Workspaces, tokens and who a request is."""

from __future__ import annotations

import hashlib
import hmac
import secrets
import uuid
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from services.inbox.errors import WorkspaceNotFound
from services.inbox.models import ApiToken
from services.inbox.repository import access as repo

TOKEN_PREFIX = "pz_"  # noqa: S105 - a prefix, not a secret
DEFAULT_WORKSPACE_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
"""The workspace the development bootstrap token belongs to."""
DEFAULT_USER_ID = uuid.UUID("00000000-0000-4000-8000-000000000002")
"""The admin user the development bootstrap token acts as."""


class Role(StrEnum):
    """What a token may do: admins manage the workspace, agents work it, viewers read it."""

    ADMIN = "admin"
    AGENT = "agent"
    VIEWER = "viewer"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request: a user (through one of their tokens) or an integration's
    token without a user (``user_id`` is None)."""

    workspace_id: uuid.UUID
    role: Role
    token_id: uuid.UUID | None
    user_id: uuid.UUID | None = None
    user_name: str | None = None


def hash_token(token: str) -> str:
    """Tokens are 256-bit random strings, so a plain SHA-256 is a safe stored form."""
    return hashlib.sha256(token.encode()).hexdigest()


async def ensure_workspace(session: AsyncSession, workspace_id: uuid.UUID, name: str, now: datetime) -> None:
    """Create the workspace if it does not exist."""
    await repo.add_workspace(session, workspace_id, name, now)


async def ensure_bootstrap_user(session: AsyncSession, now: datetime) -> None:
    """The default workspace and the admin user the development bootstrap token acts as."""
    await repo.add_workspace(session, DEFAULT_WORKSPACE_ID, "Default", now)
    await repo.add_user_if_missing(
        session,
        {
            "id": DEFAULT_USER_ID,
            "workspace_id": DEFAULT_WORKSPACE_ID,
            "name": "Developer",
            "email": None,
            "role": Role.ADMIN.value,
            "created_at": now,
            "updated_at": now,
            "deactivated_at": None,
        },
    )


async def create_workspace(session: AsyncSession, name: str, now: datetime) -> uuid.UUID:
    """A new workspace; returns its id."""
    workspace_id = uuid.uuid4()
    await repo.add_workspace(session, workspace_id, name, now)
    return workspace_id


async def create_token(
    session: AsyncSession,
    workspace_id: uuid.UUID,
    name: str,
    role: Role,
    now: datetime,
    user_id: uuid.UUID | None = None,
) -> tuple[ApiToken, str]:
    """A new token (a user's when ``user_id`` is given); the plain value is returned here once and never
    stored."""
    if await repo.get_workspace(session, workspace_id) is None:
        raise WorkspaceNotFound(f"workspace {workspace_id} does not exist")
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        id=uuid.uuid4(),
        workspace_id=workspace_id,
        name=name,
        role=role.value,
        user_id=user_id,
        token_hash=hash_token(plain),
        hint=plain[-4:],
        created_at=now,
        revoked_at=None,
    )
    await repo.add_token(session, token)
    return token, plain


async def authenticate(session: AsyncSession, presented: str, bootstrap: str | None) -> Principal | None:
    """The principal a bearer token stands for, or None (unknown, revoked, or its user deactivated).

    A user's token carries the user's current role, not the one it was issued with.
    """
    if bootstrap is not None and hmac.compare_digest(presented.encode(), bootstrap.encode()):
        return Principal(DEFAULT_WORKSPACE_ID, Role.ADMIN, None, DEFAULT_USER_ID, "Developer")
    found = await repo.token_with_user(session, hash_token(presented))
    if found is None:
        return None
    token, user = found
    if user is None:
        return Principal(token.workspace_id, Role(token.role), token.id)
    if user.deactivated_at is not None:
        return None
    return Principal(token.workspace_id, Role(user.role), token.id, user.id, user.name)


async def revoke_token(session: AsyncSession, token_id: uuid.UUID, now: datetime) -> bool:
    """Revoke a token; False if there is no such live token."""
    token = await repo.get_token(session, token_id)
    if token is None or token.revoked_at is not None:
        return False
    token.revoked_at = now
    return True
