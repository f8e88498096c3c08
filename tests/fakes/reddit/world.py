"""The fake Reddit's state (apps, accounts, tokens, subreddits, things) and the builders tests use.

Tests build the world and push traffic through these methods; the HTTP side (``listings.py``,
``writes.py``, ``oauth.py``) reads and changes the same state, so what a client does over the wire is
visible here and the other way round. Builders are permissive: they do what the test says (a comment
in a locked thread, a reply to a deleted comment); only the API enforces Reddit's rules.
"""

from __future__ import annotations

import asyncio
import json
import random
import re
import secrets
import time
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from tests.fakes.reddit.accounts import AccessToken, Account, App, AppKind, RefreshGrant
from tests.fakes.reddit.records import (
    TOKEN_ENDPOINT,
    Fault,
    Injection,
    IssuedToken,
    ModerationRecord,
    RecordedRequest,
)
from tests.fakes.reddit.things import InboxEntry, InboxType, Kind, Subreddit, Thing, base36

Json = dict[str, Any]
ThingRef = Thing | str  # a Thing or its fullname

# "u/name" or "/u/name" not glued to a preceding word; Reddit usernames are 3-20 of [A-Za-z0-9_-].
MENTION = re.compile(r"(?<![A-Za-z0-9_/])/?u/([A-Za-z0-9_-]{3,20})")
RATELIMIT_WAIT = re.compile(r"[0-9]{1,3} (milliseconds?|seconds?|minutes?)")


