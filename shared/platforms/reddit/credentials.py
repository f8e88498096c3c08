"""A Reddit channel's OAuth credentials, opened from its sealed directory entry."""

from __future__ import annotations

from shared.channels import ChannelRecord
from shared.crypto import SecretBox
from shared.platforms.reddit.client import RedditCredentials


def credentials_from_record(record: ChannelRecord, box: SecretBox) -> RedditCredentials:
    """The credentials of a Reddit channel; raises KeyError when the entry lacks them and
    ``SecretBoxError`` when this process cannot open them."""

    def opened(purpose: str) -> str | None:
        sealed = record.secret(purpose)  # type: ignore[arg-type]
        return box.open(sealed) if sealed else None

    return RedditCredentials(
        client_id=record.config["client_id"],
        client_secret=opened("client_secret") or "",
        user_agent=record.config["user_agent"],
        username=record.config.get("username"),
        password=opened("password"),
        refresh_token=opened("refresh_token"),
    )
