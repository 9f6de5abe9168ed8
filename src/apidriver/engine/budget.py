"""Lookup budgeting: what reading a table costs, and when lookups should give way to reading it whole.

Lookups by key or by filter value cost a request each. ``Budget`` knows
how many pages each list had when last read in this process (``PAGE_HINTS``,
per credentials and API root), so what a full read costs; it counts a
statement's lookups per table and says when more of them would cost more
than reading the table whole, so that a statement sends at most about twice
the requests of reading its tables. ``ValueCounts`` turns a full read into
page counts for the lists filtered by each value.
"""

from __future__ import annotations

import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Mapping
from typing import Any

from .pages import list_params, page_params
from .schema import Column, Pagination, Table
from .statement import Obj, StatementContext


class PageHints:
    """How many pages each list had when last read, shared by the connections of a
    process that use the same credentials and API root (like the response cache)."""

    def __init__(self, max_entries: int = 4096) -> None:
        self.max_entries = max_entries
        self._entries: OrderedDict[Any, int] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, key: Any) -> int | None:
        with self._lock:
            return self._entries.get(key)

    def put(self, key: Any, pages: int) -> None:
        with self._lock:
            self._entries[key] = pages
            self._entries.move_to_end(key)
            while len(self._entries) > self.max_entries:
                self._entries.popitem(last=False)


PAGE_HINTS = PageHints()
COUNT_EVERY = 60.0  # seconds between two countings of one table's filter values
_COUNTED: dict[Any, float] = {}
_COUNTED_LOCK = threading.Lock()


class ValueCounts:
    """How many rows each value of a table's API filters had in one full read of the table.

    A list filtered by a value was never read, so its length is unknown, and
    reading it page by page costs a round trip per page while reading ahead
    wastes requests. A full read of the table shows how many rows each value
    has: values with more than a page are remembered with the page-count hints
    (``PAGE_HINTS``), so the first read of their list queues exactly its pages.
    A wrong count (the data changed) costs a request or a round trip, never a row.
    """

    def __init__(self, budget: Budget, table: Table, columns: list[Column]) -> None:
        self.budget = budget
        self.table = table
        self.counters: dict[str, Counter[Any]] = {c.name.lower(): Counter() for c in columns}
        self.columns = columns

    def count(self, objs: list[Obj]) -> None:
        dicts = all(type(o) is dict for o in objs)
        for column in self.columns:
            self.counters[column.name.lower()].update(column.values(objs, dicts))

    def remember(self) -> None:
        size = self.budget.list_page_size()
        for column, counter in self.counters.items():
            for value, rows in counter.items():
                if rows >= size and isinstance(value, str) and value:
                    self.budget.remember_pages(("count", self.table.name, column, value), rows)


