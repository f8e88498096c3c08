"""Piazza's exception tree.

Every error a user can see derives from :class:`PiazzaError`, which carries the HTTP status and a
stable machine-readable ``code``; one handler renders it as RFC 9457 problem details. Consumer code
classifies failures with :class:`TransientError` (retry later) and :class:`PermanentError` (never
retry: dead-letter).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any, ClassVar


class PiazzaError(Exception):
    """Base of every error Piazza reports, with its HTTP status and stable code."""

    status_code: ClassVar[int] = 500
    code: ClassVar[str] = "internal_error"
    title: ClassVar[str] = "Internal error"

    def __init__(
        self,
        message: str,
        *,
        errors: Sequence[Mapping[str, Any]] | None = None,
        headers: Mapping[str, str] | None = None,
        code: str | None = None,
    ) -> None:
        super().__init__(message)
        self.message = message
        self.errors = list(errors or [])
        self.headers = dict(headers or {})
        if code is not None:
            self.code = code  # type: ignore[misc]  # a more precise code for this instance


class BadRequest(PiazzaError):
    """The request is malformed (bad JSON, bad cursor, inconsistent fields)."""

    status_code = 400
    code = "bad_request"
    title = "Bad request"


class ValidationFailed(BadRequest):
    """The request parsed but broke the schema; ``errors`` lists each field and why."""

    code = "validation_failed"
    title = "Validation failed"


class Unauthorized(PiazzaError):
    """No credentials, or credentials that do not verify."""

    status_code = 401
    code = "unauthorized"
    title = "Unauthorized"


class Forbidden(PiazzaError):
    """Authenticated, but the role does not allow the action."""

    status_code = 403
    code = "forbidden"
    title = "Forbidden"


class NotFound(PiazzaError):
    """The resource does not exist in the caller's workspace."""

    status_code = 404
    code = "not_found"
    title = "Not found"


class Conflict(PiazzaError):
    """The request collides with the current state."""

    status_code = 409
    code = "conflict"
    title = "Conflict"


class PreconditionFailed(PiazzaError):
    """The resource changed since the version the request was made against (``If-Match``)."""

    status_code = 412
    code = "precondition_failed"
    title = "Precondition failed"


class PayloadTooLarge(PiazzaError):
    """The body is over the configured size limit."""

    status_code = 413
    code = "payload_too_large"
    title = "Payload too large"


class UnsupportedMediaType(PiazzaError):
    """The body is not of a content type the endpoint takes."""

    status_code = 415
    code = "unsupported_media_type"
    title = "Unsupported media type"


class ServiceUnavailable(PiazzaError):
    """A dependency (the bus, the database) is down; the caller should retry after ``retry_after``."""

    status_code = 503
    code = "service_unavailable"
    title = "Service unavailable"

    def __init__(self, message: str, *, retry_after: int = 5, code: str | None = None) -> None:
        super().__init__(message, headers={"Retry-After": str(retry_after)}, code=code)
        self.retry_after = retry_after


class ConfigurationError(PiazzaError):
    """The process is configured in a way it refuses to run with."""

    code = "configuration_error"
    title = "Configuration error"


class TransientError(Exception):
    """A failure worth retrying later (a dependency is briefly unavailable)."""


class PermanentError(Exception):
    """A failure that will happen again on every retry (poison input): dead-letter it."""
