"""The report's conversations as CSV, one line per conversation, streamed as it is written.

Cells: timestamps ISO-8601 in UTC (``2025-03-03T09:15:00Z``), durations and scores as plain decimals,
labels joined with ``;``, and an empty cell wherever a value is None (or not a finite number).

Formula injection: a spreadsheet runs a cell starting with ``=``, ``+``, ``-`` or ``@`` (and, in some,
a tab or carriage return) as a formula, and labels, ids and platform names may come from users. Such
text cells get a leading apostrophe, which spreadsheets read as "this is text" and do not show
(OWASP's advice). Numbers are written by us and never carry a formula, so a negative score stays
``-0.5`` and sums correctly.
"""

from __future__ import annotations

import csv
import math
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime

from services.analytics.reports.data import ConversationRow

CSV_COLUMNS: tuple[str, ...] = (
    "conversation_id",
    "channel_id",
    "platform",
    "opened_at",
    "first_response_at",
    "first_response_seconds",
    "business_first_response_seconds",
    "resolved_at",
    "resolution_seconds",
    "reopen_count",
    "inbound_messages",
    "outbound_messages",
    "first_responder_id",
    "sentiment",
    "sentiment_score_avg",
    "labels",
    "first_sentiment",
)
LABEL_SEPARATOR = ";"
FORMULA_PREFIXES = ("=", "+", "-", "@", "\t", "\r")


class _Echo:
    """A file whose ``write`` hands the line back, so ``csv.writer`` formats one record at a time."""

    def write(self, line: str) -> str:
        return line


def render_csv(rows: Iterable[ConversationRow]) -> Iterator[str]:
    """The header, then one CSV record per row (each ``\\r\\n``-terminated, as RFC 4180 has it)."""
    writer = csv.writer(_Echo())
    yield str(writer.writerow(CSV_COLUMNS))
    for row in rows:
        yield str(writer.writerow(_cells(row)))


def _cells(row: ConversationRow) -> tuple[str, ...]:
    return (
        _text(str(row.conversation_id)),
        _text(None if row.channel_id is None else str(row.channel_id)),
        _text(row.platform),
        _timestamp(row.opened_at),
        _timestamp(row.first_response_at),
        _number(row.first_response_seconds),
        _number(row.business_first_response_seconds),
        _timestamp(row.resolved_at),
        _number(row.resolution_seconds),
        str(row.reopen_count),
        str(row.inbound_messages),
        str(row.outbound_messages),
        _text(row.first_responder_id),
        _text(row.sentiment),
        _number(row.sentiment_score_avg),
        _text(LABEL_SEPARATOR.join(row.labels)),
        _text(row.first_sentiment),
    )


def _text(value: str | None) -> str:
    if not value:
        return ""
    return "'" + value if value.startswith(FORMULA_PREFIXES) else value


def _timestamp(value: datetime | None) -> str:
    if value is None:
        return ""
    if value.utcoffset() is None:
        # Guessing the zone of a naive time would shift it silently; the analytics tables are all aware.
        raise ValueError("CSV timestamps must be timezone-aware")
    return value.astimezone(UTC).isoformat(timespec="seconds").replace("+00:00", "Z")


def _number(value: float | None) -> str:
    if value is None or not math.isfinite(value):
        return ""
    # repr is the shortest text that reads back as the same float.
    return repr(float(value))
