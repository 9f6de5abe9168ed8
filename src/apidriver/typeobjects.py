"""PEP 249 type objects and constructors.

``Cursor.description`` reports a column's declared SQL type as its type code
(``"TEXT"``, ``"INTEGER"``, ``"REAL"``, ``"BOOLEAN"``, ``"JSON"``, ``"BLOB"``),
except that timestamp columns say ``"TIMESTAMP WITH TIME ZONE"``: their values
are aware UTC datetimes, and tools that choose a column type from the type
code (polars, which reads plain ``TIMESTAMP`` as naive) then keep the zone.
Each type object compares equal to the codes it covers, so
``description[i][1] == apidriver.DATETIME`` works as PEP 249 says.
"""

from __future__ import annotations

import datetime as dt
import time
from typing import Any


class DBAPITypeObject:
    def __init__(self, name: str, *codes: str) -> None:
        self.name = name
        self.values = frozenset(codes)

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DBAPITypeObject):
            return self is other
        return isinstance(other, str) and other.upper() in self.values

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"<DBAPITypeObject {self.name}>"


STRING = DBAPITypeObject("STRING", "TEXT", "JSON", "VARCHAR", "CHAR")
BINARY = DBAPITypeObject("BINARY", "BLOB")
NUMBER = DBAPITypeObject("NUMBER", "INTEGER", "REAL", "BOOLEAN", "NUMERIC")
DATETIME = DBAPITypeObject("DATETIME", "TIMESTAMP", "TIMESTAMP WITH TIME ZONE", "DATETIME", "DATE")

TIMESTAMP_TZ = "TIMESTAMP WITH TIME ZONE"
"""The type code of timestamp columns (their values are aware UTC datetimes)."""


def type_code(declared: str | None) -> str | None:
    """The ``description`` type code of a column declared ``declared`` (None: an expression)."""
    code = (declared or "").upper() or None
    return TIMESTAMP_TZ if code == "TIMESTAMP" else code
ROWID = DBAPITypeObject("ROWID", "ROWID")

Date = dt.date
Time = dt.time
Timestamp = dt.datetime


def DateFromTicks(ticks: float) -> dt.date:  # noqa: N802 - PEP 249 name
    return Date(*time.gmtime(ticks)[:3])


def TimeFromTicks(ticks: float) -> dt.time:  # noqa: N802 - PEP 249 name
    return Time(*time.gmtime(ticks)[3:6])


def TimestampFromTicks(ticks: float) -> dt.datetime:  # noqa: N802 - PEP 249 name
    return dt.datetime.fromtimestamp(ticks, dt.timezone.utc)


def Binary(value: Any) -> bytes:  # noqa: N802 - PEP 249 name
    return bytes(value)


__all__ = [
    "BINARY",
    "DATETIME",
    "NUMBER",
    "ROWID",
    "STRING",
    "TIMESTAMP_TZ",
    "Binary",
    "DBAPITypeObject",
    "Date",
    "DateFromTicks",
    "Time",
    "TimeFromTicks",
    "Timestamp",
    "TimestampFromTicks",
    "type_code",
]
