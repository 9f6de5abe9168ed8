"""Column types of the dialect: timestamps as aware UTC datetimes.

Every TIMESTAMP column holds UTC text ``YYYY-MM-DD HH:MM:SS[.ffffff]``, so a
bound datetime is rendered in exactly that format (SQLite's own ``DATETIME``
type would render ``.000000`` and the local wall time of naive values). Text
is passed as written: the columns' ISO8601 collation compares any ISO 8601
text as the instant it names. Results are always aware UTC datetimes:
the DB-API already converts columns declared TIMESTAMP, and text that comes
from an expression (``max(created_at)``, ``datetime('now')``) is parsed here.
"""

from __future__ import annotations

import datetime as dt
from typing import Any

from sqlalchemy import types as sqltypes
from sqlalchemy.engine.interfaces import Dialect

from ..values import UTC, format_timestamp, parse_timestamp

__all__ = ["UTCDateTime", "to_stored", "to_utc"]


def to_stored(value: Any) -> Any:
    """A Python value compared with a timestamp column, in the stored text format.

    Aware datetimes are converted to UTC, naive ones are taken as UTC, and a
    ``date`` means its midnight UTC. Text is passed as written.
    """
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    if isinstance(value, dt.date):
        return format_timestamp(dt.datetime(value.year, value.month, value.day))
    return value


def to_utc(value: Any) -> dt.datetime | None:
    """A result value of a timestamp column as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)
    if isinstance(value, (int, float)):
        return dt.datetime.fromtimestamp(value, UTC)
    return parse_timestamp(str(value))


class UTCDateTime(sqltypes.DateTime):
    """``DateTime`` (and ``TIMESTAMP``) on this dialect: aware UTC datetimes both ways."""

    def bind_processor(self, dialect: Dialect) -> Any:
        return to_stored

    def literal_processor(self, dialect: Dialect) -> Any:
        def process(value: Any) -> str:
            text = str(to_stored(value)).replace("'", "''")
            return f"'{text}'"

        return process

    def result_processor(self, dialect: Dialect, coltype: object) -> Any:
        return to_utc
