"""A lively Reddit world for ``piazza demo reddit``, played through a running ``FakeReddit``.

``run_scenario`` builds a shop subreddit the account moderates (with the account's launch thread and
a welcome comment), a second subreddit where people talk about the shop, and a few regulars; then it
keeps things moving (fresh content each round, ``pace`` seconds between events) until cancelled: new
posts and comments, replies to the account's post and comments, username mentions, private messages
and follow-ups with Unicode text, an edit and a deletion now and then. Whatever the account writes
through the API (a reply, a message) gets a friendly answer in the next round.
"""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Iterator
from dataclasses import dataclass, field

from tests.fakes.reddit.accounts import Account
from tests.fakes.reddit.server import FakeReddit
from tests.fakes.reddit.things import Subreddit, Thing

PEOPLE = ["jane_doe", "zoe_krueger", "ravi_p", "kim_lee", "marco_rossi", "amara_o"]
POSTS = [
    ("Does the café blend ship to Zürich? 🇨🇭", "Asking for order #{n}, the tracking page is blank."),
    ("Review: the sage hoodie after {n} washes", "Still soft, colour held up. 10/10 would buy again 🧥"),
    ("Order #{n} arrived damaged 😢", "Box was crushed on one side, photos below. What now?"),
    ("Is there a student discount?", "Saw someone mention 15% for order #{n}, is that real?"),
    ("Summer sale ☀️ what's actually worth it?", "Thinking about the ink mug and the sand tote."),
]
COMMENTS = [
    "Same question here, following 👀",
    "Mine took 5 days to Oslo, not bad at all",
    "The tote is great, the mug less so",
    "+1, would love an answer too",
    "Ça marche bien chez moi 👍",
]
LAUNCH_REPLIES = [
    "Congrats on the launch! 🎉 Any plans for Austria?",
    "Quick question: do you restock the ink colour soon?",
    "Loving the new site, checkout was smooth ✨",
    "Will there be gift cards for order #{n}?",
]
COMMENT_REPLIES = [
    "Thanks! But what about express shipping?",
    "That helped, one more thing: can I change the size?",
    "Perfect, merci beaucoup 🙏",
    "Hmm, the link you posted gives a 404 for me",
]
MENTIONS = [
    "Ask u/{me}, they answered me within an hour last week",
    "Has anyone tried the shop of u/{me}? Reviews look good 🤔",
    "u/{me} might know whether order #{n} can still be cancelled",
]
PMS = [
    ("your order #{n}", "Hi! Is order #{n} shipped yet? Danke schön 🙂"),
    ("address change", "Can I change the delivery address for #{n} to Kraków, ul. Długa 5?"),
    ("refund", "The refund for #{n} is still pending 💸, could you check?"),
]
FOLLOW_UPS = ["Sorry, one more detail: it's a gift 🎁", "Any news on this?", "Nevermind, found it, thanks!"]
THANKS = ["Thanks a lot! 🙏", "Great, that answers it 👍", "Merci, très gentil !", "Super, danke!"]


@dataclass
class DemoWorld:
    """The demo's subreddits, people and the account's own threads."""

    account: Account
    shop: Subreddit
    chatter: Subreddit
    launch: Thing
    welcome: Thing
    threads: list[Thing] = field(default_factory=list)  # the last message of each PM thread
    answered: set[str] = field(default_factory=set)  # fullnames the account wrote that got an answer


def build_world(fake: FakeReddit, account: Account) -> DemoWorld:
    shop = fake.add_subreddit(
        "examplestore", moderators=[account.username], title="Example Store: bags, mugs, hoodies"
    )
    chatter = fake.add_subreddit("shoppingtalk", title="Shopping talk")
    for name in PEOPLE:
        fake.add_account(name)
    launch = fake.submit(
        shop,
        author=account,
        title="Launch thread: we are open! 🎉",
        selftext="Ask us anything about orders, shipping & returns.",
    )
    welcome = fake.comment(launch, author=account, body="Welcome everyone, we read every comment 👋")
    return DemoWorld(account, shop, chatter, launch, welcome)


async def run_scenario(fake: FakeReddit, account: Account, *, pace: float) -> None:
    """Make Reddit traffic around ``account`` every ``pace`` seconds until cancelled."""
    if fake.accounts.get(account.username.lower()) is not account:
        raise ValueError("the account does not belong to this FakeReddit")
    world = build_world(fake, account)
    for round_no in itertools.count(1):
        for _ in _round(fake, world, round_no):
            await asyncio.sleep(pace)


def _round(fake: FakeReddit, world: DemoWorld, n: int) -> Iterator[None]:
    """One round of traffic; yields after every event so the caller can pace it."""
    me = world.account.username
    order, pick = 1000 + n, n - 1

    def person(offset: int = 0) -> str:
        return PEOPLE[(pick + offset) % len(PEOPLE)]

    def line(pool: list[str], offset: int = 0) -> str:
        return pool[(pick + offset) % len(pool)].format(n=order, me=me)

    # Answer whatever the account wrote through the API since the last round.
    yield from _answer_the_account(fake, world)

    # The shop subreddit: a new post, a comment on it, a reply to it.
    title, text = POSTS[pick % len(POSTS)]
    post = fake.submit(
        world.shop, author=person(), title=title.format(n=order), selftext=text.format(n=order)
    )
    yield
    first = fake.comment(post, author=person(1), body=line(COMMENTS))
    yield
    fake.comment(first, author=person(2), body=line(COMMENTS, 1))
    yield

    # Replies to the account: its launch thread (post_reply) and its welcome comment (comment_reply).
    fake.comment(world.launch, author=person(3), body=line(LAUNCH_REPLIES))
    yield
    fake.comment(world.welcome, author=person(4), body=line(COMMENT_REPLIES))
    yield

    # Elsewhere on Reddit: a mention.
    elsewhere = fake.submit(world.chatter, author=person(5), title=f"Best small shops of {2025 + n % 3}?")
    fake.comment(elsewhere, author=person(2), body=line(MENTIONS))
    yield

    # Private messages: a new thread, and a follow-up in an older one.
    subject, body = PMS[pick % len(PMS)]
    world.threads.append(
        fake.send_pm(person(1), me, subject=subject.format(n=order), body=body.format(n=order))
    )
    yield
    if len(world.threads) > 1:
        older = world.threads[-2]
        world.threads[-2] = fake.reply_pm(older, author=older.root.author, body=line(FOLLOW_UPS))
        yield

    # Now and then someone fixes a typo, or thinks better of it.
    if n % 3 == 0:
        fake.edit(first, first.body + " (edit: typo)")
        yield
    if n % 4 == 0:
        fake.delete(first)
        yield


def _answer_the_account(fake: FakeReddit, world: DemoWorld) -> Iterator[None]:
    me = world.account.username.lower()
    for thing in list(fake.created_via_api):
        if thing.author.lower() != me or thing.fullname in world.answered or not thing.visible:
            continue
        world.answered.add(thing.fullname)
        thanks = THANKS[len(world.answered) % len(THANKS)]
        if thing.kind == "t1" and thing.parent is not None and thing.parent.author.lower() != me:
            if not thing.parent.deleted:
                fake.comment(thing, author=thing.parent.author, body=thanks)
                yield
        elif thing.kind == "t4" and thing.dest is not None:
            fake.reply_pm(thing, author=thing.dest, body=thanks)
            yield
