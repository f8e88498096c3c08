"""A fake Telegram Bot API server for tests and demos (see ``server.py`` for what it reproduces)."""

from tests.fakes.telegram import factory
from tests.fakes.telegram.bot import FakeBot
from tests.fakes.telegram.errors import ApiError
from tests.fakes.telegram.ratelimit import RateLimits
from tests.fakes.telegram.records import (
    Ban,
    DeliveryAttempt,
    Fault,
    Injection,
    RecordedRequest,
    SendAttempt,
    SentMessage,
    StoredFile,
    Unban,
)
from tests.fakes.telegram.server import FakeTelegram

__all__ = [
    "ApiError",
    "Ban",
    "DeliveryAttempt",
    "FakeBot",
    "FakeTelegram",
    "Fault",
    "Injection",
    "RateLimits",
    "RecordedRequest",
    "SendAttempt",
    "SentMessage",
    "StoredFile",
    "Unban",
    "factory",
]
