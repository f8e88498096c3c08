"""The conversation list at a million messages: ``GET /v1/conversations`` against a raw limit.

A Piazza installation (``bench/stack.py``: the real web process on a scratch PostgreSQL database)
is filled by ``bench/corpus.py``; then 32 concurrent keep-alive clients, in a process of their own,
ask for the first page of 50 under each scenario for a fixed time. The raw limit is a minimal
FastAPI app (one uvicorn process, as Piazza's web process) whose endpoint runs one asyncpg query
for 50 rows by the same index and returns them with orjson, driven by the same client in the same
run. Each scenario's database time is taken from ``EXPLAIN ANALYZE`` of the statements one request
runs (captured from the repository code itself), to tell the database's share from Python's.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import socket
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass, field
from multiprocessing.pool import Pool
from pathlib import Path
from typing import Any
from urllib.parse import urlencode

import aiohttp
import asyncpg
import orjson
import psutil
from fastapi import FastAPI, Response
from sqlalchemy import event, text

from bench import corpus
from bench.corpus import Scale, Seeded
from bench.stack import Stack
from services.inbox.endpoints.conversations import conversation_filter
from services.inbox.repository import reads
from services.inbox.service import access
from services.inbox.service.users import create_user
from shared.db import create_engine, session_factory
from shared.events import utcnow

CLIENTS = 32
PAGE = 50
TARGET_RATIO = 0.60
TARGET_P95_MS = 100.0

RAW_SQL = """
SELECT id, channel_id, external_id, title, status, snoozed_until, status_changed_at, assignee_id,
       team_id, priority, last_activity_at, last_inbound_at, first_response_at, resolved_at,
       first_resolved_at, version, created_at, updated_at
FROM conversations WHERE workspace_id = $1
ORDER BY last_activity_at DESC, id DESC LIMIT 50
"""


@dataclass(frozen=True)
class Scenario:
    """A way of listing: the query strings its requests rotate through."""

    key: str
    title: str
    queries: list[dict[str, Any]]


def scenarios(seeded: Seeded) -> list[Scenario]:
    """The listings an inbox UI asks for most, each rotating over a few values of its filters."""
    agents, labels = seeded.agent_ids, seeded.label_ids
    vocabulary = seeded.vocabulary
    searches = [
        "refund",  # common: ~2 % of messages
        "order late",  # two common words in one message
        "delivery",
        vocabulary[600],  # the tail: a few hundred messages
        vocabulary[3000],
        vocabulary[12_000],  # rare: a handful of messages
        vocabulary[19_000],
        seeded.contact_names[7],  # a customer's name (first and last)
    ]
    return [
        Scenario("all", "(a) no filter", [{}]),
        Scenario(
            "status_assignee",
            "(b) status + assignee",
            [
                {"status": "open", "assignee_id": "me"},
                {"status": "pending", "assignee_id": "me"},
                {"status": "open", "assignee_id": "none"},
                {"status": "open", "assignee_id": agents[0]},
                {"status": "resolved", "assignee_id": agents[1]},
            ],
        ),
        Scenario(
            "label_priority",
            "(c) label + priority",
            [
                {"label_id": label, "priority": priority}
                for label in labels[:4]
                for priority in ("high", "urgent", "normal")
            ],
        ),
        Scenario("unread", "(d) unread=true for the user", [{"unread": True}]),
        Scenario("search", "(e) full text `q`, rare and common terms", [{"q": term} for term in searches]),
    ]


def _query_string(query: dict[str, Any]) -> str:
    values = {k: (str(v).lower() if isinstance(v, bool) else str(v)) for k, v in query.items()}
    return urlencode({**values, "limit": PAGE})


# --- the load: closed loop, CLIENTS keep-alive connections, one request each at a time ----------


@dataclass(frozen=True)
class ReadPlan:
    """What one load run asks for."""

    base_url: str
    paths: list[str]
    headers: dict[str, str]
    duration: float
    warmup: float
    clients: int = CLIENTS


@dataclass
class ReadResult:
    """How the server answered a load run."""

    ok: int = 0
    errors: int = 0
    first_error: str = ""
    seconds: float = 0.0
    latencies_ms: list[float] = field(default_factory=list)

    @property
    def rate(self) -> float:
        return self.ok / self.seconds if self.seconds else 0.0

    def percentile(self, share: float) -> float:
        ordered = sorted(self.latencies_ms)
        if not ordered:
            return float("nan")
        return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def run_reads(plan: ReadPlan) -> ReadResult:
    """Entry point of the load process."""
    return asyncio.run(_reads(plan))


async def _reads(plan: ReadPlan) -> ReadResult:
    connector = aiohttp.TCPConnector(limit=plan.clients)
    timeout = aiohttp.ClientTimeout(total=30)
    async with aiohttp.ClientSession(plan.base_url, connector=connector, timeout=timeout) as session:
        warm = ReadResult()
        end = time.monotonic() + plan.warmup
        await asyncio.gather(*(_client(session, plan, n, end, warm) for n in range(plan.clients)))
        result = ReadResult()
        started = time.monotonic()
        end = started + plan.duration
        await asyncio.gather(*(_client(session, plan, n, end, result) for n in range(plan.clients)))
        result.seconds = time.monotonic() - started
    return result


async def _client(
    session: aiohttp.ClientSession, plan: ReadPlan, number: int, end: float, result: ReadResult
) -> None:
    turn = number
    while (now := time.monotonic()) < end:
        path = plan.paths[turn % len(plan.paths)]
        turn += 1
        try:
            async with session.get(path, headers=plan.headers) as response:
                body = await response.read()
                status = response.status
        except (aiohttp.ClientError, TimeoutError) as exc:
            result.errors += 1
            result.first_error = result.first_error or repr(exc)
            continue
        if status == 200:
            result.ok += 1
            result.latencies_ms.append((time.monotonic() - now) * 1000)
        else:
            result.errors += 1
            result.first_error = result.first_error or f"{status} {path}: {body[:300]!r}"


# --- the raw limit -----------------------------------------------------------------------------


def raw_app(dsn: str, workspace_id: uuid.UUID) -> FastAPI:
    """One asyncpg query by the listing's index, rows returned with orjson: nothing else."""
    pools: list[asyncpg.Pool] = []

    async def lifespan(_: FastAPI) -> Any:
        # The pool Piazza's engine keeps: up to 20 connections.
        pools.append(await asyncpg.create_pool(dsn, min_size=10, max_size=20))
        yield
        await pools[0].close()

    app = FastAPI(lifespan=lifespan)

    @app.get("/raw/conversations")
    async def listing() -> Response:
        rows = await pools[0].fetch(RAW_SQL, workspace_id)
        # asyncpg's UUIDs are a subclass orjson leaves to ``default``.
        body = orjson.dumps({"data": [dict(row) for row in rows]}, default=str)
        return Response(body, media_type="application/json")

    return app