class Budget:
    """The page counts and lookup budgets of one connection's tables (``page_size``: its PageSize)."""

    def __init__(self, pagination: Pagination, page_size: int, owner: Any) -> None:
        self.pagination = pagination
        self.page_size = page_size
        self.hint_owner = owner  # page counts are shared by connections with the same credentials and API root
        self._page_params: dict[tuple[str, frozenset[str], int], list[list[tuple[str, str]]]] = {}

    def list_page_size(self) -> int:
        """Rows asked per page when no LIMIT says otherwise."""
        if self.pagination.max_size:
            return min(self.page_size, self.pagination.max_size)
        return self.page_size

    def remember_pages(self, key: Any, pages: int) -> None:
        """How many pages a list had, to fetch them all at once next time."""
        PAGE_HINTS.put((self.hint_owner, key), pages)

    def known_pages(self, key: Any) -> int | None:
        return PAGE_HINTS.get((self.hint_owner, key))

    def scan_cost(self, source: Table) -> int | None:
        """Requests a full read of ``source`` takes, from its size when last read (None: not known)."""
        if source.list is None or not source.list.paginated:
            return 1
        rows = self.known_pages(("rows", source.name))
        if rows is None:
            return None
        return max(1, -(-rows // self.list_page_size()))  # the last page's links say it is the last

    def filtered_cost(self, source: Table, combo: Mapping[str, str]) -> int | None:
        """Pages the list of ``source`` filtered by one value has, from the value's count in the
        table's last full read (``ValueCounts``): a first read then sends its pages at once, exactly."""
        ((column, text),) = combo.items()
        rows = self.known_pages(("count", source.name, column.lower(), text))
        if rows is None:
            return None
        return max(1, -(-rows // self.list_page_size()))

    def value_counter(self, source: Table) -> ValueCounts | None:
        """Counts of the filter values in a full read of ``source``, unless counted lately."""
        columns = [c for c in source.columns if c.filter]
        if not columns:
            return None
        now = time.monotonic()
        with _COUNTED_LOCK:
            last = _COUNTED.get((self.hint_owner, source.name))
            if last is not None and now - last < COUNT_EVERY:
                return None
            _COUNTED[(self.hint_owner, source.name)] = now
        return ValueCounts(self, source, columns)

    def lookup_budget(self, source: Table, batch: bool = False) -> int:
        """Lookups into ``source`` a statement may send before reading it whole instead.

        With the table's size known (from its last full read in this process),
        as many as a full read costs, so lookups and the read together cost at
        most twice a full read. Unknown: for one-by-one lookups (a join's
        inner loop), four, since four lookups and a full read never cost more
        than twice a full read plus two, however small the table; for a batch
        whose size is known up front (an IN list), the table's estimated size.
        """
        known = self.scan_cost(source)
        if known is not None:
            return known
        return max(1, source.estimated_rows // self.list_page_size()) if batch else 4

    def count_lookup(self, ctx: StatementContext, source: Table) -> None:
        """One more request that reads part of ``source`` (a GET by key, a page of a filtered list):
        all of them count against reading the table whole instead."""
        ctx.lookups[source.name] = ctx.lookups.get(source.name, 0) + 1

    def lookups_exhausted(
        self, ctx: StatementContext, source: Table, more: int, includes: frozenset[str], batch: bool = False
    ) -> bool:
        """Whether ``more`` lookups in ``source`` would cost more than what reading it whole still costs
        (``batch``: for the lists of an IN, whose budget with the size unknown is the table's estimate).

        Pages of the whole list that this statement already sent (the outer
        scan of a self-join, say) cost nothing more, so a join of a table
        with itself reads it once.
        """
        if source.list is None or source.name in ctx.store.too_big:
            return False
        spent = ctx.lookups.get(source.name, 0) + more
        known = self.scan_cost(source)
        if known is None:
            return spent > self.lookup_budget(source, batch)
        if spent > known:
            return True
        path = source.list.path
        shared = sum(1 for params in self._full_pages(source, includes, known) if ctx.sent(path, params, page=True))
        return spent > known - shared

    def whole_list_sent(self, ctx: StatementContext, source: Table, includes: frozenset[str]) -> bool:
        """Whether every page of the whole list of ``source`` went out in this statement (and is still
        shared): reading the table whole then costs nothing more than a lookup would."""
        known = self.scan_cost(source)
        if source.list is None or not known or source.name in ctx.store.too_big:
            return False
        path = source.list.path
        return all(ctx.sent(path, params, page=True) for params in self._full_pages(source, includes, known))

    def _full_pages(self, source: Table, includes: frozenset[str], pages: int) -> list[list[tuple[str, str]]]:
        """The parameters of pages 1..``pages`` of the whole list of ``source`` (made once: lookups ask often)."""
        key = (source.name, includes, pages)
        known = self._page_params.get(key)
        if known is None:
            assert source.list is not None
            endpoint, size = source.list, self.list_page_size()
            params = list_params(endpoint, includes)
            known = self._page_params[key] = [page_params(self.pagination, endpoint, params, p, size) for p in range(1, pages + 1)]
            if len(self._page_params) > 64:
                del self._page_params[next(iter(self._page_params))]
        return known
