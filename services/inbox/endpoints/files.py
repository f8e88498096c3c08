"""``/v1/messages/{id}/attachments/{n}``: download what a message carries, through Piazza."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated
from uuid import UUID

import httpx
from fastapi import APIRouter, Path
from fastapi.responses import RedirectResponse, Response, StreamingResponse

from services.inbox.dependencies import PrincipalDep, StateDep
from services.inbox.errors import MessageNotFound
from services.inbox.service import channels as channel_service
from services.inbox.service import conversations as service
from services.inbox.service.channels import to_record
from services.inbox.service.telegram import telegram_errors
from shared.errors import NotFound

router = APIRouter(prefix="/v1/messages", tags=["conversations"])


class AttachmentNotFound(NotFound):
    """The message has no attachment at that position, or nothing Piazza can fetch for it."""

    code = "attachment_not_found"


@router.get(
    "/{message_id}/attachments/{index}",
    response_class=Response,
    responses={200: {"content": {"application/octet-stream": {}}, "description": "The file's bytes"}},
)
async def download_attachment(
    message_id: UUID, index: Annotated[int, Path(ge=0, le=49)], principal: PrincipalDep, state: StateDep
) -> Response:
    """The file of a message's attachment: streamed from the platform (Telegram ``getFile``), or a
    redirect to the URL the source gave."""
    async with state.reading() as session:
        message, _ = await service.message_history(session, principal.workspace_id, message_id)
        channel = await channel_service.get_channel(session, principal.workspace_id, message.channel_id)
    if index >= len(message.attachments):
        raise AttachmentNotFound(f"message {message_id} has no attachment {index}")
    attachment = message.attachments[index]
    if channel.type == "telegram" and attachment.get("file_ref"):
        sealed = to_record(channel).secret("bot_token")
        if sealed is None:
            raise MessageNotFound("the channel of this message has no bot token")
        client = state.telegram(state.box.open(sealed))
        async with telegram_errors("fetching the file"):
            info = await client.get_file(str(attachment["file_ref"]))
            upstream = await client.download(str(info["file_path"]))
        if upstream.status_code != 200:
            await upstream.aclose()
            raise AttachmentNotFound("Telegram no longer serves this file")
        return StreamingResponse(
            _relay(upstream),
            media_type=str(
                attachment.get("mime") or upstream.headers.get("content-type") or "application/octet-stream"
            ),
            headers=_length(upstream),
        )
    if attachment.get("url", "").startswith(("https://", "http://")):
        return RedirectResponse(str(attachment["url"]), status_code=307)
    raise AttachmentNotFound(f"attachment {index} of message {message_id} has no file to fetch")


async def _relay(upstream: httpx.Response) -> AsyncIterator[bytes]:
    try:
        async for chunk in upstream.aiter_bytes():
            yield chunk
    finally:
        await upstream.aclose()


def _length(upstream: httpx.Response) -> dict[str, str]:
    length = upstream.headers.get("content-length")
    return {"content-length": length} if length and length.isdigit() else {}
