"""``piazza demo telegram|reddit``: a new user's tour with no Telegram or Reddit account."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.piazza.test_run import TOKEN, Run
from tests.support import free_port, wait_for

pytestmark = pytest.mark.e2e


async def test_the_demo_fills_the_inbox_and_carries_replies_back(tmp_path: Path) -> None:
    demo = Run(tmp_path / "data", free_port(), command=("demo", "telegram", "--pace", "0.05")).start()
    try:
        await demo.ready()
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=demo.url, headers=auth, timeout=10) as api:
            [channel] = await wait_for(_registered(api), timeout=20)
            assert (channel["type"], channel["account"], channel["mode"]) == (
                "telegram",
                "@piazza_demo_bot",
                "polling",
            )

            async def lively() -> list[dict[str, Any]] | None:
                listed = (await api.get("/v1/conversations", params={"limit": 200})).json()["data"]
                kinds = {_kind(c["external_id"]) for c in listed}
                return listed if {"private", "group", "topic", "post"} <= kinds else None

            conversations = await wait_for(lively, timeout=60)
            [zoe] = [c for c in conversations if c["title"] == "Zoë Krüger"]
            queued = await api.post(f"/v1/conversations/{zoe['id']}/messages", json={"text": "On its way 🚚"})
            assert queued.status_code == 202, queued.text

            async def sent() -> dict[str, Any] | None:
                body: dict[str, Any] = (await api.get(f"/v1/messages/{queued.json()['id']}")).json()
                return body if body["delivery"]["status"] == "sent" else None

            await wait_for(sent, timeout=30)
            await wait_for(_printed(demo, "→ Telegram Zoë: On its way 🚚"), timeout=10)
            before = len((await api.get("/v1/conversations", params={"limit": 200})).json()["data"])
        assert demo.interrupt() == 0
        assert "Piazza stopped." in demo.output()
    finally:
        demo.kill()

    # A second demo on the same data finds its channel again, and its new chats arrive (update ids
    # keep growing across runs, so the offset stored by the first run hides nothing).
    again = Run(tmp_path / "data", free_port(), command=("demo", "telegram", "--pace", "0.05")).start()
    try:
        await again.ready()
        async with httpx.AsyncClient(base_url=again.url, headers=auth, timeout=10) as api:
            assert len((await api.get("/v1/channels")).json()["data"]) == 1

            async def more() -> bool:
                listed = (await api.get("/v1/conversations", params={"limit": 200})).json()["data"]
                return len(listed) > before

            await wait_for(more, timeout=60)
        assert again.interrupt() == 0
    finally:
        again.kill()


async def test_the_reddit_demo_fills_the_inbox_and_carries_replies_back(tmp_path: Path) -> None:
    command = ("demo", "reddit", "--pace", "0.05")
    fast = {"PIAZZA_REDDIT_POLL_SECONDS": "0.5"}
    demo = Run(tmp_path / "data", free_port(), command=command, **fast).start()
    try:
        await demo.ready()
        auth = {"Authorization": f"Bearer {TOKEN}"}
        async with httpx.AsyncClient(base_url=demo.url, headers=auth, timeout=10) as api:
            [channel] = await wait_for(_registered(api), timeout=20)
            assert (channel["type"], channel["account"]) == ("reddit", "u/piazza_demo")

            # The shop subreddit's posts, a mention in another subreddit (by the inbox), a private message.
            wanted = {"Launch thread: we are open! 🎉", "Best small shops of 2026?", "your order #1001"}

            async def lively() -> list[dict[str, Any]]:
                listed: list[dict[str, Any]] = (
                    await api.get("/v1/conversations", params={"limit": 200})
                ).json()["data"]
                return listed if wanted <= {c["title"] for c in listed} else []

            conversations = await wait_for(lively, timeout=60)
            [order] = [c for c in conversations if c["title"] == "your order #1001"]
            assert order["external_id"].startswith("t4_")
            queued = await api.post(
                f"/v1/conversations/{order['id']}/messages", json={"text": "On its way 🚚"}
            )
            assert queued.status_code == 202, queued.text

            async def sent() -> dict[str, Any] | None:
                body: dict[str, Any] = (await api.get(f"/v1/messages/{queued.json()['id']}")).json()
                return body if body["delivery"]["status"] == "sent" else None

            await wait_for(sent, timeout=30)
            await wait_for(
                _printed(demo, "→ Reddit u/zoe_krueger (private message): On its way 🚚"), timeout=10
            )
            before = len((await api.get("/v1/conversations", params={"limit": 200})).json()["data"])
        assert demo.interrupt() == 0
        assert "Piazza stopped." in demo.output()
    finally:
        demo.kill()

    # A second demo on the same data finds its channel again (the stored credentials work with the new
    # fake), and new posts arrive past the cursors the first run stored.
    again = Run(tmp_path / "data", free_port(), command=command, **fast).start()
    try:
        await again.ready()
        async with httpx.AsyncClient(base_url=again.url, headers=auth, timeout=10) as api:
            assert len((await api.get("/v1/channels")).json()["data"]) == 1

            async def more() -> bool:
                listed = (await api.get("/v1/conversations", params={"limit": 200})).json()["data"]
                return len(listed) > before

            await wait_for(more, timeout=60)
        assert again.interrupt() == 0
    finally:
        again.kill()


def _kind(external_id: str) -> str:
    if ":topic:" in external_id:
        return "topic"
    if ":post:" in external_id:
        return "post"
    return "group" if external_id.startswith("-") else "private"


def _printed(run: Run, text: str) -> Any:
    async def check() -> bool:
        return text in run.output()

    return check


def _registered(api: httpx.AsyncClient) -> Any:
    """The demo registers its account once the installation is ready: a moment after ``ready()``."""

    async def channels() -> list[dict[str, Any]]:
        listed: list[dict[str, Any]] = (await api.get("/v1/channels")).json()["data"]
        return listed

    return channels
