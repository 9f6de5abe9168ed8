"""The APSW side: one module per connection, one virtual table per spec.

The table object keeps the plans its ``BestIndexObject`` chose in a list;
``idxNum`` is a plan's position in it (``idxStr`` is a readable description
for ``EXPLAIN QUERY PLAN``), so ``Filter`` gets the exact plan back without
serialising anything. Cursors compute column values lazily from the row
object, so unused columns cost nothing.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from typing import Any

import apsw

from .executor import Engine, StatementContext
from .rows import UNSET

_NO_ROWS: tuple[()] = ()
from .planner import Plan, plan
from .schema import Table


class RowIds:
    """Stable rowids for API keys, never colliding (UPDATE/DELETE get rowids only)."""

    def __init__(self) -> None:
        self._by_key: dict[tuple[str, Any], int] = {}
        self._by_id: dict[int, tuple[str, Any]] = {}

    def rowid(self, table: str, key: Any) -> int:
        k = (table, key)
        found = self._by_key.get(k)
        if found is None:
            found = len(self._by_key) + 1
            self._by_key[k] = found
            self._by_id[found] = k
        return found

    def key(self, rowid: int) -> tuple[str, Any]:
        return self._by_id[rowid]


class Module:
    def __init__(
        self,
        engine: Engine,
        context: Callable[[], StatementContext],
        rowids: RowIds,
        writer: Any = None,
        trust_order: bool = False,
    ) -> None:
        """``context`` returns the statement being prepared or stepped (see ``Cursor``)."""
        self.engine = engine
        self.context = context
        self.rowids = rowids
        self.writer = writer
        self.trust_order = trust_order

    def Create(self, connection: apsw.Connection, modulename: str, databasename: str, tablename: str, *args: str) -> tuple[str, VirtualTable]:  # noqa: N802
        spec = self.engine.table(tablename)
        return spec.create_sql(), VirtualTable(self, spec)

    Connect = Create


class VirtualTable:
    def __init__(self, module: Module, spec: Table) -> None:
        self.module = module
        self.spec = spec
        self.source = module.engine.source_of(spec) if spec.static is None else spec
        self.plans: list[Plan] = []
        self._plan_ids: dict[Plan, int] = {}
        self.cheap = module.engine.embedded_keys.get(self.source.name.lower(), frozenset())

    def BestIndexObject(self, info: apsw.IndexInfo) -> bool:  # noqa: N802
        context = self.module.context()
        embeds = frozenset(
            e.include
            for e in self.source.embeds
            if e.include and self.module.engine.reads(context.tables, e.table)
        )
        deleting = self.spec.name.lower() in context.deletes
        read = frozenset(context.columns.get(self.spec.name.lower(), ()))
        chosen, cost, rows = plan(
            self.spec, self.source, info, self.cheap, context.in_sets, embeds, deleting, self.module.trust_order, read,
            context.in_affinity,
        )
        idx = self._plan_ids.get(chosen)
        if idx is None:
            idx = len(self.plans)
            self.plans.append(chosen)
            self._plan_ids[chosen] = idx
        info.idxNum = idx
        info.idxStr = chosen.describe()
        info.estimatedCost = cost
        info.estimatedRows = rows
        return True

    def Open(self) -> Cursor:  # noqa: N802
        return Cursor(self)

    def Disconnect(self) -> None:  # noqa: N802
        pass

    Destroy = Disconnect

    # Writes go to the connection's Writer (engine/writes.py).
    def UpdateInsertRow(self, rowid: int | None, fields: tuple[Any, ...]) -> int:  # noqa: N802
        return int(self.module.writer.insert(self.spec, fields))

    def UpdateDeleteRow(self, rowid: int) -> None:  # noqa: N802
        self.module.writer.delete(self.spec, rowid)

    def UpdateChangeRow(self, rowid: int, newrowid: int, fields: tuple[Any, ...]) -> None:  # noqa: N802
        self.module.writer.update(self.spec)


class Cursor:
    """Hands SQLite the rows of one table, a page at a time (``Engine.batches``).

    Each row's values were converted when its page arrived (only the columns
    the plan uses), so ``Column`` returns a value that is already there; rows
    are kept in lists and ``Next`` only moves an index. While it holds rows the
    cursor is the statement's current scan of its table for the look-ahead
    (``engine.lookahead``): ``data`` and ``position`` say which row SQLite has.
    """

    def __init__(self, table: VirtualTable) -> None:
        self.table = table
        self.spec = table.spec
        self.columns = table.spec.columns
        self._batches: Iterator[tuple[list[Mapping[str, Any]], list[tuple[Any, ...]]]] | None = None  # a generator
        self._context: StatementContext | None = None
        self.data: list[Mapping[str, Any]] = []
        self.position = 0
        self._values: list[tuple[Any, ...]] = []
        self._count = 0  # where its rows end in data (a lookup's are a window on its page's rows)
        self.values: tuple[Any, ...] | None = None
        self._filtered = 0

    def Filter(self, indexnum: int, indexname: str, constraintargs: tuple[Any, ...]) -> None:  # noqa: N802
        self.Close()
        module = self.table.module
        chosen = self.table.plans[indexnum]
        repeat = self._filtered > 0  # an inner loop filtering again: a lookup
        self._filtered += 1
        context = self._context = module.context()
        hit = module.engine.looked_up(context, self.spec, chosen, constraintargs)
        if hit is not None:  # the inner loop of a join, answered from what the statement holds
            rows, values, start, end = hit  # a window on the rows of its page: rows[start:end]
            if start < end:
                self.data, self._values, self._count, self.position = rows, values, end, start
                self.values = values[start]
            return
        self._batches = module.engine.batches(context, self.spec, chosen, constraintargs, repeat, looked=True)
        self._advance()

    def _show(self, rows: list[Mapping[str, Any]], values: list[tuple[Any, ...]], context: StatementContext) -> None:
        self.data, self._values, self._count, self.position = rows, values, len(rows), 0
        self.values = values[0]
        context.scans[self.spec.name] = self
        if context.links:
            context.page_arrived(self.spec.name, rows)

    def _advance(self) -> None:
        """On to the next page of rows (or the end)."""
        if self._batches is not None:
            for rows, values in self._batches:
                if rows:
                    assert self._context is not None
                    self._show(rows, values, self._context)
                    return
        self._finish()

    def _finish(self) -> None:
        if self.values is None and not self._count:
            return
        self.values = None
        self.data, self._values, self._count, self.position = _NO_ROWS, _NO_ROWS, 0, 0  # type: ignore[assignment]
        context = self._context
        if context is not None and context.scans.get(self.spec.name) is self:
            del context.scans[self.spec.name]

    def upcoming(self) -> list[Mapping[str, Any]]:
        """Rows of the current page not yet handed to SQLite (for the look-ahead)."""
        return self.data[self.position + 1 : self._count]

    def Eof(self) -> bool:  # noqa: N802
        return self.values is None

    def Next(self) -> None:  # noqa: N802
        position = self.position + 1
        if position < self._count:
            self.position = position
            self.values = self._values[position]
        elif self._batches is not None:
            self._advance()
        else:
            self._finish()

    def Column(self, number: int) -> Any:  # noqa: N802
        value = self.values[number]  # type: ignore[index]  # values[-1] is never set: the rowid
        if value is UNSET:
            return self._convert(number)
        return value

    def _convert(self, number: int) -> Any:
        """A value the plan did not ask for (SQLite's rowid, or a column outside ``colUsed``)."""
        if number < 0:
            return self.Rowid()
        return self.columns[number].value(self.data[self.position])

    def Rowid(self) -> int:  # noqa: N802
        row = self.data[self.position]
        key = self.spec.key_of(row) if self.spec.key else (id(row),)
        return self.table.module.rowids.rowid(self.spec.name, key[0] if len(key) == 1 else key)

    def Close(self) -> None:  # noqa: N802
        if self._batches is not None:
            self._batches.close()  # type: ignore[attr-defined]  # a generator
            self._batches = None
        self._finish()
