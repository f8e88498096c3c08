"""One fake bot: the world it sees (chats, members, messages, files), its update queue and its records.

Tests build the world and push traffic through this object; the HTTP side (``methods.py``) reads and
changes the same state, so what a client does over the wire is visible here.
"""

from __future__ import annotations

import asyncio
import copy
import time
from collections.abc import Callable, Iterable, Mapping
from pathlib import PurePosixPath
from typing import Any

from tests.fakes.telegram import factory
from tests.fakes.telegram.chats import ChatState, Status
from tests.fakes.telegram.errors import DEFAULT_DESCRIPTIONS
from tests.fakes.telegram.ratelimit import RateLimits, SendLimiter, max_in_window
from tests.fakes.telegram.records import (
    Ban,
    DeliveryAttempt,
    Fault,
    Injection,
    RecordedRequest,
    SendAttempt,
    SentMessage,
    StoredFile,
    Unban,
)
from tests.fakes.telegram.updates import UpdateQueue
from tests.fakes.telegram.webhook import WebhookConfig, WebhookDelivery

Json = dict[str, Any]
NEW_MESSAGE_KINDS = frozenset({"message", "channel_post", "business_message"})
EDIT_KINDS = frozenset({"edited_message", "edited_channel_post", "edited_business_message"})


class FakeBot:
    """A bot registered with ``FakeTelegram.add_bot``."""

    def __init__(
        self,
        token: str,
        *,
        username: str,
        first_name: str,
        rate_limits: RateLimits,
        webhook_backoff: float,
        webhook_timeout: float,
        first_update_id: int | None = None,
    ) -> None:
        self.token = token
        self.id = int(token.split(":", 1)[0])
        self.user: Json = {"id": self.id, "is_bot": True, "first_name": first_name, "username": username}
        self.updates = UpdateQueue(first_update_id)
        self.updates.on_push = self._on_push
        self.chats: dict[int, ChatState] = {}
        self.business_connections: dict[str, Json] = {}
        self.business_chats: dict[tuple[str, int], ChatState] = {}
        self.files: dict[str, StoredFile] = {}
        self.revoked = False
        self.limiter = SendLimiter(rate_limits)
        self.webhook: WebhookConfig | None = None
        self._delivery: WebhookDelivery | None = None
        self._webhook_backoff = webhook_backoff
        self._webhook_timeout = webhook_timeout
        self.injections: list[Injection] = []
        # Records, oldest first.
        self.requests: list[RecordedRequest] = []
        self.sent: list[SentMessage] = []
        self.send_attempts: list[SendAttempt] = []
        self.bans: list[Ban] = []
        self.unbans: list[Unban] = []
        self.deleted: list[tuple[int, int]] = []  # (chat_id, message_id)
        self.deliveries: list[DeliveryAttempt] = []
        self._activity = asyncio.Event()

    @property
    def username(self) -> str:
        return str(self.user["username"])

    def get_me(self) -> Json:
        return {
            **self.user,
            "can_join_groups": True,
            "can_read_all_group_messages": False,
            "supports_inline_queries": False,
            "can_connect_to_business": True,
            "has_main_web_app": False,
        }

    # -- building the world ---------------------------------------------------------------------

    def add_private_chat(self, user: Mapping[str, Any]) -> Json:
        """The chat with a user who has started the bot; returns the Chat object."""
        if int(user["id"]) in self.chats:
            return self.chats[int(user["id"])].chat
        chat = factory.private_chat(user)
        state = self.chats[chat["id"]] = ChatState(chat)
        state.member(dict(user))
        return chat

    def add_group(
        self,
        title: str,
        *,
        supergroup: bool = True,
        forum: bool = False,
        bot_is_admin: bool = True,
        username: str | None = None,
        chat_id: int | None = None,
        members: Iterable[Mapping[str, Any]] = (),
        admins: Iterable[Mapping[str, Any]] = (),
    ) -> Json:
        """A group (a supergroup unless ``supergroup=False``) the bot is in; returns the Chat object."""
        if supergroup:
            chat = factory.supergroup(title, chat_id=chat_id, username=username, forum=forum)
        else:
            chat = factory.group(title, chat_id=chat_id)
        state = self.chats[chat["id"]] = ChatState(
            chat, bot_status="administrator" if bot_is_admin else "member"
        )
        for admin in admins:
            state.member(dict(admin), "administrator")
        for member in members:
            state.member(dict(member))
        return chat

    def add_channel(
        self,
        title: str,
        *,
        username: str | None = None,
        chat_id: int | None = None,
        bot_is_admin: bool = True,
        discussion_group: Mapping[str, Any] | None = None,
    ) -> Json:
        """A channel the bot administers, optionally linked to a discussion supergroup it is also in."""
        chat = factory.channel(title, chat_id=chat_id, username=username)
        state = self.chats[chat["id"]] = ChatState(
            chat, bot_status="administrator" if bot_is_admin else "left"
        )
        if discussion_group is not None:
            group = self.chat_state(int(discussion_group["id"]))
            state.linked_chat_id, group.linked_chat_id = group.id, state.id
        return chat

    def add_member(self, chat_id: int, user: Mapping[str, Any], *, status: Status = "member") -> None:
        self.chat_state(chat_id).member(dict(user), status).status = status

    def add_forum_topic(
        self, chat_id: int, name: str, *, actor: Mapping[str, Any] | None = None, push: bool = False
    ) -> int:
        """Open a topic in a forum supergroup; returns its ``message_thread_id``.

        The ``forum_topic_created`` service message is stored (and sent as an update with ``push=True``).
        """
        state = self.chat_state(chat_id)
        if not state.is_forum:
            raise ValueError(f"chat {chat_id} is not a forum")
        created = factory.forum_topic_created(state.chat, name, actor=actor)
        created["message_id"] = thread_id = state.allocate_message_id()
        created["message_thread_id"] = thread_id
        created["is_topic_message"] = True
        state.topics[thread_id] = copy.deepcopy(created)
        state.messages[thread_id] = copy.deepcopy(created)
        if push:
            self.updates.push("message", copy.deepcopy(created))
        return thread_id

    def add_business_connection(
        self, owner: Mapping[str, Any], *, connection_id: str | None = None, push: bool = False
    ) -> str:
        """Connect a Telegram Business account to the bot; returns the ``business_connection_id``."""
        connection = factory.business_connection(owner, connection_id=connection_id)
        self.business_connections[connection["id"]] = connection
        if push:
            self.updates.push("business_connection", copy.deepcopy(connection))
        return str(connection["id"])

    def add_file(self, data: bytes, *, path_hint: str = "documents/file.bin") -> str:
        """Register downloadable bytes; returns the ``file_id`` for media objects and getFile."""
        hint = PurePosixPath(path_hint)
        folder = str(hint.parent) if str(hint.parent) != "." else "documents"
        stored = StoredFile(
            file_id=factory.new_file_id(),
            file_unique_id=factory.new_file_unique_id(),
            file_path=f"{folder}/file_{len(self.files)}{hint.suffix}",
            data=bytes(data),
        )
        self.files[stored.file_id] = stored
        return stored.file_id

    def file_ref(self, file_id: str) -> Json:
        """``{file_id, file_unique_id, file_size}`` of a registered file, for the media builders."""
        return self.files[file_id].ref()

    def chat_state(self, chat_id: int) -> ChatState:
        try:
            return self.chats[chat_id]
        except KeyError:
            raise KeyError(f"the bot knows no chat {chat_id}") from None

    def chat(self, chat_id: int) -> Json:
        return self.chat_state(chat_id).chat

    def message(self, chat_id: int, message_id: int) -> Json | None:
        return self.chat_state(chat_id).messages.get(message_id)

    # -- traffic --------------------------------------------------------------------------------

    def push_update(self, update: Mapping[str, Any]) -> int | None:
        """Queue an update (``{kind: payload}``, one kind); returns its ``update_id``.

        New messages get their chat's next ``message_id`` unless they have one (written back into the
        dict you passed) and are remembered, so clients can reply to, delete or be told about them;
        edits and deletions update that memory; service messages change members, titles, migration.
        Returns None when the bot's ``allowed_updates`` excludes the kind: like the real server, the
        fake then never queues it.
        """
        kinds = [key for key in update if key != "update_id"]
        if len(kinds) != 1:
            raise ValueError(f"an update has exactly one payload field, got {kinds}")
        kind = kinds[0]
        payload = update[kind]
        if kind in NEW_MESSAGE_KINDS:
            self._remember(payload)
        elif kind in EDIT_KINDS:
            state = self._state_for(payload)
            if int(payload["message_id"]) in state.messages:
                state.messages[int(payload["message_id"])] = copy.deepcopy(payload)
        elif kind == "deleted_business_messages":
            state = self._state_for(payload)
            for message_id in payload["message_ids"]:
                state.messages.pop(int(message_id), None)
        return self.updates.push(kind, copy.deepcopy(payload))

    def push_message(self, message: Json, *, kind: str = "message") -> int | None:
        """``push_update({kind: message})``; kind is message, channel_post, business_message or an edit."""
        return self.push_update({kind: message})

    @property
    def pending_updates(self) -> list[Json]:
        return self.updates.pending

    @property
    def allowed_updates(self) -> list[str] | None:
        """The sticky setting (None: the default, every type but chat_member and reactions)."""
        allowed = self.updates.allowed
        return None if allowed is None else sorted(allowed)

    def _state_for(self, payload: Mapping[str, Any]) -> ChatState:
        """The chat a payload belongs to, learnt on the fly when the test built it without ``add_*``."""
        chat = payload["chat"]
        connection_id = payload.get("business_connection_id")
        if connection_id:
            key = (str(connection_id), int(chat["id"]))
            return self.business_chats.setdefault(key, ChatState(dict(chat)))
        if int(chat["id"]) not in self.chats:
            self.chats[int(chat["id"])] = ChatState(dict(chat))
        return self.chats[int(chat["id"])]

    def _remember(self, message: Json) -> None:
        state = self._state_for(message)
        if "message_id" in message:
            state.observe_message_id(int(message["message_id"]))
        else:  # first, where the Bot API puts it, so dumps read naturally
            fields = dict(message)
            message.clear()
            message.update({"message_id": state.allocate_message_id(), **fields})
        message.setdefault("date", factory.now())
        thread_id = message.get("message_thread_id")
        if state.is_forum and thread_id in state.topics and "reply_to_message" not in message:
            # In forum topics, a message that replies to nothing replies to the topic's opening message.
            message["reply_to_message"] = factory.quoted(state.topics[thread_id])
        sender = message.get("from")
        if (
            state.type != "channel"
            and isinstance(sender, dict)
            and sender.get("id") != factory.TELEGRAM_USER["id"]
        ):
            state.member(sender)
        for joined in message.get("new_chat_members", []):
            if joined["id"] == self.id:
                state.bot_status = "member"
            else:
                state.member(joined).status = "member"
        if left := message.get("left_chat_member"):
            if left["id"] == self.id:
                state.bot_status = "kicked"
            else:
                state.member(left).status = "left"
        if title := message.get("new_chat_title"):
            state.chat["title"] = title
        if new_id := message.get("migrate_to_chat_id"):
            state.migrated_to = int(new_id)
        state.messages[int(message["message_id"])] = copy.deepcopy(message)

    def migrate_to_supergroup(
        self, chat_id: int, *, new_chat_id: int | None = None, actor: Mapping[str, Any] | None = None
    ) -> int:
        """Upgrade a basic group: push ``migrate_to_chat_id`` / ``migrate_from_chat_id`` service messages;
        afterwards calls naming the old id answer 400 with ``parameters.migrate_to_chat_id``."""
        old = self.chat_state(chat_id)
        if old.type != "group":
            raise ValueError(f"chat {chat_id} is not a basic group")
        new_chat = factory.supergroup(str(old.chat["title"]), chat_id=new_chat_id)
        new = self.chats[new_chat["id"]] = ChatState(new_chat, bot_status=old.bot_status)
        new.members = copy.deepcopy(old.members)
        self.push_message(factory.migrate_to(old.chat, new.id, actor=actor))
        self.push_message(factory.migrate_from(new.chat, old.id, actor=actor))
        return new.id

    # -- behaviour switches ---------------------------------------------------------------------

    def block(self, user_id: int, *, blocked: bool = True) -> None:
        """The user blocks the bot: sends to them answer 403."""
        self.chat_state(user_id).blocked = blocked

    def deactivate(self, user_id: int) -> None:
        """The user deleted their account."""
        self.chat_state(user_id).deactivated = True

    def kick_bot(self, chat_id: int) -> None:
        """Someone removed the bot from the group or channel."""
        self.chat_state(chat_id).bot_status = "kicked"

    def set_bot_admin(self, chat_id: int, admin: bool = True) -> None:
        self.chat_state(chat_id).bot_status = "administrator" if admin else "member"

    def revoke_token(self, revoked: bool = True) -> None:
        """The token was revoked in @BotFather: every call answers 401 Unauthorized."""
        self.revoked = revoked

    def inject(
        self,
        method: str = "*",
        *,
        status: int | None = None,
        description: str | None = None,
        retry_after: int | None = None,
        migrate_to_chat_id: int | None = None,
        parameters: Mapping[str, Any] | None = None,
        delay: float = 0.0,
        fault: Fault | None = None,
        times: int = 1,
    ) -> Injection:
        """Make the next ``times`` calls of ``method`` ("*" any, "file" downloads) fail or go slow.

        ``status`` answers that error instead of running the call (description defaults to a typical
        one; ``retry_after`` implies 429, ``migrate_to_chat_id`` implies 400 "group chat was
        upgraded"). ``delay`` waits first; alone, the call then runs normally. ``fault`` is
        ``truncated_json`` (the call runs, the body is cut), ``bad_gateway`` (HTML 502) or ``drop``.
        Injections are used first-in first-out.
        """
        extra = dict(parameters or {})
        if retry_after is not None:
            status = status or 429
            extra["retry_after"] = retry_after
            description = description or f"Too Many Requests: retry after {retry_after}"
        if migrate_to_chat_id is not None:
            status = status or 400
            extra["migrate_to_chat_id"] = migrate_to_chat_id
            description = description or "Bad Request: group chat was upgraded to a supergroup chat"
        if status is not None and description is None:
            description = DEFAULT_DESCRIPTIONS.get(status, f"Error {status}")
        injection = Injection(method.lower(), times, status, description, extra, delay, fault)
        self.injections.append(injection)
        return injection

    def take_injection(self, method: str) -> Injection | None:
        for injection in self.injections:
            if injection.method in ("*", method.lower()) and injection.times > 0:
                injection.times -= 1
                if injection.times == 0:
                    self.injections.remove(injection)
                return injection
        return None

    # -- what the HTTP side uses ----------------------------------------------------------------

    def record_request(self, request: RecordedRequest) -> None:
        self.requests.append(request)
        self.touch()

    def touch(self) -> None:
        """Wake tests waiting in ``wait_for``."""
        self._activity.set()
        self._activity = asyncio.Event()

    def _on_push(self) -> None:
        if self._delivery is not None:
            self._delivery.schedule()
        self.touch()

    async def set_webhook(self, config: WebhookConfig | None) -> None:
        """Switch delivery to ``config`` (None: back to getUpdates)."""
        if self._delivery is not None:
            await self._delivery.stop()
            self._delivery = None
        self.webhook = config
        if config is not None:
            delivery = WebhookDelivery(
                config,
                self.updates,
                self.deliveries,
                backoff=self._webhook_backoff,
                timeout=self._webhook_timeout,
            )
            delivery.on_attempt = self.touch
            self._delivery = delivery
            delivery.start()

    async def close(self) -> None:
        """The server is stopping: end long polls and webhook delivery (the configuration stays)."""
        self.updates.close()
        if self._delivery is not None:
            await self._delivery.stop()
            self._delivery = None

    async def resume(self) -> None:
        """The server is (re)starting: accept long polls and deliver to the webhook again."""
        self.updates.reopen()
        if self.webhook is not None and self._delivery is None:
            await self.set_webhook(self.webhook)

    # -- assertions -----------------------------------------------------------------------------

    def sent_to(self, chat_id: int) -> list[SentMessage]:
        return [sent for sent in self.sent if sent.chat_id == chat_id]

    def max_rate(self, window: float, chat_id: int | None = None) -> int:
        """The most sendMessage attempts (delivered or answered 429) in any ``window`` seconds."""
        return max_in_window(
            (a.at for a in self.send_attempts if chat_id is None or a.chat_id == chat_id), window
        )

    @property
    def throttled(self) -> list[SendAttempt]:
        """sendMessage calls answered 429 by the rate limiter (injected 429s are not counted)."""
        return [attempt for attempt in self.send_attempts if attempt.throttled]

    def calls(self, method: str) -> list[RecordedRequest]:
        return [request for request in self.requests if request.method.lower() == method.lower()]

    async def wait_for(self, condition: Callable[[], object], *, timeout: float = 5.0) -> None:
        """Wait until ``condition()`` is truthy, re-checking whenever a call, update or delivery happens."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    activity = self._activity
                    if condition():
                        return
                    await activity.wait()
        except TimeoutError:
            raise AssertionError(f"condition not met within {timeout}s") from None

    def record_send(self, chat_id: int, *, throttled: bool, message: Json | None = None) -> None:
        at = time.monotonic()
        self.send_attempts.append(SendAttempt(chat_id, at, throttled))
        if message is not None:
            self.sent.append(SentMessage(chat_id, message.get("message_thread_id"), message, at))
        self.touch()
