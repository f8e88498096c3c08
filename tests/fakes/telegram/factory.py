"""Builders for Bot API objects and update payloads, shaped as platforms.md §1.4-1.5 describes.

Everything is a plain JSON-ready dict: ids are ints, ``date`` is Unix seconds (UTC). Ids not given are
random, so tests never collide. Message builders leave ``message_id`` out unless you pass one:
``FakeBot.push_update`` gives the message its chat's next id and writes it back into your dict, so a
later ``reply_to=`` or ``factory.edited(...)`` can point at it.

    zoe = factory.user("Zoë", username="zoe_k")
    question = factory.message(chat, zoe, text="is order #88 shipped?")
    bot.push_message(question)
    bot.push_message(factory.message(chat, ravi, text="yes", reply_to=question))
    bot.push_message(factory.edited(question, text="is order #89 shipped?"), kind="edited_message")
"""

from __future__ import annotations

import copy
import random
import secrets
import time
from collections.abc import Iterable, Mapping
from typing import Any

Json = dict[str, Any]

# Senders Telegram substitutes when a message has no real user behind it.
TELEGRAM_USER: Json = {"id": 777000, "is_bot": False, "first_name": "Telegram"}  # automatic forwards
GROUP_ANONYMOUS_BOT: Json = {
    "id": 1087968824,
    "is_bot": True,
    "first_name": "Group",
    "username": "GroupAnonymousBot",
}  # anonymous group admins
CHANNEL_BOT: Json = {"id": 136817688, "is_bot": True, "first_name": "Channel", "username": "Channel_Bot"}


def now() -> int:
    return int(time.time())


def utf16_len(text: str) -> int:
    """Length in UTF-16 code units, the unit of entity offsets and of the 4096 limit."""
    return len(text.encode("utf-16-le")) // 2


# -- ids ------------------------------------------------------------------------------------------


def new_user_id() -> int:
    return random.randint(1_000_000_000, 8_999_999_999)


def new_group_id() -> int:
    return -random.randint(100_000_000, 999_999_999)


def new_supergroup_id() -> int:
    """``-100`` followed by ten digits, the form of supergroup and channel ids."""
    return -(10**12 + random.randint(1_000_000_000, 9_999_999_999))


def new_file_id(prefix: str = "BQACAgIAAxkBAAI") -> str:
    return prefix + secrets.token_urlsafe(36)


def new_file_unique_id() -> str:
    return "AgAD" + secrets.token_urlsafe(9)


# -- users and chats ------------------------------------------------------------------------------


def user(
    first_name: str = "Zoë",
    *,
    last_name: str | None = None,
    username: str | None = None,
    language_code: str | None = None,
    user_id: int | None = None,
    is_bot: bool = False,
    is_premium: bool | None = None,
) -> Json:
    """A User."""
    result: Json = {"id": user_id or new_user_id(), "is_bot": is_bot, "first_name": first_name}
    _put(result, last_name=last_name, username=username, language_code=language_code, is_premium=is_premium)
    return result


def private_chat(of: Mapping[str, Any]) -> Json:
    """The private Chat with a user (its id is the user's id)."""
    result: Json = {"id": of["id"], "type": "private", "first_name": of["first_name"]}
    _put(result, last_name=of.get("last_name"), username=of.get("username"))
    return result


def group(title: str, *, chat_id: int | None = None) -> Json:
    """A basic group Chat (a small negative id)."""
    return {"id": chat_id or new_group_id(), "type": "group", "title": title}


def supergroup(
    title: str, *, chat_id: int | None = None, username: str | None = None, forum: bool = False
) -> Json:
    result: Json = {"id": chat_id or new_supergroup_id(), "type": "supergroup", "title": title}
    _put(result, username=username, is_forum=True if forum else None)
    return result


def channel(title: str, *, chat_id: int | None = None, username: str | None = None) -> Json:
    result: Json = {"id": chat_id or new_supergroup_id(), "type": "channel", "title": title}
    _put(result, username=username)
    return result


# -- entities and media (each media builder returns the Message fields it sets) --------------------


def entity(text: str, part: str, kind: str, **extra: Any) -> Json:
    """A MessageEntity covering the first occurrence of ``part`` in ``text``, in UTF-16 units."""
    start = text.index(part)
    return {"type": kind, "offset": utf16_len(text[:start]), "length": utf16_len(part), **extra}


