"""Child-process hygiene for the supervisor and the embedded NATS server."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Callable

from shared.logging import get_logger

log = get_logger(__name__)


def die_with_parent() -> None:
    """``preexec_fn``: ask Linux to SIGTERM the child when its parent dies, so nothing is orphaned.

    A no-op elsewhere. Runs in the forked child before exec.
    """
    if sys.platform != "linux":
        return
    import ctypes

    pr_set_pdeathsig = 1
    ctypes.CDLL("libc.so.6", use_errno=True).prctl(pr_set_pdeathsig, signal.SIGTERM)
    if os.getppid() == 1:  # the parent already died between fork and prctl
        os._exit(1)


def exit_when_crashed(event: str) -> Callable[[asyncio.Task[None]], None]:
    """A done-callback for a worker's main task: if it failed, log ``event`` with the error and
    SIGTERM this process, so the server shuts down cleanly and the supervisor (or Kubernetes) starts
    a fresh one instead of leaving a process that answers health checks but does nothing."""

    def callback(task: asyncio.Task[None]) -> None:
        if task.cancelled() or task.exception() is None:
            return
        log.error(event, exc_info=task.exception())
        os.kill(os.getpid(), signal.SIGTERM)

    return callback
