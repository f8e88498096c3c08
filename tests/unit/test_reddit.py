"""Reddit's wire shapes: rate-limit pacing, RATELIMIT waits, listings, and items as events."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime

import pytest

from shared.events import MessageDeleted, MessageEdited, MessageReceived
from shared.platforms.reddit.client import (
    RateLimiter,
    RedditBadRequest,
    RedditCredentials,
    parse_listing,
    ratelimit_wait,
)
from shared.platforms.reddit.normalize import Normalizer, flatten, post_of
from shared.platforms.reddit.state import SEEN_LIMIT, SourceCursor

pytestmark = pytest.mark.unit

CHANNEL = uuid.UUID("00000000-0000-0000-0000-000000000001")


def normalizer() -> Normalizer:
    return Normalizer(channel_id=CHANNEL, workspace="w", me="Example_Ops")


@pytest.mark.parametrize(
    ("message", "seconds"),
    [
        ("You are doing that too much. Try again in 7 minutes.", 420.0),
        ("you are doing that too much. try again in 1 minute.", 60.0),
        ("Try again in 45 seconds.", 45.0),
        ("Try again in 500 milliseconds.", 0.5),
        ("Try again later.", None),
    ],
)
def test_ratelimit_messages_say_how_long(message: str, seconds: float | None) -> None:
    assert ratelimit_wait(message) == seconds


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_the_remaining_budget_is_spread_over_the_window() -> None:
    clock = Clock()
    limiter = RateLimiter(clock)
    limiter.update({"x-ratelimit-remaining": "99.0", "x-ratelimit-used": "1", "x-ratelimit-reset": "198"})
    assert limiter.throttled_for == pytest.approx(2.0)
    limiter = RateLimiter(clock)
    limiter.update({"x-ratelimit-remaining": "0.0", "x-ratelimit-used": "600", "x-ratelimit-reset": "42"})
    assert limiter.throttled_for == pytest.approx(42.0)
    limiter = RateLimiter(clock)
    limiter.update({"x-ratelimit-remaining": "1.0", "x-ratelimit-reset": "599"})
    assert limiter.throttled_for == pytest.approx(10.0)  # never more than 10 s between calls
    limiter = RateLimiter(clock)
    limiter.update({})  # no headers: no pacing
    assert limiter.throttled_for == 0.0
    limiter.back_off(4)
    assert limiter.throttled_for == pytest.approx(4.0)


def test_credentials_never_show_in_their_repr() -> None:
    credentials = RedditCredentials("cid", "secret-1", "linux:app:v1 (by /u/x)", "me", "pass-2", "token-3")
    assert not any(s in repr(credentials) for s in ("secret-1", "pass-2", "token-3"))


def test_listings_are_parsed_and_anything_else_refused() -> None:
    listing = parse_listing(
        {"kind": "Listing", "data": {"after": "t1_b", "children": [{"kind": "t1", "data": {"name": "t1_a"}}]}}
    )
    assert listing.children == [("t1", {"name": "t1_a"})]
    assert listing.after == "t1_b"
    with pytest.raises(RedditBadRequest):
        parse_listing({"json": {"errors": []}})


def test_inbox_comments_find_their_post_in_the_context() -> None:
    assert post_of("t1", {"context": "/r/shop/comments/1kx9z0q/launch/nq1a2b3/?context=3"}) == "t3_1kx9z0q"
    assert post_of("t1", {"link_id": "t3_abc"}) == "t3_abc"
    assert post_of("t3", {"name": "t3_xyz"}) == "t3_xyz"
    assert post_of("t1", {"context": ""}) is None


def test_a_comment_becomes_a_message_of_its_post_with_its_parent() -> None:
    data = {
        "name": "t1_c", "author": "Jane_Doe", "body": "Zürich? 🇨🇭", "created_utc": 1767230000.0,
        "parent_id": "t1_p", "link_id": "t3_post", "link_title": "Launch", "subreddit": "shop",
    }  # fmt: skip
    [event] = normalizer().received("t1", data).events
    assert isinstance(event, MessageReceived)
    message = event.payload
    assert (message.thread.external_id, message.thread.title) == ("t3_post", "Launch")
    assert (message.external_id, message.reply_to_external_id) == ("t1_c", "t1_p")
    assert (message.author.external_id, message.author.handle) == ("jane_doe", "u/Jane_Doe")
    assert message.direction == "inbound"
    assert message.sent_at == datetime.fromtimestamp(1767230000, UTC)
    # The same item normalised again is the same event (deduplicated on the bus and in the store).
    assert normalizer().received("t1", data).events[0].id == event.id


def test_own_items_are_outbound_and_deleted_ones_skipped() -> None:
    own = {"name": "t1_o", "author": "example_ops", "body": "hi", "created_utc": 1.0, "link_id": "t3_p"}
    assert normalizer().received("t1", own).events[0].payload.direction == "outbound"  # type: ignore[attr-defined]
    gone = {"name": "t1_g", "author": "[deleted]", "body": "[deleted]", "created_utc": 1.0, "link_id": "t3_p"}
    assert normalizer().received("t1", gone).skipped == "deleted before it was seen"
    removed_post = {"name": "t3_r", "title": "t", "selftext": "[removed]", "created_utc": 1.0}
    assert normalizer().received("t3", removed_post).skipped


def test_private_messages_thread_on_their_first_message() -> None:
    reply = {
        "name": "t4_2", "author": "jane", "body": "thanks!", "created_utc": 2.0, "subject": "re: your order",
        "parent_id": "t4_1", "first_message_name": "t4_1",
    }  # fmt: skip
    message = normalizer().received("t4", reply).events[0].payload
    assert (message.thread.external_id, message.thread.title) == ("t4_1", "your order")  # type: ignore[attr-defined]
    root = {"name": "t4_1", "author": "jane", "body": "hello", "created_utc": 1.0, "subject": "your order"}
    assert normalizer().received("t4", root).events[0].payload.thread.external_id == "t4_1"  # type: ignore[attr-defined]


def test_link_posts_carry_their_link() -> None:
    post = {
        "name": "t3_l",
        "title": "Look",
        "selftext": "",
        "is_self": False,
        "url": "https://x.test/a",
        "created_utc": 1.0,
    }
    message = normalizer().received("t3", post).events[0].payload
    assert message.text == "Look"  # type: ignore[attr-defined]
    assert [a.url for a in message.attachments] == ["https://x.test/a"]  # type: ignore[attr-defined]


def test_changes_are_edits_or_deletions() -> None:
    seen = datetime(2026, 1, 1, tzinfo=UTC)
    edited = {"name": "t1_e", "author": "jane", "body": "fixed", "edited": 1767230500.0, "link_id": "t3_p"}
    [edit] = normalizer().changed("t1", edited, seen_at=seen).events
    assert isinstance(edit, MessageEdited)
    assert edit.payload.edited_at == datetime.fromtimestamp(1767230500, UTC)
    removed = {"name": "t1_e", "author": "jane", "body": "[removed]", "link_id": "t3_p"}
    [deletion] = normalizer().changed("t1", removed, seen_at=seen).events
    assert isinstance(deletion, MessageDeleted)


def test_threaded_messages_are_flattened_roots_first() -> None:
    nested = {
        "kind": "Listing",
        "data": {"children": [{"kind": "t4", "data": {"name": "t4_2", "replies": ""}}]},
    }
    flat = flatten([("t4", {"name": "t4_1", "replies": nested})])
    assert [d["name"] for _, d in flat] == ["t4_1", "t4_2"]


def test_a_cursor_forgets_the_oldest_names_and_raises_its_floor() -> None:
    cursor = SourceCursor()
    cursor.remember([(f"t1_{n}", float(n)) for n in range(SEEN_LIMIT + 10)])
    assert len(cursor.seen) == SEEN_LIMIT
    assert cursor.seen[0] == "t1_10"
    assert cursor.floor == 9.0
