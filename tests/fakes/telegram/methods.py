"""The Bot API methods the fake implements, with the real server's checks and error texts (platforms.md §1)."""

from __future__ import annotations

import re
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any

from yarl import URL

from tests.fakes.telegram import factory
from tests.fakes.telegram.bot import FakeBot
from tests.fakes.telegram.chats import ChatState, Member
from tests.fakes.telegram.errors import bad_request, conflict, forbidden, too_many_requests
from tests.fakes.telegram.params import Params
from tests.fakes.telegram.records import Ban, Unban
from tests.fakes.telegram.webhook import WebhookConfig

Json = dict[str, Any]
Handler = Callable[[FakeBot, Params], Awaitable[Any]]

MAX_TEXT = 4096  # UTF-16 code units
MAX_DOWNLOAD = 20 * 1024 * 1024
DELETE_WINDOW = 48 * 3600
SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]+")
WEBHOOK_ACTIVE = (
    "can't use getUpdates method while webhook is active; use deleteWebhook to delete the webhook first"
)
NOT_ENOUGH_RIGHTS = "not enough rights to restrict/ban chat member"


@dataclass(frozen=True)
class Described:
    """A success answer that also carries a ``description`` (setWebhook and deleteWebhook do)."""

    result: Any
    description: str


METHODS: dict[str, tuple[str, Handler]] = {}  # lower-cased name -> (canonical name, handler)


