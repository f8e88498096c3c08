"""``/v1/stream`` (live updates over Server-Sent Events) and conversation presence.

See docs/stream.md for the protocol a client follows.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator, Sequence
from typing import Annotated, Any
from uuid import UUID

import orjson
from fastapi import APIRouter, Header, Query, Request
from nats.errors import Error as NatsError
from nats.js.errors import Error as JetStreamError
from prometheus_client import Counter, Gauge
from sse_starlette import EventSourceResponse, ServerSentEvent

from services.inbox.dependencies import PrincipalDep, StateDep
from services.inbox.errors import InvalidStreamPosition
from services.inbox.live import DomainTail, EventTooLarge, StreamBounds, domain_bounds
from services.inbox.schemas.live import PresenceIn, PresenceList, PresenceOut
from services.inbox.service import access
from services.inbox.service import presence as service
from services.inbox.service.access import Principal
from services.inbox.state import InboxState
from shared.bus.client import BusUnavailable
from shared.errors import ServiceUnavailable, ValidationFailed
from shared.events import EventDecodeError, decode_event, utcnow
from shared.events.domain import DOMAIN_TYPES, DomainEvent, domain_subject, workspace_domain_subjects
from shared.logging import get_logger

log = get_logger(__name__)

router = APIRouter(prefix="/v1", tags=["live updates"])

STREAMS_OPEN = Gauge(
    "piazza_live_streams_open", "Live update streams being served", multiprocess_mode="livesum"
)
EVENTS_SENT = Counter("piazza_live_events_sent_total", "Events sent on live update streams")

READY = "stream.ready"
RESET = "stream.reset"
RECONNECT_MS = 2000
"""How long a browser's EventSource waits before reconnecting (sent as the SSE ``retry`` field)."""

_BUS_ERRORS = (NatsError, JetStreamError, BusUnavailable, TimeoutError)
_FAMILIES = sorted({t.split(".")[0] for t in DOMAIN_TYPES})
_MAX_CONVERSATIONS = 100
_EVENT_FIELDS = {"id", "type", "occurred_at", "payload"}


@router.get(
    "/stream",
    response_class=EventSourceResponse,
    responses={
        200: {
            "description": "An endless text/event-stream: one SSE event per domain event, `id` its "
            "stream sequence, `event` its type, `data` the JSON event; heartbeat comments when idle.",
            "content": {"text/event-stream": {}},
        }
    },
)
async def stream(
    request: Request,
    principal: PrincipalDep,
    state: StateDep,
    conversation_id: Annotated[
        list[UUID] | None,
        Query(description="Only events of these conversations (repeat the parameter for several)."),
    ] = None,
    types: Annotated[
        list[str] | None,
        Query(
            description="Only these event types, repeated or comma-separated; `conversation.*` names a "
            "whole family."
        ),
    ] = None,
    last_event_id: Annotated[
        str | None,
        Query(description="Resume after this event id, for clients that cannot send `Last-Event-ID`."),
    ] = None,
    last_event_id_header: Annotated[
        str | None,
        Header(
            alias="Last-Event-ID",
            description="Resume after this event id (browsers' EventSource sends it when reconnecting).",
        ),
    ] = None,
) -> EventSourceResponse:
    """Live updates of the workspace, as Server-Sent Events, resumable with ``Last-Event-ID``.

    Every role may read its workspace's stream. Without a position the stream starts with new events;
    with one it first sends every event after it, in order, then continues live. The first event is
    ``stream.ready`` (or ``stream.reset`` when the position is no longer held: refetch, then go on).
    """
    wanted_types = _parse_types(types or [])
    conversations = frozenset(conversation_id or [])
    if len(conversations) > _MAX_CONVERSATIONS:
        raise ValidationFailed(
            f"At most {_MAX_CONVERSATIONS} conversations per stream.",
            errors=[{"field": "query.conversation_id", "message": "too many", "type": "too_long"}],
        )
    if conversations:
        async with state.reading() as session:
            for conversation in sorted(conversations):
                await service.require_conversation(session, principal.workspace_id, conversation)
    requested = _position(last_event_id_header if last_event_id_header is not None else last_event_id)
    if not state.bus.is_connected:
        raise ServiceUnavailable("Live updates are unavailable right now; retry shortly.")
    try:
        bounds = await domain_bounds(state.bus)
    except _BUS_ERRORS as exc:
        log.warning("inbox.stream.unavailable", error=f"{type(exc).__name__}: {exc}")
        raise ServiceUnavailable("Live updates are unavailable right now; retry shortly.") from exc
    opening, start = _opening(requested, bounds)
    subjects = (
        [domain_subject(principal.workspace_id, t) for t in wanted_types]
        if wanted_types
        else [workspace_domain_subjects(principal.workspace_id)]
    )
    settings = state.settings
    return EventSourceResponse(
        _events(state, principal, _bearer(request), subjects, conversations, opening, start),
        ping=settings.stream_heartbeat_seconds,
        ping_message_factory=lambda: ServerSentEvent(comment="heartbeat"),
        send_timeout=settings.stream_send_timeout_seconds,
    )


