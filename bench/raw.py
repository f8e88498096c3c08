"""Raw limits of this machine, measured in the same run as Piazza: the yardsticks for the ratios."""

from __future__ import annotations

import asyncio
import multiprocessing
import sys
import time
import uuid
from datetime import UTC, datetime

import nats
import orjson
from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse
from sqlalchemy import Column, DateTime, MetaData, String, Table, Text, Uuid, insert
from sqlalchemy.ext.asyncio import AsyncEngine

from bench.loadgen import LoadPlan, LoadResult
from shared.db import create_engine

PAYLOAD = orjson.dumps(
    {
        "id": "0" * 40,
        "type": "message.received",
        "version": 1,
        "occurred_at": "2026-11-24T10:00:00Z",
        "workspace": str(uuid.uuid4()),
        "source": "bench",
        "correlation_id": uuid.uuid4().hex,
        "payload": {"text": "benchmark message 123 of lane 7", "padding": "x" * 300},
    }
)


async def jetstream_publish(url: str, count: int = 50_000, in_flight: int = 500) -> float:
    """Messages/s JetStream stores with ``in_flight`` publishes outstanding (no Piazza code)."""
    nc = await nats.connect(url)
    js = nc.jetstream(publish_async_max_pending=in_flight)
    stream = f"RAW{uuid.uuid4().hex[:8]}"
    await js.add_stream(name=stream, subjects=[f"{stream}.>"])
    try:
        started = time.perf_counter()
        futures = [await js.publish_async(f"{stream}.x", PAYLOAD) for _ in range(count)]
        await asyncio.gather(*futures)
        return count / (time.perf_counter() - started)
    finally:
        await js.delete_stream(stream)
        await nc.close()


async def database_insert(url: str, count: int = 30_000, batch: int = 500) -> float:
    """Rows/s a plain batched INSERT (one transaction per batch) writes into the configured store."""
    engine = create_engine(url)
    metadata = MetaData()
    table = Table(
        f"bench_raw_{uuid.uuid4().hex[:8]}",
        metadata,
        Column("id", Uuid, primary_key=True),
        Column("conversation_id", Uuid, nullable=False),
        Column("external_id", String(512), nullable=False),
        Column("text", Text),
        Column("created_at", DateTime(timezone=True), nullable=False),
    )
    try:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.create_all)
        return await _insert_batches(engine, table, count, batch)
    finally:
        async with engine.begin() as connection:
            await connection.run_sync(metadata.drop_all)
        await engine.dispose()


async def _insert_batches(engine: AsyncEngine, table: Table, count: int, batch: int) -> float:
    conversations = [uuid.uuid4() for _ in range(50)]
    now = datetime.now(UTC)
    started = time.perf_counter()
    for start in range(0, count, batch):
        rows = [
            {
                "id": uuid.uuid4(),
                "conversation_id": conversations[i % 50],
                "external_id": f"raw-{i}",
                "text": f"benchmark message {i}",
                "created_at": now,
            }
            for i in range(start, min(start + batch, count))
        ]
        async with engine.begin() as connection:
            await connection.execute(insert(table), rows)
    return count / (time.perf_counter() - started)


def hello_app() -> FastAPI:
    """The smallest FastAPI app that takes a POSTed JSON body and answers 202, like the webhook."""
    app = FastAPI()

    @app.post("/hello")
    async def hello(request: Request) -> JSONResponse:
        await request.body()
        return JSONResponse({"accepted": 1}, status_code=202)

    return app


def serve_hello(port: int) -> None:
    """Child process: uvicorn with the settings Piazza's processes use."""
    import uvicorn

    uvicorn.run(hello_app(), host="127.0.0.1", port=port, log_level="warning", access_log=False)


def fastapi_hello(port: int, load: LoadPlan, run_load: object) -> LoadResult:
    """Requests/s the hello app answers under the load generator Piazza's webhooks get."""
    context = multiprocessing.get_context("spawn")
    server = context.Process(target=serve_hello, args=(port,), daemon=True)
    server.start()
    try:
        _wait_port(port)
        with context.Pool(1) as pool:
            result: LoadResult = pool.apply(run_load, (load,))  # type: ignore[arg-type]
        return result
    finally:
        server.terminate()
        server.join(10)


def _wait_port(port: int, timeout: float = 20.0) -> None:
    import socket

    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.05)
    print(f"port {port} never opened", file=sys.stderr)
    raise SystemExit(1)
