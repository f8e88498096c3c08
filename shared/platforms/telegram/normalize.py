"""Telegram updates as Piazza events (pure functions: the connector and the webhook ingress share them).

Conversation keys (``ThreadRef.external_id``), per platforms.md §1.4-1.5 and DESIGN §4:

| where | key |
|---|---|
| private chat, basic group, supergroup | ``<chat>`` |
| forum topic | ``<chat>:topic:<message_thread_id>`` (the General topic is ``<chat>``) |
| channel post and its comments in the linked discussion group | ``<channel>:post:<post id>`` |
| business chat | ``b:<business_connection_id>:<chat>`` |

``<chat>`` is the chat's *canonical* id: a basic group upgraded to a supergroup keeps the id it had,
through an alias learned from the ``migrate_to_chat_id``/``migrate_from_chat_id`` service messages.
Comments on a channel post live in the discussion group's thread of the post's automatic forward;
that thread is mapped to the post through an alias learned from the forward (or from a first-level
comment, which quotes it). Message ids are unique per chat only, so a message's external id is
``<actual chat id>:<message_id>`` (prefixed ``b:<connection>:`` in business chats).

The caller resolves the aliases an update needs (:func:`alias_keys`) before normalising, and stores
the ones :func:`normalize` learned after publishing.
"""

from __future__ import annotations

import hashlib
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
from shared.events.activity import ReactionChange, ReactionChanged, ThreadChange, ThreadChanged

PLATFORM = "telegram"
NAMESPACE = "telegram"

ALLOWED_UPDATES = (
    "message",
    "edited_message",
    "channel_post",
    "edited_channel_post",
    "business_message",
    "edited_business_message",
    "deleted_business_messages",
    "message_reaction",
)
"""What Piazza asks Telegram for (``message_reaction`` is only sent when asked for by name)."""

_MESSAGE_KINDS = {
    "message": False,
    "channel_post": False,
    "business_message": False,
    "edited_message": True,
    "edited_channel_post": True,
    "edited_business_message": True,
}

Json = dict[str, Any]


@dataclass
class Normalized:
    """What one update becomes."""

    kind: str
    events: list[Event] = field(default_factory=list)
    learned: dict[str, str] = field(default_factory=dict)
    skipped: bool = False


def update_kind(update: Mapping[str, Any]) -> str:
    """The update's type: the one field besides ``update_id``."""
    for key in update:
        if key != "update_id":
            return key
    return "empty"


def chat_alias_key(chat_id: int | str) -> str:
    """The alias naming the canonical id of a (migrated) chat."""
    return f"chat.{chat_id}"


def thread_alias_key(chat_id: int | str, thread_id: int | str) -> str:
    """The alias naming the conversation of a discussion group's comment thread."""
    return f"thread.{chat_id}.{thread_id}"


def alias_keys(update: Mapping[str, Any]) -> set[str]:
    """The aliases :func:`normalize` may consult for this update."""
    payload = update.get(update_kind(update))
    if not isinstance(payload, dict):
        return set()
    keys = set()
    chat = payload.get("chat") or {}
    if "id" in chat:
        keys.add(chat_alias_key(chat["id"]))
        if payload.get("message_thread_id") is not None:
            keys.add(thread_alias_key(chat["id"], payload["message_thread_id"]))
    return keys


def normalize(
    update: Mapping[str, Any],
    *,
    channel_id: UUID,
    workspace: str,
    aliases: Mapping[str, str],
    received_at: datetime,
    correlation_id: str | None = None,
) -> Normalized:
    """The events of one update (none for kinds an inbox does not keep: those are ``skipped``)."""
    kind = update_kind(update)
    payload = update.get(kind)
    result = Normalized(kind)
    if not isinstance(payload, dict):
        result.skipped = True
        return result
    context = _Context(update, channel_id, workspace, aliases, received_at, correlation_id, result)
    if kind in _MESSAGE_KINDS:
        context.message(payload, edited=_MESSAGE_KINDS[kind])
    elif kind == "deleted_business_messages":
        context.deleted_business(payload)
    elif kind == "message_reaction":
        context.reaction(payload)
    else:
        result.skipped = True
    return result


