"""Reddit connector settings (``PIAZZA_REDDIT_*``, plus the shared ones)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import PiazzaSettings


class RedditSettings(PiazzaSettings):
    """How the connector polls."""

    model_config = SettingsConfigDict(env_prefix="PIAZZA_REDDIT_")

    poll_seconds: float = Field(
        10.0, gt=0, le=300, description="Pause between polling rounds of an account's sources."
    )
    rescan_seconds: float = Field(
        5.0, gt=0, le=10, description="How often leases are renewed and channels rescanned."
    )
    edit_check_seconds: float = Field(
        120.0, gt=0, description="How often recent items are fetched again to notice edits and deletions."
    )
    edit_window_hours: float = Field(
        24.0, ge=0, description="How long after it was posted an item is checked for edits."
    )
    recheck_hours: float = Field(
        1.0, gt=0, description="When an unavailable source (private messages, a subreddit) is tried again."
    )
    backoff_max_seconds: float = Field(60.0, gt=0, description="Longest pause after repeated failures.")
