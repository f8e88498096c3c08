"""The ``piazza`` command: run the system, run one service, and operate an installation."""

from __future__ import annotations

import asyncio
import time
import uuid
from pathlib import Path
from typing import Annotated

import httpx
import typer
import uvicorn
from rich.console import Console

from piazza.registry import WEB_COMPONENTS, WORKERS, load_component, migrate_all
from shared.config import PiazzaSettings
from shared.db import create_engine, session_factory
from shared.events import utcnow
from shared.http import build_app
from shared.logging import configure_logging
from shared.process import tune_gc
from shared.webhooks.signing import sign

app = typer.Typer(help="Piazza, the open-source social inbox.", no_args_is_help=True, add_completion=False)
workspace_app = typer.Typer(help="Manage workspaces (tenants).", no_args_is_help=True)
token_app = typer.Typer(help="Manage API tokens.", no_args_is_help=True)
user_app = typer.Typer(help="Manage the people of a workspace.", no_args_is_help=True)
webhook_app = typer.Typer(help="Send signed test webhooks.", no_args_is_help=True)
dead_letters_app = typer.Typer(help="Inspect and replay messages consumers gave up on.", no_args_is_help=True)
app.add_typer(workspace_app, name="workspace")
app.add_typer(dead_letters_app, name="dead-letters")
app.add_typer(token_app, name="token")
app.add_typer(user_app, name="user")
app.add_typer(webhook_app, name="webhook")
reddit_app = typer.Typer(help="Operate Reddit channels.", no_args_is_help=True)
app.add_typer(reddit_app, name="reddit")
demo_app = typer.Typer(help="Try Piazza against fake platforms, no accounts needed.", no_args_is_help=True)
app.add_typer(demo_app, name="demo")
analytics_app = typer.Typer(help="Operate the analytics service.", no_args_is_help=True)
app.add_typer(analytics_app, name="analytics")

out = Console()


def _settings(service: str = "piazza") -> PiazzaSettings:
    settings = PiazzaSettings()
    configure_logging(service, level=settings.log_level, fmt=settings.log_format)
    return settings


@app.command()
def run(
    host: Annotated[str, typer.Option(help="Interface to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PIAZZA_PORT", help="Port of the API and webhooks.")] = 8000,
) -> None:
    """Start the whole system: embedded NATS, migrations, every service. Ctrl-C stops it."""
    from piazza.supervisor import Supervisor

    settings = _settings("supervisor")
    raise typer.Exit(asyncio.run(Supervisor(settings, host=host, port=port).run()))


DemoHost = Annotated[str, typer.Option(help="Interface to serve on.")]
DemoPort = Annotated[int, typer.Option(envvar="PIAZZA_PORT", help="Port of the API and webhooks.")]
DemoPace = Annotated[float, typer.Option(min=0.01, help="Seconds between the fake platform's events.")]


@demo_app.command("telegram")
def demo_telegram(host: DemoHost = "127.0.0.1", port: DemoPort = 8000, pace: DemoPace = 2.0) -> None:
    """Run everything (as `piazza run`) with a fake Telegram whose chats keep talking; replies you
    send through the API show up here. Ctrl-C stops it."""
    _demo("telegram", host, port, pace)


@demo_app.command("reddit")
def demo_reddit(host: DemoHost = "127.0.0.1", port: DemoPort = 8000, pace: DemoPace = 2.0) -> None:
    """Run everything (as `piazza run`) with a fake Reddit whose subreddit, inbox and private messages
    keep talking; replies you send through the API show up here. Ctrl-C stops it."""
    _demo("reddit", host, port, pace)


def _demo(platform: str, host: str, port: int, pace: float) -> None:
    from piazza.demo import DEMOS, DemoUnavailable

    settings = _settings("supervisor")
    try:
        code = asyncio.run(DEMOS[platform](settings, host=host, port=port, pace=pace))
    except DemoUnavailable as exc:
        out.print(f"[red]{exc}[/]")
        raise typer.Exit(2) from None
    raise typer.Exit(code)