@dataclass
class _Context:
    update: Mapping[str, Any]
    channel_id: UUID
    workspace: str
    aliases: Mapping[str, str]
    received_at: datetime
    correlation_id: str | None
    result: Normalized

    def _envelope(self) -> dict[str, Any]:
        number = len(self.result.events)
        digest = hashlib.sha256(
            f"telegram\x1f{self.channel_id}\x1f{self.update.get('update_id')}\x1f{number}".encode()
        )
        envelope: dict[str, Any] = {
            "id": digest.hexdigest()[:40],
            "workspace": self.workspace,
            "source": "telegram",
        }
        if self.correlation_id:
            envelope["correlation_id"] = self.correlation_id
        return envelope

    def _alias(self, key: str) -> str | None:
        return self.result.learned.get(key) or self.aliases.get(key)

    def _canonical_chat(self, chat_id: int) -> str:
        return self._alias(chat_alias_key(chat_id)) or str(chat_id)

    # -- messages ------------------------------------------------------------------------------

    def message(self, message: Json, *, edited: bool) -> None:
        chat = message.get("chat") or {}
        if "id" not in chat or "message_id" not in message:
            self.result.skipped = True
            return
        self._learn_migration(message, chat)
        if _is_service(message):
            self._service(message, chat)
            return
        thread = self._thread_of(message, chat)
        ref = {
            "channel_id": self.channel_id,
            "platform": PLATFORM,
            "thread": thread,
            "external_id": self._message_id(message, chat),
        }
        text = message.get("text") if message.get("text") is not None else message.get("caption")
        attachments = _attachments(message)
        author = self._author_of(message)
        meta = _meta(message)
        if edited:
            edited_at = _time(message.get("edit_date") or message.get("date"))
            payload = MessageEdit(
                **ref, author=author, text=text, attachments=attachments, edited_at=edited_at, meta=meta
            )
            self.result.events.append(MessageEdited(**self._envelope(), payload=payload))
            return
        if not text and not attachments:
            self.result.skipped = True  # nothing an agent could read (e.g. a game, an invoice)
            return
        if author is None:
            author = AuthorRef(namespace=NAMESPACE, external_id=str(chat["id"]), name=chat.get("title"))
        received = InboundMessage(
            **ref,
            author=author,
            direction=self._direction(message, chat),
            text=text,
            attachments=attachments,
            reply_to_external_id=self._reply_to(message, chat),
            sent_at=_time(message.get("date")),
            meta=meta,
        )
        self.result.events.append(MessageReceived(**self._envelope(), payload=received))

    def _message_id(self, message: Json, chat: Json) -> str:
        if message.get("is_automatic_forward") and (origin := _channel_origin(message)):
            # The discussion group's copy of a channel post is that post.
            return f"{origin[0]}:{origin[1]}"
        prefix = f"b:{message['business_connection_id']}:" if message.get("business_connection_id") else ""
        return f"{prefix}{chat['id']}:{message['message_id']}"

    def _reply_to(self, message: Json, chat: Json) -> str | None:
        quoted = message.get("reply_to_message")
        if not isinstance(quoted, dict) or "message_id" not in quoted or _is_service(quoted):
            return None
        if message.get("is_topic_message") and quoted.get("message_id") == message.get("message_thread_id"):
            return None  # a topic's messages "reply" to the topic's opening; that is not a reply
        return self._message_id(quoted, quoted.get("chat") or chat)

    def _thread_of(self, message: Json, chat: Json) -> ThreadRef:
        prefix = f"b:{message['business_connection_id']}:" if message.get("business_connection_id") else ""
        canonical = self._canonical_chat(chat["id"])
        kind = chat.get("type")
        if kind == "channel":
            return ThreadRef(
                external_id=f"{canonical}:post:{message['message_id']}", title=_post_title(chat, message)
            )
        if message.get("is_automatic_forward") and (origin := _channel_origin(message)):
            key = f"{origin[0]}:post:{origin[1]}"
            self.result.learned[thread_alias_key(chat["id"], message["message_id"])] = key
            return ThreadRef(external_id=key, title=_post_title(message["forward_origin"]["chat"], message))
        thread_id = message.get("message_thread_id")
        if thread_id is not None and kind == "supergroup":
            if chat.get("is_forum"):
                return ThreadRef(external_id=f"{canonical}:topic:{thread_id}", title=_topic_title(message))
            post = self._alias(thread_alias_key(chat["id"], thread_id)) or self._post_quoted(
                message, chat, thread_id
            )
            if post is not None:
                return ThreadRef(external_id=post)
        return ThreadRef(external_id=f"{prefix}{canonical}", title=_chat_title(chat))

    def _post_quoted(self, message: Json, chat: Json, thread_id: int) -> str | None:
        quoted = message.get("reply_to_message")
        if (
            isinstance(quoted, dict)
            and quoted.get("is_automatic_forward")
            and (origin := _channel_origin(quoted))
        ):
            key = f"{origin[0]}:post:{origin[1]}"
            self.result.learned[thread_alias_key(chat["id"], thread_id)] = key
            return key
        return None

    def _author_of(self, message: Json) -> AuthorRef | None:
        sender_chat = message.get("sender_chat")
        if isinstance(sender_chat, dict) and "id" in sender_chat:
            # Channels, anonymous admins and linked channels speak as a chat; ``from`` is a stand-in.
            return _chat_author(sender_chat, message.get("author_signature"))
        user = message.get("from")
        return _user_author(user) if isinstance(user, dict) and "id" in user else None

    def _direction(self, message: Json, chat: Json) -> str:
        if message.get("business_connection_id"):
            user = message.get("from") or {}
            # In a business chat the other party is the chat; anyone else is the business speaking.
            if message.get("sender_business_bot") or (
                chat.get("type") == "private" and user.get("id") != chat["id"]
            ):
                return "outbound"
        return "inbound"

    # -- service messages ------------------------------------------------------------------------

    def _learn_migration(self, message: Json, chat: Json) -> None:
        if (new_id := message.get("migrate_to_chat_id")) is not None:
            self.result.learned[chat_alias_key(new_id)] = self._canonical_chat(chat["id"])
        if (old_id := message.get("migrate_from_chat_id")) is not None:
            self.result.learned[chat_alias_key(chat["id"])] = self._canonical_chat(old_id)

    def _service(self, message: Json, chat: Json) -> None:
        thread = self._thread_of(message, chat)
        base = self._message_id(message, chat)
        actor = self._author_of(message)
        at = _time(message.get("date"))

        def change(suffix: str, kind: str, **fields: Any) -> None:
            payload = ThreadChange(
                channel_id=self.channel_id,
                platform=PLATFORM,
                thread=fields.pop("thread", thread),
                external_id=f"{base}{suffix}",
                change=kind,
                actor=actor,
                occurred_at=at,
                **fields,
            )
            self.result.events.append(ThreadChanged(**self._envelope(), payload=payload))

        for member in message.get("new_chat_members") or []:
            if isinstance(member, dict) and "id" in member:
                change(f":joined:{member['id']}", "member_joined", member=_user_author(member))
        if isinstance(left := message.get("left_chat_member"), dict) and "id" in left:
            change(f":left:{left['id']}", "member_left", member=_user_author(left))
        if message.get("new_chat_title"):
            title = str(message["new_chat_title"])
            change(
                ":title",
                "renamed",
                title=title,
                thread=ThreadRef(external_id=thread.external_id, title=title),
            )
        for key in ("forum_topic_created", "forum_topic_edited"):
            topic = message.get(key)
            if isinstance(topic, dict) and topic.get("name"):
                name = str(topic["name"])
                change(
                    f":{key}",
                    "renamed",
                    title=name,
                    thread=ThreadRef(external_id=thread.external_id, title=name),
                )
        if not self.result.events and not self.result.learned:
            self.result.skipped = True  # pinned messages, boosts, video chats...: nothing an inbox keeps

    # -- other kinds -----------------------------------------------------------------------------

    def deleted_business(self, payload: Json) -> None:
        chat = payload.get("chat") or {}
        connection = payload.get("business_connection_id")
        if "id" not in chat or not connection:
            self.result.skipped = True
            return
        thread = ThreadRef(external_id=f"b:{connection}:{self._canonical_chat(chat['id'])}")
        for message_id in payload.get("message_ids") or []:
            deletion = MessageDeletion(
                channel_id=self.channel_id,
                platform=PLATFORM,
                thread=thread,
                external_id=f"b:{connection}:{chat['id']}:{message_id}",
                deleted_at=self.received_at,
            )
            self.result.events.append(MessageDeleted(**self._envelope(), payload=deletion))

    def reaction(self, payload: Json) -> None:
        chat = payload.get("chat") or {}
        if "id" not in chat or "message_id" not in payload:
            self.result.skipped = True
            return
        if isinstance(payload.get("user"), dict):
            actor: AuthorRef | None = _user_author(payload["user"])
        elif isinstance(payload.get("actor_chat"), dict):
            actor = _chat_author(payload["actor_chat"], None)
        else:
            actor = None
        reactions = tuple(
            str(r.get("emoji") or r.get("custom_emoji_id") or r.get("type"))
            for r in payload.get("new_reaction") or []
            if isinstance(r, dict)
        )
        change = ReactionChange(
            channel_id=self.channel_id,
            platform=PLATFORM,
            message_external_id=f"{chat['id']}:{payload['message_id']}",
            actor=actor,
            reactions=reactions,
            reacted_at=_time(payload.get("date")),
        )
        self.result.events.append(ReactionChanged(**self._envelope(), payload=change))


