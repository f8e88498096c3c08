"""Reddit objects and their JSON shapes: comments (t1), submissions (t3), messages (t4), subreddits (t5).

A ``Thing`` holds the state (text, author, flags, relations); the functions below render it the way
each endpoint shows it (platforms.md §2.4-2.5): the full comment object of ``/r/{sub}/comments``, the
inbox view of ``/message/*`` (no ``link_id``, a ``context`` permalink instead), the submission object,
the message object with its nested ``replies``.
"""

from __future__ import annotations

import html
import re
from dataclasses import dataclass, field
from typing import Any, Literal

Json = dict[str, Any]
Kind = Literal["t1", "t3", "t4"]
InboxType = Literal["comment_reply", "post_reply", "username_mention", "unknown"]

SUBJECTS: dict[InboxType, str] = {
    "comment_reply": "comment reply",
    "post_reply": "post reply",
    "username_mention": "username mention",
}
DELETED = "[deleted]"
REMOVED = "[removed]"
WEB = "https://www.reddit.com"
_DIGITS = "0123456789abcdefghijklmnopqrstuvwxyz"


def base36(number: int) -> str:
    if number < 0:
        raise ValueError("ids are not negative")
    digits = ""
    while True:
        number, digit = divmod(number, 36)
        digits = _DIGITS[digit] + digits
        if number == 0:
            return digits


def slug(title: str) -> str:
    """The title part of a permalink: lower-case ASCII words joined by ``_``, at most 50 characters."""
    words = re.sub(r"[^a-z0-9]+", "_", title.lower()).strip("_")
    return words[:50].rstrip("_") or "_"


def markdown_html(text: str) -> str:
    """``body_html``: the text as escaped HTML paragraphs inside Reddit's ``md`` wrapper."""
    paragraphs = [part for part in text.split("\n\n") if part.strip()] or [text]
    inner = "".join(f"<p>{html.escape(part)}</p>\n" for part in paragraphs)
    return f'<!-- SC_OFF --><div class="md">{inner}</div><!-- SC_ON -->'


def escape_entities(value: Any) -> Any:
    """What Reddit sends without ``raw_json=1``: ``&``, ``<`` and ``>`` in every string become entities."""
    if isinstance(value, str):
        return value.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")
    if isinstance(value, list):
        return [escape_entities(item) for item in value]
    if isinstance(value, dict):
        return {key: escape_entities(item) for key, item in value.items()}
    return value


@dataclass(eq=False)
class Subreddit:
    name: str
    id: str  # base36, without the t5_ prefix
    title: str
    moderators: set[str] = field(default_factory=set)  # lower-cased usernames
    quarantined: bool = False
    private: bool = False
    banned: bool = False
    created_utc: float = 0.0

    @property
    def fullname(self) -> str:
        return f"t5_{self.id}"

    def is_moderator(self, username: str) -> bool:
        return username.lower() in self.moderators

    def about(self) -> Json:
        return {
            "kind": "t5",
            "data": {
                "id": self.id,
                "name": self.fullname,
                "display_name": self.name,
                "display_name_prefixed": f"r/{self.name}",
                "title": self.title,
                "url": f"/r/{self.name}/",
                "subreddit_type": "private" if self.private else "public",
                "quarantine": self.quarantined,
                "over18": False,
                "subscribers": 1200 + len(self.moderators),
                "public_description": "",
                "created": self.created_utc,
                "created_utc": self.created_utc,
                "lang": "en",
            },
        }


