"""Who is calling: analytics asks the inbox API (``GET /v1/me``), which owns users and tokens.

Services never read each other's tables, so the token is checked where it lives; a verified caller
is remembered for ``token_cache_seconds`` (by the token's hash), so a dashboard's burst of requests
costs one look-up. A revoked token stops working here within that time.
"""

from __future__ import annotations

import hashlib
import uuid
from dataclasses import dataclass
from typing import Annotated, Literal

import httpx
from cachetools import TTLCache
from fastapi import Depends, Request

from shared.errors import Forbidden, PiazzaError, Unauthorized
from shared.http.bearer import CHALLENGE, bearer_token

Role = Literal["admin", "agent", "viewer"]


class IdentityUnavailable(PiazzaError):
    """The inbox API could not say who the caller is."""

    status_code = 503
    code = "identity_unavailable"
    title = "Identity service unavailable"


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated caller: their workspace, role and user (None for an integration token)."""

    workspace_id: uuid.UUID
    workspace_name: str
    role: Role
    user_id: uuid.UUID | None


class Identity:
    """Verifies bearer tokens against the inbox API, with a short cache."""

    def __init__(self, client: httpx.AsyncClient, cache_seconds: float) -> None:
        self._client = client
        self._cache: TTLCache[str, Caller] = TTLCache(maxsize=10_000, ttl=cache_seconds or 1e-9)

    async def caller(self, token: str) -> Caller:
        """The caller a token belongs to; :class:`Unauthorized` if none."""
        key = hashlib.sha256(token.encode()).hexdigest()
        found = self._cache.get(key)
        if found is not None:
            return found
        try:
            response = await self._client.get("/v1/me", headers={"Authorization": f"Bearer {token}"})
        except httpx.HTTPError as exc:
            raise IdentityUnavailable(f"The inbox API did not answer: {type(exc).__name__}.") from exc
        if response.status_code == 401:
            raise Unauthorized("The token is not valid or was revoked.", headers=CHALLENGE)
        if response.status_code != 200:
            raise IdentityUnavailable(f"The inbox API answered {response.status_code} to GET /v1/me.")
        me = response.json()
        user = me.get("user")
        caller = Caller(
            workspace_id=uuid.UUID(me["workspace"]["id"]),
            workspace_name=str(me["workspace"].get("name") or ""),
            role=me["role"],
            user_id=uuid.UUID(user["id"]) if user else None,
        )
        self._cache[key] = caller
        return caller

    async def aclose(self) -> None:
        """Close the HTTP client."""
        await self._client.aclose()


async def authenticated(request: Request) -> Caller:
    """The caller, from ``Authorization: Bearer <token>``; 401 otherwise."""
    token = bearer_token(request)
    identity: Identity = request.app.state.analytics.identity
    return await identity.caller(token)


CallerDep = Annotated[Caller, Depends(authenticated)]


async def admin(caller: CallerDep) -> Caller:
    """The caller, who must be an admin of the workspace."""
    if caller.role != "admin":
        raise Forbidden("This action needs an admin token.")
    return caller


AdminDep = Annotated[Caller, Depends(admin)]


async def agent(caller: CallerDep) -> Caller:
    """The caller, who must be an agent or an admin."""
    if caller.role == "viewer":
        raise Forbidden("Viewers can read but not change anything.")
    return caller


AgentDep = Annotated[Caller, Depends(agent)]
