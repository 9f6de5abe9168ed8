"""DB-API 2.0 cursors.

Rows stream: ``execute`` runs the statement up to its first row, and each
fetch steps SQLite further, which pulls further pages from the API as
needed. Errors of later pages therefore surface during fetching, and a
failed page always fails the statement (never a partial result).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import apsw

from . import exceptions as exc
from .answers import RequestRecord
from .authorizer import has_statement
from .cache.grammar import recognise as cache_statement
from .engine.errors import translate
from .engine.executor import StatementContext
from .engine.writes import delete_failure, partial_failure
from .typeobjects import type_code
from .values import BOOLEAN, TIMESTAMP, adapt_parameter, from_sql, stored_to_datetime

if TYPE_CHECKING:
    from .authorizer import Shape
    from .connection import Connection
    from .engine.sqlite_side import Route

_DATETIMES: dict[str, Any] = {}  # stored text → datetime: rows share times (a job's tasks, a page's jobs)


def _timestamp(value: Any) -> Any:
    if type(value) is not str:
        return value
    made = _DATETIMES.get(value)
    if made is None:
        if len(_DATETIMES) >= 32768:
            _DATETIMES.clear()
        made = _DATETIMES[value] = stored_to_datetime(value)
    return made


def _boolean(value: Any) -> Any:
    return bool(value) if type(value) is int else value


# Result columns declared with these types are returned as Python values (values.from_sql, per type).
_CONVERTED: dict[str, Callable[[Any], Any]] = {TIMESTAMP: _timestamp, BOOLEAN: _boolean}


def _idle() -> StatementContext:
    """The context of cursors that have run nothing yet: empty, and already done."""
    context = StatementContext()
    context.done()
    return context


_IDLE = _idle()
_NONE_CAPTURED: dict[str, Any] = {}  # what the trace saw when there is none (only read)
# What a result's (name, declared type) pairs make: the DB-API description and the converters of its
# columns (the same for every run of a statement; both only read).
_DESCRIPTIONS: dict[tuple[tuple[str, str | None], ...], tuple[tuple[tuple[Any, ...], ...], list[tuple[int, Callable[[Any], Any]]]]] = {}


class Cursor:
    """A DB-API 2.0 cursor; ``requests`` lists the HTTP requests of the last statement."""

    arraysize: int = 1
    # Until a statement sets them (class attributes: tools make a cursor per statement).
    description: tuple[tuple[Any, ...], ...] | None = None
    rowcount: int = -1
    lastrowid: int | None = None
    _cursor: apsw.Cursor | None = None
    _context: StatementContext = _IDLE  # a cursor's own comes with its first statement
    _convert: list[tuple[int, Callable[[Any], Any]]] = []  # noqa: RUF012  (replaced, never changed in place)
    _returned = 0
    _counts_at_end = False  # rowcount is known once the rows are read (DML with RETURNING)
    _closed = False

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    # -- statements ------------------------------------------------------------------------

    def execute(self, operation: str, parameters: Sequence[Any] | Mapping[str, Any] | None = None) -> Cursor:
        """Run one SQL statement; parameters use ``?`` (sequence) or ``:name`` (mapping)."""
        if self._closed:  # the connection's state: checked by hold() below
            raise exc.InterfaceError("The cursor is closed.")
        self.rowcount = -1  # until this statement has succeeded
        self._counts_at_end = False
        connection = self.connection
        connection.hold()  # with try/finally: every statement passes here (see Connection.hold)
        try:
            self._finish()
            self._context = context = StatementContext()
            context.let_go = connection.engine.let_go  # what it held goes on a worker (see done())
            connection.make_current(context)
            route: Route | None
            planned = connection.planned(operation, context)  # a statement over the cache, run before
            if planned is not None:
                bindings = None if parameters is None else self._adapt(parameters)
                shape, route = planned
                context.in_sets, context.in_affinity = shape.in_sets, shape.in_affinity
            else:
                special = cache_statement(operation)  # REPLICATE / CACHE
                if special is not None:
                    from .cache.statements import run  # only when used: it loads SQLAlchemy

                    try:
                        operation, parameters = run(special, connection, self._adapt(parameters))
                    except Exception as error:
                        raise exc.chained(translate(error, operation), error)
                bindings = None if parameters is None else self._adapt(parameters)
                shape = connection.shape(operation, bindings)
                context.in_sets, context.in_affinity = shape.in_sets, shape.in_affinity
                # A read of nothing but a SQLite cache's tables, or of one table a CacheTTL snapshot holds
                # whole, runs on a second SQLite connection with real tables (Connection.route).
                route = connection.route(operation, bindings, shape, context)
            return self._execute(operation, bindings, shape, route)
        finally:
            connection.release()

    def _execute(
        self, operation: str, bindings: Any, shape: Shape, route: Route | None = None
    ) -> Cursor:
        cursor = (route.db if route is not None else self.connection.sqlite).cursor()
        captured: dict[str, Any] = _NONE_CAPTURED
        if not shape.single:  # a second statement must be refused before anything runs
            captured = {}

            def trace(cur: apsw.Cursor, sql: str, bindings: Any) -> bool:
                if "first" in captured:
                    return True  # only a trailing comment can follow (checked below)
                if operation.startswith(sql) and has_statement(operation[len(sql) :]):
                    captured["multiple"] = True
                    return False  # before anything ran
                captured["first"] = True
                return True

            cursor.exec_trace = trace
        self._returned = 0
        context = self._context
        try:
            with self.connection.around(shape):
                cursor.execute(operation, bindings)
        except BaseException as error:
            if isinstance(error, apsw.AuthError) and context.refused is not None:
                raise context.refused from None
            if captured.get("multiple"):
                raise exc.ProgrammingError(
                    "execute() runs one statement at a time; run the statements one by one (or use the shell)."
                ) from None
            failure = translate(error, operation, context)
            if isinstance(failure, exc.Error) and (context.delete_failure or context.deleted or context.created):
                failure = partial_failure(context, failure)  # e.g. cancelled between two rows
            raise exc.chained(failure, error)
        self._cursor = cursor
        if context.delete_failure is not None:
            self._finish()
            raise delete_failure(context)
        description: tuple[tuple[str, str | None], ...]
        if route is not None:
            description = route.description  # the driver's declared types (the reader's views hide some)
        else:
            try:
                # Read after the first step: a statement from APSW's cache that was prepared before a
                # schema change is prepared again by that step, and only then has its new columns.
                description = cursor.get_description()
            except apsw.ExecutionCompleteError:
                description = shape.description  # no row: the columns at the current schema
        self._set_description(description)
        if context.created:
            self.lastrowid = self.connection.rowids.rowid(context.created[-1][0], context.created[-1][1])
        elif shape.local_insert:
            self.lastrowid = self.connection.sqlite.last_insert_rowid()
        if not description:
            self.rowcount = self.connection.sqlite.changes() if shape.writes else -1  # DDL changes no rows
            self._finish()
        elif context.created or context.deleted:
            self.rowcount = len(context.created) + len(context.deleted)
        else:
            self.rowcount = -1
            self._counts_at_end = shape.writes
        return self

    def callproc(self, procname: str, parameters: Sequence[Any] | Mapping[str, Any] = ()) -> Sequence[Any] | Mapping[str, Any]:
        """Call a procedure (see ``SELECT * FROM sys_procedures``); its rows become the result set.

        Parameters go in the procedure's order, or by name in a mapping.
        Returns the parameters unchanged (the procedures have no OUT parameters).
        """
        procedure = self.connection.procedure(procname)
        names = [p.name for p in procedure.params]
        if isinstance(parameters, Mapping):
            unknown = [k for k in parameters if k not in names]
            if unknown:
                raise exc.ProgrammingError(f"{procedure.name} has no parameter {', '.join(unknown)}; its parameters: {', '.join(names)}.")
            values = [parameters.get(n) for n in names]
        else:
            values = list(parameters)
            if len(values) > len(names):
                raise exc.ProgrammingError(f"{procedure.name} takes at most {len(names)} parameters ({', '.join(names)}).")
        placeholders = ", ".join("?" * len(values))
        self.execute(f'SELECT * FROM "{procedure.name}"({placeholders})', values)
        return parameters

    def executemany(self, operation: str, seq_of_parameters: Sequence[Sequence[Any] | Mapping[str, Any]]) -> Cursor:
        """Run ``operation`` once per parameter set; ``rowcount`` is the total.

        Writes are not undone when a later parameter set fails: the error then
        says which sets were carried out (``error.done_rows``, and the keys of
        what they created in ``error.created``) and which one failed
        (``error.failed_row``); the rest were not attempted.
        """
        total = 0
        created: list[Any] = []
        all_parameters = list(seq_of_parameters)
        for index, parameters in enumerate(all_parameters):
            try:
                self.execute(operation, parameters)
            except exc.Error as error:
                if index == 0:
                    raise
                ids = ", ".join(map(str, created))
                note = (
                    f"Parameter set {index} (0-based) failed: {error} Sets 0 to {index - 1} were carried out and "
                    "are not undone" + (f" (created: {ids})" if ids else "") + f"; sets {index + 1} to "
                    f"{len(all_parameters) - 1} were not attempted."
                    if index + 1 < len(all_parameters)
                    else f"Parameter set {index} (0-based, the last) failed: {error} Sets 0 to {index - 1} were carried "
                    "out and are not undone" + (f" (created: {ids})." if ids else ".")
                )
                wrapped = exc.with_message(error, note)
                wrapped.done_rows = index  # type: ignore[attr-defined]
                wrapped.failed_row = index  # type: ignore[attr-defined]
                wrapped.created = list(created)  # type: ignore[attr-defined]
                raise wrapped from error
            created += [key for _, key, _ in self._context.created]
            if self.rowcount > 0:
                total += self.rowcount
        self.rowcount = total
        return self

    def _adapt(self, parameters: Sequence[Any] | Mapping[str, Any] | None) -> Any:
        if parameters is None:
            return None
        if isinstance(parameters, Mapping):
            return {(name := str(k).lstrip(":@$")): adapt_parameter(v, f":{name}") for k, v in parameters.items()}
        if isinstance(parameters, (str, bytes)):
            raise exc.ProgrammingError("Parameters must be a sequence or a mapping, not a string.")
        return tuple(adapt_parameter(v, str(i)) for i, v in enumerate(parameters, 1))

    def _set_description(self, description: tuple[tuple[str, str | None], ...]) -> None:
        if not description:
            self.description = None
            self._convert = []
            return
        made = _DESCRIPTIONS.get(description)
        if made is None:
            made = (
                tuple((name, type_code(decl), None, None, None, None, None) for name, decl in description),
                [(i, _CONVERTED[(decl or "").upper()]) for i, (_, decl) in enumerate(description) if (decl or "").upper() in _CONVERTED],
            )
            if len(_DESCRIPTIONS) >= 256:
                _DESCRIPTIONS.clear()  # a bound, not a cache policy
            _DESCRIPTIONS[description] = made
        self.description, self._convert = made

    # -- fetching ----------------------------------------------------------------------------------

    def fetchone(self) -> tuple[Any, ...] | None:
        rows = self._fetch(1)
        return rows[0] if rows else None

    def _fetch(self, count: int | None) -> list[tuple[Any, ...]]:
        """Up to ``count`` rows (None: all), stepping SQLite under one hold of the connection."""
        if count == 0:
            return []
        self._check_open()  # before the checks below: a closed connection is the error to report
        if self.description is None:
            raise exc.ProgrammingError("The last statement returned no rows to fetch (it was not a query).")
        if self._cursor is None:
            return []
        connection = self.connection
        connection.hold()
        try:
            if self._context.cancel.is_set:
                self._finish()
                self._context.cancel.check()
            connection.make_current(self._context)
            cursor = self._cursor
            try:
                if count is None:
                    rows = cursor.fetchall()
                    done = True
                else:
                    rows = []
                    done = False
                    for row in cursor:
                        rows.append(row)
                        if len(rows) >= count:
                            break
                    else:
                        done = True
            except BaseException as error:
                self._finish()
                raise exc.chained(translate(error, None, self._context), error)
            if done:
                self._finish()
                if self._counts_at_end:  # INSERT/UPDATE/DELETE ... RETURNING: SQLite counts once it is done
                    self.rowcount = connection.sqlite.changes()
        finally:
            connection.release()
        if self._context.created:
            rows = [tuple(self._returning(row)) for row in rows]
        converters = self._convert
        if not converters:
            return rows
        for n, row in enumerate(rows):  # in place: the rows SQLite gave go as their conversions are made
            values = list(row)
            for i, convert in converters:
                value = values[i]
                if value is not None:
                    values[i] = convert(value)
            rows[n] = tuple(values)
        return rows

    def _returning(self, row: Sequence[Any]) -> Sequence[Any]:
        """``INSERT ... RETURNING`` rows: what the API created, not SQLite's echo of the inputs."""
        created = self._context.created
        if self._returned >= len(created) or self.description is None:
            return row
        table_name, _, obj = created[self._returned]
        self._returned += 1
        table = self.connection.engine.table(table_name)
        names = {c.name.lower(): c for c in table.columns}
        out = list(row)
        for i, d in enumerate(self.description):
            column = names.get(str(d[0]).lower())
            if column is not None:
                out[i] = column.value(obj)
        return out

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        return self._fetch(max(0, self.arraysize if size is None else size))

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._fetch(None)

    def __iter__(self) -> Iterator[tuple[Any, ...]]:
        while (row := self.fetchone()) is not None:
            yield row

    # -- the rest of PEP 249 -----------------------------------------------------------------------

    def setinputsizes(self, sizes: Any) -> None:
        """Accepted and ignored, as PEP 249 allows."""

    def setoutputsize(self, size: Any, column: Any = None) -> None:
        """Accepted and ignored, as PEP 249 allows."""

    def cancel(self) -> None:
        """Cancel this cursor's statement, from any thread (psycopg's name for it).

        Like :meth:`Connection.interrupt` but for this cursor only: its
        waits end at once and it fails with :class:`QueryCancelledError`
        (at ``execute`` or at its next fetch); other cursors go on. SQLite's
        own work is stopped too when this cursor is the one running.
        """
        if self._context is not _IDLE:  # before a first statement there is nothing to cancel
            self._context.cancel.set("The statement was cancelled by Cursor.cancel().")

    def close(self) -> None:
        self._finish()
        self._closed = True

    @property
    def closed(self) -> bool:
        return self._closed

    @property
    def created_rows(self) -> list[dict[str, Any]]:
        """What the last statement's INSERTs created, one dict per row (column → Python value).

        The objects as the API answered the create (ids, secrets, timestamps
        it assigned); SQLAlchemy's dialect reads server-assigned keys here.
        """
        out = []
        for table_name, _, obj in self._context.created:
            table = self.connection.engine.table(table_name)
            out.append({c.name: from_sql(c.value(obj), c.type) for c in table.columns})
        return out

    @property
    def context(self) -> StatementContext:
        """The state of the cursor's statement (its requests, its rows, its cancel flag), as the engine keeps it."""
        return self._context

    @property
    def requests(self) -> list[RequestRecord]:
        """HTTP requests made by the last statement: method, URL (no secrets), status, duration."""
        return list(self._context.requests)

    @property
    def rows_read(self) -> int:
        """Rows read from the API so far by the last statement (embedded ones included); a GROUP BY or a filter returns fewer."""
        return self._context.rows_read

    def __enter__(self) -> Cursor:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.close()

    def _finish(self) -> None:
        if self._cursor is not None:
            try:
                self._cursor.close(force=True)
            except apsw.Error:
                pass
            self._cursor = None
        self._context.done()  # what the statement fetched goes now, not when the cursor does

    def _check_open(self) -> None:
        if self._closed:
            raise exc.InterfaceError("The cursor is closed.")
        self.connection._check_open()
