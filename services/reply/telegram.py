"""Sending replies and moderation actions through the Telegram Bot API.

Where a reply goes is read from the conversation's key (see
``shared.platforms.telegram.normalize``): the chat, a forum topic, a business connection, or the
discussion thread of a channel post (only as a reply to one of its comments).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, TypeVar

import httpx

from services.reply.config import ReplySettings
from services.reply.limits import SendLimits
from shared.events.commands import ModerationRequest, ReplyFailureCode, ReplyRequest
from shared.platforms.telegram.client import (
    TelegramChatMigrated,
    TelegramClient,
    TelegramError,
    TelegramForbidden,
    TelegramInvalidToken,
    TelegramNoAnswer,
    TelegramRetryAfter,
)
from shared.platforms.telegram.text import split_text

T = TypeVar("T")


class SendFailure(Exception):
    """The platform refused, or could not be reached within the attempts; ``code`` says which."""

    def __init__(self, code: ReplyFailureCode, reason: str) -> None:
        super().__init__(reason)
        self.code = code
        self.reason = reason


@dataclass(frozen=True)
class Target:
    """Where a message goes in Telegram's terms."""

    chat_id: int
    thread_id: int | None = None
    business_connection_id: str | None = None
    reply_to: int | None = None

    @property
    def group(self) -> bool:
        """Groups, supergroups and channels have negative ids (and a per-minute limit)."""
        return self.chat_id < 0

    def external_id(self, message_id: int) -> str:
        """The external id Piazza gives this message (as the connector would)."""
        prefix = f"b:{self.business_connection_id}:" if self.business_connection_id else ""
        return f"{prefix}{self.chat_id}:{message_id}"


def _split_message_id(external_id: str) -> tuple[str | None, int, int]:
    """(business connection, chat, message) of an external message id."""
    parts = external_id.split(":")
    if parts[0] == "b" and len(parts) == 4:
        return parts[1], int(parts[2]), int(parts[3])
    return None, int(parts[0]), int(parts[1])


def target_for(request: ReplyRequest) -> Target:
    """Read where to send a reply from the conversation key and the message it answers."""
    key = request.thread_external_id
    reply: tuple[str | None, int, int] | None = None
    if request.reply_to_external_id:
        try:
            reply = _split_message_id(request.reply_to_external_id)
        except (ValueError, IndexError):
            reply = None
    try:
        if key.startswith("b:"):
            _, connection, chat = key.split(":", 2)
            return Target(int(chat), business_connection_id=connection, reply_to=reply[2] if reply else None)
        if ":topic:" in key:
            chat, topic = key.split(":topic:")
            return Target(int(chat), thread_id=int(topic), reply_to=reply[2] if reply else None)
        if ":post:" in key:
            thread = request.reply_to_meta.get("message_thread_id")
            if reply is None or reply[1] == int(key.split(":post:")[0]) or thread is None:
                raise SendFailure(
                    "unsupported",
                    "Reply to one of the post's comments: Piazza answers in the post's discussion thread.",
                )
            return Target(reply[1], thread_id=int(thread), reply_to=reply[2])
        return Target(int(key), reply_to=reply[2] if reply else None)
    except ValueError:
        raise SendFailure(
            "unsupported", f"Piazza cannot tell where to send in conversation {key!r}."
        ) from None


