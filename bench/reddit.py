"""Reddit listing items per second, from the fake Reddit through the connector into JetStream.

What moves a large backlog through the connector is the history import of a newly connected account:
each source (``/r/<sub>/new``, ``/r/<sub>/comments``) is read back in pages of 100 up to the
``backfill`` depth, each item is normalized, published in chunks of 100 that wait for JetStream's acks
before the cursor is stored, as live polling does. A listing reaches back 1,000 items at most (on
Reddit and in the fake), so the backlog is spread over several subreddits: each holds 50 posts and
1,000 comments, and the account follows them all with ``backfill=1000`` (the most the API allows),
its inbox left out (it would be empty here). Live polling is not what is timed: after the import it
reads forward from the newest item it published, 100 items a source per round (the ``before`` anchor,
as PRAW's stream does), so a backlog fed to it would measure ``PIAZZA_REDDIT_POLL_SECONDS`` more than
the pipeline.

The connector (``piazza worker reddit``, its own process, with the inbox worker consuming what it
publishes at the same time) is registered through the API; the clock runs from its first listing
request to the moment the ``INBOUND`` stream holds every item. The fake's request budget is ten
million requests a window, so the client's pacing (the remaining budget spread over the window) adds
at most 60 µs a call: Reddit's rate limit is not what is measured. Two raw limits come from the same
run: JetStream publish (``raw.jetstream_publish``) and the fake alone, its same listings read by a
bare httpx loop that publishes nothing, one request after the other as one account's poller reads
them, since the fake shares the machine and its cost is part of what the connector waits for (the
fake looks through everything it holds on each listing read, so its rate falls as the world grows:
both figures come from the same world).
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass
from typing import Any

import httpx
import nats
import orjson

from bench.stack import Stack
from shared.bus.topology import INBOUND, BusNames

POSTS = 50  # a subreddit's posts: all in reach of /r/<sub>/new
COMMENTS = 1000  # a subreddit's comments: the whole reach of /r/<sub>/comments
PEOPLE = 200
BACKFILL = 1000
USER_AGENT = "linux:com.example.piazza.bench:v1.0 (by /u/bench_ops)"
BUDGET = 10_000_000  # requests a window: pacing stays negligible
ACCOUNT, PASSWORD = "bench_ops", "bench-password"


@dataclass(frozen=True)
class RedditResult:
    items: int
    subreddits: int
    connector_rate: float  # items/s into JetStream through the connector
    fake_read_rate: float  # items/s a bare listing loop reads from the fake


def budget() -> Any:
    """The fake's request budget for the benchmark (see the module docstring)."""
    from tests.fakes.reddit import RateBudget

    return RateBudget(total=BUDGET, window=600.0)


def _fill(fake: Any, names: list[str]) -> int:
    """Posts and comments by customers (never the account: its inbox stays empty); returns the count."""
    people = [fake.add_account(f"customer_{n}") for n in range(PEOPLE)]
    for s, name in enumerate(names):
        fake.add_subreddit(name, moderators=[ACCOUNT])
        posts = [
            fake.submit(
                name,
                author=people[(s + p) % PEOPLE],
                title=f"Order #{s * POSTS + p} arrived damaged",
                selftext="The box was crushed on one side, photos below. What now?",
            )
            for p in range(POSTS)
        ]
        previous = None
        for c in range(COMMENTS):
            # Every fourth comment answers the one before it, the others the post: a shallow tree.
            parent = previous if previous is not None and c % 4 == 3 else posts[c % POSTS]
            previous = fake.comment(
                parent, author=people[(s + c) % PEOPLE], body=f"benchmark comment {c}: where is order #{c}?"
            )
    return len(names) * (POSTS + COMMENTS)


async def _read_listings(fake: Any, client_id: str, client_secret: str, names: list[str]) -> int:
    """Read every listing the connector imports, page by page, publishing nothing; the items read."""
    headers = {"User-Agent": USER_AGENT}
    async with httpx.AsyncClient(base_url=fake.base_url, headers=headers, timeout=30) as client:
        granted = await client.post(
            "/api/v1/access_token",
            auth=(client_id, client_secret),
            data={"grant_type": "password", "username": ACCOUNT, "password": PASSWORD},
        )
        client.headers["Authorization"] = f"bearer {granted.json()['access_token']}"
        read = 0
        for name in names:
            for listing in ("new", "comments"):
                after: str | None = None
                while True:
                    params: dict[str, Any] = {"limit": 100, "raw_json": 1}
                    if after is not None:
                        params["after"] = after
                    response = await client.get(f"/r/{name}/{listing}", params=params)
                    response.raise_for_status()
                    page = orjson.loads(response.content)["data"]
                    read += len(page["children"])
                    after = page["after"]
                    if after is None:
                        break
        return read


async def _stream_count(js: Any, stream: str) -> int:
    info = await js.stream_info(stream)
    return int(info.state.messages)


def _is_listing(path: str) -> bool:
    return path.startswith("/r/") and path.rstrip("/").removesuffix(".json").endswith(("/new", "/comments"))


async def connector_throughput(stack: Stack, fake: Any, subreddits: int) -> RedditResult:
    """Measure the fake alone, then the connector importing the same listings into JetStream."""
    names = [f"bench_{n:02d}" for n in range(subreddits)]
    count = _fill(fake, names)
    fake.add_account(ACCOUNT, password=PASSWORD)
    probe = fake.add_app(client_id="bench_raw_reader")
    started = time.perf_counter()
    read = await _read_listings(fake, probe.client_id, probe.client_secret, names)
    read_rate = read / (time.perf_counter() - started)
    if read != count:
        raise RuntimeError(f"the bare loop read {read} items, the fake holds {count}")

    app = fake.add_app(client_id="bench_connector")
    assert stack.nats is not None
    connection = await nats.connect(stack.nats.url)
    try:
        js = connection.jetstream()
        stream = BusNames().stream(INBOUND.name)
        before = await _stream_count(js, stream)
        stack.start_worker("reddit", PIAZZA_REDDIT_POLL_SECONDS="0.1", PIAZZA_REDDIT_RESCAN_SECONDS="1")
        body = {
            "type": "reddit",
            "client_id": app.client_id,
            "client_secret": app.client_secret,
            "user_agent": USER_AGENT,
            "username": ACCOUNT,
            "password": PASSWORD,
            "subreddits": names,
            "backfill": BACKFILL,
            "inbox": False,
        }
        async with httpx.AsyncClient(base_url=stack.url, headers=stack.auth, timeout=60) as api:
            created = await api.post("/v1/channels", json=body)
            created.raise_for_status()
        target = before + count
        deadline = time.monotonic() + 600
        while await _stream_count(js, stream) < target:
            if time.monotonic() > deadline:
                raise RuntimeError("the connector did not import the listings within 10 minutes")
            await asyncio.sleep(0.02)
        finished = time.monotonic()
    finally:
        await connection.close()
    first_read = next(r.at for r in fake.requests if r.client_id == app.client_id and _is_listing(r.path))
    return RedditResult(count, len(names), count / (finished - first_read), read_rate)
