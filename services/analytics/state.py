"""What the analytics API process holds for its requests."""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass

from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from services.analytics.auth import Identity
from services.analytics.config import AnalyticsSettings


@dataclass
class AnalyticsState:
    """The analytics API's engine, sessions and identity client."""

    settings: AnalyticsSettings
    engine: AsyncEngine
    sessions: async_sessionmaker[AsyncSession]
    read_sessions: async_sessionmaker[AsyncSession]
    identity: Identity

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session in a transaction committed at the end (rolled back on error)."""
        async with self.sessions() as session, session.begin():
            yield session

    @asynccontextmanager
    async def reading(self) -> AsyncIterator[AsyncSession]:
        """A session for reads only."""
        async with self.read_sessions() as session:
            yield session
