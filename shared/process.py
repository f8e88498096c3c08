"""Child-process hygiene for the supervisor and the embedded NATS server."""

from __future__ import annotations

import os
import signal
import sys


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
