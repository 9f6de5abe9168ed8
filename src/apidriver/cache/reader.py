"""SQLite reads a SQLite cache itself: statements that only read the cache run on views over the replica.

A cache table is a virtual table: SQLite asks Python for every cell, which
costs many times what reading the file costs. With ``Offline=true`` or
``AutoCache=true`` and a SQLite cache, a statement that reads nothing but
the plain-named cache tables, by their columns, runs instead on a second
SQLite connection of the driver's (the *reader*) that has the replica file
attached and, under each table's name, a TEMP VIEW with the same columns,
the same declared types (so the same affinities) and the timestamp columns'
``ISO8601`` collation. The replica holds exactly the values a live query
returns (see :mod:`apidriver.replica.schema`), so the answers are the same;
the differential harness checks it over the cache too.

The decision is made once per SQL text, before anything runs, from what
SQLite itself reports while preparing the statement on the driver's
connection (its authorizer: every table and column read, every function
called, nothing but reads) and on the reader (it prepares the statement
with the same result columns). Everything else runs as before on the cache
tables: the hidden ``_synced_at``/``_removed_at`` columns, ``cache.<Table>``,
``live.<Table>``, writes, temporary tables, functions the application
registered, ``rowid``. With AutoCache, the tables a routed statement reads
are brought up to date first, as the cache tables' ``Filter`` does.

The result's description comes from the driver's connection (the views'
timestamp columns are expressions, whose declared type SQLite does not
report), so Python gets the same types as from the cache tables.
"""

from __future__ import annotations

import os
from collections import OrderedDict
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import apsw

from ..engine.schema import Table
from ..engine.sqlite_side import (
    PROGRESS_STEPS,
    READ_ACTIONS,
    TABLE_FUNCTIONS,
    Description,
    Route,
    defined_by_the_application,
    described,
    reads_only,
)
from ..values import ISO8601, TIMESTAMP, iso8601_collation
from .source import HIDDEN

if TYPE_CHECKING:
    from .attach import Cache



class _Abort(Exception):
    """Stops a statement prepared only to be looked at."""


class Reader:
    """The reader connection of one SQLite cache, and which statements it may run."""

    def __init__(self, cache: Cache, path: str, cancelled: Callable[[], bool]) -> None:
        self.cache = cache
        self.db = apsw.Connection(":memory:")
        self.db.create_collation(ISO8601, iso8601_collation)
        self.db.set_progress_handler(cancelled, PROGRESS_STEPS)
        self.db.execute("ATTACH ? AS apidriver_replica", (os.path.abspath(path),))
        self.tables: dict[str, Table] = {}
        for spec in cache.specs.values():
            present = {str(row[1]).lower() for row in self.db.execute(f'PRAGMA apidriver_replica.table_info("{spec.name}")')}
            if all(c.name.lower() in present for c in spec.columns):
                self.db.execute(view_sql(spec))
                self.tables[spec.name.lower()] = spec
        self.db.authorizer = reads_only

    def close(self) -> None:
        self.db.close()


class Routes:
    """Which statements of a connection run on the reader, decided once per SQL text."""

    def __init__(self, cache: Cache, make_reader: Callable[[], Reader | None]) -> None:
        self.cache = cache
        self._make_reader = make_reader
        self._decided: OrderedDict[str, tuple[Description, tuple[Table, ...]] | None] = OrderedDict()

    def forget(self) -> None:
        """Names may resolve to other objects now (a schema change on the driver's connection)."""
        self._decided.clear()

    def route(self, main: apsw.Connection, sql: str, bindings: Any) -> Route | None:
        """Where ``sql`` runs on the reader, or None: run it on the driver's connection. With AutoCache,
        the tables it reads are brought up to date first."""
        try:
            decided = self._decided[sql]
        except KeyError:
            decided = self._decided[sql] = self._decide(main, sql, bindings)
            while len(self._decided) > 512:
                self._decided.popitem(last=False)
        else:
            self._decided.move_to_end(sql)
        if decided is None:
            return None
        reader = self._make_reader()
        if reader is None:
            return None
        description, tables = decided
        for spec in tables:
            self.cache.before_read(spec)  # AutoCache: bring the tables up to date first
        return Route(reader.db, description, tables)

    def _decide(self, main: apsw.Connection, sql: str, bindings: Any) -> tuple[Description, tuple[Table, ...]] | None:
        reads: list[tuple[int, str | None, str | None, str | None]] = []
        original = main.authorizer

        def record(action: int, a: str | None, b: str | None, database: str | None, trigger: str | None) -> int:
            reads.append((action, a, b, database))
            return original(action, a, b, database, trigger) if original is not None else apsw.SQLITE_OK

        connection = self.cache.connection
        main.authorizer = record
        try:
            with connection.probing():  # what the probe's planning notes goes nowhere
                theirs = described(main, sql, bindings)
        finally:
            main.authorizer = original
        if theirs is None:
            return None
        tables: set[str] = set()
        functions: set[str] = set()
        for action, a, b, database in reads:
            if action not in READ_ACTIONS:
                return None
            if action == apsw.SQLITE_FUNCTION:
                functions.add((b or "").lower())
            elif action == apsw.SQLITE_READ:
                name = (a or "").lower()
                if name in TABLE_FUNCTIONS and database == "main":
                    continue
                # A table read for its rows alone (count(*)) is reported with no column and no database:
                # the reader's preparing the statement below settles which table the name is.
                column = (b or "").lower()
                if name not in self.cache.specs or column in HIDDEN or database != ("main" if column else None):
                    return None
                tables.add(name)
        if not tables or (functions and functions & defined_by_the_application(main)):
            return None
        reader = self._make_reader()
        if reader is None or not tables <= set(reader.tables):
            return None
        mine = described(reader.db, sql, bindings)
        if mine is None or [name for name, _ in mine] != [name for name, _ in theirs]:
            return None
        return theirs, tuple(reader.tables[name] for name in sorted(tables))


def view_sql(spec: Table) -> str:
    """The reader's view of a replica table: its API columns, timestamps with their collation."""
    columns = ", ".join(
        f'"{c.name}" COLLATE {ISO8601} AS "{c.name}"' if c.type == TIMESTAMP else f'"{c.name}"' for c in spec.columns
    )
    return f'CREATE TEMP VIEW "{spec.name}" AS SELECT {columns} FROM apidriver_replica."{spec.name}"'



__all__ = ["Reader", "Routes", "view_sql"]
