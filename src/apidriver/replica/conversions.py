"""Values as a replica database stores them, and back: what a database of one kind holds, and ``_exact``.

The driver's values are SQLite's (text timestamps, JSON text, 0/1
booleans); SQLite stores them as they are, PostgreSQL and other databases as
their native types (``timestamptz``, ``jsonb``, ``boolean``, ``bigint``,
``double precision``). A value a database cannot hold exactly (an integer
beyond 64 bits, text with U+0000 or a lone surrogate) is stored as the
closest value it can hold, or NULL, and kept exactly in the row's ``_exact``
column (see :mod:`.schema`, :meth:`Conversions.row_to_target`), so that
reading the replica gives what a live query gives.
"""

from __future__ import annotations

import datetime as dt
import json
import math
from collections.abc import Sequence
from typing import Any

from .. import exceptions as exc
from ..values import (
    BOOLEAN,
    INTEGER,
    JSON,
    REAL,
    TEXT,
    TIMESTAMP,
    format_timestamp,
    parse_timestamp,
)
from .schema import SQLITE

INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


class Conversions:
    """Driver (SQLite) values as a database of ``kind`` stores them, and back (``schema.SQLITE``, ``POSTGRESQL``, ``GENERIC``)."""

    def __init__(self, kind: str) -> None:
        self.kind = kind

    def timestamp(self, value: dt.datetime) -> Any:
        """A time as this target stores it (``_synced_at``, ``_removed_at``)."""
        return format_timestamp(value) if self.kind == SQLITE else value.astimezone(dt.timezone.utc)

    def to_target(self, sql_type: str, value: Any) -> Any:
        """A driver (SQLite) value of a column of ``sql_type`` as this target stores it (best effort:
        :meth:`row_to_target` keeps what a target cannot hold exactly in ``_exact``)."""
        if value is None or self.kind == SQLITE:
            return value
        if sql_type == TIMESTAMP:
            return parse_timestamp(str(value))
        if sql_type == JSON:
            return json.loads(value) if isinstance(value, str) else value
        if sql_type == BOOLEAN:
            return bool(value)
        if sql_type == INTEGER and not isinstance(value, int):
            raise exc.DataError(f"The API sent {value!r} where a whole number belongs; the replica cannot store it.")
        if sql_type == REAL:
            try:
                return float(value)
            except (TypeError, ValueError):
                raise exc.DataError(f"The API sent {value!r} where a number belongs; the replica cannot store it.") from None
        return value

    def _exactly(self, sql_type: str, value: Any) -> Any:
        """``value`` as this target stores it; :class:`ValueError` if it cannot hold it exactly."""
        if value is None:
            return None
        if self.kind == SQLITE:
            if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
                raise ValueError("an integer beyond 64 bits")
            if isinstance(value, str) and not value.isascii():
                value.encode("utf-8")  # a lone surrogate raises UnicodeEncodeError (a ValueError)
            return value
        if isinstance(value, str) and ("\x00" in value or not (value.isascii() or _utf8(value))):
            raise ValueError("text with U+0000 or a lone surrogate")
        if sql_type == TIMESTAMP:
            return parse_timestamp(str(value))
        if sql_type == JSON:
            if isinstance(value, str) and "\\u0000" in value:
                raise ValueError("JSON with U+0000")
            return json.loads(value) if isinstance(value, str) else value
        if sql_type == BOOLEAN:
            if value not in (0, 1):
                raise ValueError("not a boolean")
            return bool(value)
        if sql_type == INTEGER:
            if not isinstance(value, int) or isinstance(value, bool) or not INT64_MIN <= value <= INT64_MAX:
                raise ValueError("not a 64-bit integer")
            return value
        if sql_type == REAL:
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError("not a number")
            return float(value)
        return value

    def holds(self, sql_type: str, value: Any) -> bool:
        """Whether this target holds ``value`` exactly in a column of ``sql_type`` (else it is in ``_exact``)."""
        try:
            self._exactly(sql_type, value)
        except (ValueError, TypeError, OverflowError):
            return False
        return True

    def row_to_target(self, columns: Sequence[tuple[str, str]], row: Sequence[Any]) -> tuple[list[Any], str | None]:
        """A row of driver values (``columns``: name and type of each) as this target stores it, and
        its ``_exact`` text (None: every value fits).

        A value the target cannot hold exactly is
        stored as the closest value it can hold (text with U+0000 and lone
        surrogates replaced by U+FFFD) or NULL, and kept exactly in ``_exact``:
        a JSON object (ASCII) of column name → value.
        """
        if self.kind == SQLITE and not any(
            (type(v) is int and not INT64_MIN <= v <= INT64_MAX) or (type(v) is str and not v.isascii() and not _utf8(v)) for v in row
        ):
            return list(row), None  # the common case: SQLite holds the driver's values as they are
        out: list[Any] = []
        exact: dict[str, Any] | None = None
        for (name, sql_type), value in zip(columns, row):
            try:
                out.append(self._exactly(sql_type, value))
            except (ValueError, TypeError, OverflowError):
                if exact is None:
                    exact = {}
                exact[name] = value
                out.append(self._closest(sql_type, value))
        return out, (None if exact is None else json.dumps(exact, ensure_ascii=True, separators=(",", ":")))

    def _closest(self, sql_type: str, value: Any) -> Any:
        """What a column holds in place of a value it cannot hold exactly (the exact one is in ``_exact``)."""
        if not isinstance(value, str) or sql_type not in (TEXT, JSON):
            return None
        text = _replace_unholdable(value)
        if sql_type == TEXT or self.kind == SQLITE:
            return text
        try:
            return json.loads(text.replace("\\u0000", "\\ufffd"))
        except ValueError:
            return None

    @staticmethod
    def exact_values(exact: str | None) -> dict[str, Any]:
        """The exact values a row's ``_exact`` keeps, by column name."""
        if not exact:
            return {}
        values: dict[str, Any] = json.loads(exact)
        return values

    def from_target(self, sql_type: str, value: Any) -> Any:
        """A stored value as the driver's (SQLite) value: what a live query returns."""
        if value is None or self.kind == SQLITE:
            return value
        if sql_type == TIMESTAMP:
            if isinstance(value, dt.datetime):
                return format_timestamp(value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc))
            return format_timestamp(parse_timestamp(str(value)))
        if sql_type == JSON:
            if isinstance(value, str):
                value = json.loads(value)
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        if sql_type == BOOLEAN:
            return 1 if value else 0
        return value


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _replace_unholdable(text: str) -> str:
    """``text`` with U+0000 and lone surrogates replaced by U+FFFD."""
    return "".join("\ufffd" if c == "\x00" or "\ud800" <= c <= "\udfff" else c for c in text)


def as_utc(value: Any) -> dt.datetime | None:
    """A stored time (our UTC text on SQLite, a datetime elsewhere) as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)
    return parse_timestamp(str(value))
