"""Building a service's FastAPI app from components, with health, readiness and metrics.

A *component* is what one service contributes to an HTTP process: its routers, a lifespan that
builds its resources (stored on ``app.state.<name>``), and readiness checks. A service's own
``create_app()`` builds an app from its one component; ``piazza run`` builds one app from several, so
the API and the webhooks share a port on a laptop while running as separate deployments in production.
"""

from __future__ import annotations

import asyncio
import gc
import os
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from dataclasses import dataclass, field

from fastapi import APIRouter, FastAPI, Request, Response
from fastapi.openapi.utils import get_openapi
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest, multiprocess

from shared.http.middleware import RequestContextMiddleware
from shared.http.problems import install_problem_handlers
from shared.logging import get_logger

log = get_logger(__name__)

ReadinessCheck = Callable[[FastAPI], Awaitable[None]]
Lifespan = Callable[[FastAPI], AbstractAsyncContextManager[None]]


@dataclass(frozen=True)
class Component:
    """One service's share of an HTTP process."""

    name: str
    routers: Sequence[APIRouter]
    lifespan: Lifespan
    checks: dict[str, ReadinessCheck] = field(default_factory=dict)


def worker_checks(state_name: str, task: str) -> dict[str, ReadinessCheck]:
    """Readiness of a worker whose lifespan keeps ``app.state.<state_name>`` as a tuple of its bus
    first and its background task last: NATS is connected, and the task (the ``task``) still runs."""

    async def check_nats(app: FastAPI) -> None:
        if not getattr(app.state, state_name)[0].is_connected:
            raise ConnectionError("not connected to NATS")

    async def check_task(app: FastAPI) -> None:
        if getattr(app.state, state_name)[-1].done():
            raise RuntimeError(f"the {task} stopped")

    return {"nats": check_nats, task.split()[-1]: check_task}


def build_app(title: str, components: Sequence[Component], *, version: str = "0.1.0") -> FastAPI:
    """A FastAPI app serving the components, ``/healthz``, ``/readyz``, ``/metrics`` and ``/docs``."""

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        async with AsyncExitStack() as stack:
            for component in components:
                await stack.enter_async_context(component.lifespan(app))
            # What start-up built lives as long as the process: keep it out of the collector's scans,
            # so full collections stay short and do not stall requests.
            gc.collect()
            gc.freeze()
            yield

    app = FastAPI(title=title, version=version, lifespan=lifespan)
    install_problem_handlers(app)
    app.openapi = lambda: _openapi_with_problems(app)  # type: ignore[method-assign]
    app.add_middleware(RequestContextMiddleware)
    checks = {f"{c.name}.{name}": check for c in components for name, check in c.checks.items()}
    app.include_router(_operations_router(checks))
    for component in components:
        for router in component.routers:
            app.include_router(router)
    return app


def _operations_router(checks: dict[str, ReadinessCheck]) -> APIRouter:
    router = APIRouter(include_in_schema=False)

    @router.get("/healthz")
    async def healthz() -> dict[str, str]:
        """Liveness: the process answers."""
        return {"status": "ok"}

    @router.get("/readyz")
    async def readyz(request: Request, response: Response) -> dict[str, object]:
        """Readiness: every dependency (database, NATS) answers within two seconds."""
        results: dict[str, str] = {}
        for name, check in checks.items():
            try:
                async with asyncio.timeout(2.0):
                    await check(request.app)
            except Exception as exc:  # any failure means "not ready", reported, never raised
                # The kind of failure only: details (hosts, users) go to the log, not to any caller.
                log.warning("http.readiness.failed", check=name, error=f"{type(exc).__name__}: {exc}"[:300])
                results[name] = f"error: {type(exc).__name__}"
            else:
                results[name] = "ok"
        ready = all(v == "ok" for v in results.values())
        response.status_code = 200 if ready else 503
        return {"status": "ready" if ready else "unready", "checks": results}

    @router.get("/metrics")
    async def metrics() -> Response:
        """Prometheus metrics: of every process of the installation when they share a
        ``PROMETHEUS_MULTIPROC_DIR`` (as under ``piazza run``), else of this process."""
        registry: CollectorRegistry | None = None
        if os.environ.get("PROMETHEUS_MULTIPROC_DIR"):
            registry = CollectorRegistry()
            multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
        return Response(
            generate_latest(registry) if registry else generate_latest(), media_type=CONTENT_TYPE_LATEST
        )

    return router


_PROBLEM_SCHEMA = {
    "title": "Problem",
    "description": "RFC 9457 problem details; `code` is stable, `errors` lists field-level problems.",
    "type": "object",
    "required": ["type", "title", "status", "detail", "code"],
    "properties": {
        "type": {"type": "string", "example": "about:blank"},
        "title": {"type": "string", "example": "Bad Request"},
        "status": {"type": "integer", "example": 400},
        "detail": {"type": "string"},
        "code": {"type": "string", "example": "validation_failed"},
        "errors": {
            "type": "array",
            "items": {
                "type": "object",
                "properties": {
                    "field": {"type": "string"},
                    "message": {"type": "string"},
                    "type": {"type": "string"},
                },
            },
        },
    },
}


def _openapi_with_problems(app: FastAPI) -> dict[str, object]:
    """The OpenAPI document, saying what the API really answers on errors: problem details, with
    request validation errors as 400 (FastAPI's default document says 422)."""
    if app.openapi_schema:
        return app.openapi_schema
    schema = get_openapi(title=app.title, version=app.version, routes=app.routes)
    components = schema.setdefault("components", {}).setdefault("schemas", {})
    components["Problem"] = _PROBLEM_SCHEMA
    for name in ("HTTPValidationError", "ValidationError"):
        components.pop(name, None)
    problem = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
    for path in schema.get("paths", {}).values():
        for operation in path.values():
            responses = operation.get("responses", {})
            if responses.pop("422", None) is not None:
                responses["400"] = {"description": "The request does not match the schema"}
            for status, response in responses.items():
                if status.startswith(("4", "5")):
                    response["content"] = problem
    app.openapi_schema = schema
    return schema