class TelegramSender:
    """Calls the Bot API for the reply service, paced and retried as Telegram asks."""

    def __init__(self, http: httpx.AsyncClient, settings: ReplySettings, limits: SendLimits) -> None:
        self._http = http
        self._settings = settings
        self._limits = limits

    def _client(self, token: str) -> TelegramClient:
        return TelegramClient(token, base_url=self._settings.telegram_api_url, http=self._http)

    async def send(self, token: str, bot: str, request: ReplyRequest) -> list[str]:
        """Send a reply (split into parts of at most 4096 UTF-16 units); returns each part's id.

        Raises :class:`SendFailure`, or ``TelegramNoAnswer`` when a part may or may not have gone.
        """
        client = self._client(token)
        target = target_for(request)
        sent: list[str] = []
        parts = split_text(request.text)
        for number, part in enumerate(parts):
            reply_to = target.reply_to if number == 0 else None
            try:
                message = await self._call(
                    bot,
                    target,
                    lambda t, part=part, reply_to=reply_to: client.send_message(  # type: ignore[misc]
                        t.chat_id,
                        part,
                        message_thread_id=t.thread_id,
                        reply_to_message_id=reply_to,
                        business_connection_id=t.business_connection_id,
                    ),
                    paced=True,
                )
            except SendFailure as failure:
                if sent:
                    raise SendFailure(
                        failure.code, f"only {len(sent)} of {len(parts)} parts were sent: {failure.reason}"
                    ) from None
                raise
            target = _moved(target, message)
            sent.append(target.external_id(int(message["message_id"])))
        return sent

    async def moderate(self, token: str, bot: str, request: ModerationRequest) -> None:
        """Delete a message, or ban or unban a user; raises :class:`SendFailure` when refused."""
        client = self._client(token)
        if request.action == "delete_message":
            if not request.message_external_id:
                raise SendFailure("rejected", "no message to delete")
            connection, chat, message_id = _split_message_id(request.message_external_id)
            target = Target(chat, business_connection_id=connection)
            await self._call(bot, target, lambda t: client.delete_message(t.chat_id, message_id), paced=False)
            return
        if not request.user_external_id:
            raise SendFailure("rejected", "no user to ban or unban")
        user = int(request.user_external_id)
        target = Target(int(request.thread_external_id.split(":", 1)[0]))
        if request.action == "ban":
            await self._call(bot, target, lambda t: client.ban_chat_member(t.chat_id, user), paced=False)
        else:
            await self._call(bot, target, lambda t: client.unban_chat_member(t.chat_id, user), paced=False)

    async def _call(
        self, bot: str, target: Target, call: Callable[[Target], Awaitable[T]], *, paced: bool
    ) -> T:
        """One Bot API call: paced, waiting out 429s, following a migrated group, retrying what failed
        before reaching Telegram, refusing to repeat what may have run."""
        attempt = 0
        while True:
            try:
                if paced:
                    async with self._limits.slot(bot, str(target.chat_id), group=target.group):
                        return await call(target)
                return await call(target)
            except TelegramRetryAfter as exc:
                await asyncio.sleep((exc.retry_after or 1) + 0.5)  # not an attempt: Telegram said when
            except TelegramChatMigrated as exc:
                if exc.migrate_to_chat_id is None or exc.migrate_to_chat_id == target.chat_id:
                    raise SendFailure("rejected", exc.description) from None
                target = Target(
                    exc.migrate_to_chat_id, target.thread_id, target.business_connection_id, target.reply_to
                )
            except TelegramNoAnswer:
                raise
            except TelegramForbidden as exc:
                raise SendFailure("forbidden", exc.description) from None
            except TelegramInvalidToken as exc:
                raise SendFailure("rejected", f"the bot token is refused ({exc.description})") from None
            except TelegramError as exc:
                if not exc.retryable:
                    code: ReplyFailureCode = "too_long" if "too long" in exc.description else "rejected"
                    raise SendFailure(code, exc.description) from None
                attempt += 1
                if attempt >= self._settings.attempts:
                    raise SendFailure(
                        "unreachable", f"{exc.description} (after {attempt} attempts)"
                    ) from None
                await asyncio.sleep(self._settings.retry_base_seconds * 2 ** (attempt - 1))


def _moved(target: Target, message: dict[str, Any]) -> Target:
    """Follow the chat a message actually went to (a migrated group has a new id)."""
    chat = (message.get("chat") or {}).get("id")
    if isinstance(chat, int) and chat != target.chat_id:
        return Target(chat, target.thread_id, target.business_connection_id, None)
    return Target(target.chat_id, target.thread_id, target.business_connection_id, None)
