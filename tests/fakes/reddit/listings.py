"""The GET endpoints: identity, the inbox listings, subreddit listings, ``/api/info`` (platforms.md §2.3-2.4).

Paging follows Reddit: newest first; ``limit`` 25 by default and at most 100; ``after=<fullname>``
gives older items, ``before=<fullname>`` the ones just newer than it (still newest first); an anchor
that is not in the listing (deleted, removed, read, or past the 1000 reachable items) gives an empty
page; the answer's ``after`` names the last child while older items remain, ``before`` is always null.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any, TypeVar

from tests.fakes.reddit.accounts import Account
from tests.fakes.reddit.endpoints import Call, Route, route, truthy
from tests.fakes.reddit.errors import bad_request, forbidden, not_found, redirect_to_login
from tests.fakes.reddit.things import (
    InboxEntry,
    Subreddit,
    Thing,
    inbox_comment_json,
    listing,
    message_json,
)

Json = dict[str, Any]
T = TypeVar("T")

DEFAULT_LIMIT = 25
MAX_LIMIT = 100
REACHABLE = 1000  # how far back any listing can be paged
MAX_INFO_IDS = 100
INBOX_TYPES = {"comments": "comment_reply", "selfreply": "post_reply", "mentions": "username_mention"}

ROUTES: list[Route] = []


def page(items: Sequence[T], call: Call, name: Callable[[T], str]) -> tuple[list[T], str | None]:
    """One page of a newest-first listing, and the ``after`` to answer with."""
    limit = _limit(call.query.get("limit"))
    reachable = list(items[:REACHABLE])
    names = [name(item) for item in reachable]
    after, before = call.query.get("after") or None, call.query.get("before") or None
    if before is not None:
        if before not in names:
            return [], None
        end = names.index(before)
        start = max(0, end - limit)
    elif after is not None:
        if after not in names:
            return [], None
        start = names.index(after) + 1
        end = start + limit
    else:
        start, end = 0, limit
    chosen = reachable[start:end]
    more = start + len(chosen) < len(reachable)
    return chosen, (name(chosen[-1]) if chosen and more else None)


def _limit(value: str | None) -> int:
    try:
        limit = int(value) if value else DEFAULT_LIMIT
    except ValueError:
        return DEFAULT_LIMIT
    return DEFAULT_LIMIT if limit < 1 else min(limit, MAX_LIMIT)


def newest_first(things: list[Thing]) -> list[Thing]:
    return sorted(things, key=lambda thing: thing.seq, reverse=True)


# -- identity -------------------------------------------------------------------------------------------


@route(ROUTES, "GET", r"/api/v1/me")
def me(call: Call) -> Json:
    account = call.user()
    unread = sum(1 for entry in account.entries if entry.new and entry.thing.visible)
    moderates = any(sub.is_moderator(account.username) for sub in call.world.subreddits.values())
    return {
        "name": account.username,
        "id": account.id,
        "created": account.created_utc,
        "created_utc": account.created_utc,
        "comment_karma": 42,
        "link_karma": 7,
        "total_karma": 49,
        "has_mail": unread > 0,
        "inbox_count": unread,
        "has_mod_mail": False,
        "is_mod": moderates,
        "is_employee": False,
        "is_gold": False,
        "is_suspended": False,
        "verified": True,
        "has_verified_email": True,
        "over_18": False,
        "icon_img": "https://www.redditstatic.com/avatars/defaults/v2/avatar_default_1.png",
        "subreddit": {
            "display_name": f"u_{account.username}",
            "display_name_prefixed": f"u/{account.username}",
        },
    }


# -- the inbox ------------------------------------------------------------------------------------------


def entry_json(entry: InboxEntry, account: Account) -> Json:
    thing = entry.thing
    if thing.kind == "t1":
        data = inbox_comment_json(thing, entry.type, recipient=account.username, new=entry.new)
    else:
        data = message_json(thing, new=entry.new)
    return {"kind": thing.kind, "data": data}


@route(ROUTES, "GET", r"/message/(?P<where>inbox|unread|comments|selfreply|mentions)")
def inbox(call: Call) -> Json:
    """Flat inbox listings; ``mark=true`` marks the returned items read after answering.

    Reddit's API default for ``mark`` is false (r2 ``MessageController``: ``elif is_api(): mark =
    'false'``), except that here ``/message/unread`` marks by default, so a client that forgets
    ``mark=false`` (PRAW always sends it) loses unread state in tests, as accounts saw in 2025.
    """
    account = call.user()
    where = call.params["where"].lower()
    entries = [entry for entry in account.entries if entry.thing.visible]
    if where == "unread":
        entries = [entry for entry in entries if entry.new]
    elif where in INBOX_TYPES:
        entries = [entry for entry in entries if entry.type == INBOX_TYPES[where]]
    entries.sort(key=lambda entry: entry.thing.seq, reverse=True)
    chosen, after = page(entries, call, lambda entry: entry.thing.fullname)
    answer = listing([entry_json(entry, account) for entry in chosen], after=after)
    if truthy(call.query.get("mark"), default=where == "unread"):
        for entry in chosen:
            entry.new = False
    return answer


def _messages_available(account: Account) -> None:
    if account.pm_unavailable == 302:
        raise redirect_to_login()
    if account.pm_unavailable == 403:
        raise forbidden()


def _thread_json(root: Thing, account: Account) -> Json:
    replies = [reply for reply in root.replies if reply.visible]
    nested = (
        listing([{"kind": "t4", "data": message_json(r, new=account.is_new(r))} for r in replies])
        if replies
        else None
    )
    return {"kind": "t4", "data": message_json(root, new=account.is_new(root), replies=nested)}


def _mark_threads(account: Account, roots: list[Thing]) -> None:
    names = {thing.fullname for root in roots for thing in (root, *root.replies)}
    for entry in account.entries:
        if entry.thing.fullname in names:
            entry.new = False


@route(ROUTES, "GET", r"/message/messages")
def messages(call: Call) -> Json:
    """Private message threads, the most recently active first, replies nested under each root."""
    account = call.user()
    _messages_available(account)
    me = account.username.lower()
    roots = [
        thing
        for thing in call.world.things.values()
        if thing.kind == "t4" and thing.parent is None and thing.visible and me in thing.participants()
    ]
    roots.sort(key=lambda root: max(thing.seq for thing in (root, *root.replies)), reverse=True)
    chosen, after = page(roots, call, lambda root: root.fullname)
    answer = listing([_thread_json(root, account) for root in chosen], after=after)
    if truthy(call.query.get("mark"), default=False):
        _mark_threads(account, chosen)
    return answer


@route(ROUTES, "GET", r"/message/messages/(?P<id>[0-9a-z]+)")
def thread(call: Call) -> Json:
    account = call.user()
    _messages_available(account)
    message = call.world.things.get(f"t4_{call.params['id'].lower()}")
    if message is None or not message.root.visible:
        return listing([])
    if account.username.lower() not in message.participants():
        raise forbidden()
    answer = listing([_thread_json(message.root, account)])
    if truthy(call.query.get("mark"), default=False):
        _mark_threads(account, [message.root])
    return answer


@route(ROUTES, "GET", r"/message/sent")
def sent(call: Call) -> Json:
    account = call.user()
    _messages_available(account)
    chosen, after = page(newest_first([m for m in account.sent if m.visible]), call, lambda m: m.fullname)
    return listing([{"kind": "t4", "data": message_json(m, new=False)} for m in chosen], after=after)


# -- subreddits and lookups -----------------------------------------------------------------------------


def readable_subreddit(call: Call) -> Subreddit:
    """The subreddit of the path, or Reddit's answer for an unknown, banned or private one."""
    subreddit = call.world.subreddit(call.params["sub"])
    if subreddit is None:
        raise not_found()
    if subreddit.banned:
        raise not_found("banned")
    if subreddit.private and (call.account is None or not subreddit.is_moderator(call.account.username)):
        raise forbidden("private")
    return subreddit


