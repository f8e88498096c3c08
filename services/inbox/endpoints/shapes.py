"""API shapes of conversations and messages, built from the rows the repository reads.

A list page is written straight to JSON from plain dicts (:func:`conversations_fields`,
:func:`json_page`): building and validating fifty response models cost more CPU than the database
spent answering. Single conversations and messages go through their response models.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cache
from operator import itemgetter
from typing import Any

import orjson
from fastapi import Response
from sqlalchemy.engine import Row

from services.inbox.models import Message
from services.inbox.repository.reads import ConversationRows, MessageRow
from services.inbox.schemas import AuthorOut, ConversationOut, DeliveryOut, MessageOut, ReplyToOut
from services.inbox.schemas.sentiment import MessageSentimentOut
from services.inbox.service.claims import held
from shared.events import utcnow

_DERIVED = ("labels_json", "claimed_by_id", "claim_expires_at")
"""The columns a conversation does not show as they are: ``labels`` and ``claim`` come from them;
every other column of a list's rows is a field of ``ConversationOut`` under its own name."""


@dataclass(frozen=True)
class _Reader:
    """How to read a conversation's fields from rows with these columns: by position, in one call
    for the fields shown as they are (reading fifty rows by name was a fifth of a page's CPU)."""

    shown: tuple[str, ...]
    take: Callable[[Any], tuple[Any, ...]]
    labels: int
    holder: int
    until: int


@cache
def _reader(columns: tuple[str, ...]) -> _Reader:
    shown = tuple(name for name in columns if name not in _DERIVED)
    labels, holder, until = (columns.index(name) for name in _DERIVED)
    return _Reader(shown, itemgetter(*(columns.index(name) for name in shown)), labels, holder, until)


def conversations_fields(
    found: ConversationRows, labels: Callable[[str], Any] = orjson.Fragment
) -> list[dict[str, Any]]:
    """Conversations as the fields of ``ConversationOut``, ready for JSON (``orjson``): a page's rows
    share one clock (whether a claim has lapsed) and one reader of their columns. ``labels`` turns
    the stored labels (JSON text) into the field: as they are, for orjson to write, by default."""
    if not found:
        return []
    now = utcnow()
    read = _reader(found.columns)
    fields = []
    for row in found.rows:
        shown = dict(zip(read.shown, read.take(row), strict=True))
        claim = held(row[read.holder], row[read.until], now)
        shown["claim"] = {"user_id": claim[0], "expires_at": claim[1]} if claim else None
        shown["labels"] = labels(row[read.labels])
        fields.append(shown)
    return fields


def conversations_out(found: ConversationRows) -> list[ConversationOut]:
    """The API shapes of conversations."""
    return [ConversationOut.model_validate(fields) for fields in conversations_fields(found, orjson.loads)]


def conversation_out(row: Row[Any]) -> ConversationOut:
    """The API shape of a conversation (a row of ``repository.reads.conversation_rows``)."""
    return conversations_out(ConversationRows(tuple(row._fields), [row]))[0]


def json_page(rows: list[dict[str, Any]], *, has_more: bool, next_cursor: str | None) -> Response:
    """A ``Page`` written straight to JSON: a list page of fifty conversations spent more CPU building
    and validating response models than the database spent answering. The fields are the response
    model's, which the route still declares (tests hold the two equal)."""
    body = {"data": rows, "has_more": has_more, "next_cursor": next_cursor}
    # Every value is one orjson writes itself: lists read ids as text on PostgreSQL (the driver's own
    # UUID type is not one), as ``uuid.UUID`` on SQLite.
    return Response(orjson.dumps(body, option=orjson.OPT_UTC_Z), media_type="application/json")


def message_out(row: MessageRow) -> MessageOut:
    """The API shape of a message."""
    message, author = row.message, row.author
    return MessageOut(
        id=message.id,
        conversation_id=message.conversation_id,
        channel_id=message.channel_id,
        external_id=message.external_id,
        direction=message.direction,
        sent_by_user_id=message.sent_by_user_id,
        author=AuthorOut(
            identity_id=author.id,
            contact_id=author.contact_id,
            namespace=author.namespace,
            external_id=author.external_id,
            handle=author.handle,
            name=author.display_name,
        )
        if author is not None
        else None,
        text=message.text,
        attachments=message.attachments,
        reply_to=ReplyToOut(external_id=message.reply_to_external_id, message_id=row.reply_to_id)
        if message.reply_to_external_id
        else None,
        reactions=row.reactions,
        delivery=DeliveryOut.model_validate(
            {"status": message.delivery_status, "error": message.delivery_error}
        )
        if message.delivery_status
        else None,
        meta=message.meta,
        sentiment=_sentiment(message),
        sent_at=message.sent_at,
        edited_at=message.edited_at,
        deleted_at=message.deleted_at,
        created_at=message.created_at,
    )


def _sentiment(message: Message) -> MessageSentimentOut | None:
    label = message.sentiment_correction or message.sentiment
    if message.direction != "inbound" or label is None:
        return None
    return MessageSentimentOut.model_validate(
        {
            "label": label,
            "score": message.sentiment_score,
            "language": message.language,
            "corrected": message.sentiment_correction is not None,
            "corrected_by": message.sentiment_corrected_by,
            "corrected_at": message.sentiment_corrected_at,
        }
    )