def method(*names: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        for name in names:
            METHODS[name.lower()] = (name, handler)
        return handler

    return register


def canonical(name: str) -> str:
    known = METHODS.get(name.lower())
    return known[0] if known else name


def _clamp(value: int | None, default: int, low: int, high: int) -> int:
    return default if value is None else min(max(value, low), high)


def resolve_chat(bot: FakeBot, ref: int | str, *, business_connection_id: str | None = None) -> ChatState:
    """The chat a call names, or the error the server gives (not found, upgraded to a supergroup)."""
    state: ChatState | None
    if business_connection_id:
        if business_connection_id not in bot.business_connections:
            raise bad_request("business connection not found")
        state = bot.business_chats.get((business_connection_id, ref)) if isinstance(ref, int) else None
    elif isinstance(ref, str):
        wanted = ref.removeprefix("@").lower()
        state = next(
            (s for s in bot.chats.values() if str(s.chat.get("username", "")).lower() == wanted), None
        )
    else:
        state = bot.chats.get(ref)
    if state is None:
        raise bad_request("chat not found")
    if state.migrated_to is not None:
        raise bad_request(
            "group chat was upgraded to a supergroup chat", migrate_to_chat_id=state.migrated_to
        )
    return state


def check_can_send(state: ChatState) -> None:
    """403 when the bot may not write here: blocked or deactivated user, bot removed from the chat."""
    if state.type == "private":
        if state.deactivated:
            raise forbidden("user is deactivated")
        if state.blocked:
            raise forbidden("bot was blocked by the user")
    elif state.bot_status == "kicked":
        if state.type == "channel":
            raise forbidden("bot is not a member of the channel chat")
        raise forbidden(f"bot was kicked from the {state.type} chat")
    elif state.bot_status == "left":
        raise forbidden(f"bot is not a member of the {state.type} chat")


# -- updates and webhooks ---------------------------------------------------------------------------


@method("getMe")
async def get_me(bot: FakeBot, params: Params) -> Json:
    return bot.get_me()


@method("getUpdates")
async def get_updates(bot: FakeBot, params: Params) -> list[Json]:
    if bot.webhook is not None:
        raise conflict(WEBHOOK_ACTIVE)
    return await bot.updates.poll(
        offset=params.get_int("offset") or 0,
        limit=_clamp(params.get_int("limit"), 100, 1, 100),
        timeout=_clamp(params.get_int("timeout"), 0, 0, 50),
        allowed=params.get_json("allowed_updates"),
    )


@method("setWebhook")
async def set_webhook(bot: FakeBot, params: Params) -> Described:
    url = params.get_str("url") or ""
    secret = params.get_str("secret_token") or None
    if secret is not None:
        if len(secret) > 256:
            raise bad_request("secret token is too long")
        if not SECRET_TOKEN.fullmatch(secret):
            raise bad_request("secret token contains unallowed characters")
    if url:
        parsed = URL(url)
        # The real server wants HTTPS on port 443, 80, 88 or 8443; the fake takes any http(s) URL so
        # tests can point it at a local receiver.
        if parsed.scheme not in ("http", "https") or not parsed.host:
            raise bad_request("invalid webhook URL specified")
    bot.updates.set_allowed(params.get_json("allowed_updates"))
    if params.get_bool("drop_pending_updates"):
        bot.updates.clear()
    if not url:
        return await _remove_webhook(bot)
    config = WebhookConfig(
        url=url,
        secret_token=secret,
        max_connections=_clamp(params.get_int("max_connections"), 40, 1, 100),
        ip_address=params.get_str("ip_address") or None,
    )
    current = bot.webhook
    unchanged = current is not None and (current.url, current.secret_token, current.max_connections) == (
        config.url,
        config.secret_token,
        config.max_connections,
    )
    if unchanged and not params.get_bool("drop_pending_updates"):
        return Described(True, "Webhook is already set")
    bot.updates.terminate_poll(WEBHOOK_ACTIVE)
    await bot.set_webhook(config)
    return Described(True, "Webhook was set")


@method("deleteWebhook")
async def delete_webhook(bot: FakeBot, params: Params) -> Described:
    if params.get_bool("drop_pending_updates"):
        bot.updates.clear()
    return await _remove_webhook(bot)


async def _remove_webhook(bot: FakeBot) -> Described:
    if bot.webhook is None:
        return Described(True, "Webhook is already deleted")
    await bot.set_webhook(None)
    return Described(True, "Webhook was deleted")


@method("getWebhookInfo")
async def get_webhook_info(bot: FakeBot, params: Params) -> Json:
    info: Json = {
        "url": "",
        "has_custom_certificate": False,
        "pending_update_count": len(bot.pending_updates),
    }
    hook = bot.webhook
    if hook is not None:
        info["url"] = hook.url
        if hook.ip_address:
            info["ip_address"] = hook.ip_address
        if hook.last_error_date is not None:
            info["last_error_date"] = hook.last_error_date
            info["last_error_message"] = hook.last_error_message
        info["max_connections"] = hook.max_connections
    if bot.allowed_updates is not None:
        info["allowed_updates"] = bot.allowed_updates
    return info


# -- sending ----------------------------------------------------------------------------------------


@method("sendMessage")
async def send_message(bot: FakeBot, params: Params) -> Json:
    text = params.get_str("text")
    if text is None or not text.strip():
        raise bad_request("message text is empty")
    connection_id = params.get_str("business_connection_id") or None
    state = resolve_chat(bot, params.chat_id(), business_connection_id=connection_id)
    check_can_send(state)
    target, thread_id = _reply_target(state, params, business=connection_id is not None)
    if thread_id is not None:
        _check_thread(state, thread_id)
    if factory.utf16_len(text) > MAX_TEXT:
        raise bad_request("message is too long")
    retry_after = bot.limiter.admit(state.id, is_group=state.is_group, now=time.monotonic())
    if retry_after is not None:
        bot.record_send(state.id, throttled=True)
        raise too_many_requests(retry_after)

    message: Json = {"message_id": state.allocate_message_id()}
    if thread_id is not None:
        message["message_thread_id"] = thread_id
        if state.is_forum:
            message["is_topic_message"] = True
    if connection_id is not None:
        message["from"] = dict(bot.business_connections[connection_id]["user"])
        message["sender_business_bot"] = dict(bot.user)
        message["business_connection_id"] = connection_id
    elif state.type == "channel":
        message["sender_chat"] = dict(state.chat)
    else:
        message["from"] = dict(bot.user)
    message["chat"] = dict(state.chat)
    message["date"] = factory.now()
    if target is not None:
        message["reply_to_message"] = factory.quoted(target)
    elif state.is_forum and thread_id in state.topics:
        message["reply_to_message"] = factory.quoted(state.topics[thread_id])
    message["text"] = text
    if isinstance(entities := params.get_json("entities"), list) and entities:
        message["entities"] = entities
    markup = params.get_json("reply_markup")
    if isinstance(markup, dict) and "inline_keyboard" in markup:
        message["reply_markup"] = markup
    state.messages[message["message_id"]] = message
    bot.record_send(state.id, throttled=False, message=message)
    return message


def _reply_target(state: ChatState, params: Params, *, business: bool) -> tuple[Json | None, int | None]:
    """The message replied to (``reply_parameters`` or the legacy ``reply_to_message_id``) and the thread."""
    reply = params.get_json("reply_parameters")
    if isinstance(reply, dict) and reply.get("message_id") is not None:
        message_id = int(reply["message_id"])
        allow_missing = bool(reply.get("allow_sending_without_reply"))
    elif params.has("reply_to_message_id"):
        message_id = params.get_int("reply_to_message_id") or 0
        allow_missing = params.get_bool("allow_sending_without_reply")
    else:
        return None, params.get_int("message_thread_id")
    target = state.messages.get(message_id)
    if target is None and not (allow_missing or business):
        raise bad_request("message to be replied not found")
    thread_id = params.get_int("message_thread_id")
    if thread_id is None and target is not None:
        thread_id = target.get("message_thread_id")
    return target, thread_id


def _check_thread(state: ChatState, thread_id: int) -> None:
    if state.is_forum:
        known = thread_id in state.topics
    elif state.type == "supergroup":
        known = thread_id in state.messages  # a comment thread is rooted at an existing message
    else:
        known = True
    if not known:
        raise bad_request("message thread not found")


# -- moderation ---------------------------------------------------------------------------------------


@method("deleteMessage")
async def delete_message(bot: FakeBot, params: Params) -> bool:
    state = resolve_chat(bot, params.chat_id())
    message_id = params.message_id()
    message = state.messages.get(message_id)
    if message is None:
        raise bad_request("message to delete not found")
    if not _can_delete(bot, state, message):
        raise bad_request("message can't be deleted")
    del state.messages[message_id]
    bot.deleted.append((state.id, message_id))
    return True


@method("deleteMessages")
async def delete_messages(bot: FakeBot, params: Params) -> bool:
    state = resolve_chat(bot, params.chat_id())
    ids = params.get_json("message_ids")
    if not isinstance(ids, list) or not ids:
        raise bad_request("message identifiers are not specified")
    if len(ids) > 100:
        raise bad_request("too many message identifiers specified")
    for message_id in (int(value) for value in ids):
        message = state.messages.get(message_id)
        if message is not None and _can_delete(bot, state, message):  # the others are skipped
            del state.messages[message_id]
            bot.deleted.append((state.id, message_id))
    return True


def _can_delete(bot: FakeBot, state: ChatState, message: Json) -> bool:
    if state.type in ("supergroup", "channel") and state.bot_is_admin:
        return True  # can_delete_messages: any message, any age
    recent = factory.now() - int(message.get("date", 0)) < DELETE_WINDOW
    own = message.get("from", {}).get("id") == bot.id
    return recent and (own or state.type == "private" or state.bot_is_admin)


def _member_target(bot: FakeBot, params: Params) -> tuple[ChatState, int]:
    state = resolve_chat(bot, params.chat_id())
    user_id = params.user_id()
    if state.type == "private":
        raise bad_request("chat member status can't be changed in private chats")
    if not state.bot_is_admin:
        raise bad_request(NOT_ENOUGH_RIGHTS)
    member = state.members.get(user_id)
    if member is not None and member.is_admin:
        raise bad_request("user is an administrator of the chat")
    return state, user_id


@method("banChatMember", "kickChatMember")
async def ban_chat_member(bot: FakeBot, params: Params) -> bool:
    state, user_id = _member_target(bot, params)
    until_date = params.get_int("until_date") or 0
    member = state.member({"id": user_id, "is_bot": False, "first_name": ""})
    member.status, member.until_date = "kicked", until_date
    ban = Ban(
        state.id, user_id, until_date, params.get_bool("revoke_messages"), factory.now(), time.monotonic()
    )
    bot.bans.append(ban)
    return True


@method("unbanChatMember")
async def unban_chat_member(bot: FakeBot, params: Params) -> bool:
    state, user_id = _member_target(bot, params)
    only_if_banned = params.get_bool("only_if_banned")
    member = state.members.get(user_id)
    # Without only_if_banned the user ends up outside the chat even if they were a member.
    if member is not None and (member.status == "kicked" or not only_if_banned):
        member.status, member.until_date = "left", 0
    bot.unbans.append(Unban(state.id, user_id, only_if_banned, time.monotonic()))
    return True


# -- reading ------------------------------------------------------------------------------------------


@method("getChat")
async def get_chat(bot: FakeBot, params: Params) -> Json:
    return resolve_chat(bot, params.chat_id()).full_info()


@method("getChatMember")
async def get_chat_member(bot: FakeBot, params: Params) -> Json:
    state = resolve_chat(bot, params.chat_id())
    user_id = params.user_id()
    if user_id == bot.id:
        status = "member" if state.type == "private" else state.bot_status
        return Member(bot.user, status).as_chat_member(state.type)
    member = state.members.get(user_id)
    if member is not None:
        return member.as_chat_member(state.type)
    for other in bot.chats.values():
        if user_id in other.members:
            return {"status": "left", "user": other.members[user_id].user}
    raise bad_request("user not found")


@method("getFile")
async def get_file(bot: FakeBot, params: Params) -> Json:
    stored = bot.files.get(params.get_str("file_id") or "")
    if stored is None:
        raise bad_request("invalid file_id")
    if stored.file_size > MAX_DOWNLOAD:
        raise bad_request("file is too big")
    return {**stored.ref(), "file_path": stored.file_path}


@method("answerCallbackQuery")
async def answer_callback_query(bot: FakeBot, params: Params) -> bool:
    if not params.get_str("callback_query_id"):
        raise bad_request("query is too old and response timeout expired or query ID is invalid")
    return True