def _parse_types(raw: Sequence[str]) -> list[str]:
    """Requested types, each known (or a known family's ``<family>.*``), without overlaps."""
    requested = {t.strip() for value in raw for t in value.split(",") if t.strip()}
    unknown = sorted(
        t for t in requested if t not in DOMAIN_TYPES and not (t.endswith(".*") and t[:-2] in _FAMILIES)
    )
    if unknown:
        raise ValidationFailed(
            f"Unknown event types: {', '.join(unknown)}.",
            errors=[
                {"field": "query.types", "message": f"not an event type: {t}", "type": "enum"}
                for t in unknown
            ],
        )
    families = {t[:-2] for t in requested if t.endswith(".*")}
    # JetStream refuses overlapping filters: a family's wildcard covers its types.
    return sorted(t for t in requested if t.endswith(".*") or t.split(".")[0] not in families)


def _position(raw: str | None) -> int | None:
    if raw is None or not raw.strip():
        return None
    text = raw.strip()
    if not text.isdigit() or len(text) > 19:
        raise InvalidStreamPosition(
            "Last-Event-ID must be the id of an event this stream sent (a non-negative integer)."
        )
    return int(text)


def _opening(requested: int | None, bounds: StreamBounds) -> tuple[ServerSentEvent, int]:
    """The first event a client gets, and the sequence its stream starts at."""
    if requested is None:
        return _control(READY, bounds.last, {"last_event_id": bounds.last}), bounds.last + 1
    if requested > bounds.last:
        # Not an id of this stream as it is now (it was recreated, or the id is made up).
        reason = "unknown_position"
    elif requested + 1 < bounds.first:
        reason = "expired"  # events after it are no longer held
    else:
        return _control(READY, requested, {"last_event_id": requested}), requested + 1
    data = {
        "reason": reason,
        "requested": requested,
        "earliest_available": bounds.first,
        "last_event_id": bounds.last,
    }
    return _control(RESET, bounds.last, data), bounds.last + 1


def _control(kind: str, position: int, data: dict[str, Any]) -> ServerSentEvent:
    return ServerSentEvent(id=str(position), event=kind, data=orjson.dumps(data).decode(), retry=RECONNECT_MS)


def _bearer(request: Request) -> str:
    """The token the request authenticated with (the dependency already checked the header)."""
    return request.headers.get("authorization", "").partition(" ")[2].strip()


async def _still_allowed(state: InboxState, principal: Principal, token: str) -> bool:
    """Whether the token still stands for this workspace (not revoked, its user not deactivated)."""
    bootstrap = state.settings.bootstrap_token
    async with state.reading() as session:
        current = await access.authenticate(
            session, token, bootstrap.get_secret_value() if bootstrap else None
        )
    return current is not None and current.workspace_id == principal.workspace_id


