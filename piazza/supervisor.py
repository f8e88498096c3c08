"""``piazza run``: the whole system on one machine, from nothing installed but this project.

Starts an embedded nats-server (unless ``NATS_URL`` names one), migrates the store (SQLite in the data
folder unless ``DATABASE_URL`` names one), then runs every service as a child process: the web process
(webhook ingress + inbox API on ``PIAZZA_PORT``) and each bus worker. A child that dies is restarted
with backoff. Ctrl-C (or SIGTERM) stops the children first, letting them finish and ack their batch,
then NATS; children are told by the kernel to exit if the supervisor itself is killed.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import sys
import time
from dataclasses import dataclass, field

import httpx
from prometheus_client import multiprocess
from rich.console import Console

from piazza.registry import WEB_COMPONENTS, WORKERS, check_service_settings, migrate_all
from shared.bus.server import EmbeddedNats
from shared.config import PiazzaSettings
from shared.crypto import load_secret_box
from shared.logging import get_logger
from shared.process import die_with_parent

log = get_logger(__name__)
console = Console(stderr=True, soft_wrap=True)

_BACKOFF_MAX = 30.0
_STOP_TIMEOUT = 30.0


@dataclass
class Child:
    """A supervised process and how to start it again."""

    name: str
    command: list[str]
    process: asyncio.subprocess.Process | None = None
    restarts: int = 0
    started_at: float = 0.0
    exited: asyncio.Event = field(default_factory=asyncio.Event)


class Supervisor:
    """Runs the installation until asked to stop."""

    def __init__(self, settings: PiazzaSettings, *, host: str, port: int) -> None:
        self.settings = settings
        self.host = host
        self.port = port
        self.data_dir = settings.data_dir.resolve()
        self.children: list[Child] = []
        self.nats: EmbeddedNats | None = None
        self.stopping = asyncio.Event()
        self.ready = asyncio.Event()  # set once the web process answers /readyz

    async def run(self) -> int:
        """Start everything, wait for a stop signal, stop everything; returns the exit code."""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, self.stopping.set)
        ensure_port_free(self.host, self.port)
        check_service_settings()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        load_secret_box(self.settings)  # creates the development key before any child needs it
        try:
            env = await self._prepare()
            self.children = [
                Child(
                    "web",
                    self._piazza("serve", *WEB_COMPONENTS, "--host", self.host, "--port", str(self.port)),
                ),
                *(Child(f"{name}-worker", self._piazza("worker", name, "--port", "0")) for name in WORKERS),
            ]
            watchers = [asyncio.create_task(self._keep_running(child, env)) for child in self.children]
            await self._announce()
            await self.stopping.wait()
            console.print("[bold]Stopping Piazza…[/]")
            await self._stop_children()
            for watcher in watchers:
                watcher.cancel()
            await asyncio.gather(*watchers, return_exceptions=True)
        finally:
            if self.nats is not None:
                self.nats.stop()
        console.print("Piazza stopped.")
        return 0

    async def _prepare(self) -> dict[str, str]:
        env = dict(os.environ)
        env["PIAZZA_DATA_DIR"] = str(self.data_dir)
        env["PIAZZA_PUBLIC_URL"] = os.environ.get("PIAZZA_PUBLIC_URL", f"http://{self.host}:{self.port}")
        # The analytics API asks the inbox API (in the same web process) who a token belongs to.
        local = "127.0.0.1" if self.host in ("0.0.0.0", "::") else self.host
        env.setdefault("PIAZZA_ANALYTICS_INBOX_URL", f"http://{local}:{self.port}")
        if self.settings.nats_url:
            env["NATS_URL"] = self.settings.nats_url
        else:
            self.nats = EmbeddedNats(self.data_dir / "nats")
            env["NATS_URL"] = await asyncio.to_thread(self.nats.start)
        database_url = self.settings.resolved_database_url()
        env["DATABASE_URL"] = database_url
        await migrate_all(database_url)
        metrics_dir = self.data_dir / "run" / "metrics"
        shutil.rmtree(metrics_dir, ignore_errors=True)
        metrics_dir.mkdir(parents=True)
        env["PROMETHEUS_MULTIPROC_DIR"] = str(metrics_dir)
        return env

    def _piazza(self, *args: str) -> list[str]:
        return [sys.executable, "-m", "piazza", *args]

    async def _keep_running(self, child: Child, env: dict[str, str]) -> None:
        backoff = 1.0
        while not self.stopping.is_set():
            child.exited.clear()
            child.started_at = time.monotonic()
            child.process = await asyncio.create_subprocess_exec(
                *child.command, env=env, start_new_session=True, preexec_fn=die_with_parent
            )
            if self.stopping.is_set():  # asked to stop while this child was (re)starting
                child.process.send_signal(signal.SIGTERM)
            code = await child.process.wait()
            child.exited.set()
            multiprocess.mark_process_dead(child.process.pid, env["PROMETHEUS_MULTIPROC_DIR"])  # type: ignore[no-untyped-call]
            if self.stopping.is_set():
                return
            if time.monotonic() - child.started_at > 60:
                backoff = 1.0
            child.restarts += 1
            log.warning("supervisor.child.exited", child=child.name, code=code, restart_in=backoff)
            try:
                await asyncio.wait_for(self.stopping.wait(), timeout=backoff)
            except TimeoutError:
                backoff = min(backoff * 2, _BACKOFF_MAX)

    async def _stop_children(self) -> None:
        running = [c for c in self.children if c.process is not None and c.process.returncode is None]
        for child in running:
            assert child.process is not None
            child.process.send_signal(signal.SIGTERM)
        deadline = time.monotonic() + _STOP_TIMEOUT
        for child in running:
            assert child.process is not None
            try:
                await asyncio.wait_for(child.process.wait(), timeout=max(0.1, deadline - time.monotonic()))
            except TimeoutError:
                log.warning("supervisor.child.killed", child=child.name)
                child.process.kill()
                await child.process.wait()

    async def _announce(self) -> None:
        base = f"http://{self.host}:{self.port}"
        async with httpx.AsyncClient(timeout=1.0) as client:
            while not self.stopping.is_set():
                try:
                    if (await client.get(f"{base}/readyz")).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
                await asyncio.sleep(0.2)
        if self.stopping.is_set():
            return
        store = (
            "PostgreSQL"
            if self.settings.database_url.startswith("postgres")
            else f"SQLite in {self.data_dir}"
        )
        bus = self.settings.nats_url or f"embedded nats-server ({self.nats.url if self.nats else '?'})"
        console.print(f"[bold green]Piazza is running[/] on {base}  (API docs: {base}/docs)")
        console.print(f"  store: {store}\n  bus:   {bus}")
        if self.settings.is_development and os.environ.get("PIAZZA_BOOTSTRAP_TOKEN"):
            console.print("  admin token: $PIAZZA_BOOTSTRAP_TOKEN (development only)")
        console.print("Press Ctrl-C to stop.")
        self.ready.set()


def ensure_port_free(host: str, port: int) -> None:
    """Exit with a clear message when another process holds the port."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError as exc:
            raise SystemExit(
                f"Port {port} on {host} is in use ({exc.strerror}); set PIAZZA_PORT to another."
            ) from exc
