"""What the fake knows about one chat: its Chat object, members, messages, topics and the bot's standing."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Literal

Json = dict[str, Any]
Status = Literal["creator", "administrator", "member", "restricted", "left", "kicked"]

_ADMIN_RIGHTS = {
    "can_be_edited": False,
    "is_anonymous": False,
    "can_manage_chat": True,
    "can_delete_messages": True,
    "can_manage_video_chats": True,
    "can_restrict_members": True,
    "can_promote_members": False,
    "can_change_info": True,
    "can_invite_users": True,
    "can_post_stories": False,
    "can_edit_stories": False,
    "can_delete_stories": False,
}


@dataclass
class Member:
    user: Json
    status: Status = "member"
    until_date: int = 0

    def as_chat_member(self, chat_type: str) -> Json:
        """The ChatMember object getChatMember answers."""
        result: Json = {"status": self.status, "user": self.user}
        if self.status == "creator":
            result["is_anonymous"] = False
        elif self.status == "administrator":
            result.update(_ADMIN_RIGHTS)
            if chat_type == "supergroup":
                result.update(can_pin_messages=True, can_manage_topics=True)
            if chat_type == "channel":
                result.update(can_post_messages=True, can_edit_messages=True)
        elif self.status == "kicked":
            result["until_date"] = self.until_date
        return result

    @property
    def is_admin(self) -> bool:
        return self.status in ("creator", "administrator")


@dataclass
class ChatState:
    chat: Json
    bot_status: Status = "member"  # the bot's own standing; ignored for private chats
    members: dict[int, Member] = field(default_factory=dict)
    messages: dict[int, Json] = field(default_factory=dict)
    topics: dict[int, Json] = field(default_factory=dict)  # thread id -> its forum_topic_created message
    blocked: bool = False  # private: the user blocked the bot
    deactivated: bool = False  # private: the user's account is gone
    migrated_to: int | None = None  # group upgraded to this supergroup
    linked_chat_id: int | None = None  # channel <-> discussion group
    # Message ids count per chat; starting somewhere arbitrary catches code that treats them as global.
    next_message_id: int = field(default_factory=lambda: random.randint(2, 5000))

    @property
    def id(self) -> int:
        return int(self.chat["id"])

    @property
    def type(self) -> str:
        return str(self.chat["type"])

    @property
    def is_group(self) -> bool:
        return self.type in ("group", "supergroup")

    @property
    def is_forum(self) -> bool:
        return bool(self.chat.get("is_forum"))

    @property
    def bot_is_admin(self) -> bool:
        return self.type == "private" or self.bot_status in ("creator", "administrator")

    def allocate_message_id(self) -> int:
        message_id = self.next_message_id
        self.next_message_id += 1
        return message_id

    def observe_message_id(self, message_id: int) -> None:
        self.next_message_id = max(self.next_message_id, message_id + 1)

    def member(self, user: Json, status: Status = "member") -> Member:
        """The member record of ``user``, created with ``status`` when new."""
        known = self.members.get(int(user["id"]))
        if known is None:
            known = self.members[int(user["id"])] = Member(dict(user), status)
        return known

    def full_info(self) -> Json:
        """The ChatFullInfo getChat answers (the required fields and the ones an inbox reads)."""
        result: Json = {**self.chat, "accent_color_id": 0, "max_reaction_count": 11}
        if self.linked_chat_id is not None:
            result["linked_chat_id"] = self.linked_chat_id
        return result
