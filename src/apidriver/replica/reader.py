"""Reading the API for a sync: complete scans of offset-paged lists, single objects, the API's clock.

Requests go through the connection's :class:`~apidriver.client.ApiClient`,
so they are retried, paced by ``X-RateLimit-Remaining`` and wait out 429s
like every query. Pages are fetched ahead on a small thread pool (up to
``MaxConcurrency`` at once, the window growing 1, 2, 4, ... while pages come
back full) and handed out in order.

**Complete scans.** An offset-paged list shifts while it is read: a row
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

**Two clocks.** Every read is a :class:`Moment`: when it went out on this
machine's clock (to the microsecond: observations are ordered by it, and a
state read earlier never replaces one read later), and on the API's clock.
Every answer's ``Date`` header says the API's time (whole seconds);
:class:`ApiClock` keeps the offset between it and this machine's clock, so
that the time a row is found gone is on the API's clock, comparable with its
``created_at`` and ``ended_at`` even when the two clocks differ (the
emulator's can be moved forward).
"""

from __future__ import annotations

import datetime as dt
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from email.utils import parsedate_to_datetime
from functools import lru_cache
from typing import Any
from urllib.parse import quote

from .. import exceptions as exc
from ..answers import ApiResponse, RequestRecord
from ..client import ApiClient
from ..engine.schema import Endpoint, Pagination
from ..engine.streams import PageRepeats, has_more, list_params, object_data, page_data

Obj = dict[str, Any]

MIN_OVERLAP_SHARE = 20  # windows overlap by at least 1/20 of the page size (5 rows at 100)
SMALL_PAGE = 20
STALE_WINDOWS = 3
LINKS = 3  # accepted windows a new one may link to  # accepted windows in a row that bring no new row: the list repeats itself


@dataclass(frozen=True)
class Moment:
    """When a request went out: on this machine's clock (``local``) and on the API's (``api``), both UTC."""

    local: dt.datetime
    api: dt.datetime


@dataclass
class Page:
    """One answer of a list: its rows, whether the list goes on, when its request went out."""

    number: int
    objects: list[Obj]
    more: bool
    observed: Moment
    accepted: bool = True  # (scans) part of the chain of windows that proves the scan complete


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


class ApiClock:
    """The API's time, as its ``Date`` headers say it, and this machine's clock mapped onto it.

    A ``Date`` header has whole seconds, so each answer bounds the offset
    (API time minus local time) from both sides; the offset kept is the
    largest lower bound seen while the bounds agree, so the mapped time does
    not go back. When the bounds stop agreeing, the API's clock jumped (the
    emulator's can be moved), and the offset is learnt afresh. An offset
    under ``AGREE`` seconds is taken as 0: the two clocks agree as far as a
    ``Date`` header can tell, and this machine's clock (to the microsecond)
    orders observations better. Without any ``Date`` header the offset is 0.
    One clock serves every sync of an API in a process (:func:`clock_of`).
    """

    AGREE = 2.0

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._low: float | None = None
        self._high: float | None = None

    def learn(self, headers: Mapping[str, str] | None, sent: float, received: float) -> None:
        value = headers.get("date") if headers is not None else None
        if not value:
            return
        try:
            api = parsedate_to_datetime(value).timestamp()
        except (TypeError, ValueError, IndexError, OverflowError):
            return
        low, high = api - received, api + 1.0 - sent
        with self._lock:
            if self._low is None or self._high is None or low > self._high or high < self._low:
                self._low, self._high = low, high
            else:
                self._low, self._high = max(self._low, low), min(self._high, high)

    @property
    def offset(self) -> float:
        low = self._low or 0.0
        return 0.0 if abs(low) < self.AGREE else low

    def moment(self, local: float | None = None) -> Moment:
        """Local time ``local`` (``time.time()`` seconds; by default now) on both clocks."""
        local = time.time() if local is None else local
        utc = dt.timezone.utc
        return Moment(dt.datetime.fromtimestamp(local, utc), dt.datetime.fromtimestamp(local + self.offset, utc))


_CLOCKS: dict[str, ApiClock] = {}
_CLOCKS_LOCK = threading.Lock()


def clock_of(root_url: str) -> ApiClock:
    """The one :class:`ApiClock` of the API at ``root_url`` in this process."""
    with _CLOCKS_LOCK:
        return _CLOCKS.setdefault(root_url, ApiClock())