_SERVICE_FIELDS = frozenset(
    {
        "new_chat_members", "left_chat_member", "new_chat_title", "new_chat_photo", "delete_chat_photo",
        "group_chat_created", "supergroup_chat_created", "channel_chat_created", "migrate_to_chat_id",
        "migrate_from_chat_id", "pinned_message", "forum_topic_created", "forum_topic_edited",
        "forum_topic_closed", "forum_topic_reopened", "general_forum_topic_hidden",
        "general_forum_topic_unhidden", "message_auto_delete_timer_changed", "boost_added",
        "video_chat_started", "video_chat_ended", "video_chat_scheduled", "video_chat_participants_invited",
        "write_access_allowed", "chat_shared", "users_shared", "proximity_alert_triggered",
    }
)  # fmt: skip


def _is_service(message: Mapping[str, Any]) -> bool:
    return any(key in message for key in _SERVICE_FIELDS)


def _meta(message: Mapping[str, Any]) -> dict[str, Any]:
    """What a frontend needs to render the message faithfully, beyond text and attachments."""
    meta: dict[str, Any] = {}
    entities = message.get("entities") if message.get("text") is not None else message.get("caption_entities")
    if isinstance(entities, list) and entities:
        meta["entities"] = entities  # offsets and lengths in UTF-16 code units
    origin = message.get("forward_origin")
    if isinstance(origin, dict) and not message.get("is_automatic_forward"):
        meta["forwarded_from"] = _origin_name(origin)
    for key in ("media_group_id", "author_signature", "message_thread_id"):
        if message.get(key) is not None:
            meta[key] = message[key]
    if isinstance(message.get("via_bot"), dict) and message["via_bot"].get("username"):
        meta["via_bot"] = "@" + str(message["via_bot"]["username"])
    return meta


