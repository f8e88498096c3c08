"""Process hygiene: children of the supervisor and the embedded NATS server, and the collector's
settings of a long-running service."""

from __future__ import annotations

import asyncio
import gc
import os
import signal
import sys
from collections.abc import Callable

from shared.logging import get_logger

log = get_logger(__name__)


GC_THRESHOLDS = (20_000, 10, 10)
"""The cyclic garbage collector's thresholds in a service (Python's defaults: 700, 10, 10)."""


def tune_gc() -> None:
    """Set a service process up for the collector, once its modules are imported: what is alive now
    (modules, routes, compiled statements) is moved out of the collector's sight (``gc.freeze``),
    and collections of young objects run after 20,000 allocations instead of 700; the older
    generations keep Python's ratios (every tenth collection), so long-lived cycles go at the same
    pace relative to the young ones.

    A list page allocates thousands of short-lived objects (rows, times, dicts) and hardly any
    cycles; with the defaults the collector showed up all through profiles of the web process. With
    these settings the web process spent 6-8 % less CPU per request on a page of fifty conversations
    (``bench/listing.py``'s (a) on the development store: 1.30 against 1.19-1.22 ms, two runs
    each). Cycles are still collected, a little later."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*GC_THRESHOLDS)


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
