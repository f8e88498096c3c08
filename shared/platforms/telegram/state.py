"""What Telegram connectors remember between updates, kept in JetStream KV buckets.

* aliases: the canonical id of a migrated chat, and the conversation of a discussion thread
  (:mod:`shared.platforms.telegram.normalize`). The polling connector and the webhook ingress of a
  channel share them, whichever process sees the update.
* offsets: the next ``getUpdates`` offset of each polled bot, written only once the updates before it
  are stored by JetStream.
* leases (:mod:`shared.bus.lease`): which connector replica polls which bot; a lease not renewed
  within the bucket's TTL lapses and another replica takes the bot over.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from uuid import UUID

from nats.errors import Error as NatsError
from nats.js.errors import Error as JetStreamError
from nats.js.errors import KeyDeletedError, KeyNotFoundError
from nats.js.kv import KeyValue

from shared.bus.client import BusUnavailable


def _key(channel_id: UUID, name: str) -> str:
    return f"{channel_id}.{name}"


class AliasStore:
    """Aliases per channel, cached in memory (they never change once learned)."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv
        self._cache: dict[str, str] = {}

    async def resolve(self, channel_id: UUID, keys: Iterable[str]) -> dict[str, str]:
        """The aliases among ``keys`` that are known."""
        found: dict[str, str] = {}
        for key in keys:
            full = _key(channel_id, key)
            value = self._cache.get(full)
            if value is None:
                try:
                    entry = await self._kv.get(full)
                except (KeyNotFoundError, KeyDeletedError):
                    continue
                except (NatsError, JetStreamError, TimeoutError) as exc:
                    raise BusUnavailable(f"alias lookup failed: {exc}") from exc
                if not entry.value:
                    continue
                value = entry.value.decode()
                self._cache[full] = value
            found[key] = value
        return found

    async def learn(self, channel_id: UUID, aliases: Mapping[str, str]) -> None:
        """Remember new aliases."""
        for key, value in aliases.items():
            full = _key(channel_id, key)
            if self._cache.get(full) == value:
                continue
            try:
                await self._kv.put(full, value.encode())
            except (NatsError, JetStreamError, TimeoutError) as exc:
                raise BusUnavailable(f"alias write failed: {exc}") from exc
            self._cache[full] = value


class OffsetStore:
    """The next ``getUpdates`` offset per polled channel."""

    def __init__(self, kv: KeyValue) -> None:
        self._kv = kv

    async def get(self, channel_id: UUID) -> int | None:
        """The stored offset, if any."""
        try:
            entry = await self._kv.get(str(channel_id))
        except (KeyNotFoundError, KeyDeletedError):
            return None
        except (NatsError, JetStreamError, TimeoutError) as exc:
            raise BusUnavailable(f"offset read failed: {exc}") from exc
        return int(entry.value.decode()) if entry.value else None

    async def put(self, channel_id: UUID, offset: int) -> None:
        """Store the offset (after the updates below it are on the bus)."""
        try:
            await self._kv.put(str(channel_id), str(offset).encode())
        except (NatsError, JetStreamError, TimeoutError) as exc:
            raise BusUnavailable(f"offset write failed: {exc}") from exc
