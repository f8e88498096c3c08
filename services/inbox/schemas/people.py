"""Request and response bodies of the people routes: the caller, users, tokens, teams and labels."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Generic, TypeVar
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from services.inbox.schemas import Name
from services.inbox.schemas.text import printable
from services.inbox.service.access import Role

T = TypeVar("T")


Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
]
LabelName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64), AfterValidator(printable)
]
Color = Annotated[
    str,
    StringConstraints(pattern=r"^#[0-9a-fA-F]{6}$", to_lower=True),
    Field(description="A colour as #rrggbb.", examples=["#d93f0b"]),
]
Description = Annotated[str, StringConstraints(strip_whitespace=True, max_length=1000)]


class Catalogue(BaseModel, Generic[T]):
    """A whole catalogue in one answer (teams, labels: a workspace has a few dozen at most)."""

    data: list[T]


class UserRef(BaseModel):
    """A user as other objects name them."""

    id: UUID
    name: str


class UserOut(BaseModel):
    """A user of the workspace. Deactivated users (``active`` false) cannot sign in but keep their
    history."""

    id: UUID
    name: str
    email: str | None
    role: Role
    active: bool
    deactivated_at: datetime | None
    created_at: datetime
    updated_at: datetime


class UserCreate(BaseModel):
    """A new user; with ``token_name``, a first token is issued and returned once."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    email: Email | None = None
    role: Role = Role.AGENT
    token_name: Name | None = Field(None, description="Issue a first token with this name.")


class UserUpdate(BaseModel):
    """Fields to change; omitted ones stay. ``active: false`` deactivates the user at once (their
    tokens stop working), ``active: true`` reactivates them (their tokens work again)."""

    model_config = ConfigDict(extra="forbid")

    name: Name | None = None
    email: Email | None = Field(None, description="null clears it.")
    role: Role | None = None
    active: bool | None = None


class TokenCreate(BaseModel):
    """A new token for a user."""

    model_config = ConfigDict(extra="forbid")

    name: Name = Field(description="What the token is for, e.g. the device or the integration.")


class TokenOut(BaseModel):
    """An API token, never its value: ``hint`` is its last four characters. A user's token has the
    user's current role; an integration token (no user) has the role it was issued with."""

    id: UUID
    name: str
    role: Role
    user: UserRef | None
    hint: str
    created_at: datetime
    revoked_at: datetime | None


class TokenIssued(TokenOut):
    """A token just issued: ``token`` is shown in this answer only; store it."""

    token: str


class UserCreated(UserOut):
    """A user just added, with their first token when one was asked for (shown in this answer only)."""

    token: TokenIssued | None


class MeUser(BaseModel):
    """The caller's user."""

    id: UUID
    name: str
    email: str | None
    role: Role


class WorkspaceRef(BaseModel):
    """A workspace."""

    id: UUID
    name: str


class MeToken(BaseModel):
    """The token of the request."""

    id: UUID
    name: str
    hint: str


class TeamRef(BaseModel):
    """A team as other objects name it."""

    id: UUID
    name: str


class MeOut(BaseModel):
    """Who the caller is: their user (null for an integration token), role, workspace, token (null for
    the development bootstrap token) and teams."""

    user: MeUser | None
    role: Role
    workspace: WorkspaceRef
    token: MeToken | None
    teams: list[TeamRef]


class TeamOut(BaseModel):
    """A team with its members."""

    id: UUID
    name: str
    members: list[UserRef]
    created_at: datetime
    updated_at: datetime


class TeamCreate(BaseModel):
    """A new team, optionally with its first members."""

    model_config = ConfigDict(extra="forbid")

    name: Name
    member_ids: list[UUID] = Field(default_factory=list, max_length=500)


class TeamUpdate(BaseModel):
    """A team's new name."""

    model_config = ConfigDict(extra="forbid")

    name: Name


class LabelOut(BaseModel):
    """A label of the workspace's catalogue."""

    id: UUID
    name: str
    color: str | None
    description: str | None
    created_at: datetime
    updated_at: datetime


class LabelCreate(BaseModel):
    """A new label; names are unique in the workspace, whatever their case."""

    model_config = ConfigDict(extra="forbid")

    name: LabelName
    color: Color | None = None
    description: Description | None = None


class LabelUpdate(BaseModel):
    """Fields to change; omitted ones stay, null clears ``color`` or ``description``."""

    model_config = ConfigDict(extra="forbid")

    name: LabelName | None = None
    color: Color | None = None
    description: Description | None = None
