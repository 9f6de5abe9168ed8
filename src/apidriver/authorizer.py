"""What SQLite may prepare on a connection, and what preparing a statement tells about it.

SQLite calls ``Authorizer.authorize`` for every table, column and action
while it prepares a statement, before any planning or request: that is
where the API, sys and procedure names are reserved, where writes the API
or ReadOnly does not allow are refused, and where the tables a statement
reads are noted for planning. ``Authorizer.shape`` prepares a statement
without running it and keeps what it learned (``Shape``), once per SQL text
until a schema change.
"""

from __future__ import annotations

import re
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

import apsw

from . import exceptions as exc
from .engine.planner import in_affinity, reads_whole_list
from .engine.procedures import ProcedureRunner
from .engine.schema import Procedure, Table
from .engine.sqlite_side import READ_ACTIONS, TABLE_FUNCTIONS
from .engine.statement import StatementContext
from .engine.writes import Writer

_WRITES = {apsw.SQLITE_INSERT: "INSERT", apsw.SQLITE_UPDATE: "UPDATE", apsw.SQLITE_DELETE: "DELETE"}
# Schema changes: what the statement does (for messages).
_DDL = {
    apsw.SQLITE_CREATE_TABLE: "CREATE TABLE",
    apsw.SQLITE_CREATE_VIEW: "CREATE VIEW",
    apsw.SQLITE_CREATE_INDEX: "CREATE INDEX",
    apsw.SQLITE_CREATE_TRIGGER: "CREATE TRIGGER",
    apsw.SQLITE_CREATE_VTABLE: "CREATE VIRTUAL TABLE",
    apsw.SQLITE_DROP_TABLE: "DROP TABLE",
    apsw.SQLITE_DROP_VIEW: "DROP VIEW",
    apsw.SQLITE_DROP_INDEX: "DROP INDEX",
    apsw.SQLITE_DROP_TRIGGER: "DROP TRIGGER",
    apsw.SQLITE_DROP_VTABLE: "DROP TABLE",
    apsw.SQLITE_ALTER_TABLE: "ALTER TABLE",
    apsw.SQLITE_CREATE_TEMP_TABLE: "CREATE TEMP TABLE",
    apsw.SQLITE_CREATE_TEMP_VIEW: "CREATE TEMP VIEW",
    apsw.SQLITE_CREATE_TEMP_INDEX: "CREATE INDEX",
    apsw.SQLITE_CREATE_TEMP_TRIGGER: "CREATE TEMP TRIGGER",
    apsw.SQLITE_DROP_TEMP_TABLE: "DROP TABLE",
    apsw.SQLITE_DROP_TEMP_VIEW: "DROP VIEW",
    apsw.SQLITE_DROP_TEMP_INDEX: "DROP INDEX",
    apsw.SQLITE_DROP_TEMP_TRIGGER: "DROP TRIGGER",
}
# For these the authorizer reports (index or trigger name, table name): the table is what counts.
_ON_TABLE = {
    apsw.SQLITE_CREATE_INDEX,
    apsw.SQLITE_CREATE_TEMP_INDEX,
    apsw.SQLITE_CREATE_TRIGGER,
    apsw.SQLITE_CREATE_TEMP_TRIGGER,
    apsw.SQLITE_DROP_INDEX,
    apsw.SQLITE_DROP_TEMP_INDEX,
    apsw.SQLITE_DROP_TRIGGER,
    apsw.SQLITE_DROP_TEMP_TRIGGER,
}
LOCAL_HINT = (
    "Local tables (CREATE TABLE or CREATE TEMP TABLE with a name that is not an API or sys table) "
    "live in this connection's own database until it closes."
)
# Schemas that hold (or may hide) the API's tables: the names of those tables are reserved there.
# Another attached database may use them: SQLite finds an unqualified name in temp and main first.
_OWN_SCHEMAS = frozenset({"main", "temp", "cache", "live"})


class CurrentStatement:
    """The statement being prepared or stepped on one connection, shared with the virtual tables,
    the writer and the authorizer without a reference back to the connection (which would keep it alive)."""

    def __init__(self) -> None:
        self.context = StatementContext()

    @contextmanager
    def probing(self) -> Iterator[StatementContext]:
        """A throw-away context, current while SQLite only prepares a statement: what the
        authorizer and the planning note goes there, not into the statement being run."""
        previous, probe = self.context, StatementContext()
        self.context = probe
        try:
            yield probe
        finally:
            self.context = previous


