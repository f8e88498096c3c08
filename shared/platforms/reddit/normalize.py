"""Reddit items as Piazza events (pure functions; platforms.md §2.4-2.9 and §5).

Conversation keys (``ThreadRef.external_id``):

| item | key |
|---|---|
| comment (t1), from a subreddit or the inbox | the post's fullname ``t3_<id>`` (``link_id``, or parsed from ``context``) |
| post (t3) | its own fullname: the post opens its conversation |
| private message (t4) | ``first_message_name or name``: the thread's root message |

A message's external id is the item's fullname and its ``reply_to_external_id`` the ``parent_id``
(``t1_``/``t3_``/``t4_``), so a frontend can rebuild the comment tree. Authors are identified by
lower-cased username (names are unique regardless of case); the account's own items are outbound.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from uuid import UUID

from shared.events import (
    Attachment,
    AuthorRef,
    Event,
    InboundMessage,
    MessageDeleted,
    MessageDeletion,
    MessageEdit,
    MessageEdited,
    MessageReceived,
    ThreadRef,
)

PLATFORM = "reddit"
NAMESPACE = "reddit"
GONE = frozenset({"[deleted]", "[removed]"})
_POST_IN_CONTEXT = re.compile(r"/comments/([0-9a-z]+)")

Json = dict[str, Any]


@dataclass
class Normalized:
    """The events of one item; ``skipped`` with a reason when it carries nothing to keep."""

    kind: str
    events: list[Event] = field(default_factory=list)
    skipped: str | None = None


def post_of(kind: str, data: Mapping[str, Any]) -> str | None:
    """The fullname of the post a comment belongs to (inbox comments only carry it in ``context``)."""
    if kind == "t3":
        return str(data.get("name") or f"t3_{data.get('id')}")
    link = data.get("link_id")
    if isinstance(link, str) and link.startswith("t3_"):
        return link
    match = _POST_IN_CONTEXT.search(str(data.get("context") or data.get("permalink") or ""))
    return f"t3_{match.group(1)}" if match else None


def thread_of(kind: str, data: Mapping[str, Any]) -> ThreadRef | None:
    """The conversation an item belongs to."""
    if kind == "t4":
        subject = str(data.get("subject") or "")
        title = subject[4:] if subject.lower().startswith("re: ") else subject
        return ThreadRef(
            external_id=str(data.get("first_message_name") or data["name"]), title=title[:1024] or None
        )
    post = post_of(kind, data)
    if post is None:
        return None
    heading = data.get("title") if kind == "t3" else data.get("link_title")
    return ThreadRef(external_id=post, title=str(heading)[:1024] if heading else None)


def is_gone(kind: str, data: Mapping[str, Any]) -> bool:
    """Deleted by its author or removed by a moderator (the account may be gone, the item not)."""
    if kind == "t3":
        return data.get("selftext") in GONE or bool(data.get("removed_by_category"))
    return data.get("body") in GONE


def author_of(data: Mapping[str, Any]) -> AuthorRef:
    """Who wrote an item (one identity per username; deleted accounts share ``[deleted]``)."""
    name = str(data.get("author") or "[deleted]")
    if name in GONE:
        return AuthorRef(namespace=NAMESPACE, external_id="[deleted]", name="[deleted]")
    return AuthorRef(namespace=NAMESPACE, external_id=name.lower(), handle=f"u/{name}", name=name)


def text_of(kind: str, data: Mapping[str, Any]) -> tuple[str | None, tuple[Attachment, ...]]:
    """The markdown text of an item, and a link attachment for link posts."""
    if kind != "t3":
        return str(data.get("body") or "") or None, ()
    title = str(data.get("title") or "")
    body = str(data.get("selftext") or "")
    text = f"{title}\n\n{body}".strip() if body else title
    attachments: tuple[Attachment, ...] = ()
    url = data.get("url")
    if not data.get("is_self", True) and isinstance(url, str) and url:
        attachments = (Attachment(type="link", url=url[:4096]),)
    return text or None, attachments


def edited_at(data: Mapping[str, Any]) -> datetime | None:
    """When an item was last edited (``edited`` is false or a float epoch)."""
    edited = data.get("edited")
    if isinstance(edited, bool) or not isinstance(edited, int | float):
        return None
    return datetime.fromtimestamp(float(edited), UTC)


def content_digest(kind: str, data: Mapping[str, Any]) -> str:
    """A short fingerprint of what an agent sees of an item, to notice edits and deletions."""
    text, _ = text_of(kind, data)
    return hashlib.sha256(f"{data.get('author')}\x1f{text}".encode()).hexdigest()[:16]


def _meta(kind: str, data: Mapping[str, Any]) -> Json:
    meta: Json = {"kind": kind}
    for key in ("subreddit", "type", "distinguished", "score", "permalink", "context", "dest", "subject"):
        value = data.get(key)
        if value not in (None, ""):
            meta[key] = value
    when = edited_at(data)
    if when is not None:
        meta["edited_at"] = when.isoformat()
    return meta


class Normalizer:
    """Turns one channel's items into events."""

    def __init__(
        self,
        *,
        channel_id: UUID,
        workspace: str,
        me: str,
        correlation_id: str | None = None,
        track_unread: bool = False,
    ):
        """``track_unread``: note inbox items still unread on Reddit (``meta.unread``), for the inbox
        to have them marked read when an agent opens their conversation."""
        self.channel_id = channel_id
        self.workspace = workspace
        self.me = me.lower()
        self.correlation_id = correlation_id
        self.track_unread = track_unread

    def _envelope(self, *parts: object) -> dict[str, Any]:
        digest = hashlib.sha256("\x1f".join(["reddit", str(self.channel_id), *map(str, parts)]).encode())
        envelope: dict[str, Any] = {
            "id": digest.hexdigest()[:40],
            "workspace": self.workspace,
            "source": "reddit",
        }
        if self.correlation_id:
            envelope["correlation_id"] = self.correlation_id
        return envelope

    def received(self, kind: str, data: Mapping[str, Any]) -> Normalized:
        """A newly seen item: a message (nothing when it is already deleted or has no thread)."""
        result = Normalized(kind)
        if kind not in ("t1", "t3", "t4") or not data.get("name"):
            result.skipped = "not a comment, post or message"
            return result
        if is_gone(kind, data):
            result.skipped = "deleted before it was seen"
            return result
        thread = thread_of(kind, data)
        text, attachments = text_of(kind, data)
        if thread is None or not (text or attachments):
            result.skipped = "no conversation or no content"
            return result
        author = author_of(data)
        parent = data.get("parent_id")
        message = InboundMessage(
            channel_id=self.channel_id,
            platform=PLATFORM,
            thread=thread,
            external_id=str(data["name"]),
            author=author,
            direction="outbound" if author.external_id == self.me else "inbound",
            text=text,
            attachments=attachments,
            reply_to_external_id=str(parent) if isinstance(parent, str) and parent else None,
            sent_at=datetime.fromtimestamp(float(data.get("created_utc") or 0), UTC),
            meta={
                **_meta(kind, data),
                **({"unread": True} if self.track_unread and data.get("new") is True else {}),
            },
        )
        result.events.append(MessageReceived(**self._envelope(data["name"], "received"), payload=message))
        return result

    def changed(self, kind: str, data: Mapping[str, Any], *, seen_at: datetime) -> Normalized:
        """A re-fetched item whose content changed: an edit, or a deletion or removal."""
        result = Normalized(kind)
        thread = thread_of(kind, data)
        if thread is None:
            result.skipped = "no conversation"
            return result
        name = str(data["name"])
        if is_gone(kind, data):
            deletion = MessageDeletion(
                channel_id=self.channel_id,
                platform=PLATFORM,
                thread=thread,
                external_id=name,
                deleted_at=seen_at,
            )
            result.events.append(MessageDeleted(**self._envelope(name, "deleted"), payload=deletion))
            return result
        text, attachments = text_of(kind, data)
        when = edited_at(data) or seen_at
        edit = MessageEdit(
            channel_id=self.channel_id,
            platform=PLATFORM,
            thread=thread,
            external_id=name,
            author=author_of(data),
            text=text,
            attachments=attachments,
            edited_at=when,
            meta=_meta(kind, data),
        )
        result.events.append(
            MessageEdited(**self._envelope(name, "edited", content_digest(kind, data)), payload=edit)
        )
        return result


def flatten(children: list[tuple[str, Json]]) -> list[tuple[str, Json]]:
    """Threaded private messages (``replies`` nested as Listings) as one flat list, roots first."""
    flat: list[tuple[str, Json]] = []
    for kind, data in children:
        flat.append((kind, data))
        replies = data.get("replies")
        if isinstance(replies, dict):
            nested = (replies.get("data") or {}).get("children") or []
            flat.extend(
                flatten([(str(c.get("kind")), c["data"]) for c in nested if isinstance(c.get("data"), dict)])
            )
    return flat
