"""A small Reddit OAuth API client: tokens, pacing by the rate-limit headers, and Reddit's error shapes.

Every call sends the account's descriptive User-Agent, ``raw_json=1`` and (for writes)
``api_type=json``, and never follows redirects: a 302 to the login page means the endpoint is not
available to the account (platforms.md §2.9 item 10). Access tokens are fetched before first use,
refreshed a minute before they expire, and once more on a 401. Errors are raised as
:class:`RedditError` subclasses that say how to react.
"""

from __future__ import annotations

import asyncio
import re
import time
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field, replace
from typing import Any

import httpx
import orjson

DEFAULT_AUTH_URL = "https://www.reddit.com"
DEFAULT_API_URL = "https://oauth.reddit.com"
TOKEN_PATH = "/api/v1/access_token"  # noqa: S105 - a path, not a secret
TEXT_LIMIT = 10_000
SUBJECT_LIMIT = 100
READ_BATCH = 25
INFO_BATCH = 100

_WAIT = re.compile(r"([0-9]{1,3}) (milliseconds?|seconds?|minutes?)")
_UNITS = {"millisecond": 0.001, "second": 1.0, "minute": 60.0}


class RedditError(Exception):
    """A failed Reddit call. ``retryable`` says whether the same call may succeed later."""

    retryable = False

    def __init__(self, description: str, *, status: int | None = None, retry_after: float | None = None):
        super().__init__(description)
        self.description = description
        self.status = status
        self.retry_after = retry_after


class RedditUnreachable(RedditError):
    """The request did not reach Reddit (connection refused, DNS): nothing happened there."""

    retryable = True


class RedditNoAnswer(RedditError):
    """The request was sent but no answer came: a write may or may not have happened."""

    retryable = True


class RedditServerError(RedditError):
    """5xx or 408: Reddit is having trouble; try again later."""

    retryable = True


class RedditRateLimited(RedditError):
    """429, or a ``RATELIMIT`` error inside a 200: wait ``retry_after`` seconds."""

    retryable = True


class RedditCredentialsRefused(RedditError):
    """The token endpoint refused the app or account credentials: nothing works until they change."""


class RedditForbidden(RedditError):
    """403: the account may not see or do this (a private message, a banned subreddit, a missing scope)."""


class RedditNotFound(RedditError):
    """404: the subreddit or item does not exist."""


class RedditRedirected(RedditError):
    """3xx: the endpoint needs a user context or is not available to this account."""

    def __init__(self, description: str, *, status: int, location: str | None) -> None:
        super().__init__(description, status=status)
        self.location = location


class RedditBadRequest(RedditError):
    """Another 4xx: the request itself is wrong."""


class RedditApiErrors(RedditError):
    """A write answered 200 with ``json.errors``; ``code`` is the first error's code."""

    def __init__(self, errors: Sequence[Sequence[Any]]) -> None:
        first = [*errors[0], None, None]
        self.errors = [tuple(e) for e in errors]
        self.code = str(first[0])
        super().__init__(f"{first[0]}: {first[1]}" if first[1] else str(first[0]))


def ratelimit_wait(message: str) -> float | None:
    """Seconds a ``RATELIMIT`` message asks to wait ("Try again in 7 minutes."), if it says."""
    match = _WAIT.search(message)
    if match is None:
        return None
    unit = match.group(2).rstrip("s")
    return int(match.group(1)) * _UNITS[unit]


@dataclass(frozen=True)
class RedditCredentials:
    """What a channel connects with: a script app's password grant, or a refresh token."""

    client_id: str
    client_secret: str = field(repr=False)
    user_agent: str
    username: str | None = None
    password: str | None = field(default=None, repr=False)
    refresh_token: str | None = field(default=None, repr=False)

    def grant(self) -> dict[str, str]:
        """The token request's form."""
        if self.refresh_token:
            return {"grant_type": "refresh_token", "refresh_token": self.refresh_token}
        if self.username and self.password:
            return {"grant_type": "password", "username": self.username, "password": self.password}
        raise RedditCredentialsRefused("neither a refresh token nor a username and password")


class RateLimiter:
    """Paces one OAuth client's calls by the ``x-ratelimit-*`` headers of the previous answer.

    The remaining budget is spread evenly over the time left in the window (at most 10 s apart, as
    prawcore does); with no budget left the next call waits for the window to reset. A 429 sets the
    next call after its ``Retry-After``.
    """

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self._clock = clock
        self._next_at = 0.0
        self._lock = asyncio.Lock()

    @property
    def throttled_for(self) -> float:
        """Seconds until the next call may go."""
        return max(0.0, self._next_at - self._clock())

    async def wait(self) -> None:
        """Wait for this call's turn (calls queue in order)."""
        async with self._lock:
            delay = self._next_at - self._clock()
            if delay > 0:
                await asyncio.sleep(delay)
            self._next_at = max(self._next_at, self._clock())

    def update(self, headers: Mapping[str, str]) -> None:
        """Learn the budget from an answer's headers."""
        try:
            remaining = float(headers["x-ratelimit-remaining"])
            reset = float(headers["x-ratelimit-reset"])
        except (KeyError, ValueError):
            return
        now = self._clock()
        if remaining < 1:
            self._next_at = max(self._next_at, now + max(1.0, reset))
        else:
            self._next_at = max(self._next_at, now + min(reset / remaining, 10.0))

    def back_off(self, seconds: float) -> None:
        """Reddit said to wait: no call before ``seconds`` from now."""
        self._next_at = max(self._next_at, self._clock() + seconds)


