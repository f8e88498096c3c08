"""Telegram bots as channel accounts: registration checked with ``getMe``, and the update mode."""

from __future__ import annotations

import secrets
import uuid
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from services.inbox.errors import ChannelNotFound
from services.inbox.models import Channel
from services.inbox.repository import channels as repo
from services.inbox.service.channels import to_record
from shared.channels import ChannelDirectory, SealedSecret
from shared.crypto import SecretBox
from shared.errors import BadRequest, Conflict, ServiceUnavailable
from shared.platforms.telegram.client import (
    TelegramClient,
    TelegramError,
    TelegramInvalidToken,
    TelegramRetryAfter,
)
from shared.platforms.telegram.normalize import ALLOWED_UPDATES

TelegramFactory = Callable[[str], TelegramClient]
"""Builds a Bot API client for a token."""


@asynccontextmanager
async def telegram_errors(action: str) -> AsyncIterator[None]:
    """Turn Bot API failures into the answers a caller can act on."""
    try:
        yield
    except TelegramInvalidToken as exc:
        raise BadRequest(
            f"Telegram refused the bot token ({exc.description}).", code="invalid_bot_token"
        ) from None
    except TelegramRetryAfter as exc:
        raise ServiceUnavailable(
            f"Telegram asks to wait before {action}.", retry_after=int(exc.retry_after or 1) + 1
        ) from None
    except TelegramError as exc:
        if exc.retryable:
            raise ServiceUnavailable(
                f"Telegram is unreachable while {action}; nothing was changed."
            ) from None
        raise BadRequest(f"Telegram refused {action}: {exc.description}", code="telegram_rejected") from None


def webhook_url(public_url: str, channel_id: uuid.UUID) -> str:
    """Where Telegram delivers a webhook-mode bot's updates."""
    return f"{public_url.rstrip('/')}/webhooks/telegram/{channel_id}"


async def _apply_mode(client: TelegramClient, channel: Channel, box: SecretBox, public_url: str) -> None:
    if channel.config.get("mode") == "webhook":
        sealed = to_record(channel).secret("webhook_secret")
        assert sealed is not None
        async with telegram_errors("setting the webhook"):
            await client.set_webhook(
                webhook_url(public_url, channel.id),
                secret_token=box.open(sealed),
                allowed_updates=ALLOWED_UPDATES,
            )
    else:
        # Polling needs no webhook set (Telegram answers getUpdates with 409 while one is).
        async with telegram_errors("removing the webhook"):
            await client.delete_webhook()


async def create_telegram_channel(
    session: AsyncSession,
    directory: ChannelDirectory,
    box: SecretBox,
    telegram: TelegramFactory,
    *,
    workspace_id: uuid.UUID,
    token: str,
    mode: str,
    name: str | None,
    public_url: str,
    now: datetime,
) -> Channel:
    """Register a bot: the token must pass ``getMe``; a bot can be connected once."""
    client = telegram(token)
    async with telegram_errors("checking the bot token"):
        me = await client.get_me()
    bot_id, username = int(me["id"]), me.get("username")
    if await repo.channel_with_bot(session, bot_id) is not None:
        raise Conflict(
            f"The bot @{username} is already connected as a channel.", code="bot_already_connected"
        )
    channel = Channel(
        id=uuid.uuid4(),
        workspace_id=workspace_id,
        type="telegram",
        name=name or (f"@{username}" if username else str(me.get("first_name") or bot_id)),
        status="active",
        config={"mode": mode, "bot_id": str(bot_id), "bot_username": username},
        secrets=[
            SealedSecret(sealed=box.seal(token), purpose="bot_token").model_dump(mode="json"),
            SealedSecret(sealed=box.seal(secrets.token_urlsafe(32)), purpose="webhook_secret").model_dump(
                mode="json"
            ),
        ],
        created_at=now,
        updated_at=now,
        last_event_at=None,
    )
    await repo.add_channel(session, channel)
    await _apply_mode(client, channel, box, public_url)
    await directory.put(to_record(channel))
    return channel


async def update_channel(
    session: AsyncSession,
    directory: ChannelDirectory,
    box: SecretBox,
    telegram: TelegramFactory,
    *,
    workspace_id: uuid.UUID,
    channel_id: uuid.UUID,
    name: str | None,
    mode: str | None,
    public_url: str,
    now: datetime,
) -> Channel:
    """Rename a channel, or switch a bot between polling and webhook mode."""
    channel = await repo.get_channel(session, workspace_id, channel_id, for_update=True)
    if channel is None:
        raise ChannelNotFound(f"channel {channel_id} not found")
    if mode is not None and channel.type != "telegram":
        raise BadRequest("Only Telegram channels have a mode.", code="mode_not_applicable")
    if name is not None:
        channel.name = name
    if mode is not None and mode != channel.config.get("mode"):
        channel.config = {**channel.config, "mode": mode}
        sealed = to_record(channel).secret("bot_token")
        assert sealed is not None
        await _apply_mode(telegram(box.open(sealed)), channel, box, public_url)
    channel.updated_at = now
    await session.flush()
    await directory.put(to_record(channel))
    return channel
