"""``/v1/me``, ``/v1/users`` and ``/v1/tokens``: who works the inbox, with which role and token."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from services.inbox.dependencies import AdminDep, PrincipalDep, StateDep
from services.inbox.errors import InvalidCursor
from services.inbox.models import ApiToken, User
from services.inbox.schemas import Page
from services.inbox.schemas.people import (
    MeOut,
    MeToken,
    MeUser,
    TeamRef,
    TokenCreate,
    TokenIssued,
    TokenOut,
    UserCreate,
    UserCreated,
    UserOut,
    UserRef,
    UserUpdate,
    WorkspaceRef,
)
from services.inbox.service import users as service
from services.inbox.service.access import Role
from services.inbox.state import InboxState
from shared.events import utcnow
from shared.http.pagination import CursorError, decode_cursor, encode_cursor
from shared.logging import get_logger

log = get_logger(__name__)

router = APIRouter(prefix="/v1", tags=["people"])


def user_out(user: User) -> UserOut:
    """A user as the API shows it."""
    return UserOut(
        id=user.id,
        name=user.name,
        email=user.email,
        role=Role(user.role),
        active=user.deactivated_at is None,
        deactivated_at=user.deactivated_at,
        created_at=user.created_at,
        updated_at=user.updated_at,
    )


def _token_out(token: ApiToken, user: User | None) -> TokenOut:
    return TokenOut(
        id=token.id,
        name=token.name,
        role=Role(user.role if user is not None else token.role),
        user=UserRef(id=user.id, name=user.name) if user is not None else None,
        hint=token.hint,
        created_at=token.created_at,
        revoked_at=token.revoked_at,
    )


def _issued(token: ApiToken, user: User, plain: str) -> TokenIssued:
    return TokenIssued(**_token_out(token, user).model_dump(), token=plain)


def _forget_principals(state: InboxState) -> None:
    """Drop this process's cached principals, so a revoked token, a deactivated user or a new role
    takes effect at the next request here; other API processes follow within their cache time
    (``PIAZZA_INBOX_TOKEN_CACHE_SECONDS``, 10 s by default)."""
    state.principals.clear()


@router.get("/me")
async def get_me(principal: PrincipalDep, state: StateDep) -> MeOut:
    """Who the caller is: their user (null for an integration token), role, workspace, token and teams."""
    async with state.reading() as session:
        me = await service.me(session, principal)
    return MeOut(
        user=MeUser(id=me.user.id, name=me.user.name, email=me.user.email, role=Role(me.user.role))
        if me.user is not None
        else None,
        role=principal.role,
        workspace=WorkspaceRef(id=me.workspace.id, name=me.workspace.name),
        token=MeToken(id=me.token.id, name=me.token.name, hint=me.token.hint) if me.token else None,
        teams=[TeamRef(id=team.id, name=team.name) for team in me.teams],
    )


@router.get("/users")
async def list_users(
    principal: PrincipalDep,
    state: StateDep,
    role: Role | None = None,
    active: Annotated[bool | None, Query(description="true: active users only; false: deactivated.")] = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> Page[UserOut]:
    """The workspace's users by name (every role may list them, e.g. to pick an assignee)."""
    try:
        after = decode_cursor(cursor, str, UUID) if cursor else None
    except CursorError as exc:
        raise InvalidCursor(str(exc)) from exc
    async with state.reading() as session:
        users = await service.list_users(
            session,
            principal.workspace_id,
            role=role,
            active=active,
            after=(after[0], after[1]) if after else None,
            limit=limit + 1,
        )
    page = users[:limit]
    return Page[UserOut](
        data=[user_out(u) for u in page],
        has_more=len(users) > limit,
        next_cursor=encode_cursor(page[-1].name, page[-1].id) if page else cursor,
    )


@router.get("/users/{user_id}")
async def get_user(user_id: UUID, principal: PrincipalDep, state: StateDep) -> UserOut:
    """One user of the workspace."""
    async with state.reading() as session:
        user = await service.get_user(session, principal.workspace_id, user_id)
    return user_out(user)


