"""Webhook ingress settings (``PIAZZA_INGRESS_*``, plus the shared ones)."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from shared.config import PiazzaSettings


class IngressSettings(PiazzaSettings):
    """Limits of the webhook endpoints."""

    model_config = SettingsConfigDict(env_prefix="PIAZZA_INGRESS_")

    max_body_bytes: int = Field(1024 * 1024, ge=1024, description="Largest accepted body (413 above).")
    max_batch_events: int = Field(100, ge=1, le=1000, description="Most events in one request.")
    signature_tolerance_seconds: int = Field(300, ge=1, description="Allowed clock skew, both ways.")
    publish_timeout_seconds: float = Field(
        5.0, gt=0, description="How long JetStream may take to store a request."
    )
    retry_after_seconds: int = Field(5, ge=1, description="Retry-After sent with a 503.")
