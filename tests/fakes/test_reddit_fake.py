"""The fake Reddit behaves like the real one over real HTTP (platforms.md §2 and §7)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest

from tests.fakes.reddit import Account, App, FakeReddit, RateBudget, Thing, factory
from tests.fakes.reddit.demo import run_scenario

pytestmark = pytest.mark.unit

Json = dict[str, Any]
UA = factory.USER_AGENT
TOKEN = "/api/v1/access_token"
INBOX_KEYS = {
    "associated_awarding_id",
    "author",
    "author_fullname",
    "body",
    "body_html",
    "context",
    "created",
    "created_utc",
    "dest",
    "distinguished",
    "first_message",
    "first_message_name",
    "id",
    "likes",
    "name",
    "new",
    "num_comments",
    "parent_id",
    "replies",
    "score",
    "subject",
    "subreddit",
    "subreddit_name_prefixed",
    "type",
    "was_comment",
}


@dataclass
class World:
    app: App
    me: Account


@pytest.fixture
async def fake() -> AsyncIterator[FakeReddit]:
    async with FakeReddit(budget=RateBudget(total=600, window=600.0)) as server:
        yield server


@pytest.fixture
def world(fake: FakeReddit) -> World:
    app = fake.add_app(client_id="cid", client_secret="csecret", kind="script")
    me = fake.add_account("example_ops", password="pw")
    fake.add_subreddit("examplestore", moderators=["example_ops"])
    return World(app, me)


def plain_client(fake: FakeReddit) -> httpx.AsyncClient:
    """A client with a descriptive User-Agent and no token."""
    return httpx.AsyncClient(base_url=fake.base_url, headers={"User-Agent": UA}, timeout=10)


@pytest.fixture
async def raw(fake: FakeReddit) -> AsyncIterator[httpx.AsyncClient]:
    async with plain_client(fake) as client:
        yield client


async def password_token(raw: httpx.AsyncClient, app: App, username: str = "example_ops") -> str:
    response = await raw.post(TOKEN, data=factory.password_form(username, "pw"), auth=factory.basic_auth(app))
    assert response.status_code == 200, response.text
    return str(response.json()["access_token"])


def client_for(fake: FakeReddit, token: str, **headers: str) -> httpx.AsyncClient:
    return httpx.AsyncClient(
        base_url=fake.base_url,
        headers={"User-Agent": UA, "Authorization": f"bearer {token}", **headers},
        params={"raw_json": "1"},
        timeout=10,
    )


@pytest.fixture
async def api(fake: FakeReddit, world: World, raw: httpx.AsyncClient) -> AsyncIterator[httpx.AsyncClient]:
    """example_ops's client, as prawcore sets it up (``raw_json=1`` on every call)."""
    async with client_for(fake, await password_token(raw, world.app)) as client:
        yield client


def ok(response: httpx.Response) -> Any:
    assert response.status_code == 200, response.text
    return response.json()


def children(response: httpx.Response) -> list[Json]:
    body = ok(response)
    assert body["kind"] == "Listing"
    return list(body["data"]["children"])


def names(response: httpx.Response) -> list[str]:
    return [child["data"]["name"] for child in children(response)]


async def write(api: httpx.AsyncClient, endpoint: str, **form: str) -> Json:
    body: Json = ok(await api.post(endpoint, data={"api_type": "json", **form}))
    return body


def errors(body: Json) -> list[str]:
    return [code for code, _, _ in body["json"]["errors"]]


# -- tokens ----------------------------------------------------------------------------------------------


async def test_password_grant_gives_a_bearer_token(
    fake: FakeReddit, world: World, raw: httpx.AsyncClient
) -> None:
    response = await raw.post(TOKEN, data=factory.password_form("example_ops", "pw"), auth=("cid", "csecret"))
    body = ok(response)
    assert set(body) == {"access_token", "token_type", "expires_in", "scope"}
    assert (body["token_type"], body["expires_in"], body["scope"]) == ("bearer", 86400, "*")
    assert [(t.client_id, t.username, t.grant_type) for t in fake.tokens_issued] == [
        ("cid", "example_ops", "password")
    ]
    async with client_for(fake, body["access_token"]) as api:
        me = ok(await api.get("/api/v1/me"))
    assert (me["name"], me["id"]) == ("example_ops", world.me.id)
    assert fake.requests[0].form["grant_type"] == "password"
    assert fake.requests[-1].username == "example_ops"


async def test_token_errors_come_in_two_shapes(
    fake: FakeReddit, world: World, raw: httpx.AsyncClient
) -> None:
    web_app = fake.add_app(client_id="webcid", client_secret="websecret", kind="web")
    form = factory.password_form("example_ops", "pw")
    assert ok(await raw.post(TOKEN, data=form, auth=factory.basic_auth(web_app))) == {
        "error_description": "Only script apps may use password auth",
        "error": "unauthorized_client",
    }
    wrong = factory.password_form("example_ops", "nope")
    assert ok(await raw.post(TOKEN, data=wrong, auth=("cid", "csecret"))) == {"error": "invalid_grant"}
    for auth in (("cid", "wrong"), ("nobody", "csecret")):
        response = await raw.post(TOKEN, data=form, auth=auth)
        assert response.status_code == 401
        assert response.json() == {"message": "Unauthorized", "error": 401}
    assert (await raw.post(TOKEN, data=form)).status_code == 401  # no Basic credentials at all
    unknown = await raw.post(TOKEN, data=factory.refresh_form("123-nope"), auth=("cid", "csecret"))
    assert (unknown.status_code, unknown.json()) == (400, {"error": 400})
    assert ok(await raw.post(TOKEN, data={"grant_type": "magic"}, auth=("cid", "csecret"))) == {
        "error": "unsupported_grant_type"
    }
    assert fake.tokens_issued == []


