"""One bot's update queue and long polling (platforms.md §1.2, telegram-bot-api ``do_get_updates``)."""

from __future__ import annotations

import asyncio
import json
import random
from collections.abc import Callable
from typing import Any

from tests.fakes.telegram.errors import conflict

Json = dict[str, Any]

# ``allowed_updates=[]`` (and never having set it) means every type but these.
NOT_BY_DEFAULT = frozenset({"chat_member", "message_reaction", "message_reaction_count"})
MAX_RESULT_BYTES = 1 << 22  # the server stops adding updates to one answer past ~4 MiB
TERMINATED = "terminated by other getUpdates request; make sure that only one bot instance is running"


class _Poll:
    """The long poll currently waiting, so a newer one can end it with a conflict."""

    def __init__(self) -> None:
        self.wake = asyncio.Event()
        self.conflict: str | None = None


class UpdateQueue:
    """Updates kept until confirmed by an offset (polling) or delivered (webhook), with sequential ids.

    ``allowed`` is the sticky ``allowed_updates`` setting. As on the real server, it filters updates when
    they are *created*: an update of a type the bot did not ask for is never queued, and changing the
    setting does not touch updates already queued.
    """

    def __init__(self, first_update_id: int | None = None) -> None:
        self._items: list[Json] = []
        self._next_id = first_update_id or random.randint(100_000_000, 900_000_000)
        self.allowed: frozenset[str] | None = None  # None: every type but NOT_BY_DEFAULT
        self._poll: _Poll | None = None
        self._closed = False
        self.on_push: Callable[[], None] | None = None

    # -- producing ------------------------------------------------------------------------------

    def allows(self, kind: str) -> bool:
        return kind not in NOT_BY_DEFAULT if self.allowed is None else kind in self.allowed

    def push(self, kind: str, payload: Json) -> int | None:
        """Queue ``{update_id, kind: payload}``; None when ``allowed_updates`` filters the type out."""
        if not self.allows(kind):
            return None
        update_id = self._next_id
        self._next_id += 1
        self._items.append({"update_id": update_id, kind: payload})
        if self._poll is not None:
            self._poll.wake.set()
        if self.on_push is not None:
            self.on_push()
        return update_id

    def set_allowed(self, types: Any) -> None:
        """Apply an ``allowed_updates`` parameter: absent keeps the setting, ``[]`` restores the default."""
        if not isinstance(types, list):
            return
        names = frozenset(str(name) for name in types)
        self.allowed = names or None

    # -- consuming ------------------------------------------------------------------------------

    @property
    def pending(self) -> list[Json]:
        return list(self._items)

    def confirm(self, offset: int) -> None:
        """Forget what an offset confirms: ids below a positive offset, all but the last -offset."""
        if offset > 0:
            self._items = [update for update in self._items if update["update_id"] >= offset]
        elif offset < 0:
            self._items = self._items[offset:]

    def remove(self, update_id: int) -> None:
        self._items = [update for update in self._items if update["update_id"] != update_id]

    def clear(self) -> None:
        self._items.clear()

    def take(self, limit: int) -> list[Json]:
        batch: list[Json] = []
        size = 0
        for update in self._items[:limit]:
            size += len(json.dumps(update, ensure_ascii=False).encode())
            if batch and size > MAX_RESULT_BYTES:
                break
            batch.append(update)
        return batch

    def terminate_poll(self, description: str) -> None:
        """Answer the waiting long poll, if any, with a 409 Conflict."""
        if self._poll is not None:
            self._poll.conflict = description
            self._poll.wake.set()
            self._poll = None

    async def poll(self, *, offset: int, limit: int, timeout: float, allowed: Any) -> list[Json]:
        """Serve one getUpdates call (limit and timeout already clamped)."""
        self.terminate_poll(TERMINATED)
        self.set_allowed(allowed)
        self.confirm(offset)
        batch = self.take(limit)
        if batch or timeout <= 0 or self._closed:
            return batch
        poll = self._poll = _Poll()
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        try:
            while True:
                try:
                    async with asyncio.timeout_at(deadline):
                        await poll.wake.wait()
                except TimeoutError:
                    return []
                if poll.conflict is not None:
                    raise conflict(poll.conflict)
                poll.wake.clear()
                batch = self.take(limit)
                if batch or self._closed:
                    return batch
        finally:
            if self._poll is poll:
                self._poll = None

    def reopen(self) -> None:
        self._closed = False

    def close(self) -> None:
        """Let a waiting long poll return at once (the server is stopping)."""
        self._closed = True
        if self._poll is not None:
            self._poll.wake.set()
