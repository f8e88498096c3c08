"""The operator's commands: workspaces, tokens, migrations, keys and the webhook signer."""

from __future__ import annotations

import asyncio
import re
import uuid

import httpx
import pytest
from cryptography.fernet import Fernet
from sqlalchemy.ext.asyncio import AsyncEngine
from typer.testing import CliRunner

from piazza.cli import app
from tests.support import Tenant, make_channel

pytestmark = pytest.mark.e2e

UUID_PATTERN = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


@pytest.fixture
def cli(database_url: str, monkeypatch: pytest.MonkeyPatch) -> CliRunner:
    monkeypatch.setenv("DATABASE_URL", database_url)
    monkeypatch.setenv("PIAZZA_LOG_LEVEL", "WARNING")
    return CliRunner()


def test_migrate_is_idempotent(cli: CliRunner) -> None:
    for _ in range(2):
        result = cli.invoke(app, ["migrate"])
        assert result.exit_code == 0, result.output
        assert "inbox: up to date" in result.output


async def test_a_created_token_opens_the_api_for_its_workspace_only(
    cli: CliRunner, api: httpx.AsyncClient, tenant: Tenant
) -> None:
    created = await asyncio.to_thread(cli.invoke, app, ["workspace", "create", "Acme brand"])
    assert created.exit_code == 0, created.output
    workspace_id = UUID_PATTERN.search(created.output)
    assert workspace_id is not None
    listed = await asyncio.to_thread(cli.invoke, app, ["workspace", "list"])
    assert f"{workspace_id.group(0)}  Acme brand" in listed.output
    issued = await asyncio.to_thread(
        cli.invoke,
        app,
        ["token", "create", "--workspace", workspace_id.group(0), "--name", "frontend", "--role", "viewer"],
    )
    assert issued.exit_code == 0, issued.output
    token = issued.output.strip()
    assert token.startswith("pz_")
    viewer = {"Authorization": f"Bearer {token}"}
    assert (await api.get("/v1/conversations", headers=viewer)).json()["data"] == []
    refused = await api.post("/v1/channels", json={"type": "webhook", "name": "x"}, headers=viewer)
    assert refused.status_code == 403
    other = await make_channel(api, tenant)
    assert (await api.get(f"/v1/channels/{other.id}", headers=viewer)).status_code == 404


def test_a_token_for_an_unknown_workspace_is_refused(cli: CliRunner) -> None:
    result = cli.invoke(app, ["token", "create", "--workspace", str(uuid.uuid4()), "--name", "x"])
    assert result.exit_code != 0
    assert "does not exist" in result.output


def test_an_unknown_role_is_refused(cli: CliRunner) -> None:
    created = cli.invoke(app, ["workspace", "create", "Roles"])
    workspace_id = UUID_PATTERN.search(created.output)
    assert workspace_id is not None
    result = cli.invoke(
        app, ["token", "create", "--workspace", workspace_id.group(0), "--name", "x", "--role", "owner"]
    )
    assert result.exit_code != 0
    assert "admin, agent or viewer" in result.output


async def test_a_revoked_token_stops_working(
    cli: CliRunner, api: httpx.AsyncClient, engine: AsyncEngine, monkeypatch: pytest.MonkeyPatch
) -> None:
    from services.inbox.repository.access import list_tokens
    from shared.db import session_factory

    created = await asyncio.to_thread(cli.invoke, app, ["workspace", "create", "Revocation"])
    workspace = UUID_PATTERN.search(created.output)
    assert workspace is not None
    issued = await asyncio.to_thread(
        cli.invoke, app, ["token", "create", "--workspace", workspace.group(0), "--name", "x"]
    )
    token = issued.output.strip()
    api.app.state.inbox.principals.clear()  # type: ignore[attr-defined]
    assert (await api.get("/v1/channels", headers={"Authorization": f"Bearer {token}"})).status_code == 200
    async with session_factory(engine)() as session:
        [stored] = await list_tokens(session, uuid.UUID(workspace.group(0)))
    assert stored.token_hash != token  # only the hash is stored
    revoked = await asyncio.to_thread(cli.invoke, app, ["token", "revoke", str(stored.id)])
    assert revoked.exit_code == 0, revoked.output
    assert (await asyncio.to_thread(cli.invoke, app, ["token", "revoke", str(stored.id)])).exit_code != 0
    api.app.state.inbox.principals.clear()  # type: ignore[attr-defined]  # as the cache's 10 s would
    response = await api.get("/v1/channels", headers={"Authorization": f"Bearer {token}"})
    assert response.status_code == 401


def test_secret_key_prints_a_usable_key() -> None:
    result = CliRunner().invoke(app, ["secret-key"])
    assert result.exit_code == 0
    Fernet(result.output.strip().encode())


def test_webhook_send_needs_exactly_one_body() -> None:
    neither = CliRunner().invoke(
        app, ["webhook", "send", "http://127.0.0.1:9/webhooks/x", "--secret", "whsec_QUJD"]
    )
    assert neither.exit_code != 0
    assert "exactly one of --file and --text" in neither.output
