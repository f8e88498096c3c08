"""One attempt of a delivery: sign, check the destination, POST, time it, keep the start of the answer."""

from __future__ import annotations

import asyncio
import socket
import time
from collections.abc import Awaitable, Callable

import httpx

from services.inbox.deliveries.metrics import ATTEMPT_SECONDS, ATTEMPTS
from services.inbox.service import webhooks as service
from services.inbox.service.webhooks import AttemptResult, Claimed
from shared.events import utcnow

USER_AGENT = "Piazza-Webhooks/1.0"
_EXCERPT_BYTES = service.EXCERPT_CHARS * 4


Resolver = Callable[[str, int], Awaitable[list[str]]]
"""Resolves a host name and port to IP addresses (replaced in tests that have no DNS)."""


class PrivateDestination(Exception):
    """The endpoint's name resolves to a loopback, private or link-local address."""


class Sender:
    """Makes one attempt of a delivery: sign, POST, time it, keep the start of the answer."""

    def __init__(
        self,
        http: httpx.AsyncClient,
        *,
        timeout: float,
        allow_private: bool,
        resolve: Resolver | None = None,
    ) -> None:
        self._http = http
        self._timeout = timeout
        self._allow_private = allow_private
        self._resolve = resolve or resolve_host

    async def send(self, claimed: Claimed) -> AttemptResult:
        """POST the delivery; every failure becomes a result, never an exception."""
        attempted_at = utcnow()
        if not claimed.secrets:
            ATTEMPTS.labels("error").inc()
            return AttemptResult(
                attempted_at=attempted_at,
                response_ms=0,
                error="not sent: the signing secret does not open with PIAZZA_SECRET_KEYS; rotate it",
            )
        timestamp = int(attempted_at.timestamp())
        body = claimed.payload.encode()
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            "webhook-id": claimed.event_id,
            "webhook-timestamp": str(timestamp),
            "webhook-signature": service.signature_header(claimed.secrets, claimed.event_id, timestamp, body),
        }
        started = time.perf_counter()
        status_code: int | None = None
        excerpt: str | None = None
        error: str | None = None
        kind = "error"
        try:
            async with asyncio.timeout(self._timeout):
                if not self._allow_private:
                    await self._check_destination(claimed.url)
                async with self._http.stream("POST", claimed.url, content=body, headers=headers) as response:
                    status_code = response.status_code
                    kind = f"{status_code // 100}xx"
                    excerpt = await _excerpt(response)
        except (TimeoutError, httpx.TimeoutException):
            error, kind = f"no answer within {self._timeout:g} s", "timeout"
        except PrivateDestination as exc:
            error = str(exc)
        except (httpx.HTTPError, OSError) as exc:
            error = describe(exc)
        seconds = time.perf_counter() - started
        ATTEMPT_SECONDS.observe(seconds)
        ATTEMPTS.labels(kind).inc()
        return AttemptResult(
            attempted_at=attempted_at,
            response_ms=round(seconds * 1000),
            status_code=status_code,
            error=error,
            response_excerpt=excerpt,
        )

    async def _check_destination(self, url: str) -> None:
        parsed = httpx.URL(url)
        if not service.is_public_host(parsed.host):
            raise PrivateDestination("the URL points at a loopback, private or link-local address")
        try:
            service.is_public_address(parsed.host)
        except ValueError:
            pass  # a name: resolve it below
        else:
            return
        try:
            addresses = await self._resolve(
                parsed.host, parsed.port or (443 if parsed.scheme == "https" else 80)
            )
        except OSError as exc:
            raise PrivateDestination(f"the host name does not resolve ({exc})") from exc
        if not addresses or any(not service.is_public_address(address) for address in addresses):
            raise PrivateDestination("the host name resolves to a loopback, private or link-local address")


async def resolve_host(host: str, port: int) -> list[str]:
    """The addresses a host name resolves to."""
    infos = await asyncio.get_running_loop().getaddrinfo(host, port, type=socket.SOCK_STREAM)
    return [str(info[4][0]) for info in infos]


async def _excerpt(response: httpx.Response) -> str | None:
    """The start of the answer, read no further than the log keeps."""
    chunks: list[bytes] = []
    size = 0
    async for chunk in response.aiter_bytes():
        chunks.append(chunk)
        size += len(chunk)
        if size >= _EXCERPT_BYTES:
            break
    if not size:
        return None
    return b"".join(chunks)[:_EXCERPT_BYTES].decode("utf-8", errors="replace")[: service.EXCERPT_CHARS]


def describe(exc: BaseException) -> str:
    """An exception as ``Type: first line``, for the delivery log."""
    text = str(exc).strip().splitlines()
    return f"{type(exc).__name__}: {text[0]}" if text else type(exc).__name__
