"""Carrying out ``REPLICATE`` and ``CACHE`` (:mod:`.grammar` recognises them).

``REPLICATE`` syncs the table (all the account's tables without a name)
into the cache, as ``apidriver sync`` does. ``CACHE`` runs the SELECT
against the API and stores its rows in the cache table of the one table it
reads, by primary key (which it must select); ``WITH TRUNCATE`` also
deletes the cached rows of that table the result does not have. The SELECT
is checked by SQLite itself (an authorizer that allows reading only) before
anything runs. Both answer a small result set: one row per table with what
was done. A read-only connection (``ReadOnly=true``) refuses both before
anything is sent.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import apsw
import sqlalchemy as sa

from .. import exceptions as exc
from ..engine.errors import translate
from ..replica.writer import ReplicaWriter, chunks
from .attach import AUTO, OFFLINE, Cache
from .grammar import CacheStatement

if TYPE_CHECKING:
    from .host import CacheHost

_READING = {apsw.SQLITE_SELECT, apsw.SQLITE_READ, apsw.SQLITE_FUNCTION, apsw.SQLITE_RECURSIVE}


def run(statement: CacheStatement, connection: CacheHost, parameters: Any) -> tuple[str, tuple[Any, ...]]:
    """Carry ``statement`` out; returns a SELECT (and its parameters) that presents the outcome."""
    cache: Cache | None = getattr(connection, "cache", None)
    if cache is None:
        raise exc.ProgrammingError(
            f"{statement.kind} needs a cache database: set CacheLocation=path/to/file.sqlite or CacheConnection=<database URL> "
            "in the connection string."
        )
    if cache.mode == OFFLINE:
        raise exc.NotSupportedError(f"Offline=true: {statement.kind} needs the API. Nothing was sent.")
    if connection.settings["ReadOnly"]:  # it writes the cache: a read-only connection changes nothing
        raise exc.NotSupportedError(
            f"{statement.kind} writes to the cache and the connection is read-only (ReadOnly=true). Nothing was sent."
        )
    if statement.kind == "REPLICATE":
        if parameters:
            raise exc.ProgrammingError("REPLICATE takes no parameters.")
        report = cache.refresh(None if statement.table is None else [statement.table])
        rows = [(t.table, t.inserted, t.updated, t.removed, t.requests) for t in report]
        return _outcome(("table_name", "inserted", "updated", "removed", "requests"), rows)
    return _outcome(("table_name", "rows", "inserted", "updated", "removed"), [_cache(statement, connection, cache, parameters)])


def _cache(statement: CacheStatement, connection: CacheHost, cache: Cache, parameters: Any) -> tuple[Any, ...]:
    rows, origins = _run_select(connection, statement.select, parameters)
    spec = _single_table(cache, origins, statement.select)
    positions = [spec.index(column) for _, column in origins]
    missing = [k for k in spec.key if spec.index(k) not in positions]
    if missing:
        raise exc.ProgrammingError(
            f"CACHE stores rows by primary key: select {', '.join(missing)} too (the key of {spec.name})."
        )
    width = len(spec.columns)
    full_rows = []
    for row in rows:
        values: list[Any] = [None] * width
        for position, value in zip(positions, row):
            values[position] = value
        full_rows.append(tuple(values))
    unknown = frozenset(c.name for i, c in enumerate(spec.columns) if i not in positions)
    cache.ready()
    writer = ReplicaWriter(cache.target)
    now = dt.datetime.now(dt.timezone.utc)
    with cache.target.write(f"caching rows of {spec.name}") as conn:
        counts, _ = writer.upsert(conn, spec, full_rows, now, unknown)
        if statement.truncate:
            table = cache.target.table(spec.name)
            keep = {writer.key_of(spec, [cache.target.to_target(c.type, v) for c, v in zip(spec.columns, r)]) for r in full_rows}
            every = [tuple(r) for r in conn.execute(sa.select(*(table.c[k] for k in spec.key)))]
            stale = [k for k in every if k not in keep]
            for chunk in chunks(stale):
                counts.removed += conn.execute(table.delete().where(writer.key_clause(table, spec, chunk))).rowcount
    return (spec.name, len(full_rows), counts.inserted, counts.updated, counts.removed)


def _run_select(connection: CacheHost, select: str, parameters: Any) -> tuple[list[tuple[Any, ...]], list[tuple[str, str]]]:
    """Run ``select`` (reading only, one statement); its rows and each column's (database.table, column) origin."""
    db = connection.sqlite
    original = db.authorizer
    refused: list[int] = []

    def reading_only(action: int, a: str | None, b: str | None, database: str | None, trigger: str | None) -> int:
        if action not in _READING:
            refused.append(action)
            return apsw.SQLITE_DENY
        return original(action, a, b, database, trigger) if original is not None else apsw.SQLITE_OK

    described: list[tuple[Any, ...]] = []
    statements = [0]

    def one_statement(cursor: apsw.Cursor, sql: str, bindings: Any) -> bool:
        statements[0] += 1
        if statements[0] == 1:
            described.extend(cursor.description_full)  # known once prepared, even if no row comes
        return statements[0] == 1

    cursor = db.cursor()
    cursor.exec_trace = one_statement
    db.authorizer = reading_only
    try:
        try:
            cursor.execute(select, parameters, can_cache=False)
            rows = [tuple(r) for r in cursor]
            origins = [(f"{d[2]}.{d[3]}" if d[3] else "", d[4] or "") for d in described]
        except apsw.ExecTraceAbort:
            raise exc.ProgrammingError("CACHE takes one SELECT statement.") from None
        except apsw.AuthError:
            context_refused = connection.current_statement.refused
            if context_refused is not None and not refused:
                raise context_refused from None
            raise exc.ProgrammingError("CACHE takes a SELECT: the statement after CACHE may only read.") from None
        except apsw.Error as error:
            raise exc.chained(translate(error, select), error)
    finally:
        db.authorizer = original
        cursor.close(force=True)
    return rows, origins


def _single_table(cache: Cache, origins: Sequence[tuple[str, str]], select: str) -> Any:
    """The API table every selected column comes from (CACHE stores into its cached table)."""
    tables = {table for table, column in origins}
    if "" in tables or len(tables) != 1:
        computed = [column or "an expression" for table, column in origins if not table]
        what = f"{', '.join(computed)} is not a column of a table" if computed else f"the columns come from {', '.join(sorted(tables))}"
        raise exc.ProgrammingError(f"CACHE stores columns of one table as they are: {what}. Select the columns of one table.")
    (origin,) = tables
    database, name = origin.split(".", 1)
    if name.lower() not in cache.specs:
        raise exc.ProgrammingError(f"CACHE stores rows of the API tables; {name} is not one.")
    if database == "cache" or (database == "main" and cache.mode == AUTO):
        live = f"live.{name}" if cache.mode == AUTO else name
        read = f"cache.{name}" if database == "cache" else f"{name} (with AutoCache=true)"
        raise exc.ProgrammingError(f"CACHE stores rows read from the API, but this SELECT reads the cache ({read}): select FROM {live} instead.")
    return cache.spec(name)


def _outcome(columns: Sequence[str], rows: Sequence[Sequence[Any]]) -> tuple[str, tuple[Any, ...]]:
    """A SELECT presenting ``rows`` under ``columns`` (the statement's result set)."""
    one = "SELECT " + ", ".join(f'? AS "{c}"' for c in columns)
    sql = " UNION ALL ".join([one] * len(rows)) if rows else one + " WHERE 0"
    values: tuple[Any, ...] = tuple(v for row in rows for v in row) if rows else tuple(None for _ in columns)
    return sql, values
