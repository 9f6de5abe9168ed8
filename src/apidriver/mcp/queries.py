"""Running one statement for an assistant: in a worker thread, under a row cap, with progress and cancellation.

The DB-API cursor blocks, so the statement runs in a worker thread while
the event loop stays free to report progress (the HTTP requests sent, the
rows read from the API) and to hear a cancellation. A cancellation (the MCP client's
``notifications/cancelled``, or the server's ``--timeout``) calls
``Cursor.cancel()``: the driver's waits end at once, nothing more is sent,
and the runner waits for the thread so that the connection is free for the
next statement. Statements run one at a time: a connection is used by one
thread at a time.

The result is compact: the column names once, then the rows as lists, with
timestamps as ISO 8601 UTC text and JSON columns as nested JSON (as
``apidriver query --format json`` prints them).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, Sequence
from contextlib import nullcontext
from dataclasses import dataclass
from typing import Any

import anyio

from .. import Connection, Error, QueryCancelledError
from ..cli.output import json_value
from ..cli.statement import ParameterError, check_parameters, parameters_of
from ..cursor import Cursor
from .confine import Confinement

__all__ = ["Limits", "QueryRunner", "StatementError"]

logger = logging.getLogger(__name__)

HOW_TO_PASS = "pass values in `parameters`: a list for ? placeholders, an object for :name placeholders"
REQUEST_LOG = 20  # requests listed in a result; the count is always complete
PROGRESS_EVERY = 0.25  # seconds between progress notifications (only when something changed)

Progress = Callable[[int, int], Awaitable[None]]
"""``await progress(requests, rows)`` while a statement runs."""


class StatementError(Exception):
    """A statement failed: the message is the DB-API error's (never the key), ready for the assistant."""


@dataclass(frozen=True)
class Limits:
    """The server's caps: rows returned by default and at most, and how long a statement may run."""

    default_rows: int = 100
    max_rows: int = 1000
    timeout: float | None = 300.0

    def rows(self, asked: int | None) -> int:
        """The row cap of one call: what was asked, within 1..max_rows; the default when nothing was."""
        if asked is None:
            return self.default_rows
        if asked < 1:
            raise StatementError(f"max_rows must be at least 1 (got {asked}); leave it out for the default of {self.default_rows}.")
        return min(asked, self.max_rows)


class _Statement:
    """One statement on its worker thread; :meth:`cancel` and the counters are safe from the event loop."""

    def __init__(self, cursor: Cursor, sql: str, parameters: Sequence[Any] | Mapping[str, Any] | None, cap: int) -> None:
        self.cursor = cursor
        self.sql = sql
        self.parameters = parameters
        self.cap = cap
        self.finished = threading.Event()
        self._cancelled = False

    def run(self) -> dict[str, Any]:
        try:
            if self._cancelled:
                raise QueryCancelledError("The statement was cancelled before it started.")
            bound = _bindings(self.cursor.connection, self.sql, self.parameters)  # SQLite names them: with the connection's turn
            cursor = self.cursor.execute(self.sql, bound)
            if cursor.description is None:  # INSERT, DELETE, CREATE TEMP TABLE: how many rows it changed
                return {"columns": [], "rows": [], "rows_affected": max(cursor.rowcount, 0), "truncated": False, "row_count": None}
            types = [d[1] for d in cursor.description]
            rows: list[list[Any]] = []
            truncated = False
            while (row := cursor.fetchone()) is not None:
                if len(rows) == self.cap:
                    truncated = True  # one row more than the cap exists: stop reading (and sending)
                    break
                rows.append([json_value(value, kind) for value, kind in zip(row, types)])
            return {
                "columns": [str(d[0]) for d in cursor.description],
                "rows": rows,
                "rows_affected": None,
                "truncated": truncated,
                "row_count": None if truncated else len(rows),
            }
        finally:
            self.finished.set()

    def cancel(self) -> None:
        self._cancelled = True
        self.cursor.cancel()

    async def stopped(self) -> None:
        """Wait for the thread, cancelling again until it ends (a cancel just before ``execute`` would be lost)."""
        while not self.finished.is_set():
            self.cancel()
            await anyio.sleep(0.02)


