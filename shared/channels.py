"""The channel directory: how connectors learn about channel accounts without reading inbox tables.

The inbox owns channel accounts in its database and mirrors each one, secrets sealed, into the
``channels`` KV bucket. Connectors (the webhook ingress today; Telegram and Reddit pollers, the reply
service later) read that bucket through :class:`ChannelDirectory`. Connectors report problems they
see (a bad signature, a revoked token) into the ``channel-health`` bucket, which the API shows on
``GET /v1/channels/{id}``.
"""

from __future__ import annotations

import time
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from nats.errors import Error as NatsError
from nats.js.errors import Error as JetStreamError
from nats.js.errors import KeyDeletedError, KeyNotFoundError, NoKeysError
from nats.js.kv import KeyValue
from pydantic import AwareDatetime, ValidationError

from shared.bus.client import BusUnavailable
from shared.events import Frozen, utcnow
from shared.logging import get_logger

log = get_logger(__name__)

ChannelType = Literal["webhook", "telegram", "reddit"]


SecretPurpose = Literal[
    "signing", "bot_token", "webhook_secret", "client_secret", "password", "refresh_token"
]


class SealedSecret(Frozen):
    """A secret sealed with the installation's keys; ``expires_at`` is set on a rotated-out one.

    ``purpose``: ``signing`` (a webhook source's Standard Webhooks secret), ``bot_token`` (a Telegram
    bot's token), ``webhook_secret`` (what Telegram sends in ``X-Telegram-Bot-Api-Secret-Token``),
    ``client_secret``/``password``/``refresh_token`` (a Reddit account's OAuth credentials).
    """

    sealed: str
    purpose: SecretPurpose = "signing"
    expires_at: AwareDatetime | None = None


class ChannelRecord(Frozen):
    """What a connector needs to know about a channel account."""

    id: UUID
    workspace_id: UUID
    type: ChannelType
    name: str
    status: Literal["active", "disabled"] = "active"
    secrets: tuple[SealedSecret, ...] = ()
    config: dict[str, Any] = {}
    updated_at: AwareDatetime

    def live_secrets(self, now: datetime, purpose: SecretPurpose = "signing") -> list[str]:
        """Sealed secrets of ``purpose`` valid at ``now``: the current one and any in rotation grace."""
        return [
            s.sealed
            for s in self.secrets
            if s.purpose == purpose and (s.expires_at is None or s.expires_at > now)
        ]

    def secret(self, purpose: SecretPurpose) -> str | None:
        """The current sealed secret of ``purpose``."""
        return next((s.sealed for s in self.secrets if s.purpose == purpose and s.expires_at is None), None)


class ChannelProblem(Frozen):
    """The last problem a connector saw on a channel."""

    code: str
    message: str
    component: str
    at: AwareDatetime


class BackfillProgress(Frozen):
    """How far the import of a source's history got."""

    source: str
    imported: int
    target: int
    done: bool = False


class ChannelStatus(Frozen):
    """What a connector last said about a channel: whether it reaches the platform, and any problem."""

    component: str
    connected: bool | None = None
    last_update_at: AwareDatetime | None = None
    backlog: int | None = None
    problem: ChannelProblem | None = None
    warnings: tuple[ChannelProblem, ...] = ()
    """Lasting conditions that limit the channel without stopping it (a capability the account lacks)."""
    throttled_until: AwareDatetime | None = None
    """Set while the platform asks the connector to slow down."""
    backfill: tuple[BackfillProgress, ...] = ()
    at: AwareDatetime


async def _kv_call(what: str, call: Any) -> Any:
    try:
        return await call
    except (KeyNotFoundError, KeyDeletedError):
        return None
    except (NatsError, JetStreamError, TimeoutError) as exc:
        raise BusUnavailable(f"channel directory {what} failed: {exc}") from exc


