"""Sending replies and moderator actions through the Reddit API.

A reply answers the message it replies to, else the conversation's root (the post, or the first
private message), through ``/api/comment``; a private reply starts a new private message through
``/api/compose``, whose id Reddit does not return: it is looked up in the account's sent messages.
``RATELIMIT`` answers are waited out and the call repeated (nothing was created); errors that will
not change (``THREAD_LOCKED``, ``DELETED_COMMENT``, ``TOO_OLD``...) fail the reply with Reddit's reason.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

import httpx

from services.reply.config import ReplySettings
from services.reply.telegram import SendFailure
from shared.channels import ChannelRecord
from shared.events.commands import ModerationRequest, ReplyFailureCode, ReplyRequest
from shared.platforms.reddit.client import (
    SUBJECT_LIMIT,
    TEXT_LIMIT,
    RedditApiErrors,
    RedditClient,
    RedditCredentials,
    RedditCredentialsRefused,
    RedditError,
    RedditForbidden,
    RedditNoAnswer,
    RedditNotFound,
    RedditRateLimited,
)

T = TypeVar("T")

FAILURE_CODES: dict[str, ReplyFailureCode] = {
    "TOO_LONG": "too_long",
    "USER_BLOCKED": "forbidden",
    "USER_MUTED": "forbidden",
    "THREAD_LOCKED": "forbidden",
    "TOO_OLD": "forbidden",
    "DELETED_COMMENT": "rejected",
    "NO_TEXT": "rejected",
    "USER_DOESNT_EXIST": "rejected",
}
"""``json.errors`` codes as reply failures (anything else is ``rejected``)."""

MODERATION_CALLS: dict[str, tuple[str, dict[str, str]]] = {
    "remove": ("remove", {"spam": "false"}),  # Reddit's default is spam=true: always say it
    "remove_spam": ("remove", {"spam": "true"}),
    "approve": ("approve", {}),
    "lock": ("lock", {}),
    "unlock": ("unlock", {}),
}


class RedditSender:
    """Calls the Reddit API for the reply service: one client (token, rate limiter) per account."""

    def __init__(self, http: httpx.AsyncClient, settings: ReplySettings) -> None:
        self._http = http
        self._settings = settings
        self._clients: dict[tuple[str, str], RedditClient] = {}

    def _client(self, channel: ChannelRecord, credentials: RedditCredentials) -> RedditClient:
        key = (str(channel.id), channel.updated_at.isoformat())
        client = self._clients.get(key)
        if client is None:
            client = RedditClient(
                credentials,
                http=self._http,
                auth_url=self._settings.reddit_auth_url,
                api_url=self._settings.reddit_api_url,
            )
            self._clients = {k: v for k, v in self._clients.items() if k[0] != key[0]}
            self._clients[key] = client
        return client

    async def send(
        self, channel: ChannelRecord, credentials: RedditCredentials, request: ReplyRequest
    ) -> list[str]:
        """Send a reply; returns the created item's fullname (none when Reddit does not say).

        Raises :class:`SendFailure`, or ``RedditNoAnswer`` when it may or may not have been created.
        """
        if len(request.text) > TEXT_LIMIT:
            raise SendFailure("too_long", f"Reddit takes at most {TEXT_LIMIT} characters")
        client = self._client(channel, credentials)
        if request.private_to:
            return await self._compose(client, request)
        thing_id = request.reply_to_external_id or request.thread_external_id
        created = await self._call(lambda: client.comment(thing_id, request.text))
        name = created.get("name") if created else None
        return [str(name)] if name else []

    async def _compose(self, client: RedditClient, request: ReplyRequest) -> list[str]:
        assert request.private_to is not None
        subject = (request.subject or "a message for you")[:SUBJECT_LIMIT]
        started = time.time()
        await self._call(lambda: client.compose(request.private_to or "", subject, request.text))
        # Reddit does not say which message it created: find it among the account's sent messages.
        try:
            sent = await client.listing("/message/sent/", limit=25)
        except RedditError:
            return []
        for kind, data in sent.children:
            if (
                kind == "t4"
                and str(data.get("dest", "")).lower() == request.private_to.lower()
                and data.get("subject") == subject
                and data.get("body") == request.text
                and float(data.get("created_utc") or 0) >= started - 120
            ):
                return [str(data["name"])]
        return []

    async def mark_read(
        self, channel: ChannelRecord, credentials: RedditCredentials, fullnames: list[str]
    ) -> None:
        """Mark inbox items read, 25 per call; raises :class:`SendFailure` when refused."""
        client = self._client(channel, credentials)
        await self._call(lambda: client.mark_read(fullnames))

    async def moderate(
        self, channel: ChannelRecord, credentials: RedditCredentials, request: ModerationRequest
    ) -> None:
        """Remove, approve, lock or unlock an item, or delete one of the account's own."""
        if not request.message_external_id:
            raise SendFailure("rejected", "no message to act on")
        client = self._client(channel, credentials)
        fullname = request.message_external_id
        if request.action == "delete_message":
            # Reddit deletes only the account's own items; a moderator removes the others.
            action, form = ("del", {}) if request.own else MODERATION_CALLS["remove"]
        elif request.action in MODERATION_CALLS:
            action, form = MODERATION_CALLS[request.action]
        else:
            raise SendFailure("unsupported", f"Reddit has no {request.action}")
        if action in ("lock", "unlock") and fullname.startswith("t4_"):
            raise SendFailure("unsupported", "private messages cannot be locked")
        await self._call(lambda: client.moderate(action, fullname, **form))

    async def _call(self, call: Callable[[], Awaitable[T]]) -> T:
        """One write: waiting out rate limits, retrying what failed before reaching Reddit, refusing
        to repeat what may have been created."""
        attempt = 0
        while True:
            try:
                return await call()
            except RedditRateLimited as exc:
                # Nothing was created: wait as asked (the consumer keeps the command alive meanwhile).
                wait = exc.retry_after or 1.0
                if wait > self._settings.max_rate_limit_wait_seconds:
                    raise SendFailure(
                        "unreachable",
                        f"Reddit asks to wait {wait:g}s, longer than Piazza waits ({exc.description})",
                    ) from None
                await asyncio.sleep(wait)
            except RedditNoAnswer:
                raise
            except RedditApiErrors as exc:
                raise SendFailure(FAILURE_CODES.get(exc.code, "rejected"), exc.description) from None
            except RedditForbidden as exc:
                raise SendFailure("forbidden", exc.description) from None
            except RedditNotFound as exc:
                raise SendFailure("rejected", exc.description) from None
            except RedditCredentialsRefused as exc:
                raise SendFailure(
                    "rejected", f"Reddit refuses the account's credentials ({exc.description})"
                ) from None
            except RedditError as exc:
                if not exc.retryable:
                    raise SendFailure("rejected", exc.description) from None
                attempt += 1
                if attempt >= self._settings.attempts:
                    raise SendFailure(
                        "unreachable", f"{exc.description} (after {attempt} attempts)"
                    ) from None
                await asyncio.sleep(self._settings.retry_base_seconds * 2 ** (attempt - 1))
