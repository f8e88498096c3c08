"""Inbox settings (``PIAZZA_INBOX_*``, plus the shared ones)."""

from __future__ import annotations

import importlib.util

from pydantic import AliasChoices, Field, SecretStr
from pydantic_settings import SettingsConfigDict

from shared.config import PiazzaSettings
from shared.errors import ConfigurationError
from shared.sentiment import DEFAULT_ANALYZER, SentimentAnalyzer, load_analyzer


class InboxSettings(PiazzaSettings):
    """Configuration of the inbox API and the inbox consumer."""

    model_config = SettingsConfigDict(env_prefix="PIAZZA_INBOX_")

    bootstrap_token: SecretStr | None = Field(None, validation_alias=AliasChoices("PIAZZA_BOOTSTRAP_TOKEN"))
    batch_size: int = Field(500, ge=1, le=5000)
    consumer_concurrency: int = Field(1, ge=1, le=16)
    directory_refresh_seconds: float = Field(300.0, gt=0)
    secret_grace_hours: float = Field(24.0, ge=0)
    token_cache_seconds: float = Field(10.0, ge=0)
    sentiment_analyzer: str = Field(
        DEFAULT_ANALYZER,
        validation_alias=AliasChoices("PIAZZA_INBOX_SENTIMENT_ANALYZER", "PIAZZA_SENTIMENT_ANALYZER"),
        min_length=3,
        description="The analyzer scoring inbound messages as it is stored, as ``module:attribute`` "
        "(docs/api.md, Sentiment).",
    )
    snooze_check_seconds: float = Field(
        1.0,
        gt=0,
        le=60,
        description="How often the inbox worker wakes snoozed conversations whose time came.",
    )
    # Outgoing webhooks (``piazza worker webhooks``): docs/outgoing-webhooks.md.
    webhook_timeout_seconds: float = Field(10.0, gt=0, le=120)
    webhook_retry_schedule: tuple[float, ...] = Field(
        (5.0, 300.0, 1800.0, 7200.0, 18000.0, 28800.0, 28800.0),
        min_length=0,
        max_length=50,
        description="Seconds before each retry after a failed attempt; the delivery fails after the last.",
    )
    webhook_retry_scale: float = Field(
        1.0, gt=0, description="Multiplies every retry delay (tests shrink it)."
    )
    webhook_retry_jitter: float = Field(
        0.2, ge=0, lt=1, description="Each delay is shortened by up to this share."
    )
    webhook_concurrency: int = Field(64, ge=1, le=1000, description="Requests in flight per worker.")
    webhook_subscription_concurrency: int = Field(
        4, ge=1, le=100, description="Requests in flight per subscription and worker."
    )
    webhook_poll_seconds: float = Field(1.0, gt=0, description="How often a worker looks for due retries.")
    webhook_allow_private_urls: bool | None = Field(
        None,
        description="Allow endpoints on loopback and private networks; default: in development and tests.",
    )
    # Live updates (``GET /v1/stream``) and presence: docs/stream.md.
    stream_heartbeat_seconds: float = Field(
        15.0, gt=0, le=300, description="How often an idle live stream sends a heartbeat comment."
    )
    stream_send_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="A live stream whose client takes longer than this to read an event is closed.",
    )
    stream_batch_size: int = Field(
        100, ge=1, le=1000, description="Events a live stream holds in memory at most, per client."
    )
    presence_viewing_seconds: float = Field(
        30.0, gt=0, le=120, description="How long a 'viewing' presence lasts unless the client renews it."
    )
    presence_typing_seconds: float = Field(
        8.0, gt=0, le=120, description="How long a 'typing' presence lasts unless the client renews it."
    )

    def analyzer(self) -> SentimentAnalyzer:
        """The sentiment analyzer named by ``sentiment_analyzer`` (built once per process)."""
        try:
            return load_analyzer(self.sentiment_analyzer)
        except Exception as exc:  # an import error, a missing name, a failing constructor
            raise ConfigurationError(
                f"PIAZZA_INBOX_SENTIMENT_ANALYZER={self.sentiment_analyzer!r} cannot be loaded: "
                f"{type(exc).__name__}: {exc}"
            ) from exc

    def check(self) -> None:
        """Refuse unsafe settings outside development, and an analyzer module that does not exist."""
        super().check()
        if self.bootstrap_token is not None and not self.is_development:
            raise ConfigurationError(
                "PIAZZA_BOOTSTRAP_TOKEN is a development convenience and is refused when PIAZZA_ENV is "
                f"{self.env.value!r}; create a real token with `piazza token create`"
            )
        if self.bootstrap_token is not None and len(self.bootstrap_token.get_secret_value()) < 8:
            raise ConfigurationError("PIAZZA_BOOTSTRAP_TOKEN must be at least 8 characters")
        self._check_analyzer_name()

    def _check_analyzer_name(self) -> None:
        # Only that the module exists: building the analyzer (word lists, language models) is the
        # worker's business, not every API process's; the worker refuses to start if it fails.
        module, _, attribute = self.sentiment_analyzer.partition(":")
        try:
            found = bool(module and attribute) and importlib.util.find_spec(module) is not None
        except (ImportError, ValueError):
            found = False
        if not found:
            raise ConfigurationError(
                f"PIAZZA_INBOX_SENTIMENT_ANALYZER={self.sentiment_analyzer!r} does not name an importable "
                "module:attribute"
            )
