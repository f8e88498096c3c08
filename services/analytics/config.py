"""Analytics settings (``PIAZZA_ANALYTICS_*``, plus the shared ones)."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import PiazzaSettings


class AnalyticsSettings(PiazzaSettings):
    """Configuration of the analytics worker and API."""

    model_config = SettingsConfigDict(env_prefix="PIAZZA_ANALYTICS_")

    batch_size: int = Field(500, ge=1, le=5000, description="Domain events stored per transaction.")
    inbox_url: str | None = Field(
        None,
        description="Where the inbox API answers GET /v1/me (who a token belongs to); "
        "default: PIAZZA_PUBLIC_URL (piazza run sets it to the local web process).",
    )
    token_cache_seconds: float = Field(10.0, ge=0, description="How long a verified token is trusted.")
    # Crisis detection: docs/analytics.md.
    bucket_seconds: int = Field(300, ge=60, le=3600, description="Length of a crisis-detection bucket.")
    baseline_buckets: int = Field(288, ge=12, le=4032, description="Buckets in the baseline.")
    alert_min_count: int = Field(10, ge=1, description="A bucket with fewer messages never alarms.")
    calm_buckets: int = Field(3, ge=1, le=100, description="Quiet buckets in a row that end an incident.")
    detect_every_seconds: float = Field(
        15.0, gt=0, le=600, description="How often open incidents are checked."
    )
    # Periodic reports.
    report_check_seconds: float = Field(300.0, gt=0, description="How often due reports are looked for.")
    report_folder: Path | None = Field(
        None, description="Default folder scheduled reports are written to (a workspace may name its own)."
    )

    def resolved_inbox_url(self) -> str:
        """The base URL of the inbox API."""
        return (self.inbox_url or self.public_url).rstrip("/")
