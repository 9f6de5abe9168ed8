"""SQLite's errors (APSW's, or a virtual table's) as DB-API exceptions, with what to do about them.

One place for the translation: the cursor, the connection and the cache's
statements all raise what SQLite raised through it.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import apsw

from .. import exceptions as exc
from ..exceptions import sentence

if TYPE_CHECKING:
    from .statement import StatementContext


def translate(error: BaseException, sql: str | None = None, context: StatementContext | None = None) -> BaseException:
    """An exception from APSW or a virtual table as a DB-API exception."""
    if isinstance(error, exc.Error) or not isinstance(error, Exception):
        return error
    if context is not None and context.cancel.is_set:
        return context.cancel.error()  # SQLite interrupted by the progress handler, or a wait that ended
    message = str(error)
    if isinstance(error, apsw.SQLError):
        text = message.removeprefix("SQLError: ")
        if text == "<NULL>":
            text = (
                "SQLite failed to pass an IN (...) list to an API table (an empty subquery result?). "
                "Rewrite the condition as a join or EXISTS, or give the values as parameters."
            )
        if text.startswith(("virtual tables may not be", "table ")) and ("may not be" in text):
            return exc.NotSupportedError(
                f"{text}: the API tables cannot be altered, indexed or changed that way. "
                "For scratch work use CREATE TEMP TABLE with a name that is not an API table."
            )
        if "no such table" in text:
            text += ". See the table list with SELECT name FROM sys_tables."
        elif "no such column" in text:
            text += ". See the columns with SELECT table_name, column_name FROM sys_tablecolumns."
        return exc.ProgrammingError(text)
    if isinstance(error, KeyError) and sql is not None and error.args and isinstance(error.args[0], str):
        name = error.args[0]
        if any(f"{mark}{name}" in sql for mark in ":@$"):
            return exc.ProgrammingError(
                f"No value for the parameter :{name}: pass it in the mapping of parameters, e.g. execute(sql, {{{name!r}: ...}})."
            )
    if isinstance(error, apsw.BindingsError):
        return exc.ProgrammingError(f"Wrong parameters for the statement: {message}")
    if isinstance(error, apsw.ConstraintError):
        return exc.IntegrityError(message)
    if isinstance(error, apsw.ReadOnlyError):
        return exc.NotSupportedError(message)
    if isinstance(error, (apsw.TooBigError, apsw.MismatchError)):
        return exc.DataError(message)
    if isinstance(error, apsw.ThreadingViolationError):
        return exc.ProgrammingError(f"{message} (a connection may not be used by two threads at once).")
    if isinstance(error, apsw.Error):
        return exc.OperationalError(message)
    return exc.InternalError(f"Unexpected {type(error).__name__} inside apidriver: {sentence(message)} Please report this.")
