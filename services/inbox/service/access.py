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


class Role(StrEnum):
    """What a token may do: admins manage the workspace, agents work it, viewers read it."""

    ADMIN = "admin"
    AGENT = "agent"
    VIEWER = "viewer"


@dataclass(frozen=True)
class Principal:
    """The authenticated caller of a request."""

    workspace_id: uuid.UUID
    role: Role
    token_id: uuid.UUID | None


def hash_token(token: str) -> str:
    """Tokens are 256-bit random strings, so a plain SHA-256 is a safe stored form."""
    return hashlib.sha256(token.encode()).hexdigest()


async def ensure_workspace(session: AsyncSession, workspace_id: uuid.UUID, name: str, now: datetime) -> None:
    """Create the workspace if it does not exist."""
    await repo.add_workspace(session, workspace_id, name, now)


async def create_workspace(session: AsyncSession, name: str, now: datetime) -> uuid.UUID:
    """A new workspace; returns its id."""
    workspace_id = uuid.uuid4()
    await repo.add_workspace(session, workspace_id, name, now)
    return workspace_id


async def create_token(
    session: AsyncSession, workspace_id: uuid.UUID, name: str, role: Role, now: datetime
) -> tuple[ApiToken, str]:
    """A new token; the plain value is returned here once and never stored."""
    if await repo.get_workspace(session, workspace_id) is None:
        raise WorkspaceNotFound(f"workspace {workspace_id} does not exist")
    plain = TOKEN_PREFIX + secrets.token_urlsafe(32)
    token = ApiToken(
        id=uuid.uuid4(),
        workspace_id=workspace_id,
        name=name,
        role=role.value,
        token_hash=hash_token(plain),
        hint=plain[-4:],
        created_at=now,
        revoked_at=None,
    )
    await repo.add_token(session, token)
    return token, plain


async def authenticate(session: AsyncSession, presented: str, bootstrap: str | None) -> Principal | None:
    """The principal a bearer token stands for, or None."""
    if bootstrap is not None and hmac.compare_digest(presented.encode(), bootstrap.encode()):
        return Principal(DEFAULT_WORKSPACE_ID, Role.ADMIN, None)
    token = await repo.token_by_hash(session, hash_token(presented))
    if token is None:
        return None
    return Principal(token.workspace_id, Role(token.role), token.id)


async def revoke_token(session: AsyncSession, token_id: uuid.UUID, now: datetime) -> bool:
    """Revoke a token; False if there is no such live token."""
    token = await repo.get_token(session, token_id)
    if token is None or token.revoked_at is not None:
        return False
    token.revoked_at = now
    return True
