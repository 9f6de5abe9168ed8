"""The worker threads that send a connection's requests concurrently.

Unlike ``concurrent.futures.ThreadPoolExecutor``, the pool holds no thread
while idle: a worker starts when work arrives and more than the idle ones
can take, up to ``max_workers``, and ends after ``idle_seconds`` without
work. Workers are daemon threads, and nothing joins them at exit, so a
request stalled in a page fetched ahead never holds up the end of the
process (an executor's workers are joined at exit: up to
(1 + MaxRetries) × Timeout). Work queued but not started is cancelled by
:meth:`Workers.shutdown`; a request under way ends on its own (its
Timeout), and nobody waits for it.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from .. import exceptions as exc

_names = itertools.count(1)


class Workers:
    """Threads on demand for one connection (``max_workers`` at most)."""

    def __init__(self, max_workers: int, name: str = "apidriver-http", idle_seconds: float = 1.0) -> None:
        self.max_workers = max_workers
        self.name = name
        self.idle_seconds = idle_seconds
        self._queue: deque[tuple[Future[Any], Callable[..., Any], tuple[Any, ...], dict[str, Any]]] = deque()
        self._cond = threading.Condition()
        self._threads = 0
        self._idle = 0
        self._busy = 0
        self._shutdown = False
        self._on_idle: Callable[[], None] | None = None

    @property
    def threads(self) -> int:
        """Worker threads alive now."""
        with self._cond:
            return self._threads

    def submit(self, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Future[Any]:
        """Run ``fn(*args, **kwargs)`` on a worker; its future holds the result or the exception."""
        future: Future[Any] = Future()
        with self._cond:
            if self._shutdown:
                raise exc.InterfaceError("The connection is closed.")
            self._queue.append((future, fn, args, kwargs))
            if len(self._queue) > self._idle and self._threads < self.max_workers:
                self._threads += 1
                thread = threading.Thread(target=self._work, name=f"{self.name}-{next(_names)}", daemon=True)
                thread.start()
            else:
                self._cond.notify()
        return future

    def _work(self) -> None:
        while True:
            with self._cond:
                idle_until = time.monotonic() + self.idle_seconds
                while not self._queue and not self._shutdown:
                    left = idle_until - time.monotonic()
                    if left <= 0:
                        break
                    self._idle += 1
                    self._cond.wait(left)
                    self._idle -= 1
                if not self._queue:  # idle too long, or shut down
                    self._threads -= 1
                    self._cond.notify_all()
                    return
                future, fn, args, kwargs = self._queue.popleft()
                self._busy += 1
            try:
                if future.set_running_or_notify_cancel():
                    try:
                        future.set_result(fn(*args, **kwargs))
                    except BaseException as error:  # noqa: BLE001 - handed to whoever waits on the future
                        future.set_exception(error)
            finally:
                del future, fn, args, kwargs  # hold nothing while idle
                with self._cond:
                    self._busy -= 1
                    self._cond.notify_all()
                    then = self._take_on_idle()
                if then is not None:
                    then()

    def _take_on_idle(self) -> Callable[[], None] | None:
        """The shutdown callback, once, when nothing runs any more (the lock is held)."""
        if self._shutdown and not self._busy and not self._queue and self._on_idle is not None:
            then, self._on_idle = self._on_idle, None
            return then
        return None

    def wait_idle(self, timeout: float) -> bool:
        """Wait until no work is queued or running (at most ``timeout`` seconds); whether it is so."""
        with self._cond:
            return self._cond.wait_for(lambda: not self._queue and not self._busy, timeout)

    def shutdown(self, on_idle: Callable[[], None] | None = None) -> None:
        """Cancel queued work and let the workers end (work under way finishes on its own).

        ``on_idle`` runs once nothing runs any more: at once, or in the last
        worker to finish (the connection closes its sockets there, so no
        socket is closed under a request still reading from it).
        """
        with self._cond:
            self._shutdown = True
            while self._queue:
                self._queue.popleft()[0].cancel()
            if on_idle is not None and self._on_idle is None:
                self._on_idle = on_idle
            self._cond.notify_all()
            then = self._take_on_idle()
        if then is not None:
            then()


__all__ = ["Workers"]
