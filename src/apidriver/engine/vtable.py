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
            self.spec, self.source, info, self.cheap, context.in_sets, embeds, deleting, self.module.trust_order, read
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
    def __init__(self, table: VirtualTable) -> None:
        self.table = table
        self.spec = table.spec
        self.columns = table.spec.columns
        self._rows: Iterator[Mapping[str, Any]] | None = None
        self.row: Mapping[str, Any] | None = None
        self._values: dict[int, Any] = {}
        self._filtered = 0

    def Filter(self, indexnum: int, indexname: str, constraintargs: tuple[Any, ...]) -> None:  # noqa: N802
        self.Close()
        module = self.table.module
        chosen = self.table.plans[indexnum]
        repeat = self._filtered > 0  # an inner loop filtering again: a lookup
        self._filtered += 1
        self._rows = module.engine.objects(module.context(), self.spec, chosen, constraintargs, repeat)
        self.Next()

    def Eof(self) -> bool:  # noqa: N802
        return self.row is None

    def Next(self) -> None:  # noqa: N802
        self._values = {}
        assert self._rows is not None
        self.row = next(self._rows, None)

    def Column(self, number: int) -> Any:  # noqa: N802
        if number < 0:
            return self.Rowid()
        try:
            return self._values[number]
        except KeyError:
            assert self.row is not None
            value = self._values[number] = self.columns[number].value(self.row)
            return value

    def Rowid(self) -> int:  # noqa: N802
        assert self.row is not None
        key = self.spec.key_of(self.row) if self.spec.key else (id(self.row),)
        return self.table.module.rowids.rowid(self.spec.name, key[0] if len(key) == 1 else key)

    def Close(self) -> None:  # noqa: N802
        if self._rows is not None:
            close = getattr(self._rows, "close", None)
            if close is not None:
                close()
            self._rows = None
        self.row = None
