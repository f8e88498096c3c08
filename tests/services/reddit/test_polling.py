"""The Reddit connector under stress: restarts, bursts, deleted anchors, token expiry, rate limits,
history imports, edits and deletions, and every failure Reddit gives."""

from __future__ import annotations

import asyncio
import contextlib
import uuid
from typing import Any

import httpx
import pytest

from services.reddit.app import worker_component
from services.reddit.config import RedditSettings
from shared.http import build_app
from tests.fakes.reddit import FakeReddit, RateBudget
from tests.fakes.reddit.ratelimit import BudgetLedger
from tests.services.reddit.conftest import Account, channel_health, connect_account, messages_of
from tests.support import Tenant, conversation_messages, serving, wait_for

pytestmark = pytest.mark.e2e


def _connector(settings: RedditSettings) -> Any:
    return build_app("reddit-connector", [worker_component(settings)])


def _thread(reddit: FakeReddit, subreddit: str, comments: int, prefix: str = "c") -> tuple[Any, list[Any]]:
    post = reddit.submit(subreddit, author="jane_doe", title="Busy thread")
    return post, [
        reddit.comment(post, author=f"user{n % 7}", body=f"{prefix}{n:03}") for n in range(comments)
    ]


async def _texts(api: httpx.AsyncClient, tenant: Tenant, channel: dict[str, Any], post: Any) -> list[str]:
    messages = await conversation_messages(api, tenant, channel["id"], post.fullname, limit=200)
    return [m["text"] for m in messages]


async def _settled(
    api: httpx.AsyncClient, tenant: Tenant, channel: dict[str, Any], post: Any, count: int
) -> list[str]:
    """The thread's texts once it holds ``count`` messages, checked again a moment later (no extras)."""
    await messages_of(api, tenant, channel["id"], post.fullname, count)
    await asyncio.sleep(0.6)
    return await _texts(api, tenant, channel, post)


async def test_a_restart_and_a_burst_lose_and_repeat_nothing(
    api: httpx.AsyncClient,
    tenant: Tenant,
    reddit: FakeReddit,
    account: Account,
    subreddit: str,
    connector_settings: RedditSettings,
) -> None:
    channel = await connect_account(api, tenant, account, inbox=False, subreddits=[subreddit])
    post, _ = _thread(reddit, subreddit, 0)
    async with serving(_connector(connector_settings)):
        for n in range(30):
            reddit.comment(post, author="bob", body=f"a{n:03}")
        await messages_of(api, tenant, channel["id"], post.fullname, 31)
    # Stopped; far more than a page arrives meanwhile: the next poll reads back to what it had.
    for n in range(250):
        reddit.comment(post, author="bob", body=f"b{n:03}")
    async with serving(_connector(connector_settings)):
        texts = await _settled(api, tenant, channel, post, 281)
    assert texts == ["Busy thread", *(f"a{n:03}" for n in range(30)), *(f"b{n:03}" for n in range(250))]


async def test_a_deleted_anchor_does_not_stall_polling(
    api: httpx.AsyncClient,
    tenant: Tenant,
    reddit: FakeReddit,
    account: Account,
    subreddit: str,
    connector: Any,
) -> None:
    channel = await connect_account(api, tenant, account, inbox=False, subreddits=[subreddit])
    post, comments = _thread(reddit, subreddit, 3)
    await messages_of(api, tenant, channel["id"], post.fullname, 4)
    # The newest comment is the connector's `before` anchor; once deleted Reddit answers empty pages.
    reddit.delete(comments[-1])
    later = [reddit.comment(post, author="bob", body=f"after{n}") for n in range(3)]
    # Every new comment, once; the deleted one is gone from the conversation (the deletion is seen by
    # the connector's periodic recheck, which may come after the new comments on a busy machine).
    expected = ["Busy thread", "c000", "c001", *(c.data["body"] for c in later)]

    async def settled() -> list[str] | None:
        texts = await _texts(api, tenant, channel, post)
        return texts if texts == expected else None

    await wait_for(settled, timeout=15)
    await asyncio.sleep(0.6)
    assert await _texts(api, tenant, channel, post) == expected  # and nothing more arrives


