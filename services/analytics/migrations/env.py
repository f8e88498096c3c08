"""Alembic environment of the analytics service; run through ``shared.db.migrate`` or the ``alembic`` CLI."""

from __future__ import annotations

from services.analytics.models import VERSION_TABLE, Base
from shared.db.migrate import run_environment

run_environment(Base.metadata, VERSION_TABLE)
