"""Progress of a long statement on stderr: a transient line with the HTTP requests made, the rows
read from the API tables and the rows returned so far.

Shown only when stderr is a terminal, and only once a statement has run for
``DELAY`` seconds (quick statements print nothing). The counts come from
``cursor.requests`` and ``cursor.rows_read``, which grow while the statement
runs; rich redraws the line from its own refresh thread.
"""

from __future__ import annotations

import sys
import threading
import time
from types import TracebackType
from typing import Self

from rich.console import Console, ConsoleOptions, RenderResult
from rich.live import Live
from rich.spinner import Spinner
from rich.text import Text

from ..cursor import Cursor
from .output import plural

DELAY = 0.3


class Progress:
    """``with Progress(cursor) as progress: ... progress.rows += 1``."""

    def __init__(self, cursor: Cursor, console: Console | None = None, enabled: bool | None = None) -> None:
        self.cursor = cursor
        self.console = console or Console(stderr=True)
        self.enabled = sys.stderr.isatty() if enabled is None else enabled
        self.rows = 0
        self._started = 0.0
        self._spinner = Spinner("dots", style="cyan")
        self._live: Live | None = None
        self._timer: threading.Timer | None = None
        self._lock = threading.Lock()
        self._done = False

    def __enter__(self) -> Self:
        self._started = time.monotonic()
        if self.enabled:
            self._timer = threading.Timer(DELAY, self._show)
            self._timer.daemon = True
            self._timer.start()
        return self

    def _show(self) -> None:
        with self._lock:
            if self._done:
                return
            self._live = Live(
                self, console=self.console, transient=True, refresh_per_second=8, redirect_stdout=False, redirect_stderr=False
            )
            self._live.start()

    def __exit__(self, kind: type[BaseException] | None, error: BaseException | None, tb: TracebackType | None) -> None:
        if self._timer is not None:
            self._timer.cancel()
        with self._lock:
            self._done = True
            if self._live is not None:
                self._live.stop()
                self._live = None

    def text(self) -> str:
        """``87 requests · 8,700 rows read · 12 returned · 2.3 s``.

        Rows read are those SQLite took from the API tables: a GROUP BY or a
        filter SQLite applies reads many rows before it returns any.
        """
        elapsed = time.monotonic() - self._started
        read = plural(self.cursor.rows_read, "row")
        return f"{plural(len(self.cursor.requests), 'request')} · {read} read · {self.rows:,} returned · {elapsed:.1f} s"

    def __rich_console__(self, console: Console, options: ConsoleOptions) -> RenderResult:
        self._spinner.text = Text(self.text(), style="dim")
        yield self._spinner
