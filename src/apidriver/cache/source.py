"""Rows of the cache for the cache tables: a SELECT on the replica database, values as a live query gives them.

Equality constraints the cache table was given are sent along as ``WHERE
column = value`` when the replica database compares the same way SQLite
would (text and whole numbers, binary collation); SQLite checks every row
again anyway, so what is sent only narrows the read. Values come back in the
driver's form: on a SQLite replica they are stored that way, on other
databases timestamps, JSON and booleans are converted back
(:meth:`~apidriver.replica.Target.from_target`). A value the database could
not hold exactly (text with U+0000 on PostgreSQL, an integer beyond 64 bits)
comes back from the row's ``_exact`` column; such a value is never sent as a
condition (the database holds something else in its place).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from ..engine.schema import Table
from ..replica.schema import EXACT, REMOVED_AT, SQLITE, SYNCED_AT
from ..replica.target import Target
from ..engine.compare import numeric_affinity
from ..values import INTEGER, TEXT, TIMESTAMP, instant_key, parse_timestamp

HIDDEN = (SYNCED_AT, REMOVED_AT)


class CacheSource:
    """Reads one replica database."""

    def __init__(self, target: Target) -> None:
        self.target = target

    def pushable(self, spec: Table, index: int) -> bool:
        """Whether ``column = ?`` on column ``index`` may be sent to the replica database."""
        return index < len(spec.columns) and spec.columns[index].type in (TEXT, INTEGER, TIMESTAMP)

    def _condition(self, column: sa.Column[Any], sql_type: str, value: Any) -> Any:
        """``column = value`` for the replica database, None to check nothing there (SQLite will).

        Only what the replica compares exactly as SQLite compares the cache
        table is sent: text with text (a number against a TEXT column may mean
        numeric affinity, as in a join on an INTEGER column), whole numbers
        with numbers, and timestamps as the stored UTC text of the instant any
        ISO 8601 text names (the columns' ISO8601 collation).
        """
        comparable = _comparable(sql_type, value)
        if comparable is _NEVER:
            return False
        if comparable is _UNKNOWN or not self.target.holds(sql_type, comparable):
            return None
        if sql_type == TIMESTAMP and self.target.kind != SQLITE:
            return column == parse_timestamp(comparable)
        return column == comparable

    def rows(self, spec: Table, wanted: Sequence[int], where: Sequence[tuple[int, Any]]) -> Iterator[list[Any]]:
        """Rows of ``spec`` with the values of columns ``wanted`` (indexes; past the spec's columns:
        ``_synced_at``, ``_removed_at``), in driver form, matching ``where`` as far as it was sent."""
        table = self.target.table(spec.name)
        names = [spec.columns[i].name if i < len(spec.columns) else HIDDEN[i - len(spec.columns)] for i in wanted]
        types = [spec.columns[i].type if i < len(spec.columns) else TIMESTAMP for i in wanted]
        statement = sa.select(*(table.c[n] for n in names), table.c[EXACT])
        for index, value in where:
            condition = self._condition(table.c[spec.columns[index].name], spec.columns[index].type, value)
            if condition is False:
                return
            if condition is not None:
                statement = statement.where(condition)
        convert = self.target.from_target
        plain = self.target.kind == SQLITE
        with self.target.read(f"reading the cached {spec.name}") as conn:
            result = conn.execute(statement)
            for row in result:
                values = list(row)
                exact = values.pop()
                if not plain:
                    values = [convert(t, v) for t, v in zip(types, values)]
                if exact is not None:
                    kept = self.target.exact_values(exact)
                    values = [kept.get(n, v) for n, v in zip(names, values)]
                yield values


class Lookups:
    """The lookups of one statement: the inner loop of a join asks a cache table by the same columns again
    and again. After a few such lookups the table is read once (the columns the statement uses) and
    indexed in memory for the rest of the statement; a new statement starts afresh, so nothing goes stale.
    """

    THRESHOLD = 8  # lookups answered one query each before the table is read whole
    MAX_ROWS = 500_000  # beyond this many rows, keep asking the replica database

    def __init__(self, source: CacheSource) -> None:
        self.source = source
        self._counts: dict[Any, int] = {}
        self._indexes: dict[Any, dict[tuple[Any, ...], list[list[Any]]] | None] = {}

    def rows(self, spec: Table, wanted: Sequence[int], given: Sequence[int], values: Sequence[Any]) -> list[list[Any]] | None:
        """The rows whose ``given`` columns equal ``values`` (as SQLite compares them), or None: ask the database."""
        key = (spec.name, tuple(wanted), tuple(given))
        if key not in self._indexes:
            self._counts[key] = self._counts.get(key, 0) + 1
            if self._counts[key] <= self.THRESHOLD:
                return None
            self._indexes[key] = self._build(spec, wanted, given)
        index = self._indexes[key]
        if index is None:
            return None
        wanted_key = tuple(_comparable(spec.columns[c].type, v) for c, v in zip(given, values))
        if any(part is _NEVER for part in wanted_key):
            return []
        if any(part is _UNKNOWN for part in wanted_key):
            return None  # the database is asked without this condition, and SQLite decides
        return index.get(wanted_key, [])

    def _build(self, spec: Table, wanted: Sequence[int], given: Sequence[int]) -> dict[tuple[Any, ...], list[list[Any]]] | None:
        positions = [list(wanted).index(c) for c in given]
        index: dict[tuple[Any, ...], list[list[Any]]] = {}
        count = 0
        for row in self.source.rows(spec, wanted, []):
            count += 1
            if count > self.MAX_ROWS:
                return None
            index.setdefault(tuple(_comparable(spec.columns[c].type, row[p]) for c, p in zip(given, positions)), []).append(row)
        return index


_NEVER = object()  # a value equal to nothing (NULL, or what SQLite would never find equal)
_UNKNOWN = object()  # a value whose matches only SQLite can decide (rules the value does not show)


def _comparable(sql_type: str, value: Any) -> Any:
    """``value`` as the stored values it equals compare (so that dict and SQL equality are SQLite's)."""
    if value is None or isinstance(value, bytes):
        return _NEVER
    if sql_type == TEXT:
        return value if isinstance(value, str) else _UNKNOWN
    if sql_type == INTEGER:
        number = numeric_affinity(value)
        if isinstance(number, float) and number.is_integer():
            number = int(number)
        return number if isinstance(number, int) else _UNKNOWN
    if sql_type == TIMESTAMP:
        if not isinstance(value, str):
            return _UNKNOWN
        kind, text = instant_key(value)
        return text if kind == 0 else _UNKNOWN
    return _UNKNOWN
