"""``piazza demo telegram``: the whole system against a fake Telegram, for a new user with no bot.

Starts the fake Bot API of the test suite (``tests/fakes/telegram``) on a free port, runs the
installation (as ``piazza run``) pointed at it, registers the fake bot as a channel, and lets a small
shop's Telegram world talk: a support group, a forum with topics, a channel with comments, private
chats. Replies sent through the API arrive at the fake and are printed here.
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import sys
import time
from pathlib import Path
from typing import Any

import httpx
from rich.console import Console
from rich.markup import escape

from piazza.supervisor import Supervisor, ensure_port_free
from shared.config import PiazzaSettings

console = Console(stderr=True, soft_wrap=True)

DEMO_TOKEN = "7000000001:PiazzaDemoBotTokenForTheFakeBotApi"  # noqa: S105 (only the fake knows it)
DEMO_USERNAME = "piazza_demo_bot"


class DemoUnavailable(Exception):
    """The demo cannot run here (no source checkout, no bootstrap token)."""


def _fakes() -> Any:
    """The fake Bot API lives with the tests: import it from the source checkout."""
    root = Path(__file__).resolve().parents[1]
    if not (root / "tests" / "fakes" / "telegram").is_dir():
        raise DemoUnavailable("The demo uses the fake Bot API in tests/fakes: run it from a source checkout.")
    if str(root) not in sys.path:
        sys.path.insert(0, str(root))
    from tests.fakes import telegram

    return telegram


async def run_telegram_demo(settings: PiazzaSettings, *, host: str, port: int, pace: float) -> int:
    """Run the installation with a fake Telegram until Ctrl-C; returns the exit code."""
    token = os.environ.get("PIAZZA_BOOTSTRAP_TOKEN")
    if not settings.is_development or not token:
        raise DemoUnavailable("The demo needs PIAZZA_BOOTSTRAP_TOKEN in development (`make demo` sets it).")
    telegram = _fakes()
    ensure_port_free(host, port)  # before the fake starts, so a busy port fails plainly
    from tests.fakes.telegram.demo import run_scenario

    async with telegram.FakeTelegram() as fake:
        # Update ids grow across demo runs, as on Telegram, so a stored offset never hides new ones.
        bot = fake.add_bot(DEMO_TOKEN, username=DEMO_USERNAME, first_update_id=int(time.time() * 1000))
        os.environ["PIAZZA_TELEGRAM_API_URL"] = fake.base_url
        supervisor = Supervisor(settings, host=host, port=port)
        running = asyncio.create_task(supervisor.run())
        ready = asyncio.create_task(supervisor.ready.wait())
        await asyncio.wait({running, ready}, return_when=asyncio.FIRST_COMPLETED)
        if running.done():
            ready.cancel()
            return running.result()
        base = f"http://{host}:{port}"
        helpers: list[asyncio.Task[None]] = []
        try:
            channel = await _connect(base, token, bot.token)
            console.print(
                f"[bold green]Demo:[/] fake Telegram on {fake.base_url}, bot @{DEMO_USERNAME} is channel "
                f"{channel}. Conversations arrive every few seconds:\n"
                f"  curl -s {base}/v1/conversations -H 'Authorization: Bearer $PIAZZA_BOOTSTRAP_TOKEN'\n"
                f"  curl -s -X POST {base}/v1/conversations/<id>/messages -H 'Authorization: Bearer "
                "$PIAZZA_BOOTSTRAP_TOKEN' -H 'Content-Type: application/json' -d '{\"text\": \"Hi!\"}'"
            )
            helpers = [
                asyncio.create_task(run_scenario(fake, bot, pace=pace)),
                asyncio.create_task(_show_replies(bot)),
            ]
        except (httpx.HTTPError, DemoUnavailable) as exc:
            console.print(f"[bold red]Demo:[/] could not connect the bot: {escape(str(exc))}")
            supervisor.stopping.set()
        code = await running
        for helper in helpers:
            helper.cancel()
        await asyncio.gather(*helpers, return_exceptions=True)
        return code


async def _connect(base: str, token: str, bot_token: str) -> str:
    """Register the bot as a polled channel, or find it from an earlier demo run; returns its id."""
    headers = {"Authorization": f"Bearer {token}"}
    async with httpx.AsyncClient(base_url=base, headers=headers, timeout=10) as api:
        created = await api.post(
            "/v1/channels",
            json={"type": "telegram", "bot_token": bot_token, "mode": "polling", "name": "Telegram demo"},
        )
        if created.status_code == 201:
            return str(created.json()["id"])
        if created.status_code != 409:
            raise DemoUnavailable(f"POST /v1/channels answered {created.status_code}: {created.text}")
        listed = await api.get("/v1/channels", params={"limit": 200})
        for channel in listed.json()["data"]:
            if channel["account"] == f"@{DEMO_USERNAME}":
                if channel["mode"] != "polling":
                    await api.patch(f"/v1/channels/{channel['id']}", json={"mode": "polling"})
                return str(channel["id"])
        raise DemoUnavailable(f"the demo bot is connected but not listed: {created.text}")


async def _show_replies(bot: Any) -> None:
    """Print each message the bot sends (the agents' replies) as it reaches the fake Telegram."""
    shown = 0
    while True:
        with contextlib.suppress(AssertionError):  # nothing sent for a while: keep waiting
            await bot.wait_for(lambda seen=shown: len(bot.sent) > seen, timeout=60)
        for sent in bot.sent[shown:]:
            chat = sent.message.get("chat", {})
            where = chat.get("title") or chat.get("first_name") or str(sent.chat_id)
            if sent.message_thread_id:
                where += f" (thread {sent.message_thread_id})"
            console.print(f"[bold cyan]→ Telegram[/] {escape(where)}: {escape(sent.message['text'])}")
        shown = len(bot.sent)