@router.post(
    "/users",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "Another user of the workspace has this email"}},
)
async def create_user(
    body: UserCreate, principal: AdminDep, state: StateDep, response: Response
) -> UserCreated:
    """Add a user (admins only). With ``token_name``, their first token is issued and shown in this
    answer only."""
    async with state.transaction() as session:
        user, token, plain = await service.add_user(
            session,
            principal,
            name=body.name,
            email=body.email,
            role=body.role,
            token_name=body.token_name,
            now=utcnow(),
        )
    log.info("inbox.user.created", user_id=str(user.id), role=user.role)
    response.headers["Location"] = f"/v1/users/{user.id}"
    issued = _issued(token, user, plain) if token is not None and plain is not None else None
    return UserCreated(**user_out(user).model_dump(), token=issued)


@router.patch(
    "/users/{user_id}",
    responses={409: {"description": "The email is taken, or this is the workspace's last active admin"}},
)
async def update_user(user_id: UUID, body: UserUpdate, principal: AdminDep, state: StateDep) -> UserOut:
    """Rename a user, change their email or role, deactivate (``active: false``: their tokens stop
    working at once) or reactivate them (admins only). The last active admin cannot be demoted or
    deactivated."""
    changes: dict[str, Any] = {"name": body.name, "active": body.active}
    if body.role is not None:
        changes["role"] = body.role
    if "email" in body.model_fields_set:
        changes["email"] = body.email
    async with state.transaction() as session:
        user, access_changed = await service.update_user(session, principal, user_id, now=utcnow(), **changes)
    if access_changed:
        _forget_principals(state)
        log.info(
            "inbox.user.access_changed",
            user_id=str(user.id),
            role=user.role,
            active=user.deactivated_at is None,
        )
    return user_out(user)


@router.post(
    "/users/{user_id}/tokens",
    status_code=status.HTTP_201_CREATED,
    responses={409: {"description": "The user is deactivated"}},
)
async def create_token(user_id: UUID, body: TokenCreate, principal: AdminDep, state: StateDep) -> TokenIssued:
    """Issue a token to a user (admins only); its value is shown in this answer only. It acts as the
    user, with the user's role at the time of each request."""
    async with state.transaction() as session:
        token, plain = await service.issue_token(session, principal, user_id, body.name, utcnow())
        user = await service.get_user(session, principal.workspace_id, user_id)
    log.info("inbox.token.created", token_id=str(token.id), user_id=str(user_id))
    return _issued(token, user, plain)


@router.get("/tokens")
async def list_tokens(
    principal: AdminDep,
    state: StateDep,
    user_id: UUID | None = None,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=500)] = 200,
) -> Page[TokenOut]:
    """The workspace's tokens, newest first, live and revoked, never their values (admins only)."""
    try:
        before = decode_cursor(cursor, datetime, UUID) if cursor else None
    except CursorError as exc:
        raise InvalidCursor(str(exc)) from exc
    async with state.reading() as session:
        rows = await service.list_tokens(
            session,
            principal.workspace_id,
            user_id=user_id,
            before=(before[0], before[1]) if before else None,
            limit=limit + 1,
        )
    page = rows[:limit]
    return Page[TokenOut](
        data=[_token_out(token, user) for token, user in page],
        has_more=len(rows) > limit,
        next_cursor=encode_cursor(page[-1][0].created_at, page[-1][0].id) if page else cursor,
    )


@router.delete("/tokens/{token_id}", status_code=status.HTTP_204_NO_CONTENT)
async def revoke_token(token_id: UUID, principal: AdminDep, state: StateDep) -> None:
    """Revoke a token (admins only): it stops working at once. Revoking a revoked token changes
    nothing."""
    async with state.transaction() as session:
        revoked = await service.revoke_token(session, principal, token_id, utcnow())
    if revoked:
        _forget_principals(state)
        log.info("inbox.token.revoked", token_id=str(token_id))
