"""The inbox's per-process state, shared by its endpoints."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from functools import cached_property

import httpx
from cachetools import TTLCache
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, AsyncSession, async_sessionmaker

from services.inbox.config import InboxSettings
from services.inbox.service.access import Principal
from shared.bus.client import Bus
from shared.channels import ChannelDirectory, ChannelHealthBoard
from shared.crypto import SecretBox
from shared.db import read_engine
from shared.platforms.reddit.client import RedditClient, RedditCredentials
from shared.platforms.telegram.client import TelegramClient


@dataclass
class InboxState:
    """Everything the inbox endpoints use, built once per process."""

    settings: InboxSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    read_sessions: async_sessionmaker[AsyncSession]
    bus: Bus
    directory: ChannelDirectory
    health_board: ChannelHealthBoard
    box: SecretBox
    principals: TTLCache[str, Principal]
    http: httpx.AsyncClient
    """Outbound HTTP (platform APIs)."""

    def telegram(self, token: str) -> TelegramClient:
        """A Bot API client for a bot token."""
        return TelegramClient(token, base_url=self.settings.telegram_api_url, http=self.http)

    def reddit(self, credentials: RedditCredentials) -> RedditClient:
        """A Reddit API client acting with ``credentials``."""
        return RedditClient(
            credentials,
            http=self.http,
            auth_url=self.settings.reddit_auth_url,
            api_url=self.settings.reddit_api_url,
        )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction, committed when the block succeeds."""
        async with self.sessions() as session, session.begin():
            yield session

    @cached_property
    def _read_engine(self) -> AsyncEngine:
        return read_engine(self.engine)

    @asynccontextmanager
    async def read_connection(self) -> AsyncIterator[AsyncConnection]:
        """A bare connection for reads (no session, no surrounding transaction): setting up and
        closing a session was a twentieth of a list page's CPU."""
        async with self._read_engine.connect() as connection:
            yield connection

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only: statements run without a surrounding transaction."""
        async with self.read_sessions() as session:
            yield session
