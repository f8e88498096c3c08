"""``POST /webhooks/telegram/{channel_id}``: a bot in webhook mode, called by Telegram itself.

Telegram sends one Update per request with the secret Piazza gave ``setWebhook`` in
``X-Telegram-Bot-Api-Secret-Token``. A 200 means JetStream stored the update's events; anything else
makes Telegram deliver it again (with backoff, per chat in order), so nothing is lost.
"""

from __future__ import annotations

import hmac
import uuid
from typing import Any

import orjson
from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse

from services.ingress.config import IngressSettings
from services.ingress.endpoints import read_body
from services.ingress.errors import InvalidSignature, UnknownChannel
from shared.bus.client import Bus, BusUnavailable
from shared.channels import ChannelDirectory, ChannelHealthBoard, ChannelRecord
from shared.crypto import SecretBox, SecretBoxError
from shared.errors import BadRequest, ServiceUnavailable, UnsupportedMediaType
from shared.platforms.telegram.publish import publish_updates
from shared.platforms.telegram.state import AliasStore

router = APIRouter(tags=["webhooks"])

SECRET_HEADER = "x-telegram-bot-api-secret-token"  # noqa: S105 - a header name


class TelegramWebhooks:
    """Receives the updates of every bot in webhook mode."""

    def __init__(
        self,
        bus: Bus,
        directory: ChannelDirectory,
        aliases: AliasStore,
        health: ChannelHealthBoard,
        box: SecretBox,
        settings: IngressSettings,
    ) -> None:
        self.bus = bus
        self.directory = directory
        self.aliases = aliases
        self.health = health
        self.box = box
        self.settings = settings

    async def channel(self, channel_id: str) -> ChannelRecord:
        """The active Telegram channel with this id, or UnknownChannel."""
        try:
            parsed = uuid.UUID(channel_id)
            record = await self.directory.get(parsed)
        except ValueError:
            record = None
        except BusUnavailable as exc:
            raise ServiceUnavailable("Piazza cannot accept updates right now; retry later.") from exc
        if record is None or record.type != "telegram" or record.status != "active":
            raise UnknownChannel(f"no Telegram channel {channel_id!r}")
        return record

    async def check_secret(self, channel: ChannelRecord, presented: str | None) -> None:
        """Compare the secret header in constant time (as bytes: a non-ASCII header is just wrong)."""
        sealed = channel.secret("webhook_secret")
        try:
            expected = self.box.open(sealed).encode() if sealed else None
        except SecretBoxError as exc:
            raise ServiceUnavailable(
                "This process cannot open the channel's secret (PIAZZA_SECRET_KEYS)."
            ) from exc
        given = (presented or "").encode("utf-8", "surrogateescape")
        if expected is None or not presented or not hmac.compare_digest(given, expected):
            await self.health.report(
                channel.id, "invalid_secret", "rejected an update without the right secret token"
            )
            raise InvalidSignature("The X-Telegram-Bot-Api-Secret-Token header is missing or wrong.")

    async def accept(self, channel: ChannelRecord, update: dict[str, Any], correlation_id: str) -> None:
        """Publish the update's events; 503 if JetStream did not store them."""
        try:
            await publish_updates(
                self.bus,
                self.aliases,
                channel,
                [update],
                correlation_id=correlation_id,
                timeout=self.settings.publish_timeout_seconds,
            )
        except BusUnavailable as exc:
            raise ServiceUnavailable(
                "Piazza cannot store the update right now; Telegram will deliver it again.",
                retry_after=self.settings.retry_after_seconds,
            ) from exc
        await self.health.ok(channel.id)


@router.post(
    "/webhooks/telegram/{channel_id}", responses={401: {}, 404: {}, 400: {}, 413: {}, 415: {}, 503: {}}
)
async def receive_telegram_update(channel_id: str, request: Request) -> JSONResponse:
    """An Update from Telegram for a bot in webhook mode; 200 once it is stored."""
    webhooks: TelegramWebhooks = request.app.state.telegram_webhooks
    channel = await webhooks.channel(channel_id)
    await webhooks.check_secret(channel, request.headers.get(SECRET_HEADER))
    if request.headers.get("content-type", "").split(";", 1)[0].strip().lower() != "application/json":
        raise UnsupportedMediaType("Telegram sends updates as application/json.")
    body = await read_body(request, webhooks.settings.max_body_bytes)
    try:
        update = orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        raise BadRequest(f"The body is not valid JSON: {exc}.", code="malformed_json") from exc
    if not isinstance(update, dict) or not isinstance(update.get("update_id"), int):
        raise BadRequest("The body is not a Telegram Update (an object with an integer update_id).")
    await webhooks.accept(channel, update, request.state.request_id)
    # Never put a method in this answer: Telegram would run it, and Piazza would not know the result.
    return JSONResponse({"ok": True})