def _serve(title: str, service: str, components: list[str], host: str, port: int) -> None:
    settings = _settings(service)
    web = build_app(title, [load_component(c) for c in components])
    tune_gc()
    uvicorn.run(
        web,
        host=host,
        port=port,
        log_config=None,
        access_log=False,
        lifespan="on",
        timeout_graceful_shutdown=20,
        server_header=False,
        log_level=settings.log_level.lower(),
    )


@app.command()
def serve(
    services: Annotated[list[str], typer.Argument(help=f"HTTP services: {', '.join(WEB_COMPONENTS)}.")],
    host: Annotated[str, typer.Option(help="Interface to serve on.")] = "127.0.0.1",
    port: Annotated[int, typer.Option(envvar="PIAZZA_PORT", help="Port to serve on.")] = 8000,
) -> None:
    """Serve one or more HTTP services in this process."""
    unknown = [s for s in services if s not in WEB_COMPONENTS]
    if unknown:
        raise typer.BadParameter(f"unknown service(s) {unknown}; choose from {list(WEB_COMPONENTS)}")
    _serve("Piazza", "+".join(services), [WEB_COMPONENTS[s] for s in services], host, port)


@app.command()
def worker(
    name: Annotated[str, typer.Argument(help=f"Worker: {', '.join(WORKERS)}.")],
    host: Annotated[str, typer.Option(help="Interface of the health and metrics endpoints.")] = "127.0.0.1",
    port: Annotated[
        int, typer.Option(help="Port of the health and metrics endpoints (0: any free one).")
    ] = 9100,
) -> None:
    """Run a bus worker, with /healthz, /readyz and /metrics on its own port."""
    if name not in WORKERS:
        raise typer.BadParameter(f"unknown worker {name!r}; choose from {list(WORKERS)}")
    _serve(f"Piazza {name} worker", f"{name}-worker", [WORKERS[name]], host, port)


@app.command()
def migrate() -> None:
    """Bring every service's tables up to date (safe to run from several places at once)."""
    settings = _settings()

    for service in asyncio.run(migrate_all(settings.resolved_database_url())):
        out.print(f"{service}: up to date")


@app.command("secret-key")
def secret_key() -> None:
    """Print a new key for PIAZZA_SECRET_KEYS."""
    from shared.crypto import generate_key

    out.print(generate_key())


@workspace_app.command("create")
def workspace_create(name: Annotated[str, typer.Argument(help="Display name.")]) -> None:
    """Create a workspace and print its id."""
    from services.inbox.service import access

    settings = _settings()

    async def go() -> uuid.UUID:
        engine = create_engine(settings.resolved_database_url())
        try:
            async with session_factory(engine)() as session, session.begin():
                return await access.create_workspace(session, name, utcnow())
        finally:
            await engine.dispose()

    out.print(str(asyncio.run(go())))


@workspace_app.command("list")
def workspace_list() -> None:
    """List workspaces."""
    from services.inbox.repository import access as repo

    settings = _settings()

    async def go() -> None:
        engine = create_engine(settings.resolved_database_url())
        try:
            async with session_factory(engine)() as session:
                for workspace in await repo.list_workspaces(session):
                    out.print(f"{workspace.id}  {workspace.name}")
        finally:
            await engine.dispose()

    asyncio.run(go())


@token_app.command("create")
def token_create(
    workspace: Annotated[uuid.UUID, typer.Option(help="Workspace id.")],
    name: Annotated[str, typer.Option(help="What the token is for.")],
    role: Annotated[str, typer.Option(help="admin, agent or viewer.")] = "admin",
) -> None:
    """Create an API token; it is printed once and stored only as a hash."""
    from services.inbox.errors import WorkspaceNotFound
    from services.inbox.service import access

    settings = _settings()
    try:
        chosen = access.Role(role)
    except ValueError:
        raise typer.BadParameter("role must be admin, agent or viewer") from None

    async def go() -> str:
        engine = create_engine(settings.resolved_database_url())
        try:
            async with session_factory(engine)() as session, session.begin():
                _, plain = await access.create_token(session, workspace, name, chosen, utcnow())
                return plain
        finally:
            await engine.dispose()

    try:
        out.print(asyncio.run(go()))
    except WorkspaceNotFound as exc:
        raise typer.BadParameter(exc.message) from None


