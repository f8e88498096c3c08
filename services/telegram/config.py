"""Telegram connector settings (``PIAZZA_TELEGRAM_*``, plus the shared ones)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import PiazzaSettings


class TelegramSettings(PiazzaSettings):
    """How the connector polls."""

    model_config = SettingsConfigDict(env_prefix="PIAZZA_TELEGRAM_")

    poll_timeout: int = Field(
        25, ge=0, le=50, description="getUpdates long-poll seconds (Telegram caps it at 50)."
    )
    rescan_seconds: float = Field(
        5.0, gt=0, le=10, description="How often leases are renewed and channels rescanned."
    )
    health_seconds: float = Field(30.0, gt=0, description="How often the backlog is asked for.")
    backoff_max_seconds: float = Field(30.0, gt=0, description="Longest pause after repeated failures.")
