"""Replies and moderator actions sent through Reddit, and every way Reddit refuses them."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import httpx
import pytest
from sqlalchemy import event, insert, select
from sqlalchemy.ext.asyncio import AsyncEngine
from sqlalchemy.util import await_only

from services.inbox import ids
from services.inbox.models import Message
from services.inbox.repository.outbound import mark_sent
from shared.bus.client import Bus
from shared.db import session_factory
from shared.errors import TransientError
from shared.events.commands import ReplySending, ReplySent, outcome_subject
from tests.fakes.reddit import FakeReddit
from tests.services.reddit.conftest import Account, connect_account, messages_of
from tests.support import Tenant, add_user, conversation_messages, unique, wait_for

pytestmark = pytest.mark.e2e


@pytest.fixture
async def thread(
    api: httpx.AsyncClient,
    tenant: Tenant,
    reddit: FakeReddit,
    account: Account,
    subreddit: str,
    connector: Any,
    replier: Any,
) -> dict[str, Any]:
    """A subreddit thread in the inbox: the post and one comment, with the channel."""
    return await _public_thread(api, tenant, reddit, account, subreddit)


async def _public_thread(
    api: httpx.AsyncClient,
    tenant: Tenant,
    reddit: FakeReddit,
    account: Account,
    subreddit: str,
    **channel_settings: Any,
) -> dict[str, Any]:
    channel = await connect_account(api, tenant, account, subreddits=[subreddit], **channel_settings)
    post = reddit.submit(subreddit, author="jane_doe", title="Where is my order?")
    comment = reddit.comment(post, author="bob", body="Mine too!")
    messages = await messages_of(api, tenant, channel["id"], post.fullname, 2)
    return {"channel": channel, "post": post, "comment": comment, "messages": messages}


async def _reply(
    api: httpx.AsyncClient, tenant: Tenant, message: dict[str, Any], text: str, **extra: Any
) -> httpx.Response:
    return await api.post(
        f"/v1/conversations/{message['conversation_id']}/messages",
        json={"text": text, "reply_to_message_id": message["id"], **extra},
        headers=tenant.auth,
    )


async def _delivered(api: httpx.AsyncClient, tenant: Tenant, message_id: str) -> dict[str, Any]:
    async def settled() -> dict[str, Any] | None:
        message: dict[str, Any] = (await api.get(f"/v1/messages/{message_id}", headers=tenant.auth)).json()
        return message if message["delivery"]["status"] != "pending" else None

    return await wait_for(settled, timeout=15)


async def test_a_reply_to_a_comment_is_sent_and_its_echo_is_not_doubled(
    api: httpx.AsyncClient, tenant: Tenant, reddit: FakeReddit, thread: dict[str, Any]
) -> None:
    comment = thread["messages"][1]
    response = await _reply(api, tenant, comment, "We are on it — sorry! 🙏")
    assert response.status_code == 202, response.text
    sent = await _delivered(api, tenant, response.json()["id"])
    assert sent["delivery"]["status"] == "sent"
    created = reddit.created_via_api[-1]
    assert created.data["parent_id"] == thread["comment"].fullname
    assert created.data["body"] == "We are on it — sorry! 🙏"
    assert sent["external_id"] == created.fullname
    # The connector sees the account's own comment in the subreddit: it stays one message.
    await reddit.wait_for(
        lambda: any(r.path.startswith("/r/") and r.at > created_at(reddit, created) for r in reddit.requests)
    )
    messages = await messages_of(api, tenant, thread["channel"]["id"], thread["post"].fullname, 3)
    assert [m["external_id"] for m in messages].count(created.fullname) == 1
    assert len(messages) == 3


def created_at(reddit: FakeReddit, thing: Any) -> float:
    return max(r.at for r in reddit.requests if r.path.startswith("/api/comment"))


async def test_a_reply_without_a_target_answers_the_post(
    api: httpx.AsyncClient, tenant: Tenant, reddit: FakeReddit, thread: dict[str, Any]
) -> None:
    conversation_id = thread["messages"][0]["conversation_id"]
    response = await api.post(
        f"/v1/conversations/{conversation_id}/messages",
        json={"text": "Update: shipped today."},
        headers=tenant.auth,
    )
    assert (await _delivered(api, tenant, response.json()["id"]))["delivery"]["status"] == "sent"
    assert reddit.created_via_api[-1].data["parent_id"] == thread["post"].fullname


async def test_private_messages_are_answered_in_their_thread(
    api: httpx.AsyncClient, tenant: Tenant, reddit: FakeReddit, account: Account, thread: dict[str, Any]
) -> None:
    pm = reddit.send_pm("jane_doe", account.username, subject="refund", body="Can I get a refund?")
    messages = await messages_of(api, tenant, thread["channel"]["id"], pm.fullname, 1)
    response = await _reply(api, tenant, messages[0], "Of course, done.")
    assert (await _delivered(api, tenant, response.json()["id"]))["delivery"]["status"] == "sent"
    created = reddit.created_via_api[-1]
    assert created.kind == "t4"
    assert created.data["parent_id"] == pm.fullname
    assert created.data["subject"] == "re: refund"


@pytest.mark.parametrize("first", ["outcome", "copy"])
async def test_a_private_reply_composes_a_new_message_whose_thread_is_a_conversation_of_its_own(
    api: httpx.AsyncClient,
    tenant: Tenant,
    reddit: FakeReddit,
    account: Account,
    thread: dict[str, Any],
    engine: AsyncEngine,
    first: str,
) -> None:
    # Either the reply service learns the composed message's id before the connector lists its copy
    # among the account's private messages, or after: both orders must end the same way.
    slowed = "/message/messages" if first == "outcome" else "/message/sent"
    reddit.inject(slowed, delay=1.5, times=3)
    comment = thread["messages"][1]
    agent = await add_user(engine, tenant.workspace_id)
    team = (await api.post("/v1/teams", json={"name": unique("Reddit")}, headers=tenant.auth)).json()
    public_id = comment["conversation_id"]
    routed = await api.patch(
        f"/v1/conversations/{public_id}", json={"team_id": team["id"]}, headers=tenant.auth
    )
    assert routed.status_code == 200, routed.text
    response = await _reply(api, agent, comment, "Send me your order number here, please.", private=True)
    assert response.status_code == 202, response.text
    sent = await _delivered(api, tenant, response.json()["id"])
    assert sent["delivery"]["status"] == "sent"
    composed = reddit.account(account.username).sent[-1]
    assert composed.data["dest"].lower() == "bob"
    assert composed.data["subject"] == "re: Where is my order?"
    # In the public conversation the reply stays as sent, pointing at the message it became.
    assert sent["external_id"] == f"piazza:{sent['id']}"
    assert sent["meta"]["platform_message_ids"] == [composed.fullname]
    assert sent["meta"]["private_to"] == "bob"
    # The private thread is the replying agent's conversation, in the public one's team, waiting on
    # Bob, whichever arrived first: the reply's outcome (the thread is created, empty) or the
    # connector's copy of it.
    thread_id = ids.conversation_id(uuid.UUID(thread["channel"]["id"]), composed.fullname)
    started = (await api.get(f"/v1/conversations/{thread_id}", headers=tenant.auth)).json()
    assignment = {"assignee_id": str(agent.user_id), "team_id": team["id"]}
    assert started["status"] == "pending"
    assert {k: started[k] for k in assignment} == assignment
    # Bob's answer joins it and takes it back to open, still the agent's.
    reddit.reply_pm(composed, author="bob", body="It is 4417, thanks!")
    private = await messages_of(api, tenant, thread["channel"]["id"], composed.fullname, 2)
    assert sorted((m["direction"], m["text"]) for m in private) == [
        ("inbound", "It is 4417, thanks!"),
        ("outbound", "Send me your order number here, please."),
    ]
    assert composed.fullname in {m["external_id"] for m in private}
    assert {m["conversation_id"] for m in private} == {str(thread_id)}
    answered = (await api.get(f"/v1/conversations/{thread_id}", headers=tenant.auth)).json()
    assert answered["status"] == "open"
    assert {k: answered[k] for k in assignment} == assignment
    assert answered["version"] == started["version"] + 1
    public = await messages_of(api, tenant, thread["channel"]["id"], thread["post"].fullname, 3)
    assert [m["id"] for m in public] == [*(m["id"] for m in thread["messages"]), sent["id"]]
    # The reply in the public conversation points to its copy for answering or deleting it.
    answer = await _reply(api, tenant, sent, "And one more thing.")
    delete = await api.post(f"/v1/messages/{sent['id']}/delete", headers=tenant.auth)
    for refused in (answer, delete):
        assert refused.status_code == 400, refused.text
        assert "private thread with u/bob" in refused.json()["detail"]


async def test_a_private_reply_from_an_account_whose_inbox_is_not_followed_starts_no_conversation(
    api: httpx.AsyncClient,
    tenant: Tenant,
    reddit: FakeReddit,
    account: Account,
    subreddit: str,
    connector: Any,
    replier: Any,
) -> None:
    # Its private messages never arrive: an empty conversation waiting for them would stay empty.
    thread = await _public_thread(api, tenant, reddit, account, subreddit, inbox=False)
    channel, comment = thread["channel"], thread["messages"][1]
    response = await _reply(api, tenant, comment, "Your order number, please?", private=True)
    sent = await _delivered(api, tenant, response.json()["id"])
    composed = reddit.account(account.username).sent[-1]
    assert sent["meta"]["platform_message_ids"] == [composed.fullname]
    thread_id = ids.conversation_id(uuid.UUID(channel["id"]), composed.fullname)
    assert (await api.get(f"/v1/conversations/{thread_id}", headers=tenant.auth)).status_code == 404


async def test_a_private_reply_counts_once_in_analytics(
    api: httpx.AsyncClient,
    analytics: httpx.AsyncClient,
    tenant: Tenant,
    reddit: FakeReddit,
    account: Account,
    thread: dict[str, Any],
    engine: AsyncEngine,
) -> None:
    # The reply (message_sent) and the connector's copy of it, the private thread's first message
    # (message_received, outbound), are one message sent: the copy counts nowhere.
    agent = await add_user(engine, tenant.workspace_id)
    response = await _reply(api, agent, thread["messages"][1], "Your order number, please?", private=True)
    assert (await _delivered(api, tenant, response.json()["id"]))["delivery"]["status"] == "sent"
    composed = reddit.account(account.username).sent[-1]
    reddit.reply_pm(composed, author="bob", body="It is 4417")
    await messages_of(api, tenant, thread["channel"]["id"], composed.fullname, 2)

    async def counted() -> dict[str, Any] | None:
        found = await analytics.get("/v1/analytics/agents", headers=tenant.auth)
        replies = {a["agent_id"]: a["replies"] for a in found.json()["agents"]}
        summary: dict[str, Any] = (await analytics.get("/v1/analytics/summary", headers=tenant.auth)).json()
        # The reply is counted, and so is Bob's answer, whose event follows the copy's.
        done = replies.get(str(agent.user_id)) == 1 and summary["messages"]["inbound"] == 3
        return summary if done else None

    summary = await wait_for(counted, timeout=20)
    assert summary["messages"]["outbound"] == 1


async def test_bad_replies_are_400_before_anything_is_sent(
    api: httpx.AsyncClient, tenant: Tenant, reddit: FakeReddit, account: Account, thread: dict[str, Any]
) -> None:
    post, comment = thread["messages"]
    too_long = await _reply(api, tenant, comment, "x" * 10_001)
    assert too_long.status_code == 400
    assert too_long.json()["code"] == "too_long"
    reddit.comment(thread["comment"], author=account.username, body="our own words")
    messages = await messages_of(api, tenant, thread["channel"]["id"], thread["post"].fullname, 3)
    own = await _reply(api, tenant, messages[2], "hi", private=True)
    assert own.status_code == 400
    assert own.json()["code"] == "no_recipient"
    no_target = await api.post(
        f"/v1/conversations/{post['conversation_id']}/messages",
        json={"text": "hi", "private": True},
        headers=tenant.auth,
    )
    assert no_target.status_code == 400
    assert not [
        r
        for r in reddit.requests
        if r.path.startswith(("/api/comment", "/api/compose")) and r.form.get("text") == "x" * 10_001
    ]


@pytest.mark.parametrize(
    ("arrange", "code", "reason"),
    [
        (lambda reddit, t: reddit.lock(t["post"]), "forbidden", "THREAD_LOCKED"),
        (lambda reddit, t: reddit.delete(t["comment"]), "rejected", "DELETED_COMMENT"),
    ],
    ids=["locked", "deleted"],
)
async def test_refusals_fail_the_reply_with_reddits_reason(
    api: httpx.AsyncClient,
    tenant: Tenant,
    reddit: FakeReddit,
    thread: dict[str, Any],
    arrange: Any,
    code: str,
    reason: str,
) -> None:
    arrange(reddit, thread)
    response = await _reply(api, tenant, thread["messages"][1], "Hello?")
    failed = await _delivered(api, tenant, response.json()["id"])
    assert failed["delivery"]["status"] == "failed"
    assert failed["delivery"]["error"].startswith(f"{code}: {reason}")


async def test_ratelimit_is_waited_out_and_the_reply_sent_once(
    api: httpx.AsyncClient, tenant: Tenant, reddit: FakeReddit, account: Account, thread: dict[str, Any]
) -> None:
    reddit.ratelimit_writes(account.username, "1 second")
    response = await _reply(api, tenant, thread["messages"][1], "Patience pays.")
    sent = await _delivered(api, tenant, response.json()["id"])
    assert sent["delivery"]["status"] == "sent"
    attempts = [r for r in reddit.requests if r.path.startswith("/api/comment")]
    assert len(attempts) == 2
    assert attempts[1].at - attempts[0].at >= 1.0
    assert [t.data["body"] for t in reddit.created_via_api].count("Patience pays.") == 1


async def test_a_server_error_is_retried_and_a_lost_answer_is_not(
    api: httpx.AsyncClient, tenant: Tenant, reddit: FakeReddit, thread: dict[str, Any]
) -> None:
    reddit.inject("/api/comment", status=502, times=1)
    retried = await _reply(api, tenant, thread["messages"][1], "second try")
    assert (await _delivered(api, tenant, retried.json()["id"]))["delivery"]["status"] == "sent"
    reddit.inject("/api/comment", fault="drop", times=1)
    lost = await _reply(api, tenant, thread["messages"][1], "maybe sent")
    unknown = await _delivered(api, tenant, lost.json()["id"])
    assert unknown["delivery"]["status"] == "unknown"


async def test_a_quarantined_subreddit_reply_counts_as_sent_without_an_id(
    api: httpx.AsyncClient, tenant: Tenant, reddit: FakeReddit, thread: dict[str, Any]
) -> None:
    reddit.subreddit(thread["post"].data["subreddit"]).quarantined = True
    response = await _reply(api, tenant, thread["messages"][1], "quiet corner")
    sent = await _delivered(api, tenant, response.json()["id"])
    assert sent["delivery"]["status"] == "sent"
    assert len([r for r in reddit.requests if r.path.startswith("/api/comment")]) == 1  # never retried


@pytest.mark.parametrize(
    ("body", "call", "spam", "state"),
    [
        ({"action": "remove"}, "remove", False, {"state": "removed", "spam": False}),
        ({"action": "remove", "spam": True}, "remove", True, {"state": "removed", "spam": True}),
        ({"action": "approve"}, "approve", None, {"state": "approved", "spam": False}),
        ({"action": "lock"}, "lock", None, {"locked": True}),
        ({"action": "unlock"}, "unlock", None, {"locked": False}),
    ],
)
async def test_moderator_actions_reach_reddit_and_land_on_the_message(
    api: httpx.AsyncClient,
    tenant: Tenant,
    reddit: FakeReddit,
    thread: dict[str, Any],
    body: dict[str, Any],
    call: str,
    spam: bool | None,
    state: dict[str, Any],
) -> None:
    comment = thread["messages"][1]
    response = await api.post(f"/v1/messages/{comment['id']}/moderation", json=body, headers=tenant.auth)
    assert response.status_code == 202, response.text
    audit_id = response.json()["id"]

    async def applied() -> dict[str, Any] | None:
        entries = (await api.get("/v1/audit", headers=tenant.auth)).json()["data"]
        entry = next(e for e in entries if e["id"] == audit_id)
        return entry if entry["status"] != "requested" else None

    entry = await wait_for(applied, timeout=15)
    assert entry["status"] == "applied", entry
    record = reddit.moderation[-1]
    assert (record.action, record.fullname) == (call, thread["comment"].fullname)
    if spam is not None:
        assert record.spam is spam
    message = (await api.get(f"/v1/messages/{comment['id']}", headers=tenant.auth)).json()
    assert {k: v for k, v in message["meta"]["moderation"].items() if k != "at"} == state


async def test_moderation_without_moderator_rights_fails_with_the_reason(
    api: httpx.AsyncClient, tenant: Tenant, reddit: FakeReddit, account: Account, connector: Any, replier: Any
) -> None:
    other = reddit.add_subreddit("notmine")
    channel = await connect_account(api, tenant, account, inbox=False, subreddits=["notmine"])
    post = reddit.submit(other, author="jane_doe", title="Spam?")
    [message] = await messages_of(api, tenant, channel["id"], post.fullname, 1)
    response = await api.post(
        f"/v1/messages/{message['id']}/moderation", json={"action": "remove"}, headers=tenant.auth
    )
    audit_id = response.json()["id"]

    async def settled() -> dict[str, Any] | None:
        entries = (await api.get("/v1/audit", headers=tenant.auth)).json()["data"]
        entry = next(e for e in entries if e["id"] == audit_id)
        return entry if entry["status"] != "requested" else None

    entry = await wait_for(settled, timeout=15)
    assert entry["status"] == "failed"
    assert "forbidden" in str(entry["detail"]).lower(), entry


async def test_deleting_the_accounts_own_comment_uses_del(
    api: httpx.AsyncClient, tenant: Tenant, reddit: FakeReddit, account: Account, thread: dict[str, Any]
) -> None:
    own = reddit.comment(thread["comment"], author=account.username, body="Oops, wrong thread")
    messages = await messages_of(api, tenant, thread["channel"]["id"], thread["post"].fullname, 3)
    mine = next(m for m in messages if m["external_id"] == own.fullname)
    response = await api.post(f"/v1/messages/{mine['id']}/delete", headers=tenant.auth)
    assert response.status_code == 202

    async def deleted() -> dict[str, Any] | None:
        message = (await api.get(f"/v1/messages/{mine['id']}", headers=tenant.auth)).json()
        return message if message["deleted_at"] else None

    await wait_for(deleted, timeout=15)
    assert (reddit.moderation[-1].action, reddit.moderation[-1].fullname) == ("del", own.fullname)


async def test_moderation_applies_to_reddit_comments_and_posts_only(
    api: httpx.AsyncClient, tenant: Tenant, reddit: FakeReddit, account: Account, thread: dict[str, Any]
) -> None:
    pm = reddit.send_pm("jane_doe", account.username, subject="hi", body="hello")
    [message] = await messages_of(api, tenant, thread["channel"]["id"], pm.fullname, 1)
    response = await api.post(
        f"/v1/messages/{message['id']}/moderation", json={"action": "lock"}, headers=tenant.auth
    )
    assert response.status_code == 400
    assert response.json()["code"] == "moderation_not_supported"
    bad = await api.post(
        f"/v1/messages/{message['id']}/moderation", json={"action": "explode"}, headers=tenant.auth
    )
    assert bad.status_code == 400


async def test_an_echo_stored_before_the_outcome_merges_into_the_reply(
    api: httpx.AsyncClient,
    tenant: Tenant,
    reddit: FakeReddit,
    account: Account,
    subreddit: str,
    connector: Any,
    nats_url: str,
    bus_prefix: str,
) -> None:
    """Reddit lists the account's own comments: when the connector stores one before the reply
    service reports it sent (no reply service runs here), the reply takes the echo's place."""
    channel = await connect_account(api, tenant, account, inbox=False, subreddits=[subreddit])
    post = reddit.submit(subreddit, author="jane_doe", title="Order status")
    [message] = await messages_of(api, tenant, channel["id"], post.fullname, 1)
    pending = (await _reply(api, tenant, message, "Shipped!")).json()
    echo = reddit.comment(post, author=account.username, body="Shipped!")  # what the send created
    await messages_of(api, tenant, channel["id"], post.fullname, 3)
    outcome = ReplySent(
        workspace=str(tenant.workspace_id),
        source="tests",
        payload=ReplySending(
            message_id=pending["id"],
            channel_id=channel["id"],
            platform_message_ids=(echo.fullname,),
            sent_at=datetime.now(UTC),
        ),
    )
    async with await Bus.connect(nats_url, name="tests", prefix=bus_prefix) as bus:
        await bus.publish(outcome_subject("reply", uuid.UUID(channel["id"])), outcome)

    async def merged() -> list[dict[str, Any]] | None:
        messages = await conversation_messages(api, tenant, channel["id"], post.fullname)
        return messages if len(messages) == 2 else None

    messages = await wait_for(merged)
    assert [(m["id"], m["external_id"], m["delivery"]["status"]) for m in messages[1:]] == [
        (pending["id"], echo.fullname, "sent")
    ]


