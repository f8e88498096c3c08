"""What the fake remembers for tests to assert on: requests, sends, bans, files, injected faults."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

Json = dict[str, Any]

# How an injected failure mangles the answer:
#   truncated_json  the call runs (side effects happen) but the JSON body is cut in half
#   bad_gateway     502 with an HTML body, as the front end answers during incidents; the call does not run
#   drop            the connection is closed without an answer; the call does not run
Fault = Literal["truncated_json", "bad_gateway", "drop"]


@dataclass(frozen=True)
class RecordedRequest:
    """One call that reached a known bot (before injected failures are applied)."""

    method: str  # canonical spelling, e.g. "getUpdates", whatever case the client used
    http_method: str
    content_type: str
    params: Json
    at: float  # time.monotonic()
    files: dict[str, UploadedFile] = field(default_factory=dict)  # multipart file parts
    injection: Injection | None = None  # the failure this call got instead of its answer, if any


@dataclass(frozen=True)
class SentMessage:
    """A message the bot sent successfully through sendMessage."""

    chat_id: int
    message_thread_id: int | None
    message: Json
    at: float  # time.monotonic()

    @property
    def text(self) -> str:
        return str(self.message.get("text", ""))

    @property
    def message_id(self) -> int:
        return int(self.message["message_id"])


@dataclass(frozen=True)
class SendAttempt:
    """A sendMessage that passed validation and met the rate limiter (delivered or answered 429)."""

    chat_id: int
    at: float
    throttled: bool


@dataclass(frozen=True)
class Ban:
    chat_id: int
    user_id: int
    until_date: int
    revoke_messages: bool
    date: int  # Unix seconds when the ban was made
    at: float  # time.monotonic()

    @property
    def permanent(self) -> bool:
        """Telegram treats an until_date less than 30 s or more than 366 days away as forever."""
        ahead = self.until_date - self.date
        return self.until_date == 0 or ahead < 30 or ahead > 366 * 86400


@dataclass(frozen=True)
class Unban:
    chat_id: int
    user_id: int
    only_if_banned: bool
    at: float


@dataclass(frozen=True)
class StoredFile:
    """Bytes registered with ``FakeBot.add_file``, downloadable after getFile."""

    file_id: str
    file_unique_id: str
    file_path: str
    data: bytes

    @property
    def file_size(self) -> int:
        return len(self.data)

    def ref(self) -> Json:
        """The fields a media object (PhotoSize, Document, ...) carries for this file."""
        return {"file_id": self.file_id, "file_unique_id": self.file_unique_id, "file_size": self.file_size}


@dataclass(frozen=True)
class UploadedFile:
    """A multipart file part the client sent (kept so a test can look at it)."""

    filename: str
    content_type: str
    data: bytes


@dataclass(frozen=True)
class DeliveryAttempt:
    """One webhook POST: ``status`` is None when the connection failed."""

    update_id: int
    url: str
    status: int | None
    error: str | None
    at: float

    @property
    def ok(self) -> bool:
        return self.status is not None and 200 <= self.status < 300


@dataclass
class Injection:
    """A failure the next matching call(s) get instead of (or on top of) the real answer."""

    method: str  # lower-cased method name, "*" for any, "file" for downloads
    times: int
    status: int | None = None
    description: str | None = None
    parameters: Json = field(default_factory=dict)
    delay: float = 0.0
    fault: Fault | None = None
