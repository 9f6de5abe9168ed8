"""Copies: a statement over one table that a ``CacheTTL`` snapshot holds whole runs on a real SQLite table.

SQLite asks a virtual table for every row and every cell through Python:
APSW's per-call floor alone makes a minimal Python virtual table 2.5x plain
SQLite on ``SELECT *`` and 100x on ``count(*)``, which SQLite answers for a
real table without visiting rows. With ``CacheTTL``, a complete snapshot of
a table's whole list (``streams.Snapshot``) is every row the table has
until the snapshot expires, a write drops it, or ``clear_cache()`` runs.
So a statement that reads just that one table, in one SELECT, by its own
columns, with SQLite's own functions, planned as a read of the whole list
(no GET by key, no API filter: ``Shape.one_table``), runs instead on a
second SQLite connection of the driver's (the *copies*), where a plain table
of the same name, declared types and collations holds the snapshot's rows.
A statement that only sorts by timestamp columns runs on a third, where
they have no collation: the ISO8601 collation is Python, called at every
comparison, while SQLite sorts text in C, and on the stored form text order
is the order of the instants (every value is checked to be in it).

The answers are the same as the virtual table's:

- The rows are the ones the virtual table would read from the snapshot,
  with the same SQLite values (``rows.Batch``), inserted in the API's order,
  and the table has no index: a scan gives them in the order the virtual
  table does.
- The columns keep their declared types, so comparisons apply the same
  affinities. Storing may convert a value (a REAL column stores an integer
  as a real, a TIMESTAMP column, of NUMERIC affinity, stores ``'12'`` as
  12); the copy then counts each column's storage classes against the
  values given, and a table where any differs is not copied (its statements
  run on the virtual table).
- Each statement still shows the snapshot's pages in ``Cursor.requests``,
  marked cached, as the virtual table's reads do.

A copy is made by the first such statement after its snapshot was made, and
let go as soon as the snapshot is gone; tables of more than ``max_rows``
rows are not copied, and a copy that fails to be made is not used.
Everything else (joins, self-joins, subqueries, lookups by key, API
filters, functions the application registered) runs on the virtual tables.
"""

from __future__ import annotations

import itertools
import os
from collections import OrderedDict
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import apsw
import httpx

from ..answers import RequestRecord
from ..response_cache import CACHE
from ..values import ISO8601, TIMESTAMP, iso8601_collation
from .pages import list_params, page_data
from .rows import batch
from .schema import Table
from .sqlite_side import (
    PROGRESS_STEPS,
    Description,
    Route,
    defined_by_the_application,
    described,
    reads_only,
)
from .statement import StatementContext
from .streams import Snapshot, shown_page, snapshot_key

if TYPE_CHECKING:
    from .executor import Engine

_PASSAGES = itertools.count(1)  # names of the memdb databases copies pass through, unique in the process


@dataclass(frozen=True)
class _Variant:
    """One list a table's copy can be made from: its snapshot's key, its URL (for the request log),
    its page size, and the columns (lower case) its objects have."""

    key: str
    base: str
    size: int
    columns: frozenset[str]


@dataclass
class _Copy:
    """The copy of one table, made from ``snapshot`` (of the list ``variant``); ``ok``: false when the
    values could not be held exactly."""

    snapshot: Snapshot = field(repr=False)  # (API data: never in a repr)
    variant: _Variant
    ok: bool
    records: tuple[RequestRecord, ...] = ()
    objects: int = 0


class _Shelf:
    """One connection of copies. ``binary``: its timestamp columns have no ISO8601 collation, for
    statements that only sort by them (SQLite then sorts in C); a table is held there only if every
    timestamp it has is in the stored form, where text order is the order of the instants."""

    def __init__(self, cancelled: Callable[[], bool], binary: bool) -> None:
        self.binary = binary
        # URIs: a copy goes from one shelf to another through an attached SQLite memdb database.
        self.db = apsw.Connection(":memory:", flags=apsw.SQLITE_OPEN_URI | apsw.SQLITE_OPEN_READWRITE | apsw.SQLITE_OPEN_CREATE)
        self.db.create_collation(ISO8601, iso8601_collation)
        self.db.set_progress_handler(cancelled, PROGRESS_STEPS)
        self.db.authorizer = reads_only
        self.copies: dict[str, _Copy] = {}

    @contextmanager
    def writing(self) -> Iterator[None]:
        """The copies are made and dropped here, with the authorizer (reads only) set aside."""
        self.db.authorizer = None
        try:
            yield
        finally:
            self.db.authorizer = reads_only

    def drop(self, spec: Table) -> None:
        """Let the copy of ``spec`` go (or what a failed attempt left of it)."""
        self.copies.pop(spec.name.lower(), None)
        with self.writing():
            self.db.execute(f'DROP TABLE IF EXISTS "{spec.name}"')

    def close(self) -> None:
        self.copies.clear()
        self.db.close()