@token_app.command("revoke")
def token_revoke(token_id: Annotated[uuid.UUID, typer.Argument(help="Token id.")]) -> None:
    """Revoke a token (API processes forget it within their token cache time, 10 s by default)."""
    from services.inbox.service import access

    settings = _settings()

    async def go() -> bool:
        engine = create_engine(settings.resolved_database_url())
        try:
            async with session_factory(engine)() as session, session.begin():
                return await access.revoke_token(session, token_id, utcnow())
        finally:
            await engine.dispose()

    if not asyncio.run(go()):
        raise typer.BadParameter(f"no live token {token_id}")
    out.print("revoked")


@user_app.command("create")
def user_create(
    name: Annotated[str, typer.Argument(help="The person's name.")],
    role: Annotated[str, typer.Option(help="admin, agent or viewer.")] = "agent",
    email: Annotated[str | None, typer.Option(help="Their email address (unique in the workspace).")] = None,
    workspace: Annotated[
        uuid.UUID | None, typer.Option(help="Workspace id; may be left out when there is only one.")
    ] = None,
    token_name: Annotated[str, typer.Option(help="What their first token is for.")] = "cli",  # noqa: S107
) -> None:
    """Add a user and issue their first token: prints the user id, then the token (shown once)."""
    from services.inbox.errors import EmailTaken, WorkspaceNotFound
    from services.inbox.repository import access as repo
    from services.inbox.service import access, users

    settings = _settings()
    try:
        chosen = access.Role(role)
    except ValueError:
        raise typer.BadParameter("role must be admin, agent or viewer") from None

    async def go() -> tuple[uuid.UUID, str]:
        engine = create_engine(settings.resolved_database_url())
        try:
            async with session_factory(engine)() as session, session.begin():
                workspace_id = workspace
                if workspace_id is None:
                    found = await repo.list_workspaces(session)
                    if len(found) != 1:
                        raise LookupError(f"there are {len(found)} workspaces: pass --workspace")
                    workspace_id = found[0].id
                now = utcnow()
                user = await users.create_user(
                    session, workspace_id, name=name, role=chosen, now=now, email=email
                )
                _, plain = await access.create_token(
                    session, workspace_id, token_name, chosen, now, user_id=user.id
                )
                return user.id, plain
        finally:
            await engine.dispose()

    try:
        user_id, plain = asyncio.run(go())
    except (WorkspaceNotFound, EmailTaken, LookupError) as exc:
        raise typer.BadParameter(str(exc)) from None
    out.print(str(user_id))
    out.print(plain)


@webhook_app.command("send")
def webhook_send(
    url: Annotated[str, typer.Argument(help="The channel's webhook_url.")],
    secret: Annotated[str, typer.Option(envvar="PIAZZA_WEBHOOK_SECRET", help="The channel's whsec_ secret.")],
    body: Annotated[
        Path | None, typer.Option("--file", "-f", help='JSON body to send (one event or {"events": [...]}).')
    ] = None,
    text: Annotated[str | None, typer.Option(help="Send one message.created with this text instead.")] = None,
    thread: Annotated[str, typer.Option(help="Thread id for --text.")] = "demo-thread",
    author: Annotated[str, typer.Option(help="Author id for --text.")] = "demo-user",
    webhook_id: Annotated[str | None, typer.Option(help="webhook-id header (default: a new one).")] = None,
) -> None:
    """Sign a body with the channel's secret (Standard Webhooks) and POST it."""
    if (body is None) == (text is None):
        raise typer.BadParameter("give exactly one of --file and --text")
    if body is not None:
        payload = body.read_bytes()
    else:
        import orjson

        payload = orjson.dumps(
            {
                "type": "message.created",
                "id": f"msg-{uuid.uuid4().hex[:12]}",
                "thread": {"id": thread},
                "author": {"id": author, "name": author},
                "text": text,
                "occurred_at": utcnow().isoformat(),
            }
        )
    headers = sign(secret, webhook_id or f"msg_{uuid.uuid4().hex}", int(time.time()), payload).as_dict()
    response = httpx.post(
        url, content=payload, headers={**headers, "content-type": "application/json"}, timeout=10
    )
    out.print(f"{response.status_code} {response.text}")
    if response.status_code >= 400:
        raise typer.Exit(1)


