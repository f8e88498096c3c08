"""Pacing outgoing messages under the platform's rate limits (token buckets from ``aiolimiter``)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager

from aiolimiter import AsyncLimiter

from services.reply.config import ReplySettings


class SendLimits:
    """Per bot, per chat and per group buckets; a send waits for a token from each that applies.

    A chat and the bot get one message per interval, evenly spaced (Telegram tolerates short bursts,
    but not reliably); a group may use its per-minute budget at once, as Telegram's own bucket allows."""

    def __init__(self, settings: ReplySettings) -> None:
        self._settings = settings
        self._bots: dict[str, AsyncLimiter] = {}
        self._chats: dict[tuple[str, str], AsyncLimiter] = {}
        self._groups: dict[tuple[str, str], AsyncLimiter] = {}

    @asynccontextmanager
    async def slot(self, bot: str, chat: str, *, group: bool) -> AsyncIterator[None]:
        """Wait until a message to ``chat`` through ``bot`` keeps every limit."""
        settings = self._settings
        buckets = [
            self._bots.setdefault(bot, AsyncLimiter(1, 1.0 / settings.per_bot_per_second)),
            self._chats.setdefault((bot, chat), AsyncLimiter(1, 1.0 / settings.per_chat_per_second)),
        ]
        if group:
            buckets.append(
                self._groups.setdefault((bot, chat), AsyncLimiter(settings.per_group_per_minute, 60.0))
            )
        async with AsyncExitStack() as stack:
            for bucket in buckets:
                await stack.enter_async_context(bucket)
            yield
