"""Carrying out commands, at most once each, and reporting every outcome.

Before a platform call the command is marked ``sending`` in the ``send-attempts`` bucket; after it,
the outcome replaces the mark and is published. A command delivered again finds the mark:

* an outcome: it is published again (the inbox applies it once), nothing is sent again;
* ``sending``: the previous worker stopped between the call and recording its result, so nobody can
  tell whether the platform got it. The reply is reported ``delivery_unknown`` rather than risk a
  double reply: **at most once**, with the uncertain case made visible to the agent.

Commands of one chat are carried out in order; different chats proceed concurrently.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
from collections.abc import Mapping, Sequence
from typing import Literal

from nats.errors import Error as NatsError
from nats.js.errors import Error as JetStreamError
from nats.js.errors import KeyDeletedError, KeyNotFoundError
from nats.js.kv import KeyValue
from prometheus_client import Counter

from services.reply.reddit import RedditSender
from services.reply.telegram import SendFailure, TelegramSender
from shared.bus.client import Bus, BusUnavailable
from shared.bus.consumer import Delivery
from shared.channels import ChannelDirectory, ChannelRecord
from shared.crypto import SecretBox, SecretBoxError
from shared.errors import TransientError
from shared.events import Event, decode_event, encode_event, utcnow
from shared.events.commands import (
    ModerationCompleted,
    ModerationOutcome,
    ModerationRequested,
    ReadRequested,
    ReplyFailed,
    ReplyFailure,
    ReplyRequested,
    ReplySending,
    ReplySent,
    outcome_subject,
)
from shared.logging import get_logger
from shared.platforms.reddit.client import RedditNoAnswer
from shared.platforms.reddit.credentials import credentials_from_record
from shared.platforms.telegram.client import TelegramNoAnswer

log = get_logger(__name__)

OUTCOMES = Counter("piazza_replies_total", "Commands carried out, by kind and outcome", ["kind", "outcome"])

SENDING = b"sending"


class ReplyWorker:
    """The batch handler of the ``reply-commands`` consumer."""

    def __init__(
        self,
        bus: Bus,
        directory: ChannelDirectory,
        attempts: KeyValue,
        box: SecretBox,
        telegram: TelegramSender,
        reddit: RedditSender,
    ) -> None:
        self._bus = bus
        self._directory = directory
        self._attempts = attempts
        self._box = box
        self._telegram = telegram
        self._reddit = reddit

    async def __call__(self, batch: Sequence[Delivery]) -> Mapping[int, str]:
        refused: dict[int, str] = {}
        lanes: dict[str, list[Delivery]] = {}
        for index, delivery in enumerate(batch):
            event = delivery.event
            if isinstance(event, ReplyRequested | ModerationRequested | ReadRequested):
                lane = f"{event.payload.channel_id}:{event.payload.thread_external_id}"
            else:
                refused[index] = f"the reply service does not carry out {event.type}"
                continue
            lanes.setdefault(lane, []).append(delivery)
        keepalive = asyncio.create_task(_keep_alive(batch))
        try:
            await asyncio.gather(*(self._lane(deliveries) for deliveries in lanes.values()))
        finally:
            keepalive.cancel()
            await asyncio.gather(keepalive, return_exceptions=True)
        return refused

    async def _lane(self, deliveries: list[Delivery]) -> None:
        for delivery in deliveries:
            if isinstance(delivery.event, ReadRequested):
                await self._mark_read(delivery.event)
            else:
                await self._carry_out(delivery.event)  # type: ignore[arg-type]

    async def _mark_read(self, event: ReadRequested) -> None:
        """Mark items read (repeating it is harmless: no at-most-once bookkeeping, no outcome)."""
        request = event.payload
        channel = await self._directory.get(request.channel_id)
        if channel is None or channel.type != "reddit":
            return
        try:
            credentials = credentials_from_record(channel, self._box)
            await self._reddit.mark_read(channel, credentials, list(request.external_ids))
        except (SendFailure, RedditNoAnswer, SecretBoxError, KeyError) as exc:
            OUTCOMES.labels("read", "failed").inc()
            log.warning("reply.mark_read_failed", channel_id=str(channel.id), error=str(exc))
            return
        OUTCOMES.labels("read", "applied").inc()

    async def _carry_out(self, event: ReplyRequested | ModerationRequested) -> None:
        key = _attempt_key(event)
        mark = await self._mark(key)
        if mark is not None and mark != SENDING:
            await self._publish(decode_event(mark))  # already done: report it again
            return
        if mark == SENDING:
            outcome = self._outcome(event, unknown=True)
        else:
            await self._set_mark(key, SENDING)
            outcome = await self._attempt(event)
        await self._set_mark(key, encode_event(outcome))
        await self._publish(outcome)

    async def _attempt(self, event: ReplyRequested | ModerationRequested) -> Event:
        channel = await self._directory.get(event.payload.channel_id)
        if channel is None or channel.type not in ("telegram", "reddit"):
            return self._outcome(event, failure=SendFailure("rejected", "the channel no longer exists"))
        try:
            if channel.type == "reddit":
                return await self._attempt_reddit(event, channel)
            return await self._attempt_telegram(event, channel)
        except SendFailure as failure:
            return self._outcome(event, failure=failure)
        except (TelegramNoAnswer, RedditNoAnswer) as exc:
            log.warning("reply.delivery_unknown", reason=exc.description)
            return self._outcome(event, unknown=True)

    async def _attempt_telegram(
        self, event: ReplyRequested | ModerationRequested, channel: ChannelRecord
    ) -> Event:
        sealed = channel.secret("bot_token")
        try:
            token = self._box.open(sealed) if sealed else None
        except SecretBoxError:
            token = None
        if token is None:
            raise SendFailure("rejected", "this process cannot open the bot token")
        if isinstance(event, ReplyRequested):
            return self._outcome(event, sent=await self._telegram.send(token, str(channel.id), event.payload))
        if event.payload.action not in ("delete_message", "ban", "unban"):
            raise SendFailure("unsupported", f"Telegram has no {event.payload.action}")
        await self._telegram.moderate(token, str(channel.id), event.payload)
        return self._outcome(event)

    async def _attempt_reddit(
        self, event: ReplyRequested | ModerationRequested, channel: ChannelRecord
    ) -> Event:
        try:
            credentials = credentials_from_record(channel, self._box)
        except (SecretBoxError, KeyError):
            raise SendFailure("rejected", "this process cannot open the account's credentials") from None
        if isinstance(event, ReplyRequested):
            return self._outcome(event, sent=await self._reddit.send(channel, credentials, event.payload))
        await self._reddit.moderate(channel, credentials, event.payload)
        return self._outcome(event)

    def _outcome(
        self,
        event: ReplyRequested | ModerationRequested,
        *,
        sent: list[str] | None = None,
        failure: SendFailure | None = None,
        unknown: bool = False,
    ) -> Event:
        now = utcnow()
        envelope = {
            "id": hashlib.sha256(f"outcome\x1f{event.id}".encode()).hexdigest()[:40],
            "workspace": event.workspace,
            "source": "reply",
            "correlation_id": event.correlation_id,
        }
        if isinstance(event, ReplyRequested):
            request = event.payload
            if sent is not None:
                OUTCOMES.labels("reply", "sent").inc()
                return ReplySent(
                    **envelope,
                    payload=ReplySending(
                        message_id=request.message_id,
                        channel_id=request.channel_id,
                        platform_message_ids=tuple(sent),
                        sent_at=now,
                    ),
                )
            if unknown:
                failure = SendFailure(
                    "delivery_unknown",
                    "the sender stopped between sending and hearing back; check the chat before sending again",
                )
            assert failure is not None
            OUTCOMES.labels("reply", failure.code).inc()
            return ReplyFailed(
                **envelope,
                payload=ReplyFailure(
                    message_id=request.message_id,
                    channel_id=request.channel_id,
                    code=failure.code,
                    reason=failure.reason[:1000],
                    failed_at=now,
                ),
            )
        action = event.payload
        reason = (
            failure.reason if failure else ("the platform may or may not have done it" if unknown else None)
        )
        ok = failure is None and not unknown
        OUTCOMES.labels(action.action, "applied" if ok else "failed").inc()
        return ModerationCompleted(
            **envelope,
            payload=ModerationOutcome(
                action_id=action.action_id,
                channel_id=action.channel_id,
                action=action.action,
                ok=ok,
                reason=reason[:1000] if reason else None,
                at=now,
            ),
        )

    async def _publish(self, outcome: Event) -> None:
        kind: Literal["reply", "moderation"] = (
            "reply" if isinstance(outcome, ReplySent | ReplyFailed) else "moderation"
        )
        channel_id = outcome.payload.channel_id  # type: ignore[attr-defined]
        try:
            await self._bus.publish(outcome_subject(kind, channel_id), outcome)
        except BusUnavailable as exc:
            raise TransientError(str(exc)) from exc  # retried in place; the mark keeps it from being resent

    async def _mark(self, key: str) -> bytes | None:
        try:
            entry = await self._attempts.get(key)
        except (KeyNotFoundError, KeyDeletedError):
            return None
        except (NatsError, JetStreamError, TimeoutError) as exc:
            raise TransientError(f"send-attempts read failed: {exc}") from exc
        return entry.value or None

    async def _set_mark(self, key: str, value: bytes) -> None:
        try:
            await self._attempts.put(key, value)
        except (NatsError, JetStreamError, TimeoutError) as exc:
            raise TransientError(f"send-attempts write failed: {exc}") from exc


def _attempt_key(event: ReplyRequested | ModerationRequested) -> str:
    if isinstance(event, ReplyRequested):
        return f"reply.{event.payload.message_id}"
    return f"moderation.{event.payload.action_id}"


async def _keep_alive(batch: Sequence[Delivery], every: float = 10.0) -> None:
    """Tell JetStream the batch is being worked on while sends wait on rate limits."""
    while True:
        await asyncio.sleep(every)
        for delivery in batch:
            with contextlib.suppress(NatsError, JetStreamError):
                await delivery.msg.in_progress()