class ChannelDirectory:
    """Read-through cache of the ``channels`` bucket; changes propagate within ``ttl`` seconds."""

    def __init__(self, kv: KeyValue, *, ttl: float = 5.0) -> None:
        self._kv = kv
        self._ttl = ttl
        self._cache: dict[UUID, tuple[float, ChannelRecord]] = {}

    async def get(self, channel_id: UUID) -> ChannelRecord | None:
        """The channel, or None if no such channel exists; raises BusUnavailable if NATS is down."""
        cached = self._cache.get(channel_id)
        if cached is not None and cached[0] > time.monotonic():
            return cached[1]
        entry = await _kv_call("read", self._kv.get(str(channel_id)))
        if entry is None or not entry.value:
            self._cache.pop(channel_id, None)
            return None
        try:
            record = ChannelRecord.model_validate_json(entry.value)
        except ValidationError:
            log.error("channels.record.invalid", channel_id=str(channel_id))
            return None
        self._cache[channel_id] = (time.monotonic() + self._ttl, record)
        return record

    async def all(self) -> list[ChannelRecord]:
        """Every channel in the directory (connectors scan it for the accounts they serve)."""
        try:
            keys = await self._kv.keys()
        except NoKeysError:
            return []
        except (NatsError, JetStreamError, TimeoutError) as exc:
            raise BusUnavailable(f"channel directory listing failed: {exc}") from exc
        records = []
        for key in keys:
            try:
                record = await self.get(UUID(key))
            except ValueError:
                continue
            if record is not None:
                records.append(record)
        return records

    async def put(self, record: ChannelRecord) -> None:
        """Publish a channel (the inbox calls this after committing it)."""
        await _kv_call("write", self._kv.put(str(record.id), record.model_dump_json().encode()))
        self._cache.pop(record.id, None)

    async def delete(self, channel_id: UUID) -> None:
        """Remove a channel from the directory."""
        await _kv_call("delete", self._kv.delete(str(channel_id)))
        self._cache.pop(channel_id, None)


class ChannelHealthBoard:
    """Connectors write how each channel is doing; the API reads it. Routine writes are throttled."""

    def __init__(self, kv: KeyValue, *, component: str, min_interval: float = 5.0) -> None:
        self._kv = kv
        self._component = component
        self._min_interval = min_interval
        self._last: dict[UUID, tuple[float, ChannelStatus]] = {}

    async def report(
        self, channel_id: UUID, code: str, message: str, *, connected: bool | None = None
    ) -> None:
        """Record a problem (at most one write per channel per ``min_interval``); never raises."""
        problem = ChannelProblem(code=code, message=message, component=self._component, at=utcnow())
        previous = self._previous(channel_id)
        status = previous.model_copy(update={"connected": connected, "problem": problem, "at": problem.at})
        await self._write(channel_id, status, urgent=previous.problem is None)

    async def ok(
        self, channel_id: UUID, *, last_update_at: datetime | None = None, backlog: int | None = None
    ) -> None:
        """Record that the connector reaches the platform; clears a previous problem at once."""
        previous = self._previous(channel_id)
        status = previous.model_copy(
            update={
                "connected": True,
                "last_update_at": last_update_at or previous.last_update_at,
                "backlog": backlog if backlog is not None else previous.backlog,
                "problem": None,
                "at": utcnow(),
            }
        )
        urgent = (
            channel_id not in self._last or previous.problem is not None or previous.connected is not True
        )
        await self._write(channel_id, status, urgent=urgent)

    async def amend(self, channel_id: UUID, *, urgent: bool = True, **changes: Any) -> None:
        """Change other fields of the status (warnings, throttling, backfill progress); never raises."""
        previous = self._previous(channel_id)
        await self._write(channel_id, previous.model_copy(update={**changes, "at": utcnow()}), urgent=urgent)

    def _previous(self, channel_id: UUID) -> ChannelStatus:
        previous = self._last.get(channel_id)
        return previous[1] if previous else ChannelStatus(component=self._component, at=utcnow())

    async def _write(self, channel_id: UUID, status: ChannelStatus, *, urgent: bool) -> None:
        now = time.monotonic()
        previous = self._last.get(channel_id)
        if not urgent and previous is not None and previous[0] + self._min_interval > now:
            self._last[channel_id] = (previous[0], status)
            return
        self._last[channel_id] = (now, status)
        try:
            await _kv_call("write", self._kv.put(str(channel_id), status.model_dump_json().encode()))
        except BusUnavailable as exc:
            log.warning("channels.health.write_failed", channel_id=str(channel_id), error=str(exc))

    async def read(self, channel_id: UUID) -> ChannelStatus | None:
        """The last status written for a channel, if any."""
        entry = await _kv_call("read", self._kv.get(str(channel_id)))
        if entry is None or not entry.value:
            return None
        try:
            return ChannelStatus.model_validate_json(entry.value)
        except ValidationError:
            return None
