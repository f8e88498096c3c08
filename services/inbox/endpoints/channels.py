"""``/v1/channels``: register channel accounts and watch their health."""

from __future__ import annotations

import asyncio
from datetime import datetime, timedelta
from typing import Annotated
from uuid import UUID

from fastapi import APIRouter, Query, Response, status

from services.inbox.dependencies import AdminDep, PrincipalDep, StateDep
from services.inbox.errors import InvalidCursor
from services.inbox.models import Channel
from services.inbox.schemas import (
    BackfillOut,
    ChannelCreate,
    ChannelHealthOut,
    ChannelOut,
    ChannelProblemOut,
    ChannelUpdate,
    ChannelWithSecret,
    Page,
    RedditChannelCreate,
    TelegramChannelCreate,
)
from services.inbox.service import channels as service
from services.inbox.service import reddit, telegram
from services.inbox.state import InboxState
from shared.bus.client import BusUnavailable
from shared.errors import ServiceUnavailable
from shared.events import utcnow
from shared.http.pagination import CursorError, decode_cursor, encode_cursor
from shared.logging import get_logger
from shared.platforms.reddit.client import RedditCredentials

log = get_logger(__name__)

router = APIRouter(prefix="/v1/channels", tags=["channels"])


def _webhook_url(state: InboxState, channel: Channel) -> str | None:
    public = state.settings.public_url.rstrip("/")
    if channel.type == "webhook":
        return f"{public}/webhooks/{channel.id}"
    if channel.type == "telegram" and channel.config.get("mode") == "webhook":
        return telegram.webhook_url(public, channel.id)
    return None


async def _shape(state: InboxState, channel: Channel) -> ChannelOut:
    try:
        report = await state.health_board.read(channel.id)
    except BusUnavailable:
        report = None  # health is advisory; the channel itself is still served
    health = service.health(channel, report)
    username = channel.config.get("bot_username")
    account = f"@{username}" if username else None
    if channel.type == "reddit":
        account = f"u/{channel.config.get('username')}"
    return ChannelOut(
        id=channel.id,
        type=channel.type,
        name=channel.name,
        status=channel.status,
        mode=channel.config.get("mode"),
        account=account,
        subreddits=channel.config.get("subreddits") if channel.type == "reddit" else None,
        mark_read=channel.config.get("mark_read", "stored") if channel.type == "reddit" else None,
        webhook_url=_webhook_url(state, channel),
        created_at=channel.created_at,
        updated_at=channel.updated_at,
        health=ChannelHealthOut(
            status=health.status,
            last_event_at=health.last_event_at,
            connected=health.connected,
            last_update_at=health.last_update_at,
            backlog=health.backlog,
            last_error=ChannelProblemOut.model_validate(health.last_error.model_dump())
            if health.last_error
            else None,
            warnings=[ChannelProblemOut.model_validate(w.model_dump()) for w in report.warnings]
            if report
            else [],
            throttled_until=report.throttled_until if report else None,
            backfill=[BackfillOut.model_validate(b.model_dump()) for b in report.backfill] if report else [],
        ),
    )


@router.post("", status_code=status.HTTP_201_CREATED)
async def create_channel(
    body: ChannelCreate, principal: AdminDep, state: StateDep, response: Response
) -> ChannelWithSecret:
    """Register a channel account: a webhook source (its signing secret is in this response only:
    store it), a Telegram bot (its token is checked with Telegram, sealed, and never shown again), or a
    Reddit account (its credentials are checked with Reddit, sealed, and never shown again)."""
    secret = None
    try:
        async with state.transaction() as session:
            if isinstance(body, TelegramChannelCreate):
                channel = await telegram.create_telegram_channel(
                    session,
                    state.directory,
                    state.box,
                    state.telegram,
                    workspace_id=principal.workspace_id,
                    token=body.bot_token.get_secret_value(),
                    mode=body.mode,
                    name=body.name,
                    public_url=state.settings.public_url,
                    now=utcnow(),
                )
            elif isinstance(body, RedditChannelCreate):
                channel = await reddit.create_reddit_channel(
                    session,
                    state.directory,
                    state.box,
                    state.reddit,
                    workspace_id=principal.workspace_id,
                    credentials=RedditCredentials(
                        client_id=body.client_id,
                        client_secret=body.client_secret.get_secret_value(),
                        user_agent=body.user_agent,
                        username=body.username if body.password else None,
                        password=body.password.get_secret_value() if body.password else None,
                        refresh_token=body.refresh_token.get_secret_value() if body.refresh_token else None,
                    ),
                    inbox=body.inbox,
                    subreddits=body.subreddits,
                    backfill=body.backfill,
                    mark_read=body.mark_read,
                    name=body.name,
                    now=utcnow(),
                )
            else:
                channel, secret = await service.create_webhook_channel(
                    session, state.directory, state.box, principal.workspace_id, body.name, utcnow()
                )
    except BusUnavailable as exc:
        raise ServiceUnavailable("The channel directory (NATS) is unavailable; nothing was created.") from exc
    log.info("inbox.channel.created", channel_id=str(channel.id), type=channel.type)
    response.headers["Location"] = f"/v1/channels/{channel.id}"
    shaped = await _shape(state, channel)
    return ChannelWithSecret(**shaped.model_dump(), signing_secret=secret)


