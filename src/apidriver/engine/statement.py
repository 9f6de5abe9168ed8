"""What one SQL statement remembers: fetched objects, requests, write outcomes.

Everything here lives exactly as long as the statement and is touched only
by the thread running it (worker threads only perform the HTTP requests that
``StatementContext.get`` submits). Sizes are bounded, so a scan of any length
runs in constant memory.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict, deque
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..answers import ApiResponse, RequestRecord
from ..cancel import Cancel
from .sending import Sender

if TYPE_CHECKING:
    from .schema import Column

Obj = Mapping[str, Any]


@dataclass
class PageIndex:
    """What one page of objects adds to the store: objects by key and the child sets they embed.

    Made once per page (a page kept in a ``CacheTTL`` snapshot keeps its index),
    then merged into a statement's store with a few ``dict.update`` calls.
    ``objects`` came with ``includes``; ``children`` (embedded objects) and
    ``sets`` (every child of one parent, complete) with none.
    """

    includes: frozenset[str]
    objects: dict[tuple[str, Any], Obj] = field(default_factory=dict)
    children: dict[tuple[str, Any], Obj] = field(default_factory=dict)
    sets: dict[tuple[str, str, Any], list[Obj]] = field(default_factory=dict)


_NONE: frozenset[str] = frozenset()


class StatementStore:
    """Objects one statement has fetched (the oldest go first beyond the bounds).

    - ``objects``: per ``include=`` values, (table, key) → the object as it came with them;
    - ``sets``: per ``include=`` values, (table, column, value) → every object with
      column = value, complete (from a finished list request, or embedded in a parent);
    - ``results``: request identity → its complete list of objects;
    - ``full``: table → every object of the table, read by one full list
      (when lookups would have cost more), with per-column indexes built on
      demand; it answers any lookup by key or by column value.

    Pages are indexed only when the store is next used (``defer``): a statement
    that never looks anything up never spends the time, and pages waiting behind
    ``max_objects`` newer objects are let go, as the bounds would drop them anyway.
    """

    def __init__(
        self, max_objects: int = 5000, max_sets: int = 5000, max_result_rows: int = 5000, max_full_rows: int = 50000
    ) -> None:
        self.max_objects = max_objects
        self.max_sets = max_sets
        self.max_result_rows = max_result_rows
        self.max_full_rows = max_full_rows
        self.objects: dict[frozenset[str], dict[tuple[str, Any], Obj]] = {}
        self.sets: dict[frozenset[str], dict[tuple[str, str, Any], list[Obj]]] = {}
        self.results: OrderedDict[Any, list[Obj]] = OrderedDict()
        self.full: dict[str, FullTable] = {}
        self.too_big: set[str] = set()  # tables with more rows than max_full_rows
        self._result_rows = 0
        self._pending: deque[tuple[Callable[[], PageIndex], int]] = deque()
        self._pending_size = 0
        # The page each set and object came in (by identity; the index keeps them alive): a join's
        # inner loop prepares the rows of a whole page's sets at once (Engine._prepared).
        self.page_of: dict[int, PageIndex] = {}

    def defer(self, index: Callable[[], PageIndex], size: int = 0) -> None:
        """Add a page's index (of ``size`` objects, embedded ones included) when the store is next used.

        The store keeps only the last ``max_objects`` objects anyway, so pages waiting
        behind that many newer objects are let go unindexed: a scan that never looks
        anything up holds no more of its pages than a store in use would.
        """
        self._pending.append((index, size))
        self._pending_size += size
        pending = self._pending
        while len(pending) > 1 and self._pending_size - pending[0][1] >= self.max_objects:
            self._pending_size -= pending.popleft()[1]

    def _drain(self) -> None:
        pending, self._pending = self._pending, deque()
        self._pending_size = 0
        for index, _ in pending:
            self.add(index())

    def add(self, index: PageIndex) -> None:
        """Merge a page's index (later pages win, as they are newer)."""
        page_of = self.page_of
        if index.objects:
            self._merge(self.objects, index.includes, index.objects, self.max_objects)
            page_of.update(dict.fromkeys(map(id, index.objects.values()), index))
        if index.children:
            self._merge(self.objects, _NONE, index.children, self.max_objects)
            page_of.update(dict.fromkeys(map(id, index.children.values()), index))
        if index.sets:
            self._merge(self.sets, _NONE, index.sets, self.max_sets)
            page_of.update(dict.fromkeys(map(id, index.sets.values()), index))
        excess = len(page_of) - self.max_objects
        if excess > 0:  # the oldest pages go (their lookups, if any come, are prepared one by one)
            for key in list(itertools.islice(page_of, excess)):
                del page_of[key]

    @staticmethod
    def _merge(into: dict[frozenset[str], dict[Any, Any]], includes: frozenset[str], entries: dict[Any, Any], bound: int) -> None:
        target = into.get(includes)
        if target is None:
            target = into[includes] = {}
        target.update(entries)
        excess = len(target) - bound
        if excess > 0:
            for key in list(itertools.islice(target, excess)):
                del target[key]

    def get_object(self, table: str, key: Any, includes: frozenset[str]) -> Obj | None:
        if self._pending:
            self._drain()
        full = self.full.get(table)
        if full is not None and includes <= full.includes:
            return full.by_key.get(key)
        for have, objects in self.objects.items():
            if includes <= have:
                hit = objects.get((table, key))
                if hit is not None:
                    return hit
        return None

    def put_object(self, table: str, key: Any, obj: Obj, includes: frozenset[str]) -> None:
        if self._pending:
            self._drain()
        self._merge(self.objects, includes, {(table, key): obj}, self.max_objects)

    def get_set(self, table: str, column: str, value: Any, includes: frozenset[str]) -> list[Obj] | None:
        if self._pending:
            self._drain()
        full = self.full.get(table)
        if full is not None and includes <= full.includes:
            return full.where(column, value)
        for have, sets in self.sets.items():
            if includes <= have:
                hit = sets.get((table, column, value))
                if hit is not None:
                    return hit
        return None

    def put_set(self, table: str, column: str, value: Any, objs: list[Obj], includes: frozenset[str]) -> None:
        if self._pending:
            self._drain()
        self._merge(self.sets, includes, {(table, column, value): objs}, self.max_sets)

    def get_result(self, key: Any) -> list[Obj] | None:
        if self._pending:
            self._drain()
        return self.results.get(key)

    def put_result(self, key: Any, objs: list[Obj]) -> None:
        if self._pending:
            self._drain()
        if len(objs) > self.max_result_rows:
            return
        self.results[key] = objs
        self._result_rows += len(objs)
        while self._result_rows > self.max_result_rows and self.results:
            _, dropped = self.results.popitem(last=False)
            self._result_rows -= len(dropped)

    def get_full(self, table: str, includes: frozenset[str]) -> FullTable | None:
        if self._pending:
            self._drain()
        full = self.full.get(table)
        return full if full is not None and includes <= full.includes else None


