"""A lively Telegram world for ``piazza demo telegram``, pushed through a running ``FakeTelegram``.

``run_scenario`` builds a support supergroup, a forum with two topics, a channel with a linked
discussion group and three private chats, then keeps the conversation going (fresh content each round,
``pace`` seconds between updates) until cancelled.
"""

from __future__ import annotations

import asyncio
import itertools
import struct
import zlib
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.telegram import factory
from tests.fakes.telegram.bot import FakeBot
from tests.fakes.telegram.server import FakeTelegram

Json = dict[str, Any]

QUESTIONS = [
    "Hallo 👋 is order #{n} shipped yet?",
    "The tracking link for #{n} says 'label created' since Monday 🤔",
    "Can I change the delivery address for order #{n}?",
    "#help do you ship to Norway? Asking for order #{n}",
    "#urgent my parcel #{n} arrived damaged, what now?",
]
ANSWERS = [
    "It left the warehouse this morning 🚚",
    "Let me check with the carrier and come back to you",
    "Sure, send me the new address in a DM",
    "Yes! 5-7 working days to Oslo",
    "So sorry! Please send a photo of the box, we'll replace it",
]
PHOTO_CAPTIONS = ["here is the label 📦", "this is how it arrived 😢", "the receipt", "box from the side"]
BILLING = [
    "Invoice #{n} shows VAT twice?",
    "Can I pay #{n} by bank transfer?",
    "Refund for #{n} still pending",
]
SHIPPING = ["Courier missed me for #{n}", "Is express available for #{n}?", "Pickup point for #{n} closed"]
POSTS = [
    "Summer sale starts tomorrow ☀️ -20% on everything",
    "New colours are in: sage, sand and ink",
    "We are hiring a support hero 🦸",
    "Warehouse closed on Friday for inventory",
]
COMMENTS = [
    "finally!! 🎉",
    "does it include the outlet?",
    "sage is gorgeous",
    "ship to Austria too?",
    "🔥🔥🔥",
]
DMS = [
    ("Hi, is order #{n} shipped?", "Hi, is order #{m} shipped? (typo above)"),
    ("Can you call me back about #{n}?", None),
    ("Thanks for the quick help with #{n} 🙏", None),
]
VISITORS = ["Malik", "Sofia", "Jonas", "Priya", "Chen", "Amara", "Lucas", "Ines"]


@dataclass
class DemoWorld:
    """The chats and people of the demo, as the bot sees them."""

    people: dict[str, Json]
    support: Json
    forum: Json
    topics: dict[str, int]
    channel: Json
    discussion: Json
    dms: list[tuple[Json, Json]] = field(default_factory=list)  # (chat, the person on the other side)


def build_world(bot: FakeBot) -> DemoWorld:
    people = {
        "zoe": factory.user("Zoë", last_name="Krüger", username="zoe_k", language_code="de"),
        "ravi": factory.user("Ravi", username="ravi_p", language_code="en"),
        "kim": factory.user("Kim", language_code="ko"),
        "ana": factory.user("Ana", last_name="Silva", username="ana_support", language_code="pt"),
        "marco": factory.user("Marco", username="marco_rossi", language_code="it"),
        "yuki": factory.user("Yuki", language_code="ja"),
    }
    support = bot.add_group(
        "Shop Support",
        username="shop_support",
        admins=[people["ana"]],
        members=[people["zoe"], people["ravi"], people["kim"], people["marco"]],
    )
    forum = bot.add_group(
        "Shop Help Desk", forum=True, members=[people["ravi"], people["yuki"], people["ana"]]
    )
    topics = {
        "Billing": bot.add_forum_topic(forum["id"], "Billing", actor=people["ana"], push=True),
        "Shipping": bot.add_forum_topic(forum["id"], "Shipping", actor=people["ana"], push=True),
    }
    discussion = bot.add_group("Shop News Chat", members=[people["marco"], people["kim"]])
    channel = bot.add_channel("Shop News", username="shop_news", discussion_group=discussion)
    dms = [(bot.add_private_chat(people[name]), people[name]) for name in ("zoe", "kim", "yuki")]
    return DemoWorld(people, support, forum, topics, channel, discussion, dms)


