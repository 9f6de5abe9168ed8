"""Conversions between API JSON values, SQLite values and Python values.

Timestamps: every timestamp column holds UTC text in SQLite's own format,
``YYYY-MM-DD HH:MM:SS`` (plus ``.ffffff`` only when there are microseconds),
the format ``datetime('now', '-1 hour')`` produces. Text comparison then
orders timestamps correctly, whether they came from the API, from a bound
Python ``datetime`` (aware ones are converted to UTC, naive ones are taken as
UTC) or from SQLite's date functions.
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
import uuid
from decimal import Decimal
from typing import Any

from .exceptions import DataError, ProgrammingError

INT64 = (-(2**63), 2**63 - 1)

UTC = dt.timezone.utc

# Declared SQL types of columns.
TEXT = "TEXT"
INTEGER = "INTEGER"
REAL = "REAL"
BOOLEAN = "BOOLEAN"
TIMESTAMP = "TIMESTAMP"
JSON = "JSON"
COLUMN_TYPES = (TEXT, INTEGER, REAL, BOOLEAN, TIMESTAMP, JSON)


def format_timestamp(value: dt.datetime) -> str:
    """A datetime as UTC text in the one format every timestamp column uses."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%d %H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text


def parse_timestamp(text: str) -> dt.datetime:
    """Our stored text (or any ISO 8601 form) back to an aware UTC datetime."""
    value = dt.datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def api_timestamp(value: Any) -> str | None:
    """An API timestamp (``2020-12-17T05:34:14+00:00``) in the stored format."""
    if value is None or value == "":
        return None
    return format_timestamp(parse_timestamp(str(value)))


def to_sql(value: Any, sql_type: str) -> Any:
    """An API JSON value as the SQLite value of a column of ``sql_type``."""
    if value is None:
        return None
    if sql_type == TIMESTAMP:
        return api_timestamp(value)
    if sql_type == JSON:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if sql_type == BOOLEAN:
        return 1 if value else 0
    if sql_type == INTEGER:
        if isinstance(value, bool):
            return int(value)
        if isinstance(value, int):
            return value
        try:
            return int(value)
        except (TypeError, ValueError):
            return str(value)
    if sql_type == REAL:
        try:
            return float(value)
        except (TypeError, ValueError):
            return str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def from_sql(value: Any, sql_type: str | None) -> Any:
    """A SQLite result value as the Python value DB-API users get."""
    if value is None or sql_type is None:
        return value
    if sql_type == TIMESTAMP and isinstance(value, str):
        try:
            return parse_timestamp(value)
        except ValueError:
            return value
    if sql_type == BOOLEAN and isinstance(value, int):
        return bool(value)
    return value


def adapt_parameter(value: Any, position: str = "1") -> Any:
    """A Python parameter as a SQLite value (datetimes in the stored format).

    Refuses, with a DB-API error naming the parameter (``position``: ``1``
    or ``:name``), what SQLite cannot hold as given: integers beyond 64 bits,
    NaN (SQLite would store NULL), and types without one obvious SQL value
    (sets, complex numbers, arbitrary objects), which ``str()`` would bind as
    meaningless text. The value itself is never shown: it may be a secret.
    """
    if value is None or isinstance(value, (str, bytes)):
        return value
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, int):
        if not INT64[0] <= value <= INT64[1]:
            raise DataError(
                f"The parameter {position} is an integer outside SQLite's 64-bit range (-2**63 to 2**63-1); "
                "pass it as text (str(value)) to compare it as text."
            )
        return int(value)
    if isinstance(value, float):
        if math.isnan(value):
            raise DataError(f"The parameter {position} is NaN, which SQLite cannot store (it would become NULL); pass None for NULL.")
        return float(value)
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    if isinstance(value, dt.date):
        return value.isoformat()
    if isinstance(value, dt.time):
        return value.isoformat()
    if isinstance(value, (Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    if isinstance(value, (bytearray, memoryview)):
        return bytes(value)
    if isinstance(value, (dict, list, tuple)):
        try:
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"), default=_json_default, allow_nan=False)
        except (TypeError, ValueError) as error:
            raise ProgrammingError(f"The parameter {position} is a {type(value).__name__} that cannot be written as JSON: {error}.") from None
    raise ProgrammingError(
        f"The parameter {position} is a {type(value).__name__}, which SQL cannot represent; pass None, a str, int, float, "
        "bytes, Decimal, UUID, a date/time, or a dict/list (sent as JSON)."
    )


def _json_default(value: Any) -> Any:
    """Values inside a dict/list parameter that JSON has no type for, but one obvious text."""
    if isinstance(value, (dt.date, dt.time, Decimal, uuid.UUID)):
        return str(value)
    if isinstance(value, os.PathLike):
        return os.fspath(value)
    raise TypeError(f"a {type(value).__name__} inside it has no JSON form")


def text_affinity(value: Any) -> str | None:
    """``value`` as SQLite compares it with a TEXT column (None: never equal)."""
    if value is None or isinstance(value, bytes):
        return None
    if isinstance(value, float):
        if not math.isfinite(value):
            return None if math.isnan(value) else ("Inf" if value > 0 else "-Inf")  # SQLite's text for them
        return repr(value) if value != int(value) or abs(value) >= 1e15 else f"{value:.1f}"
    return str(value)


def integer_affinity(value: Any) -> int | float | str | None:
    """``value`` as SQLite compares it with an INTEGER column."""
    if value is None or isinstance(value, bytes):
        return None
    if isinstance(value, (int, float)):
        return value
    text = str(value).strip()
    try:
        return int(text)
    except ValueError:
        try:
            number = float(text)
        except ValueError:
            return str(value)
        return int(number) if number.is_integer() else number
