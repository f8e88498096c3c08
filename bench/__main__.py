"""``make bench``: raw limits and Piazza's pipeline in one run, written to docs/benchmarks.md.

Uses PostgreSQL when ``DATABASE_URL`` points at one (a scratch database is created and dropped),
SQLite otherwise; always an embedded nats-server of its own. ``--quick`` shortens every step;
``--only reddit`` (or ``telegram``) measures that connector and JetStream publish only, and prints
its figures without writing them (``python -m bench --quick --only reddit`` takes seconds).
``--only listing`` measures the conversation list at a million messages (PostgreSQL only; a tenth
of that with ``--quick``) and writes its own section, which a full run on PostgreSQL writes too.
``--only analytics`` measures events per second into the analytics rollups and KPI latency at a
million messages; ``--only sentiment`` the analyzer's accuracy and macro-F1 on the evaluation sets
and its speed. Each writes its own section; a full run writes them all.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import platform
import shlex
import sys
import tempfile
from datetime import UTC, datetime
from pathlib import Path

from bench import listing, raw, reddit
from bench.corpus import FULL, Scale
from bench.loadgen import LoadPlan, run_load
from bench.pipeline import StepResult, run_step, saturate
from bench.reddit import RedditResult
from bench.stack import Stack
from bench.telegram import TelegramResult, connector_throughput

ROOT = Path(__file__).resolve().parent.parent


def _cpu() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


CONNECTORS = ("telegram", "reddit")
LISTING = "listing"
ANALYTICS = "analytics"
SENTIMENT = "sentiment"
SECTIONS = (LISTING, ANALYTICS, SENTIMENT)


async def main(arguments: argparse.Namespace) -> int:
    only = set(arguments.only or ())
    status = 0
    if not only or only - set(SECTIONS):
        status = await _pipeline(arguments)
    if status == 0 and (not only or LISTING in only):
        status = await _listing(arguments)
    if status == 0 and (not only or ANALYTICS in only):
        status = await _analytics(arguments)
    if status == 0 and (not only or SENTIMENT in only):
        status = _sentiment(arguments)
    return status


def _sentiment(arguments: argparse.Namespace) -> int:
    """The sentiment analyzer's quality on the evaluation sets and its speed."""
    from bench import sentiment

    print("sentiment…", flush=True)
    text = sentiment.section(quick=arguments.quick)
    command = "python -m bench --only sentiment" if arguments.only else "make bench"
    text = text.replace("\n", f"\n\nCommand: `{command}`{' with --quick' if arguments.quick else ''}.\n", 1)
    if arguments.output:
        _write_section(Path(arguments.output), "sentiment", text)
    print(text)
    return 0


async def _analytics(arguments: argparse.Namespace) -> int:
    """Events per second into the analytics rollups and KPI latency at a million messages."""
    from bench import analytics

    quick = arguments.quick
    messages, conversations = (100_000, 10_000) if quick else (1_000_000, 100_000)
    report = await analytics.measure(messages, conversations, lambda line: print(line, flush=True))
    command = ("DATABASE_URL=… " if report.backend == "postgresql" else "") + (
        "python -m bench --only analytics" if arguments.only else "make bench"
    )
    header = "\n".join(
        [
            f"### Analytics on {report.backend} — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "",
            f"Command: `{command}`{' with --quick' if quick else ''}. Machine: {os.cpu_count()} cores ({_cpu()}), "
            f"Python {platform.python_version()}; `store_facts` in one process, batches of about 2,000 "
            "events, each one transaction (as the worker stores them). Method: `bench/analytics.py`.",
        ]
    )
    text = analytics.render(report, header)
    if arguments.output:
        _write_section(Path(arguments.output), f"analytics-{report.backend}", text)
    print(text)
    return 0


