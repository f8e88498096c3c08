"""The POST endpoints: replies, new messages, read marks, moderation (platforms.md §2.3, §2.6).

Content errors come back as ``json.errors`` inside a 200 (with ``api_type=json``; the legacy jQuery
shape without it); permission problems are HTTP errors (403, and 400/413 for bad id lists).
"""

from __future__ import annotations

import time
from typing import Any

from tests.fakes.reddit.accounts import Account
from tests.fakes.reddit.endpoints import Call, Reply, Route, route, truthy
from tests.fakes.reddit.errors import (
    DELETED_COMMENT,
    NO_SUBJECT,
    NO_TEXT,
    NO_THING_ID,
    NO_USER,
    SUBJECT_TOO_LONG,
    TEXT_TOO_LONG,
    THREAD_LOCKED,
    USER_DOESNT_EXIST,
    ApiError,
    WriteError,
    bad_request,
    forbidden,
    ratelimited,
    write_answer,
)
from tests.fakes.reddit.records import ModerationRecord
from tests.fakes.reddit.things import Thing, comment_json, message_json

Json = dict[str, Any]

MAX_TEXT = 10000  # characters, VMarkdownLength(max_length=10000)
MAX_SUBJECT = 100
MAX_READ_IDS = 25

ROUTES: list[Route] = []


def _spend_ratelimit(account: Account) -> None:
    if account.write_limits:
        raise ratelimited(account.write_limits.pop(0))


def _check_text(text: str) -> None:
    if not text.strip():
        raise NO_TEXT
    if len(text) > MAX_TEXT:
        raise TEXT_TOO_LONG


def _locked(parent: Thing) -> bool:
    """A locked submission locks its thread; a locked comment locks the replies below it."""
    thing: Thing | None = parent
    while thing is not None:
        if thing.locked:
            return True
        thing = thing.parent
    return False


@route(ROUTES, "POST", r"/api/comment")
def comment(call: Call) -> Json:
    """Reply to a submission, a comment or a private message; the new thing comes back in ``things``."""
    account = call.user()
    try:
        created = _reply(call, account)
    except WriteError as error:
        return write_answer(api_type_json=call.api_type_json, error=error)
    call.world.created_via_api.append(created)
    if created.kind == "t4":
        things = [{"kind": "t4", "data": message_json(created, new=False)}]
    elif created.subreddit is not None and created.subreddit.quarantined:
        things = []  # recorded: the comment exists, but nothing comes back
    else:
        things = [{"kind": "t1", "data": comment_json(created)}]
    return write_answer(api_type_json=call.api_type_json, data={"things": things})


def _reply(call: Call, account: Account) -> Thing:
    _spend_ratelimit(account)
    parent = call.world.things.get(call.arg("thing_id") or call.arg("parent"))
    if parent is None:
        raise NO_THING_ID
    text = call.arg("text")
    if parent.kind == "t4":
        if account.username.lower() not in parent.participants() or not parent.visible:
            raise forbidden()
        _check_text(text)
        return call.world.reply_pm(parent, author=account, body=text)
    if not parent.visible:
        raise DELETED_COMMENT
    if _locked(parent):
        raise THREAD_LOCKED
    _check_text(text)
    return call.world.comment(parent, author=account, body=text)


@route(ROUTES, "POST", r"/api/compose")
def compose(call: Call) -> Json:
    """A new private message. The answer carries no id (find the message in ``/message/sent``)."""
    account = call.user()
    try:
        _spend_ratelimit(account)
        name = call.arg("to").strip().removeprefix("/u/").removeprefix("u/")
        if not name:
            raise NO_USER
        recipient = call.world.accounts.get(name.lower())
        if recipient is None:
            raise USER_DOESNT_EXIST
        subject, text = call.arg("subject"), call.arg("text")
        if not subject.strip():
            raise NO_SUBJECT
        if len(subject) > MAX_SUBJECT:
            raise SUBJECT_TOO_LONG
        _check_text(text)
    except WriteError as error:
        return write_answer(api_type_json=call.api_type_json, error=error)
    message = call.world.send_pm(account, recipient, subject=subject, body=text)
    call.world.created_via_api.append(message)
    return write_answer(api_type_json=call.api_type_json)


def _id_list(call: Call, record: list[list[str]]) -> list[str]:
    names = [name.strip() for name in call.arg("id").split(",") if name.strip()]
    record.append(names)
    call.world.touch()
    if not names:
        raise bad_request()
    if len(names) > MAX_READ_IDS:
        raise ApiError(413, {"message": "Payload Too Large", "error": 413})
    return names


@route(ROUTES, "POST", r"/api/read_message")
def read_message(call: Call) -> Json:
    account = call.user()
    call.world.mark(account, _id_list(call, call.world.read_calls), new=False)
    return {}


@route(ROUTES, "POST", r"/api/unread_message")
def unread_message(call: Call) -> Json:
    account = call.user()
    call.world.mark(account, _id_list(call, call.world.unread_calls), new=True)
    return {}


@route(ROUTES, "POST", r"/api/read_all_messages")
def read_all_messages(call: Call) -> Reply:
    account = call.user()
    call.world.mark(account, [entry.thing.fullname for entry in account.entries], new=False)
    return Reply({}, status=202)


# -- moderation -----------------------------------------------------------------------------------------


def _target(call: Call) -> Thing:
    thing = call.world.things.get(call.arg("id").strip())
    if thing is None or thing.kind == "t4":
        raise bad_request()
    return thing


def _moderate(call: Call, action: str, *, spam: bool | None = None) -> tuple[Account, Thing]:
    account = call.user()
    thing = _target(call)
    if thing.subreddit is None or not thing.subreddit.is_moderator(account.username):
        raise forbidden()
    record = ModerationRecord(action, thing.fullname, spam, account.username, time.monotonic())
    call.world.moderation.append(record)
    return account, thing


@route(ROUTES, "POST", r"/api/remove")
def remove(call: Call) -> Json:
    """Remove as a moderator; ``spam`` defaults to true on Reddit when the client leaves it out."""
    spam = truthy(call.arg("spam"), default=True)
    account, thing = _moderate(call, "remove", spam=spam)
    call.world.remove(thing, spam=spam, by=account.username)
    return {}


@route(ROUTES, "POST", r"/api/approve")
def approve(call: Call) -> Json:
    account, thing = _moderate(call, "approve")
    if not thing.deleted:
        call.world.approve(thing, by=account.username)
    return {}


@route(ROUTES, "POST", r"/api/lock")
def lock(call: Call) -> Json:
    _, thing = _moderate(call, "lock")
    call.world.lock(thing)
    return {}


@route(ROUTES, "POST", r"/api/unlock")
def unlock(call: Call) -> Json:
    _, thing = _moderate(call, "unlock")
    call.world.unlock(thing)
    return {}


@route(ROUTES, "POST", r"/api/del")
def delete(call: Call) -> Json:
    """Delete one's own comment or submission."""
    account = call.user()
    thing = _target(call)
    if thing.author.lower() != account.username.lower():
        raise forbidden()
    call.world.moderation.append(
        ModerationRecord("del", thing.fullname, None, account.username, time.monotonic())
    )
    call.world.delete(thing)
    return {}