async def test_history_is_imported_then_live_items_follow_without_gap_or_duplicate(
    api: httpx.AsyncClient,
    tenant: Tenant,
    reddit: FakeReddit,
    account: Account,
    subreddit: str,
    connector: Any,
) -> None:
    post, _ = _thread(reddit, subreddit, 149, prefix="old")  # 150 items with the post
    channel = await connect_account(api, tenant, account, inbox=False, subreddits=[subreddit], backfill=40)

    async def imported() -> list[dict[str, Any]] | None:
        progress = (await channel_health(api, tenant, channel["id"]))["backfill"]
        return progress if len(progress) == 2 and all(p["done"] for p in progress) else None

    progress = {p["source"]: p for p in await wait_for(imported, timeout=15)}
    assert progress[f"r.{subreddit}.comments"]["imported"] == 40
    assert progress[f"r.{subreddit}.comments"]["target"] == 40
    for n in range(5):
        reddit.comment(post, author="bob", body=f"new{n}")
    texts = await _settled(api, tenant, channel, post, 46)
    # The post (imported from the posts listing), the newest 40 comments, then the live ones.
    assert texts == ["Busy thread", *(f"old{n:03}" for n in range(109, 149)), *(f"new{n}" for n in range(5))]


async def test_an_expired_token_is_refreshed_mid_stream(
    api: httpx.AsyncClient,
    tenant: Tenant,
    reddit: FakeReddit,
    account: Account,
    subreddit: str,
    connector: Any,
) -> None:
    channel = await connect_account(api, tenant, account, inbox=False, subreddits=[subreddit])
    post, _ = _thread(reddit, subreddit, 2)
    await messages_of(api, tenant, channel["id"], post.fullname, 3)
    issued = len(reddit.tokens_issued)
    reddit.expire_tokens()
    reddit.comment(post, author="bob", body="after expiry")
    texts = await _settled(api, tenant, channel, post, 4)
    assert texts[-1] == "after expiry"
    assert len(reddit.tokens_issued) > issued
    assert any(r.status == 401 for r in reddit.requests)
    assert (await channel_health(api, tenant, channel["id"]))["last_error"] is None


async def test_requests_stay_within_the_rate_limit_budget(
    api: httpx.AsyncClient,
    tenant: Tenant,
    reddit: FakeReddit,
    account: Account,
    subreddit: str,
    connector_settings: RedditSettings,
) -> None:
    channel = await connect_account(api, tenant, account, subreddits=[subreddit])
    reddit.ledger = BudgetLedger(RateBudget(total=15, window=3.0))  # a fresh, tight window
    post, _ = _thread(reddit, subreddit, 0)
    fast = connector_settings.model_copy(update={"poll_seconds": 0.01, "edit_check_seconds": 0.01})
    async with serving(_connector(fast)):
        for n in range(5):
            reddit.comment(post, author="bob", body=f"c{n}")
            await asyncio.sleep(1.0)
        texts = await _settled(api, tenant, channel, post, 6)
    assert texts == ["Busy thread", *(f"c{n}" for n in range(5))]
    assert reddit.over_budget == []
    # Paced, not idle: the budget was used.
    assert len([r for r in reddit.requests if r.client_id == account.client_id]) >= 15


