"""Settings: database URLs map to async drivers, required values are required, unsafe ones refused."""

from __future__ import annotations

import os
from pathlib import Path

import pytest
from pydantic import SecretStr

from services.inbox.config import InboxSettings
from shared.config import Environment, PiazzaSettings, normalize_database_url
from shared.errors import ConfigurationError

pytestmark = pytest.mark.unit


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Settings read the environment; the developer's own must not leak into these tests."""
    for name in list(os.environ):
        if name.startswith("PIAZZA_") or name in {"DATABASE_URL", "NATS_URL"}:
            monkeypatch.delenv(name)


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@db:5432/piazza", "postgresql+asyncpg://u:p@db:5432/piazza"),
        ("postgresql://u:p@db/piazza?sslmode=require", "postgresql+asyncpg://u:p@db/piazza?sslmode=require"),
        ("postgresql+psycopg://db/piazza", "postgresql+asyncpg://db/piazza"),
        ("sqlite:///relative.db", "sqlite+aiosqlite:///relative.db"),
        ("sqlite:////abs/path/piazza.db", "sqlite+aiosqlite:////abs/path/piazza.db"),
        ("postgresql+asyncpg://db/piazza", "postgresql+asyncpg://db/piazza"),
        ("sqlite+aiosqlite:///x.db", "sqlite+aiosqlite:///x.db"),
    ],
)
def test_database_urls_map_to_async_drivers(url: str, expected: str) -> None:
    assert normalize_database_url(url) == expected


@pytest.mark.parametrize(
    "url", ["mysql://db/piazza", "postgresql+psycopg2://db/x", "db.sqlite", "", "redis://x"]
)
def test_an_unsupported_database_scheme_is_a_configuration_error(url: str) -> None:
    with pytest.raises(ConfigurationError, match="unsupported DATABASE_URL scheme"):
        normalize_database_url(url)


def test_the_unsupported_scheme_error_does_not_echo_the_password() -> None:
    with pytest.raises(ConfigurationError) as caught:
        normalize_database_url("mysql://user:hunter2@db/piazza")

    assert "hunter2" not in str(caught.value)


def test_without_a_database_url_the_store_is_sqlite_in_the_data_folder(tmp_path: Path) -> None:
    settings = PiazzaSettings(data_dir=tmp_path / "data")

    assert (
        settings.resolved_database_url()
        == f"sqlite+aiosqlite:///{(tmp_path / 'data' / 'piazza.db').resolve()}"
    )


def test_a_configured_database_url_is_normalised() -> None:
    settings = PiazzaSettings(database_url="postgres://db/piazza")

    assert settings.resolved_database_url() == "postgresql+asyncpg://db/piazza"


def test_the_database_url_is_read_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://env-db/piazza")

    assert PiazzaSettings().resolved_database_url() == "postgresql+asyncpg://env-db/piazza"


def test_a_missing_nats_url_is_a_configuration_error() -> None:
    with pytest.raises(ConfigurationError, match="NATS_URL is not set"):
        PiazzaSettings().require_nats_url()


def test_a_configured_nats_url_is_returned() -> None:
    assert PiazzaSettings(nats_url="nats://bus:4222").require_nats_url() == "nats://bus:4222"


def test_the_default_environment_is_development() -> None:
    settings = PiazzaSettings()

    assert settings.env is Environment.DEVELOPMENT
    assert settings.is_development


def test_secret_keys_never_show_in_the_settings_repr() -> None:
    settings = PiazzaSettings(secret_keys=SecretStr("very-secret-key"))

    assert "very-secret-key" not in repr(settings)


@pytest.mark.parametrize("env", [Environment.PRODUCTION, Environment.TEST])
def test_a_bootstrap_token_is_refused_outside_development(env: Environment) -> None:
    settings = InboxSettings(env=env, bootstrap_token=SecretStr("long-enough-token"))

    with pytest.raises(ConfigurationError, match="development convenience") as caught:
        settings.check()

    assert "long-enough-token" not in str(caught.value)


def test_a_bootstrap_token_is_accepted_in_development() -> None:
    InboxSettings(env=Environment.DEVELOPMENT, bootstrap_token=SecretStr("long-enough-token")).check()


def test_a_short_bootstrap_token_is_refused_even_in_development() -> None:
    settings = InboxSettings(env=Environment.DEVELOPMENT, bootstrap_token=SecretStr("short"))

    with pytest.raises(ConfigurationError, match="at least 8 characters"):
        settings.check()


def test_production_without_a_bootstrap_token_is_fine() -> None:
    InboxSettings(env=Environment.PRODUCTION).check()


def test_the_bootstrap_token_is_read_from_its_unprefixed_name(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIAZZA_ENV", "production")
    monkeypatch.setenv("PIAZZA_BOOTSTRAP_TOKEN", "long-enough-token")

    with pytest.raises(ConfigurationError):
        InboxSettings().check()


def test_inbox_fields_are_read_with_the_inbox_prefix(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PIAZZA_INBOX_BATCH_SIZE", "42")

    assert InboxSettings().batch_size == 42
