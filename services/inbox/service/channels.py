"""Channel accounts: registration, signing secrets, health, and the directory connectors read."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal

from sqlalchemy.ext.asyncio import AsyncSession

from services.inbox.errors import ChannelNotFound
from services.inbox.models import Channel
from services.inbox.repository import channels as repo
from shared.channels import (
    ChannelDirectory,
    ChannelProblem,
    ChannelRecord,
    ChannelStatus,
    ChannelType,
    SealedSecret,
)
from shared.crypto import SecretBox
from shared.errors import BadRequest
from shared.webhooks.signing import generate_secret

HealthStatus = Literal["ok", "idle", "error"]


@dataclass(frozen=True)
class ChannelHealth:
    """How a channel is doing, from the store (last event) and its connector (status, last problem)."""

    status: HealthStatus
    last_event_at: datetime | None
    last_error: ChannelProblem | None
    connected: bool | None = None
    last_update_at: datetime | None = None
    backlog: int | None = None


def to_record(channel: Channel) -> ChannelRecord:
    """The directory entry connectors read for a channel."""
    return ChannelRecord(
        id=channel.id,
        workspace_id=channel.workspace_id,
        type=_channel_type(channel.type),
        name=channel.name,
        status="active" if channel.status == "active" else "disabled",
        secrets=tuple(SealedSecret.model_validate(s) for s in channel.secrets),
        config=channel.config,
        updated_at=channel.updated_at,
    )


def _channel_type(value: str) -> ChannelType:
    if value in ("webhook", "telegram", "reddit"):
        return value  # type: ignore[return-value]
    raise ValueError(f"unknown channel type {value!r}")


def health(channel: Channel, report: ChannelStatus | None) -> ChannelHealth:
    """A problem newer than the last stored event makes the channel unhealthy."""
    problem = report.problem if report else None
    if problem is not None and (channel.last_event_at is None or problem.at > channel.last_event_at):
        status: HealthStatus = "error"
    elif channel.last_event_at is not None or (report is not None and report.connected is True):
        status = "ok"
    else:
        status = "idle"
    return ChannelHealth(
        status,
        channel.last_event_at,
        problem,
        connected=report.connected if report else None,
        last_update_at=report.last_update_at if report else None,
        backlog=report.backlog if report else None,
    )


async def create_webhook_channel(
    session: AsyncSession,
    directory: ChannelDirectory,
    box: SecretBox,
    workspace_id: uuid.UUID,
    name: str,
    now: datetime,
) -> tuple[Channel, str]:
    """Register a webhook source; returns the channel and its signing secret (shown once).

    The directory entry is written before the caller commits: if NATS is down the registration
    fails as a whole, and a directory entry whose commit then fails names an id nobody was given.
    """
    secret = generate_secret()
    channel = Channel(
        id=uuid.uuid4(),
        workspace_id=workspace_id,
        type="webhook",
        name=name,
        status="active",
        config={},
        secrets=[SealedSecret(sealed=box.seal(secret)).model_dump(mode="json")],
        created_at=now,
        updated_at=now,
        last_event_at=None,
    )
    await repo.add_channel(session, channel)
    await directory.put(to_record(channel))
    return channel, secret


async def rotate_secret(
    session: AsyncSession,
    directory: ChannelDirectory,
    box: SecretBox,
    workspace_id: uuid.UUID,
    channel_id: uuid.UUID,
    now: datetime,
    grace: timedelta,
) -> tuple[Channel, str]:
    """Give a webhook channel a new secret; the previous one keeps verifying for ``grace``.

    The row is locked first, so two rotations at once keep every secret they hand out.
    """
    channel = await repo.get_channel(session, workspace_id, channel_id, for_update=True)
    if channel is None:
        raise ChannelNotFound(f"channel {channel_id} not found")
    if channel.type != "webhook":
        raise BadRequest(
            "Only webhook sources have a signing secret to rotate.", code="not_a_webhook_channel"
        )
    secret = generate_secret()
    kept = []
    for raw in channel.secrets:
        old = SealedSecret.model_validate(raw)
        expires_at = old.expires_at or now + grace
        if expires_at > now:
            kept.append(old.model_copy(update={"expires_at": expires_at}).model_dump(mode="json"))
    channel.secrets = [SealedSecret(sealed=box.seal(secret)).model_dump(mode="json"), *kept]
    channel.updated_at = now
    await session.flush()
    await directory.put(to_record(channel))
    return channel, secret


async def get_channel(session: AsyncSession, workspace_id: uuid.UUID, channel_id: uuid.UUID) -> Channel:
    """A channel of the workspace, or ChannelNotFound."""
    channel = await repo.get_channel(session, workspace_id, channel_id)
    if channel is None:
        raise ChannelNotFound(f"channel {channel_id} not found")
    return channel


async def list_channels(
    session: AsyncSession, workspace_id: uuid.UUID, after: tuple[datetime, uuid.UUID] | None, limit: int
) -> list[Channel]:
    """A page of the workspace's channels."""
    return await repo.list_channels(session, workspace_id, after, limit)


async def publish_directory(session: AsyncSession, directory: ChannelDirectory) -> int:
    """Write every channel to the directory (start-up reconciliation); returns how many."""
    channels = await repo.all_channels(session)
    for channel in channels:
        await directory.put(to_record(channel))
    return len(channels)
