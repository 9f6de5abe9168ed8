"""The DB-API module as SQLAlchemy's asyncio extension needs it, the way ``sqlite+aiosqlite`` adapts aiosqlite.

Each DB-API connection gets one worker thread, and every call that may
block (a statement and its HTTP requests, fetching further pages, ping,
close) runs there while the event loop waits on a future: concurrent
statements from many tasks, each on its own pooled connection, overlap and
never block the loop. SQLAlchemy calls these adapters from a greenlet and
they await with ``await_only``, as its own async drivers do.

A buffered statement costs one hop to the worker (execute and fetch every
row together); a streamed one (``stream()``, ``yield_per``) one hop per
batch. Calls that cannot block (``commit``, ``rollback``: writes are
autocommit) run on the loop directly.

Opening a connection never runs on the loop's thread: neither
``apidriver.connect`` (milliseconds of Python: properties, the profile, the
HTTP client, the virtual tables) nor the start of the connection's thread
(``Thread.start`` waits until the new thread runs, which under the GIL can
take several switch intervals). Both happen on one shared opener thread,
one connection at a time: opening is CPU work under the GIL, so opening 50
at once on 50 threads would only make the loop compete with 50 threads for
the GIL instead of one (a cold pool of 50 lagged the loop ~230 ms that way).
"""

from __future__ import annotations

import asyncio
import functools
import os
import threading
from collections.abc import Callable, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any, TypeVar, cast

from sqlalchemy.engine import AdaptedConnection

from ..connection import Connection
from ..cursor import Cursor
from .compat import await_only

__all__ = ["AsyncAdaptedConnection", "AsyncAdaptedCursor", "AsyncDBAPI", "AsyncStreamingCursor"]

T = TypeVar("T")


class Worker:
    """One thread for one connection (a DB-API connection is used by one thread at a time)."""

    def __init__(self) -> None:
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="apidriver-async")

    def start(self) -> None:
        """Start the thread now, from the calling thread (the opener's: never the loop's)."""
        self._executor.submit(_nothing)

    async def run(self, function: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self._executor, functools.partial(function, *args))

    def call(self, function: Callable[..., T], *args: Any) -> T:
        """Run ``function`` on the worker and wait for it from SQLAlchemy's greenlet."""
        result: T = await_only(self.run(function, *args))
        return result

    def shutdown(self) -> None:
        self._executor.shutdown(wait=False)


def _nothing() -> None:
    """What a worker runs first: starting its thread is the point."""


class Opener:
    """The thread that opens connections for every async engine of the process, one at a time.

    Its own thread is started once, when the first engine is created
    (:class:`AsyncDBAPI`), so no later ``connect`` starts a thread on the loop.
    """

    _lock = threading.Lock()
    _executor: ThreadPoolExecutor | None = None

    @classmethod
    def shared(cls) -> ThreadPoolExecutor:
        with cls._lock:
            if cls._executor is None:
                cls._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="apidriver-async-open")
                cls._executor.submit(_nothing).result()
            return cls._executor

    @classmethod
    def _forget(cls) -> None:
        """In a forked child: the parent's thread is not there (an executor would wait for it for ever)."""
        cls._lock = threading.Lock()
        cls._executor = None


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=Opener._forget)


def _open(connect: Callable[[], Connection]) -> tuple[Connection, Worker]:
    """On the opener thread: the DB-API connection, and its worker with its thread started."""
    worker = Worker()
    try:
        connection = connect()
        worker.start()
    except BaseException:
        worker.shutdown()
        raise
    return connection, worker


