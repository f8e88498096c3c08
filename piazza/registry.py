"""Every service, by name: its HTTP component, its worker, its migrations."""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from shared.config import PiazzaSettings
from shared.http import Component

_SERVICES_DIR = Path(__file__).resolve().parent.parent / "services"

WEB_COMPONENTS: dict[str, str] = {
    "ingress": "services.ingress.app:component",
    "inbox-api": "services.inbox.app:component",
    "analytics-api": "services.analytics.app:component",
}
"""HTTP components ``piazza serve`` can put in one process."""

WORKERS: dict[str, str] = {
    "inbox": "services.inbox.consumers:worker_component",
    "telegram": "services.telegram.app:worker_component",
    "reddit": "services.reddit.app:worker_component",
    "reply": "services.reply.app:worker_component",
    "webhooks": "services.inbox.deliveries:worker_component",
    "analytics": "services.analytics.consumers:worker_component",
}
"""Bus consumers ``piazza worker`` runs, each in a process of its own."""


@dataclass(frozen=True)
class Migrations:
    """One service's Alembic history."""

    service: str
    directory: Path
    version_table: str


MIGRATIONS: tuple[Migrations, ...] = (
    Migrations("inbox", _SERVICES_DIR / "inbox" / "migrations", "alembic_version_inbox"),
    Migrations("analytics", _SERVICES_DIR / "analytics" / "migrations", "alembic_version_analytics"),
)


async def migrate_all(database_url: str) -> list[str]:
    """Bring every service's tables up to date; returns the services migrated, in order."""
    from shared.db import create_engine
    from shared.db.migrate import upgrade

    engine = create_engine(database_url)
    try:
        for migrations in MIGRATIONS:
            await upgrade(engine, migrations.directory, migrations.version_table)
    finally:
        await engine.dispose()
    return [m.service for m in MIGRATIONS]


def service_settings() -> tuple[type[PiazzaSettings], ...]:
    """Every service's settings class (each reads the shared settings plus its own prefix)."""
    from services.analytics.config import AnalyticsSettings
    from services.inbox.config import InboxSettings
    from services.ingress.config import IngressSettings
    from services.reddit.config import RedditSettings
    from services.reply.config import ReplySettings
    from services.telegram.config import TelegramSettings

    return (
        InboxSettings,
        IngressSettings,
        TelegramSettings,
        RedditSettings,
        ReplySettings,
        AnalyticsSettings,
    )


def check_service_settings() -> None:
    """Validate every service's settings, so a bad configuration stops ``piazza run`` up front
    instead of sending a child into a restart loop."""
    for settings_class in service_settings():
        settings_class().check()


def load_component(target: str) -> Component:
    """Import ``module:factory`` and call it."""
    module_name, _, factory = target.partition(":")
    built: Any = getattr(importlib.import_module(module_name), factory)()
    if not isinstance(built, Component):
        raise TypeError(f"{target} did not build a Component")
    return built
