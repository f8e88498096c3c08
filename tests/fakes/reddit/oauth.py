"""``POST /api/v1/access_token``: the OAuth2 grants of platforms.md §2.2 and their two error shapes.

Client problems are HTTP errors (401 bad credentials, 400 ``{"error": 400}`` for an unknown refresh
token); grant problems are ``{"error": ...}`` bodies with status 200, as recorded.
"""

from __future__ import annotations

import base64
import binascii
from typing import Any

from tests.fakes.reddit.accounts import Account, App
from tests.fakes.reddit.errors import ApiError, unauthorized
from tests.fakes.reddit.world import RedditWorld

Json = dict[str, Any]

INSTALLED_CLIENT = "https://oauth.reddit.com/grants/installed_client"
NO_DEVICE = "DO_NOT_TRACK_THIS_DEVICE"


def client_of(world: RedditWorld, authorization: str | None) -> App:
    """The app named by HTTP Basic ``client_id:client_secret`` (installed apps: empty secret)."""
    scheme, _, encoded = (authorization or "").partition(" ")
    if scheme.lower() != "basic":
        raise unauthorized()
    try:
        client_id, _, secret = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")
    except (binascii.Error, UnicodeDecodeError):
        raise unauthorized() from None
    app = world.apps.get(client_id)
    if app is None or secret != app.client_secret:
        raise unauthorized()
    return app


def grant(world: RedditWorld, app: App, form: dict[str, str], now: float) -> Json:
    """The token endpoint's body for an authenticated app (HTTP 200, or an ``ApiError``)."""
    grant_type = form.get("grant_type", "")
    scope = form.get("scope") or "*"
    account: Account | None = None
    refresh_token: str | None = None
    extra: Json = {}
    if grant_type == "password":
        if app.kind != "script":
            return {
                "error_description": "Only script apps may use password auth",
                "error": "unauthorized_client",
            }
        account = world.accounts.get(form.get("username", "").lower())
        if account is None or account.password is None or account.password != form.get("password"):
            return {"error": "invalid_grant"}
    elif grant_type == "refresh_token":
        stored = world.refresh_tokens.get(form.get("refresh_token", ""))
        if stored is None or stored.app is not app:
            raise ApiError(400, {"error": 400})
        account, scope = stored.account, stored.scope
        if world.rotate_refresh_tokens:
            refresh_token = world.rotate(stored)
    elif grant_type == "authorization_code":
        code = world.auth_codes.get(form.get("code", ""))
        if code is None or code.app is not app or form.get("redirect_uri") != app.redirect_uri:
            return {"error": "invalid_grant"}
        del world.auth_codes[code.token]
        account, scope = code.account, code.scope
        refresh_token = world.issue_refresh_token(app, account, scope=scope)
    elif grant_type == "client_credentials":
        if app.kind == "installed":
            return {"error": "unauthorized_client"}
    elif grant_type == INSTALLED_CLIENT:
        device_id = form.get("device_id", "")
        if device_id != NO_DEVICE and not 20 <= len(device_id) <= 30:
            return {"error": "invalid_request"}
        extra["device_id"] = device_id
    else:
        return {"error": "unsupported_grant_type"}
    token = world.grant_access_token(app, account, scope=scope, grant_type=grant_type, now=now)
    body: Json = {
        "access_token": token.value,
        "token_type": "bearer",
        "expires_in": world.token_lifetime,
        "scope": scope,
    }
    if refresh_token is not None:
        body["refresh_token"] = refresh_token
    return {**body, **extra}
