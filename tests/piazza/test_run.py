"""``piazza run`` as a new user runs it (``make run``): embedded NATS, SQLite, every service, Ctrl-C."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import orjson
import pytest

from tests.support import ROOT, child_env, free_port, signed_headers, unique, wait_for

pytestmark = pytest.mark.e2e

TOKEN = "dev-token-for-tests"


class Run:
    """A ``piazza run`` supervisor process (or another command that runs one, like ``demo``)."""

    def __init__(self, data_dir: Path, port: int, *, command: tuple[str, ...] = ("run",), **env: str) -> None:
        self.command = command
        self.data_dir = data_dir
        self.port = port
        self.url = f"http://127.0.0.1:{port}"
        self.log = data_dir.parent / f"run-{port}.log"
        self.env = child_env(
            PIAZZA_PORT=str(port),
            PIAZZA_DATA_DIR=str(data_dir),
            PIAZZA_BOOTSTRAP_TOKEN=TOKEN,
            PIAZZA_LOG_FORMAT="console",
        )
        for name in ("PIAZZA_ENV", "PIAZZA_SECRET_KEYS", "PIAZZA_BUS_PREFIX"):
            self.env.pop(name, None)
        self.env.update(env)
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> Run:
        with self.log.open("ab") as handle:
            self.process = subprocess.Popen(
                [sys.executable, "-m", "piazza", *self.command],
                cwd=ROOT,
                env=self.env,
                stdout=handle,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return self

    async def ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=1) as client:
            while time.monotonic() < deadline:
                assert self.process is not None
                if self.process.poll() is not None:
                    raise AssertionError(f"piazza run exited early:\n{self.output()}")
                try:
                    if (
                        await client.get(f"{self.url}/readyz")
                    ).status_code == 200 and "Piazza is running" in self.output():
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise AssertionError(f"not ready:\n{self.output()}")

    def interrupt(self, timeout: float = 45) -> int:
        """Ctrl-C, as a terminal sends it."""
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        return self.process.wait(timeout)

    def output(self) -> str:
        return self.log.read_text(errors="replace")

    def descendants(self) -> set[int]:
        assert self.process is not None
        return _descendants(self.process.pid)

    def kill(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
            self.process.wait()


def _descendants(pid: int) -> set[int]:
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            stat = (entry / "stat").read_text()
        except OSError:
            continue
        parent = int(stat.rsplit(")", 1)[1].split()[1])
        children.setdefault(parent, []).append(int(entry.name))
    found: set[int] = set()
    frontier = [pid]
    while frontier:
        current = frontier.pop()
        for child in children.get(current, []):
            if child not in found:
                found.add(child)
                frontier.append(child)
    return found


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = Path(f"/proc/{pid}/stat")
    return stat.exists() and stat.read_text().rsplit(")", 1)[1].split()[0] != "Z"


@pytest.fixture
def runs(tmp_path: Path) -> Iterator[list[Run]]:
    started: list[Run] = []
    yield started
    for run in started:
        run.kill()


async def _send_and_read(run: Run, text: str) -> dict[str, object]:
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(base_url=run.url, timeout=10) as client:
        created = await client.post("/v1/channels", json={"type": "webhook", "name": "forms"}, headers=auth)
        assert created.status_code == 201, created.text
        channel = created.json()
        thread = unique("thread")
        event = {
            "type": "message.created",
            "id": unique("ext"),
            "thread": {"id": thread, "title": "Launch day"},
            "author": {"id": "u-7", "handle": "@marta", "name": "Marta Rossi"},
            "text": text,
            "occurred_at": "2026-11-24T10:00:00Z",
        }
        body = orjson.dumps(event)
        sent = await client.post(
            f"/webhooks/{channel['id']}",
            content=body,
            headers=signed_headers(channel["signing_secret"], body),
        )
        assert sent.status_code == 202, sent.text

        async def conversation() -> dict[str, object] | None:
            page = (
                await client.get("/v1/conversations", params={"channel_id": channel["id"]}, headers=auth)
            ).json()
            return page["data"][0] if page["data"] else None

        found = await wait_for(conversation, timeout=20)
        messages = (await client.get(f"/v1/conversations/{found['id']}/messages", headers=auth)).json()[
            "data"
        ]
        assert [m["text"] for m in messages] == [text]
        return found


async def test_run_serves_everything_and_ctrl_c_leaves_nothing_behind(
    tmp_path: Path, runs: list[Run]
) -> None:
    run = Run(tmp_path / "data", free_port()).start()
    runs.append(run)
    await run.ready()
    conversation = await _send_and_read(run, "Ciao! 👋")
    family = run.descendants()
    assert len(family) >= 3  # nats-server, the web process, the inbox worker
    assert run.interrupt() == 0
    assert "Piazza stopped." in run.output()
    await wait_for(lambda: asyncio.sleep(0, not any(_alive(pid) for pid in family)), timeout=10)

    # A second run resumes with the data kept.
    again = Run(tmp_path / "data", free_port()).start()
    runs.append(again)
    await again.ready()
    async with httpx.AsyncClient(base_url=again.url, timeout=10) as client:
        response = await client.get(
            f"/v1/conversations/{conversation['id']}", headers={"Authorization": f"Bearer {TOKEN}"}
        )
    assert response.status_code == 200
    assert response.json()["title"] == "Launch day"
    assert again.interrupt() == 0


async def test_two_runs_side_by_side(tmp_path: Path, runs: list[Run]) -> None:
    first = Run(tmp_path / "one", free_port()).start()
    second = Run(tmp_path / "two", free_port()).start()
    runs += [first, second]
    await asyncio.gather(first.ready(), second.ready())
    await asyncio.gather(_send_and_read(first, "uno"), _send_and_read(second, "due"))
    assert "embedded nats-server" in first.output()
    assert ":4222" not in first.output()
    assert ":4222" not in second.output()
    assert first.interrupt() == 0
    assert second.interrupt() == 0


async def test_a_killed_supervisor_takes_its_children_with_it(tmp_path: Path, runs: list[Run]) -> None:
    run = Run(tmp_path / "data", free_port()).start()
    runs.append(run)
    await run.ready()
    family = run.descendants()
    run.kill()
    await wait_for(lambda: asyncio.sleep(0, not any(_alive(pid) for pid in family)), timeout=15)


def test_a_port_in_use_is_a_clear_error(tmp_path: Path) -> None:
    import socket

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        run = Run(tmp_path / "data", port).start()
        assert run.process is not None
        assert run.process.wait(30) != 0
    assert f"Port {port}" in run.output()
    assert "PIAZZA_PORT" in run.output()


def test_the_bootstrap_token_is_refused_outside_development(tmp_path: Path) -> None:
    run = Run(tmp_path / "data", free_port(), PIAZZA_ENV="production").start()
    assert run.process is not None
    assert run.process.wait(30) == 2
    assert "PIAZZA_BOOTSTRAP_TOKEN" in run.output()
    assert "refused" in run.output()
