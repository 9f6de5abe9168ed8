"""What one SQL statement remembers: fetched objects, requests, write outcomes.

Everything here lives exactly as long as the statement and is touched only
by the thread running it (worker threads only perform the HTTP requests that
``StatementContext.get`` submits). Sizes are bounded, so a scan of any length
runs in constant memory.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from ..cancel import Cancel
from ..client import ApiResponse, RequestRecord

if TYPE_CHECKING:
    from .executor import Engine
    from .schema import Column

Obj = Mapping[str, Any]


class StatementStore:
    """Objects one statement has fetched (least recently used go first).

    - ``objects``: (table, key) → (object, the ``include=`` values it came with);
    - ``sets``: (table, column, value) → every object with column = value,
      complete (from a finished list request, or embedded in a parent);
    - ``results``: request identity → its complete list of objects.
    """

    def __init__(self, max_objects: int = 5000, max_sets: int = 5000, max_result_rows: int = 5000) -> None:
        self.max_objects = max_objects
        self.max_sets = max_sets
        self.max_result_rows = max_result_rows
        self.objects: OrderedDict[tuple[str, Any], tuple[Obj, frozenset[str]]] = OrderedDict()
        self.sets: OrderedDict[tuple[str, str, Any], tuple[list[Obj], frozenset[str]]] = OrderedDict()
        self.results: OrderedDict[Any, list[Obj]] = OrderedDict()
        self._result_rows = 0

    def get_object(self, table: str, key: Any, includes: frozenset[str]) -> Obj | None:
        hit = self.objects.get((table, key))
        if hit is None or not includes <= hit[1]:
            return None
        self.objects.move_to_end((table, key))
        return hit[0]

    def put_object(self, table: str, key: Any, obj: Obj, includes: frozenset[str]) -> None:
        old = self.objects.get((table, key))
        if old is not None and not includes >= old[1]:
            return
        self.objects[(table, key)] = (obj, includes)
        self.objects.move_to_end((table, key))
        while len(self.objects) > self.max_objects:
            self.objects.popitem(last=False)

    def get_set(self, table: str, column: str, value: Any, includes: frozenset[str]) -> list[Obj] | None:
        hit = self.sets.get((table, column, value))
        if hit is None or not includes <= hit[1]:
            return None
        return hit[0]

    def put_set(self, table: str, column: str, value: Any, objs: list[Obj], includes: frozenset[str]) -> None:
        self.sets[(table, column, value)] = (objs, includes)
        self.sets.move_to_end((table, column, value))
        while len(self.sets) > self.max_sets:
            self.sets.popitem(last=False)

    def get_result(self, key: Any) -> list[Obj] | None:
        return self.results.get(key)

    def put_result(self, key: Any, objs: list[Obj]) -> None:
        if len(objs) > self.max_result_rows:
            return
        self.results[key] = objs
        self._result_rows += len(objs)
        while self._result_rows > self.max_result_rows and self.results:
            _, dropped = self.results.popitem(last=False)
            self._result_rows -= len(dropped)


@dataclass
class Link:
    """A learned nested-loop pattern: lookups in one table take values of a column of an outer scan."""

    outer: str
    column: Column
    submit: Callable[[Any], None]


@dataclass
class StatementContext:
    """Per-statement state: the store, the HTTP requests made, planning facts, write outcomes.

    ``in_sets`` is off for statements with ``IN (SELECT ...)``: APSW fails
    ("SQLError: <NULL>") when such a subquery yields an empty set to a
    virtual table that takes IN values all at once. ``tables`` are the tables
    the statement reads (lower case), reported by SQLite's authorizer while
    the statement is prepared, before any planning; ``deletes`` the tables it
    deletes from. Writes record what they ``created`` and ``deleted``;
    ``refused`` is the error the authorizer stopped the statement with.
    ``scans`` and ``links`` serve the look-ahead (see ``engine.lookahead``).
    ``cancel`` is set from another thread to cancel the statement (see
    ``apidriver.cancel``); ``delete_failure`` and ``not_attempted`` record a
    multi-row DELETE that failed part-way (see ``engine.writes``).
    """

    store: StatementStore = field(default_factory=StatementStore)
    requests: list[RequestRecord] = field(default_factory=list)
    in_sets: bool = True
    tables: set[str] = field(default_factory=set)
    deletes: set[str] = field(default_factory=set)
    created: list[tuple[str, Any, Obj]] = field(default_factory=list)
    deleted: list[tuple[str, Any]] = field(default_factory=list)
    stubs: set[tuple[str, Any]] = field(default_factory=set)
    refused: Exception | None = None
    procedure_results: dict[Any, list[Obj]] = field(default_factory=dict)
    scans: dict[str, Any] = field(default_factory=dict)
    links: dict[tuple[str, str], Link | None] = field(default_factory=dict)
    max_pages: int = 16
    max_responses: int = 512
    cancel: Cancel = field(default_factory=Cancel)
    delete_failure: tuple[str, Any, Exception] | None = None
    not_attempted: list[tuple[str, Any]] = field(default_factory=list)
    _pages: OrderedDict[Any, Future[ApiResponse | None]] = field(default_factory=OrderedDict)
    _responses: OrderedDict[Any, Future[ApiResponse | None]] = field(default_factory=OrderedDict)

    def observe(self, record: RequestRecord) -> None:
        self.requests.append(record)

    def result(self, future: Future[ApiResponse | None]) -> ApiResponse | None:
        """Wait for a request of this statement: every wait of the engine passes here,
        and ends at once (QueryCancelledError) when the statement is cancelled."""
        return self.cancel.result(future)

    def get(
        self, engine: Engine, path: str, params: list[tuple[str, str]], scope: str | None, allow_404: bool = False, page: bool = False
    ) -> Future[ApiResponse | None]:
        """A GET on the worker pool; the same GET twice in a statement shares one answer.

        List pages (``page``) are big, so only the last few are kept for sharing;
        repeats of whole lists are answered by ``store.results`` instead.
        """
        key = (path, tuple(params))
        kept, limit = (self._pages, self.max_pages) if page else (self._responses, self.max_responses)
        future = kept.get(key)
        if future is not None and not future.cancelled():
            kept.move_to_end(key)
            return future
        future = engine.submit(
            engine.client.request,
            "GET",
            path,
            params=params,
            scope=scope,
            observer=self.observe,
            allow_404=allow_404,
            cacheable=True,
            cancel=self.cancel,
        )
        kept[key] = future
        while len(kept) > limit:
            kept.popitem(last=False)
        return future

    def page_arrived(self, table: str, objs: list[Obj]) -> None:
        """A scan of ``table`` got a new page: prefetch the lookups learned to follow it."""
        for link in self.links.values():
            if link is not None and link.outer == table:
                for obj in objs:
                    link.submit(link.column.value(obj))