class AsyncAdaptedCursor:
    """A buffered cursor: ``execute`` runs the statement and fetches every row in one hop."""

    server_side = False

    def __init__(self, connection: AsyncAdaptedConnection) -> None:
        self._adapted = connection
        self._cursor: Cursor = connection.driver.cursor()
        self._rows: list[tuple[Any, ...]] = []
        self._position = 0
        self.arraysize = 1
        self.description: Any = None
        self.rowcount = -1
        self.lastrowid: int | None = None
        self.created_rows: list[dict[str, Any]] = []

    def _run(self, operation: str, parameters: Any) -> None:
        """On the worker thread: the statement, and for a buffered cursor all its rows."""
        self._cursor.execute(operation, parameters)
        if self._cursor.description is not None and not self.server_side:
            self._rows = self._cursor.fetchall()
        self.description = self._cursor.description
        self.rowcount = self._cursor.rowcount
        self.lastrowid = self._cursor.lastrowid
        self.created_rows = self._cursor.created_rows

    def execute(self, operation: str, parameters: Any = None) -> None:
        self._rows, self._position = [], 0
        self._adapted.worker.call(self._run, operation, parameters)

    def executemany(self, operation: str, seq_of_parameters: Sequence[Any]) -> None:
        self._rows, self._position = [], 0
        self._adapted.worker.call(self._cursor.executemany, operation, seq_of_parameters)
        self.description = None
        self.rowcount = self._cursor.rowcount
        self.lastrowid = self._cursor.lastrowid
        self.created_rows = []

    @property
    def requests(self) -> Any:
        """The HTTP requests of the last statement (as ``apidriver.Cursor.requests``)."""
        return self._cursor.requests

    def setinputsizes(self, *sizes: Any) -> None:
        """Accepted and ignored, as PEP 249 allows."""

    def fetchone(self) -> tuple[Any, ...] | None:
        if self._position >= len(self._rows):
            return None
        row = self._rows[self._position]
        self._position += 1
        return row

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        end = self._position + (self.arraysize if size is None else size)
        rows = self._rows[self._position : end]
        self._position += len(rows)
        return rows

    def fetchall(self) -> list[tuple[Any, ...]]:
        rows = self._rows[self._position :]
        self._position = len(self._rows)
        return rows

    def __iter__(self) -> Any:
        while (row := self.fetchone()) is not None:
            yield row

    def close(self) -> None:
        self._rows, self._position = [], 0
        self._cursor.close()

    async def _async_soft_close(self) -> None:
        """SQLAlchemy 2.x's asyncio results call this; the rows are already here, nothing waits."""


class AsyncStreamingCursor(AsyncAdaptedCursor):
    """A server-side cursor (``stream()``): rows are fetched on the worker, batch by batch."""

    server_side = True

    def fetchone(self) -> tuple[Any, ...] | None:
        return self._adapted.worker.call(self._cursor.fetchone)

    def fetchmany(self, size: int | None = None) -> list[tuple[Any, ...]]:
        return self._adapted.worker.call(self._cursor.fetchmany, self.arraysize if size is None else size)

    def fetchall(self) -> list[tuple[Any, ...]]:
        return self._adapted.worker.call(self._cursor.fetchall)

    def close(self) -> None:
        self._adapted.worker.call(self._cursor.close)


class AsyncAdaptedConnection(AdaptedConnection):
    """An ``apidriver.Connection`` driven from asyncio through its own worker thread."""

    __slots__ = ("dbapi", "driver", "worker")

    def __init__(self, dbapi: AsyncDBAPI, connection: Connection, worker: Worker) -> None:
        self.dbapi = dbapi
        self.driver = connection
        self._connection = cast(Any, connection)  # what driver_connection returns
        self.worker = worker

    def cursor(self, server_side: bool = False) -> AsyncAdaptedCursor:
        return AsyncStreamingCursor(self) if server_side else AsyncAdaptedCursor(self)

    @property
    def sqlite(self) -> Any:
        """The APSW connection (the dialect registers SQL functions on it)."""
        return self.driver.sqlite

    @property
    def closed(self) -> bool:
        return self.driver.closed

    def ping(self) -> None:
        self.worker.call(self.driver.ping)

    def commit(self) -> None:
        self.driver.commit()  # nothing to send: writes are autocommit

    def rollback(self) -> None:
        self.driver.rollback()  # nothing to undo; called on every return to the pool

    def close(self) -> None:
        try:
            self.worker.call(self.driver.close)
        finally:
            self.worker.shutdown()


class AsyncDBAPI:
    """The ``apidriver`` module for the async dialects: the same globals and exceptions, async ``connect``."""

    def __init__(self) -> None:
        import apidriver

        self._module = apidriver
        self.paramstyle = apidriver.paramstyle
        self._opener = Opener.shared()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._module, name)

    def connect(self, *args: Any, **kwargs: Any) -> AsyncAdaptedConnection:
        """Open on the opener thread while the loop waits (see the module's docstring).

        If the waiting task is cancelled, what the opener still makes is closed, not leaked.
        """
        opening = self._opener.submit(_open, functools.partial(self._module.connect, *args, **kwargs))
        try:
            connection, worker = await_only(asyncio.wrap_future(opening))
        except BaseException:
            opening.add_done_callback(_discard)
            raise
        return AsyncAdaptedConnection(self, connection, worker)


def _discard(opening: Future[tuple[Connection, Worker]]) -> None:
    """Close a connection opened for a task that stopped waiting for it."""
    if opening.cancelled() or opening.exception() is not None:
        return
    connection, worker = opening.result()
    try:
        connection.close()
    finally:
        worker.shutdown()