def _bus_url(settings: PiazzaSettings) -> str:
    """NATS_URL, else the embedded server a `piazza run` on this data folder is running."""
    from shared.bus.server import running_url
    from shared.errors import ConfigurationError

    url = settings.nats_url or running_url(settings.data_dir / "nats")
    if not url:
        raise ConfigurationError(
            f"NATS_URL is not set and no `piazza run` is running on {settings.data_dir} (PIAZZA_DATA_DIR)"
        )
    return url


@dead_letters_app.command("list")
def dead_letters_list() -> None:
    """List dead letters: sequence, time, consumer, original subject, deliveries, then the reason."""
    from shared.bus.client import Bus
    from shared.bus.dead_letters import DeadLetter, dead_letters

    settings = _settings()

    async def go() -> list[DeadLetter]:
        async with await Bus.connect(
            _bus_url(settings), name="cli", prefix=settings.bus_prefix, ensure=False
        ) as bus:
            return [letter async for letter in dead_letters(bus)]

    letters = asyncio.run(go())
    if not letters:
        out.print("no dead letters")
    for letter in letters:
        when = f"{letter.at:%Y-%m-%d %H:%M:%S}" if letter.at else "-"
        out.print(
            f"#{letter.sequence}  {when}  {letter.consumer}  {letter.original_subject}  "
            f"deliveries={letter.deliveries}",
            soft_wrap=True,
            highlight=False,
        )
        out.print(f"    reason: {letter.reason}", soft_wrap=True, highlight=False)


@dead_letters_app.command("replay")
def dead_letters_replay(
    sequences: Annotated[list[int], typer.Argument(help="Sequences from `piazza dead-letters list`.")],
) -> None:
    """Publish dead letters back to their original subject (after fixing their cause) and remove them."""
    from shared.bus.client import Bus
    from shared.bus.dead_letters import DeadLetterNotFound, replay

    settings = _settings()

    async def go() -> int:
        failures = 0
        async with await Bus.connect(
            _bus_url(settings), name="cli", prefix=settings.bus_prefix, ensure=False
        ) as bus:
            for sequence in sequences:
                try:
                    letter = await replay(bus, sequence)
                except DeadLetterNotFound as exc:
                    out.print(f"{sequence}: {exc}")
                    failures += 1
                else:
                    out.print(f"{sequence}: replayed to {letter.original_subject}")
        return failures

    if asyncio.run(go()):
        raise typer.Exit(1)


