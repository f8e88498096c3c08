"""Database plumbing: engines, column types, upserts, migrations and error classification."""

from shared.db.engine import create_engine, read_engine, read_session_factory, session_factory
from shared.db.errors import is_transient_db_error
from shared.db.types import NAMING_CONVENTION, JSONType, UTCDateTime
from shared.db.upsert import insert_for

__all__ = [
    "NAMING_CONVENTION",
    "JSONType",
    "UTCDateTime",
    "create_engine",
    "insert_for",
    "is_transient_db_error",
    "read_engine",
    "read_session_factory",
    "session_factory",
]
