"""Reddit's two error channels (platforms.md §2.6): HTTP errors, and ``json.errors`` inside a 200."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

Json = dict[str, Any]

TOO_MANY_REQUESTS_HTML = (
    "<!doctype html><html><head><title>Too Many Requests</title></head><body>"
    "<h1>whoa there, pardner!</h1><p>we're sorry, but you appear to be a bot and we've seen too many "
    "requests from you lately.</p></body></html>"
)
INVALID_TOKEN = 'Bearer realm="reddit", error="invalid_token"'
LOGIN = "https://www.reddit.com/login/"


class ApiError(Exception):
    """A non-200 answer: a JSON (or HTML/empty) body with that status and extra headers."""

    def __init__(self, status: int, body: Json | str, headers: Mapping[str, str] | None = None) -> None:
        super().__init__(f"{status}: {body}")
        self.status = status
        self.body = body
        self.headers = dict(headers or {})


def unauthorized() -> ApiError:
    """The token endpoint's answer to bad client credentials."""
    return ApiError(401, {"message": "Unauthorized", "error": 401})


def invalid_token() -> ApiError:
    """An API call with an unknown, expired or missing bearer token."""
    return ApiError(401, {"error": 401}, {"www-authenticate": INVALID_TOKEN})


def forbidden(reason: str | None = None) -> ApiError:
    body: Json = {"message": "Forbidden", "error": 403}
    if reason is not None:
        body = {"reason": reason, **body}
    return ApiError(403, body)


def not_found(reason: str | None = None) -> ApiError:
    body: Json = {"message": "Not Found", "error": 404}
    if reason is not None:
        body = {"reason": reason, **body}
    return ApiError(404, body)


def bad_request() -> ApiError:
    return ApiError(400, {"message": "Bad Request", "error": 400})


def too_many_requests(*, html: bool = False, retry_after: int | None = None) -> ApiError:
    """429: the HTML page with ``Retry-After``, or the JSON body without it."""
    if html:
        headers = {} if retry_after is None else {"retry-after": str(retry_after)}
        return ApiError(429, TOO_MANY_REQUESTS_HTML, headers)
    return ApiError(429, {"message": "Too Many Requests", "error": 429})


def redirect_to_login() -> ApiError:
    """The 2025 answer of ``/message/messages`` for accounts whose messages moved to chat."""
    return ApiError(302, "", {"location": LOGIN})


class WriteError(Exception):
    """One ``[CODE, message, field]`` entry of ``json.errors``; the call answers 200."""

    def __init__(self, code: str, message: str, field: str | None) -> None:
        super().__init__(f"{code}: {message}")
        self.code = code
        self.message = message
        self.field = field

    def entry(self) -> list[str | None]:
        return [self.code, self.message, self.field]


def ratelimited(wait: str) -> WriteError:
    return WriteError("RATELIMIT", f"You are doing that too much. Try again in {wait}.", "ratelimit")


NO_TEXT = WriteError("NO_TEXT", "we need something here", "text")
TEXT_TOO_LONG = WriteError("TOO_LONG", "this is too long (max: 10000)", "text")
SUBJECT_TOO_LONG = WriteError("TOO_LONG", "this is too long (max: 100)", "subject")
NO_SUBJECT = WriteError("NO_SUBJECT", "please enter a subject", "subject")
NO_USER = WriteError("NO_USER", "please enter a username", "to")
USER_DOESNT_EXIST = WriteError("USER_DOESNT_EXIST", "that user doesn't exist", "to")
NO_THING_ID = WriteError("NO_THING_ID", "id not specified", "parent")
DELETED_COMMENT = WriteError("DELETED_COMMENT", "that comment has been deleted", "parent")
THREAD_LOCKED = WriteError("THREAD_LOCKED", "Comments are locked.", "parent")


def write_answer(*, api_type_json: bool, error: WriteError | None = None, data: Json | None = None) -> Json:
    """The body of a write endpoint: ``{"json": ...}`` with ``api_type=json``, else the legacy jQuery form."""
    if api_type_json:
        inner: Json = {"errors": [] if error is None else [error.entry()]}
        if error is None and data is not None:
            inner["data"] = data
        return {"json": inner}
    # The pre-API format the web front end consumed: a list of jQuery calls to replay.
    calls: list[list[Any]] = [[0, 1, "call", ["body"]], [1, 2, "attr", "find"]]
    if error is None:
        calls += [[2, 3, "call", [".status"]], [3, 4, "attr", "hide"], [4, 5, "call", []]]
    else:
        selector = f".error.{error.code}" + (f".field-{error.field}" if error.field else "")
        calls += [
            [2, 3, "call", [selector]],
            [3, 4, "attr", "show"],
            [4, 5, "call", []],
            [5, 6, "attr", "text"],
            [6, 7, "call", [error.message]],
        ]
    return {"jquery": calls, "success": error is None}
