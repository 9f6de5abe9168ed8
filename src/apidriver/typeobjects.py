"""PEP 249 type objects and constructors.

``Cursor.description`` reports a column's declared SQL type as its type code
(``"TEXT"``, ``"INTEGER"``, ``"REAL"``, ``"BOOLEAN"``, ``"JSON"``, ``"BLOB"``,
or whatever a local table declares, such as ``"VARCHAR(20)"``), except that
timestamp columns say ``"TIMESTAMP WITH TIME ZONE"``: their values are aware
UTC datetimes, and tools that choose a column type from the type code
(polars, which reads plain ``TIMESTAMP`` as naive) then keep the zone.

Each type object compares equal to the codes of its kind, so
``description[i][1] == apidriver.STRING`` works as PEP 249 says for any
declared type. The kind follows SQLite's column affinity rules
(https://sqlite.org/datatype3.html#determination_of_column_affinity), which
decide what SQLite stores: ``VARCHAR(20)`` and ``CLOB`` are STRING, ``BIGINT``,
``DECIMAL(10,2)`` and ``DOUBLE`` are NUMBER, ``BLOB`` is BINARY. Two
exceptions come first: names of dates and times (``DATE``, ``TIME``,
``DATETIME``, ``TIMESTAMP...``) are DATETIME, and ``JSON`` is STRING (its
values are JSON text, though SQLite's rules give it NUMERIC affinity).
"""

from __future__ import annotations

import datetime as dt
import re
import time
from typing import Any

_DATE_TIME = re.compile(r"(DATE|TIME|DATETIME|SMALLDATETIME|DATETIME2|DATETIMEOFFSET|TIMESTAMP|TIMESTAMPTZ|TIMETZ)\b")


def kind(code: str) -> str:
    """The type object name (STRING, BINARY, NUMBER, DATETIME, ROWID) a type code belongs to.

    SQLite's affinity rules, in their order, after the two exceptions the
    module docstring names.
    """
    declared = code.strip().upper()
    if declared == "ROWID":
        return "ROWID"
    if _DATE_TIME.match(declared):
        return "DATETIME"
    if declared == "JSON":
        return "STRING"
    if "INT" in declared:
        return "NUMBER"
    if "CHAR" in declared or "CLOB" in declared or "TEXT" in declared:
        return "STRING"
    if "BLOB" in declared or not declared:
        return "BINARY"
    return "NUMBER"  # REAL, FLOA, DOUB: REAL affinity; anything else: NUMERIC


class DBAPITypeObject:
    """A PEP 249 type object: equal to every type code of its kind (see :func:`kind`)."""

    def __init__(self, name: str) -> None:
        self.name = name

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DBAPITypeObject):
            return self is other
        return isinstance(other, str) and kind(other) == self.name

    def __hash__(self) -> int:
        return hash(self.name)

    def __repr__(self) -> str:
        return f"<DBAPITypeObject {self.name}>"


STRING = DBAPITypeObject("STRING")
BINARY = DBAPITypeObject("BINARY")
NUMBER = DBAPITypeObject("NUMBER")
DATETIME = DBAPITypeObject("DATETIME")
ROWID = DBAPITypeObject("ROWID")

TIMESTAMP_TZ = "TIMESTAMP WITH TIME ZONE"
"""The type code of timestamp columns (their values are aware UTC datetimes)."""


def type_code(declared: str | None) -> str | None:
    """The ``description`` type code of a column declared ``declared`` (None: an expression)."""
    code = (declared or "").upper() or None
    return TIMESTAMP_TZ if code == "TIMESTAMP" else code


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
    "kind",
    "type_code",
]