async def run_scenario(fake: FakeTelegram, bot: FakeBot, *, pace: float) -> None:
    """Push demo traffic to ``bot`` every ``pace`` seconds until cancelled."""
    if fake.bots.get(bot.token) is not bot:
        raise ValueError("the bot does not belong to this FakeTelegram")
    world = build_world(bot)
    for round_no in itertools.count(1):
        for _ in _round(bot, world, round_no):
            await asyncio.sleep(pace)


def _round(bot: FakeBot, world: DemoWorld, n: int) -> Iterator[None]:
    """One round of traffic; yields after every update so the caller can pace it."""
    p = world.people
    order, pick = 1000 + n, n - 1

    def line(pool: list[str], offset: int = 0) -> str:
        return pool[(pick + offset) % len(pool)].format(n=order, m=order + 1)

    # The support group: a question, a photo, an answer replying to the question, a reaction.
    asker, sharer = (p["zoe"], p["ravi"]) if n % 2 else (p["marco"], p["kim"])
    text = line(QUESTIONS)
    question = factory.message(world.support, asker, text=text, entities=_hashtags(text))
    bot.push_message(question)
    yield
    image = bot.add_file(_png(n), path_hint="photos/demo.png")
    shown = factory.message(
        world.support, sharer, caption=line(PHOTO_CAPTIONS), media=factory.photo(file=bot.file_ref(image))
    )
    bot.push_message(shown)
    yield
    bot.push_message(factory.message(world.support, p["ana"], text=line(ANSWERS), reply_to=question))
    yield
    bot.push_update(
        {"message_reaction": factory.message_reaction(world.support, shown["message_id"], p["ana"])}
    )
    yield

    # The forum: one message per topic, the second answered in its topic.
    bot.push_message(
        factory.message(world.forum, p["yuki"], text=line(BILLING), thread_id=world.topics["Billing"])
    )
    yield
    ask = factory.message(world.forum, p["ravi"], text=line(SHIPPING), thread_id=world.topics["Shipping"])
    bot.push_message(ask)
    yield
    bot.push_message(factory.message(world.forum, p["ana"], text=line(ANSWERS, 1), reply_to=ask))
    yield

    # The channel: a post, its automatic forward into the discussion group, two comments.
    post = factory.channel_post(world.channel, text=line(POSTS), author_signature="Ana")
    bot.push_message(post, kind="channel_post")
    yield
    forward = factory.automatic_forward(world.discussion, post)
    bot.push_message(forward)
    yield
    for who, offset in ((p["marco"], 0), (p["kim"], 1)):
        bot.push_message(factory.comment(world.discussion, who, on=forward, text=line(COMMENTS, offset)))
        yield

    # Three private chats; the first one is edited afterwards.
    for (chat, sender), (first, correction) in zip(world.dms, DMS, strict=True):
        dm = factory.message(chat, sender, text=first.format(n=order))
        bot.push_message(dm)
        yield
        if correction is not None:
            fixed = factory.edited(dm, text=correction.format(m=order + 1))
            bot.push_message(fixed, kind="edited_message")
            yield

    # Someone joins the support group, says hello, and leaves again.
    visitor = factory.user(VISITORS[pick % len(VISITORS)])
    bot.push_message(factory.new_chat_members(world.support, [visitor]))
    yield
    bot.push_message(factory.message(world.support, visitor, text="hi all, just looking around 👀"))
    yield
    bot.push_message(factory.left_chat_member(world.support, visitor))
    yield


def _hashtags(text: str) -> list[Json] | None:
    words = (word.rstrip("?!.,") for word in text.split())
    tags = [word for word in words if word.startswith("#") and any(c.isalpha() for c in word)]
    return [factory.entity(text, tag, "hashtag") for tag in tags] or None


def _png(seed: int, width: int = 64, height: int = 48) -> bytes:
    """A small gradient PNG, different every round."""
    red, green, blue = (seed * 67) % 256, (seed * 131) % 256, (seed * 197) % 256
    rows = b"".join(
        b"\x00"
        + bytes(
            channel for x in range(width) for channel in ((red + x * 3) % 256, (green + y * 4) % 256, blue)
        )
        for y in range(height)
    )

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(rows))
        + chunk(b"IEND", b"")
    )
