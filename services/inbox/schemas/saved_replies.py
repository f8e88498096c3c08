"""Request and response bodies of ``/v1/saved-replies``."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated
from uuid import UUID

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from services.inbox.schemas.text import no_nul, printable

MAX_BODY = 32768


Shortcut = Annotated[
    str,
    StringConstraints(
        strip_whitespace=True,
        to_lower=True,
        min_length=1,
        max_length=64,
        pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]*$",
    ),
]
Title = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=200), AfterValidator(printable)
]
Body = Annotated[str, StringConstraints(min_length=1, max_length=MAX_BODY), AfterValidator(no_nul)]

_SHORTCUT_HELP = "What agents type to find it: letters, digits, '-' and '_' (stored in lower case)."
_BODY_HELP = 'The reply text, with placeholders such as {{ contact.first_name | default("there") }}.'


class SavedReplyCreate(BaseModel):
    """A new saved reply."""

    model_config = ConfigDict(extra="forbid")

    shortcut: Shortcut = Field(description=_SHORTCUT_HELP)
    title: Title
    body: Body = Field(description=_BODY_HELP)


class SavedReplyUpdate(BaseModel):
    """``PATCH /v1/saved-replies/{id}``: only the fields sent change."""

    model_config = ConfigDict(extra="forbid")

    shortcut: Shortcut | None = Field(None, description=_SHORTCUT_HELP)
    title: Title | None = None
    body: Body | None = Field(None, description=_BODY_HELP)


class SavedReplyOut(BaseModel):
    """A saved reply of the workspace."""

    id: UUID
    shortcut: str
    title: str
    body: str
    placeholders: list[str] = Field(description="The placeholders the body uses, in order of first use.")
    created_by_user_id: UUID | None
    created_at: datetime
    updated_at: datetime


class PlaceholderOut(BaseModel):
    """A placeholder saved replies can use."""

    name: str
    description: str


class PreviewCreate(BaseModel):
    """Render a saved reply for a conversation (without one, only the agent and workspace are known)."""

    model_config = ConfigDict(extra="forbid")

    conversation_id: UUID | None = None


class DraftPreviewCreate(PreviewCreate):
    """Render a reply text that is not saved (yet)."""

    body: Body = Field(description=_BODY_HELP)


class PreviewOut(BaseModel):
    """A reply text as it would be sent, and how its placeholders were filled."""

    text: str
    used: list[str] = Field(description="The placeholders the text uses, in order of first use.")
    missing: list[str] = Field(
        description="Placeholders with no value here and no fallback: they render as nothing."
    )
    defaulted: list[str] = Field(description="Placeholders with no value here: their fallback was used.")
    conversation_id: UUID | None
    contact_id: UUID | None = Field(
        description="The conversation's contact: the author of its first inbound message."
    )