@route(ROUTES, "GET", r"/r/(?P<sub>[A-Za-z0-9_]+)/comments", needs_user=False)
def subreddit_comments(call: Call) -> Json:
    subreddit = readable_subreddit(call)
    comments = [
        thing
        for thing in call.world.things.values()
        if thing.kind == "t1" and thing.subreddit is subreddit and thing.visible
    ]
    chosen, after = page(newest_first(comments), call, lambda thing: thing.fullname)
    return listing([thing.listing_child() for thing in chosen], after=after)


@route(ROUTES, "GET", r"/r/(?P<sub>[A-Za-z0-9_]+)/new", needs_user=False)
def subreddit_new(call: Call) -> Json:
    subreddit = readable_subreddit(call)
    posts = [
        thing
        for thing in call.world.things.values()
        if thing.kind == "t3" and thing.subreddit is subreddit and thing.visible
    ]
    chosen, after = page(newest_first(posts), call, lambda thing: thing.fullname)
    return listing([thing.listing_child() for thing in chosen], after=after)


@route(ROUTES, "GET", r"/r/(?P<sub>[A-Za-z0-9_]+)/about", needs_user=False)
def subreddit_about(call: Call) -> Json:
    return readable_subreddit(call).about()


@route(ROUTES, "GET", r"/api/info", needs_user=False)
def info(call: Call) -> Json:
    """Comments and submissions by fullname, in the order asked; deleted and removed ones included."""
    names = [name.strip() for name in call.query.get("id", "").split(",") if name.strip()]
    if len(names) > MAX_INFO_IDS:
        raise bad_request()
    found = [call.world.things.get(name) for name in names]
    return listing([thing.listing_child() for thing in found if thing is not None and thing.kind != "t4"])
