"""Normalising a batch of Telegram updates and publishing the events: shared by the polling
connector and the webhook ingress, whichever receives a bot's updates."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from prometheus_client import Counter

from shared.bus.client import Bus
from shared.channels import ChannelRecord
from shared.events import Event, inbound_subject, utcnow
from shared.logging import get_logger
from shared.platforms.telegram.normalize import PLATFORM, alias_keys, normalize
from shared.platforms.telegram.state import AliasStore

log = get_logger(__name__)

UPDATES = Counter(
    "piazza_telegram_updates_total",
    "Telegram updates received, by kind and outcome (published, or skipped: kinds an inbox does not keep)",
    ["kind", "outcome"],
)


async def publish_updates(
    bus: Bus,
    aliases: AliasStore,
    channel: ChannelRecord,
    updates: Sequence[dict[str, Any]],
    *,
    correlation_id: str | None = None,
    timeout: float = 10.0,
) -> int:
    """Publish the events of ``updates`` (in order); returns once JetStream stored them all.

    Raises ``BusUnavailable`` if they could not all be stored: the caller must then not confirm the
    updates to Telegram, so they come again (and are deduplicated by their event ids).
    """
    known = await aliases.resolve(
        channel.id, set().union(*(alias_keys(u) for u in updates)) if updates else set()
    )
    learned: dict[str, str] = {}
    events: list[Event] = []
    received_at = utcnow()
    for update in updates:
        result = normalize(
            update,
            channel_id=channel.id,
            workspace=str(channel.workspace_id),
            aliases={**known, **learned},
            received_at=received_at,
            correlation_id=correlation_id,
        )
        learned.update(result.learned)
        events.extend(result.events)
        UPDATES.labels(result.kind, "skipped" if result.skipped else "published").inc()
        if result.skipped:
            log.info("telegram.update.skipped", kind=result.kind, update_id=update.get("update_id"))
    if events:
        subject = inbound_subject(PLATFORM, channel.id)
        await bus.publish_many([(subject, event) for event in events], timeout=timeout)
    if learned:
        await aliases.learn(channel.id, learned)
    return len(events)
