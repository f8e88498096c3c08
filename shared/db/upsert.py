"""``INSERT ... ON CONFLICT`` for the backend in use: idempotency decided by a unique constraint."""

from __future__ import annotations

from typing import Any

from sqlalchemy import Table
from sqlalchemy.dialects import postgresql, sqlite


def insert_for(dialect_name: str, table: Table | Any) -> postgresql.Insert | sqlite.Insert:
    """An INSERT supporting ``on_conflict_do_nothing``/``on_conflict_do_update`` and ``excluded``."""
    if dialect_name == "postgresql":
        return postgresql.insert(table)
    if dialect_name == "sqlite":
        return sqlite.insert(table)
    raise NotImplementedError(f"no upsert for the {dialect_name} dialect")
