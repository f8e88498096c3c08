"""Reddit accounts as channel accounts: credentials checked with Reddit, and the subreddits followed."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Callable, Sequence
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
from shared.platforms.reddit.client import (
    RedditClient,
    RedditCredentials,
    RedditCredentialsRefused,
    RedditError,
    RedditForbidden,
    RedditNotFound,
    RedditRateLimited,
    RedditRedirected,
)
from shared.platforms.reddit.credentials import credentials_from_record

RedditFactory = Callable[[RedditCredentials], RedditClient]
"""Builds a Reddit API client for credentials."""


@asynccontextmanager
async def reddit_errors(action: str) -> AsyncIterator[None]:
    """Turn Reddit API failures into answers a caller can act on."""
    try:
        yield
    except RedditCredentialsRefused as exc:
        raise BadRequest(
            f"Reddit refused the credentials: {exc.description}.", code="invalid_credentials"
        ) from None
    except RedditRateLimited as exc:
        raise ServiceUnavailable(
            f"Reddit asks to wait before {action}.", retry_after=int(exc.retry_after or 1) + 1
        ) from None
    except RedditError as exc:
        if exc.retryable:
            raise ServiceUnavailable(f"Reddit is unreachable while {action}; nothing was changed.") from None
        raise BadRequest(f"Reddit refused {action}: {exc.description}", code="reddit_rejected") from None


async def _check_subreddits(client: RedditClient, names: Sequence[str]) -> None:
    for name in names:
        try:
            await client.listing(f"/r/{name}/new", limit=1)
        except RedditNotFound:
            raise BadRequest(f"There is no subreddit r/{name}.", code="unknown_subreddit") from None
        except (RedditForbidden, RedditRedirected):
            raise BadRequest(
                f"r/{name} is private, banned or quarantined for this account.", code="subreddit_unavailable"
            ) from None


async def create_reddit_channel(
    session: AsyncSession,
    directory: ChannelDirectory,
    box: SecretBox,
    reddit: RedditFactory,
    *,
    workspace_id: uuid.UUID,
    credentials: RedditCredentials,
    inbox: bool,
    subreddits: Sequence[str],
    backfill: int,
    mark_read: str,
    name: str | None,
    now: datetime,
) -> Channel:
    """Register an account: the credentials must get a token and name the account; once per account."""
    client = reddit(credentials)
    async with reddit_errors("checking the credentials"):
        me = await client.me()
        await _check_subreddits(client, subreddits)
    username = str(me["name"])
    if await repo.channel_with_reddit_account(session, username) is not None:
        raise Conflict(f"u/{username} is already connected as a channel.", code="account_already_connected")
    secrets = _sealed(box, credentials)
    channel = Channel(
        id=uuid.uuid4(),
        workspace_id=workspace_id,
        type="reddit",
        name=name or f"u/{username}",
        status="active",
        config={
            "client_id": credentials.client_id,
            "user_agent": credentials.user_agent,
            "username": username,
            "account_key": username.lower(),
            "inbox": inbox,
            "subreddits": list(subreddits),
            "backfill": backfill,
            "mark_read": mark_read,
        },
        secrets=secrets,
        created_at=now,
        updated_at=now,
        last_event_at=None,
    )
    await repo.add_channel(session, channel)
    await directory.put(to_record(channel))
    return channel


async def replace_credentials(
    session: AsyncSession,
    box: SecretBox,
    reddit: RedditFactory,
    *,
    workspace_id: uuid.UUID,
    channel_id: uuid.UUID,
    password: str | None,
    refresh_token: str | None,
    client_secret: str | None,
) -> Channel:
    """Give a channel new credentials (after a password change or a revoked refresh token); they
    must get a token and act as the same account (the caller publishes)."""
    channel = await _reddit_channel(session, workspace_id, channel_id, "credentials")
    current = credentials_from_record(to_record(channel), box)
    credentials = RedditCredentials(
        client_id=current.client_id,
        client_secret=client_secret if client_secret is not None else current.client_secret,
        user_agent=current.user_agent,
        username=current.username if refresh_token is None else None,
        password=password if password is not None else current.password,
        refresh_token=refresh_token
        if refresh_token is not None
        else (None if password else current.refresh_token),
    )
    async with reddit_errors("checking the credentials"):
        me = await reddit(credentials).me()
    if str(me["name"]).lower() != channel.config["account_key"]:
        raise BadRequest(
            f"These credentials act as u/{me['name']}, not u/{channel.config['username']}.",
            code="different_account",
        )
    kept = [s for s in channel.secrets if s["purpose"] not in ("client_secret", "password", "refresh_token")]
    channel.secrets = kept + _sealed(box, credentials)
    return channel


async def _reddit_channel(
    session: AsyncSession, workspace_id: uuid.UUID, channel_id: uuid.UUID, what: str
) -> Channel:
    channel = await repo.get_channel(session, workspace_id, channel_id, for_update=True)
    if channel is None:
        raise ChannelNotFound(f"channel {channel_id} not found")
    if channel.type != "reddit":
        raise BadRequest(f"Only Reddit channels have {what} to change.", code=f"{what}_not_applicable")
    return channel


def _sealed(box: SecretBox, credentials: RedditCredentials) -> list[dict[str, object]]:
    return [
        SealedSecret(sealed=box.seal(value), purpose=purpose).model_dump(mode="json")
        for purpose, value in (
            ("client_secret", credentials.client_secret),
            ("password", credentials.password),
            ("refresh_token", credentials.refresh_token),
        )
        if value
    ]


async def set_subreddits(
    session: AsyncSession,
    box: SecretBox,
    reddit: RedditFactory,
    *,
    workspace_id: uuid.UUID,
    channel_id: uuid.UUID,
    subreddits: Sequence[str],
) -> Channel:
    """Follow exactly ``subreddits``; the new ones are checked with Reddit (the caller publishes)."""
    channel = await _reddit_channel(session, workspace_id, channel_id, "subreddits")
    known = {s.lower() for s in channel.config.get("subreddits", [])}
    added = [s for s in subreddits if s.lower() not in known]
    if added:
        async with reddit_errors("checking the subreddits"):
            await _check_subreddits(reddit(credentials_from_record(to_record(channel), box)), added)
    channel.config = {**channel.config, "subreddits": list(subreddits)}
    return channel


async def set_mark_read(
    session: AsyncSession, *, workspace_id: uuid.UUID, channel_id: uuid.UUID, mark_read: str
) -> Channel:
    """Change when the account's inbox items are marked read on Reddit (the caller publishes)."""
    channel = await _reddit_channel(session, workspace_id, channel_id, "mark_read")
    channel.config = {**channel.config, "mark_read": mark_read}
    return channel