async def test_429_and_5xx_are_waited_out_and_shown_on_the_health(
    api: httpx.AsyncClient,
    tenant: Tenant,
    reddit: FakeReddit,
    account: Account,
    subreddit: str,
    connector: Any,
) -> None:
    channel = await connect_account(api, tenant, account, inbox=False, subreddits=[subreddit])
    post, _ = _thread(reddit, subreddit, 1)
    await messages_of(api, tenant, channel["id"], post.fullname, 2)
    reddit.inject(f"/r/{subreddit}", status=429, retry_after=2, times=1)
    refused_at = None

    async def throttled() -> str | None:
        health = await channel_health(api, tenant, channel["id"])
        return health["throttled_until"]

    refused_at = await wait_for(throttled, timeout=10)
    assert refused_at is not None
    reddit.inject(f"/r/{subreddit}", status=503, times=2)
    reddit.comment(post, author="bob", body="made it")
    texts = await _settled(api, tenant, channel, post, 3)
    assert texts[-1] == "made it"
    refused = [r for r in reddit.requests if r.status == 429]
    after = [r for r in reddit.requests if r.path.startswith(f"/r/{subreddit}") and r.at > refused[0].at]
    assert after[0].at - refused[0].at >= 2.0


async def test_edits_and_deletions_are_noticed(
    api: httpx.AsyncClient,
    tenant: Tenant,
    reddit: FakeReddit,
    account: Account,
    subreddit: str,
    connector: Any,
) -> None:
    channel = await connect_account(api, tenant, account, inbox=False, subreddits=[subreddit])
    post, (first, second, third) = _thread(reddit, subreddit, 3)
    await messages_of(api, tenant, channel["id"], post.fullname, 4)
    reddit.edit(first, "c000 (edited: typo)")
    reddit.delete(second)
    reddit.remove(third)

    async def changed() -> list[dict[str, Any]] | None:
        messages = await conversation_messages(
            api, tenant, channel["id"], post.fullname, include_deleted="true"
        )
        by_id = {m["external_id"]: m for m in messages}
        done = (
            by_id[first.fullname]["edited_at"]
            and by_id[second.fullname]["deleted_at"]
            and by_id[third.fullname]["deleted_at"]
        )
        return messages if done else None

    messages = {m["external_id"]: m for m in await wait_for(changed, timeout=15)}
    assert messages[first.fullname]["text"] == "c000 (edited: typo)"
    history = await api.get(f"/v1/messages/{messages[first.fullname]['id']}/history", headers=tenant.auth)
    assert [r["text"] for r in history.json()["revisions"]] == ["c000", "c000 (edited: typo)"]


async def test_refused_credentials_stop_polling_and_show_on_the_health(
    api: httpx.AsyncClient,
    tenant: Tenant,
    reddit: FakeReddit,
    account: Account,
    subreddit: str,
    connector: Any,
) -> None:
    channel = await connect_account(api, tenant, account, inbox=False, subreddits=[subreddit])
    await wait_for(lambda: _has_polled(reddit, subreddit))
    reddit.add_account(account.username, password="changed")
    reddit.expire_tokens()

    async def refused() -> dict[str, Any] | None:
        health = await channel_health(api, tenant, channel["id"])
        error = health["last_error"]
        return error if error and error["code"] == "credentials_refused" else None

    error = await wait_for(refused, timeout=10)
    assert "invalid_grant" in error["message"]
    await asyncio.sleep(0.5)
    count = len(reddit.requests)
    await asyncio.sleep(1.0)
    assert len(reddit.requests) == count  # no hammering with refused credentials

    # Another account's credentials are refused; the right new password resumes polling.
    reddit.add_account("someone_else", password="theirs")
    path = f"/v1/channels/{channel['id']}"
    wrong = await api.patch(path, json={"password": "theirs"}, headers=tenant.auth)
    assert wrong.status_code == 400
    assert wrong.json()["code"] == "invalid_credentials"
    fixed = await api.patch(path, json={"password": "changed"}, headers=tenant.auth)
    assert fixed.status_code == 200, fixed.text
    assert "changed" not in fixed.text
    post = reddit.submit(subreddit, author="jane_doe", title="Back in business")
    await messages_of(api, tenant, channel["id"], post.fullname, 1)
    assert (await channel_health(api, tenant, channel["id"]))["last_error"] is None


