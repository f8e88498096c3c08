"""An operator finds a dead letter, fixes its cause, and replays it into the store."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from piazza.cli import app
from services.inbox.models import Message
from shared.bus.client import Bus
from shared.db import session_factory
from shared.events import AuthorRef, InboundMessage, MessageReceived, ThreadRef, inbound_subject
from tests.support import Tenant, add_channel_row, wait_for

pytestmark = pytest.mark.e2e


async def test_list_and_replay_a_dead_letter(
    api: httpx.AsyncClient,
    tenant: Tenant,
    engine: AsyncEngine,
    nats_url: str,
    bus_prefix: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NATS_URL", nats_url)
    monkeypatch.setenv("PIAZZA_BUS_PREFIX", bus_prefix)
    cli = CliRunner()
    assert "no dead letters" in (await asyncio.to_thread(cli.invoke, app, ["dead-letters", "list"])).output

    # An event for a channel the store does not know yet (say, registered on another install).
    channel_id = uuid.uuid4()
    event = MessageReceived(
        workspace=str(tenant.workspace_id),
        source="tests",
        payload=InboundMessage(
            channel_id=channel_id,
            platform="webhook",
            thread=ThreadRef(external_id="t"),
            external_id="late",
            author=AuthorRef(namespace="n", external_id="a"),
            text="replayed",
            sent_at=datetime.now(UTC),
        ),
    )
    async with await Bus.connect(nats_url, name="tests", prefix=bus_prefix) as bus:
        await bus.publish(inbound_subject("webhook", channel_id), event)

    async def listed() -> str | None:
        output = (await asyncio.to_thread(cli.invoke, app, ["dead-letters", "list"])).output
        # The worker runs in this process and may log the same reason: wait for the listing's line.
        return output if "reason: unknown channel" in output else None

    output = await wait_for(listed)
    assert f"inbound.webhook.{channel_id}" in output
    assert f"reason: unknown channel {channel_id}" in output
    sequence = next(line.split()[0].lstrip("#") for line in output.splitlines() if line.startswith("#"))

    await add_channel_row(engine, tenant, channel_id)
    replayed = await asyncio.to_thread(cli.invoke, app, ["dead-letters", "replay", sequence])
    assert replayed.exit_code == 0, replayed.output
    assert f"replayed to inbound.webhook.{channel_id}" in replayed.output

    async def stored() -> str | None:
        async with session_factory(engine)() as session:
            return await session.scalar(select(Message.text).where(Message.channel_id == channel_id))

    assert await wait_for(stored) == "replayed"
    assert "no dead letters" in (await asyncio.to_thread(cli.invoke, app, ["dead-letters", "list"])).output
    again = await asyncio.to_thread(cli.invoke, app, ["dead-letters", "replay", sequence])
    assert again.exit_code == 1
    assert "no dead letter" in again.output
