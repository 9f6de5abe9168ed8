"""What the driver's second SQLite connections share: the SQLite cache's reader (cache/reader.py)
and the copies of CacheTTL snapshots (engine/copies.py) run statements the driver's own connection
would otherwise run, so each must read only, stop when the statement is cancelled, and describe a
statement exactly as the driver's connection would before it may take it."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, NamedTuple

import apsw

if TYPE_CHECKING:
    from .schema import Table

Description = tuple[tuple[str, str | None], ...]
"""A result's columns: (name, declared type) each."""


class Route(NamedTuple):
    """Where a statement runs instead of the driver's connection: that connection, the result's
    description as the driver's connection gives it (its declared types), and, for the cache's
    reader, the cache tables it reads (AutoCache brings them up to date before each run)."""

    db: apsw.Connection
    description: Description
    tables: tuple[Table, ...] = ()


# SQLite calls the progress handler every this many virtual-machine steps: how soon a
# cancel stops SQLite's own work (a long join or a runaway recursive CTE).
PROGRESS_STEPS = 1000

READ_ACTIONS = frozenset({apsw.SQLITE_SELECT, apsw.SQLITE_READ, apsw.SQLITE_FUNCTION, apsw.SQLITE_RECURSIVE})
"""The authorizer's actions of a statement that only reads."""

TABLE_FUNCTIONS = frozenset({"json_each", "json_tree"})
"""SQLite's own table-valued functions: the same on every connection."""


def reads_only(action: int, a: str | None, b: str | None, database: str | None, trigger: str | None) -> int:
    """An authorizer for a connection that only ever reads."""
    return apsw.SQLITE_OK if action in READ_ACTIONS else apsw.SQLITE_DENY


def described(db: apsw.Connection, sql: str, bindings: Any) -> Description | None:
    """The result columns of ``sql`` prepared on ``db`` (nothing runs), or None if it cannot be prepared
    there or is not one statement returning rows."""
    seen: list[Description] = []

    def look(cursor: apsw.Cursor, text: str, values: Any) -> bool:
        if seen or not (sql.startswith(text) and not sql[len(text):].strip(" \t\r\n;")):
            seen.clear()
            seen.append(())
            return False
        seen.append(tuple(cursor.get_description()))
        return False

    cursor = db.cursor()
    cursor.exec_trace = look
    try:
        cursor.execute(sql, bindings, can_cache=False)
    except apsw.ExecTraceAbort:
        pass
    except Exception:
        return None
    finally:
        cursor.close(force=True)
    return seen[0] if len(seen) == 1 and seen[0] else None


def defined_by_the_application(db: apsw.Connection) -> set[str]:
    """Functions registered on the connection (not SQLite's): a second connection does not have them."""
    return {str(row[0]).lower() for row in db.execute("SELECT name FROM pragma_function_list WHERE builtin = 0")}


__all__ = ["PROGRESS_STEPS", "READ_ACTIONS", "Route", "TABLE_FUNCTIONS", "Description", "defined_by_the_application", "described", "reads_only"]
