"""``/v1/teams``: groups of users conversations can be routed to."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from fastapi import APIRouter, Response, status

from services.inbox.dependencies import AdminDep, PrincipalDep, StateDep
from services.inbox.endpoints.workflow import publish
from services.inbox.models import Team, User
from services.inbox.schemas.people import Catalogue, TeamCreate, TeamOut, TeamUpdate, UserRef
from services.inbox.service import teams as service
from shared.events import utcnow

router = APIRouter(prefix="/v1/teams", tags=["teams"])

_NAME_TAKEN: dict[int | str, dict[str, Any]] = {
    409: {"description": "The workspace already has a team of this name"}
}


def _team_out(team: Team, members: list[User]) -> TeamOut:
    return TeamOut(
        id=team.id,
        name=team.name,
        members=[UserRef(id=u.id, name=u.name) for u in members],
        created_at=team.created_at,
        updated_at=team.updated_at,
    )


@router.get("")
async def list_teams(principal: PrincipalDep, state: StateDep) -> Catalogue[TeamOut]:
    """Every team of the workspace by name, with its members."""
    async with state.reading() as session:
        teams = await service.list_teams(session, principal.workspace_id)
    return Catalogue[TeamOut](data=[_team_out(team, members) for team, members in teams])


@router.get("/{team_id}")
async def get_team(team_id: UUID, principal: PrincipalDep, state: StateDep) -> TeamOut:
    """One team with its members."""
    async with state.reading() as session:
        team, members = await service.team_with_members(session, principal.workspace_id, team_id)
    return _team_out(team, members)


@router.post("", status_code=status.HTTP_201_CREATED, responses=_NAME_TAKEN)
async def create_team(body: TeamCreate, principal: AdminDep, state: StateDep, response: Response) -> TeamOut:
    """Create a team, optionally with its first members (admins only)."""
    async with state.transaction() as session:
        team = await service.create_team(
            session, principal, name=body.name, member_ids=body.member_ids, now=utcnow()
        )
        team, members = await service.team_with_members(session, principal.workspace_id, team.id)
    response.headers["Location"] = f"/v1/teams/{team.id}"
    return _team_out(team, members)


@router.patch("/{team_id}", responses=_NAME_TAKEN)
async def update_team(team_id: UUID, body: TeamUpdate, principal: AdminDep, state: StateDep) -> TeamOut:
    """Rename a team (admins only)."""
    async with state.transaction() as session:
        await service.rename_team(session, principal, team_id, name=body.name, now=utcnow())
        team, members = await service.team_with_members(session, principal.workspace_id, team_id)
    return _team_out(team, members)


@router.delete("/{team_id}", status_code=status.HTTP_204_NO_CONTENT)
async def delete_team(team_id: UUID, principal: AdminDep, state: StateDep) -> None:
    """Delete a team (admins only): its conversations are left without a team."""
    async with state.transaction() as session:
        entries = await service.delete_team(session, principal, team_id, utcnow())
    await publish(state, entries)


@router.put("/{team_id}/members/{user_id}")
async def add_member(team_id: UUID, user_id: UUID, principal: AdminDep, state: StateDep) -> TeamOut:
    """Make a user a member of the team (admins only); adding a member again changes nothing."""
    async with state.transaction() as session:
        await service.add_member(session, principal, team_id, user_id, utcnow())
        team, members = await service.team_with_members(session, principal.workspace_id, team_id)
    return _team_out(team, members)


@router.delete("/{team_id}/members/{user_id}", status_code=status.HTTP_204_NO_CONTENT)
async def remove_member(team_id: UUID, user_id: UUID, principal: AdminDep, state: StateDep) -> None:
    """Remove a user from the team (admins only)."""
    async with state.transaction() as session:
        await service.remove_member(session, principal, team_id, user_id, utcnow())