@dataclass(frozen=True)
class Listing:
    """One page of a listing: ``(kind, data)`` children newest first, and the ``after`` cursor."""

    children: list[tuple[str, dict[str, Any]]]
    after: str | None


class RedditClient:
    """One account's view of the Reddit API."""

    def __init__(
        self,
        credentials: RedditCredentials,
        *,
        http: httpx.AsyncClient,
        auth_url: str = DEFAULT_AUTH_URL,
        api_url: str = DEFAULT_API_URL,
        limiter: RateLimiter | None = None,
        timeout: float = 30.0,
    ) -> None:
        self.credentials = credentials
        self._http = http
        self._auth_url = auth_url.rstrip("/")
        self._api_url = api_url.rstrip("/")
        self.limiter = limiter or RateLimiter()
        self._timeout = timeout
        self._token: str | None = None
        self._token_expires_at = 0.0
        self._token_lock = asyncio.Lock()

    # -- tokens ---------------------------------------------------------------------------------

    async def _access_token(self, *, renew: bool = False) -> str:
        async with self._token_lock:
            if renew or self._token is None or time.monotonic() >= self._token_expires_at:
                await self._fetch_token()
            assert self._token is not None
            return self._token

    async def _fetch_token(self) -> None:
        started = time.monotonic()
        try:
            response = await self._http.post(
                f"{self._auth_url}{TOKEN_PATH}",
                data=self.credentials.grant(),
                auth=(self.credentials.client_id, self.credentials.client_secret),
                headers={"user-agent": self.credentials.user_agent, "connection": "close"},
                timeout=self._timeout,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise RedditUnreachable(f"token: {type(exc).__name__}") from None
        except httpx.HTTPError as exc:
            # A token request changes nothing at Reddit: safe to repeat, unlike a lost write.
            raise RedditUnreachable(f"token: {type(exc).__name__}") from None
        body = _json(response)
        if response.status_code == 429:
            raise RedditRateLimited(
                "the token endpoint asks to slow down", status=429, retry_after=_after(response)
            )
        if response.status_code >= 500:
            raise RedditServerError(f"token: HTTP {response.status_code}", status=response.status_code)
        if response.status_code != 200 or not isinstance(body, dict) or "error" in body:
            # 200 with an error body ("Why are these OKAY responses?"), 400 for a bad refresh token,
            # 401 for bad app credentials.
            detail = _token_error(body) if isinstance(body, dict) else None
            status = response.status_code
            raise RedditCredentialsRefused(
                f"{detail or 'refused'} (HTTP {status})" if status != 200 else detail or "refused",
                status=status,
            )
        token = body.get("access_token")
        if not isinstance(token, str) or not token:
            raise RedditCredentialsRefused("the token endpoint answered without an access token")
        lifetime = float(body.get("expires_in") or 3600)
        self._token = token
        self._token_expires_at = started + max(lifetime - 60.0, lifetime / 2)
        rotated = body.get("refresh_token")
        if isinstance(rotated, str) and rotated and self.credentials.refresh_token:
            self.credentials = replace(self.credentials, refresh_token=rotated)  # for the next refresh

    # -- calls ----------------------------------------------------------------------------------

    async def request(
        self,
        method: str,
        path: str,
        *,
        params: Mapping[str, Any] | None = None,
        form: Mapping[str, Any] | None = None,
    ) -> Any:
        """One API call, paced; a 401 renews the token and retries once. Returns the parsed JSON."""
        query = {"raw_json": "1", **{k: str(v) for k, v in (params or {}).items() if v is not None}}
        data = None
        if form is not None:
            data = {"api_type": "json", **{k: str(v) for k, v in form.items() if v is not None}}
        for attempt in (1, 2):
            token = await self._access_token(renew=attempt == 2)
            await self.limiter.wait()
            try:
                response = await self._http.request(
                    method,
                    f"{self._api_url}{path}",
                    params=query,
                    data=data,
                    headers={"authorization": f"bearer {token}", "user-agent": self.credentials.user_agent},
                    follow_redirects=False,
                    timeout=self._timeout,
                )
            except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
                raise RedditUnreachable(f"{path}: {type(exc).__name__}") from None
            except httpx.HTTPError as exc:
                raise RedditNoAnswer(f"{path}: {type(exc).__name__}") from None
            self.limiter.update(response.headers)
            if response.status_code == 401 and attempt == 1:
                continue
            return self._answer(path, response)
        raise AssertionError("unreachable")

    def _answer(self, path: str, response: httpx.Response) -> Any:
        status = response.status_code
        if 300 <= status < 400:
            location = response.headers.get("location")
            raise RedditRedirected(f"{path}: redirected to {location}", status=status, location=location)
        body = _json(response)
        if status == 429:
            wait = _after(response)
            if wait is None:
                wait = float(response.headers.get("x-ratelimit-reset") or 0) or None
            self.limiter.back_off(wait or 2.0)
            raise RedditRateLimited(f"{path}: too many requests", status=429, retry_after=wait or 2.0)
        if status >= 500 or status == 408:
            raise RedditServerError(f"{path}: HTTP {status}", status=status)
        if status == 401:
            raise RedditCredentialsRefused(f"{path}: the access token is refused", status=401)
        if status == 403:
            raise RedditForbidden(f"{path}: {_message(body) or 'forbidden'}", status=403)
        if status == 404:
            raise RedditNotFound(f"{path}: {_message(body) or 'not found'}", status=404)
        if status >= 400:
            raise RedditBadRequest(f"{path}: {_message(body) or f'HTTP {status}'}", status=status)
        if isinstance(body, dict) and isinstance(body.get("json"), dict):
            errors = body["json"].get("errors") or []
            if errors:
                failure = RedditApiErrors(errors)
                if failure.code == "RATELIMIT":
                    wait = ratelimit_wait(str(failure.errors[0][1] if len(failure.errors[0]) > 1 else ""))
                    raise RedditRateLimited(failure.description, status=200, retry_after=(wait or 60.0) + 1)
                raise failure
        return body

    # -- endpoints ------------------------------------------------------------------------------

    async def me(self) -> dict[str, Any]:
        """The account the credentials act as."""
        body = await self.request("GET", "/api/v1/me")
        if not isinstance(body, dict) or not body.get("name"):
            raise RedditBadRequest("/api/v1/me answered without a name")
        return body

    async def listing(
        self,
        path: str,
        *,
        limit: int = 100,
        before: str | None = None,
        after: str | None = None,
        **params: Any,
    ) -> Listing:
        """One page of a listing, newest first."""
        body = await self.request(
            "GET", path, params={"limit": limit, "before": before, "after": after, **params}
        )
        return parse_listing(body)

    async def info(self, fullnames: Iterable[str]) -> list[tuple[str, dict[str, Any]]]:
        """Current versions of items (comments and posts), at most 100 per call."""
        names = list(fullnames)
        found: list[tuple[str, dict[str, Any]]] = []
        for start in range(0, len(names), INFO_BATCH):
            page = await self.listing(
                "/api/info/", limit=INFO_BATCH, id=",".join(names[start : start + INFO_BATCH])
            )
            found.extend(page.children)
        return found

    async def comment(self, thing_id: str, text: str) -> dict[str, Any] | None:
        """Reply to a comment, post or message; the created item, or None when Reddit returns none."""
        body = await self.request("POST", "/api/comment/", form={"thing_id": thing_id, "text": text})
        things = ((body or {}).get("json") or {}).get("data", {}).get("things") or []
        if not things:
            return None  # created (a quarantined subreddit answers so): never retry, it would double-post
        thing: dict[str, Any] = things[0].get("data") or {}
        return thing

    async def compose(self, to: str, subject: str, text: str) -> None:
        """Send a new private message (Reddit returns no id)."""
        await self.request("POST", "/api/compose/", form={"to": to, "subject": subject, "text": text})

    async def mark_read(self, fullnames: Sequence[str]) -> None:
        """Mark inbox items read, 25 per call."""
        for start in range(0, len(fullnames), READ_BATCH):
            await self.request(
                "POST", "/api/read_message/", form={"id": ",".join(fullnames[start : start + READ_BATCH])}
            )

    async def moderate(self, action: str, fullname: str, **form: Any) -> None:
        """``remove`` (with ``spam``), ``approve``, ``lock``, ``unlock`` or ``del``."""
        await self.request("POST", f"/api/{action}/", form={"id": fullname, **form})


def parse_listing(body: Any) -> Listing:
    """The children and ``after`` of a Listing answer (or of the first Listing of a list)."""
    if isinstance(body, list) and body:
        body = body[0]
    data = body.get("data") if isinstance(body, dict) and body.get("kind") == "Listing" else None
    if not isinstance(data, dict):
        raise RedditBadRequest("expected a Listing")
    children = [
        (str(child.get("kind")), child["data"])
        for child in data.get("children") or []
        if isinstance(child, dict) and isinstance(child.get("data"), dict)
    ]
    after = data.get("after")
    return Listing(children, after if isinstance(after, str) and after else None)


def _json(response: httpx.Response) -> Any:
    if not response.content:
        return {}
    try:
        return orjson.loads(response.content)
    except orjson.JSONDecodeError:
        return None


def _after(response: httpx.Response) -> float | None:
    try:
        return float(response.headers["retry-after"])
    except (KeyError, ValueError):
        return None


def _token_error(body: dict[str, Any]) -> str | None:
    for key in ("error_description", "message", "error"):
        if body.get(key) not in (None, ""):
            return str(body[key])
    return None


def _message(body: Any) -> str | None:
    if not isinstance(body, dict):
        return None
    for key in ("explanation", "message", "reason"):
        if isinstance(body.get(key), str):
            return str(body[key])
    return None
