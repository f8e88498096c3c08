"""The rules of outgoing webhooks, without IO: retries, which URLs and events, signing."""

from __future__ import annotations

import ipaddress
import random
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from urllib.parse import urlsplit

from services.inbox.errors import InvalidWebhookSubscription
from services.inbox.models import WebhookSubscription
from shared.config import Environment
from shared.crypto import SecretBox
from shared.events.domain import DOMAIN_TYPES, DomainEvent
from shared.webhooks.signing import sign

DeliveryStatus = Literal["pending", "succeeded", "failed"]
DELIVERY_STATUSES: tuple[DeliveryStatus, ...] = ("pending", "succeeded", "failed")
EXCERPT_CHARS = 1000
"""How much of an endpoint's answer the delivery log keeps."""

_LOCAL_SUFFIXES = (".localhost", ".local", ".internal", ".localdomain")


@dataclass(frozen=True)
class RetryPolicy:
    """When to try a failed delivery again: ``schedule[n - 1] * scale`` seconds after its n-th failed
    attempt, shortened by up to ``jitter`` of itself so that a burst of failures spreads out; after
    ``len(schedule)`` failures (``len(schedule) + 1`` attempts) the delivery has failed."""

    schedule: tuple[float, ...]
    scale: float = 1.0
    jitter: float = 0.2

    def delay(self, failures: int, rng: Callable[[], float] = random.random) -> float | None:
        """Seconds until the attempt after ``failures`` failed ones; None when there is none."""
        if failures < 1 or failures > len(self.schedule):
            return None
        return self.schedule[failures - 1] * self.scale * (1 - self.jitter * rng())

    @property
    def window(self) -> float:
        """Seconds from the first attempt to the last, at most."""
        return sum(self.schedule) * self.scale


def check_url(url: str, *, allow_private: bool) -> str:
    """The URL, if Piazza may POST to it; raises InvalidWebhookSubscription saying why not."""

    def refuse(reason: str) -> InvalidWebhookSubscription:
        return InvalidWebhookSubscription(
            f"The URL cannot be used: {reason}.",
            errors=[{"field": "body.url", "message": reason, "type": "invalid_url"}],
        )

    url = url.strip()
    if not url or len(url) > 2048:
        raise refuse("it must be 1 to 2048 characters long")
    if any(ch.isspace() or ord(ch) < 32 or ord(ch) == 127 for ch in url):
        raise refuse("it must not contain spaces or control characters")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as exc:
        raise refuse(f"it is not a valid URL ({exc})") from exc
    if parts.scheme.lower() not in ("http", "https"):
        raise refuse("only http and https URLs are supported")
    host = (parts.hostname or "").rstrip(".").lower()
    if not host:
        raise refuse("it has no host")
    if parts.username is not None or parts.password is not None:
        raise refuse("it must not carry credentials; verify the signature instead")
    if port == 0:
        raise refuse("port 0 is not a port")
    if not allow_private and not is_public_host(host):
        raise refuse("it points at a loopback, private or link-local address")
    return url


def is_public_host(host: str) -> bool:
    """False for names and addresses that are local by definition (``localhost``, 10.0.0.0/8 ...).
    Names are resolved before each attempt and checked again (:func:`is_public_address`)."""
    host = host.strip("[]").rstrip(".").lower()
    if host == "localhost" or host.endswith(_LOCAL_SUFFIXES):
        return False
    try:
        return is_public_address(host)
    except ValueError:
        return True  # a name: its addresses are checked when it is resolved


def is_public_address(address: str) -> bool:
    """True if an IP address is globally routable; raises ValueError for anything else."""
    ip = ipaddress.ip_address(address.split("%", 1)[0])
    if isinstance(ip, ipaddress.IPv6Address):
        embedded = _embedded_ipv4(ip)
        if embedded is not None:
            ip = embedded
    return ip.is_global and not ip.is_multicast


_NAT64 = (ipaddress.ip_network("64:ff9b::/96"), ipaddress.ip_network("64:ff9b:1::/48"))
_IPV4_COMPATIBLE = ipaddress.ip_network("::/96")


def _embedded_ipv4(ip: ipaddress.IPv6Address) -> ipaddress.IPv4Address | None:
    """The IPv4 address an IPv6 one carries (mapped, 6to4, NAT64, IPv4-compatible): Python calls some
    of these global although they reach the IPv4 address inside, private ones included."""
    if ip.ipv4_mapped is not None:
        return ip.ipv4_mapped
    if ip.sixtofour is not None:
        return ip.sixtofour
    if any(ip in network for network in _NAT64) or (ip in _IPV4_COMPATIBLE and int(ip) > 1):
        return ipaddress.IPv4Address(int(ip) & 0xFFFFFFFF)
    return None


def check_event_types(event_types: Sequence[str]) -> list[str]:
    """The filter without repeats; raises InvalidWebhookSubscription for a type that does not exist."""
    unknown = [t for t in event_types if t not in DOMAIN_TYPES]
    if unknown:
        raise InvalidWebhookSubscription(
            f"Unknown event type(s): {', '.join(sorted(set(unknown)))}. Known: {', '.join(DOMAIN_TYPES)}.",
            errors=[
                {"field": f"body.events.{i}", "message": f"unknown event type {t!r}", "type": "unknown_event"}
                for i, t in enumerate(event_types)
                if t not in DOMAIN_TYPES
            ],
        )
    return list(dict.fromkeys(event_types))


def matches(subscription: WebhookSubscription, event: DomainEvent) -> bool:
    """Whether the subscription is owed this event: its filter takes the type (empty takes every type
    but ``presence.updated``, which clients send every few seconds while someone types: name it to
    get it), and the event happened once the subscription existed (the bus keeps days of history)."""
    if subscription.event_types and event.type not in subscription.event_types:
        return False
    if not subscription.event_types and event.type == "presence.updated":
        return False
    return event.occurred_at >= subscription.created_at


def signature_header(secrets: Sequence[str], webhook_id: str, timestamp: int, body: bytes) -> str:
    """``webhook-signature``: one ``v1,...`` per secret, space-separated (the newest first)."""
    return " ".join(sign(secret, webhook_id, timestamp, body).signature for secret in secrets)


def signing_secrets(subscription: WebhookSubscription, box: SecretBox, now: datetime) -> list[str]:
    """The secrets a delivery is signed with now: the current one, and the previous one during the
    grace period after a rotation."""
    secrets = [box.open(subscription.secret_sealed)]
    if (
        subscription.previous_secret_sealed is not None
        and subscription.previous_secret_expires_at is not None
        and subscription.previous_secret_expires_at > now
    ):
        secrets.append(box.open(subscription.previous_secret_sealed))
    return secrets


def public_view(subscription: WebhookSubscription) -> dict[str, Any]:
    """What the audit log keeps of a subscription: never its secret."""
    return {
        "url": subscription.url,
        "description": subscription.description,
        "events": list(subscription.event_types),
        "enabled": subscription.enabled,
    }


def private_urls_allowed(setting: bool | None, environment: Environment) -> bool:
    """``PIAZZA_INBOX_WEBHOOK_ALLOW_PRIVATE_URLS``, by default true in development and tests only, so
    a production installation is never made to call its own internal services."""
    return setting if setting is not None else environment is not Environment.PRODUCTION