class Copies:
    """The copies of one connection's tables, and which statements run on them (once per SQL text).

    ``engine`` is the connection's (its tables, client, page size); ``cancelled``
    tells whether the statement being stepped was cancelled (the progress handler).
    """

    def __init__(self, engine: Engine, cancelled: Callable[[], bool], max_rows: int = 100_000) -> None:
        self.engine = engine
        self.max_rows = max_rows
        self._cancelled = cancelled
        self.exact = _Shelf(cancelled, binary=False)
        self._sorting: _Shelf | None = None
        self._known: dict[str, list[_Variant]] = {}
        self._decided: OrderedDict[str, tuple[bool, Description] | None] = OrderedDict()

    def sorting(self) -> _Shelf:
        if self._sorting is None:
            self._sorting = _Shelf(self._cancelled, binary=True)
        return self._sorting

    def close(self) -> None:
        self.exact.close()
        if self._sorting is not None:
            self._sorting.close()

    def forget(self) -> None:
        """Names may resolve to other objects on the driver's connection now (a schema change)."""
        self._decided.clear()

    def route(
        self,
        main: apsw.Connection,
        sql: str,
        bindings: Any,
        name: str,
        columns: frozenset[str],
        functions: frozenset[str],
        description: Description,
        ctx: StatementContext,
    ) -> Route | None:
        """The connection of copies and the result description for ``sql``, which reads only the API
        table ``name`` (its ``columns``), calls ``functions`` and has ``description`` on the driver's
        connection (``main``); None when it runs on the virtual table (no fresh complete snapshot, a
        value a copy cannot hold, a function of the application's...). The statement ``ctx`` is told
        the snapshot's pages (cached) and objects, as a read of the virtual table would be."""
        spec = self.engine.table(name)
        try:
            copy = self._copy(self.exact, spec, columns)  # the statement is weighed on it
        except apsw.Error:  # not made (cancelled, out of memory): the virtual table answers
            self.exact.drop(spec)
            return None
        if copy is None:
            return None
        if sql in self._decided:
            decided = self._decided[sql]
            self._decided.move_to_end(sql)
        else:
            decided = self._decide(main, sql, bindings, functions, description)
            self._decided[sql] = decided
            while len(self._decided) > 512:
                self._decided.popitem(last=False)
        if decided is None:
            return None
        binary, described_ = decided
        shelf = self.exact
        if binary:
            shelf = self.sorting()
            try:
                copy = self._sorted(shelf, spec, copy)
            except apsw.Error:
                shelf.drop(spec)
                return None
            if copy is None:
                return None
        ctx.requests.extend(copy.records)
        ctx.rows_read += copy.objects
        return Route(shelf.db, described_)

    def _decide(
        self, main: apsw.Connection, sql: str, bindings: Any, functions: frozenset[str], theirs: Description
    ) -> tuple[bool, Description] | None:
        """Whether ``sql`` runs on the copies (on the shelf without collations: True), decided on the
        exact copy: the same result columns, one instance of the table, SQLite's own functions."""
        if not theirs or functions & defined_by_the_application(main):
            return None  # the copies' connections do not have the application's functions
        mine = described(self.exact.db, sql, bindings)
        if mine is None or [n for n, _ in mine] != [n for n, _ in theirs]:
            return None
        program = self.exact.db.cursor().execute(sql, bindings, can_cache=False, explain=1).fetchall()
        opcodes = [op[1] for op in program]
        if opcodes.count("OpenRead") != 1 or "OpenAutoindex" in opcodes:
            return None  # a self-join: loops over real tables may run in another order than over virtual ones
        collated = [op[1] for op in program if ISO8601 in str(op[5])]
        if "SorterOpen" not in collated:
            return False, theirs
        # Sorting by a timestamp column calls the ISO8601 collation, in Python, at every comparison.
        # A statement that only sorts by timestamp columns (compares them with nothing, names no
        # collation itself) sorts the same without it, where they hold only the stored form.
        if set(collated) == {"SorterOpen"} and ISO8601.lower() not in sql.lower():
            return True, theirs
        return None  # the virtual table's rows are sorted in one Python sort (rows.order_rows)

    # -- the copies ---------------------------------------------------------------------------

    def _copy(self, shelf: _Shelf, spec: Table, columns: frozenset[str]) -> _Copy | None:
        """The copy of ``spec`` on ``shelf`` from a current complete snapshot that has ``columns``,
        made now if need be."""
        name = spec.name.lower()
        held = shelf.copies.get(name)
        if held is not None and held.ok and columns <= held.variant.columns and self._snapshot(held.variant) is held.snapshot:
            return held  # the usual case: one look in CACHE
        variant = snapshot = None
        for candidate in self._variants(spec):
            found = self._snapshot(candidate)
            if found is not None and columns <= candidate.columns:
                variant, snapshot = candidate, found
                break
        if held is not None and held.snapshot is not snapshot:
            shelf.drop(spec)  # the snapshot is gone or was replaced: let the rows go
            if self._sorting is not None:
                self._sorting.drop(spec)
            self._decided.clear()
            held = None
        if variant is None or snapshot is None:
            return None
        if held is None:
            with shelf.writing():
                held = shelf.copies[name] = self._make(shelf, spec, variant, snapshot)
        return held if held.ok else None

    def _sorted(self, shelf: _Shelf, spec: Table, exact: _Copy) -> _Copy | None:
        """The copy of ``spec`` without collations, made from its exact copy, or None where a
        timestamp is not in the stored form. It goes from one connection to the other in C,
        through a SQLite memdb database both attach for the while."""
        name = spec.name.lower()
        held = shelf.copies.get(name)
        if held is not None and held.snapshot is exact.snapshot:
            return held if held.ok else None
        shelf.drop(spec)
        # The stored form (values.stored_timestamp), checked here more strictly: digits where it has them.
        digits = "[0-9][0-9][0-9][0-9]-[0-9][0-9]-[0-9][0-9] [0-9][0-9]:[0-9][0-9]:[0-9][0-9]"
        odd = " OR ".join(
            f"""(typeof("{c.name}") = 'text' AND NOT ("{c.name}" GLOB '{digits}' OR "{c.name}" GLOB '{digits}.[0-9][0-9][0-9][0-9][0-9][0-9]'))"""
            for c in spec.columns
            if c.type == TIMESTAMP
        )
        found = next(self.exact.db.execute(f'SELECT count(*) FROM "{spec.name}" WHERE {odd}'))[0] if odd else 0
        ok = not found
        if ok:
            passage = f"file:/apidriver-copies-{os.getpid()}-{next(_PASSAGES)}?vfs=memdb"
            table = spec.create_sql(name=spec.name, key=False, collate=False)
            with self.exact.writing(), shelf.writing():
                self.exact.db.execute("ATTACH ? AS apidriver_passage", (passage,))
                try:
                    self.exact.db.execute(table.replace("CREATE TABLE ", "CREATE TABLE apidriver_passage.", 1))
                    with self.exact.db:
                        self.exact.db.execute(f'INSERT INTO apidriver_passage."{spec.name}" SELECT * FROM main."{spec.name}"')
                    shelf.db.execute("ATTACH ? AS apidriver_passage", (passage,))
                    try:
                        shelf.db.execute(table)
                        with shelf.db:
                            shelf.db.execute(f'INSERT INTO main."{spec.name}" SELECT * FROM apidriver_passage."{spec.name}"')
                    finally:
                        shelf.db.execute("DETACH apidriver_passage")
                finally:
                    self.exact.db.execute("DETACH apidriver_passage")  # the last one out: memdb frees it
        held = shelf.copies[name] = _Copy(exact.snapshot, exact.variant, ok, exact.records, exact.objects)
        return held if ok else None

    def _variants(self, spec: Table) -> list[_Variant]:
        """The lists a copy of ``spec`` can be made from, the one with every column first: a statement
        reading every column of this table and no other, and one reading none of the columns that need
        an ``include=`` (as vtable.BestIndexObject and the planner choose them)."""
        known = self._known.get(spec.name)
        if known is not None:
            return known
        engine = self.engine
        client = engine.client
        source: Table = engine.source_of(spec)
        endpoint = source.list
        known = self._known[spec.name] = []
        if client.cache_ttl <= 0 or spec.static is not None or endpoint is None or not endpoint.paginated:
            return known
        embeds = {e.include for e in source.embeds if e.include and engine.reads({spec.name.lower()}, e.table)}
        every = frozenset(c.name.lower() for c in spec.columns)
        included = {c.include for c in spec.columns if c.include} if spec.derived is None else set()
        plain = frozenset(c.name.lower() for c in spec.columns if not c.include) if included else every
        size = engine.budget.list_page_size()
        for includes, columns in ((embeds | included, every), (embeds, plain)):
            params = list_params(endpoint, includes)
            base = str(httpx.URL(client.url(endpoint.path), params=params))
            known.append(_Variant(snapshot_key(client, engine.pagination, endpoint, params, size), base, size, columns))
            if not included:
                break  # one list has every column
        return known

    def _snapshot(self, variant: _Variant) -> Snapshot | None:
        """The complete, fresh ``CacheTTL`` snapshot of the list of ``variant``, or None."""
        client = self.engine.client
        found = CACHE.get(client.cache_owner, variant.key, client.cache_ttl)
        snapshot = found.body if found is not None else None
        return snapshot if isinstance(snapshot, Snapshot) and snapshot.complete else None

    def _make(self, shelf: _Shelf, spec: Table, variant: _Variant, snapshot: Snapshot) -> _Copy:
        """A plain table on ``shelf`` holding the snapshot's rows of ``spec``, exactly, or a refusal
        (``ok`` false)."""
        source: Table = self.engine.source_of(spec)
        assert source.list is not None
        pages = []
        rows = 0
        objects = 0
        for number, body in enumerate(snapshot.bodies, 1):
            objs = page_data(body, source.list.path, 200, True)
            made = batch(spec, objs, snapshot.memo(number))
            pages.append(made)
            rows += len(made.rows)
            objects += len(objs)
            if rows > self.max_rows:
                return _Copy(snapshot, variant, False)
        width = len(spec.columns)
        full = (1 << width) - 1
        db = shelf.db
        db.execute(f'DROP TABLE IF EXISTS "{spec.name}"')
        db.execute(spec.create_sql(name=spec.name, key=False))
        counts = [[0, 0, 0] for _ in range(width)]  # per column: text, integer, real values given
        insert = f'INSERT INTO "{spec.name}" VALUES ({", ".join("?" * width)})'
        with db:
            for made in pages:
                values = made.ensure(spec, full)
                for column, cells in enumerate(list(zip(*values))[:width]):
                    kinds = list(map(type, cells))
                    held = counts[column]
                    held[0] += kinds.count(str)
                    held[1] += kinds.count(int) + kinds.count(bool)
                    held[2] += kinds.count(float)
                db.executemany(insert, [v[:width] for v in values])
        # What SQLite stored: a value its column's affinity converted changes these counts.
        sums = ", ".join(
            f"""sum(typeof("{c.name}") = 'text'), sum(typeof("{c.name}") = 'integer'), sum(typeof("{c.name}") = 'real')"""
            for c in spec.columns
        )
        stored = next(db.execute(f'SELECT {sums} FROM "{spec.name}"'))
        if [int(n or 0) for n in stored] != [n for held in counts for n in held]:
            db.execute(f'DROP TABLE "{spec.name}"')
            return _Copy(snapshot, variant, False)
        records = tuple(
            RequestRecord("GET", shown_page(variant.base, self.engine.pagination, number, variant.size), 200, 0.0, cached=True)
            for number in range(1, len(snapshot.bodies) + 1)
        )
        return _Copy(snapshot, variant, True, records, objects)


__all__ = ["Copies"]
