"""The declarative base every inbox table derives from."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import MetaData
from sqlalchemy.orm import DeclarativeBase

from shared.db import NAMING_CONVENTION, JSONType, UTCDateTime

VERSION_TABLE = "alembic_version_inbox"


class Base(DeclarativeBase):
    """Declarative base of the inbox's tables."""

    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    type_annotation_map = {datetime: UTCDateTime(), dict[str, Any]: JSONType, list[Any]: JSONType}