def _origin_name(origin: Mapping[str, Any]) -> str | None:
    kind = origin.get("type")
    if kind == "user" and isinstance(origin.get("sender_user"), dict):
        return _user_author(origin["sender_user"]).name
    if kind == "hidden_user":
        return str(origin.get("sender_user_name") or "") or None
    source = origin.get("chat") if kind == "channel" else origin.get("sender_chat")
    return _chat_title(source) if isinstance(source, dict) else None


def _time(value: Any) -> datetime:
    return datetime.fromtimestamp(int(value or 0), UTC)


def _user_author(user: Mapping[str, Any]) -> AuthorRef:
    name = " ".join(part for part in (user.get("first_name"), user.get("last_name")) if part) or None
    username = user.get("username")
    return AuthorRef(
        namespace=NAMESPACE,
        external_id=str(user["id"]),
        handle=f"@{username}" if username else None,
        name=name,
    )


def _chat_author(chat: Mapping[str, Any], signature: str | None) -> AuthorRef:
    username = chat.get("username")
    title = (
        chat.get("title") or " ".join(p for p in (chat.get("first_name"), chat.get("last_name")) if p) or None
    )
    name = f"{title} ({signature})" if title and signature else title
    return AuthorRef(
        namespace=NAMESPACE,
        external_id=str(chat["id"]),
        handle=f"@{username}" if username else None,
        name=name,
    )