async def _has_polled(reddit: FakeReddit, subreddit: str) -> bool | None:
    return True if any(r.path.startswith(f"/r/{subreddit}/comments") for r in reddit.requests) else None


async def test_two_replicas_poll_each_account_once(
    api: httpx.AsyncClient,
    tenant: Tenant,
    reddit: FakeReddit,
    account: Account,
    subreddit: str,
    connector_settings: RedditSettings,
) -> None:
    channel = await connect_account(api, tenant, account, inbox=False, subreddits=[subreddit])
    replicas = [_connector(connector_settings), _connector(connector_settings)]
    post, _ = _thread(reddit, subreddit, 0)
    async with contextlib.AsyncExitStack() as both:
        stacks = [contextlib.AsyncExitStack() for _ in replicas]
        for stack, replica in zip(stacks, replicas, strict=True):
            await stack.enter_async_context(serving(replica))
            both.push_async_callback(stack.aclose)
        for n in range(5):
            reddit.comment(post, author="bob", body=f"a{n}")
        await messages_of(api, tenant, channel["id"], post.fullname, 6)
        # Only this account counts: the session's other tests leave Reddit channels in the directory.
        account_id = uuid.UUID(channel["id"])
        holders = [n for n, replica in enumerate(replicas) if account_id in replica.state.reddit[1].running]
        assert len(holders) == 1
        # The holder stops (releasing its lease): the other replica takes the account over.
        await stacks[holders[0]].aclose()
        survivor = replicas[1 - holders[0]]
        await wait_for(
            lambda: asyncio.sleep(0, True if account_id in survivor.state.reddit[1].running else None),
            timeout=10,
        )
        for n in range(5):
            reddit.comment(post, author="bob", body=f"b{n}")
        texts = await _settled(api, tenant, channel, post, 11)
    assert texts == ["Busy thread", *(f"a{n}" for n in range(5)), *(f"b{n}" for n in range(5))]


async def test_tokens_are_refreshed_before_they_expire(
    api: httpx.AsyncClient,
    tenant: Tenant,
    reddit: FakeReddit,
    account: Account,
    subreddit: str,
    connector: Any,
) -> None:
    reddit.token_lifetime = 2  # seconds: the connector renews at half of it, before any 401
    channel = await connect_account(api, tenant, account, inbox=False, subreddits=[subreddit])
    post, _ = _thread(reddit, subreddit, 0)
    for n in range(4):
        reddit.comment(post, author="bob", body=f"c{n}")
        await asyncio.sleep(1.0)
    texts = await _settled(api, tenant, channel, post, 5)
    assert texts == ["Busy thread", *(f"c{n}" for n in range(4))]
    assert len(reddit.tokens_issued) >= 3
    # (Channels of earlier tests poll this fake too, with credentials it does not know: not ours.)
    assert not [r for r in reddit.requests if r.status == 401 and r.client_id == account.client_id]


async def test_a_subreddit_added_later_has_its_history_imported(
    api: httpx.AsyncClient,
    tenant: Tenant,
    reddit: FakeReddit,
    account: Account,
    subreddit: str,
    connector: Any,
) -> None:
    channel = await connect_account(api, tenant, account, inbox=False, subreddits=[subreddit])
    later = reddit.add_subreddit("addedlater")
    post, _ = _thread(reddit, "addedlater", 0)
    for n in range(3):
        reddit.comment(post, author="bob", body=f"before{n}")
    added = await api.patch(
        f"/v1/channels/{channel['id']}", json={"subreddits": [subreddit, "addedlater"]}, headers=tenant.auth
    )
    assert added.status_code == 200, added.text
    texts = await _settled(api, tenant, channel, post, 4)
    assert texts == ["Busy thread", "before0", "before1", "before2"]
    reddit.comment(post, author="bob", body="after")
    assert (await _settled(api, tenant, channel, post, 5))[-1] == "after"
    assert later.name == "addedlater"
