"""Request and response shapes of the conversation workflow: status, assignment, labels, notes, claims."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal
from uuid import UUID

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, StringConstraints, model_validator

from shared.sentiment import SentimentLabel

Status = Literal["open", "pending", "snoozed", "resolved"]
Priority = Literal["low", "normal", "high", "urgent"]
NoteText = Annotated[str, StringConstraints(min_length=1, max_length=32768, strip_whitespace=True)]
LabelIds = Annotated[list[UUID], Field(max_length=50)]


class _Changes(BaseModel):
    """Fields an agent may change on a conversation; a field left out stays as it is."""

    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    snoozed_until: AwareDatetime | None = Field(
        None, description="Required with status snoozed: when the conversation opens again by itself."
    )
    assignee_id: UUID | None = Field(None, description="An agent or admin of the workspace; null unassigns.")
    team_id: UUID | None = Field(None, description="A team of the workspace; null clears it.")
    priority: Priority | None = Field(None, description="null clears it.")

    @model_validator(mode="after")
    def _snooze_needs_a_time(self) -> _Changes:
        if self.status == "snoozed" and self.snoozed_until is None:
            raise ValueError("status snoozed needs snoozed_until")
        if self.snoozed_until is not None and self.status != "snoozed":
            raise ValueError("snoozed_until goes with status snoozed")
        return self


class ConversationUpdate(_Changes):
    """``PATCH /v1/conversations/{id}``: send ``If-Match`` with the version you saw to refuse a stale write."""

    labels: LabelIds | None = Field(None, description="The whole set of labels (ids from GET /v1/labels).")


class BulkChanges(_Changes):
    """What a bulk action does to each conversation."""

    add_labels: LabelIds = Field(default_factory=list)
    remove_labels: LabelIds = Field(default_factory=list)


class BulkFilter(BaseModel):
    """The conversations a bulk action applies to, as the list's filters select them."""

    model_config = ConfigDict(extra="forbid")

    status: Status | None = None
    channel_id: UUID | None = None
    assignee_id: UUID | Literal["me", "none"] | None = None
    team_id: UUID | None = None
    label_id: UUID | None = None
    priority: Priority | None = None
    unread: bool | None = None
    q: str | None = Field(None, min_length=1, max_length=200)
    since: AwareDatetime | None = None
    until: AwareDatetime | None = None
    sentiment: SentimentLabel | Annotated[list[SentimentLabel], Field(min_length=1, max_length=3)] | None = (
        Field(None, description="One label or a list: the conversation's sentiment is one of them.")
    )


class BulkRequest(BaseModel):
    """``POST /v1/conversations/bulk``: apply ``set`` to the listed ids, or to what ``filter`` selects."""

    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    ids: Annotated[list[UUID], Field(min_length=1, max_length=1000)] | None = None
    filter: BulkFilter | None = None
    changes: BulkChanges = Field(alias="set")
    limit: int = Field(1000, ge=1, le=10_000, description="With filter: at most this many conversations.")
    cursor: str | None = Field(
        None, description="With filter: continue after the conversations an earlier call went through."
    )

    @model_validator(mode="after")
    def _one_selection(self) -> BulkRequest:
        if (self.ids is None) == (self.filter is None):
            raise ValueError("give either ids or filter")
        return self


class BulkResult(BaseModel):
    """What a bulk action did."""

    matched: int = Field(description="Conversations selected.")
    updated: int = Field(description="Conversations that changed (the others already were so).")
    truncated: bool = Field(
        description="The filter selected more than the limit: call again with next_cursor for the rest."
    )
    next_cursor: str | None = Field(description="With a filter: where the next call continues.")
    not_found: list[UUID] = Field(description="Listed ids that are not conversations of this workspace.")


class NoteCreate(BaseModel):
    """A private note: shown to the team with the conversation, never sent to the platform."""

    model_config = ConfigDict(extra="forbid")

    text: NoteText


class ClaimCreate(BaseModel):
    """Claim a conversation while you work on it: others' replies are refused (409) until it lapses."""

    model_config = ConfigDict(extra="forbid")

    ttl_seconds: int = Field(120, ge=1, le=3600, description="How long the claim lasts unless renewed.")
    force: bool = Field(False, description="Take over another agent's claim.")


class ClaimOut(BaseModel):
    """Who is working on a conversation, until when."""

    user_id: UUID
    expires_at: datetime


class ReadCreate(BaseModel):
    """Mark a conversation read up to a message (by default its newest)."""

    model_config = ConfigDict(extra="forbid")

    up_to_message_id: UUID | None = None


class LabelRef(BaseModel):
    """A label on a conversation."""

    id: UUID
    name: str
    color: str | None


class CountsOut(BaseModel):
    """Counts for an inbox's sidebar, for the caller."""

    by_status: dict[str, int]
    unread: int = Field(description="Open or pending conversations with messages the caller has not read.")
    assigned_to_me: int = Field(description="Open or pending conversations assigned to the caller.")
    unassigned: int = Field(description="Open or pending conversations assigned to nobody.")
