"""Helpers for tests: waiting, signing, factories, running apps and processes."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable, Mapping
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, TypeVar

import httpx
import orjson
from fastapi import FastAPI
from sqlalchemy.ext.asyncio import AsyncEngine

from services.inbox.service import access
from shared.db import session_factory
from shared.events import utcnow
from shared.webhooks.signing import sign

T = TypeVar("T")
ROOT = Path(__file__).resolve().parent.parent


async def wait_for(check: Callable[[], Awaitable[T]], *, timeout: float = 10.0, interval: float = 0.05) -> T:
    """Poll ``check`` until it returns something truthy; fail with the last value after ``timeout``."""
    deadline = time.monotonic() + timeout
    last: T | None = None
    while time.monotonic() < deadline:
        last = await check()
        if last:
            return last
        await asyncio.sleep(interval)
    raise AssertionError(f"condition not met within {timeout}s (last value: {last!r})")


def free_port() -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def unique(prefix: str) -> str:
    """A name no other test uses."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


def signed_headers(
    secret: str, body: bytes, *, webhook_id: str | None = None, timestamp: int | None = None
) -> dict[str, str]:
    """Standard Webhooks headers plus the JSON content type."""
    headers = sign(
        secret, webhook_id or unique("msg"), int(time.time()) if timestamp is None else timestamp, body
    )
    return {**headers.as_dict(), "content-type": "application/json"}


def message_event(
    *,
    kind: str = "message.created",
    message_id: str | None = None,
    thread: str = "thread-1",
    author: str = "author-1",
    text: str | None = "hello",
    occurred_at: str | None = None,
    **extra: Any,
) -> dict[str, Any]:
    """One generic webhook event."""
    event: dict[str, Any] = {
        "type": kind,
        "id": message_id or unique("m"),
        "thread": {"id": thread},
        "occurred_at": occurred_at or utcnow().isoformat(),
    }
    if kind == "message.created":
        event["author"] = {"id": author, "name": author.title()}
    if kind != "message.deleted" and text is not None:
        event["text"] = text
    event.update(extra)
    return event


@dataclass
class Tenant:
    """A workspace and an admin token for it."""

    workspace_id: uuid.UUID
    token: str

    @property
    def auth(self) -> dict[str, str]:
        """The Authorization header."""
        return {"Authorization": f"Bearer {self.token}"}


async def make_tenant(engine: AsyncEngine, role: access.Role = access.Role.ADMIN) -> Tenant:
    """A new workspace with a token of ``role``."""
    async with session_factory(engine)() as session, session.begin():
        workspace_id = await access.create_workspace(session, unique("ws"), utcnow())
        _, token = await access.create_token(session, workspace_id, "tests", role, utcnow())
    return Tenant(workspace_id, token)


@dataclass
class Agent(Tenant):
    """A user of a workspace (of any role) with a token of their own."""

    user_id: uuid.UUID = field(kw_only=True)
    name: str = field(kw_only=True)


async def add_user(
    engine: AsyncEngine,
    workspace_id: uuid.UUID,
    role: access.Role = access.Role.AGENT,
    name: str | None = None,
) -> Agent:
    """A new user of the workspace, with a token."""
    from services.inbox.service.users import create_user

    name = name or unique("agent")
    async with session_factory(engine)() as session, session.begin():
        user = await create_user(session, workspace_id, name=name, role=role, now=utcnow(), email=None)
        _, token = await access.create_token(session, workspace_id, "tests", role, utcnow(), user_id=user.id)
    return Agent(workspace_id, token, user_id=user.id, name=name)


async def add_token(engine: AsyncEngine, workspace_id: uuid.UUID, role: access.Role) -> str:
    """Another token for an existing workspace."""
    async with session_factory(engine)() as session, session.begin():
        _, token = await access.create_token(session, workspace_id, "tests", role, utcnow())
    return token


async def add_channel_row(
    engine: AsyncEngine, tenant: Tenant, channel_id: uuid.UUID | None = None
) -> uuid.UUID:
    """A webhook channel written straight into the store (for tests below the API)."""
    from services.inbox.models import Channel as ChannelRow

    channel_id = channel_id or uuid.uuid4()
    now = utcnow()
    async with session_factory(engine)() as session, session.begin():
        session.add(
            ChannelRow(
                id=channel_id,
                workspace_id=tenant.workspace_id,
                type="webhook",
                name=unique("channel"),
                status="active",
                config={},
                secrets=[],
                created_at=now,
                updated_at=now,
                last_event_at=None,
            )
        )
    return channel_id