def serve_raw(port: int, dsn: str, workspace_id: uuid.UUID) -> None:
    """Child process: uvicorn with the settings Piazza's web process uses."""
    import uvicorn

    uvicorn.run(
        raw_app(dsn, workspace_id),
        host="127.0.0.1",
        port=port,
        log_level="warning",
        access_log=False,
        server_header=False,
    )


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


async def _wait_http(url: str, timeout: float = 30.0) -> None:
    deadline = time.monotonic() + timeout
    async with aiohttp.ClientSession() as session:
        while time.monotonic() < deadline:
            try:
                async with session.get(url) as response:
                    if response.status == 200:
                        return
            except aiohttp.ClientError:
                pass
            await asyncio.sleep(0.1)
    raise RuntimeError(f"{url} did not answer in {timeout:.0f} s")


# --- database time per request -----------------------------------------------------------------


async def sql_times(database_url: str, seeded: Seeded, scenario: Scenario) -> list[float]:
    """Milliseconds the database spends on one request of each of the scenario's queries:
    ``EXPLAIN (ANALYZE, TIMING OFF)`` planning + execution of every statement the repository runs
    for it (captured as it runs them), on a warm cache."""
    principal = access.Principal(seeded.workspace_id, access.Role.AGENT, None, seeded.user_id)
    engine = create_engine(database_url, parallel_plans=False)  # as the inbox API's
    captured: list[tuple[str, Any]] = []

    def capture(_conn: Any, _cursor: Any, statement: str, parameters: Any, *_: Any) -> None:
        captured.append((statement, parameters))

    event.listen(engine.sync_engine, "before_cursor_execute", capture)
    times = []
    try:
        for query in scenario.queries:
            where = conversation_filter(principal, **query)
            captured.clear()
            async with engine.connect() as connection:
                await reads.list_conversations(
                    connection, seeded.workspace_id, where, None, PAGE + 1, seeded.user_id
                )
            statements = _explainable(captured)
            total = 0.0
            async with engine.connect() as connection:
                raw = (await connection.get_raw_connection()).driver_connection
                assert raw is not None
                for statement, parameters in statements:
                    for _ in range(2):  # the second run, on a warm cache, counts
                        plan = await raw.fetchval(
                            f"EXPLAIN (ANALYZE, TIMING OFF, FORMAT JSON) {statement}", *parameters
                        )
                    # SQLAlchemy's connection decodes json itself; a bare asyncpg one gives text.
                    found = (orjson.loads(plan) if isinstance(plan, str | bytes) else plan)[0]
                    total += found["Planning Time"] + found["Execution Time"]
            times.append(total)
    finally:
        await engine.dispose()
    return times


