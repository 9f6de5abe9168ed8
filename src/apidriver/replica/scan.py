"""Complete scans of offset-paged lists: windows that overlap, linked by a common row, under creates and deletes.

An offset-paged list shifts while it is read: a row
deleted before the current offset moves every later row one place up, so a
plain page loop skips a row that exists for the whole read (and a row
created at the head makes one come twice, which is harmless). A
:class:`Scan` reads *windows* that overlap: window 1 is page 1; every next
one starts a few rows before the previous one ends (``page`` and
``per_page`` chosen so that ``(page - 1) * per_page`` falls there, see
:func:`window_plan`). A window is *accepted* when it has a row (by key) in
common with the last accepted window; window 1 always is. Then every row
that exists for the whole scan is in an accepted window: by induction, such
a row not read so far comes after the last row of the last accepted window
(a common row ``Z`` was after-or-at that last row, and the new window holds
``Z`` and ends later), so once an accepted window is the list's last one,
there is no such row left. The argument needs no timing: it holds for pages
fetched concurrently, in any order. A window that shares no row with the
last accepted one is not accepted: if it is wholly newer than it (rows
created at the head pushed the list down), the next window is read; else
(rows deleted before it pulled the list up, or the common rows themselves
went) the last accepted window's place is read again, then the ones before
it, until a window shares a row with it (back to window 1 if need be), and
the scan goes on from there. Each such re-read costs one request (a shift
of ``d`` rows costs about ``d / page size`` + 1); a list that keeps changing
faster than it can be read ends the scan with an error, never a partial
result. Cost without changes: about one request per 85 rows at 100 rows a
page (+18% over plain pages), as window sizes must divide their starts.

A :class:`Scan` reads through an :class:`~.reader.ApiReader` (its requests
are counted there). :class:`OrderCheck` checks, page after page, that a list
comes newest first, as a scan's reasoning and an incremental sync assume.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Hashable, Iterable, Iterator, Sequence
from concurrent.futures import Future
from dataclasses import dataclass
from functools import lru_cache
from typing import Any

from .. import exceptions as exc
from ..engine.schema import Endpoint
from .clock import Moment
from .reader import ApiReader, Obj, Page, drain

MIN_OVERLAP_SHARE = 20  # windows overlap by at least 1/20 of the page size (5 rows at 100)
SMALL_PAGE = 20
STALE_WINDOWS = 3  # accepted windows in a row that bring no new row: the list repeats itself
LINKS = 3  # accepted windows a new one may link to


@dataclass(frozen=True)
class Window:
    """Rows ``[start, end)`` of a list: page ``page`` of ``size`` rows."""

    page: int
    size: int

    @property
    def start(self) -> int:
        return (self.page - 1) * self.size

    @property
    def end(self) -> int:
        return self.page * self.size


_PLANS_LOCK = threading.Lock()


@lru_cache(maxsize=16)
def _plans(size: int) -> list[Window]:
    return [Window(1, size)]


def window_plan(size: int, index: int) -> Window:
    """The ``index``-th window (from 0) of a complete scan with pages of about ``size`` rows.

    Window 0 is page 1. Each next window starts at least ``size / 20`` rows
    (1 at least) before the previous one ends and ends as late as can be,
    with a ``per_page`` between ``size / 2`` and ``size`` that divides its
    start. Small pages (under ``SMALL_PAGE`` rows, which only tests use) may
    be up to twice as large: too few sizes divide their starts.
    """
    plan = _plans(size)
    if index < len(plan):
        return plan[index]
    minimum = max(1, size // MIN_OVERLAP_SHARE)
    largest = size if size >= SMALL_PAGE else 2 * size + 1
    with _PLANS_LOCK:  # scans of one size share the plan, from several threads
        return _extend(plan, size, index, minimum, largest)


def _extend(plan: list[Window], size: int, index: int, minimum: int, largest: int) -> Window:
    while len(plan) <= index:
        end = plan[-1].end
        best: Window | None = None
        top = largest
        while best is None:  # (only tiny sizes ever need more than one round)
            for per_page in range(top, (size + 1) // 2 - 1, -1):
                start = (end - minimum) // per_page * per_page
                if start >= 0 and start + per_page > end and (best is None or start + per_page > best.end):
                    best = Window(start // per_page + 1, per_page)
            top *= 2
        plan.append(best)
    return plan[index]


class Scan:
    """A complete reading of an offset-paged list, newest first (see the module's docstring).

    Iterating yields every window read (its rows are real, accepted or not),
    in the order read, those read ahead and no longer needed included. Afterwards ``complete`` says whether the list was
    read to its end (``wanted`` can stop it earlier), ``started`` and
    ``ended`` bound the reading, ``rereads`` counts the
    windows read again. ``key`` identifies a row; ``order`` gives its
    position key (``created_at``: larger is newer), used only to tell a list
    pushed down by new rows from one pulled up by deletions.
    """

    def __init__(
        self,
        reader: ApiReader,
        endpoint: Endpoint,
        includes: Iterable[str],
        key: Callable[[Obj], Hashable],
        order: Callable[[Obj], Any] | None = None,
        wanted: Callable[[Page], bool] = lambda page: True,
        expected: int | None = None,
    ) -> None:
        self.reader = reader
        self.endpoint = endpoint
        self.includes = tuple(includes)
        self.key = key
        self.order = order
        self.wanted = wanted
        self.expected = expected  # rows the list is thought to have: windows past them are fetched one at a time
        self.complete = False
        self.rereads = 0
        self.started: Moment | None = None
        self.ended: Moment | None = None

    def _fetch(self, index: int) -> Page:
        window = window_plan(self.reader.size, index) if self.endpoint.paginated else Window(1, self.reader.size)
        page = self.reader.fetch_page(self.endpoint, self.includes, window.page, size=window.size)
        page.number = index + 1
        return page

    def _expected_windows(self) -> int | None:
        if self.expected is None:
            return None
        index = 0
        while window_plan(self.reader.size, index).end < self.expected:
            index += 1
        return index + 1

    def _newer(self, page: Page, anchor: Any) -> bool:
        """Whether every row of ``page`` is newer than every row of the anchor window (the list was pushed down)."""
        if self.order is None or anchor is None or not page.objects:
            return False
        oldest = self.order(page.objects[-1])
        return oldest is not None and oldest > anchor

    def __iter__(self) -> Iterator[Page]:
        reader = self.reader
        self.started = reader.clock.moment()
        chain: list[tuple[int, set[Hashable], Any]] = []  # accepted windows: (index, keys, newest order value)
        seen: set[Hashable] = set()
        futures: dict[int, Future[Page]] = {}
        index, ahead, mark, stale = 0, 1, 0, 0
        expected = self._expected_windows()
        budget = 10
        try:
            while True:
                top = index + ahead
                if expected is not None and index < expected:
                    top = min(top, expected)
                for i in range(index, max(top, index + 1)):
                    if i not in futures:
                        futures[i] = reader.submit(self._fetch, i)
                page = futures.pop(index).result()
                keys = {self.key(o) for o in page.objects}
                # A link to any of the last accepted windows will do (the chain goes on from that one):
                # when the anchor's own rows were deleted, the one before it still links.
                link = next((j for j in range(len(chain) - 1, max(-1, len(chain) - 1 - LINKS), -1) if keys & chain[j][1]), None)
                page.accepted = index == 0 or link is not None
                yield page
                if page.accepted:
                    newest = self.order(page.objects[0]) if self.order is not None and page.objects else None
                    del chain[0 if index == 0 else link + 1 :]  # type: ignore[operator]
                    chain.append((index, keys, newest))
                    stale = stale + 1 if page.more and keys <= seen else 0
                    seen |= keys
                    if not page.more:
                        self.complete = True
                        yield from drain(futures)
                        return
                    if not self.wanted(page):
                        yield from drain(futures)
                        return
                    if stale >= STALE_WINDOWS:
                        raise exc.UnexpectedResponseError(  # a server that ignores the page parameter, or cycles
                            f"GET {self.endpoint.path} repeats itself: {stale} pages in a row brought no row not read before; "
                            "the list was not read whole. Check BaseURL: something there may not page this list."
                        )
                    budget += 1
                    if index >= mark:
                        ahead = min(ahead * 2, reader.concurrency)
                        mark = index + ahead
                    index += 1
                    continue
                seen |= keys
                anchor_index, _, anchor_newest = chain[-1]
                newer = self._newer(page, anchor_newest)
                if page.more and newer and index > anchor_index:
                    index += 1  # pushed down by new rows: the rows in common come later
                    continue
                # Pulled up by deletions (or the rows in common went): read the anchor's own window again,
                # then the ones before it, until one shares a row with the anchor; a window wholly newer
                # than the anchor there means its rows went: start again from the head.
                self.rereads += 1
                reader.count_reread()
                if self.rereads > budget:
                    raise exc.OperationalError(
                        f"GET {self.endpoint.path} kept changing while it was read ({self.rereads} pages read again); "
                        "the list was not read whole. Try again."
                    )
                yield from drain(futures)
                index = anchor_index if index > anchor_index else 0 if newer else index - 1
                if index <= 0:
                    index = 0
                    chain.clear()
                ahead, mark = 1, index
        finally:
            for future in futures.values():
                future.cancel()
            self.ended = reader.clock.moment()


class OrderCheck:
    """Checks that a list comes newest first, page after page, as the sync assumes.

    A scan's windows overlap, so each page is checked on its own (``fresh``);
    the newest value seen is the watermark of the next sync.
    """

    def __init__(self) -> None:
        self.broken = False
        self.newest: str | None = None
        self._previous: Any = None

    def check(self, values: Sequence[Any], fresh: bool = True) -> None:
        if fresh:
            self._previous = None
        for value in values:
            if value is None:
                continue
            if self.newest is None or value > self.newest:
                self.newest = value
            if self._previous is not None and value > self._previous:
                self.broken = True
            self._previous = value