@dataclass(frozen=True)
class Shape:
    """What preparing a statement tells about it; found once per SQL text and schema (``Authorizer.shape``)."""

    in_sets: bool = False
    """IN lists may reach the API tables as whole sets (see ``Authorizer.shape``)."""
    in_affinity: str = "mixed"
    """What the statement's IN subqueries apply to their values (``engine.planner.in_affinity``);
    ``mixed`` (SQLite evaluates such an IN on a TEXT column itself) when it is not known."""
    description: tuple[tuple[str, str | None], ...] = ()
    """Columns and declared types at the current schema (the result of a statement that returns no row)."""
    writes: bool = False
    """It changes rows (INSERT, UPDATE, DELETE; not DDL): its ``rowcount`` is SQLite's ``changes()``."""
    local_writes: bool = False
    """It changes rows of a local table: it runs in a transaction (see ``Connection.isolation_level``)."""
    local_insert: bool = False
    """It inserts into a local table: ``lastrowid`` is SQLite's ``last_insert_rowid()``."""
    renames_temp: bool = False
    """It renames a TEMP table, which could then hide an API table (see ``Connection.around``)."""
    one_table: str | None = None
    """The one API table (lower case) a plain read reads: one SELECT, nothing but that table of
    ``main`` (and SQLite's ``json_each``/``json_tree``) read by its own columns, no other action,
    planned as a read of the table's whole list (no GET by key, no API filter). Such a statement
    may run on a copy of the list's snapshot (``engine.copies``)."""
    columns: frozenset[str] = frozenset()
    """The columns of ``one_table`` it reads (lower case)."""
    functions: frozenset[str] = frozenset()
    """The functions the statement calls (lower case)."""
    single: bool = False
    """The SQL text holds one statement (and nothing after it but blanks, comments and semicolons):
    the cursor need not watch for a second one (see ``Cursor._execute``)."""


_COMMENTS = re.compile(r"--[^\n]*|/\*.*?(\*/|$)", re.DOTALL)


def has_statement(text: str) -> bool:
    """Whether SQL text holds anything but comments, blanks and semicolons."""
    return bool(_COMMENTS.sub("", text).strip(" \t\r\n;"))


class _Prepared:
    """What the authorizer reports while ``Authorizer.shape`` prepares a statement."""

    def __init__(self) -> None:
        self.writes: list[tuple[int, bool, str | None]] = []  # (action, to an API table, trigger)
        self.ddl = False
        self.alters_temp = False
        self.renames = False
        self.reads: set[tuple[str, str, str | None]] = set()  # (table, column, database), lower case
        self.functions: set[str] = set()
        self.others = False  # an action other than reading (a PRAGMA, a transaction, an ATTACH...)