class QueryRunner:
    """Runs the assistant's statements on one connection, one at a time."""

    def __init__(self, connection: Connection, limits: Limits) -> None:
        self.connection = connection
        self.limits = limits
        self.confinement = Confinement(connection)
        self._lock = anyio.Lock()

    async def run(
        self,
        sql: str,
        parameters: Sequence[Any] | Mapping[str, Any] | None = None,
        max_rows: int | None = None,
        progress: Progress | None = None,
    ) -> dict[str, Any]:
        """The statement's result as the ``run_query`` tool returns it; :class:`StatementError` when it fails."""
        if not sql.strip():
            raise StatementError("sql is empty: give one SQL statement, e.g. SELECT id, status FROM Jobs LIMIT 10.")
        cap = self.limits.rows(max_rows)
        async with self._lock:
            cursor = self.connection.cursor()
            statement = _Statement(cursor, sql, parameters, cap)
            self.confinement.reset()
            started = time.perf_counter()
            timeout = self.limits.timeout
            try:
                with anyio.fail_after(timeout) if timeout else nullcontext():
                    outcome = await _drive(statement, progress)
            except TimeoutError:
                raise StatementError(
                    f"QueryCancelledError: the statement ran longer than {timeout:g} s (the server's --timeout) and was cancelled; "
                    "nothing more was sent. Narrow it with filters the API answers (see describe_table) or a LIMIT."
                ) from None
            except Error as error:
                raise StatementError(self._message(error)) from None
            except ParameterError as error:
                raise StatementError(f"ProgrammingError: {error}.") from None
            finally:
                requests = cursor.requests
                cursor.close()
        elapsed = time.perf_counter() - started
        shown = [str(r) for r in requests[:REQUEST_LOG]]
        if len(requests) > REQUEST_LOG:
            shown.append(f"... and {len(requests) - REQUEST_LOG} more")
        result = {
            **outcome,
            "max_rows": cap,
            "requests": len(requests),
            "request_log": shown,
            "elapsed_ms": round(elapsed * 1000, 1),
        }
        if outcome["truncated"]:
            result["note"] = (
                f"Only the first {cap} rows: there are more. Narrow the query (WHERE, LIMIT/OFFSET, an aggregate)"
                + (f", or ask for up to max_rows={self.limits.max_rows}." if cap < self.limits.max_rows else ".")
            )
        return result

    def _message(self, error: Error) -> str:
        if self.confinement.refused is not None:
            return f"NotSupportedError: {self.confinement.refused}"
        text = " ".join(part.strip() for part in str(error).splitlines() if part.strip())
        return f"{type(error).__name__}: {text}"


async def _drive(statement: _Statement, progress: Progress | None) -> dict[str, Any]:
    """Run ``statement`` on a worker thread, reporting progress; a cancellation cancels it and waits for the thread."""
    outcome: dict[str, Any] = {}
    failure: Exception | None = None
    async with anyio.create_task_group() as group:
        if progress is not None:
            group.start_soon(_report, statement, progress)
        try:
            outcome = await anyio.to_thread.run_sync(statement.run, abandon_on_cancel=True)
        except anyio.get_cancelled_exc_class():
            statement.cancel()
            with anyio.CancelScope(shield=True):
                await statement.stopped()
            raise
        except Exception as error:  # raised after the group, unwrapped (a task group would wrap it in a group)
            failure = error
        finally:
            group.cancel_scope.cancel()
    if failure is not None:
        raise failure
    return outcome


async def _report(statement: _Statement, progress: Progress) -> None:
    """Every :data:`PROGRESS_EVERY` seconds, the requests sent and rows read from the API, when either grew."""
    last = (0, 0)
    while True:
        await anyio.sleep(PROGRESS_EVERY)
        now = (len(statement.cursor.requests), statement.cursor.rows_read)
        if now != last:
            last = now
            try:
                await progress(*now)
            except Exception:  # the client left: the statement's own outcome decides what happens
                logger.debug("progress notification failed", exc_info=True)
                return


def _bindings(connection: Connection, sql: str, parameters: Sequence[Any] | Mapping[str, Any] | None) -> Sequence[Any] | Mapping[str, Any] | None:
    """``parameters`` checked against the statement's placeholders as SQLite numbers them (:class:`ParameterError`
    says how to pass them)."""
    if parameters is None:
        positional: Sequence[Any] = ()
        named: Mapping[str, Any] = {}
    elif isinstance(parameters, Mapping):
        positional, named = (), parameters
    elif isinstance(parameters, Sequence) and not isinstance(parameters, (str, bytes)):
        positional, named = parameters, {}
    else:
        raise ParameterError(f"parameters must be a list or an object, not {type(parameters).__name__}; {HOW_TO_PASS}")
    check_parameters(parameters_of(connection, sql), positional, named, HOW_TO_PASS)
    if named:
        return dict(named)
    return tuple(positional) if positional else None
