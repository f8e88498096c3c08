"""Request-scoped dependencies: the process state and the authenticated caller."""

from __future__ import annotations

from typing import Annotated

from fastapi import Depends, Request

from services.inbox.service import access
from services.inbox.service.access import Principal, Role
from services.inbox.state import InboxState
from shared.errors import Forbidden, Unauthorized
from shared.http.bearer import CHALLENGE, bearer_token


async def inbox_state(request: Request) -> InboxState:
    """The inbox's process state (a coroutine: FastAPI runs plain functions in a thread pool, a
    hand-off that cost more than the rest of a dependency on every request)."""
    state: InboxState = request.app.state.inbox
    return state


StateDep = Annotated[InboxState, Depends(inbox_state)]


async def authenticated(request: Request, state: StateDep) -> Principal:
    """The caller, from ``Authorization: Bearer <token>``; 401 otherwise."""
    token = bearer_token(request)
    key = access.hash_token(token)
    principal = state.principals.get(key)
    if principal is None:
        bootstrap = state.settings.bootstrap_token
        async with state.reading() as session:
            principal = await access.authenticate(
                session, token, bootstrap.get_secret_value() if bootstrap else None
            )
        if principal is None:
            raise Unauthorized("The token is not valid or was revoked.", headers=CHALLENGE)
        state.principals[key] = principal
    return principal


PrincipalDep = Annotated[Principal, Depends(authenticated)]


async def admin(principal: PrincipalDep) -> Principal:
    """The caller, who must be an admin of the workspace."""
    if principal.role is not Role.ADMIN:
        raise Forbidden("This action needs an admin token.")
    return principal


AdminDep = Annotated[Principal, Depends(admin)]


async def agent(principal: PrincipalDep) -> Principal:
    """The caller, who must be allowed to act on conversations (an agent or an admin)."""
    if principal.role is Role.VIEWER:
        raise Forbidden("Viewers can read but not reply or moderate.")
    return principal


AgentDep = Annotated[Principal, Depends(agent)]
