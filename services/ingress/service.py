"""Accepting a signed webhook: verify, validate, normalise, and hand it to JetStream.

A request is acknowledged only once JetStream stored every event in it. Each event's bus id is
derived from the channel, the ``webhook-id`` and the event's position, so a redelivered webhook is
dropped by JetStream's duplicate window, and the inbox's unique constraints absorb anything older.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import orjson
from cachetools import LRUCache
from prometheus_client import Counter
from pydantic import ValidationError

from services.ingress.config import IngressSettings
from services.ingress.errors import InvalidSignature, UnknownChannel
from services.ingress.schemas import WebhookBatch, WebhookEvent
from shared.bus.client import Bus, BusUnavailable
from shared.channels import ChannelDirectory, ChannelHealthBoard, ChannelRecord
from shared.crypto import SecretBox, SecretBoxError
from shared.errors import BadRequest, ServiceUnavailable, ValidationFailed
from shared.events import (
    Attachment,
    AuthorRef,
    InboundEvent,
    InboundMessage,
    MessageDeleted,
    MessageDeletion,
    MessageEdit,
    MessageEdited,
    MessageReceived,
    ThreadRef,
    inbound_subject,
    utcnow,
)
from shared.http import field_errors
from shared.logging import get_logger
from shared.webhooks.signing import SignatureError, verify

log = get_logger(__name__)

PLATFORM = "webhook"

EVENTS_RECEIVED = Counter(
    "piazza_events_received_total", "Inbound events accepted onto the bus", ["platform", "duplicate"]
)
WEBHOOKS_REJECTED = Counter("piazza_webhooks_rejected_total", "Webhook requests refused, by reason", ["code"])


@dataclass(frozen=True)
class Accepted:
    """What a webhook request put on the bus."""

    events: int
    duplicates: int


class WebhookIngress:
    """The generic webhook receiver of every webhook channel."""

    def __init__(
        self,
        bus: Bus,
        directory: ChannelDirectory,
        health: ChannelHealthBoard,
        box: SecretBox,
        settings: IngressSettings,
    ) -> None:
        self._bus = bus
        self._directory = directory
        self._health = health
        self._box = box
        self._settings = settings
        self._opened: LRUCache[str, str] = LRUCache(maxsize=4096)
        self._background: set[asyncio.Task[None]] = set()

    @property
    def max_body_bytes(self) -> int:
        """The body size limit (413 above)."""
        return self._settings.max_body_bytes

    async def channel(self, channel_id: str) -> ChannelRecord:
        """The active webhook channel with this id, or UnknownChannel."""
        try:
            parsed = uuid.UUID(channel_id)
        except ValueError:
            raise UnknownChannel(f"no webhook channel {channel_id!r}") from None
        try:
            record = await self._directory.get(parsed)
        except BusUnavailable as exc:
            raise self._unavailable("the channel directory is unavailable") from exc
        if record is None or record.type != PLATFORM or record.status != "active":
            raise UnknownChannel(f"no webhook channel {channel_id!r}")
        return record

    async def receive(
        self, channel: ChannelRecord, headers: Mapping[str, str], body: bytes, correlation_id: str
    ) -> Accepted:
        """Verify and publish one request; returns once JetStream stored all of its events."""
        webhook_id = self._verify(channel, headers, body)
        events = self._parse(body)
        published = [
            (
                inbound_subject(PLATFORM, channel.id),
                _to_event(channel, webhook_id, index, event, correlation_id),
            )
            for index, event in enumerate(events)
        ]
        try:
            acks = await self._bus.publish_many(published, timeout=self._settings.publish_timeout_seconds)
        except BusUnavailable as exc:
            log.warning("ingress.publish.failed", channel_id=str(channel.id), error=str(exc))
            raise self._unavailable("the message bus did not store the events; retry later") from exc
        duplicates = sum(1 for ack in acks if ack.duplicate)
        EVENTS_RECEIVED.labels(PLATFORM, "false").inc(len(acks) - duplicates)
        if duplicates:
            EVENTS_RECEIVED.labels(PLATFORM, "true").inc(duplicates)
        return Accepted(len(acks), duplicates)

    def _verify(self, channel: ChannelRecord, headers: Mapping[str, str], body: bytes) -> str:
        webhook_id = headers.get("webhook-id")
        try:
            secrets_ = [self._open(s) for s in channel.live_secrets(utcnow())]
            verify(
                secrets_,
                webhook_id=webhook_id,
                timestamp=headers.get("webhook-timestamp"),
                signature=headers.get("webhook-signature"),
                body=body,
                now=time.time(),
                tolerance=self._settings.signature_tolerance_seconds,
            )
        except SignatureError as exc:
            WEBHOOKS_REJECTED.labels("invalid_signature").inc()
            self._report(channel, "invalid_signature", f"rejected a delivery: {exc.reason}")
            raise InvalidSignature(f"Webhook signature rejected: {exc.reason}.") from exc
        assert webhook_id is not None  # verify() refuses a missing id
        if len(webhook_id) > 256:
            raise InvalidSignature("Webhook signature rejected: webhook-id is longer than 256 characters.")
        return webhook_id

    def _open(self, sealed: str) -> str:
        opened = self._opened.get(sealed)
        if opened is None:
            try:
                opened = self._box.open(sealed)
            except SecretBoxError as exc:
                raise self._unavailable(
                    "this process cannot open the channel's secret (PIAZZA_SECRET_KEYS)"
                ) from exc
            self._opened[sealed] = opened
        return opened

    def _parse(self, body: bytes) -> list[WebhookEvent]:
        try:
            raw = orjson.loads(body)
        except orjson.JSONDecodeError as exc:
            WEBHOOKS_REJECTED.labels("malformed_json").inc()
            raise BadRequest(f"The body is not valid JSON: {exc}.", code="malformed_json") from exc
        if not isinstance(raw, dict):
            WEBHOOKS_REJECTED.labels("validation_failed").inc()
            raise ValidationFailed(
                'The body must be a JSON object: one event, or {"events": [...]}.',
                errors=[{"field": "body", "message": "expected a JSON object", "type": "object_type"}],
            )
        try:
            events = (
                WebhookBatch.model_validate(raw).events
                if "events" in raw
                else [WebhookEvent.model_validate(raw)]
            )
        except ValidationError as exc:
            WEBHOOKS_REJECTED.labels("validation_failed").inc()
            raise ValidationFailed(
                f"The body does not match the webhook event schema ({exc.error_count()} error(s)).",
                errors=[{**e, "field": f"body.{e['field']}".rstrip(".")} for e in field_errors(exc.errors())],
            ) from exc
        if len(events) > self._settings.max_batch_events:
            WEBHOOKS_REJECTED.labels("validation_failed").inc()
            raise ValidationFailed(
                f"A request may carry at most {self._settings.max_batch_events} events; this one has {len(events)}.",
                errors=[{"field": "body.events", "message": "too many events", "type": "too_long"}],
            )
        return events

    def _report(self, channel: ChannelRecord, code: str, message: str) -> None:
        # Off the request path: a rejected sender gets its 401 without waiting on the KV write.
        task = asyncio.get_running_loop().create_task(self._health.report(channel.id, code, message))
        self._background.add(task)
        task.add_done_callback(self._background.discard)

    def _unavailable(self, why: str) -> ServiceUnavailable:
        WEBHOOKS_REJECTED.labels("service_unavailable").inc()
        return ServiceUnavailable(
            f"Piazza cannot accept webhooks right now: {why}.", retry_after=self._settings.retry_after_seconds
        )


def event_id(channel_id: uuid.UUID, webhook_id: str, index: int) -> str:
    """The bus id of the ``index``-th event of a webhook delivery: the same on every redelivery."""
    return hashlib.sha256(f"webhook\x1f{channel_id}\x1f{webhook_id}\x1f{index}".encode()).hexdigest()[:40]


def _to_event(
    channel: ChannelRecord, webhook_id: str, index: int, event: WebhookEvent, correlation_id: str
) -> InboundEvent:
    envelope: dict[str, Any] = {
        "id": event_id(channel.id, webhook_id, index),
        "workspace": str(channel.workspace_id),
        "source": "ingress",
        "correlation_id": correlation_id,
    }
    ref: dict[str, Any] = {
        "channel_id": channel.id,
        "platform": PLATFORM,
        "thread": ThreadRef(external_id=event.thread.id, title=event.thread.title),
        "external_id": event.id,
    }
    author = (
        AuthorRef(
            namespace=f"{PLATFORM}:{channel.id}",
            external_id=event.author.id,
            handle=event.author.handle,
            name=event.author.name,
        )
        if event.author is not None
        else None
    )
    attachments = tuple(Attachment(**a.model_dump()) for a in event.attachments)
    if event.type == "message.created":
        assert author is not None
        payload = InboundMessage(
            **ref,
            author=author,
            text=event.text,
            attachments=attachments,
            reply_to_external_id=event.reply_to,
            sent_at=event.occurred_at,
        )
        return MessageReceived(**envelope, payload=payload)
    if event.type == "message.edited":
        edit = MessageEdit(
            **ref, author=author, text=event.text, attachments=attachments, edited_at=event.occurred_at
        )
        return MessageEdited(**envelope, payload=edit)
    return MessageDeleted(**envelope, payload=MessageDeletion(**ref, deleted_at=event.occurred_at))
