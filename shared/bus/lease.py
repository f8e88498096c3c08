"""Leases: one replica's claim to a piece of work (polling an account), kept in a KV bucket with a TTL.

A lease not renewed within the bucket's TTL lapses and another replica may take the work over.
"""

from __future__ import annotations

import contextlib
from uuid import UUID

from nats.errors import Error as NatsError
from nats.js.errors import Error as JetStreamError
from nats.js.errors import KeyDeletedError, KeyNotFoundError, KeyWrongLastSequenceError
from nats.js.kv import KeyValue


class Lease:
    """One replica's claim to poll one channel; it lapses unless renewed within the bucket's TTL."""

    def __init__(self, kv: KeyValue, channel_id: UUID, owner: str) -> None:
        self._kv = kv
        self._key = str(channel_id)
        self._owner = owner.encode()
        self._revision: int | None = None

    @property
    def held(self) -> bool:
        """True after a successful acquire or renew."""
        return self._revision is not None

    async def acquire(self) -> bool:
        """Take the lease if nobody holds it (or it lapsed); False if another replica holds it."""
        try:
            self._revision = await self._kv.create(self._key, self._owner)
        except KeyWrongLastSequenceError:
            self._revision = None
            return False
        except (NatsError, JetStreamError, TimeoutError):
            self._revision = None
            return False
        return True

    async def renew(self) -> bool:
        """Extend the lease; False if it was lost (it lapsed and someone else took it)."""
        if self._revision is None:
            return False
        try:
            self._revision = await self._kv.update(self._key, self._owner, last=self._revision)
        except (KeyWrongLastSequenceError, KeyNotFoundError, KeyDeletedError):
            self._revision = None
            return False
        except (NatsError, JetStreamError, TimeoutError):
            return True  # NATS is briefly away: keep polling; the TTL decides if it lasts
        return True

    async def release(self) -> None:
        """Give the lease up so another replica can take over at once."""
        if self._revision is None:
            return
        with contextlib.suppress(NatsError, JetStreamError, TimeoutError):  # else it lapses on its own
            await self._kv.delete(self._key, last=self._revision)
        self._revision = None