@dataclass(eq=False)
class Thing:
    """A comment, submission or private message. ``data`` is its JSON as the API returns it."""

    kind: Kind
    id: str  # base36, without the kind prefix
    seq: int  # creation order across kinds: listings are newest first by it
    author: str
    author_id: str  # the author's t2 id36
    created_utc: float
    body: str  # a comment's or message's body, a submission's selftext
    subreddit: Subreddit | None = None
    title: str = ""  # t3
    url: str | None = None  # t3 link posts
    subject: str = ""  # t4
    parent: Thing | None = None  # t1: the t1 or t3 replied to; t4: the message replied to
    dest: str | None = None  # t4: the recipient
    edited: float | None = None
    deleted: bool = False
    removed: bool = False
    spam: bool = False
    locked: bool = False
    banned_by: str | None = None
    approved_by: str | None = None
    comments: list[Thing] = field(default_factory=list)  # t3: every comment in the thread
    replies: list[Thing] = field(default_factory=list)  # t4 root: the thread's replies, oldest first

    @property
    def fullname(self) -> str:
        return f"{self.kind}_{self.id}"

    @property
    def visible(self) -> bool:
        """Deleted and removed things vanish from listings (they still answer ``/api/info``)."""
        return not (self.deleted or self.removed)

    @property
    def post(self) -> Thing:
        """The submission a comment belongs to (a submission is its own)."""
        thing = self
        while thing.kind == "t1" and thing.parent is not None:
            thing = thing.parent
        if thing.kind != "t3":
            raise ValueError(f"{self.fullname} belongs to no submission")
        return thing

    @property
    def root(self) -> Thing:
        """The first message of a private message thread."""
        thing = self
        while thing.parent is not None:
            thing = thing.parent
        return thing

    @property
    def shown_author(self) -> str:
        return DELETED if self.deleted else self.author

    @property
    def shown_body(self) -> str:
        if self.deleted:
            return DELETED
        return REMOVED if self.removed else self.body

    @property
    def permalink(self) -> str:
        if self.kind == "t3":
            assert self.subreddit is not None
            return f"/r/{self.subreddit.name}/comments/{self.id}/{slug(self.title)}/"
        if self.kind == "t1":
            return f"{self.post.permalink}{self.id}/"
        return f"/message/messages/{self.root.id}"

    def participants(self) -> set[str]:
        """Lower-cased usernames of a message thread's two sides."""
        root = self.root
        names = {root.author.lower(), (root.dest or "").lower()}
        for reply in root.replies:
            names |= {reply.author.lower(), (reply.dest or "").lower()}
        return names - {""}

    @property
    def data(self) -> Json:
        if self.kind == "t1":
            return comment_json(self)
        if self.kind == "t3":
            return submission_json(self)
        return message_json(self, new=False)

    def listing_child(self) -> Json:
        return {"kind": self.kind, "data": self.data}


@dataclass(eq=False)
class InboxEntry:
    """A thing in an account's inbox, with why it is there and whether it is unread."""

    thing: Thing
    type: InboxType
    new: bool = True


def _author_fields(thing: Thing) -> Json:
    fields: Json = {"author": thing.shown_author}
    if not thing.deleted:  # a deleted author has no fullname
        fields["author_fullname"] = f"t2_{thing.author_id}"
    return fields


def _subreddit_fields(subreddit: Subreddit) -> Json:
    return {
        "subreddit": subreddit.name,
        "subreddit_id": subreddit.fullname,
        "subreddit_name_prefixed": f"r/{subreddit.name}",
        "subreddit_type": "private" if subreddit.private else "public",
    }


def comment_json(thing: Thing) -> Json:
    """The full comment object of ``/r/{sub}/comments``, ``/api/info`` and ``/api/comment``."""
    post = thing.post
    assert thing.parent is not None
    assert post.subreddit is not None
    body = thing.shown_body
    return {
        "id": thing.id,
        "name": thing.fullname,
        **_author_fields(thing),
        "body": body,
        "body_html": markdown_html(body),
        "created": thing.created_utc,
        "created_utc": thing.created_utc,
        "parent_id": thing.parent.fullname,
        "link_id": post.fullname,
        "link_title": post.title,
        "link_permalink": f"{WEB}{post.permalink}",
        "link_author": post.shown_author,
        "link_url": post.url or f"{WEB}{post.permalink}",
        "permalink": thing.permalink,
        **_subreddit_fields(post.subreddit),
        "edited": thing.edited if thing.edited is not None else False,
        "distinguished": None,
        "stickied": False,
        "locked": thing.locked,
        "archived": False,
        "score": 1,
        "ups": 1,
        "downs": 0,
        "likes": None,
        "replies": "",
        "removal_reason": None,
        "banned_by": thing.banned_by,
        "approved_by": thing.approved_by,
        "collapsed": thing.removed,
        "collapsed_reason": None,
        "is_submitter": thing.author.lower() == post.author.lower() and not thing.deleted,
        "send_replies": True,
        "author_is_blocked": False,
        "comment_type": None,
        "unrepliable_reason": None,
        "num_comments": len(post.comments),
        "over_18": False,
        "quarantine": post.subreddit.quarantined,
        "controversiality": 0,
        "gilded": 0,
        "total_awards_received": 0,
        "all_awardings": [],
        "saved": False,
        "score_hidden": False,
        "no_follow": True,
        "author_flair_text": None,
        "mod_reports": [],
        "user_reports": [],
    }