async def test_refresh_tokens_work_and_can_rotate() -> None:
    async with FakeReddit(rotate_refresh_tokens=True, token_lifetime=3600) as fake, plain_client(fake) as raw:
        app = fake.add_app(client_id="installed", kind="installed")
        me = fake.add_account("example_ops")
        first = fake.issue_refresh_token(app, me)
        assert app.client_secret == ""
        response = await raw.post(TOKEN, data=factory.refresh_form(first), auth=("installed", ""))
        body = ok(response)
        assert body["expires_in"] == 3600
        second = body["refresh_token"]
        assert second != first
        stale = await raw.post(TOKEN, data=factory.refresh_form(first), auth=("installed", ""))
        assert (stale.status_code, stale.json()) == (400, {"error": 400})
        again = await raw.post(TOKEN, data=factory.refresh_form(second), auth=("installed", ""))
        async with client_for(fake, ok(again)["access_token"]) as api:
            assert ok(await api.get("/api/v1/me"))["name"] == "example_ops"


async def test_refresh_tokens_without_rotation_stay_valid(
    fake: FakeReddit, world: World, raw: httpx.AsyncClient
) -> None:
    refresh = fake.issue_refresh_token(world.app, world.me)
    for _ in range(2):
        body = ok(await raw.post(TOKEN, data=factory.refresh_form(refresh), auth=("cid", "csecret")))
        assert "refresh_token" not in body
    other = fake.add_app(client_id="other", client_secret="s")
    stolen = await raw.post(TOKEN, data=factory.refresh_form(refresh), auth=("other", "s"))
    assert stolen.status_code == 400  # a refresh token only works for its own app
    assert other.client_id == "other"


async def test_client_credentials_tokens_are_userless(
    fake: FakeReddit, world: World, raw: httpx.AsyncClient
) -> None:
    fake.submit("examplestore", author="jane_doe", title="Hello")
    body = ok(await raw.post(TOKEN, data={"grant_type": "client_credentials"}, auth=("cid", "csecret")))
    assert fake.tokens_issued[-1].username is None
    async with client_for(fake, body["access_token"]) as api:
        assert len(children(await api.get("/r/examplestore/new"))) == 1
        for response in (
            await api.get("/message/inbox"),
            await api.get("/api/v1/me"),
            await api.post("/api/comment", data={"api_type": "json", "thing_id": "t3_x", "text": "hi"}),
        ):
            assert (response.status_code, response.json()) == (403, {"message": "Forbidden", "error": 403})


