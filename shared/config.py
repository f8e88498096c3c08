"""Settings every Piazza process shares.

Base fields read fixed environment names (``PIAZZA_ENV``, ``DATABASE_URL``, ``NATS_URL`` ...), so a
service subclass can give its own fields a prefix of its own (``PIAZZA_INGRESS_...``) without renaming
the shared ones.
"""

from __future__ import annotations

from enum import StrEnum
from pathlib import Path
from typing import Literal

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import BaseSettings, SettingsConfigDict

from shared.errors import ConfigurationError


class Environment(StrEnum):
    """Where a process runs; unsafe conveniences exist only in development."""

    DEVELOPMENT = "development"
    TEST = "test"
    PRODUCTION = "production"


def _env(*names: str) -> AliasChoices:
    return AliasChoices(*names)


class PiazzaSettings(BaseSettings):
    """Configuration common to every service, read from the environment."""

    model_config = SettingsConfigDict(extra="ignore", frozen=True, populate_by_name=True)

    env: Environment = Field(Environment.DEVELOPMENT, validation_alias=_env("PIAZZA_ENV"))
    data_dir: Path = Field(Path(".data"), validation_alias=_env("PIAZZA_DATA_DIR"))
    database_url: str = Field("", validation_alias=_env("DATABASE_URL", "PIAZZA_DATABASE_URL"))
    nats_url: str = Field("", validation_alias=_env("NATS_URL", "PIAZZA_NATS_URL"))
    secret_keys: SecretStr | None = Field(None, validation_alias=_env("PIAZZA_SECRET_KEYS"))
    public_url: str = Field("http://127.0.0.1:8000", validation_alias=_env("PIAZZA_PUBLIC_URL"))
    log_level: str = Field("INFO", validation_alias=_env("PIAZZA_LOG_LEVEL"))
    log_format: Literal["json", "console"] = Field("json", validation_alias=_env("PIAZZA_LOG_FORMAT"))
    bus_prefix: str = Field("", validation_alias=_env("PIAZZA_BUS_PREFIX"))
    bus_ack_wait_seconds: float = Field(30.0, gt=0, validation_alias=_env("PIAZZA_BUS_ACK_WAIT_SECONDS"))
    bus_replicas: int = Field(1, ge=1, le=5, validation_alias=_env("PIAZZA_BUS_REPLICAS"))
    telegram_api_url: str = Field(
        "https://api.telegram.org", validation_alias=_env("PIAZZA_TELEGRAM_API_URL")
    )
    reddit_auth_url: str = Field(
        "https://www.reddit.com",
        validation_alias=_env("PIAZZA_REDDIT_AUTH_URL"),
        description="Reddit's token endpoint host.",
    )
    reddit_api_url: str = Field(
        "https://oauth.reddit.com",
        validation_alias=_env("PIAZZA_REDDIT_API_URL"),
        description="Reddit's OAuth API host.",
    )

    def check(self) -> None:
        """Refuse settings that parse but must not be used together (services add their rules)."""

    @property
    def is_development(self) -> bool:
        """True where development conveniences (bootstrap token, generated keys) are allowed."""
        return self.env is Environment.DEVELOPMENT

    def resolved_database_url(self) -> str:
        """The SQLAlchemy async URL: ``DATABASE_URL`` normalised, or SQLite in the data folder."""
        if not self.database_url:
            return f"sqlite+aiosqlite:///{(self.data_dir / 'piazza.db').resolve()}"
        return normalize_database_url(self.database_url)

    def require_nats_url(self) -> str:
        """The NATS URL; a service never guesses one, so a stray local server is never touched."""
        if not self.nats_url:
            raise ConfigurationError(
                "NATS_URL is not set. Set it to your NATS server, or start everything with `piazza run`, "
                "which starts an embedded nats-server of its own."
            )
        return self.nats_url


def normalize_database_url(url: str) -> str:
    """Map the usual ``postgres://``/``postgresql://``/``sqlite://`` URLs to their async drivers."""
    for plain, driver in (
        ("postgres://", "postgresql+asyncpg://"),
        ("postgresql://", "postgresql+asyncpg://"),
        ("postgresql+psycopg://", "postgresql+asyncpg://"),
        ("sqlite://", "sqlite+aiosqlite://"),
    ):
        if url.startswith(plain):
            return driver + url[len(plain) :]
    if url.startswith(("postgresql+asyncpg://", "sqlite+aiosqlite://")):
        return url
    raise ConfigurationError(f"unsupported DATABASE_URL scheme: {url.split(':', 1)[0]!r}")
