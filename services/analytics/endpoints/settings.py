"""``/v1/analytics/settings``: time zone, working hours, watched keywords and report delivery."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter
from pydantic import AnyHttpUrl, BaseModel, ConfigDict, Field, StringConstraints

from services.analytics.auth import AdminDep, CallerDep
from services.analytics.endpoints.common import StateDep
from services.analytics.service import settings as service
from shared.events import utcnow

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])

Keyword = Annotated[str, StringConstraints(strip_whitespace=True, min_length=2, max_length=100)]


class ReportSchedule(BaseModel):
    """Which periodic reports are delivered, and where: the installation's report folder (a
    sub-folder per workspace) and/or the workspace's outgoing webhooks (event ``report.generated``)."""

    model_config = ConfigDict(extra="forbid")

    kinds: list[Literal["weekly", "monthly"]] = Field(default_factory=list)
    webhook: bool = Field(False, description="Announce each report as a report.generated event.")
    folder: bool = Field(False, description="Write HTML and CSV files to the report folder.")
    base_url: AnyHttpUrl | None = Field(None, description="Public URL of the API, for links in events.")


class SettingsIn(BaseModel):
    """Analytics settings; fields left out keep their value."""

    model_config = ConfigDict(extra="forbid")

    timezone: str | None = Field(None, max_length=64, examples=["Europe/Rome"])
    working_hours: dict[str, Any] | None = Field(
        None, examples=[{"mon": ["09:00", "18:00"], "sat": [["10:00", "13:00"]]}]
    )
    watched_keywords: list[Keyword] | None = Field(None, max_length=50)
    report_schedule: ReportSchedule | None = None


@router.get("/settings")
async def get_settings(caller: CallerDep, state: StateDep) -> dict[str, Any]:
    """The workspace's analytics settings."""
    async with state.reading() as session:
        return await service.current(session, caller.workspace_id)


@router.put("/settings")
async def put_settings(caller: AdminDep, state: StateDep, body: SettingsIn) -> dict[str, Any]:
    """Change the analytics settings (admins). A new time zone or working hours recomputes every
    conversation's business-hours response time."""
    wanted = body.model_dump(exclude_none=True, mode="json")
    async with state.transaction() as session:
        return await service.save(session, caller.workspace_id, wanted, utcnow())