async def test_an_echo_stored_while_the_outcome_is_applied_makes_it_retry_not_dead_letter(
    api: httpx.AsyncClient,
    tenant: Tenant,
    reddit: FakeReddit,
    account: Account,
    subreddit: str,
    connector: Any,
    engine: AsyncEngine,
    backend: str,
) -> None:
    """The connector may commit the echo of a reply between the moment the outcome looked for one
    and its own update: the clash on the platform id is a transient error (the consumer retries the
    batch), and the retry merges the echo into the reply."""
    if backend == "sqlite":
        pytest.skip("SQLite runs one writer at a time: the two transactions cannot interleave")
    channel = await connect_account(api, tenant, account, inbox=False, subreddits=[subreddit])
    post = reddit.submit(subreddit, author="jane_doe", title="Order status")
    [message] = await messages_of(api, tenant, channel["id"], post.fullname, 1)
    pending = (await _reply(api, tenant, message, "Shipped!")).json()
    reply_id, echo_id = uuid.UUID(pending["id"]), uuid.uuid4()

    async def store_echo() -> None:  # what the inbound consumer does, in its own transaction
        async with engine.begin() as other:
            row = dict((await other.execute(select(Message).where(Message.id == reply_id))).mappings().one())
            row.update(id=echo_id, external_id="t1_echo", delivery_status=None, meta={})
            await other.execute(
                insert(Message.__table__).values(**{c.key: row[c.key] for c in Message.__table__.c})
            )

    def interleave(connection: Any, cursor: Any, statement: str, *args: Any) -> None:
        if statement.startswith("UPDATE messages SET external_id"):
            await_only(store_echo())

    now = datetime.now(UTC)
    async with session_factory(engine)() as session, session.begin():
        sync = (await session.connection()).sync_connection
        assert sync is not None
        event.listen(sync, "before_cursor_execute", interleave)
        with pytest.raises(TransientError):
            await mark_sent(session, reply_id, ["t1_echo"], now, now)
    async with session_factory(engine)() as session, session.begin():
        await mark_sent(session, reply_id, ["t1_echo"], now, now)  # the consumer's retry
    messages = await conversation_messages(api, tenant, channel["id"], post.fullname)
    assert [(m["id"], m["external_id"], m["delivery"]["status"]) for m in messages[1:]] == [
        (pending["id"], "t1_echo", "sent")
    ]
