"""RFC 9457 problem details: the one shape every error response takes.

``{"type": "about:blank", "title": ..., "status": ..., "detail": ..., "code": ..., "errors": [...]}``
served as ``application/problem+json``. ``code`` is stable and meant for programs; ``detail`` is for
people; ``errors`` lists field-level problems of a request that broke the schema.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from http import HTTPStatus
from typing import Any

import orjson
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from sqlalchemy.exc import DBAPIError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.responses import Response

from shared.db.errors import is_transient_db_error
from shared.errors import PiazzaError
from shared.logging import get_logger

log = get_logger(__name__)

PROBLEM_CONTENT_TYPE = "application/problem+json"

_HTTP_CODES = {
    400: "bad_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    409: "conflict",
    413: "payload_too_large",
    415: "unsupported_media_type",
    429: "too_many_requests",
}


def problem_response(
    status: int,
    code: str,
    detail: str,
    *,
    errors: Sequence[Mapping[str, Any]] = (),
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A problem-details response."""
    body: dict[str, Any] = {
        "type": "about:blank",
        "title": HTTPStatus(status).phrase,
        "status": status,
        "detail": detail,
        "code": code,
    }
    if errors:
        body["errors"] = list(errors)
    return Response(
        orjson.dumps(body), status_code=status, media_type=PROBLEM_CONTENT_TYPE, headers=dict(headers or {})
    )


def field_errors(raw: Iterable[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Pydantic errors as ``{"field": "body.events.0.id", "message": ..., "type": ...}``."""
    return [
        {
            "field": ".".join(str(part) for part in err.get("loc", ())),
            "message": str(err.get("msg", "")),
            "type": str(err.get("type", "")),
        }
        for err in raw
    ]


def install_problem_handlers(app: FastAPI) -> None:
    """Render every error, expected or not, as problem details."""

    @app.exception_handler(PiazzaError)
    async def _piazza_error(_request: Request, exc: PiazzaError) -> Response:
        return problem_response(
            exc.status_code, exc.code, exc.message, errors=exc.errors, headers=exc.headers
        )

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> Response:
        return problem_response(
            400,
            "validation_failed",
            "The request does not match the schema.",
            errors=field_errors(exc.errors()),
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> Response:
        code = _HTTP_CODES.get(exc.status_code, "http_error")
        return problem_response(exc.status_code, code, str(exc.detail), headers=exc.headers)

    @app.exception_handler(DBAPIError)
    async def _database_error(request: Request, exc: DBAPIError) -> Response:
        if not is_transient_db_error(exc):
            return await _unexpected(request, exc)
        log.warning("http.database_unavailable", path=request.url.path, error=str(exc).splitlines()[0])
        return problem_response(
            503,
            "database_unavailable",
            "The database is unavailable right now; retry shortly.",
            headers={"Retry-After": "5"},
        )

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> Response:
        request_id = getattr(request.state, "request_id", "")
        log.error("http.unhandled_error", path=request.url.path, exc_info=exc)
        return problem_response(
            500,
            "internal_error",
            f"An unexpected error occurred (request id {request_id}).",
        )
