"""``piazza demo telegram|reddit``: the whole system against a fake platform, for a new user with no account.

Starts the platform's fake from the test suite (``tests/fakes/<platform>``) on a free port, runs the
installation (as ``piazza run``) pointed at it, registers the fake account as a channel (or finds the
one an earlier demo registered), and lets a small shop's world talk:

* Telegram: a support group, a forum with topics, a channel with comments, private chats.
* Reddit: the shop's subreddit, which the account moderates (posts, comments, replies to the account),
  mentions elsewhere on Reddit, private messages.

Replies sent through the API arrive at the fake and are printed here.
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib
import os
import sys
import time
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from pathlib import Path
from typing import Any, TypeVar

import httpx
from rich.console import Console
from rich.markup import escape

from piazza.supervisor import Supervisor, ensure_port_free
from shared.config import PiazzaSettings

console = Console(stderr=True, soft_wrap=True)
T = TypeVar("T")

DEMO_TOKEN = "7000000001:PiazzaDemoBotTokenForTheFakeBotApi"  # noqa: S105 (only the fake knows it)
DEMO_USERNAME = "piazza_demo_bot"

# The Reddit account: a script app and a password, the same on every run so the stored channel works.
REDDIT_USERNAME = "piazza_demo"
REDDIT_PASSWORD = "piazza-demo-password"  # noqa: S105 (only the fake knows it)
REDDIT_CLIENT_ID = "PiazzaDemoScriptApp"
REDDIT_CLIENT_SECRET = "PiazzaDemoSecretForTheFakeReddit"  # noqa: S105 (only the fake knows it)
REDDIT_USER_AGENT = "linux:org.piazza.demo:v1.0 (by /u/piazza_demo)"
REDDIT_SUBREDDIT = "examplestore"
"""The shop subreddit ``tests/fakes/reddit/demo.py`` builds; mentions in its other one come by the inbox."""
REDDIT_POLL_SECONDS = "2"
"""Polling is 10 s by default; a tour should feel live (the fake's budget below affords it)."""
REDDIT_BUDGET = 6000
"""Requests per 10 minutes (Reddit gives a free client 1,000): the demo's pace comes from the scenario."""


class DemoUnavailable(Exception):
    """The demo cannot run here (no source checkout, no bootstrap token)."""


def _fakes(platform: str) -> Any:
    """The fakes live with the tests: import the platform's from the source checkout."""
    root = Path(__file__).resolve().parents[1]
    if not (root / "tests" / "fakes" / platform).is_dir():
        raise DemoUnavailable("The demo uses the fakes in tests/fakes: run it from a source checkout.")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    return importlib.import_module(f"tests.fakes.{platform}")


def _bootstrap_token(settings: PiazzaSettings) -> str:
    token = os.environ.get("PIAZZA_BOOTSTRAP_TOKEN")
    if not settings.is_development or not token:
        raise DemoUnavailable("The demo needs PIAZZA_BOOTSTRAP_TOKEN in development (`make demo` sets it).")
    return token


# -- Telegram -------------------------------------------------------------------------------------------


async def run_telegram_demo(settings: PiazzaSettings, *, host: str, port: int, pace: float) -> int:
    """Run the installation with a fake Telegram until Ctrl-C; returns the exit code."""
    token = _bootstrap_token(settings)
    telegram = _fakes("telegram")
    ensure_port_free(host, port)  # before the fake starts, so a busy port fails plainly
    from tests.fakes.telegram.demo import run_scenario

    async with telegram.FakeTelegram() as fake:
        # Update ids grow across demo runs, as on Telegram, so a stored offset never hides new ones.
        bot = fake.add_bot(DEMO_TOKEN, username=DEMO_USERNAME, first_update_id=int(time.time() * 1000))
        os.environ["PIAZZA_TELEGRAM_API_URL"] = fake.base_url

        async def connect(api: httpx.AsyncClient) -> str:
            body = {"type": "telegram", "bot_token": bot.token, "mode": "polling", "name": "Telegram demo"}
            channel = await _register(api, body, account=f"@{DEMO_USERNAME}")
            if channel["mode"] != "polling":
                await api.patch(f"/v1/channels/{channel['id']}", json={"mode": "polling"})
            return f"fake Telegram on {fake.base_url}, bot @{DEMO_USERNAME} is channel {channel['id']}"

        return await _run_demo(
            settings,
            host=host,
            port=port,
            token=token,
            connect=connect,
            helpers=lambda: [
                run_scenario(fake, bot, pace=pace),
                _show_sent("Telegram", bot.wait_for, lambda: bot.sent, _telegram_sent),
            ],
        )


def _telegram_sent(sent: Any) -> tuple[str, str]:
    chat = sent.message.get("chat", {})
    where = chat.get("title") or chat.get("first_name") or str(sent.chat_id)
    if sent.message_thread_id:
        where += f" (thread {sent.message_thread_id})"
    return where, sent.message["text"]


# -- Reddit ---------------------------------------------------------------------------------------------


async def run_reddit_demo(settings: PiazzaSettings, *, host: str, port: int, pace: float) -> int:
    """Run the installation with a fake Reddit until Ctrl-C; returns the exit code."""
    token = _bootstrap_token(settings)
    reddit = _fakes("reddit")
    ensure_port_free(host, port)
    from tests.fakes.reddit.demo import run_scenario

    async with reddit.FakeReddit(budget=reddit.RateBudget(total=REDDIT_BUDGET, window=600.0)) as fake:
        # Thing ids grow with time across runs, as on Reddit, so stored cursors never hide new items.
        fake.add_app(REDDIT_CLIENT_ID, REDDIT_CLIENT_SECRET, kind="script")
        account = fake.add_account(REDDIT_USERNAME, password=REDDIT_PASSWORD)
        # Registering checks the subreddit exists; the scenario fills it (and titles it) later.
        fake.add_subreddit(REDDIT_SUBREDDIT, moderators=[REDDIT_USERNAME])
        os.environ["PIAZZA_REDDIT_AUTH_URL"] = fake.auth_url
        os.environ["PIAZZA_REDDIT_API_URL"] = fake.api_url
        os.environ.setdefault("PIAZZA_REDDIT_POLL_SECONDS", REDDIT_POLL_SECONDS)

        async def connect(api: httpx.AsyncClient) -> str:
            body = {
                "type": "reddit",
                "client_id": REDDIT_CLIENT_ID,
                "client_secret": REDDIT_CLIENT_SECRET,
                "user_agent": REDDIT_USER_AGENT,
                "username": REDDIT_USERNAME,
                "password": REDDIT_PASSWORD,
                "subreddits": [REDDIT_SUBREDDIT],
                "name": "Reddit demo",
            }
            channel = await _register(api, body, account=f"u/{REDDIT_USERNAME}")
            return (
                f"fake Reddit on {fake.base_url}, u/{REDDIT_USERNAME} (following r/{REDDIT_SUBREDDIT}) "
                f"is channel {channel['id']}"
            )

        return await _run_demo(
            settings,
            host=host,
            port=port,
            token=token,
            connect=connect,
            helpers=lambda: [
                run_scenario(fake, account, pace=pace),
                _show_sent("Reddit", fake.wait_for, lambda: fake.created_via_api, _reddit_sent),
            ],
        )


def _reddit_sent(thing: Any) -> tuple[str, str]:
    if thing.kind == "t4":
        return f"u/{thing.dest} (private message)", thing.body
    subreddit = thing.subreddit.name if thing.subreddit is not None else "?"
    parent = thing.parent.author if thing.parent is not None else "?"
    return f"r/{subreddit}, to u/{parent}", thing.body


# -- shared ---------------------------------------------------------------------------------------------


async def _run_demo(
    settings: PiazzaSettings,
    *,
    host: str,
    port: int,
    token: str,
    connect: Callable[[httpx.AsyncClient], Awaitable[str]],
    helpers: Callable[[], list[Coroutine[Any, Any, None]]],
) -> int:
    """Run the installation; once it is ready, ``connect`` the demo account and start the ``helpers``
    (the fake world's scenario, the printing of replies) until Ctrl-C. Returns the exit code."""
    supervisor = Supervisor(settings, host=host, port=port)
    running = asyncio.create_task(supervisor.run())
    ready = asyncio.create_task(supervisor.ready.wait())
    await asyncio.wait({running, ready}, return_when=asyncio.FIRST_COMPLETED)
    if running.done():
        ready.cancel()
        return running.result()
    base = f"http://{host}:{port}"
    tasks: list[asyncio.Task[None]] = []
    try:
        headers = {"Authorization": f"Bearer {token}"}
        async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as api:
            where = await connect(api)
        console.print(
            f"[bold green]Demo:[/] {where}. Conversations arrive every few seconds:\n"
            f"  curl -s {base}/v1/conversations -H 'Authorization: Bearer $PIAZZA_BOOTSTRAP_TOKEN'\n"
            f"  curl -s -X POST {base}/v1/conversations/<id>/messages -H 'Authorization: Bearer "
            "$PIAZZA_BOOTSTRAP_TOKEN' -H 'Content-Type: application/json' -d '{\"text\": \"Hi!\"}'"
        )
        tasks = [asyncio.create_task(helper) for helper in helpers()]
    except (httpx.HTTPError, DemoUnavailable) as exc:
        console.print(f"[bold red]Demo:[/] could not connect the demo account: {escape(str(exc))}")
        supervisor.stopping.set()
    code = await running
    for task in tasks:
        task.cancel()
    await asyncio.gather(*tasks, return_exceptions=True)
    return code


async def _register(api: httpx.AsyncClient, body: dict[str, Any], *, account: str) -> dict[str, Any]:
    """Register the demo account as a channel, or find it from an earlier demo run (409)."""
    created = await api.post("/v1/channels", json=body)
    if created.status_code == 201:
        channel: dict[str, Any] = created.json()
        return channel
    if created.status_code != 409:
        raise DemoUnavailable(f"POST /v1/channels answered {created.status_code}: {created.text}")
    listed = await api.get("/v1/channels", params={"limit": 200})
    for found in listed.json()["data"]:
        if found["account"] == account:
            return dict(found)
    raise DemoUnavailable(f"the demo account is connected but not listed: {created.text}")


async def _show_sent(
    platform: str,
    wait_for: Callable[..., Awaitable[None]],
    sent: Callable[[], Sequence[T]],
    describe: Callable[[T], tuple[str, str]],
) -> None:
    """Print each message the account sends (the agents' replies) as it reaches the fake platform."""
    shown = 0
    while True:
        with contextlib.suppress(AssertionError):  # nothing sent for a while: keep waiting
            await wait_for(lambda seen=shown: len(sent()) > seen, timeout=60)
        for item in sent()[shown:]:
            where, text = describe(item)
            console.print(f"[bold cyan]→ {platform}[/] {escape(where)}: {escape(text)}")
        shown = len(sent())


DEMOS: dict[str, Callable[..., Coroutine[Any, Any, int]]] = {
    "telegram": run_telegram_demo,
    "reddit": run_reddit_demo,
}
"""``piazza demo <platform>``: each runs until Ctrl-C and returns the exit code."""
