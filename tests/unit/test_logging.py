"""Logs never carry a secret: fields named like one are masked, in the processor and on stderr."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from typing import Any

import orjson
import pytest
import structlog

from shared.logging import bind_correlation_id, configure_logging, get_logger, redact_secrets

pytestmark = pytest.mark.unit


@pytest.mark.parametrize(
    "key",
    [
        "token",
        "TOKEN",
        "signing_secret",
        "Authorization",
        "authorization",
        "bot_token",
        "password",
        "api_key",
        "secret",
        "secret_key",
        "x_secret",
        "webhook_secret",
        "access_token",
        "db_password",
    ],
)
def test_a_field_named_like_a_secret_is_masked(key: str) -> None:
    event = redact_secrets(None, "info", {"event": "x", key: "hunter2"})

    assert event[key] == "[redacted]"


@pytest.mark.parametrize(
    "key",
    ["event", "channel_id", "token_count", "secretary", "tokens", "author", "passwords_reset", "keyring"],
)
def test_other_fields_are_left_alone(key: str) -> None:
    event = redact_secrets(None, "info", {key: "visible"})

    assert event[key] == "visible"


def test_redaction_keeps_every_field_and_the_event() -> None:
    event = redact_secrets(None, "info", {"event": "bot.started", "bot_token": "123:abc", "count": 3})

    assert event == {"event": "bot.started", "bot_token": "[redacted]", "count": 3}


@pytest.fixture
def restore_logging() -> Iterator[None]:
    """Put structlog and the root logger back as the session configured them."""
    config = structlog.get_config()
    root = logging.getLogger()
    handlers, level = root.handlers[:], root.level
    context = structlog.contextvars.get_contextvars()
    yield
    structlog.configure(**config)
    root.handlers[:] = handlers
    root.setLevel(level)
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(**context)


def _json_lines(text: str) -> list[dict[str, Any]]:
    return [orjson.loads(line) for line in text.splitlines() if line.strip()]


@pytest.mark.usefixtures("restore_logging")
def test_a_json_log_line_masks_a_token(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("unit-test", level="INFO", fmt="json")
    log = get_logger("tests.unit.logging.token")

    with bind_correlation_id("corr-1"):
        log.info("unit.channel.connected", token="s3cr3t-value", channel_id="c-1")

    err = capsys.readouterr().err
    assert "s3cr3t-value" not in err
    (line,) = _json_lines(err)
    assert line["event"] == "unit.channel.connected"
    assert line["token"] == "[redacted]"
    assert line["channel_id"] == "c-1"
    assert line["correlation_id"] == "corr-1"
    assert line["service"] == "unit-test"
    assert line["level"] == "info"


@pytest.mark.usefixtures("restore_logging")
def test_standard_library_records_come_out_as_json_lines(capsys: pytest.CaptureFixture[str]) -> None:
    # uvicorn, alembic and nats log through the standard library; their lines must parse too.
    configure_logging("unit-test", level="INFO", fmt="json")

    logging.getLogger("tests.unit.logging.stdlib").info("plain %s", "record")

    (line,) = _json_lines(capsys.readouterr().err)
    assert line["event"] == "plain record"
    assert line["logger"] == "tests.unit.logging.stdlib"
    assert line["service"] == "unit-test"


@pytest.mark.usefixtures("restore_logging")
def test_the_level_filters_lines(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("unit-test", level="WARNING", fmt="json")
    log = get_logger("tests.unit.logging.level")

    log.info("unit.quiet")
    log.warning("unit.loud")

    assert [line["event"] for line in _json_lines(capsys.readouterr().err)] == ["unit.loud"]
