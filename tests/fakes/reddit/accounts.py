"""Who talks to the fake: OAuth apps, accounts (with their inbox and sent messages) and tokens."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

from tests.fakes.reddit.things import InboxEntry, Thing

AppKind = Literal["script", "web", "installed"]


@dataclass(eq=False)
class App:
    """A registered OAuth app (prefs/apps): installed apps have no secret."""

    client_id: str
    client_secret: str
    kind: AppKind
    redirect_uri: str


@dataclass(eq=False)
class Account:
    """A Reddit user: its inbox (``InboxEntry`` with the unread flag), its sent messages, its switches."""

    username: str
    id: str  # base36, without the t2_ prefix
    password: str | None
    created_utc: float
    entries: list[InboxEntry] = field(default_factory=list)  # oldest first
    sent: list[Thing] = field(default_factory=list)  # private messages it wrote, oldest first
    pm_unavailable: int | None = None  # 302 or 403 for /message/messages and /message/sent
    write_limits: list[str] = field(default_factory=list)  # pending RATELIMIT waits, e.g. "7 minutes"

    @property
    def fullname(self) -> str:
        return f"t2_{self.id}"

    @property
    def inbox(self) -> list[Thing]:
        """Everything delivered to the inbox, oldest first (deleted and read items included)."""
        return [entry.thing for entry in self.entries]

    @property
    def unread(self) -> list[Thing]:
        return [entry.thing for entry in self.entries if entry.new]

    def entry(self, fullname: str) -> InboxEntry | None:
        return next((entry for entry in self.entries if entry.thing.fullname == fullname), None)

    def is_new(self, thing: Thing) -> bool:
        entry = self.entry(thing.fullname)
        return entry is not None and entry.new


@dataclass(eq=False)
class AccessToken:
    value: str
    app: App
    account: Account | None  # None: a userless (application-only) token
    scope: str
    grant_type: str
    expires_at: float  # time.monotonic()
    expired: bool = False

    def valid(self, now: float) -> bool:
        return not self.expired and now < self.expires_at


@dataclass(eq=False)
class RefreshGrant:
    token: str
    app: App
    account: Account
    scope: str
