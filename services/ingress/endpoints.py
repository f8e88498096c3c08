"""``POST /webhooks/{channel_id}``: the generic, Standard Webhooks-signed receiver."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request, status
from fastapi.responses import JSONResponse
from starlette.datastructures import Headers

from services.ingress.schemas import WebhookBatch, WebhookEvent
from services.ingress.service import WebhookIngress
from shared.errors import PayloadTooLarge, UnsupportedMediaType

router = APIRouter(tags=["webhooks"])


def _request_body_schema() -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "content": {
                "application/json": {
                    "schema": {
                        "oneOf": [WebhookEvent.model_json_schema(), WebhookBatch.model_json_schema()],
                    }
                }
            },
        },
        "parameters": [
            {
                "name": name,
                "in": "header",
                "required": True,
                "schema": {"type": "string"},
                "description": text,
            }
            for name, text in (
                ("webhook-id", "Unique per message, the same on every retry."),
                ("webhook-timestamp", "Unix seconds of this attempt; within 5 minutes of our clock."),
                ("webhook-signature", "Space-separated v1,<base64 HMAC-SHA256 of id.timestamp.body>."),
            )
        ],
    }


def _is_json(headers: Headers) -> bool:
    media_type = headers.get("content-type", "").split(";", 1)[0].strip().lower()
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


async def read_body(request: Request, limit: int) -> bytes:
    """The body, refused with 413 as soon as it is over ``limit`` bytes."""
    declared = request.headers.get("content-length")
    if declared is not None and declared.isdigit() and int(declared) > limit:
        raise PayloadTooLarge(f"The body is over the {limit}-byte limit.")
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise PayloadTooLarge(f"The body is over the {limit}-byte limit.")
        chunks.append(chunk)
    return b"".join(chunks)


@router.post(
    "/webhooks/{channel_id}",
    status_code=status.HTTP_202_ACCEPTED,
    openapi_extra=_request_body_schema(),
    responses={
        400: {"description": "Malformed JSON or a schema error, with field-level errors"},
        401: {"description": "Missing, stale or non-matching signature"},
        404: {"description": "No such webhook channel"},
        413: {"description": "Body over the size limit"},
        415: {"description": "Body is not JSON"},
        503: {"description": "The bus cannot store events now; retry after Retry-After seconds"},
    },
)
async def receive_webhook(channel_id: str, request: Request) -> JSONResponse:
    """Accept one event or a batch; 202 means JetStream stored every event of the request."""
    ingress: WebhookIngress = request.app.state.ingress
    channel = await ingress.channel(channel_id)
    if not _is_json(request.headers):
        raise UnsupportedMediaType("Send the events as application/json.")
    body = await read_body(request, ingress.max_body_bytes)
    accepted = await ingress.receive(channel, request.headers, body, request.state.request_id)
    return JSONResponse(
        {"accepted": accepted.events, "duplicates": accepted.duplicates}, status_code=status.HTTP_202_ACCEPTED
    )