def _explainable(captured: list[tuple[str, Any]]) -> list[tuple[str, Any]]:
    """The statements a request ran, but a search's own EXPLAIN (how common its words are): a plan,
    not a query to explain."""
    return [(sql, params) for sql, params in captured if not sql.startswith("EXPLAIN")]


async def explain(database_url: str, seeded: Seeded, scenario: Scenario) -> str:
    """The text plans (with timing) of the statements the first query of the scenario runs."""
    principal = access.Principal(seeded.workspace_id, access.Role.AGENT, None, seeded.user_id)
    engine = create_engine(database_url, parallel_plans=False)  # as the inbox API's
    captured: list[tuple[str, Any]] = []
    event.listen(engine.sync_engine, "before_cursor_execute", lambda *a: captured.append((a[2], a[3])))
    out: list[str] = []
    try:
        for query in scenario.queries[:1] if scenario.key != "search" else scenario.queries:
            async with engine.connect() as connection:
                captured.clear()
                await reads.list_conversations(
                    connection,
                    seeded.workspace_id,
                    conversation_filter(principal, **query),
                    None,
                    PAGE + 1,
                    seeded.user_id,
                )
            async with engine.connect() as connection:
                raw = (await connection.get_raw_connection()).driver_connection
                assert raw is not None
                for statement, parameters in _explainable(captured):
                    rows = await raw.fetch(f"EXPLAIN (ANALYZE, BUFFERS) {statement}", *parameters)
                    out.append(f"-- {scenario.key} {query}\n{statement}\n" + "\n".join(r[0] for r in rows))
    finally:
        await engine.dispose()
    return "\n\n".join(out)


# --- the run -----------------------------------------------------------------------------------


@dataclass
class Measured:
    """One load run's figures."""

    title: str
    result: ReadResult
    sql_ms: float | None = None
    cores: Cores | None = None


@dataclass(frozen=True)
class Cores:
    """How many cores each part used on average during a load run (CPU seconds per second)."""

    server: float
    database: float | None
    """None when no PostgreSQL process is visible from here (another host, or another PID namespace)."""
    load: float

    def __str__(self) -> str:
        return f"{self.server:.2f} / {_or_na(self.database)} / {self.load:.2f}"


def _or_na(value: float | None) -> str:
    return "n/a" if value is None else f"{value:.2f}"


class CpuMeter:
    """CPU seconds of the server under test, of PostgreSQL (every ``postgres`` process of the
    machine: the benchmark's database is the only busy one) and of the load generator."""

    def __init__(self, load_pid: int) -> None:
        self._load = psutil.Process(load_pid)
        self._server: psutil.Process | None = None
        self._started = 0.0
        self._before: dict[str, float] = {}

    def start(self, server_pid: int) -> None:
        self._server = psutil.Process(server_pid)
        self._started = time.monotonic()
        self._before = self._seconds()

    def cores(self) -> Cores:
        elapsed = time.monotonic() - self._started
        after = self._seconds()
        # A process that ended meanwhile is left out; one that started counts from zero.
        used = {key: seconds - self._before.get(key, 0.0) for key, seconds in after.items()}
        backends = [seconds for key, seconds in used.items() if key.startswith("postgres:")]
        database = sum(backends) / elapsed if backends else None
        return Cores(used["server"] / elapsed, database, used["load"] / elapsed)

    def _seconds(self) -> dict[str, float]:
        assert self._server is not None
        seconds = {"server": _cpu(self._server), "load": _cpu(self._load)}
        for process in _postgres():
            seconds[f"postgres:{process.pid}"] = _cpu(process)
        return seconds


def _cpu(process: psutil.Process) -> float:
    try:
        times = process.cpu_times()
    except psutil.NoSuchProcess:  # a backend that ended during the run
        return 0.0
    return float(times.user + times.system)