def submission_json(thing: Thing) -> Json:
    assert thing.subreddit is not None
    selftext = "" if thing.url and thing.visible else thing.shown_body
    removed_by = "deleted" if thing.deleted else "moderator" if thing.removed else None
    permalink = thing.permalink
    return {
        "id": thing.id,
        "name": thing.fullname,
        "title": thing.title,
        "selftext": selftext,
        "selftext_html": markdown_html(selftext) if selftext else None,
        **_author_fields(thing),
        "created": thing.created_utc,
        "created_utc": thing.created_utc,
        "permalink": permalink,
        "url": thing.url or f"{WEB}{permalink}",
        "is_self": thing.url is None,
        "domain": _domain(thing.url) if thing.url else f"self.{thing.subreddit.name}",
        "num_comments": len(thing.comments),
        **_subreddit_fields(thing.subreddit),
        "over_18": False,
        "spoiler": False,
        "locked": thing.locked,
        "archived": False,
        "quarantine": thing.subreddit.quarantined,
        "link_flair_text": None,
        "edited": thing.edited if thing.edited is not None else False,
        "distinguished": None,
        "stickied": False,
        "removed_by_category": removed_by,
        "banned_by": thing.banned_by,
        "approved_by": thing.approved_by,
        "removal_reason": None,
        "score": 1,
        "ups": 1,
        "upvote_ratio": 1.0,
        "likes": None,
        "thumbnail": "self" if thing.url is None else "default",
        "send_replies": True,
        "is_video": False,
        "media": None,
        "num_crossposts": 0,
        "gilded": 0,
        "total_awards_received": 0,
        "all_awardings": [],
        "saved": False,
        "hidden": False,
    }


def _domain(url: str) -> str:
    host = url.split("://", 1)[-1].split("/", 1)[0]
    return host.removeprefix("www.")


def _inbox_fields(thing: Thing, *, new: bool) -> Json:
    """The keys every inbox item carries (the recorded 2025 key set)."""
    body = thing.shown_body
    return {
        "associated_awarding_id": None,
        **_author_fields(thing),
        "body": body,
        "body_html": markdown_html(body),
        "created": thing.created_utc,
        "created_utc": thing.created_utc,
        "distinguished": None,
        "id": thing.id,
        "likes": None,
        "name": thing.fullname,
        "new": new,
        "replies": "",
        "score": 1 if thing.kind == "t1" else 0,
    }


def inbox_comment_json(thing: Thing, entry_type: InboxType, *, recipient: str, new: bool) -> Json:
    """A comment as ``/message/inbox`` shows it: ``context`` and ``link_title``, but no ``link_id``."""
    post = thing.post
    assert thing.parent is not None
    assert post.subreddit is not None
    return {
        **_inbox_fields(thing, new=new),
        "context": f"{thing.permalink}?context=3",
        "dest": recipient,
        "first_message": None,
        "first_message_name": None,
        "link_title": post.title,
        "num_comments": len(post.comments),
        "parent_id": thing.parent.fullname,
        "subject": SUBJECTS.get(entry_type, entry_type),
        "subreddit": post.subreddit.name,
        "subreddit_name_prefixed": f"r/{post.subreddit.name}",
        "type": entry_type,
        "was_comment": True,
    }


def message_json(thing: Thing, *, new: bool, replies: Json | None = None) -> Json:
    """A private message; a thread root in ``/message/messages`` nests its replies as a Listing."""
    root = thing.root
    is_root = root is thing
    return {
        **_inbox_fields(thing, new=new),
        "context": "",
        "dest": thing.dest,
        "first_message": None if is_root else int(root.id, 36),
        "first_message_name": None if is_root else root.fullname,
        "num_comments": None,
        "parent_id": None if thing.parent is None else thing.parent.fullname,
        "replies": replies if replies is not None else "",
        "subject": thing.subject,
        "subreddit": None,
        "subreddit_name_prefixed": None,
        "type": "unknown",
        "was_comment": False,
    }


def listing(children: list[Json], *, after: str | None = None) -> Json:
    """The Listing envelope (platforms.md §2.4)."""
    return {
        "kind": "Listing",
        "data": {
            "after": after,
            "before": None,
            "dist": len(children),
            "modhash": None,
            "geo_filter": "",
            "children": children,
        },
    }
