"""``piazza reddit backfill``: an operator imports more history, following it on a progress bar."""

from __future__ import annotations

import asyncio
import time
from typing import Any

import httpx
import pytest
from typer.testing import CliRunner

from piazza.cli import app
from tests.fakes.reddit import FakeReddit
from tests.services.reddit.conftest import Account, channel_health, connect_account, messages_of
from tests.support import Tenant, conversation_messages, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
def cli(nats_url: str, bus_prefix: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("NATS_URL", nats_url)
    monkeypatch.setenv("PIAZZA_BUS_PREFIX", bus_prefix)
    return CliRunner()


async def test_a_deeper_import_fills_the_history_once(
    api: httpx.AsyncClient,
    tenant: Tenant,
    reddit: FakeReddit,
    account: Account,
    subreddit: str,
    connector: Any,
    cli: CliRunner,
) -> None:
    started = time.time() - 7200  # an hour of history, a minute apart, ending an hour ago
    post = reddit.submit(subreddit, author="jane_doe", title="Old thread", created_utc=started)
    for n in range(60):
        reddit.comment(post, author="bob", body=f"old{n:02}", created_utc=started + 60 * (n + 1))
    channel = await connect_account(api, tenant, account, inbox=False, subreddits=[subreddit], backfill=10)
    await messages_of(api, tenant, channel["id"], post.fullname, 11)

    source = f"r.{subreddit}.comments"
    result = await asyncio.to_thread(
        cli.invoke,
        app,
        ["reddit", "backfill", channel["id"], "--depth", "100", "--source", source, "--timeout", "30"],
    )
    assert result.exit_code == 0, result.output
    assert "asked the Reddit connector to import up to 100 items" in result.output
    assert source in result.output

    messages = await conversation_messages(api, tenant, channel["id"], post.fullname, limit=200)
    assert [m["text"] for m in messages] == ["Old thread", *(f"old{n:02}" for n in range(60))]
    progress = {p["source"]: p for p in (await channel_health(api, tenant, channel["id"]))["backfill"]}
    # Every item within the depth went again; the store kept each once.
    assert progress[source] == {"source": source, "imported": 60, "target": 60, "done": True}
    # Live polling goes on after the import.
    reddit.comment(post, author="bob", body="fresh")

    async def fresh() -> list[str] | None:
        messages = await conversation_messages(api, tenant, channel["id"], post.fullname, limit=200)
        texts = [m["text"] for m in messages]
        return texts if "fresh" in texts else None

    texts = await wait_for(fresh, timeout=20)
    assert texts == ["Old thread", *(f"old{n:02}" for n in range(60)), "fresh"]
