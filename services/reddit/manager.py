"""Which Reddit accounts this replica polls: one poller per account across replicas
(:class:`shared.pollers.PollerManager` holds the leases)."""

from __future__ import annotations

import httpx
from nats.js.kv import KeyValue

from services.reddit.config import RedditSettings
from services.reddit.poller import AccountPoller
from shared.bus.client import Bus
from shared.channels import ChannelDirectory, ChannelHealthBoard, ChannelRecord
from shared.crypto import SecretBox, SecretBoxError
from shared.logging import get_logger
from shared.platforms.reddit.client import RedditClient
from shared.platforms.reddit.credentials import credentials_from_record
from shared.platforms.reddit.state import CursorStore
from shared.pollers import PollerManager

log = get_logger(__name__)


def polls(record: ChannelRecord) -> bool:
    """Whether a channel is an account this connector should poll."""
    return record.type == "reddit" and record.status == "active"


def reddit_pollers(
    bus: Bus,
    directory: ChannelDirectory,
    leases: KeyValue,
    cursors: CursorStore,
    health: ChannelHealthBoard,
    box: SecretBox,
    http: httpx.AsyncClient,
    settings: RedditSettings,
) -> PollerManager:
    """The manager of this replica's account pollers."""

    def launch(record: ChannelRecord, resume_at: float) -> AccountPoller | None:
        try:
            credentials = credentials_from_record(record, box)
        except (SecretBoxError, KeyError) as exc:
            log.error("reddit.manager.no_credentials", channel_id=str(record.id), error=str(exc))
            return None
        client = RedditClient(
            credentials, http=http, auth_url=settings.reddit_auth_url, api_url=settings.reddit_api_url
        )
        return AccountPoller(record, client, bus, cursors, health, settings, resume_at=resume_at)

    return PollerManager(
        name="reddit",
        directory=directory,
        leases=leases,
        wants=polls,
        launch=launch,
        rescan_seconds=settings.rescan_seconds,
    )
