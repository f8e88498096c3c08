"""One Reddit account's polling loop: its inbox, its private messages and its subreddits.

Each source is read newest first with the ``before`` anchor of the newest item already published,
as PRAW's stream does, plus a persisted set of the fullnames published. When the anchor is deleted
Reddit answers an empty page forever, so a round that finds nothing new drops the anchor and reads
the newest page instead, where the seen set tells old from new; when a whole page is new, older
pages are read too until a seen item (up to the listing's 1,000-item reach), so a burst between two
polls is not skipped. A source polled for the first time imports its recent history first.

A cursor is stored only after JetStream stored the events it accounts for: a crash repeats items
(deduplicated downstream by their event ids), it never loses one.
"""

from __future__ import annotations

import asyncio
import contextlib
import itertools
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from prometheus_client import Counter

from services.reddit.config import RedditSettings
from shared.bus.client import Bus, BusUnavailable
from shared.channels import BackfillProgress, ChannelHealthBoard, ChannelProblem, ChannelRecord
from shared.events import Event, inbound_subject, utcnow
from shared.logging import get_logger
from shared.platforms.reddit.client import (
    RedditClient,
    RedditCredentialsRefused,
    RedditError,
    RedditForbidden,
    RedditNotFound,
    RedditRateLimited,
    RedditRedirected,
)
from shared.platforms.reddit.normalize import PLATFORM, Normalizer, content_digest, flatten, is_gone
from shared.platforms.reddit.state import CursorStore, SourceCursor, WatchedItem
from shared.pollers import CredentialsRefused

log = get_logger(__name__)

POLLS = Counter(
    "piazza_reddit_polls_total", "Reddit listing reads, by source kind and outcome", ["source", "outcome"]
)
ITEMS = Counter("piazza_reddit_items_total", "Reddit items, by kind and outcome", ["kind", "outcome"])

PAGE = 100
LISTING_REACH = 1000
WATCH_LIMIT = 300
Item = tuple[str, dict[str, Any]]


@dataclass(frozen=True)
class Source:
    """A listing an account follows."""

    key: str
    path: str
    label: str
    threaded: bool = False
    capability: str | None = None
    """Set when the source may be unavailable to an account (then a warning, not an error)."""


def sources_of(record: ChannelRecord) -> list[Source]:
    """The listings a channel follows: the inbox (and private messages), then each subreddit."""
    sources = []
    if record.config.get("inbox", True):
        sources.append(Source("inbox", "/message/inbox/", "inbox"))
        sources.append(
            Source(
                "messages",
                "/message/messages/",
                "private messages",
                threaded=True,
                capability="private_messages",
            )
        )
    for name in record.config.get("subreddits", []):
        key = name.lower()
        # Posts first: a post and its first comments often arrive in the same poll.
        sources.append(Source(f"r.{key}.posts", f"/r/{name}/new/", f"r/{name} posts", capability=f"r/{key}"))
        sources.append(
            Source(f"r.{key}.comments", f"/r/{name}/comments/", f"r/{name} comments", capability=f"r/{key}")
        )
    return sources