@router.patch("/{channel_id}")
async def update_channel(
    channel_id: UUID, body: ChannelUpdate, principal: AdminDep, state: StateDep
) -> ChannelOut:
    """Rename a channel, switch a Telegram bot between polling and webhook mode (Piazza sets or
    removes the bot's webhook), or change the subreddits a Reddit account follows or its credentials
    (after a password change or a revoked refresh token: polling resumes with them)."""
    try:
        async with state.transaction() as session:
            if body.new_credentials:
                await reddit.replace_credentials(
                    session,
                    state.box,
                    state.reddit,
                    workspace_id=principal.workspace_id,
                    channel_id=channel_id,
                    password=body.password.get_secret_value() if body.password else None,
                    refresh_token=body.refresh_token.get_secret_value() if body.refresh_token else None,
                    client_secret=body.client_secret.get_secret_value() if body.client_secret else None,
                )
            if body.mark_read is not None:
                await reddit.set_mark_read(
                    session,
                    workspace_id=principal.workspace_id,
                    channel_id=channel_id,
                    mark_read=body.mark_read,
                )
            if body.subreddits is not None:
                await reddit.set_subreddits(
                    session,
                    state.box,
                    state.reddit,
                    workspace_id=principal.workspace_id,
                    channel_id=channel_id,
                    subreddits=body.subreddits,
                )
            channel = await telegram.update_channel(
                session,
                state.directory,
                state.box,
                state.telegram,
                workspace_id=principal.workspace_id,
                channel_id=channel_id,
                name=body.name,
                mode=body.mode,
                public_url=state.settings.public_url,
                now=utcnow(),
            )
    except BusUnavailable as exc:
        raise ServiceUnavailable("The channel directory (NATS) is unavailable; nothing was changed.") from exc
    return await _shape(state, channel)


@router.get("")
async def list_channels(
    principal: PrincipalDep,
    state: StateDep,
    cursor: str | None = None,
    limit: Annotated[int, Query(ge=1, le=200)] = 50,
) -> Page[ChannelOut]:
    """The workspace's channel accounts, oldest first."""
    after = None
    if cursor is not None:
        try:
            after = decode_cursor(cursor, datetime, UUID)
        except CursorError as exc:
            raise InvalidCursor(str(exc)) from exc
    async with state.reading() as session:
        channels = await service.list_channels(session, principal.workspace_id, after, limit + 1)
    page = channels[:limit]
    return Page[ChannelOut](
        data=list(await asyncio.gather(*(_shape(state, c) for c in page))),
        has_more=len(channels) > limit,
        next_cursor=encode_cursor(page[-1].created_at, page[-1].id) if page else cursor,
    )


@router.get("/{channel_id}")
async def get_channel(channel_id: UUID, principal: PrincipalDep, state: StateDep) -> ChannelOut:
    """One channel account with its health: last event stored, last problem a connector saw."""
    async with state.reading() as session:
        channel = await service.get_channel(session, principal.workspace_id, channel_id)
    return await _shape(state, channel)


@router.post("/{channel_id}/rotate-secret")
async def rotate_secret(channel_id: UUID, principal: AdminDep, state: StateDep) -> ChannelWithSecret:
    """Issue a new signing secret; the previous one keeps verifying for the grace period (24 h)."""
    grace = timedelta(hours=state.settings.secret_grace_hours)
    try:
        async with state.transaction() as session:
            channel, secret = await service.rotate_secret(
                session, state.directory, state.box, principal.workspace_id, channel_id, utcnow(), grace
            )
    except BusUnavailable as exc:
        raise ServiceUnavailable(
            "The channel directory (NATS) is unavailable; the secret is unchanged."
        ) from exc
    shaped = await _shape(state, channel)
    return ChannelWithSecret(**shaped.model_dump(), signing_secret=secret)
