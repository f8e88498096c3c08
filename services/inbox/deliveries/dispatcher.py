"""Leasing due deliveries and sending them, within a bound per worker and per subscription."""

from __future__ import annotations

import asyncio
import socket
import time
import uuid
from collections import Counter as Tally
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from services.inbox.deliveries.metrics import DELIVERIES, IN_FLIGHT
from services.inbox.deliveries.sender import Sender, describe
from services.inbox.service import webhooks as service
from services.inbox.service.webhooks import AttemptResult, Claimed, RetryPolicy
from shared.crypto import SecretBox
from shared.db import is_transient_db_error
from shared.events import utcnow
from shared.logging import get_logger

log = get_logger(__name__)


class Dispatcher:
    """Leases due deliveries and sends them, within a bound per worker and per subscription."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        box: SecretBox,
        sender: Sender,
        policy: RetryPolicy,
        *,
        concurrency: int,
        per_subscription: int,
        poll_seconds: float,
        lease_seconds: float,
    ) -> None:
        self._sessions = sessions
        self._box = box
        self._sender = sender
        self._policy = policy
        self._concurrency = concurrency
        self._per_subscription = per_subscription
        self._poll = poll_seconds
        self._lease = timedelta(seconds=lease_seconds)
        self._worker = f"{socket.gethostname()[:40]}-{uuid.uuid4().hex[:12]}"
        self._busy: Tally[uuid.UUID] = Tally()
        self._tasks: set[asyncio.Task[None]] = set()
        self._wakeup = asyncio.Event()

    def wake(self) -> None:
        """Look for due deliveries now rather than at the next poll."""
        self._wakeup.set()

    async def run(self, stop: asyncio.Event, *, drain_seconds: float = 30.0) -> None:
        """Send until ``stop``; then let the requests under way finish (for ``drain_seconds`` at most)."""
        log.info("inbox.webhooks.dispatcher_started", worker=self._worker)
        stopping = asyncio.ensure_future(stop.wait())
        try:
            while not stop.is_set():
                self._wakeup.clear()
                free = self._concurrency - len(self._tasks)
                claimed = await self._claim(free) if free > 0 else []
                for item in claimed:
                    self._start(item)
                if claimed and len(claimed) == free:
                    continue
                waking = asyncio.ensure_future(self._wakeup.wait())
                await asyncio.wait(
                    {waking, stopping}, timeout=self._poll, return_when=asyncio.FIRST_COMPLETED
                )
                waking.cancel()
        finally:
            stopping.cancel()
            if self._tasks:
                _, late = await asyncio.wait(set(self._tasks), timeout=drain_seconds)
                for task in late:
                    task.cancel()
                await asyncio.gather(*late, return_exceptions=True)
            log.info("inbox.webhooks.dispatcher_stopped", worker=self._worker)

    async def _claim(self, free: int) -> list[Claimed]:
        full = {s for s, n in self._busy.items() if n >= self._per_subscription}
        try:
            async with self._sessions() as session, session.begin():
                return await service.claim_due(
                    session,
                    self._box,
                    worker=self._worker,
                    now=utcnow(),
                    lease=self._lease,
                    limit=free,
                    room=lambda s: self._per_subscription - self._busy[s],
                    full=full,
                )
        except Exception as exc:  # the database away: look again at the next poll
            log.warning("inbox.webhooks.claim_failed", error=describe(exc))
            return []

    def _start(self, claimed: Claimed) -> None:
        self._busy[claimed.subscription_id] += 1
        IN_FLIGHT.inc()
        task = asyncio.create_task(self._deliver(claimed), name=f"webhook-{claimed.delivery_id}")
        self._tasks.add(task)
        task.add_done_callback(lambda done: self._finished(done, claimed))

    def _finished(self, task: asyncio.Task[None], claimed: Claimed) -> None:
        self._tasks.discard(task)
        self._busy[claimed.subscription_id] -= 1
        if self._busy[claimed.subscription_id] <= 0:
            del self._busy[claimed.subscription_id]
        IN_FLIGHT.dec()
        if not task.cancelled() and task.exception() is not None:
            log.error(
                "inbox.webhooks.delivery_crashed",
                delivery_id=str(claimed.delivery_id),
                exc_info=task.exception(),
            )
        self._wakeup.set()

    async def _deliver(self, claimed: Claimed) -> None:
        result = await self._sender.send(claimed)
        status = await self._record(claimed, result)
        if status in ("succeeded", "failed"):
            DELIVERIES.labels(status).inc()
        log.info(
            "inbox.webhooks.attempted",
            delivery_id=str(claimed.delivery_id),
            subscription_id=str(claimed.subscription_id),
            event_type=claimed.event_type,
            status_code=result.status_code,
            error=result.error,
            response_ms=result.response_ms,
            outcome=status,
        )

    async def _record(self, claimed: Claimed, result: AttemptResult) -> str | None:
        """Log the attempt, retrying while the database is away (up to the lease: after it, another
        worker may attempt the delivery again, which the receiver dedupes by webhook-id)."""
        pause = 0.2
        deadline = time.monotonic() + self._lease.total_seconds()
        while True:
            try:
                async with self._sessions() as session, session.begin():
                    return await service.record_attempt(
                        session, claimed, result, worker=self._worker, policy=self._policy, now=utcnow()
                    )
            except Exception as exc:
                if not is_transient_db_error(exc) or time.monotonic() + pause > deadline:
                    log.error(
                        "inbox.webhooks.record_failed",
                        delivery_id=str(claimed.delivery_id),
                        error=describe(exc),
                    )
                    return None
                await asyncio.sleep(pause)
                pause = min(pause * 2, 5.0)