class FullTable:
    """Every object of one table, as one complete list read returned them."""

    def __init__(self, objs: list[Obj], includes: frozenset[str], key: Callable[[Obj], Any], value: Callable[[str, Obj], Any]) -> None:
        self.objs = objs
        self.includes = includes
        self.by_key = {key(o): o for o in objs}
        self._value = value
        self._indexes: dict[str, dict[Any, list[Obj]]] = {}

    def where(self, column: str, value: Any) -> list[Obj]:
        """The objects whose ``column`` (a source column, its stored text) equals ``value``."""
        index = self._indexes.get(column)
        if index is None:
            index = {}
            for o in self.objs:
                index.setdefault(self._value(column, o), []).append(o)
            self._indexes[column] = index
        return index.get(value, [])


@dataclass
class Link:
    """A learned nested-loop pattern: lookups in one table take values of a column of an outer scan."""

    outer: str
    column: Column
    submit: Callable[[Any], None]


class StatementContext:
    """Per-statement state: the store, the HTTP requests made, planning facts, write outcomes.

    ``in_sets`` is off for statements with a subquery or a table on the right
    of an IN (decided by ``Connection.shape``): APSW fails ("SQLError:
    <NULL>") when such a subquery yields an empty set to a virtual table that
    takes IN values all at once. Such an IN's values then come one by one,
    with the affinity SQLite applies to them: ``in_affinity`` is what the
    statement's compiled program applies to the values of its IN subqueries
    (``text``: never a number into a TEXT column; ``numeric``, ``blob`` (none);
    ``mixed``: both, see ``engine.planner``). ``tables`` are the tables
    the statement reads (lower case), reported by SQLite's authorizer while
    the statement is prepared, before any planning; ``deletes`` the tables it
    deletes from. Writes record what they ``created`` and ``deleted``;
    ``refused`` is the error the authorizer stopped the statement with.
    ``scans`` and ``links`` serve the look-ahead (see ``engine.lookahead``);
    ``lookups`` counts the requests sent per table to look single values up,
    so that the engine can switch to reading the table once when that costs
    less. A request's future is kept until a reader has taken its answer
    (prefetched ones included), then among the pages holding the last
    ``max_page_rows`` rows or the last ``max_responses`` single answers, so
    the same GET is sent once (beyond those bounds, a scan runs in constant
    memory and a repeated read of it is sent again).
    ``cancel`` is set from another thread to cancel the statement (see
    ``apidriver.cancel``); ``delete_failure`` and ``not_attempted`` record a
    multi-row DELETE that failed part-way (see ``engine.writes``).
    """

    _store: StatementStore | None = None  # made on first use (see ``store``)
    requests: list[RequestRecord]
    rows_read: int = 0  # objects the API's answers have brought (Engine.register), for progress lines
    in_sets: bool = True
    in_affinity: str = "text"
    tables: set[str]
    columns: dict[str, set[str]]
    deletes: set[str]
    created: list[tuple[str, Any, Obj]]
    deleted: list[tuple[str, Any]]
    stubs: set[tuple[str, Any]]
    refused: Exception | None = None
    selects: int = 0
    foreign_reads: bool = False
    procedure_results: dict[Any, list[Obj]]
    scans: dict[str, Any]
    links: dict[tuple[str, str], Link | None]
    lookups: dict[str, int]
    prepared: dict[Any, Any]  # rows prepared for lookups (Engine._prepared: Prepared)
    max_prepared: int = 2048
    max_page_rows: int = 5000
    max_responses: int = 512
    cancel: Cancel
    ran_on: str = "virtual tables"
    """Where SQLite ran it: on the API's ``virtual tables``, the ``cache reader`` (cache/reader.py),
    or the ``copies`` of tables a CacheTTL snapshot holds whole (engine/copies.py)."""
    delete_failure: tuple[str, Any, Exception] | None = None
    not_attempted: list[tuple[str, Any]]
    _pending: dict[Any, Future[ApiResponse | None]]
    _pages: OrderedDict[Any, tuple[Future[ApiResponse | None], int]]
    _page_rows: int = 0
    _done: bool = False
    _responses: OrderedDict[Any, Future[ApiResponse | None]]
    let_go: Callable[[list[Any]], None] | None = None
    """Where ``done()`` hands what the statement held, to be let go off the statement's thread
    (``Engine.let_go``: a worker); None: let go at once."""

    def __init__(self) -> None:
        # Every statement makes one, and most (over a cache, a copy or local tables) use little of it:
        # the plain defaults above stay class attributes until a statement sets them, and the store
        # is made when first used. Only the containers are made here.
        self.requests = []
        self.tables = set()
        self.columns = {}
        self.deletes = set()
        self.created = []
        self.deleted = []
        self.stubs = set()
        self.procedure_results = {}
        self.scans = {}
        self.links = {}
        self.lookups = {}
        self.prepared = {}
        self.cancel = Cancel()
        self.not_attempted = []
        self._pending = {}
        self._pages = OrderedDict()
        self._responses = OrderedDict()

    @property
    def store(self) -> StatementStore:
        """The objects this statement fetched (see :class:`StatementStore`)."""
        store = self._store
        if store is None:
            store = self._store = StatementStore()
        return store

    def observe(self, record: RequestRecord) -> None:
        self.requests.append(record)

    def done(self) -> None:
        """SQLite has read the last row (or stopped): let go of what the statement fetched and
        prepared, since a cursor may live on long after. Its requests, counts and writes stay;
        prefetched GETs not sent yet are not sent."""
        if self._done:
            return
        self._done = True
        # Letting go of a statement's pages and prepared rows is a deallocation per object (about a
        # tenth of a join's CPU): it is handed to ``let_go``, so that the last row is returned first.
        # Only after requests: what a statement served from a CacheTTL snapshot holds, the snapshot
        # keeps, and a worker's wake-up would cost it more than it saves.
        fetched = bool(self._pages or self._responses)
        held: list[Any] = []
        if self._store is not None:
            held.append(self._store)
            self._store = None
        if self._pending or self._pages or self._responses:  # (most statements sent nothing)
            for future in self._pending.values():
                future.cancel()
            self._pending.clear()
            held += (self._pages, self._responses)
            self._pages, self._responses = OrderedDict(), OrderedDict()
            self._page_rows = 0
        if self.prepared:
            held.append(self.prepared)
            self.prepared = {}
        for kept in (self.scans, self.links, self.procedure_results):
            if kept:
                kept.clear()
        if fetched and self.let_go is not None:
            self.let_go(held)

    def result(self, future: Future[ApiResponse | None]) -> ApiResponse | None:
        """Wait for a request of this statement: every wait of the engine passes here,
        and ends at once (QueryCancelledError) when the statement is cancelled."""
        response = self.cancel.result(future)
        self._taken(future, response)
        return response

    def _taken(self, future: Future[ApiResponse | None], response: ApiResponse | None) -> None:
        """A reader has the answer: keep it for other readers, within the memory bounds."""
        key = getattr(future, "apidriver_key", None)
        if key is None or self._pending.get(key) is not future:
            return
        del self._pending[key]
        if key[0] == "page":
            body = response.body if response is not None else None
            data = body.get("data") if isinstance(body, Mapping) else None
            rows = len(data) if isinstance(data, list) else 1
            self._pages[key] = (future, rows)
            self._page_rows += rows
            while self._page_rows > self.max_page_rows and len(self._pages) > 1:
                _, (_, dropped) = self._pages.popitem(last=False)
                self._page_rows -= dropped
        else:
            self._responses[key] = future
            while len(self._responses) > self.max_responses:
                self._responses.popitem(last=False)

    def get(
        self,
        sender: Sender,
        path: str,
        params: list[tuple[str, str]],
        scope: str | None,
        allow_404: bool = False,
        page: bool = False,
        cacheable: bool = True,
    ) -> Future[ApiResponse | None]:
        """A GET on the worker pool; the same GET twice in a statement shares one answer."""
        key = ("page" if page else "one", path, tuple(params))
        future = self._shared(key)
        if future is not None:
            future.apidriver_refs += 1  # type: ignore[attr-defined]
            return future
        future = sender.get(path, params, scope, self.observe, self.cancel, allow_404=allow_404, cacheable=cacheable)
        future.apidriver_key = key  # type: ignore[attr-defined]
        future.apidriver_refs = 1  # type: ignore[attr-defined]
        self._pending[key] = future
        return future

    def release(self, future: Future[ApiResponse | None]) -> None:
        """A reader no longer needs ``future``: cancel it if nobody else does and it was not sent yet."""
        refs = getattr(future, "apidriver_refs", 1) - 1
        future.apidriver_refs = refs  # type: ignore[attr-defined]
        if refs <= 0:
            future.cancel()

    def _shared(self, key: Any) -> Future[ApiResponse | None] | None:
        future = self._pending.get(key)
        if future is None and key in self._pages:
            self._pages.move_to_end(key)
            future = self._pages[key][0]
        if future is None and key in self._responses:
            self._responses.move_to_end(key)
            future = self._responses[key]
        return future if future is not None and not future.cancelled() else None

    def sent(self, path: str, params: list[tuple[str, str]], page: bool = False) -> bool:
        """Whether this GET was already sent in this statement (and its answer is still shared)."""
        return self._shared(("page" if page else "one", path, tuple(params))) is not None

    def page_arrived(self, table: str, objs: list[Obj]) -> None:
        """A scan of ``table`` got a new page: prefetch the lookups learned to follow it."""
        for link in self.links.values():
            if link is not None and link.outer == table:
                for obj in objs:
                    link.submit(link.column.value(obj))