def _postgres() -> list[psutil.Process]:
    return [p for p in psutil.process_iter(["name"]) if p.info["name"] in ("postgres", "postmaster")]


@dataclass
class ListingReport:
    """Everything the listing benchmark measured."""

    scale: Scale
    seeded: Seeded
    duration: float
    raw: list[Measured]
    piazza: list[Measured]
    explains: str = ""

    @property
    def raw_rate(self) -> float:
        return sum(m.result.rate for m in self.raw) / len(self.raw)


async def _bench_user(database_url: str) -> tuple[uuid.UUID, uuid.UUID, str]:
    """The stack's workspace, and an agent of it with a token (the lists are read as that user)."""
    engine = create_engine(database_url)
    try:
        async with session_factory(engine)() as session, session.begin():
            workspace_id = (await session.execute(text("SELECT id FROM workspaces"))).scalar_one()
            user = await create_user(
                session, workspace_id, name="Bench Agent", role=access.Role.AGENT, now=utcnow(), email=None
            )
            _, token = await access.create_token(
                session, workspace_id, "bench", access.Role.AGENT, utcnow(), user_id=user.id
            )
    finally:
        await engine.dispose()
    return workspace_id, user.id, token


async def measure(
    scale: Scale,
    *,
    duration: float,
    warmup: float,
    workdir: Path | None = None,
    with_plans: bool = False,
    progress: Callable[[str], None] = print,
) -> ListingReport:
    """Seed a scratch PostgreSQL store (``DATABASE_URL``), start Piazza and the raw app, and drive
    both with the same client."""
    with tempfile.TemporaryDirectory(prefix="piazza-listing-") as folder:
        stack = Stack(workdir or Path(folder))
        await stack.start()
        if stack.backend != "postgresql":
            await stack.stop()
            raise RuntimeError("the listing benchmark needs PostgreSQL (DATABASE_URL)")
        context = multiprocessing.get_context("spawn")
        raw_server = None
        try:
            workspace_id, user_id, token = await _bench_user(stack.database_url)
            progress(f"seeding {scale.conversations:,} conversations, {scale.messages:,} messages…")
            seeded = await corpus.seed(stack.database_url, workspace_id, user_id, scale)
            progress(f"  seeded in {seeded.seconds:.0f} s (indexes rebuilt in {seeded.index_seconds:.0f} s)")
            raw_port = _free_port()
            raw_server = context.Process(
                target=serve_raw,
                args=(raw_port, corpus.asyncpg_dsn(stack.database_url), workspace_id),
                daemon=True,
            )
            raw_server.start()
            await _wait_http(f"http://127.0.0.1:{raw_port}/raw/conversations")
            with context.Pool(1) as pool:
                assert raw_server.pid is not None
                meter = CpuMeter(pool.apply(os.getpid))
                servers = Servers(raw_server.pid, stack.processes[0].pid)
                report = await _drive(
                    pool, meter, servers, stack, raw_port, token, seeded, scale, duration, warmup, progress
                )
            if with_plans:
                report.explains = "\n\n".join(
                    [await explain(stack.database_url, seeded, s) for s in scenarios(seeded)]
                )
            return report
        finally:
            try:
                if raw_server is not None and raw_server.pid is not None:
                    raw_server.terminate()
                    raw_server.join(10)
            finally:
                await stack.stop()  # whatever failed, Piazza's processes and the scratch database go


@dataclass(frozen=True)
class Servers:
    """The processes under test: the raw app's and Piazza's web process."""

    raw: int
    piazza: int


