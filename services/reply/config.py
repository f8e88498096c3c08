"""Reply service settings (``PIAZZA_REPLY_*``, plus the shared ones)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import PiazzaSettings


class ReplySettings(PiazzaSettings):
    """Pacing and retries of outgoing calls (Telegram's limits are approximate: stay under them;
    Reddit paces by its rate-limit headers)."""

    model_config = SettingsConfigDict(env_prefix="PIAZZA_REPLY_")

    per_chat_per_second: float = Field(1.0, gt=0, description="Messages a second into one chat.")
    per_bot_per_second: float = Field(30.0, gt=0, description="Messages a second through one bot.")
    per_group_per_minute: float = Field(20.0, gt=0, description="Messages a minute into one group.")
    attempts: int = Field(5, ge=1, le=20, description="Tries of a call that fails for a passing reason.")
    retry_base_seconds: float = Field(1.0, gt=0, description="First pause between tries; doubles each time.")
    max_rate_limit_wait_seconds: float = Field(
        900.0,
        gt=0,
        description="Longest wait for a platform's rate limit (Reddit's RATELIMIT) before failing.",
    )
    batch_size: int = Field(50, ge=1, le=500)