def _file(file: Mapping[str, Any] | None, prefix: str, size: int) -> Json:
    given = dict(file or {})
    return {
        "file_id": given.get("file_id") or new_file_id(prefix),
        "file_unique_id": given.get("file_unique_id") or new_file_unique_id(),
        "file_size": given.get("file_size") or size,
    }


def photo(*, file: Mapping[str, Any] | None = None, width: int = 1280, height: int = 960) -> Json:
    """``photo``: a thumbnail and the full size (``file``, e.g. ``bot.file_ref(file_id)``), smallest first."""
    thumb = {**_file(None, "AgACAgIAAxkBAAI", 1200), "width": 90, "height": max(1, 90 * height // width)}
    full = {**_file(file, "AgACAgIAAxkBAAI", 98311), "width": width, "height": height}
    return {"photo": [thumb, full]}


def document(
    *,
    file_name: str = "invoice.pdf",
    mime_type: str = "application/pdf",
    file: Mapping[str, Any] | None = None,
) -> Json:
    return {
        "document": {**_file(file, "BQACAgIAAxkBAAI", 48213), "file_name": file_name, "mime_type": mime_type}
    }


def voice(*, duration: int = 4, mime_type: str = "audio/ogg", file: Mapping[str, Any] | None = None) -> Json:
    return {"voice": {**_file(file, "AwACAgIAAxkBAAI", 8123), "duration": duration, "mime_type": mime_type}}


def video(
    *,
    duration: int = 12,
    width: int = 1280,
    height: int = 720,
    mime_type: str = "video/mp4",
    file: Mapping[str, Any] | None = None,
) -> Json:
    body = {**_file(file, "BAACAgIAAxkBAAI", 1_482_113), "width": width, "height": height}
    return {"video": {**body, "duration": duration, "mime_type": mime_type}}


def sticker(emoji: str = "👍", *, set_name: str | None = None, file: Mapping[str, Any] | None = None) -> Json:
    body: Json = {
        **_file(file, "CAACAgIAAxkBAAI", 23110),
        "type": "regular",
        "width": 512,
        "height": 512,
        "is_animated": False,
        "is_video": False,
        "emoji": emoji,
    }
    _put(body, set_name=set_name)
    return {"sticker": body}


def location(latitude: float, longitude: float) -> Json:
    return {"location": {"latitude": latitude, "longitude": longitude}}


def contact(
    phone_number: str, first_name: str, *, last_name: str | None = None, user_id: int | None = None
) -> Json:
    body: Json = {"phone_number": phone_number, "first_name": first_name}
    _put(body, last_name=last_name, user_id=user_id)
    return {"contact": body}


# -- forward origins --------------------------------------------------------------------------------


def origin_user(sender: Mapping[str, Any], *, date: int | None = None) -> Json:
    return {"type": "user", "date": date or now(), "sender_user": dict(sender)}


def origin_hidden_user(name: str, *, date: int | None = None) -> Json:
    return {"type": "hidden_user", "date": date or now(), "sender_user_name": name}


def origin_chat(
    chat: Mapping[str, Any], *, date: int | None = None, author_signature: str | None = None
) -> Json:
    result: Json = {"type": "chat", "date": date or now(), "sender_chat": dict(chat)}
    _put(result, author_signature=author_signature)
    return result


def origin_channel(post: Mapping[str, Any]) -> Json:
    """The origin of a forwarded channel post (the post must already have its ``message_id``)."""
    result: Json = {
        "type": "channel",
        "date": post["date"],
        "chat": dict(post["chat"]),
        "message_id": _id_of(post),
    }
    _put(result, author_signature=post.get("author_signature"))
    return result


# -- messages ----------------------------------------------------------------------------------------


def message(
    chat: Mapping[str, Any],
    sender: Mapping[str, Any] | None = None,
    *,
    text: str | None = None,
    entities: list[Json] | None = None,
    caption: str | None = None,
    caption_entities: list[Json] | None = None,
    media: Mapping[str, Any] | None = None,
    reply_to: Mapping[str, Any] | None = None,
    thread_id: int | None = None,
    sender_chat: Mapping[str, Any] | None = None,
    forward_origin: Mapping[str, Any] | None = None,
    business_connection_id: str | None = None,
    media_group_id: str | None = None,
    message_id: int | None = None,
    date: int | None = None,
    **extra: Any,
) -> Json:
    """A Message in ``chat`` from ``sender`` (a User), or on behalf of ``sender_chat``.

    ``reply_to`` embeds that message as ``reply_to_message`` (not nested further) and, unless
    ``thread_id`` is given, puts this message in the same thread. In a forum, a ``thread_id`` also sets
    ``is_topic_message``. ``media`` is what a media builder returns (``factory.photo(...)``).
    """
    result: Json = {}
    if message_id is not None:
        result["message_id"] = message_id
    if reply_to is not None and thread_id is None:
        thread_id = reply_to.get("message_thread_id")
    if thread_id is not None:
        result["message_thread_id"] = thread_id
        if chat.get("is_forum"):
            result["is_topic_message"] = True
    if sender is None and sender_chat is not None and chat.get("type") != "channel":
        # Messages on behalf of a chat carry a placeholder user for old clients.
        sender = GROUP_ANONYMOUS_BOT if sender_chat.get("id") == chat.get("id") else CHANNEL_BOT
    if sender is not None:
        result["from"] = dict(sender)
    if sender_chat is not None:
        result["sender_chat"] = dict(sender_chat)
    result["date"] = date or now()
    result["chat"] = dict(chat)
    _put(result, business_connection_id=business_connection_id, media_group_id=media_group_id)
    if forward_origin is not None:
        result["forward_origin"] = dict(forward_origin)
    if reply_to is not None:
        result["reply_to_message"] = quoted(reply_to)
    _put(result, text=text, entities=entities)
    result.update(copy.deepcopy(dict(media or {})))
    _put(result, caption=caption, caption_entities=caption_entities)
    result.update(extra)
    return result


def quoted(target: Mapping[str, Any]) -> Json:
    """``target`` as it appears inside ``reply_to_message``: without its own reply, never nested."""
    _id_of(target)
    return {key: copy.deepcopy(value) for key, value in target.items() if key != "reply_to_message"}


def channel_post(
    channel_chat: Mapping[str, Any],
    *,
    text: str | None = None,
    author_signature: str | None = None,
    media: Mapping[str, Any] | None = None,
    caption: str | None = None,
    **extra: Any,
) -> Json:
    """A ``channel_post``: no ``from``, the channel as ``sender_chat``."""
    if author_signature:
        extra["author_signature"] = author_signature
    return message(channel_chat, sender_chat=channel_chat, text=text, media=media, caption=caption, **extra)


def automatic_forward(discussion_group: Mapping[str, Any], post: Mapping[str, Any]) -> Json:
    """The copy of a channel ``post`` Telegram puts into the channel's linked discussion supergroup.

    Comments on the post are replies to this message (see ``comment``).
    """
    content = {key: post[key] for key in post if key in _CONTENT_KEYS}
    return message(
        discussion_group,
        TELEGRAM_USER,
        sender_chat=post["chat"],
        forward_origin=origin_channel(post),
        is_automatic_forward=True,
        **content,
    )


def comment(
    discussion_group: Mapping[str, Any],
    sender: Mapping[str, Any],
    *,
    on: Mapping[str, Any],
    text: str,
    **extra: Any,
) -> Json:
    """A comment on a channel post: a reply to its automatic forward, in that message's thread."""
    return message(discussion_group, sender, text=text, reply_to=on, thread_id=_id_of(on), **extra)


def edited(original: Mapping[str, Any], *, text: str | None = None, caption: str | None = None) -> Json:
    """``original`` after an edit: same ``message_id`` and ``date``, a new ``edit_date`` and content."""
    result = copy.deepcopy(dict(original))
    _id_of(result)
    result["edit_date"] = max(now(), int(result["date"]) + 1)
    if text is not None:
        result["text"] = text
        result.pop("entities", None)
    if caption is not None:
        result["caption"] = caption
        result.pop("caption_entities", None)
    return result


# -- service messages (no text) ---------------------------------------------------------------------


def new_chat_members(
    chat: Mapping[str, Any], members: Iterable[Mapping[str, Any]], *, actor: Mapping[str, Any] | None = None
) -> Json:
    joined = [dict(member) for member in members]
    return message(chat, actor or joined[0], new_chat_members=joined)


def left_chat_member(
    chat: Mapping[str, Any], member: Mapping[str, Any], *, actor: Mapping[str, Any] | None = None
) -> Json:
    return message(chat, actor or member, left_chat_member=dict(member))


def new_chat_title(chat: Mapping[str, Any], title: str, *, actor: Mapping[str, Any]) -> Json:
    return message(chat, actor, new_chat_title=title)


def migrate_to(
    group_chat: Mapping[str, Any], supergroup_id: int, *, actor: Mapping[str, Any] | None = None
) -> Json:
    """The last message of a basic group upgraded to a supergroup."""
    return message(group_chat, actor or TELEGRAM_USER, migrate_to_chat_id=supergroup_id)


def migrate_from(
    supergroup_chat: Mapping[str, Any], group_id: int, *, actor: Mapping[str, Any] | None = None
) -> Json:
    """The first message of a supergroup made from a basic group."""
    return message(supergroup_chat, actor or TELEGRAM_USER, migrate_from_chat_id=group_id)


def forum_topic_created(
    forum: Mapping[str, Any], name: str, *, actor: Mapping[str, Any] | None = None, icon_color: int = 7322096
) -> Json:
    """The service message opening a forum topic; its ``message_id`` becomes the topic's thread id."""
    return message(
        forum, actor or TELEGRAM_USER, forum_topic_created={"name": name, "icon_color": icon_color}
    )


# -- other update payloads ---------------------------------------------------------------------------


def message_reaction(
    chat: Mapping[str, Any],
    message_id: int,
    reactor: Mapping[str, Any],
    *,
    new: Iterable[str] = ("👍",),
    old: Iterable[str] = (),
    date: int | None = None,
) -> Json:
    """A ``message_reaction`` payload (emoji reactions of one user)."""
    return {
        "chat": dict(chat),
        "message_id": message_id,
        "user": dict(reactor),
        "date": date or now(),
        "old_reaction": [{"type": "emoji", "emoji": emoji} for emoji in old],
        "new_reaction": [{"type": "emoji", "emoji": emoji} for emoji in new],
    }


def business_connection(
    owner: Mapping[str, Any],
    *,
    connection_id: str | None = None,
    can_reply: bool = True,
    is_enabled: bool = True,
) -> Json:
    """A ``business_connection`` payload: a Telegram Business account connected to the bot."""
    return {
        "id": connection_id or "bc_" + secrets.token_urlsafe(12),
        "user": dict(owner),
        "user_chat_id": owner["id"],
        "date": now(),
        "can_reply": can_reply,
        "is_enabled": is_enabled,
    }


def deleted_business_messages(
    connection_id: str, chat: Mapping[str, Any], message_ids: Iterable[int]
) -> Json:
    return {"business_connection_id": connection_id, "chat": dict(chat), "message_ids": list(message_ids)}


def callback_query(
    sender: Mapping[str, Any], on: Mapping[str, Any], data: str, *, query_id: str | None = None
) -> Json:
    """A ``callback_query`` payload: ``sender`` pressed an inline button under the bot's message ``on``."""
    return {
        "id": query_id or str(random.randint(10**17, 10**19)),
        "from": dict(sender),
        "message": quoted(on),
        "chat_instance": str(-random.randint(10**17, 10**18)),
        "data": data,
    }


# -- helpers -----------------------------------------------------------------------------------------

_CONTENT_KEYS = frozenset(
    {"text", "entities", "caption", "caption_entities", "photo", "document", "animation", "audio", "voice",
     "video", "video_note", "sticker", "contact", "location", "venue", "poll", "dice", "media_group_id"}
)  # fmt: skip


def _id_of(message_: Mapping[str, Any]) -> int:
    if "message_id" not in message_:
        raise ValueError("push the message first (it has no message_id yet) or give it one")
    return int(message_["message_id"])


def _put(target: Json, **values: Any) -> None:
    """Set the optional fields that have a value (the Bot API omits empty optional fields)."""
    target.update({key: value for key, value in values.items() if value is not None})
