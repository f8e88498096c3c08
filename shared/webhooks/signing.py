"""Standard Webhooks signatures (https://www.standardwebhooks.com), both ways.

``v1,<base64 HMAC-SHA256 of "id.timestamp.body">`` with a ``whsec_<base64>`` secret. Written here
rather than taken from the ``standardwebhooks`` package because a receiver must turn *every* malformed
header into a verification failure: that package decodes the body as text and lets ``ValueError`` and
``binascii.Error`` escape on a malformed signature list, which a web handler would answer with a 500.
Everything is compared as bytes in constant time.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Iterable
from dataclasses import dataclass

SECRET_PREFIX = "whsec_"  # noqa: S105 - a prefix, not a secret
DEFAULT_TOLERANCE_SECONDS = 300


class SignatureError(Exception):
    """The request is not signed by a secret we hold; ``reason`` says what was wrong."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


@dataclass(frozen=True, slots=True)
class SignedHeaders:
    """The three Standard Webhooks headers of one delivery."""

    webhook_id: str
    timestamp: int
    signature: str

    def as_dict(self) -> dict[str, str]:
        """The headers as sent on the wire."""
        return {
            "webhook-id": self.webhook_id,
            "webhook-timestamp": str(self.timestamp),
            "webhook-signature": self.signature,
        }


def generate_secret() -> str:
    """A new ``whsec_`` secret holding 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(32)).decode()


def secret_key(secret: str) -> bytes:
    """The HMAC key inside a ``whsec_`` secret."""
    raw = secret.removeprefix(SECRET_PREFIX)
    try:
        key = base64.b64decode(raw + "=" * (-len(raw) % 4), validate=True)
    except (binascii.Error, ValueError) as exc:
        raise ValueError("webhook secret is not valid base64 after its whsec_ prefix") from exc
    if not key:
        raise ValueError("webhook secret is empty")
    return key


def _digest(key: bytes, webhook_id: str, timestamp: int, body: bytes) -> bytes:
    signed = b"%s.%d.%s" % (webhook_id.encode(), timestamp, body)
    return hmac.new(key, signed, hashlib.sha256).digest()


def sign(secret: str, webhook_id: str, timestamp: int, body: bytes) -> SignedHeaders:
    """Sign a body as a Standard Webhooks sender does."""
    digest = _digest(secret_key(secret), webhook_id, timestamp, body)
    return SignedHeaders(webhook_id, timestamp, "v1," + base64.b64encode(digest).decode())


def verify(
    secrets_: Iterable[str],
    *,
    webhook_id: str | None,
    timestamp: str | None,
    signature: str | None,
    body: bytes,
    now: float,
    tolerance: int = DEFAULT_TOLERANCE_SECONDS,
) -> int:
    """Check a delivery against every secret we hold; return its timestamp or raise SignatureError.

    Accepts a space-separated list of signatures (a sender rotating its secret signs with both) and
    ignores versions other than ``v1``. The timestamp must be within ``tolerance`` seconds of ``now``
    in either direction.
    """
    if not webhook_id or not timestamp or not signature:
        raise SignatureError("missing webhook-id, webhook-timestamp or webhook-signature header")
    if not timestamp.isascii() or not timestamp.isdigit() or len(timestamp) > 12:
        raise SignatureError("webhook-timestamp is not an integer number of seconds")
    if not _encodable(webhook_id):
        raise SignatureError("webhook-id is not valid text")
    sent_at = int(timestamp)
    if sent_at < now - tolerance:
        raise SignatureError("webhook-timestamp is too old")
    if sent_at > now + tolerance:
        raise SignatureError("webhook-timestamp is too far in the future")
    candidates = _v1_signatures(signature)
    if not candidates:
        raise SignatureError("webhook-signature holds no v1 signature")
    for secret in secrets_:
        expected = _digest(secret_key(secret), webhook_id, sent_at, body)
        for candidate in candidates:
            if hmac.compare_digest(expected, candidate):
                return sent_at
    raise SignatureError("no signature matches")


def _encodable(text: str) -> bool:
    try:
        text.encode()
    except UnicodeEncodeError:
        return False
    return True


def _v1_signatures(header: str) -> list[bytes]:
    found = []
    for part in header.split():
        version, _, value = part.partition(",")
        if version != "v1" or not value.isascii():
            continue
        try:
            found.append(base64.b64decode(value, validate=True))
        except (binascii.Error, ValueError):
            continue
    return found
