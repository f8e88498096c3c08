"""Inbox settings (``PIAZZA_INBOX_*``, plus the shared ones)."""

from __future__ import annotations

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.config import PiazzaSettings
from shared.errors import ConfigurationError


class InboxSettings(PiazzaSettings):
    """Configuration of the inbox API and the inbox consumer."""

    model_config = SettingsConfigDict(env_prefix="PIAZZA_INBOX_")

    bootstrap_token: SecretStr | None = Field(None, validation_alias=AliasChoices("PIAZZA_BOOTSTRAP_TOKEN"))
    batch_size: int = Field(500, ge=1, le=5000)
    consumer_concurrency: int = Field(1, ge=1, le=16)
    directory_refresh_seconds: float = Field(300.0, gt=0)
    secret_grace_hours: float = Field(24.0, ge=0)
    token_cache_seconds: float = Field(10.0, ge=0)

    def check(self) -> None:
        """Refuse unsafe settings outside development."""
        super().check()
        if self.bootstrap_token is not None and not self.is_development:
            raise ConfigurationError(
                "PIAZZA_BOOTSTRAP_TOKEN is a development convenience and is refused when PIAZZA_ENV is "
                f"{self.env.value!r}; create a real token with `piazza token create`"
            )
        if self.bootstrap_token is not None and len(self.bootstrap_token.get_secret_value()) < 8:
            raise ConfigurationError("PIAZZA_BOOTSTRAP_TOKEN must be at least 8 characters")