@dataclass
class Channel:
    """A webhook channel as the API returned it."""

    id: str
    secret: str
    body: dict[str, Any]

    @property
    def path(self) -> str:
        """Its webhook path."""
        return f"/webhooks/{self.id}"


async def make_channel(client: httpx.AsyncClient, tenant: Tenant, name: str = "source") -> Channel:
    """Register a webhook channel through the API."""
    response = await client.post("/v1/channels", json={"type": "webhook", "name": name}, headers=tenant.auth)
    assert response.status_code == 201, response.text
    body = response.json()
    return Channel(body["id"], body["signing_secret"], body)


async def send_events(
    client: httpx.AsyncClient, channel: Channel, events: list[dict[str, Any]] | dict[str, Any], **kwargs: Any
) -> httpx.Response:
    """POST events (a list is sent as a batch) signed with the channel's secret."""
    payload = {"events": events} if isinstance(events, list) else events
    body = orjson.dumps(payload)
    return await client.post(
        channel.path, content=body, headers=signed_headers(channel.secret, body, **kwargs)
    )


@asynccontextmanager
async def serving(app: FastAPI) -> AsyncIterator[httpx.AsyncClient]:
    """Run an app's lifespan and give a client that talks to it in process."""
    async with app.router.lifespan_context(app):
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(transport=transport, base_url="http://piazza.test") as client:
            yield client


async def conversation_messages(
    client: httpx.AsyncClient, tenant: Tenant, channel_id: str, thread: str, **params: Any
) -> list[dict[str, Any]]:
    """Every message of a thread's conversation (empty if it does not exist yet)."""
    response = await client.get(
        "/v1/conversations", params={"channel_id": channel_id, "limit": 200}, headers=tenant.auth
    )
    assert response.status_code == 200, response.text
    matches = [c for c in response.json()["data"] if c["external_id"] == thread]
    if not matches:
        return []
    messages: list[dict[str, Any]] = []
    cursor = None
    while True:
        query = {"limit": 200, **params, **({"cursor": cursor} if cursor else {})}
        page = await client.get(
            f"/v1/conversations/{matches[0]['id']}/messages", params=query, headers=tenant.auth
        )
        assert page.status_code == 200, page.text
        messages += page.json()["data"]
        cursor = page.json()["next_cursor"]
        if not page.json()["has_more"]:
            return messages


class Process:
    """A ``python -m piazza ...`` child process, stopped (or killed) on exit."""

    def __init__(self, args: list[str], env: Mapping[str, str], log: Path) -> None:
        self.args = args
        self.env = dict(env)
        self.log = log
        self.popen: subprocess.Popen[bytes] | None = None

    def start(self) -> Process:
        """Start (again)."""
        handle = self.log.open("ab")
        self.popen = subprocess.Popen(
            [sys.executable, "-m", "piazza", *self.args],
            env=self.env,
            cwd=ROOT,
            stdout=handle,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        handle.close()
        return self

    def kill(self) -> None:
        """SIGKILL, no goodbye."""
        if self.popen is not None and self.popen.poll() is None:
            self.popen.kill()
            self.popen.wait()

    def stop(self, timeout: float = 30) -> int | None:
        """SIGTERM and wait; kill if it does not exit in time."""
        if self.popen is None:
            return None
        if self.popen.poll() is None:
            self.popen.terminate()
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                self.popen.kill()
                self.popen.wait()
        return self.popen.returncode

    def output(self) -> str:
        """What the process logged so far."""
        return self.log.read_text(errors="replace") if self.log.exists() else ""


async def wait_http_ready(url: str, process: Process, timeout: float = 30.0) -> None:
    """Wait until ``url``/readyz answers 200, failing early if the process died."""
    deadline = time.monotonic() + timeout
    async with httpx.AsyncClient(timeout=1.0) as client:
        while time.monotonic() < deadline:
            if process.popen is not None and process.popen.poll() is not None:
                raise AssertionError(f"process exited early:\n{process.output()[-4000:]}")
            try:
                if (await client.get(f"{url}/readyz")).status_code == 200:
                    return
            except httpx.HTTPError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"{url} not ready in {timeout}s:\n{process.output()[-4000:]}")


def child_env(**overrides: str) -> dict[str, str]:
    """The environment for a child process: ours, without stray service URLs, plus overrides."""
    env = {
        k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "NATS_URL", "PIAZZA_DATABASE_URL"}
    }
    env.update(overrides)
    return env
