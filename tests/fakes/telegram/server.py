"""A fake Telegram Bot API server: real HTTP on a free port, for tests and ``piazza demo telegram``.

    async with FakeTelegram(webhook_backoff=0.05) as fake:
        bot = fake.add_bot("123456:TEST-TOKEN", username="inbox_bot")
        zoe = factory.user("Zoë")
        chat = bot.add_private_chat(zoe)
        bot.push_message(factory.message(chat, zoe, text="Hallo"))
        # point the client at fake.base_url: {base}/bot<token>/<method>, {base}/file/bot<token>/<path>

What it reproduces (platforms.md §1 and §7): case-insensitive methods over GET or POST with query,
form, JSON or multipart parameters (JSON-in-form fields parsed); the ``ok``/``error_code`` envelope with
the HTTP status equal to the code; 401 for unknown or revoked tokens, 404 for malformed tokens and
unknown methods; getUpdates with offset confirmation, negative offsets, clamped limit and timeout, long
polling, sticky ``allowed_updates`` applied when updates are created, 409 for a superseded poll and
while a webhook is set; webhook delivery (see ``webhook.py``); sendMessage validation, per-chat
message ids, forum threads and replies; flood control (``ratelimit.py``); deleteMessage(s),
ban/unbanChatMember, getChat, getChatMember, getFile and downloads, answerCallbackQuery; group to
supergroup migration; injected failures (``FakeBot.inject``).

Left out on purpose: getUpdates busy-loop protection (timeout raised to 3 s, limit forced to 1 on
rapid repeats) and the 3 s rate limit on Conflict answers; the 24 h update expiry and the random
update_id after a week of silence; closing a webhook after ~23 h of 410 answers; setWebhook's own flood limit, HTTPS/port checks and certificates;
executing a method named in a webhook response body; parse_mode (text is returned as sent, no entities
are derived) and the trimming of surrounding whitespace; replies across chats (``external_reply``);
automatic forwarding of the bot's own channel posts into the discussion group; every method not listed
above (they answer 404 like unknown methods).
"""

from __future__ import annotations

import asyncio
import json
import mimetypes
import re
import secrets
import time
from collections.abc import Awaitable, Callable
from types import TracebackType
from typing import Any

from aiohttp import web

from tests.fakes.telegram import factory
from tests.fakes.telegram.bot import FakeBot
from tests.fakes.telegram.errors import NOT_FOUND, UNAUTHORIZED, ApiError
from tests.fakes.telegram.methods import METHODS, Described
from tests.fakes.telegram.params import read_params
from tests.fakes.telegram.ratelimit import RateLimits
from tests.fakes.telegram.records import Injection, RecordedRequest

TOKEN = re.compile(r"\d+:[A-Za-z0-9_-]+")
DOWNLOAD = "file"  # the pseudo-method name injections use for file downloads
BAD_GATEWAY_HTML = (
    "<html>\r\n<head><title>502 Bad Gateway</title></head>\r\n<body>\r\n"
    "<center><h1>502 Bad Gateway</h1></center>\r\n<hr><center>nginx/1.18.0</center>\r\n</body>\r\n</html>\r\n"
)


