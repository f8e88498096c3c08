"""Request and response shapes of message sentiment and its correction."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import BaseModel, ConfigDict, Field

from shared.sentiment import SentimentLabel


class MessageSentimentOut(BaseModel):
    """How a customer's message feels: the agent's correction if there is one, else the analyzer's."""

    label: SentimentLabel = Field(description="negative, neutral or positive: the correction wins.")
    score: float | None = Field(
        description="The analyzer's score in [-1, 1] (null if it never read the text); kept as it is "
        "when an agent corrects the label."
    )
    language: str | None = Field(description="The language the analyzer read the text as, if it knows.")
    corrected: bool = Field(description="An agent corrected the analyzer's label.")
    corrected_by: UUID | None = Field(description="The user who corrected it (null for an integration).")
    corrected_at: datetime | None


class SentimentCorrection(BaseModel):
    """``PUT .../messages/{id}/sentiment``: the label the message should have."""

    model_config = ConfigDict(extra="forbid")

    label: SentimentLabel