async def _drive(
    pool: Pool,
    meter: CpuMeter,
    servers: Servers,
    stack: Stack,
    raw_port: int,
    token: str,
    seeded: Seeded,
    scale: Scale,
    duration: float,
    warmup: float,
    progress: Callable[[str], None],
) -> ListingReport:
    loop = asyncio.get_running_loop()

    async def load(
        base_url: str, paths: list[str], headers: dict[str, str], server: int
    ) -> tuple[ReadResult, Cores]:
        plan = ReadPlan(base_url, paths, headers, duration, warmup)
        meter.start(server)
        result: ReadResult = await loop.run_in_executor(None, pool.apply, run_reads, (plan,))
        cores = meter.cores()
        if result.errors:
            progress(f"  {result.errors} failed requests, first: {result.first_error}")
        return result, cores

    def line(title: str, measured: Measured) -> None:
        result = measured.result
        progress(
            f"  {title}: {result.rate:,.0f} req/s, p50 {result.percentile(0.5):.0f} ms, "
            f"p95 {result.percentile(0.95):.0f} ms, p99 {result.percentile(0.99):.0f} ms, "
            f"cores server / database / load {measured.cores}"
        )

    raw_url = f"http://127.0.0.1:{raw_port}"
    raw_runs: list[Measured] = []
    piazza: list[Measured] = []
    progress("raw limit: asyncpg 50-row select served by FastAPI + orjson…")
    result, cores = await load(raw_url, ["/raw/conversations"], {}, servers.raw)
    raw_runs.append(Measured("raw, before", result, cores=cores))
    line("raw", raw_runs[-1])
    auth = {"Authorization": f"Bearer {token}"}
    for scenario in scenarios(seeded):
        progress(f"GET /v1/conversations {scenario.title}…")
        paths = [f"/v1/conversations?{_query_string(q)}" for q in scenario.queries]
        result, cores = await load(stack.url, paths, auth, servers.piazza)
        sql = await sql_times(stack.database_url, seeded, scenario)
        piazza.append(Measured(scenario.title, result, sum(sql) / len(sql), cores))
        line(scenario.title, piazza[-1])
    result, cores = await load(raw_url, ["/raw/conversations"], {}, servers.raw)
    raw_runs.append(Measured("raw, after", result, cores=cores))
    line("raw again", raw_runs[-1])
    return ListingReport(scale, seeded, duration, raw_runs, piazza)


# --- the results -------------------------------------------------------------------------------


def render(report: ListingReport, header: str) -> str:
    """The Markdown section of these figures; ``header`` is the heading and command lines."""
    raw = report.raw_rate
    seeded = report.seeded
    lines = [
        header,
        "",
        f"Store: {seeded.rows.get('conversations', 0):,} conversations and {seeded.rows.get('messages', 0):,} "
        f"messages in all ({report.scale.conversations:,} and {report.scale.messages:,} of them in the "
        f"benchmark's workspace, the rest in a noise workspace), {seeded.rows.get('contacts', 0):,} contacts, "
        f"{seeded.rows.get('conversation_labels', 0):,} labels on conversations, "
        f"{seeded.rows.get('conversation_reads', 0):,} read marks; seeded with COPY in {seeded.seconds:.0f} s "
        f"(of which {seeded.index_seconds:.0f} s rebuilding indexes). {CLIENTS} concurrent clients, "
        f"{report.duration:.0f} s per scenario, first page of {PAGE}, read as an agent (unread counts included).",
        "",
        "| measure | requests/s | p50 | p95 | p99 | SQL per request | CPU per request: server / database "
        "| cores used: server / database / load | ratio to raw | target (≥ 60 %, p95 ≤ 100 ms) |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for measured in report.raw:
        result = measured.result
        lines.append(
            f"| raw limit ({measured.title}): asyncpg 50-row indexed select, FastAPI + orjson | "
            f"{result.rate:,.0f} | {_ms(result.percentile(0.5))} | {_ms(result.percentile(0.95))} | "
            f"{_ms(result.percentile(0.99))} | | {_per_request(measured)} | {measured.cores or 'n/a'} | | |"
        )
    for measured in report.piazza:
        result = measured.result
        ratio = result.rate / raw if raw else 0.0
        p95 = result.percentile(0.95)
        met = ratio >= TARGET_RATIO and p95 <= TARGET_P95_MS
        errors = f" ({result.errors} failed)" if result.errors else ""
        lines.append(
            f"| Piazza {measured.title}{errors} | {result.rate:,.0f} | {_ms(result.percentile(0.5))} | "
            f"{_ms(p95)} | {_ms(result.percentile(0.99))} | {_ms(measured.sql_ms)} | {_per_request(measured)} | "
            f"{measured.cores or 'n/a'} | {ratio:.0%} | "
            f"{'met' if met else '**not met**'} |"
        )
    return "\n".join(lines) + "\n"


def _per_request(measured: Measured) -> str:
    """Milliseconds of CPU one request cost the server and the database."""
    rate, cores = measured.result.rate, measured.cores
    if cores is None or not rate:
        return "n/a"
    database = None if cores.database is None else 1000 * cores.database / rate
    return f"{1000 * cores.server / rate:.2f} / {_or_na(database)} ms"


def _ms(value: float | None) -> str:
    if value is None or value != value:
        return "n/a"
    return f"{value:.1f} ms" if value < 10 else f"{value:.0f} ms"
