"""A small, strict client of the Telegram Bot API (https://core.telegram.org/bots/api).

Every call is a JSON POST to ``{base_url}/bot<token>/<method>``; the answer is checked on both the
HTTP status and the ``ok`` field, and every failure becomes a :class:`TelegramError` subclass that
says how to react (retry after a delay, give up on this chat, stop using the token). The token is in
every URL, so nothing this module raises or logs contains a URL.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import httpx
import orjson

DEFAULT_API_URL = "https://api.telegram.org"


class TelegramError(Exception):
    """A failed Bot API call. ``retryable`` says whether the same call may succeed later."""

    retryable = False

    def __init__(
        self,
        description: str,
        *,
        status: int = 0,
        retry_after: float | None = None,
        migrate_to_chat_id: int | None = None,
    ) -> None:
        super().__init__(description)
        self.description = description
        self.status = status
        self.retry_after = retry_after
        self.migrate_to_chat_id = migrate_to_chat_id


class TelegramNetworkError(TelegramError):
    """The API could not be reached, timed out, or answered something that is not the Bot API."""

    retryable = True


class TelegramUnreachable(TelegramNetworkError):
    """No connection was made: the call certainly did not run, so it is safe to repeat."""


class TelegramNoAnswer(TelegramNetworkError):
    """The request went out but no valid answer came back: the call may have run."""


class TelegramServerError(TelegramError):
    """5xx: Telegram is restarting or overloaded."""

    retryable = True


class TelegramRetryAfter(TelegramError):
    """429: flood control; retry the same call after ``retry_after`` seconds."""

    retryable = True


class TelegramBadRequest(TelegramError):
    """400: the call is wrong for this chat or message (chat not found, text too long, ...)."""


class TelegramChatMigrated(TelegramBadRequest):
    """400 with ``migrate_to_chat_id``: the group became a supergroup with a new id."""


class TelegramForbidden(TelegramError):
    """403: the bot may not act in this chat (blocked by the user, kicked from the group)."""


class TelegramInvalidToken(TelegramError):
    """401/404: the token is wrong or was revoked; nothing will work until it changes."""


class TelegramConflict(TelegramError):
    """409: another poller is running, or a webhook is set."""


def _error(status: int, body: dict[str, Any]) -> TelegramError:
    description = str(body.get("description") or f"HTTP {status}")
    parameters = body.get("parameters") or {}
    retry_after = parameters.get("retry_after")
    migrate_to = parameters.get("migrate_to_chat_id")
    kwargs: dict[str, Any] = {"status": status, "retry_after": retry_after, "migrate_to_chat_id": migrate_to}
    if status == 429:
        return TelegramRetryAfter(description, **{**kwargs, "retry_after": float(retry_after or 1)})
    if status in (401, 404):
        return TelegramInvalidToken(description, **kwargs)
    if status == 409:
        return TelegramConflict(description, **kwargs)
    if status == 403:
        return TelegramForbidden(description, **kwargs)
    if status == 400 and migrate_to is not None:
        return TelegramChatMigrated(description, **kwargs)
    if status >= 500:
        return TelegramServerError(description, **kwargs)
    return TelegramBadRequest(description, **kwargs)


class TelegramClient:
    """One bot's view of the Bot API."""

    def __init__(self, token: str, *, base_url: str = DEFAULT_API_URL, http: httpx.AsyncClient) -> None:
        self._token = token
        self._base = base_url.rstrip("/")
        self._http = http

    async def call(self, method: str, params: dict[str, Any] | None = None, *, timeout: float = 15.0) -> Any:
        """Call a method with JSON parameters; return its ``result`` or raise a TelegramError."""
        body = orjson.dumps({k: v for k, v in (params or {}).items() if v is not None})
        try:
            response = await self._http.post(
                f"{self._base}/bot{self._token}/{method}",
                content=body,
                headers={"content-type": "application/json"},
                timeout=timeout,
            )
        except (httpx.ConnectError, httpx.ConnectTimeout, httpx.PoolTimeout) as exc:
            raise TelegramUnreachable(f"{method}: {type(exc).__name__}") from None
        except httpx.TimeoutException:
            raise TelegramNoAnswer(f"{method}: timed out waiting for the answer") from None
        except httpx.HTTPError as exc:
            raise TelegramNoAnswer(f"{method}: {type(exc).__name__}") from None
        try:
            payload = orjson.loads(response.content)
        except orjson.JSONDecodeError:
            if response.status_code >= 500:
                raise TelegramServerError(
                    f"{method}: HTTP {response.status_code}", status=response.status_code
                ) from None
            if response.status_code == 200:
                raise TelegramNoAnswer(f"{method}: HTTP 200 without a Bot API answer") from None
            raise _error(response.status_code, {}) from None
        if not isinstance(payload, dict):
            raise TelegramNoAnswer(f"{method}: HTTP {response.status_code} without a Bot API answer")
        if response.status_code == 200 and payload.get("ok") is True:
            return payload.get("result")
        status = (
            response.status_code if response.status_code != 200 else int(payload.get("error_code") or 400)
        )
        raise _error(status, payload)

    async def get_me(self) -> dict[str, Any]:
        """The bot's own user; the cheapest way to check a token."""
        result: dict[str, Any] = await self.call("getMe")
        return result

    async def get_updates(
        self, offset: int | None, *, timeout: int, allowed_updates: Sequence[str], limit: int = 100
    ) -> list[dict[str, Any]]:
        """Long-poll for updates; the HTTP timeout outlasts the long poll."""
        params = {
            "offset": offset,
            "timeout": timeout,
            "limit": limit,
            "allowed_updates": list(allowed_updates),
        }
        result: list[dict[str, Any]] = await self.call("getUpdates", params, timeout=timeout + 15)
        return result

    async def set_webhook(self, url: str, *, secret_token: str, allowed_updates: Sequence[str]) -> None:
        """Deliver updates to ``url`` with the secret header."""
        await self.call(
            "setWebhook", {"url": url, "secret_token": secret_token, "allowed_updates": list(allowed_updates)}
        )

    async def delete_webhook(self) -> None:
        """Back to getUpdates; pending updates are kept."""
        await self.call("deleteWebhook", {"drop_pending_updates": False})

    async def send_message(
        self,
        chat_id: int | str,
        text: str,
        *,
        message_thread_id: int | None = None,
        reply_to_message_id: int | None = None,
        business_connection_id: str | None = None,
    ) -> dict[str, Any]:
        """Send a text message; returns the sent Message."""
        reply = (
            {"message_id": reply_to_message_id, "allow_sending_without_reply": True}
            if reply_to_message_id
            else None
        )
        result: dict[str, Any] = await self.call(
            "sendMessage",
            {
                "chat_id": chat_id,
                "text": text,
                "message_thread_id": message_thread_id,
                "reply_parameters": reply,
                "business_connection_id": business_connection_id,
            },
        )
        return result

    async def delete_message(self, chat_id: int | str, message_id: int) -> None:
        """Delete a message (the bot's own, any in a private chat, any in a group it administers)."""
        await self.call("deleteMessage", {"chat_id": chat_id, "message_id": message_id})

    async def ban_chat_member(self, chat_id: int | str, user_id: int) -> None:
        """Ban a user from a group, supergroup or channel."""
        await self.call("banChatMember", {"chat_id": chat_id, "user_id": user_id})

    async def unban_chat_member(self, chat_id: int | str, user_id: int) -> None:
        """Lift a ban (the user may join again; nothing happens if they were not banned)."""
        await self.call("unbanChatMember", {"chat_id": chat_id, "user_id": user_id, "only_if_banned": True})

    async def get_file(self, file_id: str) -> dict[str, Any]:
        """A file's ``file_path`` (valid for at least an hour) and size."""
        result: dict[str, Any] = await self.call("getFile", {"file_id": file_id})
        return result

    async def download(self, file_path: str) -> httpx.Response:
        """Start downloading a file; the caller streams and closes the response."""
        request = self._http.build_request("GET", f"{self._base}/file/bot{self._token}/{file_path}")
        try:
            return await self._http.send(request, stream=True)
        except httpx.HTTPError as exc:
            raise TelegramNetworkError(f"file download: {type(exc).__name__}") from None