class AccountPoller:
    """Polls one account's sources until stopped, or until its credentials are refused."""

    def __init__(
        self,
        channel: ChannelRecord,
        client: RedditClient,
        bus: Bus,
        cursors: CursorStore,
        health: ChannelHealthBoard,
        settings: RedditSettings,
        *,
        resume_at: float = 0.0,
    ) -> None:
        self.channel = channel
        self.resume_at = resume_at
        self._client = client
        self._bus = bus
        self._cursors = cursors
        self._health = health
        self._settings = settings
        self._sources = sources_of(channel)
        self._subject = inbound_subject(PLATFORM, channel.id)
        self._normalizer: Normalizer | None = None
        self._unavailable: dict[str, tuple[float, ChannelProblem]] = {}
        self._backoff = 1.0
        self._next_edit_check = time.monotonic() + settings.edit_check_seconds
        self._cache_buster = itertools.cycle(range(30))
        self._progress: dict[str, BackfillProgress] = {}
        self._throttled = False
        # This poller holds the account's lease: what it stored, it knows without reading it back.
        self._cursor_cache: dict[str, SourceCursor | None] = {}
        self._watched: dict[str, WatchedItem] | None = None

    # -- the loop -------------------------------------------------------------------------------

    async def run(self, stop: asyncio.Event) -> None:
        """Poll until ``stop``; raises :class:`CredentialsRefused` when Reddit refuses the credentials."""
        await _sleep(stop, self.resume_at - time.monotonic())
        log.info(
            "reddit.poller.started", channel_id=str(self.channel.id), sources=[s.key for s in self._sources]
        )
        while not stop.is_set():
            if self._normalizer is None and not await self._attempt(self._identify, stop):
                continue
            for source in self._sources:
                if stop.is_set():
                    break
                if self._usable(source):
                    await self._attempt(lambda source=source: self._poll(source), stop, source)  # type: ignore[misc]
            if time.monotonic() >= self._next_edit_check and not stop.is_set():
                self._next_edit_check = time.monotonic() + self._settings.edit_check_seconds
                await self._attempt(self._check_edits, stop)
            if not stop.is_set():
                await self._attempt(self._serve_backfill_request, stop)
            await _sleep(stop, self._settings.poll_seconds)
        log.info("reddit.poller.stopped", channel_id=str(self.channel.id))

    async def _attempt(
        self, step: Callable[[], Awaitable[None]], stop: asyncio.Event, source: Source | None = None
    ) -> bool:
        """Run one step, turning failures into health reports and pauses; True when it succeeded."""
        channel_id = self.channel.id
        label = source.key.split(".")[0] if source else "account"
        try:
            await step()
        except RedditCredentialsRefused as exc:
            POLLS.labels(label, "credentials_refused").inc()
            await self._health.report(
                channel_id,
                "credentials_refused",
                f"{exc.description}; give the channel valid credentials (PATCH /v1/channels/{channel_id}).",
                connected=False,
            )
            raise CredentialsRefused(exc.description) from None
        except RedditRateLimited as exc:
            POLLS.labels(label, "rate_limited").inc()
            wait = exc.retry_after or 1.0
            self.resume_at = time.monotonic() + wait
            self._throttled = True
            await self._health.amend(channel_id, throttled_until=utcnow() + timedelta(seconds=wait))
            await self._health.report(channel_id, "rate_limited", f"Reddit asks to wait {wait:g}s")
            await _sleep(stop, wait)
            return False
        except (RedditRedirected, RedditForbidden, RedditNotFound) as exc:
            if source is None or source.capability is None:
                POLLS.labels(label, "refused").inc()
                await self._health.report(channel_id, "refused", exc.description)
                await self._pause(stop)
                return False
            POLLS.labels(label, "unavailable").inc()
            await self._mark_unavailable(source, exc)
            return False
        except RedditError as exc:
            POLLS.labels(label, "failed").inc()
            await self._health.report(channel_id, "unreachable", exc.description, connected=False)
            await self._pause(stop)
            return False
        except BusUnavailable as exc:
            # Nothing was stored: the same items are read again once the bus is back.
            log.warning("reddit.poller.bus_unavailable", channel_id=str(channel_id), error=str(exc))
            await self._pause(stop)
            return False
        if source is not None:
            POLLS.labels(label, "ok").inc()
            await self._available(source)
        self._backoff = 1.0
        if self._throttled:
            self._throttled = False
            await self._health.amend(channel_id, throttled_until=None)
        await self._health.ok(channel_id)
        return True

    async def _identify(self) -> None:
        me = await self._client.me()
        self._normalizer = Normalizer(
            channel_id=self.channel.id,
            workspace=str(self.channel.workspace_id),
            me=str(me["name"]),
            track_unread=self.channel.config.get("mark_read") == "opened",
        )

    async def _pause(self, stop: asyncio.Event) -> None:
        await _sleep(stop, self._backoff)
        self._backoff = min(self._backoff * 2, self._settings.backoff_max_seconds)

    # -- capabilities ---------------------------------------------------------------------------

    def _usable(self, source: Source) -> bool:
        until = self._unavailable.get(source.capability or "")
        return until is None or until[0] <= time.monotonic()

    async def _mark_unavailable(self, source: Source, exc: RedditError) -> None:
        assert source.capability is not None
        if source.capability == "private_messages":
            message = (
                "Private messages are unavailable to this account (Reddit answered "
                f"{exc.status}; accounts moved to Reddit Chat have no API). Comments and mentions still arrive."
            )
        else:
            message = f"{source.label} is unavailable to this account ({exc.description})."
        problem = ChannelProblem(
            code=f"{source.capability}_unavailable"
            if source.capability == "private_messages"
            else "subreddit_unavailable",
            message=message,
            component="reddit",
            at=utcnow(),
        )
        self._unavailable[source.capability] = (
            time.monotonic() + self._settings.recheck_hours * 3600,
            problem,
        )
        log.warning(
            "reddit.source.unavailable",
            channel_id=str(self.channel.id),
            source=source.key,
            error=exc.description,
        )
        await self._health.amend(self.channel.id, warnings=tuple(p for _, p in self._unavailable.values()))

    async def _available(self, source: Source) -> None:
        if source.capability and self._unavailable.pop(source.capability, None) is not None:
            await self._health.amend(
                self.channel.id, warnings=tuple(p for _, p in self._unavailable.values())
            )

    # -- state --------------------------------------------------------------------------------

    async def _cursor(self, source: Source) -> SourceCursor | None:
        if source.key not in self._cursor_cache:
            self._cursor_cache[source.key] = await self._cursors.cursor(self.channel.id, source.key)
        return self._cursor_cache[source.key]

    async def _save(self, source: Source, cursor: SourceCursor) -> None:
        await self._cursors.save_cursor(self.channel.id, source.key, cursor)
        self._cursor_cache[source.key] = cursor

    async def _watched_items(self) -> dict[str, WatchedItem]:
        if self._watched is None:
            self._watched = await self._cursors.watched(self.channel.id)
        return self._watched

    async def _save_watched(self, watched: dict[str, WatchedItem]) -> None:
        await self._cursors.save_watched(self.channel.id, watched)
        self._watched = watched

    # -- polling --------------------------------------------------------------------------------

    async def _read(
        self, source: Source, *, before: str | None = None, after: str | None = None, limit: int = PAGE
    ) -> tuple[list[Item], str | None]:
        page = await self._client.listing(source.path, limit=limit, before=before, after=after)
        items = flatten(page.children) if source.threaded else page.children
        return items, page.after

    async def _poll(self, source: Source) -> None:
        cursor = await self._cursor(source)
        if cursor is None or not cursor.backfilled:
            await self._import_history(source, int(self.channel.config.get("backfill", 100)), cursor)
            return
        # Without an anchor the listing may come back stale from a cache; a changing limit busts it.
        limit = PAGE if cursor.before else PAGE - next(self._cache_buster)
        items, after = await self._read(source, before=cursor.before, limit=limit)
        seen = set(cursor.seen)
        fresh = [(k, d) for k, d in items if d.get("name") not in seen and _created(d) >= cursor.floor]
        if fresh and len(fresh) == len(items) >= limit:
            # A whole page is new: more may have arrived since the last poll; read back to a seen item.
            oldest = after or str(items[-1][1]["name"])
            fresh += await self._older_until_seen(
                source, oldest, seen, cursor.floor, limit=LISTING_REACH - len(items)
            )
        fresh = _unique(reversed(fresh))  # oldest first
        await self._publish(source, fresh, cursor)
        # Threaded listings order threads, not messages: a message is no anchor there.
        cursor.before = str(fresh[-1][1]["name"]) if fresh and not source.threaded else None
        await self._save(source, cursor)

    async def _older_until_seen(
        self, source: Source, after: str, seen: set[str], floor: float, *, limit: int
    ) -> list[Item]:
        """More than a page arrived since the last poll: read back until an item already published."""
        found: list[Item] = []
        cursor: str | None = after
        while cursor and len(found) < limit:
            items, cursor = await self._read(source, after=cursor)
            for kind, data in items:
                if data.get("name") in seen or _created(data) < floor:
                    return found
                found.append((kind, data))
        return found

    async def _publish(self, source: Source, items: list[Item], cursor: SourceCursor) -> None:
        """Publish items (oldest first), then note them in the cursor and the edit watch list."""
        assert self._normalizer is not None
        events: list[Event] = []
        watched: dict[str, WatchedItem] = {}
        unread: list[str] = []
        for kind, data in items:
            result = self._normalizer.received(kind, data)
            ITEMS.labels(kind, "skipped" if result.skipped else "published").inc()
            events.extend(result.events)
            if result.events and kind in ("t1", "t3"):
                watched[str(data["name"])] = WatchedItem(
                    kind=kind, digest=content_digest(kind, data), created_utc=_created(data)
                )
            if source.key in ("inbox", "messages") and data.get("new") is True:
                unread.append(str(data["name"]))
        if events:
            await self._bus.publish_many([(self._subject, e) for e in events], timeout=10.0)
        cursor.remember([(str(d["name"]), _created(d)) for _, d in items])
        if watched:
            await self._watch(watched)
        if unread and self.channel.config.get("mark_read") == "stored":
            with contextlib.suppress(RedditError):  # read state is a courtesy: items stay stored anyway
                await self._client.mark_read(unread)
        if items:
            log.info(
                "reddit.source.published",
                channel_id=str(self.channel.id),
                source=source.key,
                items=len(items),
            )
            await self._health.ok(self.channel.id, last_update_at=utcnow())

    # -- history --------------------------------------------------------------------------------

    async def _import_history(
        self, source: Source, depth: int, cursor: SourceCursor | None, *, again: bool = False
    ) -> None:
        """Import up to ``depth`` recent items of a source (newest pages first, published oldest first).

        ``again`` (an operator's request) publishes items already published too: the store keeps
        each once, and the import then fills whatever an earlier, shallower one left out."""
        cursor = cursor or SourceCursor()
        progress = BackfillProgress(source=source.key, imported=0, target=depth)
        await self._report_progress(progress)
        items: list[Item] = []
        newest_page, after = await self._read(source, limit=PAGE if depth else 1)
        items.extend(newest_page)
        while after and len(items) < min(depth, LISTING_REACH):
            page, after = await self._read(source, after=after)
            items.extend(page)
        seen = set(cursor.seen)
        wanted = [(k, d) for k, d in items[:depth] if again or d.get("name") not in seen]
        chronological = _unique(reversed(wanted))
        progress = progress.model_copy(update={"target": len(chronological)})
        for start in range(0, len(chronological), PAGE):
            chunk = chronological[start : start + PAGE]
            await self._publish(source, chunk, cursor)
            progress = progress.model_copy(update={"imported": start + len(chunk)})
            await self._report_progress(progress)
        # What was not imported is history: remember it so live polling does not take it for new.
        cursor.remember([(str(d["name"]), _created(d)) for _, d in items])
        if items:
            cursor.floor = max(cursor.floor, min(_created(d) for _, d in items[: max(depth, 1)]))
        newest = items[0][1]["name"] if items else None
        cursor.before = str(newest) if newest and not source.threaded else cursor.before
        cursor.backfilled = True
        await self._save(source, cursor)
        await self._report_progress(progress.model_copy(update={"done": True}))
        log.info(
            "reddit.backfill.done",
            channel_id=str(self.channel.id),
            source=source.key,
            items=len(chronological),
        )

    async def _report_progress(self, progress: BackfillProgress) -> None:
        self._progress[progress.source] = progress
        urgent = progress.done or progress.imported == 0
        await self._health.amend(self.channel.id, backfill=tuple(self._progress.values()), urgent=urgent)

    async def _serve_backfill_request(self) -> None:
        request = await self._cursors.backfill_request(self.channel.id)
        if request is None:
            return
        chosen = [s for s in self._sources if not request.sources or s.key in request.sources]
        log.info("reddit.backfill.requested", channel_id=str(self.channel.id), depth=request.depth)
        for source in chosen:
            if self._usable(source):
                cursor = await self._cursor(source) or SourceCursor()
                before = cursor.before
                await self._import_history(source, request.depth, cursor, again=True)
                if before is not None:
                    cursor.before = before  # live polling goes on from where it was
                    await self._save(source, cursor)
        await self._cursors.clear_backfill(self.channel.id, request.id)

    # -- edits ----------------------------------------------------------------------------------

    async def _watch(self, items: dict[str, WatchedItem]) -> None:
        await self._save_watched(self._trim({**await self._watched_items(), **items}))

    def _trim(self, watched: dict[str, WatchedItem]) -> dict[str, WatchedItem]:
        horizon = time.time() - self._settings.edit_window_hours * 3600
        kept = sorted(
            ((n, w) for n, w in watched.items() if w.created_utc >= horizon), key=lambda p: p[1].created_utc
        )
        return dict(kept[-WATCH_LIMIT:])

    async def _check_edits(self) -> None:
        """Fetch watched items again; publish the edits and deletions found."""
        assert self._normalizer is not None
        known = await self._watched_items()
        watched = self._trim(known)
        if not watched:
            return
        events: list[Event] = []
        now = utcnow()
        for kind, data in await self._client.info(list(watched)):
            name = str(data.get("name") or "")
            item = watched.get(name)
            if item is None:
                continue
            digest = content_digest(kind, data)
            if digest == item.digest:
                continue
            events.extend(self._normalizer.changed(kind, data, seen_at=now).events)
            gone = is_gone(kind, data)
            ITEMS.labels(kind, "deleted" if gone else "edited").inc()
            if gone:
                del watched[name]
            else:
                watched[name] = item.model_copy(update={"digest": digest})
        if events:
            await self._bus.publish_many([(self._subject, e) for e in events], timeout=10.0)
        if watched != known:
            await self._save_watched(watched)


def _created(data: dict[str, Any]) -> float:
    try:
        return float(data.get("created_utc") or 0.0)
    except (TypeError, ValueError):
        return 0.0


def _unique(items: Any) -> list[Item]:
    seen: set[str] = set()
    unique = []
    for kind, data in items:
        name = str(data.get("name"))
        if name not in seen:
            seen.add(name)
            unique.append((kind, data))
    return unique


async def _sleep(stop: asyncio.Event, seconds: float) -> None:
    if seconds <= 0:
        return
    with contextlib.suppress(TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
