"""Cache tables: virtual tables with the API tables' names and columns whose rows come from the cache.

Declared with the profile's own ``CREATE TABLE`` (same column names and
types as the live tables), plus two hidden columns, ``_synced_at`` and
``_removed_at``: ``SELECT *`` shows the same columns as a live query, and
``WHERE _removed_at IS NOT NULL`` finds what the API has forgotten.
Writes to the plain names go to the API as on a live table (the cache is not
changed by them), or are refused with ``Offline=true``; ``cache.<Table>`` is
written only by syncs, ``REPLICATE`` and ``CACHE``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any

import apsw

from ..engine.schema import Table
from .source import HIDDEN, CacheSource

if TYPE_CHECKING:
    from .attach import Cache

EQ = apsw.SQLITE_INDEX_CONSTRAINT_EQ
Plan = tuple[tuple[int, ...], tuple[int, ...]]  # (columns given by equality, in argv order; columns read)


class CacheModule:
    def __init__(self, cache: Cache) -> None:
        self.cache = cache

    def Create(self, connection: apsw.Connection, modulename: str, databasename: str, tablename: str, *args: str) -> tuple[str, CacheTable]:  # noqa: N802
        spec = self.cache.spec(tablename)
        hidden = ", ".join(f'"{name}" TIMESTAMP HIDDEN' for name in HIDDEN)
        schema = spec.create_sql()  # CREATE TABLE x(<columns>[, PRIMARY KEY (...)])
        if ", PRIMARY KEY" in schema:
            schema = schema.replace(", PRIMARY KEY", f", {hidden}, PRIMARY KEY", 1)
        else:
            schema = schema[: schema.rindex(")")] + f", {hidden})"
        return schema, CacheTable(self.cache, spec, databasename)

    Connect = Create


class CacheTable:
    def __init__(self, cache: Cache, spec: Table, schema: str) -> None:
        self.cache = cache
        self.spec = spec
        self.schema = schema  # "main": the plain name (AutoCache, Offline); "cache": cache.<Table>
        self.plans: list[Plan] = []
        self.width = len(spec.columns) + len(HIDDEN)
        self.keys = tuple(spec.index(k) for k in spec.key)

    def BestIndexObject(self, info: apsw.IndexInfo) -> bool:  # noqa: N802
        source: CacheSource = self.cache.source
        given: list[int] = []
        for i in range(info.nConstraint):
            column = info.get_aConstraint_iColumn(i)
            if (
                info.get_aConstraint_op(i) != EQ
                or info.get_aConstraintUsage_in(i)  # SQLite evaluates IN itself (see engine.planner.Arg.typed)
                or not info.get_aConstraint_usable(i)
                or column < 0
                or column in given
                or not source.pushable(self.spec, column)
                or (info.get_aConstraint_collation(i) or "BINARY").upper() != "BINARY"
            ):
                continue
            given.append(column)
            info.set_aConstraintUsage_argvIndex(i, len(given))
            info.set_aConstraintUsage_omit(i, False)  # SQLite checks again: what is sent only narrows
        used = sorted({c for c in info.colUsed if c < self.width} | set(self.keys) | set(given))
        if any(c >= 63 for c in info.colUsed):
            used = list(range(self.width))
        plan: Plan = (tuple(given), tuple(used))
        if plan not in self.plans:
            self.plans.append(plan)
        info.idxNum = self.plans.index(plan)
        info.idxStr = "cache" + ("" if not given else " where " + " and ".join(self.spec.columns[c].name for c in given))
        total = max(1, self.spec.estimated_rows)
        if given and set(self.keys) <= set(given):
            rows = 1
        elif given:
            rows = max(1, total // (10 ** len(given)))
        else:
            rows = total
        info.estimatedRows = rows
        info.estimatedCost = 10.0 + rows
        return True

    def Open(self) -> CacheCursor:  # noqa: N802
        return CacheCursor(self)

    def Disconnect(self) -> None:  # noqa: N802
        pass

    Destroy = Disconnect

    # Writes go to the API (the connection's Writer), as on the live table.
    def UpdateInsertRow(self, rowid: int | None, fields: tuple[Any, ...]) -> int:  # noqa: N802
        return int(self.cache.writer(self.spec, "INSERT", self.schema).insert(self.spec, fields[: len(self.spec.columns)]))

    def UpdateDeleteRow(self, rowid: int) -> None:  # noqa: N802
        self.cache.writer(self.spec, "DELETE", self.schema).delete(self.spec, rowid)

    def UpdateChangeRow(self, rowid: int, newrowid: int, fields: tuple[Any, ...]) -> None:  # noqa: N802
        self.cache.writer(self.spec, "UPDATE", self.schema).update(self.spec)


class CacheCursor:
    def __init__(self, table: CacheTable) -> None:
        self.table = table
        self._rows: Iterator[list[Any]] | None = None
        self.row: list[Any] | None = None
        self._positions: dict[int, int] = {}

    def Filter(self, indexnum: int, indexname: str, constraintargs: tuple[Any, ...]) -> None:  # noqa: N802
        self.Close()
        table = self.table
        given, used = table.plans[indexnum]
        cache = table.cache
        cache.before_read(table.spec)
        self._positions = {column: i for i, column in enumerate(used)}
        known = cache.lookups().rows(table.spec, used, given, constraintargs) if given else None
        if known is not None:
            self._rows = iter(known)
        else:
            self._rows = cache.source.rows(table.spec, used, list(zip(given, constraintargs)))
        self.Next()

    def Eof(self) -> bool:  # noqa: N802
        return self.row is None

    def Next(self) -> None:  # noqa: N802
        assert self._rows is not None
        self.row = next(self._rows, None)

    def Column(self, number: int) -> Any:  # noqa: N802
        if number < 0:
            return self.Rowid()
        assert self.row is not None
        position = self._positions.get(number)
        return None if position is None else self.row[position]

    def Rowid(self) -> int:  # noqa: N802
        assert self.row is not None
        table = self.table
        key = tuple(self.row[self._positions[k]] for k in table.keys)
        return table.cache.rowid(table.spec.name, key[0] if len(key) == 1 else key)

    def Close(self) -> None:  # noqa: N802
        rows, self._rows = self._rows, None
        close: Callable[[], None] | None = getattr(rows, "close", None)
        if close is not None:
            close()
        self.row = None