async def _pipeline(arguments: argparse.Namespace) -> int:
    from tests.fakes.reddit import FakeReddit
    from tests.fakes.telegram import FakeTelegram, RateLimits

    quick = arguments.quick
    connectors = [c for c in arguments.only or () if c in CONNECTORS]
    with tempfile.TemporaryDirectory(prefix="piazza-bench-") as folder:
        async with (
            FakeTelegram(rate_limits=RateLimits.unlimited()) as fake,
            FakeReddit(budget=reddit.budget()) as fake_reddit,
        ):
            env = {
                "PIAZZA_TELEGRAM_API_URL": fake.base_url,
                "PIAZZA_REDDIT_AUTH_URL": fake_reddit.auth_url,
                "PIAZZA_REDDIT_API_URL": fake_reddit.api_url,
            }
            stack = Stack(Path(folder), extra_env=env)
            await stack.start()
            try:
                report = await _measure(stack, arguments) if not arguments.only else await _yardstick(stack)
                if "telegram" in (connectors or CONNECTORS):
                    print("telegram connector…", flush=True)
                    report["telegram"] = await connector_throughput(stack, fake, 10_000 if quick else 30_000)
                if "reddit" in (connectors or CONNECTORS):
                    print("reddit connector…", flush=True)
                    # 1,050 items a subreddit: 5,250 quick, 21,000 (20,000 of them comments) in full.
                    report["reddit"] = await reddit.connector_throughput(
                        stack, fake_reddit, 5 if quick else 20
                    )
            finally:
                await stack.stop()
    if arguments.only:
        # A partial run: its figures are printed, never written over the full results.
        print(_render_connectors(report, float(report["jetstream"])))  # type: ignore[arg-type]
        return 0
    command = ("DATABASE_URL=postgresql://… " if stack.backend == "postgresql" else "") + "make bench"
    text = _render(report, stack.backend, command, arguments)
    if arguments.output:
        _write_section(Path(arguments.output), stack.backend, text)
        print(f"results written to {arguments.output}")
    print(text)
    return 0


async def _listing(arguments: argparse.Namespace) -> int:
    """The conversation-list benchmark, in a Piazza installation and a database of its own."""
    if not os.environ.get("DATABASE_URL", "").startswith("postgres"):
        print(
            "conversation list: skipped, it needs PostgreSQL (set DATABASE_URL); SQLite is the "
            "single-user store of `make run`, not sized for a million messages",
            flush=True,
        )
        return 0 if not arguments.only else 1
    quick = arguments.quick
    scale = Scale(conversations=10_000, messages=100_000) if quick else FULL
    print("conversation list…", flush=True)
    report = await listing.measure(
        scale,
        duration=3.0 if quick else 10.0,
        warmup=1.0 if quick else 2.0,
        with_plans=arguments.plans,
        progress=lambda line: print(line, flush=True),
    )
    command = "DATABASE_URL=postgresql://… " + (
        "python -m bench --only listing" if arguments.only else "make bench"
    )
    header = "\n".join(
        [
            f"### Conversation list on postgresql — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
            "",
            f"Command: `{command}`{' with --quick' if quick else ''}. Machine: {os.cpu_count()} cores ({_cpu()}), "
            f"Python {platform.python_version()}, one web process (`piazza serve ingress inbox-api`), "
            "the raw app and the load generator on the same machine as PostgreSQL.",
        ]
    )
    text = listing.render(report, header)
    if arguments.output:
        _write_section(Path(arguments.output), "listing-postgresql", text)
        print(f"results written to {arguments.output}")
    print(text)
    if report.explains:
        print(report.explains)
    return 0