class FakeTelegram:
    """The server; bots are registered with ``add_bot`` before or after ``start``."""

    def __init__(
        self,
        *,
        host: str = "127.0.0.1",
        port: int = 0,
        webhook_backoff: float = 1.0,
        webhook_timeout: float = 10.0,
        rate_limits: RateLimits | None = None,
    ) -> None:
        self.host = host
        self.port = port
        self.webhook_backoff = webhook_backoff
        self.webhook_timeout = webhook_timeout
        self.rate_limits = rate_limits or RateLimits()
        self.bots: dict[str, FakeBot] = {}
        self._runner: web.AppRunner | None = None
        self._base_url: str | None = None

    # -- lifecycle ------------------------------------------------------------------------------

    @property
    def base_url(self) -> str:
        """``http://127.0.0.1:<port>``, what ``PIAZZA_TELEGRAM_API_URL`` should be set to."""
        if self._base_url is None:
            raise RuntimeError("FakeTelegram is not started")
        return self._base_url

    def api_url(self, bot: FakeBot, method: str) -> str:
        return f"{self.base_url}/bot{bot.token}/{method}"

    async def start(self) -> None:
        """Listen; after a ``stop`` this listens on the same port again, so clients keep their URL."""
        if self._runner is not None:
            return
        app = web.Application(client_max_size=64 * 1024 * 1024)
        app.router.add_route("*", "/bot{token}/{method}", self._api)
        app.router.add_route("GET", "/file/bot{token}/{path:.+}", self._download)
        app.router.add_route("*", "/{tail:.*}", self._not_found)
        # handler_cancellation: a dropped connection or a client giving up ends its long poll.
        runner = web.AppRunner(app, handler_cancellation=True, access_log=None, shutdown_timeout=1.0)
        await runner.setup()
        site = web.TCPSite(runner, self.host, self.port)
        await site.start()
        self._runner = runner
        host, self.port = runner.addresses[0][:2]
        self._base_url = f"http://{host}:{self.port}"
        for bot in self.bots.values():
            await bot.resume()

    async def stop(self) -> None:
        """Stop listening (waiting long polls answer at once); webhooks and queues survive a restart."""
        for bot in self.bots.values():
            await bot.close()
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> FakeTelegram:
        await self.start()
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def add_bot(
        self,
        token: str | None = None,
        *,
        username: str | None = None,
        first_name: str | None = None,
        rate_limits: RateLimits | None = None,
        first_update_id: int | None = None,
    ) -> FakeBot:
        """Register a bot; the token's digits are its user id (random token when not given).

        Update ids start at ``first_update_id`` (a random number when not given, as on Telegram)."""
        token = token or f"{factory.new_user_id()}:AA{secrets.token_urlsafe(24)}"
        if not TOKEN.fullmatch(token):
            raise ValueError(f"not a bot token: {token!r}")
        if first_name is None:
            first_name = (
                username.removesuffix("_bot").replace("_", " ").title() + " Bot" if username else "Test Bot"
            )
        bot = FakeBot(
            token,
            username=username or f"test_{secrets.token_hex(3)}_bot",
            first_name=first_name,
            rate_limits=rate_limits or self.rate_limits,
            webhook_backoff=self.webhook_backoff,
            webhook_timeout=self.webhook_timeout,
            first_update_id=first_update_id,
        )
        self.bots[token] = bot
        return bot

    # -- HTTP -----------------------------------------------------------------------------------

    def _bot(self, token: str) -> FakeBot:
        if not TOKEN.fullmatch(token):
            raise NOT_FOUND
        bot = self.bots.get(token)
        if bot is None or bot.revoked:
            raise UNAUTHORIZED
        return bot

    async def _api(self, request: web.Request) -> web.StreamResponse:
        try:
            bot = self._bot(request.match_info["token"])
            known = METHODS.get(request.match_info["method"].lower())
            if known is None:
                raise NOT_FOUND
            name, handler = known
            params = await read_params(request)
        except ApiError as error:
            return _answer(error)
        injection = bot.take_injection(name)
        bot.record_request(
            RecordedRequest(
                name,
                request.method,
                request.content_type,
                dict(params.values),
                time.monotonic(),
                params.files,
                injection,
            )
        )

        async def run() -> web.Response:
            try:
                return _answer(await handler(bot, params))
            except ApiError as error:
                return _answer(error)

        return await _with_injection(request, injection, run)

    async def _download(self, request: web.Request) -> web.StreamResponse:
        try:
            bot = self._bot(request.match_info["token"])
        except ApiError as error:
            return _answer(error)
        path = request.match_info["path"]

        async def run() -> web.Response:
            stored = next((f for f in bot.files.values() if f.file_path == path), None)
            if stored is None:
                return _answer(NOT_FOUND)
            content_type = mimetypes.guess_type(path)[0] or "application/octet-stream"
            return web.Response(body=stored.data, content_type=content_type)

        return await _with_injection(request, bot.take_injection(DOWNLOAD), run)

    async def _not_found(self, request: web.Request) -> web.StreamResponse:
        return _answer(NOT_FOUND)


def _answer(outcome: Any) -> web.Response:
    """Render a result, a ``Described`` result or an ``ApiError`` as the Bot API envelope."""
    status = 200
    if isinstance(outcome, ApiError):
        body = outcome.envelope()
        status = outcome.status
    elif isinstance(outcome, Described):
        body = {"ok": True, "result": outcome.result, "description": outcome.description}
    else:
        body = {"ok": True, "result": outcome}
    payload = json.dumps(body, ensure_ascii=False, separators=(",", ":")).encode()
    return web.Response(body=payload, status=status, content_type="application/json")


async def _with_injection(
    request: web.Request, injection: Injection | None, run: Callable[[], Awaitable[web.Response]]
) -> web.StreamResponse:
    if injection is None:
        return await run()
    if injection.delay:
        await asyncio.sleep(injection.delay)
    if injection.fault == "drop":
        return await _drop(request)
    if injection.fault == "bad_gateway":
        return web.Response(status=502, text=BAD_GATEWAY_HTML, content_type="text/html")
    if injection.status is not None:
        return _answer(ApiError(injection.status, injection.description or "", injection.parameters))
    response = await run()
    if injection.fault == "truncated_json" and isinstance(response.body, bytes):
        cut = response.body[: max(1, len(response.body) // 2)]
        return web.Response(body=cut, status=response.status, content_type=response.content_type)
    return response


async def _drop(request: web.Request) -> web.StreamResponse:
    """Close the connection without answering; aiohttp then cancels this handler."""
    if request.transport is not None:
        request.transport.close()
    await asyncio.get_running_loop().create_future()  # never resolves: the cancellation ends it
    raise AssertionError("unreachable")
