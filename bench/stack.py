"""A throwaway Piazza installation for the benchmark: embedded NATS, a scratch database, real processes."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass, field
from pathlib import Path

import asyncpg
import httpx
from sqlalchemy.engine import make_url

from piazza.registry import migrate_all
from services.inbox.service import access
from shared.bus.server import EmbeddedNats
from shared.config import normalize_database_url
from shared.crypto import generate_key
from shared.db import create_engine, session_factory
from shared.events import utcnow

ROOT = Path(__file__).resolve().parent.parent


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@dataclass
class Stack:
    """Everything the benchmark starts, and how to reach it."""

    workdir: Path
    database_url: str = ""
    backend: str = "sqlite"
    nats: EmbeddedNats | None = None
    port: int = 0
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)
    token: str = ""
    channel_id: str = ""
    secret: str = ""
    extra_env: dict[str, str] = field(default_factory=dict)
    _env: dict[str, str] = field(default_factory=dict)
    _scratch_db: str | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    async def start(self, web_workers: int = 1) -> None:
        configured = os.environ.get("DATABASE_URL", "")
        if configured.startswith("postgres"):
            self.backend = "postgresql"
            self.database_url = await self._scratch_postgres(normalize_database_url(configured))
        else:
            self.database_url = f"sqlite+aiosqlite:///{self.workdir / 'piazza.db'}"
        await migrate_all(self.database_url)
        engine = create_engine(self.database_url)
        async with session_factory(engine)() as session, session.begin():
            workspace = await access.create_workspace(session, "bench", utcnow())
            _, self.token = await access.create_token(
                session, workspace, "bench", access.Role.ADMIN, utcnow()
            )
        await engine.dispose()
        self.nats = EmbeddedNats(self.workdir / "nats")
        nats_url = self.nats.start()
        self.port = _free_port()
        env = {
            **{k: v for k, v in os.environ.items() if k not in {"DATABASE_URL", "NATS_URL"}},
            "PIAZZA_ENV": "test",
            "DATABASE_URL": self.database_url,
            "NATS_URL": nats_url,
            "PIAZZA_SECRET_KEYS": generate_key(),
            "PIAZZA_DATA_DIR": str(self.workdir),
            "PIAZZA_LOG_LEVEL": "WARNING",
            **self.extra_env,
        }
        self._env = env
        logs = (self.workdir / "web.log").open("ab"), (self.workdir / "worker.log").open("ab")
        web = ["serve", "ingress", "inbox-api", "--port", str(self.port)]
        self.processes = [
            subprocess.Popen(
                [sys.executable, "-m", "piazza", *web], env=env, cwd=ROOT, stdout=logs[0], stderr=logs[0]
            ),
            subprocess.Popen(
                [sys.executable, "-m", "piazza", "worker", "inbox", "--port", "0"],
                env=env,
                cwd=ROOT,
                stdout=logs[1],
                stderr=logs[1],
            ),
        ]
        await self._ready()
        async with httpx.AsyncClient(base_url=self.url, headers=self.auth) as client:
            created = (await client.post("/v1/channels", json={"type": "webhook", "name": "bench"})).json()
        self.channel_id, self.secret = created["id"], created["signing_secret"]

    def start_worker(self, name: str, **env: str) -> None:
        """Start another ``piazza worker`` process on the same bus and store."""
        log = (self.workdir / f"{name}-worker.log").open("ab")
        self.processes.append(
            subprocess.Popen(
                [sys.executable, "-m", "piazza", "worker", name, "--port", "0"],
                env={**self._env, **env},
                cwd=ROOT,
                stdout=log,
                stderr=log,
            )
        )

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    async def _ready(self, timeout: float = 60) -> None:
        deadline = time.monotonic() + timeout
        async with httpx.AsyncClient(timeout=1) as client:
            while time.monotonic() < deadline:
                try:
                    if (await client.get(f"{self.url}/readyz")).status_code == 200:
                        return
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.1)
        raise RuntimeError(f"Piazza did not become ready; see {self.workdir}/web.log")

    async def _scratch_postgres(self, base: str) -> str:
        name = f"piazza_bench_{uuid.uuid4().hex[:8]}"
        dsn = make_url(base).set(drivername="postgresql").render_as_string(hide_password=False)
        connection = await asyncpg.connect(dsn)
        try:
            await connection.execute(f'CREATE DATABASE "{name}"')
        finally:
            await connection.close()
        self._scratch_db = name
        return make_url(base).set(database=name).render_as_string(hide_password=False)

    async def stop(self) -> None:
        for process in self.processes:
            process.terminate()
        for process in self.processes:
            try:
                process.wait(20)
            except subprocess.TimeoutExpired:
                process.kill()
        if self.nats is not None:
            self.nats.stop()
        if self._scratch_db is not None:
            base = normalize_database_url(os.environ["DATABASE_URL"])
            dsn = make_url(base).set(drivername="postgresql").render_as_string(hide_password=False)
            connection = await asyncpg.connect(dsn)
            try:
                await connection.execute(f'DROP DATABASE IF EXISTS "{self._scratch_db}" WITH (FORCE)')
            finally:
                await connection.close()
