"""Reading ``Authorization: Bearer <token>``, the one way every Piazza API takes credentials."""

from __future__ import annotations

from fastapi import Request

from shared.errors import Unauthorized

CHALLENGE = {"WWW-Authenticate": 'Bearer realm="piazza"'}
"""The challenge a 401 carries."""


def bearer_token(request: Request) -> str:
    """The request's bearer token; :class:`Unauthorized` (with the challenge) when there is none or
    the header is not of the Bearer form."""
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    token = token.strip()
    if not header:
        raise Unauthorized("Authorization: Bearer <token> is required.", headers=CHALLENGE)
    if scheme.lower() != "bearer" or not token:
        raise Unauthorized("The Authorization header must be 'Bearer <token>'.", headers=CHALLENGE)
    return token
