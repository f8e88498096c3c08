"""Which bots this replica polls: the polling-mode bots, one poller per bot across replicas
(:class:`shared.pollers.PollerManager` holds the leases)."""

from __future__ import annotations

import httpx
from nats.js.kv import KeyValue

from services.telegram.config import TelegramSettings
from services.telegram.poller import ChannelPoller
from shared.bus.client import Bus
from shared.channels import ChannelDirectory, ChannelHealthBoard, ChannelRecord
from shared.crypto import SecretBox, SecretBoxError
from shared.logging import get_logger
from shared.platforms.telegram.client import TelegramClient
from shared.platforms.telegram.state import AliasStore, OffsetStore
from shared.pollers import PollerManager

log = get_logger(__name__)


def polls(record: ChannelRecord) -> bool:
    """Whether a channel is a bot this connector should poll."""
    return record.type == "telegram" and record.status == "active" and record.config.get("mode") == "polling"


def telegram_pollers(
    bus: Bus,
    directory: ChannelDirectory,
    leases: KeyValue,
    aliases: AliasStore,
    offsets: OffsetStore,
    health: ChannelHealthBoard,
    box: SecretBox,
    http: httpx.AsyncClient,
    settings: TelegramSettings,
) -> PollerManager:
    """The manager of this replica's bot pollers."""

    def launch(record: ChannelRecord, resume_at: float) -> ChannelPoller | None:
        sealed = record.secret("bot_token")
        try:
            token = box.open(sealed) if sealed else None
        except SecretBoxError:
            token = None
        if token is None:
            log.error("telegram.manager.no_token", channel_id=str(record.id))
            return None
        client = TelegramClient(token, base_url=settings.telegram_api_url, http=http)
        return ChannelPoller(record, client, bus, aliases, offsets, health, settings, resume_at=resume_at)

    return PollerManager(
        name="telegram",
        directory=directory,
        leases=leases,
        wants=polls,
        launch=launch,
        rescan_seconds=settings.rescan_seconds,
    )