async def _measure(stack: Stack, arguments: argparse.Namespace) -> dict[str, object]:
    assert stack.nats is not None
    quick = arguments.quick
    print("raw limits…", flush=True)
    jetstream = await raw.jetstream_publish(stack.nats.url, count=20_000 if quick else 50_000)
    database = await raw.database_insert(stack.database_url, count=10_000 if quick else 30_000)
    hello_port = _free_port()
    hello = raw.fastapi_hello(
        hello_port,
        LoadPlan(
            url=f"http://127.0.0.1:{hello_port}/hello",
            secret=stack.secret,
            rate=20_000,
            duration=4 if quick else 8,
            lanes=32,
        ),
        run_load,
    )
    hello_rate = hello.accepted_requests / (hello.finished - hello.started)
    print(
        f"  jetstream publish {jetstream:,.0f}/s  db insert {database:,.0f} rows/s  fastapi hello {hello_rate:,.0f} req/s"
    )
    duration = 4.0 if quick else 8.0
    print("single-event webhooks…", flush=True)
    single = await saturate(
        stack, rates=[500, 1000, 1500, 2000, 2500, 3000, 4000], batch=1, lanes=64, duration=duration
    )
    print("batched webhooks (100 events a request)…", flush=True)
    batched = await saturate(
        stack, rates=[2500, 5000, 7500, 10000, 12500, 15000, 20000], batch=100, lanes=8, duration=duration
    )
    print("latency at 1,000 msgs/s…", flush=True)
    latency_single = await run_step(stack, rate=1000, batch=1, lanes=32, duration=2 * duration)
    latency_batched = await run_step(stack, rate=1000, batch=100, lanes=4, duration=2 * duration)
    return {
        "jetstream": jetstream,
        "database": database,
        "hello": hello_rate,
        "single": single,
        "batched": batched,
        "latency_single": latency_single,
        "latency_batched": latency_batched,
    }


async def _yardstick(stack: Stack) -> dict[str, object]:
    """JetStream publish alone: what a connector-only run (``--only``) gives its ratios against."""
    assert stack.nats is not None
    print("raw limit: jetstream publish…", flush=True)
    jetstream = await raw.jetstream_publish(stack.nats.url, count=20_000)
    print(f"  jetstream publish {jetstream:,.0f}/s")
    return {"jetstream": jetstream}


def _best(steps: list[StepResult]) -> float:
    complete = [s.visible_rate for s in steps if s.complete]
    return max(complete, default=0.0)


