"""A fake Reddit (token endpoint and OAuth API): real HTTP on a free port, for tests and ``piazza demo reddit``.

    async with FakeReddit(budget=RateBudget(total=600, window=600.0)) as fake:
        app = fake.add_app(client_id="cid", client_secret="csecret", kind="script")
        me = fake.add_account("example_ops", password="pw")
        fake.add_subreddit("examplestore", moderators=["example_ops"])
        post = fake.submit("examplestore", author="jane_doe", title="Launch thread", selftext="Hello")
        fake.comment(post, author="bob", body="ask u/example_ops")   # a username_mention in the inbox
        # point the client at fake.base_url: POST /api/v1/access_token and the oauth.reddit.com paths

What it reproduces (platforms.md §2 and §7): the token endpoint with HTTP Basic client credentials and
the password (script apps only), refresh_token (optionally rotated), authorization_code,
client_credentials and installed_client grants, with the error-in-200 bodies and the 400/401 ones;
bearer tokens (scheme in any case) that expire after ``token_lifetime`` or ``expire_tokens()``, 401 with
``www-authenticate`` otherwise; the descriptive User-Agent rule (missing, short or library default
agents get 429); ``x-ratelimit-used/-remaining/-reset`` on every API answer from a fixed-window budget
per client id, 429 once it is spent (HTML with ``Retry-After`` or JSON without); ``raw_json`` (entities
escaped without it) and ``api_type`` (legacy jQuery bodies without it); paths with or without a trailing
slash or ``.json``; Listings with limit/after/before, newest first, the 1000-item horizon and empty
pages for a vanished anchor; the inbox listings with their recorded item shapes and ``mark`` (default
false, as on Reddit's API, but true on ``/message/unread`` so clients must send ``mark=false`` as PRAW
does), threaded ``/message/messages``, ``/message/sent``, subreddit comments and submissions,
``/api/info``; ``/api/comment`` and ``/api/compose`` with NO_TEXT, TOO_LONG, RATELIMIT, DELETED_COMMENT,
THREAD_LOCKED, USER_DOESNT_EXIST and the empty ``things`` of quarantined subreddits; read and unread
marks (400 empty, 413 over 25 ids); remove/approve/lock/unlock for moderators and del for authors;
private (403) and banned (404) subreddits; the 2025 ``/message/messages`` redirect to the login page;
userless tokens refused (403) on the inbox, identity and writes; injected failures (``inject``).

Left out on purpose: scopes (every token may do everything its account may); two-factor ``otp``,
``/api/v1/revoke_token`` and the authorize page; ``count``, ``show`` and ``sr_detail``; votes, karma,
awards, flair, distinguish, blocking, muting and archiving (no USER_BLOCKED, USER_MUTED, TOO_OLD);
moderators commenting in locked threads (they get THREAD_LOCKED like everyone); quarantine opt-in for
reading; messages to subreddits (``to=/r/...``) and modmail; comment trees (``/comments/{id}``) and the
``more`` kind; editing through the API (``/api/editusertext``); a budget for the token endpoint and
for unauthenticated calls beyond one shared bucket; CDN caching of listings; every other endpoint
(404).
"""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Callable
from types import TracebackType
from typing import Any

from aiohttp import web

from tests.fakes.reddit import listings, oauth, writes
from tests.fakes.reddit.accounts import AccessToken
from tests.fakes.reddit.endpoints import Call, Reply, Route, refused_agent, resolve
from tests.fakes.reddit.errors import ApiError, invalid_token, not_found, too_many_requests
from tests.fakes.reddit.ratelimit import BudgetLedger, RateBudget
from tests.fakes.reddit.records import TOKEN_ENDPOINT, Injection, RecordedRequest
from tests.fakes.reddit.things import escape_entities
from tests.fakes.reddit.world import RedditWorld

Json = dict[str, Any]
ROUTES: list[Route] = [*listings.ROUTES, *writes.ROUTES]
TOKEN_PATH = "/api/v1/access_token"
ANONYMOUS = ""  # the budget shared by calls without a known token


