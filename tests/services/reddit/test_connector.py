"""Every Reddit item kind, end to end: fake Reddit → connector → bus → inbox → REST API."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx
import pytest
from sqlalchemy.ext.asyncio import AsyncEngine

from services.inbox.service.access import Role
from tests.fakes.reddit import FakeReddit
from tests.services.reddit.conftest import Account, channel_health, connect_account, messages_of
from tests.support import Tenant, add_token, conversation_messages, wait_for

pytestmark = pytest.mark.e2e


async def test_subreddit_posts_and_comments_keep_their_tree(
    api: httpx.AsyncClient,
    tenant: Tenant,
    reddit: FakeReddit,
    account: Account,
    subreddit: str,
    connector: Any,
) -> None:
    channel = await connect_account(api, tenant, account, inbox=False, subreddits=[subreddit])
    post = reddit.submit(subreddit, author="jane_doe", title="Launch day", selftext="Tell us what you think")
    top = reddit.comment(post, author="bob", body="Does the café ship to Zürich? 🇨🇭")
    answer = reddit.comment(top, author=account.username, body="Yes, we do!")
    nested = reddit.comment(answer, author="bob", body="Great &amp; thanks <3")

    messages = await messages_of(api, tenant, channel["id"], post.fullname, 4)

    by_id = {m["external_id"]: m for m in messages}
    assert [m["external_id"] for m in messages] == [
        post.fullname,
        top.fullname,
        answer.fullname,
        nested.fullname,
    ]
    assert by_id[post.fullname]["text"] == "Launch day\n\nTell us what you think"
    assert by_id[top.fullname]["text"] == "Does the café ship to Zürich? 🇨🇭"
    assert by_id[top.fullname]["reply_to"] == {
        "external_id": post.fullname,
        "message_id": by_id[post.fullname]["id"],
    }
    assert by_id[nested.fullname]["reply_to"]["external_id"] == answer.fullname
    assert by_id[nested.fullname]["text"] == "Great &amp; thanks <3"  # raw markdown, not HTML-escaped twice
    assert by_id[answer.fullname]["direction"] == "outbound"  # the account's own comment
    assert by_id[top.fullname]["direction"] == "inbound"
    conversation = (
        await api.get("/v1/conversations", params={"channel_id": channel["id"]}, headers=tenant.auth)
    ).json()["data"]
    assert [c["title"] for c in conversation] == ["Launch day"]


async def test_inbox_replies_mentions_and_private_messages(
    api: httpx.AsyncClient,
    tenant: Tenant,
    reddit: FakeReddit,
    account: Account,
    subreddit: str,
    connector: Any,
) -> None:
    channel = await connect_account(api, tenant, account, backfill=0, mark_read="stored")
    await wait_for(lambda: _backfilled(api, tenant, channel["id"], {"inbox", "messages"}))
    own_post = reddit.submit(subreddit, author=account.username, title="AMA")
    reply = reddit.comment(own_post, author="jane_doe", body="When is the sale?")
    elsewhere = reddit.add_subreddit("othersub")
    other_post = reddit.submit(elsewhere, author="bob", title="Best bags?")
    mention = reddit.comment(other_post, author="bob", body=f"ask u/{account.username}")
    pm = reddit.send_pm("jane_doe", account.username, subject="your order", body="Where is my parcel? 📦")
    pm_reply = reddit.reply_pm(pm, author="jane_doe", body="Order #1234")

    replies = await messages_of(api, tenant, channel["id"], own_post.fullname, 1)
    assert [(m["external_id"], m["text"]) for m in replies] == [(reply.fullname, "When is the sale?")]
    assert replies[0]["reply_to"]["external_id"] == own_post.fullname  # the post itself is not in the inbox
    mentions = await messages_of(api, tenant, channel["id"], other_post.fullname, 1)
    assert mentions[0]["external_id"] == mention.fullname
    assert mentions[0]["meta"]["type"] == "username_mention"
    private = await messages_of(api, tenant, channel["id"], pm.fullname, 2)
    assert [m["text"] for m in private] == ["Where is my parcel? 📦", "Order #1234"]
    assert private[1]["reply_to"]["external_id"] == pm.fullname
    assert private[1]["external_id"] == pm_reply.fullname
    # With mark_read "stored", inbox items are marked read once stored, in batches of at most 25.
    await reddit.wait_for(lambda: any(reply.fullname in ids for ids in reddit.read_calls))
    assert all(len(ids) <= 25 for ids in reddit.read_calls)
    health = await channel_health(api, tenant, channel["id"])
    assert health["status"] == "ok"
    assert health["warnings"] == []


async def test_private_messages_unavailable_is_a_warning_and_comments_go_on(
    api: httpx.AsyncClient,
    tenant: Tenant,
    reddit: FakeReddit,
    account: Account,
    subreddit: str,
    connector: Any,
) -> None:
    reddit.set_pm_unavailable(account.username, status=302)
    channel = await connect_account(api, tenant, account, subreddits=[subreddit])
    post = reddit.submit(subreddit, author="jane_doe", title="Still here")

    await messages_of(api, tenant, channel["id"], post.fullname, 1)

    async def warned() -> list[dict[str, Any]] | None:
        warnings = (await channel_health(api, tenant, channel["id"]))["warnings"]
        return warnings or None

    warnings = await wait_for(warned)
    assert [w["code"] for w in warnings] == ["private_messages_unavailable"]
    assert "Comments and mentions still arrive" in warnings[0]["message"]


async def _backfilled(
    api: httpx.AsyncClient, tenant: Tenant, channel_id: str, sources: set[str]
) -> bool | None:
    progress = (await channel_health(api, tenant, channel_id))["backfill"]
    done = {p["source"] for p in progress if p["done"]}
    return True if sources <= done else None


async def test_inbox_items_are_marked_read_when_an_agent_opens_them(
    api: httpx.AsyncClient,
    tenant: Tenant,
    engine: AsyncEngine,
    reddit: FakeReddit,
    account: Account,
    subreddit: str,
    connector: Any,
    replier: Any,
) -> None:
    channel = await connect_account(api, tenant, account, backfill=0)
    assert channel["mark_read"] == "opened"
    await wait_for(lambda: _backfilled(api, tenant, channel["id"], {"inbox", "messages"}))
    own_post = reddit.submit(subreddit, author=account.username, title="Giveaway")
    replies = [reddit.comment(own_post, author=f"fan{n}", body=f"me! #{n}") for n in range(30)]
    viewer = Tenant(tenant.workspace_id, await add_token(engine, tenant.workspace_id, Role.VIEWER))
    await messages_of(api, viewer, channel["id"], own_post.fullname, 30)  # a viewer reading marks nothing
    await asyncio.sleep(0.3)
    assert reddit.read_calls == []
    conversation = await conversation_messages(api, tenant, channel["id"], own_post.fullname, limit=200)
    stored = {m["external_id"] for m in conversation}  # an agent opened them

    await reddit.wait_for(lambda: sum(len(ids) for ids in reddit.read_calls) >= 30, timeout=10)
    assert sorted(len(ids) for ids in reddit.read_calls) == [5, 25]
    assert {name for ids in reddit.read_calls for name in ids} == {r.fullname for r in replies} == stored
    again = await conversation_messages(api, tenant, channel["id"], own_post.fullname, limit=200)
    assert not any(m["meta"].get("unread") for m in again)
    await asyncio.sleep(0.5)
    assert len(reddit.read_calls) == 2  # opening it again marks nothing more

    # With "never", opening leaves everything unread.
    late = reddit.comment(own_post, author="fan99", body="late")
    await messages_of(api, viewer, channel["id"], own_post.fullname, 31)
    patched = await api.patch(
        f"/v1/channels/{channel['id']}", json={"mark_read": "never"}, headers=tenant.auth
    )
    assert patched.json()["mark_read"] == "never"
    await conversation_messages(api, tenant, channel["id"], own_post.fullname, limit=200)
    await asyncio.sleep(0.5)
    assert late.fullname not in {name for ids in reddit.read_calls for name in ids}


async def test_resolving_a_conversation_marks_its_unread_items_read_on_reddit(
    api: httpx.AsyncClient,
    tenant: Tenant,
    engine: AsyncEngine,
    reddit: FakeReddit,
    account: Account,
    subreddit: str,
    connector: Any,
    replier: Any,
) -> None:
    channel = await connect_account(api, tenant, account, backfill=0)
    await wait_for(lambda: _backfilled(api, tenant, channel["id"], {"inbox", "messages"}))
    own_post = reddit.submit(subreddit, author=account.username, title="Feedback thread")
    replies = [reddit.comment(own_post, author=f"critic{n}", body=f"thoughts #{n}") for n in range(3)]
    viewer = Tenant(tenant.workspace_id, await add_token(engine, tenant.workspace_id, Role.VIEWER))
    [first, *_] = await messages_of(api, viewer, channel["id"], own_post.fullname, 3)
    assert reddit.read_calls == []

    resolved = await api.patch(
        f"/v1/conversations/{first['conversation_id']}", json={"status": "resolved"}, headers=tenant.auth
    )
    assert resolved.status_code == 200, resolved.text
    await reddit.wait_for(lambda: sum(len(ids) for ids in reddit.read_calls) >= 3, timeout=10)
    assert {name for ids in reddit.read_calls for name in ids} == {r.fullname for r in replies}
