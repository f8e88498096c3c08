"""Errors the webhook endpoints answer with."""

from __future__ import annotations

from shared.errors import NotFound, Unauthorized


class UnknownChannel(NotFound):
    """No active channel with this id."""

    code = "channel_not_found"


class InvalidSignature(Unauthorized):
    """The webhook signature headers are missing, stale or do not match."""

    code = "invalid_signature"