class ApiReader:
    """The requests of one sync (or one table of it), counted."""

    def __init__(
        self,
        client: ApiClient,
        pagination: Pagination,
        page_size: int,
        concurrency: int,
        observer: Callable[[RequestRecord], None] | None = None,
        clock: ApiClock | None = None,
    ) -> None:
        self.client = client
        self.pagination = pagination
        self.size = min(page_size, pagination.max_size) if pagination.max_size else page_size
        self.concurrency = max(1, concurrency)
        self.observer = observer
        self.clock = clock or ApiClock()
        self.requests = 0
        self.rereads = 0  # windows read again by scans, as the list shifted under them
        self._lock = threading.Lock()
        self._pool = ThreadPoolExecutor(max_workers=self.concurrency, thread_name_prefix="apidriver-sync")

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)

    def _observe(self, record: RequestRecord) -> None:
        with self._lock:
            self.requests += 1
        if self.observer is not None:
            self.observer(record)

    def _get(self, path: str, params: list[tuple[str, str]], scope: str | None, allow_404: bool = False) -> tuple[ApiResponse | None, Moment]:
        """One GET and when it went out (the answer shows the object at that moment or later)."""
        sent = time.time()
        response = self.client.request("GET", path, params=params, scope=scope, observer=self._observe, allow_404=allow_404)
        self.clock.learn(response.headers if response is not None else None, sent, time.time())
        return response, self.clock.moment(sent)

    # -- lists -----------------------------------------------------------------------------------

    def fetch_page(
        self, endpoint: Endpoint, includes: Iterable[str], number: int, filters: Mapping[str, str] | None = None, size: int | None = None
    ) -> Page:
        """Page ``number`` of ``size`` rows (the reader's page size by default)."""
        size = size or self.size
        params = list_params(endpoint, includes, filters)
        if endpoint.paginated:
            params += [(self.pagination.page_param, str(number)), (self.pagination.size_param, str(size))]
        response, observed = self._get(endpoint.path, params, endpoint.scope)
        body = response.body if response is not None else None
        status = response.status if response is not None else None
        objects = page_data(body, endpoint.path, status, endpoint.paginated)  # objects, or it raises
        return Page(number, objects, endpoint.paginated and has_more(self.pagination, body, objects, size), observed)

    def pages(
        self,
        endpoint: Endpoint,
        includes: Iterable[str],
        first: int = 1,
        wanted: Callable[[Page], bool] = lambda page: True,
        expected: int | None = None,
        filters: Mapping[str, str] | None = None,
    ) -> Iterator[Page]:
        """Plain pages from ``first`` on, in order, until the last one or until ``wanted(page)`` is false.

        Not complete under concurrent changes (see :class:`Scan`): for lists whose
        misses are caught otherwise (the open rows of a status, read by key after).
        Pages after one that comes back full are requested ahead; those not
        needed in the end are cancelled (or their answers dropped). With
        ``expected`` (how many pages the list is thought to have), pages past
        it are requested one at a time, so a good guess wastes nothing.
        """
        includes = tuple(includes)
        futures: dict[int, Future[Page]] = {}
        window, mark, number = 1, first, first
        repeats = PageRepeats()  # a server that ignores the page parameter must not make a sync endless
        try:
            while True:
                top = number + window
                if expected is not None and number <= expected:
                    top = min(top, expected + 1)
                for ahead in range(number, max(top, number + 1)):
                    if ahead not in futures:
                        futures[ahead] = self._pool.submit(self.fetch_page, endpoint, includes, ahead, filters)
                page = futures.pop(number).result()
                repeats.check(page.objects, number, endpoint.path)
                yield page
                if not page.more or not wanted(page):
                    yield from Scan._drain(futures)  # (pages read ahead: written too, every answer is)
                    return
                if number >= mark:
                    window = min(window * 2, self.concurrency)
                    mark = number + window
                number += 1
        finally:
            for future in futures.values():
                future.cancel()

    def scan(
        self,
        endpoint: Endpoint,
        includes: Iterable[str],
        key: Callable[[Obj], Hashable],
        order: Callable[[Obj], Any] | None = None,
        wanted: Callable[[Page], bool] = lambda page: True,
        expected: int | None = None,
    ) -> Scan:
        """A complete reading of a list (see :class:`Scan`); iterate it for its pages."""
        return Scan(self, endpoint, tuple(includes), key, order, wanted, expected)

    # -- single objects -----------------------------------------------------------------------------

    def get(self, endpoint: Endpoint, key: Any, includes: Iterable[str]) -> tuple[Obj | None, Moment]:
        """One object by key (None when the API answers 404: it is gone), and when it was asked."""
        path = endpoint.path.replace("{key}", quote(str(key), safe=""))
        response, observed = self._get(path, list_params(endpoint, includes), endpoint.scope, allow_404=True)
        if response is None:
            return None, observed
        return object_data(response.body, response.url or path, response.status), observed  # an object, or it raises

    def get_many(self, endpoint: Endpoint, keys: Iterable[Any], includes: Iterable[str]) -> Iterator[tuple[Any, Obj | None, Moment]]:
        """Objects by key, fetched concurrently, handed out in the order of ``keys``."""
        includes = tuple(includes)
        futures = [(key, self._pool.submit(self.get, endpoint, key, includes)) for key in keys]
        try:
            for key, future in futures:
                obj, observed = future.result()
                yield key, obj, observed
        finally:
            for _, future in futures:
                future.cancel()


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
        includes: tuple[str, ...],
        key: Callable[[Obj], Hashable],
        order: Callable[[Obj], Any] | None,
        wanted: Callable[[Page], bool],
        expected: int | None,
    ) -> None:
        self.reader = reader
        self.endpoint = endpoint
        self.includes = includes
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

    @staticmethod
    def _drain(futures: dict[int, Future[Page]]) -> Iterator[Page]:
        """The windows already asked for and no longer needed: those under way are awaited and handed out
        (not accepted), so that every answer the API gave is written; the others are cancelled."""
        pending = sorted(futures.items())
        futures.clear()
        for _, future in pending:
            if future.cancel():
                continue
            try:
                page = future.result()
            except exc.Error:
                continue  # a page no longer needed: its failure changes nothing
            page.accepted = False
            yield page

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
                        futures[i] = reader._pool.submit(self._fetch, i)
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
                        yield from self._drain(futures)
                        return
                    if not self.wanted(page):
                        yield from self._drain(futures)
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
                with reader._lock:
                    reader.rereads += 1
                if self.rereads > budget:
                    raise exc.OperationalError(
                        f"GET {self.endpoint.path} kept changing while it was read ({self.rereads} pages read again); "
                        "the list was not read whole. Try again."
                    )
                yield from self._drain(futures)
                index = anchor_index if index > anchor_index else 0 if newer else index - 1
                if index <= 0:
                    index = 0
                    chain.clear()
                ahead, mark = 1, index
        finally:
            for future in futures.values():
                future.cancel()
            self.ended = reader.clock.moment()