@reddit_app.command("backfill")
def reddit_backfill(
    channel_id: Annotated[uuid.UUID, typer.Argument(help="The Reddit channel's id.")],
    depth: Annotated[int, typer.Option(min=1, max=1000, help="Recent items to import per source.")] = 1000,
    source: Annotated[
        list[str] | None,
        typer.Option(help="Only these sources: inbox, messages, r.<sub>.comments, r.<sub>.posts."),
    ] = None,
    wait: Annotated[bool, typer.Option(help="Follow the import with a progress bar until it ends.")] = True,
    timeout: Annotated[float, typer.Option(help="Give up following after this many seconds.")] = 3600.0,
) -> None:
    """Import a Reddit channel's recent history again (items already stored are skipped)."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TaskID, TextColumn, TimeElapsedColumn

    from shared.bus.client import Bus
    from shared.bus.topology import CHANNEL_HEALTH_BUCKET, CHANNELS_BUCKET, REDDIT_CURSORS_BUCKET
    from shared.channels import ChannelDirectory, ChannelHealthBoard
    from shared.platforms.reddit.state import BackfillRequest, CursorStore

    settings = _settings()
    request = BackfillRequest.new(depth, source or [])

    async def go() -> int:
        async with await Bus.connect(
            _bus_url(settings), name="cli", prefix=settings.bus_prefix, ensure=False
        ) as bus:
            record = await ChannelDirectory(await bus.key_value(CHANNELS_BUCKET.name)).get(channel_id)
            if record is None or record.type != "reddit":
                out.print(f"{channel_id} is not a Reddit channel")
                return 2
            cursors = CursorStore(await bus.key_value(REDDIT_CURSORS_BUCKET.name))
            await cursors.request_backfill(channel_id, request)
            out.print(f"asked the Reddit connector to import up to {depth} items per source of {record.name}")
            if not wait:
                return 0
            board = ChannelHealthBoard(await bus.key_value(CHANNEL_HEALTH_BUCKET.name), component="cli")
            deadline = time.monotonic() + timeout
            columns = (
                TextColumn("{task.description}"),
                BarColumn(),
                MofNCompleteColumn(),
                TimeElapsedColumn(),
            )
            with Progress(*columns, console=out) as progress:
                tasks: dict[str, TaskID] = {}
                while time.monotonic() < deadline:
                    pending = await cursors.backfill_request(channel_id)
                    finished = pending is None or pending.id != request.id
                    status = await board.read(channel_id)
                    for item in status.backfill if status else ():
                        if request.sources and item.source not in request.sources:
                            continue
                        if item.source not in tasks:
                            tasks[item.source] = progress.add_task(item.source, total=None)
                        total = item.target or None
                        if finished:
                            total = item.target or item.imported or 1
                        progress.update(tasks[item.source], completed=item.imported, total=total)
                    if finished:
                        return 0
                    await asyncio.sleep(0.5)
            out.print("still importing; follow it on GET /v1/channels/{id} (health.backfill)")
            return 1

    raise typer.Exit(asyncio.run(go()))


@analytics_app.command("rebuild")
def analytics_rebuild(
    batch_size: Annotated[int, typer.Option(min=1, max=5000, help="Events per transaction.")] = 1000,
) -> None:
    """Recompute every analytics figure by replaying the domain event stream, with a progress bar."""
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TimeElapsedColumn, TimeRemainingColumn

    from services.analytics.config import AnalyticsSettings
    from services.analytics.rebuild import rebuild
    from shared.bus.client import Bus

    _settings()
    settings = AnalyticsSettings()

    async def go() -> int:
        engine = create_engine(settings.resolved_database_url())
        try:
            async with await Bus.connect(
                _bus_url(settings), name="cli", prefix=settings.bus_prefix, ensure=False
            ) as bus:
                columns = (BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(), TimeRemainingColumn())
                with Progress(*columns, console=out) as progress:
                    task = progress.add_task("replaying", total=None)
                    read = await rebuild(
                        settings,
                        session_factory(engine),
                        bus,
                        progress=lambda done, total: progress.update(task, completed=done, total=total),
                        batch_size=batch_size,
                    )
        finally:
            await engine.dispose()
        return read

    read = asyncio.run(go())
    out.print(f"analytics rebuilt from {read} domain events")


def main() -> None:
    """Entry point of the ``piazza`` command; configuration errors end it with their message."""
    from pydantic import ValidationError

    from shared.errors import ConfigurationError

    try:
        app()
    except ConfigurationError as exc:
        Console(stderr=True).print(f"[bold red]Configuration error:[/] {exc.message}")
        raise SystemExit(2) from None
    except ValidationError as exc:
        Console(stderr=True).print(f"[bold red]Configuration error:[/] {exc}")
        raise SystemExit(2) from None