class RedditWorld:
    """Everything the fake knows; ``FakeReddit`` adds the HTTP server on top."""

    def __init__(self, *, token_lifetime: int = 86400, rotate_refresh_tokens: bool = False) -> None:
        self.token_lifetime = token_lifetime
        self.rotate_refresh_tokens = rotate_refresh_tokens
        self.apps: dict[str, App] = {}
        self.accounts: dict[str, Account] = {}  # by lower-cased username
        self.subreddits: dict[str, Subreddit] = {}  # by lower-cased name
        self.things: dict[str, Thing] = {}  # by fullname, in creation order
        self.access_tokens: dict[str, AccessToken] = {}
        self.refresh_tokens: dict[str, RefreshGrant] = {}
        self.auth_codes: dict[str, RefreshGrant] = {}
        self.injections: list[Injection] = []
        # Ids grow with time across runs too (as on Reddit), so a store kept between demo runs never
        # mistakes a new thing for one it has seen.
        start = int(time.time() * 10)
        self._next_id: dict[Kind, int] = {
            "t1": 20 * 36**6 + start,
            "t3": 36**6 + start,
            "t4": 2 * 36**6 + start,
        }
        self._seq = 0
        # Records, oldest first.
        self.requests: list[RecordedRequest] = []
        self.over_budget: list[RecordedRequest] = []
        self.tokens_issued: list[IssuedToken] = []
        self.read_calls: list[list[str]] = []
        self.unread_calls: list[list[str]] = []
        self.moderation: list[ModerationRecord] = []
        self.created_via_api: list[Thing] = []  # comments and messages clients wrote
        self._activity = asyncio.Event()

    # -- apps, accounts, tokens -------------------------------------------------------------------

    def add_app(
        self,
        client_id: str | None = None,
        client_secret: str | None = None,
        *,
        kind: AppKind = "script",
        redirect_uri: str = "http://localhost:8080/reddit/callback",
    ) -> App:
        """Register an OAuth app; installed apps get an empty secret whatever is passed."""
        app = App(
            client_id=client_id or secrets.token_urlsafe(16)[:22],
            client_secret="" if kind == "installed" else (client_secret or secrets.token_urlsafe(22)),
            kind=kind,
            redirect_uri=redirect_uri,
        )
        self.apps[app.client_id] = app
        return app

    def add_account(self, username: str | None = None, *, password: str | None = None) -> Account:
        """A user; an existing one (any case) is returned, with ``password`` set when given."""
        username = username or f"user_{secrets.token_hex(4)}"
        account = self.accounts.get(username.lower())
        if account is None:
            account = Account(
                username=username,
                id=base36(random.randint(36**5, 36**7)),
                password=password,
                created_utc=_now() - 86400 * 400,
            )
            self.accounts[username.lower()] = account
        elif password is not None:
            account.password = password
        return account

    def account(self, username: str) -> Account:
        try:
            return self.accounts[username.removeprefix("/u/").removeprefix("u/").lower()]
        except KeyError:
            raise KeyError(f"no account {username!r}") from None

    def issue_refresh_token(self, app: App, account: Account | str, *, scope: str = "*") -> str:
        """A refresh token, as the authorization-code flow with ``duration=permanent`` would give."""
        grant = RefreshGrant(_refresh_token(), app, self._account(account), scope)
        self.refresh_tokens[grant.token] = grant
        return grant.token

    def issue_auth_code(self, app: App, account: Account | str, *, scope: str = "*") -> str:
        """A one-time code for ``grant_type=authorization_code`` (with the app's ``redirect_uri``)."""
        code = secrets.token_urlsafe(20)
        self.auth_codes[code] = RefreshGrant(code, app, self._account(account), scope)
        return code

    def grant_access_token(
        self, app: App, account: Account | None, *, scope: str, grant_type: str, now: float
    ) -> AccessToken:
        token = AccessToken(
            value=f"eyJhbGciOiJSUzI1NiJ9.{secrets.token_urlsafe(32)}",
            app=app,
            account=account,
            scope=scope,
            grant_type=grant_type,
            expires_at=now + self.token_lifetime,
        )
        self.access_tokens[token.value] = token
        username = None if account is None else account.username
        self.tokens_issued.append(IssuedToken(token.value, app.client_id, username, grant_type, scope, now))
        return token

    def rotate(self, grant: RefreshGrant) -> str:
        """Replace a refresh token by a new one (the old one stops working)."""
        del self.refresh_tokens[grant.token]
        return self.issue_refresh_token(grant.app, grant.account, scope=grant.scope)

    def expire_tokens(self) -> None:
        """Every access token issued so far is expired: API calls with it answer 401."""
        for token in self.access_tokens.values():
            token.expired = True

    def _account(self, ref: Account | str) -> Account:
        """The account a builder names; unknown usernames become accounts (without a password)."""
        return ref if isinstance(ref, Account) else self.add_account(ref)

    # -- subreddits and things --------------------------------------------------------------------

    def add_subreddit(
        self,
        name: str,
        *,
        moderators: Iterable[str] = (),
        quarantined: bool = False,
        private: bool = False,
        banned: bool = False,
        title: str | None = None,
    ) -> Subreddit:
        """A subreddit; ``private`` answers 403 to non-moderators, ``banned`` 404 to everyone."""
        subreddit = self.subreddits.get(name.lower())
        if subreddit is None:
            subreddit = Subreddit(
                name=name,
                id=base36(random.randint(36**5, 36**6)),
                title=title or name,
                created_utc=_now() - 86400 * 900,
            )
            self.subreddits[name.lower()] = subreddit
        for moderator in moderators:
            subreddit.moderators.add(self._account(moderator).username.lower())
        subreddit.quarantined, subreddit.private, subreddit.banned = quarantined, private, banned
        if title is not None:
            subreddit.title = title
        return subreddit

    def subreddit(self, name: str) -> Subreddit | None:
        return self.subreddits.get(name.removeprefix("/r/").removeprefix("r/").lower())

    def thing(self, fullname: str) -> Thing:
        try:
            return self.things[fullname]
        except KeyError:
            raise KeyError(f"no thing {fullname!r}") from None

    def submit(
        self,
        subreddit: Subreddit | str,
        *,
        author: Account | str,
        title: str,
        selftext: str = "",
        url: str | None = None,
        created_utc: float | None = None,
    ) -> Thing:
        """A new submission (t3): a self post, or a link post when ``url`` is given."""
        if isinstance(subreddit, str):
            subreddit = self.subreddit(subreddit) or self.add_subreddit(subreddit)
        account = self._account(author)
        post = self._new("t3", account, selftext, created_utc, subreddit=subreddit, title=title, url=url)
        self.touch()
        return post

    def comment(
        self, parent: ThingRef, *, author: Account | str, body: str, created_utc: float | None = None
    ) -> Thing:
        """A comment (t1) replying to a submission or a comment, delivered to inboxes like on Reddit:
        the parent's author gets a ``post_reply`` or ``comment_reply`` (not for replies to oneself), and
        accounts named as ``u/name`` in the body get a ``username_mention``."""
        parent = self._thing(parent)
        if parent.kind not in ("t1", "t3"):
            raise ValueError(f"comments reply to t1 or t3 things, not {parent.fullname}")
        account = self._account(author)
        subreddit = parent.post.subreddit
        comment = self._new("t1", account, body, created_utc, subreddit=subreddit, parent=parent)
        parent.post.comments.append(comment)
        notified = {account.username.lower()}
        if not parent.deleted and parent.author.lower() not in notified:
            kind: InboxType = "post_reply" if parent.kind == "t3" else "comment_reply"
            self._deliver(self.accounts[parent.author.lower()], comment, kind)
            notified.add(parent.author.lower())
        for name in MENTION.findall(body):
            mentioned = self.accounts.get(name.lower())
            if mentioned is not None and name.lower() not in notified:
                self._deliver(mentioned, comment, "username_mention")
                notified.add(name.lower())
        self.touch()
        return comment

    def send_pm(
        self,
        author: Account | str,
        to: Account | str,
        *,
        subject: str,
        body: str,
        created_utc: float | None = None,
    ) -> Thing:
        """A new private message thread (t4): in the recipient's inbox and the sender's sent."""
        sender, recipient = self._account(author), self._account(to)
        message = self._new("t4", sender, body, created_utc, subject=subject, dest=recipient.username)
        self._post_message(sender, recipient, message)
        return message

    def reply_pm(
        self, parent: ThingRef, *, author: Account | str, body: str, created_utc: float | None = None
    ) -> Thing:
        """A reply in a private message thread, sent to the other side of the thread."""
        parent = self._thing(parent)
        sender = self._account(author)
        if parent.kind != "t4":
            raise ValueError(f"{parent.fullname} is not a private message")
        if sender.username.lower() not in parent.participants():
            raise ValueError(f"{sender.username} is not part of the thread of {parent.fullname}")
        other = parent.dest if parent.author.lower() == sender.username.lower() else parent.author
        recipient = self._account(other or "")
        subject = f"re: {parent.root.subject}"
        message = self._new(
            "t4", sender, body, created_utc, subject=subject, dest=recipient.username, parent=parent
        )
        parent.root.replies.append(message)
        self._post_message(sender, recipient, message)
        return message

    def edit(self, thing: ThingRef, body: str, *, edited: float | None = None) -> Thing:
        """Change a comment's body or a submission's selftext; ``edited`` becomes the float epoch."""
        thing = self._thing(thing)
        thing.body = body
        thing.edited = edited if edited is not None else time.time()
        self.touch()
        return thing

    def delete(self, thing: ThingRef) -> None:
        """The author deleted it: ``[deleted]`` author and body, gone from listings."""
        self._thing(thing).deleted = True
        self.touch()

    def remove(self, thing: ThingRef, *, spam: bool = False, by: str | None = None) -> None:
        """A moderator removed it: ``[removed]`` body (author kept), gone from listings."""
        target = self._thing(thing)
        target.removed, target.spam, target.banned_by = True, spam, by or "AutoModerator"
        target.approved_by = None
        self.touch()

    def approve(self, thing: ThingRef, *, by: str | None = None) -> None:
        target = self._thing(thing)
        target.removed, target.spam, target.banned_by = False, False, None
        target.approved_by = by or "AutoModerator"
        self.touch()

    def lock(self, thing: ThingRef) -> None:
        self._thing(thing).locked = True
        self.touch()

    def unlock(self, thing: ThingRef) -> None:
        self._thing(thing).locked = False
        self.touch()

    def mark(self, account: Account | str, fullnames: Iterable[str], *, new: bool) -> None:
        """Mark inbox items read (``new=False``) or unread for ``account``; unknown names are ignored."""
        wanted = set(fullnames)
        for entry in self._account(account).entries:
            if entry.thing.fullname in wanted:
                entry.new = new
        self.touch()

    def _thing(self, ref: ThingRef) -> Thing:
        return self.thing(ref) if isinstance(ref, str) else ref

    def _new(self, kind: Kind, author: Account, body: str, created_utc: float | None, **fields: Any) -> Thing:
        thing_id = base36(self._next_id[kind])
        self._next_id[kind] += 1
        self._seq += 1
        thing = Thing(
            kind=kind,
            id=thing_id,
            seq=self._seq,
            author=author.username,
            author_id=author.id,
            created_utc=created_utc if created_utc is not None else _now(),
            body=body,
            **fields,
        )
        self.things[thing.fullname] = thing
        return thing

    def _deliver(self, account: Account, thing: Thing, kind: InboxType) -> None:
        account.entries.append(InboxEntry(thing, kind))

    def _post_message(self, sender: Account, recipient: Account, message: Thing) -> None:
        sender.sent.append(message)
        if recipient is not sender:
            self._deliver(recipient, message, "unknown")
        self.touch()

    # -- behaviour switches -----------------------------------------------------------------------

    def set_pm_unavailable(self, username: str, status: int | None = 302) -> None:
        """``/message/messages`` and ``/message/sent`` answer 302 to the login page (2025: messages moved
        to chat) or 403 Forbidden for this account; ``status=None`` restores them."""
        if status not in (None, 302, 403):
            raise ValueError("status is 302, 403 or None")
        self.account(username).pm_unavailable = status

    def ratelimit_writes(self, username: str, wait: str = "7 minutes", *, times: int = 1) -> None:
        """The next ``times`` writes (comment, compose) of the account get a ``RATELIMIT`` error."""
        if not RATELIMIT_WAIT.fullmatch(wait):
            raise ValueError(f"wait is like '7 minutes', '30 seconds' or '500 milliseconds', not {wait!r}")
        self.account(username).write_limits.extend([wait] * times)

    def inject(
        self,
        path: str = "*",
        *,
        status: int | None = None,
        retry_after: int | None = None,
        body: str | bytes | Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
        delay: float = 0.0,
        fault: Fault | None = None,
        times: int = 1,
    ) -> Injection:
        """Make the next ``times`` calls whose path starts with ``path`` fail or go slow.

        ``path`` is an API path prefix ("/message/inbox", trailing slash ignored), "access_token" for
        the token endpoint (its path works too) or "*" for any call, the token endpoint included. ``status`` answers that instead of running the call,
        with ``body`` (a dict is sent as JSON; 4xx default to Reddit's ``{"message", "error"}``, 5xx to
        an empty body) and ``headers``; ``retry_after`` adds ``Retry-After`` and implies 429.
        ``delay`` waits first; alone, the call then runs normally. ``fault="drop"`` closes the
        connection without an answer. Injections are used first-in first-out.
        """
        extra = {name.lower(): value for name, value in (headers or {}).items()}
        if retry_after is not None:
            status = status or 429
            extra["retry-after"] = str(retry_after)
        content_type, payload = _injected_body(status, body)
        normalised = path if path in ("*", TOKEN_ENDPOINT) else "/" + path.strip("/")
        if normalised == "/api/v1/access_token":
            normalised = TOKEN_ENDPOINT
        injection = Injection(normalised, times, status, payload, content_type, extra, delay, fault)
        self.injections.append(injection)
        return injection

    def take_injection(self, path: str) -> Injection | None:
        for injection in self.injections:
            if injection.matches(path):
                injection.times -= 1
                if injection.times == 0:
                    self.injections.remove(injection)
                return injection
        return None

    # -- waiting ----------------------------------------------------------------------------------

    def touch(self) -> None:
        """Wake tests waiting in ``wait_for``."""
        self._activity.set()
        self._activity = asyncio.Event()

    async def wait_for(self, condition: Callable[[], object], timeout: float = 5.0) -> None:
        """Wait until ``condition()`` is truthy, re-checking on every request and every change."""
        try:
            async with asyncio.timeout(timeout):
                while True:
                    activity = self._activity
                    if condition():
                        return
                    await activity.wait()
        except TimeoutError:
            raise AssertionError(f"condition not met within {timeout}s") from None


def _now() -> float:
    """Reddit's timestamps are whole seconds as floats (``1767230000.0``)."""
    return float(int(time.time()))


def _refresh_token() -> str:
    return f"{random.randint(10**11, 10**12 - 1)}-{secrets.token_urlsafe(22)}"


def _injected_body(
    status: int | None, body: str | bytes | Mapping[str, Any] | None
) -> tuple[str | None, bytes]:
    if body is None:
        if status is None or status >= 500:
            return None, b""
        body = {"message": _REASONS.get(status, "Error"), "error": status}
    if isinstance(body, Mapping):
        return "application/json; charset=UTF-8", json.dumps(dict(body)).encode()
    data = body.encode() if isinstance(body, str) else body
    return ("text/html; charset=UTF-8" if data.lstrip().startswith(b"<") else "text/plain"), data


_REASONS = {
    400: "Bad Request",
    401: "Unauthorized",
    403: "Forbidden",
    404: "Not Found",
    408: "Request Timeout",
    409: "Conflict",
    413: "Payload Too Large",
    429: "Too Many Requests",
}
