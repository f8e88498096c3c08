"""A fake Reddit (OAuth token endpoint and API) for tests and demos (see ``server.py`` for what it reproduces)."""

from tests.fakes.reddit import factory
from tests.fakes.reddit.accounts import AccessToken, Account, App
from tests.fakes.reddit.errors import ApiError, WriteError
from tests.fakes.reddit.ratelimit import RateBudget
from tests.fakes.reddit.records import (
    Fault,
    Injection,
    IssuedToken,
    ModerationRecord,
    RecordedRequest,
)
from tests.fakes.reddit.server import FakeReddit
from tests.fakes.reddit.things import InboxEntry, Subreddit, Thing

__all__ = [
    "AccessToken",
    "Account",
    "ApiError",
    "App",
    "FakeReddit",
    "Fault",
    "InboxEntry",
    "Injection",
    "IssuedToken",
    "ModerationRecord",
    "RateBudget",
    "RecordedRequest",
    "Subreddit",
    "Thing",
    "WriteError",
    "factory",
]
