"""Alembic environment of the inbox; run through ``shared.db.migrate`` or the ``alembic`` CLI."""

from __future__ import annotations

from services.inbox.models import VERSION_TABLE, Base
from shared.db.migrate import run_environment

run_environment(Base.metadata, VERSION_TABLE)
