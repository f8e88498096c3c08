"""Small helpers for tests against the fake: unique names, a descriptive User-Agent, credentials.

Names carry random suffixes so tests never collide:

    fake.add_account(factory.username("ops"), password="pw")
    httpx.AsyncClient(base_url=fake.base_url, headers={"User-Agent": factory.USER_AGENT})
"""

from __future__ import annotations

import secrets

from tests.fakes.reddit.accounts import App

# Reddit's rule: <platform>:<app ID>:<version string> (by /u/<reddit username>).
USER_AGENT = "linux:com.example.piazza.tests:v1.0 (by /u/example_ops)"
PASSWORD_GRANT = "password"
REFRESH_GRANT = "refresh_token"


def user_agent(app_id: str = "com.example.piazza", version: str = "v1.0", by: str = "example_ops") -> str:
    return f"linux:{app_id}:{version} (by /u/{by})"


def username(prefix: str = "user") -> str:
    """A unique username (Reddit allows 3-20 of letters, digits, ``_`` and ``-``)."""
    return f"{prefix[:13]}_{secrets.token_hex(3)}"


def subreddit_name(prefix: str = "sub") -> str:
    return f"{prefix[:14]}_{secrets.token_hex(3)}"


def client_id() -> str:
    return secrets.token_urlsafe(16)[:22]


def basic_auth(app: App) -> tuple[str, str]:
    """``(client_id, client_secret)`` for httpx's ``auth=``; the secret is empty for installed apps."""
    return app.client_id, app.client_secret


def password_form(username: str, password: str) -> dict[str, str]:
    return {"grant_type": PASSWORD_GRANT, "username": username, "password": password}


def refresh_form(refresh_token: str) -> dict[str, str]:
    return {"grant_type": REFRESH_GRANT, "refresh_token": refresh_token}
