"""Rows of the cache for the cache tables: a SELECT on the replica database, values as a live query gives them.

Equality constraints the cache table was given are sent along as ``WHERE
column = value`` when the replica database compares the same way SQLite
would (text and whole numbers, binary collation); SQLite checks every row
again anyway, so what is sent only narrows the read. Values come back in the
driver's form: on a SQLite replica they are stored that way, on other
databases timestamps, JSON and booleans are converted back
(:meth:`~apidriver.replica.Target.from_target`).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from typing import Any

import sqlalchemy as sa

from ..engine.schema import Table
from ..replica.schema import REMOVED_AT, SQLITE, SYNCED_AT
from ..replica.target import Target
from ..values import INTEGER, TEXT, TIMESTAMP, integer_affinity, parse_timestamp, text_affinity

HIDDEN = (SYNCED_AT, REMOVED_AT)


class CacheSource:
    """Reads one replica database."""

    def __init__(self, target: Target) -> None:
        self.target = target

    def pushable(self, spec: Table, index: int) -> bool:
        """Whether ``column = ?`` on column ``index`` may be sent to the replica database."""
        return index < len(spec.columns) and spec.columns[index].type in (TEXT, INTEGER, TIMESTAMP)

    def _condition(self, column: sa.Column[Any], sql_type: str, value: Any) -> Any:
        """``column = value`` for the replica database, None to check nothing there (SQLite will)."""
        if sql_type == TEXT:
            text = text_affinity(value)
            return False if text is None else column == text
        if sql_type == INTEGER:
            number = integer_affinity(value)
            if number is None:
                return False
            return column == number if isinstance(number, int) else None
        if sql_type == TIMESTAMP:
            if not isinstance(value, str):
                return False if value is None else None
            if self.target.kind == SQLITE:
                return column == value
            try:
                return column == parse_timestamp(value)
            except ValueError:
                return None
        return None

    def rows(self, spec: Table, wanted: Sequence[int], where: Sequence[tuple[int, Any]]) -> Iterator[list[Any]]:
        """Rows of ``spec`` with the values of columns ``wanted`` (indexes; past the spec's columns:
        ``_synced_at``, ``_removed_at``), in driver form, matching ``where`` as far as it was sent."""
        table = self.target.table(spec.name)
        names = [spec.columns[i].name if i < len(spec.columns) else HIDDEN[i - len(spec.columns)] for i in wanted]
        types = [spec.columns[i].type if i < len(spec.columns) else TIMESTAMP for i in wanted]
        statement = sa.select(*(table.c[n] for n in names))
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
                yield list(row) if plain else [convert(t, v) for t, v in zip(types, row)]
