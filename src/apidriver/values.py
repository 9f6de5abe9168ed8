"""Conversions between API JSON values, SQLite values and Python values.

Timestamps: every timestamp column holds UTC text in SQLite's own format,
``YYYY-MM-DD HH:MM:SS`` (plus ``.ffffff`` only when there are microseconds),
the format ``datetime('now', '-1 hour')`` produces, whether the value came
from the API or from a bound Python ``datetime`` (aware ones are converted to
UTC, naive ones are taken as UTC). Timestamp columns are declared with the
``ISO8601`` collation (:func:`iso8601_collation`): SQLite compares them with
any text as instants, so ``created_at > '2026-12-01T20:00:00Z'`` (or
``+02:00``, ``T`` or a space, no zone for UTC, a date alone for midnight UTC)
means what it says, and ordering is unchanged.
"""

from __future__ import annotations

import datetime as dt
import functools
import json
import math
import os
import re
import uuid
from collections.abc import Callable
from decimal import Decimal
from typing import Any

import orjson

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
    text = text.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    value = dt.datetime.fromisoformat(text)
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


ISO8601 = "ISO8601"  # the collation of timestamp columns


def _stored(text: str) -> bool:
    """Whether ``text`` is in the stored format (compared as is, the fast path)."""
    return (
        (len(text) == 19 or (len(text) == 26 and text[19] == "."))
        and text[4] == "-"
        and text[7] == "-"
        and text[10] == " "
        and text[13] == ":"
        and text[16] == ":"
        and text[:4].isdigit()
    )


stored_timestamp = _stored  # for the engine's sorting (the collation's own fast path)


@functools.lru_cache(maxsize=8192)
def _instant_text(text: str) -> str | None:
    try:
        return format_timestamp(parse_timestamp(text))
    except (ValueError, OverflowError):
        return None


def instant_key(text: str) -> tuple[int, str]:
    """How the ISO8601 collation orders ``text``: timestamps by instant, before any other text."""
    if _stored(text):
        return (0, text)
    instant = _instant_text(text)
    return (0, instant) if instant is not None else (1, text)


def iso8601_collation(a: str, b: str) -> int:
    """SQLite collation of timestamp columns: ISO 8601 texts compare as the instants they name."""
    if _stored(a) and _stored(b):
        return -1 if a < b else 1 if a > b else 0
    ka, kb = instant_key(a), instant_key(b)
    return -1 if ka < kb else 1 if ka > kb else 0


def api_timestamp(value: Any) -> str | None:
    """An API timestamp (``2020-12-17T05:34:14+00:00``) in the stored format."""
    if value is None or value == "":
        return None
    if type(value) is str:
        fast = _utc_text(value)
        if fast is not None:
            return fast
    return format_timestamp(parse_timestamp(str(value)))


def _utc_text(text: str) -> str | None:
    """The stored form of a UTC timestamp as APIs write it (``...T05:34:14Z``, ``+00:00``, with
    ``.fff`` or ``.ffffff``) by slicing, or None for any other form (parsed and formatted instead).

    Gives exactly what parsing and formatting give: the text is still validated by
    ``fromisoformat`` (a C function, a tenth of the full path), and only years 1000-2999
    are taken, whose ``strftime`` form is the text's own four digits.
    """
    n = len(text)
    if n < 20 or text[0] not in "12" or text[10] not in "T ":
        return None
    if text[-1] == "Z":
        end = n - 1
    elif text.endswith("+00:00"):
        end = n - 6
    else:
        return None
    if end == 19:
        fraction = ""
    elif end == 26 and text[19] == ".":
        fraction = text[20:26]
    elif end == 23 and text[19] == ".":
        fraction = text[20:23] + "000"
    else:
        return None
    try:
        dt.datetime.fromisoformat(text)
    except ValueError:
        return None
    out = text[:10] + " " + text[11:19]
    return out + "." + fraction if fraction and fraction != "000000" else out


def stored_to_datetime(text: str) -> dt.datetime | str:
    """A TIMESTAMP cell as Python gets it: an aware UTC datetime, or the text if it is none."""
    if (len(text) == 19 or len(text) == 26) and text[10] == " " and text[0] in "12":
        try:
            return dt.datetime.fromisoformat(text + "+00:00")  # tzinfo is datetime.timezone.utc
        except ValueError:
            pass
    try:
        return parse_timestamp(text)
    except ValueError:
        return text


# orjson spells a float differently from Python only below 1e-4: with a one-digit negative
# exponent (2.5e-7; Python: 2.5e-07) or as a plain decimal (0.00001; Python: 1e-05). A match
# inside a string (rare: UUIDs never have a delimiter there) only costs the fallback.
_SHORT_EXPONENT = re.compile(rb"e-\d[,\]}]")


def json_text(value: Any) -> str:
    """``value`` as compact JSON text, exactly as ``json.dumps(value, ensure_ascii=False,
    separators=(",", ":"))`` writes it, made by orjson (4× faster than the stdlib on the JSON
    cells of a page of jobs with their tasks).

    Same bytes: orjson keeps key order and non-ASCII text as is, like the stdlib; what
    it cannot write (integers beyond 64 bits, non-string keys, lone surrogates) and
    floats below 1e-4, which it spells differently, go through ``json.dumps``. NaN and
    infinities (which orjson would write as null) cannot occur in API values: bodies
    are parsed by ``orjson.loads``, which rejects them.
    """
    if isinstance(value, float):
        return json.dumps(value)
    try:
        data = orjson.dumps(value)
    except TypeError:
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    if b"0.0000" in data or _SHORT_EXPONENT.search(data):
        return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
    return data.decode()


def to_sql(value: Any, sql_type: str) -> Any:
    """An API JSON value as the SQLite value of a column of ``sql_type``."""
    if value is None:
        return None
    if sql_type == TIMESTAMP:
        return api_timestamp(value)
    if sql_type == JSON:
        return json_text(value)
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
        return json_text(value)
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _text_value(value: Any) -> Any:
    return value if value is None or type(value) is str else to_sql(value, TEXT)


def _integer_value(value: Any) -> Any:
    return value if value is None or type(value) is int else to_sql(value, INTEGER)


def _real_value(value: Any) -> Any:
    return value if value is None or type(value) is float else to_sql(value, REAL)


def _boolean_value(value: Any) -> Any:
    return None if value is None else 1 if value else 0


def _json_value(value: Any) -> Any:
    return None if value is None else json_text(value)


_CONVERTERS: dict[str, Callable[[Any], Any]] = {
    TEXT: _text_value,
    INTEGER: _integer_value,
    REAL: _real_value,
    BOOLEAN: _boolean_value,
    JSON: _json_value,
    TIMESTAMP: api_timestamp,
}


def sql_converter(sql_type: str) -> Callable[[Any], Any]:
    """``to_sql`` for one declared type, without dispatching on the type at every cell."""
    return _CONVERTERS[sql_type]


def from_sql(value: Any, sql_type: str | None) -> Any:
    """A SQLite result value as the Python value DB-API users get."""
    if value is None or sql_type is None:
        return value
    if sql_type == TIMESTAMP and isinstance(value, str):
        return stored_to_datetime(value)
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