def _render(report: dict[str, object], backend: str, command: str, arguments: argparse.Namespace) -> str:
    jetstream, database, hello = (float(report[k]) for k in ("jetstream", "database", "hello"))  # type: ignore[arg-type]
    single: list[StepResult] = report["single"]  # type: ignore[assignment]
    batched: list[StepResult] = report["batched"]  # type: ignore[assignment]
    lat_single: StepResult = report["latency_single"]  # type: ignore[assignment]
    lat_batched: StepResult = report["latency_batched"]  # type: ignore[assignment]
    best_single, best_batched = _best(single), _best(batched)
    lines = [
        f"### Pipeline on {backend} — {datetime.now(UTC):%Y-%m-%d %H:%M} UTC",
        "",
        f"Command: `{command}`{' with --quick' if arguments.quick else ''}. Machine: {os.cpu_count()} cores ({_cpu()}), "
        f"Python {platform.python_version()}, one web process (ingress + API) and one inbox worker, "
        "embedded nats-server, the load generator and the readers on the same machine.",
        "",
        "Raw limits, measured in the same run:",
        "",
        "| raw limit | value |",
        "|---|---|",
        f"| JetStream publish, 500 in flight (no Piazza code) | {jetstream:,.0f} msgs/s |",
        f"| batched INSERT into {backend}, 500 rows a transaction | {database:,.0f} rows/s |",
        f"| FastAPI hello-world POST, same load generator | {hello:,.0f} req/s |",
        "",
        "Piazza, from signed webhook POST to visible in `GET /v1/conversations/{id}/messages`:",
        "",
        "| measure | Piazza | ratio to raw | target |",
        "|---|---|---|---|",
        f"| batched (100 events a request), sustained | {best_batched:,.0f} msgs/s | {best_batched / database:.0%} of DB insert, "
        f"{best_batched / jetstream:.0%} of JetStream publish | ≥ 5,000 msgs/s: {_met(best_batched >= 5000)} |",
        f"| single-event, sustained | {best_single:,.0f} msgs/s | {best_single / hello:.0%} of FastAPI hello | "
        f"≥ 1,500 msgs/s: {_met(best_single >= 1500)} |",
        f"| single-event at 1,000 msgs/s, p50 / p99 | {_ms(lat_single.p50_ms)} / {_ms(lat_single.p99_ms)} "
        f"({lat_single.samples} samples) | | p99 < 250 ms: {_met((lat_single.p99_ms or 1e9) < 250)} |",
        f"| batched at 1,000 msgs/s, p50 / p99 | {_ms(lat_batched.p50_ms)} / {_ms(lat_batched.p99_ms)} "
        f"({lat_batched.samples} samples) | | p99 < 250 ms: {_met((lat_batched.p99_ms or 1e9) < 250)} |",
        "",
        _render_connectors(report, jetstream),
        "Every step (the rate rises until the pipeline fails to keep up twice):",
        "",
        "| kind | target msgs/s | accepted msgs/s | visible msgs/s | p50 | p99 | refused | all visible |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for step in [*single, *batched]:
        kind = "single" if step.batch == 1 else f"batch {step.batch}"
        lines.append(
            f"| {kind} | {step.target:,.0f} | {step.accepted_rate:,.0f} | {step.visible_rate:,.0f} | "
            f"{_ms(step.p50_ms)} | {_ms(step.p99_ms)} | {step.refused or '-'} | {'yes' if step.complete else 'no'} |"
        )
    return "\n".join(lines) + "\n"


def _render_connectors(report: dict[str, object], jetstream: float) -> str:
    """The connectors' sections (those measured), each ending with a blank line."""
    lines: list[str] = []
    telegram: TelegramResult | None = report.get("telegram")  # type: ignore[assignment]
    if telegram is not None:
        lines += [
            f"Telegram, {telegram.updates:,} waiting updates from the fake Bot API through the connector into "
            "JetStream (`bench/telegram.py`):",
            "",
            "| measure | value | ratio |",
            "|---|---|---|",
            f"| connector, getUpdates → JetStream acked | {telegram.connector_rate:,.0f} updates/s | "
            f"{telegram.connector_rate / jetstream:.0%} of JetStream publish, "
            f"{telegram.connector_rate / telegram.fake_drain_rate:.0%} of the fake's drain rate |",
            f"| raw: the fake drained by a bare getUpdates loop | {telegram.fake_drain_rate:,.0f} updates/s | |",
            "",
        ]
    found: RedditResult | None = report.get("reddit")  # type: ignore[assignment]
    if found is not None:
        lines += [
            f"Reddit, {found.items:,} listing items ({found.subreddits} subreddits of {reddit.POSTS} posts and "
            f"{reddit.COMMENTS:,} comments) imported from the fake Reddit through the connector into JetStream "
            "(`bench/reddit.py`):",
            "",
            "| measure | value | ratio |",
            "|---|---|---|",
            f"| connector, listings read, normalized → JetStream acked | {found.connector_rate:,.0f} items/s | "
            f"{found.connector_rate / jetstream:.0%} of JetStream publish, "
            f"{found.connector_rate / found.fake_read_rate:.0%} of the fake's read rate |",
            f"| raw: the same listings read by a bare httpx loop | {found.fake_read_rate:,.0f} items/s | |",
            "",
        ]
    return "\n".join(lines)


def _met(ok: bool) -> str:
    return "met" if ok else "**not met**"


def _ms(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.0f} ms"


def _write_section(path: Path, backend: str, section: str) -> None:
    """Replace this backend's section of the results file (and the method description above the
    sections), keeping the other backend's section."""
    begin, end = f"<!-- bench:{backend}:begin -->", f"<!-- bench:{backend}:end -->"
    current = path.read_text() if path.exists() else _HEADER
    if "<!-- bench:" in current:  # the method description is rewritten, the other sections kept
        current = _HEADER.rstrip("\n") + "\n\n" + current[current.index("<!-- bench:") :]
    block = f"{begin}\n{section}{end}"
    if begin in current and end in current:
        before, rest = current.split(begin, 1)
        current = before + block + rest.split(end, 1)[1]
    else:
        current = current.rstrip("\n") + "\n\n" + block + "\n"
    path.write_text(current)


_HEADER = """# Benchmarks

Produced by `make bench` (`python -m bench`; `--quick` for a shorter, noisier run), which measures
this machine's raw limits and Piazza's pipeline in the same run and reports each Piazza figure as a
ratio to a raw limit. With `DATABASE_URL` pointing at PostgreSQL it benchmarks on a scratch database
it creates and drops; otherwise on SQLite. Each backend's latest results replace its section below.

How the pipeline is measured (`bench/pipeline.py`):

* A load generator in its own process posts signed webhooks on 64 concurrent connections (8 for
  batches), each a *lane* that writes one conversation, at a target rate for 8 seconds per step;
  the rate rises step by step until the pipeline fails to keep up twice.
* A message is *visible* when `GET /v1/conversations/{id}/messages` returns it. Two probe lanes are
  read every 20 ms throughout: latency is taken on them, from the moment the POST was sent, so it
  includes up to 20 ms of reading interval. The other lanes are read once a second during the load,
  then every 50 ms until their last message shows up.
* *Sustained* is the highest rate of messages made visible over a whole step: accepted messages
  divided by the time from the first POST to the last message visible.
* Everything runs on the same machine: the load generator, the readers, the web process (ingress and
  API in one process, as under `make run`), the inbox worker, nats-server and the database.
* The raw database limit is a plain batched INSERT into an index-free table; Piazza's worker upserts
  into four indexed tables with order-independent merge rules, which is what the ratio prices.
* Telegram: the fake Bot API (`tests/fakes/telegram`) runs in the benchmark's process; the connector
  is a `piazza worker telegram` process of its own, with the inbox worker consuming what it publishes
  at the same time. The clock runs from its first `getUpdates` until JetStream holds every update.
* Reddit: the fake Reddit (`tests/fakes/reddit`, with a budget of requests too large to pace the
  client) runs in the benchmark's process; the connector, a `piazza worker reddit` process, imports the
  history of an account following several subreddits (a listing reaches back 1,000 items) in pages of
  100. The clock runs from its first listing request until JetStream holds every item.

How the conversation list is measured (`bench/listing.py`, data from `bench/corpus.py`; PostgreSQL
only, `python -m bench --only listing` runs it alone and writes its section):

* A scratch database, built by the migrations, gets 100,000 conversations holding 1,000,000
  messages in the benchmark's workspace (4 webhook channels, 50,000 contacts with an identity each,
  20 agents, 4 teams, 30 labels on 40 % of the conversations, statuses, priorities, assignees, read
  marks of the benchmark user on 70 % of the conversations), plus a noise workspace a tenth of that
  size. Message counts per conversation have a long tail (median 5, 1 % over 80, the longest ~950); text is
  drawn from a vocabulary with a Zipf distribution (function words and shop words at the head, 20,000
  made-up words in the tail), so searches have common and rare terms. Rows are written with COPY
  in the models' exact shape (labels on conversations with their conversation's activity and
  priority, as `repository/list_columns.py` keeps them), the big tables' secondary indexes rebuilt
  afterwards; then every conversation's preview and labels are derived by the code that keeps them
  (`list_columns.py` again), and the database is vacuumed and analysed.
  `--quick` uses a tenth of the data and 3-second runs.
* The system under test is the real web process (`piazza serve ingress inbox-api`, one uvicorn
  process) started by `bench/stack.py`. The raw limit is a minimal FastAPI app in one uvicorn process
  whose endpoint runs one asyncpg query for 50 rows by the listing's index
  (`WHERE workspace_id = $1 ORDER BY last_activity_at DESC, id DESC LIMIT 50`, the conversation
  columns the API returns) and returns them with orjson, with the pool size Piazza's engine has. It is
  measured before and after the Piazza scenarios; ratios are to the mean of the two.
* A load process of its own runs 32 closed-loop clients on keep-alive connections (aiohttp), each
  sending its next request when the previous answer is read: 2 seconds of warm-up, then 10 seconds
  counted per scenario. Every request is a first page of 50, read with an agent's token (so the answer
  has the agent's unread counts), rotating through the scenario's queries: (a) no filter; (b) status
  with `assignee_id` me, none or an agent; (c) a label with a priority; (d) `unread=true`; (e) `q` with
  common words (~2 % of messages), mid-tail and rare words, and a contact's name.
* *SQL per request* is the database's own time for one request of the scenario: planning plus
  execution, from `EXPLAIN (ANALYZE, TIMING OFF)` of each statement the repository runs for it
  (captured from `services/inbox/repository/reads.py` as it runs), on a warm cache, averaged over
  the scenario's queries. The rest of a request's time is Python, the network and waiting for a core.
* The target is requests/s at least 60 % of the raw limit's and p95 at most 100 ms, per scenario.
  With 32 clients in a closed loop the two are tied: the mean latency is 32 / (requests/s), so a p95
  of 100 ms needs well over 320 requests/s. `--plans` prints `EXPLAIN (ANALYZE, BUFFERS)` of each
  scenario's statements. On SQLite the conversation list is not measured: it is the single-user store
  of `make run`, and the figure that matters is PostgreSQL's at a million messages.

How analytics is measured (`bench/analytics.py`, `--only analytics`):

* A million time-ordered domain-event facts (70 % customer messages with text, sentiment and one of
  20,000 authors over 100,000 conversations, 30 % agents' replies, and a resolution for 60 % of the
  conversations, over 30 days) go through `store_facts` in batches of about 2,000 events, one
  transaction each, as the analytics worker stores a batch: facts, conversation grain, hourly,
  author, topic and crisis-bucket rollups (on PostgreSQL an `ANALYZE` every 25 batches stands in for
  autovacuum keeping the growing tables' statistics fresh). The raw limit is inserting the same
  message rows into a bare table with only a primary key, in the same batches.
* Then each KPI query the API runs is timed ten times on a warm cache (p50, p95), against the raw
  limit of answering the simplest of them straight from the facts (a month's inbound count and
  distinct authors off the message table).

How sentiment is measured (`bench/sentiment.py`, `--only sentiment`): accuracy, macro-F1 and per-label
F1 of the default analyzer on the evaluation sets kept in the tests
(`tests/shared/sentiment/data/eval_{en,it}.tsv`, clear-cut messages with emoji and negation), for the
whole set, the half looked at while building the analyzer and the held-out half; and its speed.
"""


def _free_port() -> int:
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(prog="python -m bench", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="shorter steps (a smoke run, noisier figures)")
    parser.add_argument(
        "--only",
        action="append",
        choices=(*CONNECTORS, *SECTIONS),
        help="measure only this connector (repeatable), with JetStream publish for its ratio, and print "
        "its figures without writing them; or only the conversation list (PostgreSQL), analytics "
        "or sentiment, each written to its own section",
    )
    parser.add_argument(
        "--plans",
        action="store_true",
        help="also print EXPLAIN ANALYZE of the statements behind each conversation-list scenario",
    )
    parser.add_argument(
        "--output", default=str(ROOT / "docs" / "benchmarks.md"), help="results file ('' to only print)"
    )
    return parser.parse_args()


if __name__ == "__main__":
    print("$ " + shlex.join([sys.executable, "-m", "bench", *sys.argv[1:]]), flush=True)
    sys.exit(asyncio.run(main(_arguments())))
