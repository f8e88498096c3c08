"""Channel accounts."""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from sqlalchemy import and_, or_, select
from sqlalchemy.ext.asyncio import AsyncSession

from services.inbox.models import Channel


async def add_channel(session: AsyncSession, channel: Channel) -> None:
    """Store a new channel."""
    session.add(channel)
    await session.flush()


async def get_channel(
    session: AsyncSession, workspace_id: UUID, channel_id: UUID, *, for_update: bool = False
) -> Channel | None:
    """A channel of the workspace; ``for_update`` locks its row until the transaction ends."""
    query = select(Channel).where(Channel.id == channel_id, Channel.workspace_id == workspace_id)
    return await session.scalar(query.with_for_update() if for_update else query)


async def list_channels(
    session: AsyncSession, workspace_id: UUID, after: tuple[datetime, UUID] | None, limit: int
) -> list[Channel]:
    """The workspace's channels, oldest first, after a keyset position."""
    query = select(Channel).where(Channel.workspace_id == workspace_id)
    if after is not None:
        created_at, channel_id = after
        query = query.where(
            or_(
                Channel.created_at > created_at,
                and_(Channel.created_at == created_at, Channel.id > channel_id),
            )
        )
    query = query.order_by(Channel.created_at, Channel.id).limit(limit)
    return list((await session.scalars(query)).all())


async def all_channels(session: AsyncSession) -> list[Channel]:
    """Every channel of every workspace (to publish the directory)."""
    return list((await session.scalars(select(Channel))).all())


async def channel_with_reddit_account(session: AsyncSession, username: str) -> Channel | None:
    """The Reddit channel of an account, in any workspace (an account is polled by one channel only)."""
    return await session.scalar(
        select(Channel).where(
            Channel.type == "reddit", Channel.config["account_key"].as_string() == username.lower()
        )
    )


async def channel_with_bot(session: AsyncSession, bot_id: int) -> Channel | None:
    """The Telegram channel of a bot, in any workspace (a bot can be polled by one channel only).

    Bot ids reach 52 bits, so the configuration keeps them as text.
    """
    return await session.scalar(
        select(Channel).where(Channel.type == "telegram", Channel.config["bot_id"].as_string() == str(bot_id))
    )