async def test_expired_tokens_answer_401(
    fake: FakeReddit, world: World, raw: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    ok(await api.get("/api/v1/me"))
    fake.expire_tokens()
    response = await api.get("/api/v1/me")
    assert (response.status_code, response.json()) == (401, {"error": 401})
    assert response.headers["www-authenticate"] == 'Bearer realm="reddit", error="invalid_token"'
    assert "x-ratelimit-remaining" in response.headers
    async with client_for(fake, await password_token(raw, world.app)) as fresh:
        ok(await fresh.get("/api/v1/me"))
    for authorization in ("", "bearer nope", "Basic Y2lkOmNzZWNyZXQ="):
        unknown = await raw.get("/api/v1/me", headers={"Authorization": authorization})
        assert unknown.status_code == 401


async def test_the_bearer_scheme_is_case_insensitive(
    fake: FakeReddit, world: World, raw: httpx.AsyncClient
) -> None:
    token = await password_token(raw, world.app)
    for scheme in ("bearer", "Bearer", "BEARER"):
        ok(await raw.get("/api/v1/me", headers={"Authorization": f"{scheme} {token}"}))


async def test_tokens_expire_after_their_lifetime() -> None:
    async with FakeReddit(token_lifetime=0) as fake, plain_client(fake) as raw:
        app = fake.add_app(client_id="cid", client_secret="csecret")
        fake.add_account("example_ops", password="pw")
        body = ok(
            await raw.post(
                TOKEN,
                data=factory.password_form("example_ops", "pw"),
                auth=("cid", "csecret"),
            )
        )
        assert body["expires_in"] == 0
        async with client_for(fake, body["access_token"]) as api:
            assert (await api.get("/api/v1/me")).status_code == 401
        assert app.kind == "script"


@pytest.mark.parametrize(
    "agent",
    ["", "short", "python-requests/2.32.3", "python-httpx/0.28.1", "Python-urllib/3.11", "curl/8.5.0"],
)
async def test_default_user_agents_are_throttled(
    fake: FakeReddit, world: World, raw: httpx.AsyncClient, agent: str
) -> None:
    token = await password_token(raw, world.app)
    response = await raw.get("/api/v1/me", headers={"User-Agent": agent, "Authorization": f"bearer {token}"})
    assert (response.status_code, response.json()) == (429, {"message": "Too Many Requests", "error": 429})
    assert "retry-after" not in response.headers
    grant = await raw.post(
        TOKEN,
        data=factory.password_form("example_ops", "pw"),
        auth=("cid", "csecret"),
        headers={"User-Agent": agent},
    )
    assert grant.status_code == 429
    assert fake.requests[-1].user_agent == agent


# -- rate limits --------------------------------------------------------------------------------------------


async def test_rate_limit_headers_count_down_then_429() -> None:
    # The clock stands still: the window's end is exactly 600 s away however slow the machine is.
    still = FakeReddit(budget=RateBudget(total=3, window=600.0), clock=lambda: 1_000.0)
    async with still as fake, plain_client(fake) as raw:
        app = fake.add_app(client_id="cid", client_secret="csecret")
        other = fake.add_app(client_id="other", client_secret="s")
        fake.add_account("example_ops", password="pw")
        token = await password_token(raw, app)
        async with client_for(fake, token) as api:
            seen = [(await api.get("/api/v1/me")).headers for _ in range(3)]
            assert [(h["x-ratelimit-used"], h["x-ratelimit-remaining"]) for h in seen] == [
                ("1", "2.0"),
                ("2", "1.0"),
                ("3", "0.0"),
            ]
            assert [h["x-ratelimit-reset"] for h in seen] == ["600", "600", "600"]
            assert fake.over_budget == []
            refused = await api.get("/message/unread", params={"mark": "false"})
        assert refused.status_code == 429
        assert "Too Many Requests" in refused.text
        assert refused.headers["content-type"].startswith("text/html")
        assert refused.headers["retry-after"] == "600"
        assert refused.headers["x-ratelimit-remaining"] == "0.0"
        assert [(r.path, r.status) for r in fake.over_budget] == [("/message/unread", 429)]
        async with client_for(fake, await password_token(raw, other)) as second:
            assert (await second.get("/api/v1/me")).headers["x-ratelimit-used"] == "1"  # per client id


async def test_429_without_retry_after_and_a_new_window() -> None:
    async with (
        FakeReddit(budget=RateBudget(total=1, window=0.3), retry_after_on_429=False) as fake,
        plain_client(fake) as raw,
    ):
        app = fake.add_app(client_id="cid", client_secret="csecret")
        fake.add_account("example_ops", password="pw")
        async with client_for(fake, await password_token(raw, app)) as api:
            ok(await api.get("/api/v1/me"))
            refused = await api.get("/api/v1/me")
            assert (refused.status_code, refused.json()) == (
                429,
                {"message": "Too Many Requests", "error": 429},
            )
            assert "retry-after" not in refused.headers
            await asyncio.sleep(0.35)  # the window itself is what is under test
            assert ok(await api.get("/api/v1/me"))["name"] == "example_ops"
        assert len(fake.over_budget) == 1


# -- listings -----------------------------------------------------------------------------------------------


async def test_listings_page_newest_first(fake: FakeReddit, world: World, api: httpx.AsyncClient) -> None:
    posts = [fake.submit("examplestore", author="jane_doe", title=f"post {n}") for n in range(7)]
    newest = [post.fullname for post in reversed(posts)]

    first = ok(await api.get("/r/examplestore/new", params={"limit": 3}))
    assert set(first["data"]) == {"after", "before", "dist", "modhash", "geo_filter", "children"}
    assert [c["data"]["name"] for c in first["data"]["children"]] == newest[:3]
    assert (first["data"]["after"], first["data"]["before"], first["data"]["dist"]) == (newest[2], None, 3)
    second = ok(await api.get("/r/examplestore/new/", params={"limit": 3, "after": newest[2], "count": 3}))
    assert [c["data"]["name"] for c in second["data"]["children"]] == newest[3:6]
    last = ok(await api.get("/r/examplestore/new.json", params={"limit": 3, "after": newest[5]}))
    assert [c["data"]["name"] for c in last["data"]["children"]] == newest[6:]
    assert last["data"]["after"] is None
    # before: the items just newer than the anchor, still newest first.
    assert (
        names(await api.get("/r/examplestore/new", params={"limit": 2, "before": newest[4]})) == newest[2:4]
    )
    assert names(await api.get("/r/examplestore/new", params={"before": newest[0]})) == []
    assert len(names(await api.get("/r/examplestore/new"))) == 7

    ids = [int(post.id, 36) for post in posts]
    assert ids == sorted(ids)
    assert len(set(ids)) == 7


async def test_limit_defaults_to_25_and_caps_at_100(
    fake: FakeReddit, world: World, api: httpx.AsyncClient
) -> None:
    post = fake.submit("examplestore", author="jane_doe", title="busy")
    for n in range(120):
        fake.comment(post, author="bob", body=f"comment {n}")
    assert len(names(await api.get("/r/examplestore/comments"))) == 25
    assert len(names(await api.get("/r/examplestore/comments", params={"limit": 1000}))) == 100


async def test_only_the_newest_1000_items_are_reachable(
    fake: FakeReddit, world: World, api: httpx.AsyncClient
) -> None:
    post = fake.submit("examplestore", author="jane_doe", title="busy")
    for n in range(1010):
        fake.comment(post, author="bob", body=f"comment {n}")
    seen: list[str] = []
    after: str | None = None
    for _ in range(20):
        body = ok(await api.get("/r/examplestore/comments", params={"limit": 100, "after": after or ""}))
        seen += [c["data"]["name"] for c in body["data"]["children"]]
        after = body["data"]["after"]
        if after is None:
            break
    assert len(seen) == 1000
    assert len(set(seen)) == 1000


async def test_a_vanished_before_anchor_gives_an_empty_page(
    fake: FakeReddit, world: World, api: httpx.AsyncClient
) -> None:
    post = fake.submit("examplestore", author="jane_doe", title="thread")
    first, second, third = (fake.comment(post, author="bob", body=f"c{n}") for n in range(3))
    assert names(await api.get("/r/examplestore/comments", params={"before": first.fullname})) == [
        third.fullname,
        second.fullname,
    ]
    fake.delete(first)
    assert names(await api.get("/r/examplestore/comments", params={"before": first.fullname})) == []
    fake.remove(second)
    assert names(await api.get("/r/examplestore/comments", params={"before": second.fullname})) == []
    assert names(await api.get("/r/examplestore/comments")) == [third.fullname]


async def test_subreddit_comments_are_full_objects(
    fake: FakeReddit, world: World, api: httpx.AsyncClient
) -> None:
    post = fake.submit("examplestore", author="jane_doe", title="Launch thread", selftext="Hello")
    top = fake.comment(post, author="example_ops", body="Welcome")
    reply = fake.comment(top, author="jane_doe", body="Does the café ship to Zürich? 🇨🇭")
    [data] = [c["data"] for c in children(await api.get("/r/examplestore/comments", params={"limit": 1}))]
    assert data["name"] == reply.fullname
    assert (data["link_id"], data["parent_id"], data["link_title"]) == (
        post.fullname,
        top.fullname,
        "Launch thread",
    )
    assert data["permalink"] == f"/r/examplestore/comments/{post.id}/launch_thread/{reply.id}/"
    assert data["body"] == "Does the café ship to Zürich? 🇨🇭"
    assert data["created"] == data["created_utc"]
    assert data["edited"] is False
    assert data["author_fullname"] == f"t2_{fake.account('jane_doe').id}"
    assert data["subreddit_id"] == fake.subreddits["examplestore"].fullname
    fake.edit(reply, "edited ✏️")
    [edited] = [c["data"] for c in children(await api.get("/r/examplestore/comments", params={"limit": 1}))]
    assert isinstance(edited["edited"], float)
    assert edited["body"] == "edited ✏️"
    assert reply.data["body"] == "edited ✏️"

    [submission] = [c["data"] for c in children(await api.get("/r/examplestore/new"))]
    assert (submission["title"], submission["selftext"], submission["is_self"]) == (
        "Launch thread",
        "Hello",
        True,
    )
    assert submission["num_comments"] == 2


async def test_info_returns_deleted_and_removed_things(
    fake: FakeReddit, world: World, api: httpx.AsyncClient
) -> None:
    post = fake.submit("examplestore", author="jane_doe", title="thread")
    gone = fake.comment(post, author="bob", body="oops")
    removed = fake.comment(post, author="bob", body="spam spam")
    fake.delete(gone)
    fake.remove(removed, spam=True)
    ids = f"{removed.fullname},t1_zzzzzzz,{gone.fullname},{post.fullname}"
    found = [c["data"] for c in children(await api.get("/api/info/", params={"id": ids}))]
    assert [d["name"] for d in found] == [removed.fullname, gone.fullname, post.fullname]
    assert (found[0]["author"], found[0]["body"]) == ("bob", "[removed]")
    assert (found[1]["author"], found[1]["body"]) == ("[deleted]", "[deleted]")
    assert "author_fullname" not in found[1]
    too_many = ",".join(f"t1_{n}" for n in range(101))
    assert (await api.get("/api/info", params={"id": too_many})).status_code == 400


async def test_unknown_private_and_banned_subreddits(
    fake: FakeReddit, world: World, api: httpx.AsyncClient
) -> None:
    missing = await api.get("/r/nowhere/comments")
    assert (missing.status_code, missing.json()) == (404, {"message": "Not Found", "error": 404})
    fake.add_subreddit("secret", private=True)
    assert (await api.get("/r/secret/new")).status_code == 403
    fake.add_subreddit("gone", banned=True)
    assert (await api.get("/r/gone/new")).status_code == 404
    assert ok(await api.get("/r/examplestore/about"))["data"]["display_name"] == "examplestore"
    assert (await api.get("/no/such/endpoint")).status_code == 404


async def test_raw_json_decides_about_html_entities(
    fake: FakeReddit, world: World, api: httpx.AsyncClient
) -> None:
    post = fake.submit("examplestore", author="jane_doe", title="Q&A <live>", selftext="a & b > c")
    escaped = ok(await api.get("/r/examplestore/new", params={"raw_json": "0"}))["data"]["children"][0][
        "data"
    ]
    assert (escaped["title"], escaped["selftext"]) == ("Q&amp;A &lt;live&gt;", "a &amp; b &gt; c")
    plain = children(await api.get("/r/examplestore/new"))[0]["data"]
    assert (plain["title"], plain["selftext"]) == ("Q&A <live>", "a & b > c")
    assert plain["selftext_html"].startswith('<!-- SC_OFF --><div class="md"><p>a &amp; b &gt; c</p>')
    assert post.data["title"] == "Q&A <live>"


# -- the inbox ----------------------------------------------------------------------------------------------


async def test_inbox_items_have_the_recorded_shapes(
    fake: FakeReddit, world: World, api: httpx.AsyncClient
) -> None:
    post = fake.submit("examplestore", author="example_ops", title="Launch thread", selftext="Hello")
    mine = fake.comment(post, author="example_ops", body="Welcome")
    post_reply = fake.comment(post, author="jane_doe", body="Congrats!")
    comment_reply = fake.comment(mine, author="jane_doe", body="Does the café ship to Zürich? 🇨🇭")
    elsewhere = fake.submit("otherSub", author="bob", title="q")
    mention = fake.comment(elsewhere, author="bob", body="ask u/example_ops")
    pm = fake.send_pm("jane_doe", "example_ops", subject="your order", body="hi")
    pm2 = fake.reply_pm(pm, author="example_ops", body="hello back")
    pm3 = fake.reply_pm(pm2, author="jane_doe", body="thanks! 🙏")

    inbox = list(children(await api.get("/message/unread/", params={"mark": "false", "limit": 100})))
    assert [c["data"]["name"] for c in inbox] == [
        pm3.fullname,
        pm.fullname,
        mention.fullname,
        comment_reply.fullname,
        post_reply.fullname,
    ]
    by_name = {c["data"]["name"]: c for c in inbox}
    for name in (comment_reply.fullname, post_reply.fullname, mention.fullname):
        item = by_name[name]
        assert item["kind"] == "t1"
        assert set(item["data"]) == INBOX_KEYS | {"link_title"}
        assert "link_id" not in item["data"]
    reply_data = by_name[comment_reply.fullname]["data"]
    assert (
        reply_data["context"]
        == f"/r/examplestore/comments/{post.id}/launch_thread/{comment_reply.id}/?context=3"
    )
    assert (reply_data["type"], reply_data["subject"], reply_data["parent_id"]) == (
        "comment_reply",
        "comment reply",
        mine.fullname,
    )
    assert (reply_data["was_comment"], reply_data["new"], reply_data["dest"]) == (True, True, "example_ops")
    assert reply_data["body"] == "Does the café ship to Zürich? 🇨🇭"
    assert reply_data["created"] == reply_data["created_utc"]
    assert (reply_data["first_message"], reply_data["first_message_name"]) == (None, None)
    assert by_name[post_reply.fullname]["data"]["type"] == "post_reply"
    assert by_name[post_reply.fullname]["data"]["subject"] == "post reply"
    assert by_name[mention.fullname]["data"]["type"] == "username_mention"
    assert by_name[mention.fullname]["data"]["subject"] == "username mention"
    assert by_name[mention.fullname]["data"]["subreddit"] == "otherSub"

    message = by_name[pm3.fullname]
    assert message["kind"] == "t4"
    assert set(message["data"]) == INBOX_KEYS
    assert (message["data"]["subject"], message["data"]["parent_id"]) == ("re: your order", pm2.fullname)
    assert message["data"]["first_message"] == int(pm.id, 36)
    assert message["data"]["first_message_name"] == pm.fullname
    assert (message["data"]["context"], message["data"]["type"], message["data"]["was_comment"]) == (
        "",
        "unknown",
        False,
    )
    root = by_name[pm.fullname]["data"]
    assert (root["parent_id"], root["first_message"], root["first_message_name"]) == (None, None, None)

    assert names(await api.get("/message/comments", params={"mark": "false"})) == [comment_reply.fullname]
    assert names(await api.get("/message/selfreply", params={"mark": "false"})) == [post_reply.fullname]
    assert names(await api.get("/message/mentions", params={"mark": "false"})) == [mention.fullname]
    assert world.me.inbox == [post_reply, comment_reply, mention, pm, pm3]
    assert fake.account("jane_doe").inbox == [pm2]
    assert fake.thing(mention.fullname) is mention


async def test_no_inbox_item_for_replies_to_oneself(fake: FakeReddit, world: World) -> None:
    post = fake.submit("examplestore", author="example_ops", title="mine")
    fake.comment(post, author="example_ops", body="me again, u/example_ops")
    assert world.me.inbox == []


async def test_reading_marks_items_and_read_message_limits(
    fake: FakeReddit, world: World, api: httpx.AsyncClient
) -> None:
    pms = [fake.send_pm("jane_doe", "example_ops", subject=f"s{n}", body="hi") for n in range(3)]
    assert len(names(await api.get("/message/unread", params={"mark": "false"}))) == 3
    assert ok(await api.post("/api/read_message", data={"id": pms[0].fullname})) == {}
    assert names(await api.get("/message/unread", params={"mark": "false"})) == [
        pms[2].fullname,
        pms[1].fullname,
    ]
    assert [
        c["data"]["new"] for c in children(await api.get("/message/inbox", params={"mark": "false"}))
    ] == [
        True,
        True,
        False,
    ]
    ok(await api.get("/message/inbox"))  # elsewhere mark defaults to false, as on Reddit's API
    assert len(names(await api.get("/message/unread", params={"mark": "false"}))) == 2
    assert len(names(await api.get("/message/unread"))) == 2  # here mark defaults to true: now they are read
    assert names(await api.get("/message/unread")) == []
    ok(await api.post("/api/unread_message/", data={"id": f"{pms[1].fullname},{pms[2].fullname}"}))
    assert len(names(await api.get("/message/unread", params={"mark": "false"}))) == 2

    empty = await api.post("/api/read_message", data={"id": ""})
    assert empty.status_code == 400
    too_many = await api.post("/api/read_message", data={"id": ",".join(f"t4_{n}" for n in range(26))})
    assert too_many.status_code == 413
    assert [len(ids) for ids in fake.read_calls] == [1, 0, 26]
    assert fake.unread_calls == [[pms[1].fullname, pms[2].fullname]]


async def test_messages_are_threaded(fake: FakeReddit, world: World, api: httpx.AsyncClient) -> None:
    old = fake.send_pm("bob", "example_ops", subject="old", body="older thread")
    pm = fake.send_pm("jane_doe", "example_ops", subject="your order", body="hi")
    pm2 = fake.reply_pm(pm, author="example_ops", body="hello back")
    pm3 = fake.reply_pm(pm2, author="jane_doe", body="thanks")
    other = fake.send_pm("jane_doe", "bob", subject="not mine", body="private")

    threads = children(await api.get("/message/messages", params={"mark": "false"}))
    assert [t["data"]["name"] for t in threads] == [pm.fullname, old.fullname]
    replies = threads[0]["data"]["replies"]
    assert replies["kind"] == "Listing"
    assert [r["data"]["name"] for r in replies["data"]["children"]] == [pm2.fullname, pm3.fullname]
    assert [r["data"]["first_message_name"] for r in replies["data"]["children"]] == [pm.fullname] * 2
    assert threads[1]["data"]["replies"] == ""
    assert names(await api.get(f"/message/messages/{pm2.id}")) == [pm.fullname]
    assert (await api.get(f"/message/messages/{other.id}")).status_code == 403
    sent = children(await api.get("/message/sent"))
    assert [(s["data"]["name"], s["data"]["dest"], s["data"]["new"]) for s in sent] == [
        (pm2.fullname, "jane_doe", False)
    ]
    assert world.me.sent == [pm2]


async def test_private_messages_can_become_unavailable(
    fake: FakeReddit, world: World, api: httpx.AsyncClient
) -> None:
    fake.send_pm("jane_doe", "example_ops", subject="hi", body="hi")
    fake.set_pm_unavailable("example_ops", status=302)
    for path in ("/message/messages/", "/message/sent"):
        response = await api.get(path)
        assert response.status_code == 302
        assert response.headers["location"] == "https://www.reddit.com/login/"
    assert len(names(await api.get("/message/inbox", params={"mark": "false"}))) == 1  # the rest works
    fake.set_pm_unavailable("example_ops", status=403)
    forbidden = await api.get("/message/messages")
    assert (forbidden.status_code, forbidden.json()) == (403, {"message": "Forbidden", "error": 403})
    fake.set_pm_unavailable("example_ops", status=None)
    assert len(names(await api.get("/message/messages"))) == 1


# -- writing ------------------------------------------------------------------------------------------------


async def test_a_comment_reply_comes_back_and_lands_everywhere(
    fake: FakeReddit, world: World, api: httpx.AsyncClient
) -> None:
    post = fake.submit("examplestore", author="jane_doe", title="Launch thread")
    question = fake.comment(post, author="jane_doe", body="Does the café ship to Zürich? 🇨🇭")
    body = await write(api, "/api/comment/", thing_id=question.fullname, text="Yes — we ship to Switzerland.")
    assert body["json"]["errors"] == []
    [thing] = body["json"]["data"]["things"]
    assert thing["kind"] == "t1"
    data = thing["data"]
    assert (data["parent_id"], data["link_id"], data["author"]) == (
        question.fullname,
        post.fullname,
        "example_ops",
    )
    assert data["body"] == "Yes — we ship to Switzerland."
    assert data["edited"] is False
    assert names(await api.get("/r/examplestore/comments", params={"limit": 1})) == [data["name"]]
    jane = fake.account("jane_doe")
    assert [t.fullname for t in jane.inbox] == [data["name"]]
    assert jane.entries[0].type == "comment_reply"
    assert [t.fullname for t in fake.created_via_api] == [data["name"]]
    assert fake.requests[-2].form["text"] == "Yes — we ship to Switzerland."


async def test_replying_to_a_private_message(fake: FakeReddit, world: World, api: httpx.AsyncClient) -> None:
    pm = fake.send_pm("jane_doe", "example_ops", subject="your order", body="hi")
    body = await write(api, "/api/comment", thing_id=pm.fullname, text="hello back 👋")
    [thing] = body["json"]["data"]["things"]
    assert thing["kind"] == "t4"
    assert (thing["data"]["subject"], thing["data"]["parent_id"]) == ("re: your order", pm.fullname)
    assert thing["data"]["first_message_name"] == pm.fullname
    assert thing["data"]["dest"] == "jane_doe"
    assert fake.account("jane_doe").inbox[-1].fullname == thing["data"]["name"]
    strangers = fake.send_pm("jane_doe", "bob", subject="private", body="x")
    denied = await api.post(
        "/api/comment", data={"api_type": "json", "thing_id": strangers.fullname, "text": "hi"}
    )
    assert (denied.status_code, denied.json()) == (403, {"message": "Forbidden", "error": 403})


async def test_comment_errors_come_inside_a_200(
    fake: FakeReddit, world: World, api: httpx.AsyncClient
) -> None:
    post = fake.submit("examplestore", author="jane_doe", title="thread")
    target = fake.comment(post, author="jane_doe", body="question")
    assert (await write(api, "/api/comment", thing_id=target.fullname, text="  "))["json"]["errors"] == [
        ["NO_TEXT", "we need something here", "text"]
    ]
    assert await write(api, "/api/comment", thing_id=target.fullname, text="x" * 10001) == {
        "json": {"errors": [["TOO_LONG", "this is too long (max: 10000)", "text"]]}
    }
    assert errors(await write(api, "/api/comment", thing_id=target.fullname, text="x" * 10000)) == []
    assert errors(await write(api, "/api/comment", thing_id="t1_nothere", text="hi")) == ["NO_THING_ID"]

    fake.ratelimit_writes("example_ops", "7 minutes")
    assert (await write(api, "/api/comment", thing_id=target.fullname, text="hi"))["json"]["errors"] == [
        ["RATELIMIT", "You are doing that too much. Try again in 7 minutes.", "ratelimit"]
    ]
    assert errors(await write(api, "/api/comment", thing_id=target.fullname, text="hi")) == []

    fake.lock(target)
    assert (await write(api, "/api/comment", thing_id=target.fullname, text="hi"))["json"]["errors"] == [
        ["THREAD_LOCKED", "Comments are locked.", "parent"]
    ]
    fake.unlock(target)
    fake.lock(post)
    assert errors(await write(api, "/api/comment", thing_id=target.fullname, text="hi")) == ["THREAD_LOCKED"]
    fake.unlock(post)
    fake.delete(target)
    assert (await write(api, "/api/comment", thing_id=target.fullname, text="hi"))["json"]["errors"] == [
        ["DELETED_COMMENT", "that comment has been deleted", "parent"]
    ]
    legacy = ok(await api.post("/api/comment", data={"thing_id": target.fullname, "text": "hi"}))
    assert legacy["success"] is False
    assert isinstance(legacy["jquery"], list)
    fresh = fake.comment(post, author="jane_doe", body="again")
    assert (
        ok(await api.post("/api/comment", data={"thing_id": fresh.fullname, "text": "hi"}))["success"] is True
    )


async def test_quarantined_subreddits_return_no_things(
    fake: FakeReddit, world: World, api: httpx.AsyncClient
) -> None:
    fake.add_subreddit("edgy", quarantined=True)
    post = fake.submit("edgy", author="jane_doe", title="hm")
    assert await write(api, "/api/comment", thing_id=post.fullname, text="hi") == {
        "json": {"errors": [], "data": {"things": []}}
    }
    assert [c.body for c in post.comments] == ["hi"]  # created all the same


async def test_compose(fake: FakeReddit, world: World, api: httpx.AsyncClient) -> None:
    jane = fake.add_account("jane_doe")
    assert await write(api, "/api/compose/", to="jane_doe", subject="your order", text="Grüße 📦") == {
        "json": {"errors": []}
    }
    [message] = world.me.sent
    assert (message.subject, message.dest, message.body) == ("your order", "jane_doe", "Grüße 📦")
    assert jane.inbox == [message]
    assert names(await api.get("/message/sent")) == [message.fullname]
    assert errors(await write(api, "/api/compose", to="nobody_here", subject="x", text="y")) == [
        "USER_DOESNT_EXIST"
    ]
    assert (await write(api, "/api/compose", to="jane_doe", subject="s" * 101, text="y"))["json"][
        "errors"
    ] == [["TOO_LONG", "this is too long (max: 100)", "subject"]]
    assert errors(await write(api, "/api/compose", to="jane_doe", subject="", text="y")) == ["NO_SUBJECT"]
    assert errors(await write(api, "/api/compose", to="jane_doe", subject="s", text="")) == ["NO_TEXT"]
    fake.ratelimit_writes("example_ops", "30 seconds", times=2)
    for _ in range(2):
        assert (await write(api, "/api/compose", to="jane_doe", subject="s", text="t"))["json"]["errors"][0][
            1
        ] == ("You are doing that too much. Try again in 30 seconds.")
    assert len(world.me.sent) == 1


async def test_moderation_needs_a_moderator(
    fake: FakeReddit, world: World, raw: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    post = fake.submit("examplestore", author="jane_doe", title="thread")
    spam = fake.comment(post, author="bob", body="buy followers")
    rude = fake.comment(post, author="bob", body="rude")
    assert ok(await api.post("/api/remove/", data={"id": spam.fullname})) == {}
    assert ok(await api.post("/api/remove", data={"id": rude.fullname, "spam": "false"})) == {}
    assert (spam.spam, rude.spam, rude.removed) == (True, False, True)
    assert rude.data["body"] == "[removed]"
    assert rude.data["author"] == "bob"
    ok(await api.post("/api/approve", data={"id": rude.fullname}))
    ok(await api.post("/api/lock", data={"id": post.fullname}))
    ok(await api.post("/api/unlock", data={"id": post.fullname}))
    assert (rude.removed, post.locked) == (False, False)
    mine = fake.comment(post, author="example_ops", body="oops")
    ok(await api.post("/api/del", data={"id": mine.fullname}))
    assert (mine.data["author"], mine.data["body"]) == ("[deleted]", "[deleted]")
    denied = await api.post("/api/del", data={"id": rude.fullname})
    assert denied.status_code == 403
    assert [(m.action, m.fullname, m.spam, m.by) for m in fake.moderation] == [
        ("remove", spam.fullname, True, "example_ops"),
        ("remove", rude.fullname, False, "example_ops"),
        ("approve", rude.fullname, None, "example_ops"),
        ("lock", post.fullname, None, "example_ops"),
        ("unlock", post.fullname, None, "example_ops"),
        ("del", mine.fullname, None, "example_ops"),
    ]

    fake.add_account("bob", password="pw")
    async with client_for(fake, await password_token(raw, world.app, "bob")) as bob:
        for endpoint in ("/api/remove", "/api/approve", "/api/lock", "/api/unlock"):
            response = await bob.post(endpoint, data={"id": post.fullname})
            assert (response.status_code, response.json()) == (403, {"message": "Forbidden", "error": 403})
    assert len(fake.moderation) == 6


# -- injected failures ------------------------------------------------------------------------------------


async def test_injected_failures(
    fake: FakeReddit, world: World, raw: httpx.AsyncClient, api: httpx.AsyncClient
) -> None:
    fake.inject("/message/inbox/", status=429, retry_after=4, times=1)
    throttled = await api.get("/message/inbox", params={"mark": "false"})
    assert (throttled.status_code, throttled.headers["retry-after"]) == (429, "4")
    ok(await api.get("/message/inbox/", params={"mark": "false"}))

    fake.inject("/message", status=503)
    unavailable = await api.get("/message/unread")
    assert (unavailable.status_code, unavailable.content) == (503, b"")
    fake.inject("/r/examplestore", status=502, body="<html><body>Bad Gateway</body></html>")
    gateway = await api.get("/r/examplestore/new")
    assert gateway.status_code == 502
    assert gateway.headers["content-type"].startswith("text/html")

    fake.inject("/api/v1/me/", status=400, body={"reason": "NOPE"}, headers={"X-Trace": "abc"})
    custom = await api.get("/api/v1/me")
    assert (custom.status_code, custom.json(), custom.headers["x-trace"]) == (400, {"reason": "NOPE"}, "abc")
    fake.inject("/message/sent", status=404)
    assert (await api.get("/message/sent")).json() == {"message": "Not Found", "error": 404}

    fake.inject("access_token", status=500, times=2)
    for _ in range(2):
        assert (
            await raw.post(TOKEN, data=factory.password_form("example_ops", "pw"), auth=("cid", "csecret"))
        ).status_code == 500
    await password_token(raw, world.app)

    fake.inject("/api/v1/me", delay=0.2)
    started = asyncio.get_running_loop().time()
    ok(await api.get("/api/v1/me"))
    assert asyncio.get_running_loop().time() - started >= 0.19

    fake.inject("/api/comment", fault="drop")
    with pytest.raises(httpx.TransportError):
        await api.post("/api/comment", data={"api_type": "json", "thing_id": "t1_x", "text": "hi"})
    assert fake.requests[-1].status == 0
    assert fake.requests[-1].injection is not None
    assert fake.created_via_api == []
    assert fake.injections == []


async def test_wait_for_wakes_on_requests(fake: FakeReddit, world: World, api: httpx.AsyncClient) -> None:
    waiting = asyncio.create_task(fake.wait_for(lambda: any(r.path == "/api/v1/me" for r in fake.requests)))
    await asyncio.sleep(0)
    ok(await api.get("/api/v1/me"))
    await waiting
    with pytest.raises(AssertionError, match="not met"):
        await fake.wait_for(lambda: False, timeout=0.05)


# -- the demo -------------------------------------------------------------------------------------------


async def test_demo_scenario_is_lively(fake: FakeReddit, world: World, api: httpx.AsyncClient) -> None:
    scenario = asyncio.create_task(run_scenario(fake, world.me, pace=0.001))
    kinds = {"comment_reply", "post_reply", "username_mention", "unknown"}
    await fake.wait_for(lambda: {e.type for e in world.me.entries} >= kinds and len(world.me.entries) > 12)
    reply_to: Thing = next(t for t in world.me.inbox if t.kind == "t1")
    body = await write(api, "/api/comment", thing_id=reply_to.fullname, text="Thanks for asking!")
    mine = body["json"]["data"]["things"][0]["data"]["name"]
    await fake.wait_for(
        lambda: any(t.parent is not None and t.parent.fullname == mine for t in world.me.inbox)
    )
    scenario.cancel()
    with pytest.raises(asyncio.CancelledError):
        await scenario

    texts = [t.body for t in world.me.inbox]
    assert len(set(texts)) > 5  # fresh content
    assert any(ord(ch) > 0xFFFF for text in texts for ch in text)  # emoji and other non-BMP text
    assert any(t.kind == "t4" and t.parent is not None for t in world.me.inbox)  # follow-ups in threads
    assert len(names(await api.get("/r/examplestore/new", params={"limit": 100}))) > 1
