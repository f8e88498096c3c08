"""What the fake remembers for tests to assert on: requests, tokens, moderation, injected faults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Json = dict[str, Any]

# How an injected failure mangles the answer:
#   drop  the connection is closed without an answer; the call does not run
Fault = Literal["drop"]

# The pseudo-path injections use for the token endpoint.
TOKEN_ENDPOINT = "access_token"


@dataclass(frozen=True)
class RecordedRequest:
    """One HTTP call to the fake (token endpoint or API), recorded once it has been answered."""

    method: str  # GET, POST, ...
    path: str  # as sent, e.g. "/message/unread/"
    query: dict[str, str]
    form: dict[str, str]  # the url-encoded body (token grants include the password: it is a fake)
    headers: dict[str, str]  # names lower-cased
    at: float  # time.monotonic() when the call arrived
    status: int  # the answer's status; 0 when an injected fault dropped the connection
    client_id: str | None = None  # the app behind the bearer token or the Basic credentials, if known
    username: str | None = None  # the account behind the bearer token, if any
    injection: Injection | None = None  # the failure this call got instead of its answer, if any

    @property
    def user_agent(self) -> str | None:
        return self.headers.get("user-agent")


@dataclass(frozen=True)
class IssuedToken:
    """An access token the token endpoint granted."""

    access_token: str
    client_id: str
    username: str | None  # None for userless (client_credentials, installed_client) tokens
    grant_type: str
    scope: str
    at: float  # time.monotonic()


@dataclass(frozen=True)
class ModerationRecord:
    """A moderation call made through the API: remove, approve, lock, unlock or del."""

    action: str
    fullname: str
    spam: bool | None  # remove only
    by: str  # the acting account
    at: float  # time.monotonic()


@dataclass
class Injection:
    """A failure the next matching call(s) get instead of (or before) the real answer."""

    path: str  # normalised path prefix, "access_token" for the token endpoint, "*" for any call
    times: int
    status: int | None = None
    body: bytes = b""
    content_type: str | None = None
    headers: dict[str, str] = field(default_factory=dict)
    delay: float = 0.0
    fault: Fault | None = None

    def matches(self, path: str) -> bool:
        if self.times <= 0:
            return False
        if self.path == "*":
            return True
        if self.path == TOKEN_ENDPOINT:
            return path == TOKEN_ENDPOINT
        return path != TOKEN_ENDPOINT and (path == self.path or path.startswith(self.path.rstrip("/") + "/"))
