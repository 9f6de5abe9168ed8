"""Cancelling a running statement from another thread.

Each statement has one :class:`Cancel`. ``Connection.interrupt()``,
``Cursor.cancel()`` and a ``Connection.close()`` from another thread set it;
every wait of the statement watches it and ends at once with
:class:`~.exceptions.QueryCancelledError`: waits for a request's answer
(``StatementContext.result``), retry backoffs, ``429`` waits and rate pacing
(``ApiClient``), and SQLite's own work (the connection's progress handler).
A request already on the wire is not cut: its answer is simply not waited
for, and its retries are not made.
"""

from __future__ import annotations

import threading
from concurrent.futures import FIRST_COMPLETED, Future, wait
from typing import Any, TypeVar

from .exceptions import QueryCancelledError

T = TypeVar("T")


class Cancel:
    """A one-way switch, set from any thread, that ends the waits of one statement."""

    def __init__(self) -> None:
        # The future is made when something first waits on it: most statements are never
        # cancelled and never wait, and a Future (a Condition and its locks) costs microseconds.
        self._future: Future[None] | None = None
        self._set = False
        self._lock = threading.Lock()
        self.reason = ""

    @property
    def _signal(self) -> Future[None]:
        """A future that is done once the statement is cancelled (what waits watch)."""
        with self._lock:
            if self._future is None:
                self._future = Future()
                if self._set:
                    self._future.set_result(None)
            return self._future

    def set(self, reason: str) -> None:
        """Cancel (the first reason given is kept)."""
        with self._lock:
            if not self._set:
                self._set = True
                self.reason = reason
                if self._future is not None:
                    self._future.set_result(None)

    @property
    def is_set(self) -> bool:
        return self._set

    def error(self, note: str = "") -> QueryCancelledError:
        return QueryCancelledError(f"{self.reason}{note}")

    def check(self, note: str = "") -> None:
        """Raise :class:`QueryCancelledError` if cancelled."""
        if self._set:
            raise self.error(note)

    def sleep(self, seconds: float) -> None:
        """``time.sleep(seconds)`` that ends (raising) as soon as the statement is cancelled."""
        if seconds > 0:
            wait([self._signal], timeout=seconds)
        self.check()

    def wait(self, seconds: float, *others: Cancel) -> None:
        """Sleep ``seconds``, or until this or one of ``others`` is set (raises nothing)."""
        if seconds > 0:
            signals: list[Future[Any]] = [self._signal, *(o._signal for o in others)]
            wait(signals, timeout=seconds, return_when=FIRST_COMPLETED)

    def result(self, future: Future[T]) -> T:
        """``future.result()``, unless the statement is cancelled first (then the future is cancelled too)."""
        if not future.done():
            waited: list[Future[Any]] = [future, self._signal]
            wait(waited, return_when=FIRST_COMPLETED)
        if self._set:
            future.cancel()
            raise self.error()
        return future.result()


__all__ = ["Cancel"]
