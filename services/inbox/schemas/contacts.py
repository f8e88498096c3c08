"""Request and response bodies of ``/v1/contacts``."""

from __future__ import annotations

import re
from datetime import datetime
from typing import Annotated, Any
from uuid import UUID

import orjson
from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints

from services.inbox.schemas import IdentityOut
from services.inbox.schemas.text import printable

ATTRIBUTE_KEY = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]{0,63}$")
MAX_ATTRIBUTES = 50
MAX_ATTRIBUTES_BYTES = 16_384


def _attributes(value: dict[str, Any]) -> dict[str, Any]:
    bad = [key for key in value if not ATTRIBUTE_KEY.match(key)]
    if bad:
        raise ValueError(
            f"keys must be 1-64 letters, digits, '_', '.' or '-' (not starting with '.' or '-'): {bad[:5]}"
        )
    if len(value) > MAX_ATTRIBUTES:
        raise ValueError(f"at most {MAX_ATTRIBUTES} attributes per request")
    if len(orjson.dumps(value)) > MAX_ATTRIBUTES_BYTES:
        raise ValueError(f"at most {MAX_ATTRIBUTES_BYTES} bytes of JSON")
    return value


ContactName = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=1, max_length=1024), AfterValidator(printable)
]
Email = Annotated[
    str,
    StringConstraints(strip_whitespace=True, max_length=320, pattern=r"^[^@\s]+@[^@\s]+\.[^@\s]+$"),
]
Phone = Annotated[
    str, StringConstraints(strip_whitespace=True, min_length=3, max_length=64, pattern=r"^\+?[0-9 ().\-/]+$")
]


class ContactUpdate(BaseModel):
    """``PATCH /v1/contacts/{id}``: only the fields sent change; ``null`` clears a field.

    ``attributes`` is merged key by key into the stored ones (a key set to ``null`` is removed), as
    in a JSON merge patch.
    """

    model_config = ConfigDict(extra="forbid")

    name: ContactName | None = None
    email: Email | None = None
    phone: Phone | None = None
    attributes: Annotated[dict[str, Any], AfterValidator(_attributes)] | None = Field(
        None, description="Free-form values; a key set to null is removed."
    )


class ContactOut(BaseModel):
    """A person and the platform identities they are known by.

    A contact merged into another answers with ``merged_into_id`` (follow it) and no identities:
    they moved to that contact.
    """

    id: UUID
    name: str | None
    email: str | None
    phone: str | None
    attributes: dict[str, Any]
    identities: list[IdentityOut]
    merged_into_id: UUID | None = Field(description="The contact this one was merged into, if it was.")
    merged_at: datetime | None
    created_at: datetime
    updated_at: datetime


class MergeCreate(BaseModel):
    """``POST /v1/contacts/{id}/merge``: merge ``source_contact_id`` into this contact."""

    model_config = ConfigDict(extra="forbid")

    source_contact_id: UUID


class ContactMergeOut(BaseModel):
    """A merge of one contact (the source) into another (the target)."""

    id: UUID
    target_contact_id: UUID
    source_contact_id: UUID
    identity_ids: list[UUID] = Field(description="The identities that moved from the source to the target.")
    filled_fields: list[str] = Field(
        description="The target's fields that were empty and were filled from the source."
    )
    merged_by_user_id: UUID | None
    created_at: datetime
    undone_at: datetime | None
    undone_by_user_id: UUID | None


class MergeResultOut(BaseModel):
    """A merge (or its undoing) and both contacts as they are now."""

    merge: ContactMergeOut
    target: ContactOut
    source: ContactOut