def _chat_title(chat: Mapping[str, Any]) -> str | None:
    if chat.get("title"):
        return str(chat["title"])
    name = " ".join(part for part in (chat.get("first_name"), chat.get("last_name")) if part)
    return name or None


def _post_title(channel: Mapping[str, Any], message: Mapping[str, Any]) -> str | None:
    title = channel.get("title")
    excerpt = (message.get("text") or message.get("caption") or "").strip().splitlines()
    if title and excerpt:
        first = excerpt[0]
        return f"{title}: {first[:60]}{'…' if len(first) > 60 else ''}"
    return str(title) if title else None


def _topic_title(message: Mapping[str, Any]) -> str | None:
    quoted = message.get("reply_to_message")
    if isinstance(quoted, dict) and isinstance(quoted.get("forum_topic_created"), dict):
        return str(quoted["forum_topic_created"].get("name") or "") or None
    return None


def _channel_origin(message: Mapping[str, Any]) -> tuple[int, int] | None:
    origin = message.get("forward_origin")
    if isinstance(origin, dict) and origin.get("type") == "channel":
        chat = origin.get("chat") or {}
        if "id" in chat and "message_id" in origin:
            return int(chat["id"]), int(origin["message_id"])
    return None


_MEDIA = (
    # field, attachment type, default mime
    ("animation", "animation", "video/mp4"),
    ("document", "document", None),
    ("audio", "audio", None),
    ("voice", "voice", "audio/ogg"),
    ("video", "video", "video/mp4"),
    ("video_note", "video_note", "video/mp4"),
    ("sticker", "sticker", None),
)


def _attachments(message: Mapping[str, Any]) -> tuple[Attachment, ...]:
    found: list[Attachment] = []
    photos = message.get("photo")
    if isinstance(photos, list) and photos and isinstance(photos[-1], dict):
        largest = photos[-1]  # sizes come smallest first
        found.append(
            Attachment(
                type="image",
                file_ref=largest.get("file_id"),
                size=largest.get("file_size"),
                mime="image/jpeg",
            )
        )
    for key, kind, default_mime in _MEDIA:
        item = message.get(key)
        if not isinstance(item, dict):
            continue
        if key == "document" and "animation" in message:
            continue  # an animation also sets ``document``
        name = item.get("file_name") or (item.get("emoji") if key == "sticker" else None) or item.get("title")
        mime = item.get("mime_type") or (
            ("video/webm" if item.get("is_video") else "image/webp") if key == "sticker" else default_mime
        )
        found.append(
            Attachment(
                type=kind, file_ref=item.get("file_id"), size=item.get("file_size"), mime=mime, name=name
            )
        )
    location = message.get("location")
    if isinstance(location, dict) and "latitude" in location:
        venue: Mapping[str, Any] = message["venue"] if isinstance(message.get("venue"), dict) else {}
        label = ", ".join(str(v) for v in (venue.get("title"), venue.get("address")) if v) or None
        found.append(
            Attachment(type="location", url=f"geo:{location['latitude']},{location['longitude']}", name=label)
        )
    contact = message.get("contact")
    if isinstance(contact, dict):
        name = " ".join(p for p in (contact.get("first_name"), contact.get("last_name")) if p) or None
        phone = contact.get("phone_number")
        found.append(Attachment(type="contact", name=name, url=f"tel:{phone}" if phone else None))
    if isinstance(message.get("poll"), dict):
        found.append(Attachment(type="poll", name=str(message["poll"].get("question") or "") or None))
    if isinstance(message.get("dice"), dict):
        found.append(Attachment(type="dice", name=message["dice"].get("emoji")))
    return tuple(found)
