"""What an API handler gets (the parsed call) and gives back, and how handlers are routed by path."""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

from tests.fakes.reddit.accounts import AccessToken, Account
from tests.fakes.reddit.errors import forbidden
from tests.fakes.reddit.world import RedditWorld

Json = dict[str, Any]

# Clients that send these user agents are throttled (Reddit "heavily limits default agents").
DEFAULT_AGENTS = ("python-requests", "python-httpx", "python-urllib", "curl")
MIN_AGENT_LENGTH = 10


def refused_agent(user_agent: str | None) -> bool:
    """A missing, short or library-default User-Agent."""
    if user_agent is None or len(user_agent.strip()) < MIN_AGENT_LENGTH:
        return True
    return user_agent.strip().lower().startswith(DEFAULT_AGENTS)


def truthy(value: str | None, *, default: bool) -> bool:
    if value is None or value == "":
        return default
    return value.strip().lower() not in ("false", "0", "no", "off")


@dataclass
class Call:
    """One authenticated API call: the path's parameters, query, form and the token's account."""

    world: RedditWorld
    method: str
    path: str  # normalised: no trailing slash, no .json
    params: dict[str, str]  # the route's named groups
    query: dict[str, str]
    form: dict[str, str]
    token: AccessToken

    @property
    def account(self) -> Account | None:
        return self.token.account

    def user(self) -> Account:
        """The account behind the token; userless tokens may not read the inbox or write."""
        if self.token.account is None:
            raise forbidden()
        return self.token.account

    def arg(self, name: str, default: str = "") -> str:
        """A parameter from the form, else the query string."""
        return self.form.get(name, self.query.get(name, default))

    @property
    def api_type_json(self) -> bool:
        return self.arg("api_type") == "json"


@dataclass
class Reply:
    """A handler's answer when it is not a plain 200 JSON body."""

    body: Json | str
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)


Handler = Callable[[Call], Json | Reply]


@dataclass(frozen=True)
class Route:
    method: str
    pattern: re.Pattern[str]
    handler: Handler
    needs_user: bool  # userless (client_credentials) tokens get 403


def route(
    routes: list[Route], method: str, pattern: str, *, needs_user: bool = True
) -> Callable[[Handler], Handler]:
    """Register a handler for ``method`` and a path regex (matched in full, case-insensitively)."""

    def register(handler: Handler) -> Handler:
        routes.append(Route(method, re.compile(pattern, re.IGNORECASE), handler, needs_user))
        return handler

    return register


def resolve(routes: list[Route], method: str, path: str) -> tuple[Route, dict[str, str]] | str | None:
    """The route and its parameters; ``"method"`` when only the method is wrong; None when unknown."""
    wrong_method = False
    for candidate in routes:
        match = candidate.pattern.fullmatch(path)
        if match is None:
            continue
        if candidate.method != method:
            wrong_method = True
            continue
        params: Mapping[str, str | Any] = match.groupdict()
        return candidate, {key: str(value) for key, value in params.items() if value is not None}
    return "method" if wrong_method else None