class FakeReddit(RedditWorld):
    """The server and its world; build the world before or after ``start``."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        budget: RateBudget | None = None,
        retry_after_on_429: bool = True,
        token_lifetime: int = 86400,
        rotate_refresh_tokens: bool = False,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        """``clock``: the seconds the rate-limit windows and tokens are measured in (a test can hold
        it still, so the headers it checks do not depend on how fast the machine is)."""
        super().__init__(token_lifetime=token_lifetime, rotate_refresh_tokens=rotate_refresh_tokens)
        self.clock = clock
        self.host = host
        self.port = port
        self.budget = budget or RateBudget()
        self.ledger = BudgetLedger(self.budget)
        self.retry_after_on_429 = retry_after_on_429
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``: serves the token endpoint and the API."""
        if self._base_url is None:
            raise RuntimeError("FakeReddit is not started")
        return self._base_url

    @property
    def auth_url(self) -> str:
        """What ``PIAZZA_REDDIT_AUTH_URL`` should be set to (www.reddit.com on Reddit)."""
        return self.base_url

    @property
    def api_url(self) -> str:
        """What ``PIAZZA_REDDIT_API_URL`` should be set to (oauth.reddit.com on Reddit)."""
        return self.base_url

    async def start(self) -> None:
        """Listen; after a ``stop`` this listens on the same port again, so clients keep their URL."""
        if self._runner is not None:
            return
        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", self._handle)
        # handler_cancellation: a dropped connection ends its handler.
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        host, self.port = runner.addresses[0][:2]
        self._base_url = f"http://{host}:{self.port}"

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeReddit:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    # -- HTTP -----------------------------------------------------------------------------------

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        at = self.clock()
        path = _normalise(request.path)
        query = dict(request.query)
        form = await _read_form(request)
        headers = {name.lower(): value for name, value in request.headers.items()}
        seen = _Seen()

        def record(status: int, injection: Injection | None = None) -> None:
            recorded = RecordedRequest(
                request.method, request.path, query, form, headers, at, status,
                seen.client_id, seen.username, injection,
            )  # fmt: skip
            self.requests.append(recorded)
            if seen.over_budget:
                self.over_budget.append(recorded)
            self.touch()

        is_token = path == TOKEN_PATH
        injection = self.take_injection(TOKEN_ENDPOINT if is_token else path)
        if injection is not None:
            if injection.delay:
                await asyncio.sleep(injection.delay)
            if injection.fault == "drop":
                record(0, injection)
                return await _drop(request)
            if injection.status is not None:
                record(injection.status, injection)
                return _injected(injection)
        if is_token:
            response = self._token(request.method, headers, form, seen)
        else:
            response = self._api(request.method, path, query, form, headers, seen)
        record(response.status, injection)
        return response

    def _token(self, method: str, headers: dict[str, str], form: dict[str, str], seen: _Seen) -> web.Response:
        try:
            if method != "POST":
                raise ApiError(405, {"message": "Method Not Allowed", "error": 405})
            if refused_agent(headers.get("user-agent")):
                raise too_many_requests()
            app = oauth.client_of(self, headers.get("authorization"))
            seen.client_id = app.client_id
            return _render(oauth.grant(self, app, form, self.clock()))
        except ApiError as error:
            return _render(error.body, error.status, error.headers)

    def _bearer(self, authorization: str | None) -> AccessToken | None:
        scheme, _, value = (authorization or "").partition(" ")
        if scheme.lower() != "bearer":
            return None
        return self.access_tokens.get(value.strip())

    def _api(
        self,
        method: str,
        path: str,
        query: dict[str, str],
        form: dict[str, str],
        headers: dict[str, str],
        seen: _Seen,
    ) -> web.Response:
        now = self.clock()
        token = self._bearer(headers.get("authorization"))
        if token is not None:
            seen.client_id = token.app.client_id
            seen.username = None if token.account is None else token.account.username
        admission = self.ledger.admit(ANONYMOUS if token is None else token.app.client_id, now)
        limit_headers = admission.headers()
        try:
            if not admission.allowed:
                seen.over_budget = True
                wait = max(1, admission.reset_seconds)
                raise too_many_requests(html=self.retry_after_on_429, retry_after=wait)
            if refused_agent(headers.get("user-agent")):
                raise too_many_requests()
            if token is None or not token.valid(now):
                raise invalid_token()
            found = resolve(ROUTES, method, path)
            if found is None:
                raise not_found()
            if found == "method":
                raise ApiError(405, {"message": "Method Not Allowed", "error": 405})
            assert not isinstance(found, str)
            chosen, params = found
            call = Call(self, method, path, params, query, form, token)
            if chosen.needs_user:
                call.user()
            answer = chosen.handler(call)
        except ApiError as error:
            return _render(error.body, error.status, {**limit_headers, **error.headers})
        if isinstance(answer, Reply):
            body, status, extra = answer.body, answer.status, answer.headers
        else:
            body, status, extra = answer, 200, {}
        raw = "1" in (query.get("raw_json"), form.get("raw_json"))
        return _render(body if raw else escape_entities(body), status, {**limit_headers, **extra})


class _Seen:
    """What the handling learnt about a call, for its record."""

    def __init__(self) -> None:
        self.client_id: str | None = None
        self.username: str | None = None
        self.over_budget = False


def _normalise(path: str) -> str:
    """Reddit answers ``/message/inbox``, ``/message/inbox/`` and ``/message/inbox.json`` alike."""
    path = path.rstrip("/").removesuffix(".json") or "/"
    return path if path.startswith("/") else "/" + path


async def _read_form(request: web.Request) -> dict[str, str]:
    if request.method not in ("POST", "PUT", "PATCH", "DELETE") or not request.can_read_body:
        return {}
    if request.content_type == "application/json":
        try:
            parsed = json.loads(await request.text() or "{}")
        except ValueError:
            return {}
        if not isinstance(parsed, dict):
            return {}
        return {key: _as_text(value) for key, value in parsed.items()}
    posted = await request.post()
    return {key: value for key, value in posted.items() if isinstance(value, str)}


def _as_text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else json.dumps(value)


def _render(body: Json | str, status: int = 200, headers: dict[str, str] | None = None) -> web.Response:
    extra = dict(headers or {})
    if isinstance(body, str):
        if body:
            extra.setdefault("content-type", "text/html; charset=UTF-8")
        return web.Response(body=body.encode(), status=status, headers=extra)
    extra["content-type"] = "application/json; charset=UTF-8"
    return web.Response(body=json.dumps(body, ensure_ascii=False).encode(), status=status, headers=extra)


def _injected(injection: Injection) -> web.Response:
    headers = dict(injection.headers)
    if injection.content_type is not None:
        headers.setdefault("content-type", injection.content_type)
    assert injection.status is not None
    return web.Response(body=injection.body, status=injection.status, headers=headers)


async def _drop(request: web.Request) -> web.StreamResponse:
    """Close the connection without answering; aiohttp then cancels this handler."""
    if request.transport is not None:
        request.transport.close()
    await asyncio.get_running_loop().create_future()  # never resolves: the cancellation ends it
    raise AssertionError("unreachable")