class Authorizer:
    """The rules of one connection's names (``reserved``: every table and procedure of the
    connection; ``api_tables``: those the API serves; ``modules``: the driver's own virtual-table
    modules). ``schema_changed`` runs at each schema change (what was learned may no longer hold)."""

    def __init__(
        self,
        db: apsw.Connection,
        current: CurrentStatement,
        reserved: set[str],
        api_tables: Mapping[str, Table],
        procedures: Mapping[str, Procedure],
        modules: set[str],
        writer: Writer,
        runner: ProcedureRunner,
    ) -> None:
        self.db = db
        self.current = current
        self.reserved = reserved
        self.api_tables = api_tables
        self.procedures = procedures
        self.modules = modules
        self.writer = writer
        self.runner = runner
        self.shapes: OrderedDict[str, Shape] = OrderedDict()
        self.preparing: _Prepared | None = None  # while shape() prepares a statement
        self.on_schema_change: list[Callable[[], None]] = []

    def schema_changed(self) -> None:
        """Names may now resolve to other tables, and results have other columns."""
        self.shapes.clear()
        for forget in self.on_schema_change:
            forget()

    def authorize(self, action: int, name: str | None, column: str | None, database: str | None, trigger: str | None) -> int:
        """Runs while SQLite prepares a statement, before any planning or request.

        Notes which tables the statement reads and deletes from and how many
        SELECTs it has (planning uses them), refuses writes the API or the
        ReadOnly setting does not allow, and refuses schema changes that
        would touch or shadow the API tables, so that such a statement sends
        nothing and changes nothing.
        """
        context = self.current.context
        lowered = (name or "").lower()
        # One of this connection's own tables (not a table of that name in a database the user attached).
        ours = lowered in self.reserved and (database or "main").lower() in _OWN_SCHEMAS
        preparing = self.preparing
        if preparing is not None:
            if action in _WRITES and name and not lowered.startswith("sqlite_"):
                preparing.writes.append((action, ours and lowered in self.api_tables, trigger))
            elif action in _DDL:
                preparing.ddl = True
                preparing.alters_temp |= action == apsw.SQLITE_ALTER_TABLE and name == "temp"
            elif action == apsw.SQLITE_FUNCTION and column == "sqlite_rename_table":
                preparing.renames = True
            if action == apsw.SQLITE_READ:
                preparing.reads.add((lowered, (column or "").lower(), database.lower() if database else None))
            elif action == apsw.SQLITE_FUNCTION:
                preparing.functions.add((column or "").lower())
            elif action not in READ_ACTIONS:
                preparing.others = True
        if action == apsw.SQLITE_SELECT:
            context.selects += 1
            return apsw.SQLITE_OK
        if action in _DDL:
            return self._ddl(action, name, column, database)
        if action in (apsw.SQLITE_ATTACH, apsw.SQLITE_DETACH):
            self.schema_changed()  # names may now resolve to other tables
        if not name:
            return apsw.SQLITE_OK
        if action == apsw.SQLITE_READ:
            context.tables.add(lowered)
            if column:
                context.columns.setdefault(lowered, set()).add(column.lower())
            if not ours and not lowered.startswith("sqlite_"):
                context.foreign_reads = True
            procedure = self.procedures.get(lowered) if ours else None
            if procedure is not None:
                refusal = self.runner.refusal(procedure)
                if refusal is not None:
                    context.refused = refusal
                    return apsw.SQLITE_DENY
        elif action in _WRITES and ours and lowered in self.api_tables:
            refusal = self.writer.refusal(self.api_tables[lowered], _WRITES[action])
            if refusal is not None:
                context.refused = refusal
                return apsw.SQLITE_DENY
            if action == apsw.SQLITE_DELETE:
                context.deletes.add(lowered)
        elif action in _WRITES and ours:
            context.refused = exc.NotSupportedError(f"{name} is a system table of apidriver: it cannot be changed.")
            return apsw.SQLITE_DENY
        return apsw.SQLITE_OK

    def _ddl(self, action: int, name: str | None, detail: str | None, database: str | None) -> int:
        """CREATE/DROP/ALTER: allowed on local objects, refused on anything that would touch or
        shadow the API's tables, the sys tables or the procedures (in main, temp, and the cache's
        schemas; a database the user attached may have tables of those names)."""
        what = _DDL[action]
        self.schema_changed()
        if action == apsw.SQLITE_ALTER_TABLE:
            database, name = name, detail  # ALTER TABLE reports (database, table)
        elif action in _ON_TABLE:
            name = detail or name  # the table the index or trigger is on
        lowered = (name or "").lower()
        if lowered in self.reserved and (database or "main").lower() in _OWN_SCHEMAS:
            kind = "a procedure" if lowered in self.procedures else "an API table" if lowered in self.api_tables else "a system table"
            message = (
                f"{what} {name}: {name} is {kind} of this connection and cannot be created, dropped, altered, "
                f"indexed or shadowed. {LOCAL_HINT}"
            )
        elif action == apsw.SQLITE_CREATE_VTABLE and (detail or "").lower() in self.modules:
            message = f"CREATE VIRTUAL TABLE {name} USING {detail}: that module serves apidriver's own tables only. {LOCAL_HINT}"
        else:
            return apsw.SQLITE_OK
        self.current.context.refused = exc.NotSupportedError(message)
        return apsw.SQLITE_DENY

    def _one_table(self, prepared: _Prepared, selects: int) -> str | None:
        """The API table a statement of one SELECT reads, by nothing but its columns, or None."""
        if prepared.others or selects != 1:
            return None
        tables = {name for name, _, _ in prepared.reads if name not in TABLE_FUNCTIONS}
        if len(tables) != 1:
            return None
        (name,) = tables
        spec = self.api_tables.get(name)
        if spec is None:
            return None
        known = {c.name.lower() for c in spec.columns}
        for table, column, database in prepared.reads:
            if table in TABLE_FUNCTIONS:
                if database != "main":
                    return None
            # A table read for its rows alone (count(*)) is reported with no column and no database.
            elif database != ("main" if column else None) or (column and column not in known):
                return None
        return name

    def _whole_list(self, sql: str, bindings: Any) -> bool:
        """Whether every plan of the statement reads its table's whole list (EXPLAIN QUERY PLAN:
        nothing runs): only then is it answered from that list's snapshot, which a copy holds."""
        details = [str(row[3]) for row in self.db.cursor().execute(sql, bindings, can_cache=False, explain=2)]
        plans = [d.split(":", 1)[1] for d in details if " VIRTUAL TABLE INDEX " in d and ":" in d]
        return bool(plans) and all(reads_whole_list(p) for p in plans)

    def shape(self, sql: str, bindings: Any) -> Shape:
        """What SQLite's authorizer reports while it prepares ``sql``, and its result columns.

        The statement is prepared on its own (not from APSW's statement
        cache) and stopped before its first step, so nothing runs. Decided
        once per SQL text, until a schema change (the authorizer then
        clears what was learned).

        ``in_sets``: APSW fails a statement when an all-at-once IN gets an
        empty set from a subquery, so sets are used only when SQLite reports
        a single SELECT and no table but ours: then every IN has a literal
        or bound list on its right. ``in_affinity``: for other statements,
        what their IN subqueries apply to their values, read from an EXPLAIN
        of the statement (also nothing runs). ``description``: a cached statement
        prepared before a schema change describes the old columns until it
        is stepped, so a result without rows takes its columns from here.
        """
        known = self.shapes.get(sql)
        if known is not None:
            self.shapes.move_to_end(sql)
            return known
        self.preparing = prepared = _Prepared()
        described: list[tuple[tuple[str, str | None], ...]] = []
        single: list[bool] = []

        def first(cursor: apsw.Cursor, statement: str, values: Any) -> bool:
            described.append(cursor.get_description())
            single.append(sql.startswith(statement) and not has_statement(sql[len(statement) :]))
            return False  # stop before the statement runs

        cursor = self.db.cursor()
        cursor.exec_trace = first
        try:
            with self.current.probing() as probe:
                try:
                    cursor.execute(sql, bindings, can_cache=False)
                except apsw.ExecTraceAbort:
                    pass
                self.preparing = None
                in_sets = probe.selects <= 1 and not probe.foreign_reads
                one_table = None if prepared.writes or prepared.ddl else self._one_table(prepared, probe.selects)
                if one_table is not None and not self._whole_list(sql, bindings):
                    one_table = None  # a GET by key or an API filter: that request, not the list's snapshot
                # What IN subqueries apply to their values, read from the compiled program (only
                # statements with subqueries or other tables have them).
                program = [] if in_sets else self.db.cursor().execute(sql, bindings, can_cache=False, explain=1).fetchall()
        except Exception:
            return Shape()  # the statement itself will fail (with its own error)
        finally:
            self.preparing = None
        # DDL reports writes too (DROP TABLE deletes the table's rows): they are not DML.
        writes = [] if prepared.ddl else [(action, api) for action, api, trigger in prepared.writes if trigger is None]
        local = [] if prepared.ddl else [action for action, api, _ in prepared.writes if not api]
        answer = Shape(
            in_sets=in_sets,
            in_affinity=in_affinity(program),
            description=described[0] if described else (),
            writes=bool(writes),
            local_writes=bool(local),
            local_insert=any(action == apsw.SQLITE_INSERT and not api for action, api in writes),
            renames_temp=prepared.alters_temp and prepared.renames,
            one_table=one_table,
            columns=frozenset(column for table, column, _ in prepared.reads if column and table == one_table),
            functions=frozenset(prepared.functions),
            single=bool(single) and single[0],
        )
        self.shapes[sql] = answer
        while len(self.shapes) > 512:
            self.shapes.popitem(last=False)
        return answer
