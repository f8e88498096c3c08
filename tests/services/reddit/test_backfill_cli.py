"""``piazza reddit backfill``: an operator imports more history, following it on a progress bar."""

from __future__ import annotations

import asyncio
import time
import uuid
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
    started = time.time() - 3600  # an hour of history, a minute apart
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

    async def fresh() -> bool | None:
        texts = [
            m["text"]
            for m in await conversation_messages(api, tenant, channel["id"], post.fullname, limit=200)
        ]
        return True if texts[-1] == "fresh" and len(texts) == 62 else None

    await wait_for(fresh)


async def test_a_channel_that_is_not_reddit_is_refused(
    api: httpx.AsyncClient, tenant: Tenant, cli: CliRunner
) -> None:
    webhook = await api.post("/v1/channels", json={"type": "webhook", "name": "forms"}, headers=tenant.auth)
    for channel_id in (webhook.json()["id"], str(uuid.uuid4())):
        result = await asyncio.to_thread(cli.invoke, app, ["reddit", "backfill", channel_id])
        assert result.exit_code == 2
        assert f"{channel_id} is not a Reddit channel" in result.output
