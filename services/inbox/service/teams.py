"""Teams: groups of users conversations can be routed to."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from services.inbox.errors import TeamNameTaken, TeamNotFound, UserNotFound
from services.inbox.models import Team, User
from services.inbox.repository import users as repo
from services.inbox.repository import workflow as workflow_repo
from services.inbox.service import workflow
from services.inbox.service.access import Principal
from services.inbox.service.events import audit


def _snapshot(team: Team) -> dict[str, Any]:
    return {"name": team.name}


async def _refuse_taken_name(
    session: AsyncSession, workspace_id: uuid.UUID, name: str, keep: uuid.UUID | None = None
) -> None:
    # Names compare case-insensitively (in Python, so non-ASCII letters fold alike on SQLite and
    # PostgreSQL); the catalogue is small. Two admins racing with "Billing" and "billing" could both
    # pass: the exact-name constraint still refuses identical names.
    folded = name.casefold()
    for team_id, other in (await repo.team_names(session, workspace_id)).items():
        if team_id != keep and other.casefold() == folded:
            raise TeamNameTaken(f"The workspace already has a team named {other!r}.")


async def get_team(session: AsyncSession, workspace_id: uuid.UUID, team_id: uuid.UUID) -> Team:
    """A team of the workspace; 404 otherwise."""
    team = await repo.get_team(session, workspace_id, team_id)
    if team is None:
        raise TeamNotFound(f"team {team_id} not found")
    return team


async def list_teams(session: AsyncSession, workspace_id: uuid.UUID) -> list[tuple[Team, list[User]]]:
    """Every team of the workspace by name, with its members by name."""
    teams = await repo.list_teams(session, workspace_id)
    members: dict[uuid.UUID, list[User]] = {team.id: [] for team in teams}
    for team_id, user in await repo.team_members(session, list(members)):
        members[team_id].append(user)
    return [(team, members[team.id]) for team in teams]


async def team_with_members(
    session: AsyncSession, workspace_id: uuid.UUID, team_id: uuid.UUID
) -> tuple[Team, list[User]]:
    """One team with its members by name."""
    team = await get_team(session, workspace_id, team_id)
    return team, [user for _, user in await repo.team_members(session, [team.id])]


async def create_team(
    session: AsyncSession, principal: Principal, *, name: str, member_ids: list[uuid.UUID], now: datetime
) -> Team:
    """An admin creates a team, optionally with its first members."""
    await _refuse_taken_name(session, principal.workspace_id, name)
    found = {u.id for u in await repo.users_by_id(session, principal.workspace_id, member_ids)}
    missing = [m for m in member_ids if m not in found]
    if missing:
        raise UserNotFound(f"user {missing[0]} not found")
    team = Team(
        id=uuid.uuid4(), workspace_id=principal.workspace_id, name=name, created_at=now, updated_at=now
    )
    await repo.add(session, team)
    if not await repo.flush(session):
        raise TeamNameTaken(f"The workspace already has a team named {name!r}.")
    for user_id in dict.fromkeys(member_ids):
        await repo.add_member_if_missing(session, team.id, user_id)
    await audit(
        session, principal, action="team.created", target_type="team", target_id=team.id, now=now,
        after={**_snapshot(team), "member_ids": [str(m) for m in dict.fromkeys(member_ids)]},
    )  # fmt: skip
    return team


async def rename_team(
    session: AsyncSession, principal: Principal, team_id: uuid.UUID, *, name: str, now: datetime
) -> Team:
    """An admin renames a team."""
    team = await get_team(session, principal.workspace_id, team_id)
    if team.name == name:
        return team
    await _refuse_taken_name(session, principal.workspace_id, name, keep=team.id)
    before = _snapshot(team)
    team.name = name
    team.updated_at = now
    if not await repo.flush(session):
        raise TeamNameTaken(f"The workspace already has a team named {name!r}.")
    await audit(
        session, principal, action="team.updated", target_type="team", target_id=team.id, now=now,
        before=before, after=_snapshot(team),
    )  # fmt: skip
    return team


async def delete_team(
    session: AsyncSession, principal: Principal, team_id: uuid.UUID, now: datetime
) -> list[str]:
    """An admin deletes a team: its memberships go, and its conversations are left without a team
    (each one changes version, is audited and announced). Returns the outbox ids of those events."""
    team = await get_team(session, principal.workspace_id, team_id)
    routed = await workflow_repo.conversations_of_team(session, principal.workspace_id, team.id)
    _, _, changed = await workflow.bulk_update(
        session, principal, routed, {"team_id": None}, now, action="conversation.team_deleted"
    )
    before = _snapshot(team)
    await repo.delete_row(session, team)
    await audit(
        session, principal, action="team.deleted", target_type="team", target_id=team_id, now=now,
        before=before,
    )  # fmt: skip
    return changed.outbox_ids


async def add_member(
    session: AsyncSession, principal: Principal, team_id: uuid.UUID, user_id: uuid.UUID, now: datetime
) -> bool:
    """An admin adds a user to a team; False if they already were a member (nothing changes)."""
    team = await get_team(session, principal.workspace_id, team_id)
    if await repo.get_user(session, principal.workspace_id, user_id) is None:
        raise UserNotFound(f"user {user_id} not found")
    if not await repo.add_member_if_missing(session, team.id, user_id):
        return False
    await audit(
        session, principal, action="team.member_added", target_type="team", target_id=team.id, now=now,
        after={"user_id": str(user_id)},
    )  # fmt: skip
    return True


async def remove_member(
    session: AsyncSession, principal: Principal, team_id: uuid.UUID, user_id: uuid.UUID, now: datetime
) -> None:
    """An admin removes a user from a team; 404 if the user was not a member."""
    team = await get_team(session, principal.workspace_id, team_id)
    if not await repo.remove_member(session, team.id, user_id):
        raise UserNotFound(f"user {user_id} is not a member of team {team_id}")
    await audit(
        session, principal, action="team.member_removed", target_type="team", target_id=team.id, now=now,
        before={"user_id": str(user_id)},
    )  # fmt: skip