async def _events(
    state: InboxState,
    principal: Principal,
    token: str,
    subjects: list[str],
    conversations: frozenset[UUID],
    opening: ServerSentEvent,
    start: int,
) -> AsyncIterator[ServerSentEvent]:
    workspace = str(principal.workspace_id)
    sent = 0
    STREAMS_OPEN.inc()
    log.info("inbox.stream.opened", workspace_id=workspace, start=start, subjects=subjects)
    tail = DomainTail(
        state.bus,
        subjects,
        start,
        batch=state.settings.stream_batch_size,
        description=f"Live stream of workspace {workspace}",
    )
    # A stream outlives the request's authentication: the token is checked again before events are
    # sent, at most every token_cache_seconds (the staleness every replica's cache allows anyway).
    recheck_every = max(state.settings.token_cache_seconds, 0.5)
    checked_at = time.monotonic()
    try:
        yield opening
        async with tail:
            async for msg in tail.messages():
                event = _domain_event(msg.data, workspace)
                if event is None:
                    continue
                if conversations and event.payload.conversation_id not in conversations:
                    continue
                if time.monotonic() - checked_at >= recheck_every:
                    if not await _still_allowed(state, principal, token):
                        log.info("inbox.stream.revoked", workspace_id=workspace)
                        return
                    checked_at = time.monotonic()
                sent += 1
                EVENTS_SENT.inc()
                yield ServerSentEvent(
                    id=str(msg.metadata.sequence.stream), event=event.type, data=_event_json(event)
                )
    except (*_BUS_ERRORS, EventTooLarge) as exc:
        # End the response: the client reconnects with Last-Event-ID and misses nothing.
        log.warning("inbox.stream.interrupted", workspace_id=workspace, error=f"{type(exc).__name__}: {exc}")
    finally:
        STREAMS_OPEN.dec()
        log.info("inbox.stream.closed", workspace_id=workspace, sent=sent, position=tail.position)


def _domain_event(data: bytes, workspace: str) -> DomainEvent | None:
    try:
        event = decode_event(data)
    except EventDecodeError as exc:
        log.warning("inbox.stream.undecodable_event", error=str(exc))
        return None
    if not isinstance(event, DomainEvent) or event.workspace != workspace:
        log.warning("inbox.stream.misrouted_event", event_id=event.id, type=event.type)
        return None
    return event


def _event_json(event: DomainEvent) -> str:
    return orjson.dumps(event.model_dump(mode="json", include=_EVENT_FIELDS)).decode()


@router.post("/conversations/{conversation_id}/presence")
async def set_presence(
    conversation_id: UUID, body: PresenceIn, principal: PrincipalDep, state: StateDep
) -> PresenceOut:
    """Say that you are viewing or typing in a conversation, or no longer (``idle``).

    Shared at once on the live stream as ``presence.updated``. Presence lapses at ``expires_at``
    unless renewed: send ``viewing`` every ~10 s while the conversation is open and ``typing`` every
    ~3 s while composing. Agents and admins may set any state; viewers ``viewing`` and ``idle``.
    Tokens that act for no user have no presence (403).
    """
    service.check_may_set(principal, body.state)
    async with state.reading() as session:
        await service.require_conversation(session, principal.workspace_id, conversation_id)
    settings = state.settings
    lasts = settings.presence_typing_seconds if body.state == "typing" else settings.presence_viewing_seconds
    try:
        presence = await service.set_presence(
            state.bus, principal, conversation_id, body.state, utcnow(), lasts=lasts
        )
    except _BUS_ERRORS as exc:
        log.warning("inbox.presence.unavailable", error=f"{type(exc).__name__}: {exc}")
        raise ServiceUnavailable("Presence is unavailable right now; retry shortly.") from exc
    return PresenceOut.model_validate(presence.as_data())


@router.get("/conversations/{conversation_id}/presence")
async def list_presence(conversation_id: UUID, principal: PrincipalDep, state: StateDep) -> PresenceList:
    """Who is viewing or typing in a conversation now; entries past their ``expires_at`` are gone."""
    async with state.reading() as session:
        await service.require_conversation(session, principal.workspace_id, conversation_id)
    try:
        entries = await service.present(state.bus, principal.workspace_id, conversation_id, utcnow())
    except _BUS_ERRORS as exc:
        log.warning("inbox.presence.unavailable", error=f"{type(exc).__name__}: {exc}")
        raise ServiceUnavailable("Presence is unavailable right now; retry shortly.") from exc
    return PresenceList(data=[PresenceOut.model_validate(p.as_data()) for p in entries])
