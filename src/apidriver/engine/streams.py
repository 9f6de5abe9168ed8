"""Reading a paginated list: pages fetched ahead, in order, never partially.

The API gives no page count. The first time a list is read, page 1 goes
alone; while pages come back full, further pages go out ahead of the one
being consumed, 2, then 4, then up to ``MaxConcurrency`` at once, so the last
full page may be followed by up to that many wasted requests (one or two for
a short list). The number of pages a list had
is remembered (``budget.PAGE_HINTS``, per credentials and API root): the
next read of the same list queues exactly those pages at once (the pool sends
``MaxConcurrency`` at a time), then carries on page by page only if the last
one turns out full (the list grew).

With ``CacheTTL``, a list is cached whole, as one snapshot of consecutive
pages from page 1: a statement reads a list either entirely from one
snapshot or entirely from the API, never a cached page 1 followed by fresh
pages (which would repeat or miss rows that moved between pages).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import Any

import httpx

from ..answers import ApiResponse, RequestRecord
from ..client import ApiClient
from ..response_cache import CACHE
from .arrivals import Arrivals
from .budget import Budget
from .pages import PageRepeats, has_more, page_data, page_params
from .schema import Endpoint, Pagination, Table
from .sending import Sender
from .statement import Obj, StatementContext


@dataclass(frozen=True)
class Reach:
    """What a stream reads with, handed over by the engine that composes them: the GETs' sender,
    the page counts and lookup budget, where arrived objects are registered, how many requests
    may be in flight."""

    sender: Sender
    budget: Budget
    arrivals: Arrivals
    max_concurrency: int



@dataclass
class Snapshot:
    """Pages 1..n of one list, read by one statement; ``complete`` if page n was the last.

    ``memos`` keep, per page, the rows prepared for SQLite from it (``rows.Batch``
    by table name), so that a statement served from the snapshot converts nothing.
    """

    bodies: list[Any]
    complete: bool
    memos: list[dict[Any, Any]] = field(default_factory=list)

    def memo(self, page: int) -> dict[Any, Any] | None:
        """The prepared rows of ``page`` (1-based), or None past the pages kept."""
        while len(self.memos) < len(self.bodies):
            self.memos.append({})
        return self.memos[page - 1] if page <= len(self.memos) else None


Page = tuple[list[Obj], "dict[Any, Any] | None"]  # the objects of one page, and where its prepared rows are kept


def snapshot_key(client: ApiClient, pagination: Pagination, endpoint: Endpoint, params: list[tuple[str, str]], size: int) -> str:
    """Where ``CacheTTL`` keeps the snapshot of one paginated list (its URL without a page number)."""
    return "list " + str(httpx.URL(client.url(endpoint.path), params=[*params, (pagination.size_param, str(size))]))


def shown_page(base: str, pagination: Pagination, page: int, size: int) -> str:
    """The URL of a page of the list whose URL is ``base``, as the request log shows it."""
    joiner = "&" if "?" in base else "?"
    return f"{base}{joiner}{pagination.page_param}={page}&{pagination.size_param}={size}"


class ListStream:
    """The objects of one list request, page by page; a failed page fails the stream."""

    def __init__(
        self,
        reach: Reach,
        ctx: StatementContext,
        table: Table,
        endpoint: Endpoint,
        params: list[tuple[str, str]],
        includes: frozenset[str],
        wanted: int | None,
        offset: int,
        on_complete: Callable[[list[Obj] | None, int], None] | None = None,
        lookup: bool = False,
        expected_pages: int | None = None,
        may_fetch: Callable[[], bool] | None = None,
        most_pages: int | None = None,
        on_page: Callable[[list[Obj]], None] | None = None,
    ) -> None:
        """``on_complete(objects or None if too many, rows)`` runs when the whole list was read;
        ``on_page(objects)`` as each page arrives;
        ``lookup``: the list looks values up (its requests count in ``ctx.lookups``);
        ``expected_pages``: how many pages the list should have, when its own hint is unknown;
        ``may_fetch``: asked before each page fetched ahead (a lookup's budget);
        ``most_pages``: the pages the whole table had, which no part of it exceeds."""
        self.reach = reach
        self.pagination = reach.budget.pagination
        self.ctx = ctx
        self.table = table
        self.endpoint = endpoint
        self.params = params
        self.includes = includes
        self.on_complete = on_complete
        self.lookup = lookup
        self.may_fetch = may_fetch
        self.most_pages = most_pages
        self.on_page = on_page
        self.rows = 0
        self.repeats = PageRepeats()
        self._futures: dict[int, Future[ApiResponse | None]] = {}
        size = reach.budget.list_page_size()
        if wanted is not None and not offset:
            size = max(1, min(size, wanted))
        elif wanted is not None and wanted <= size and offset % wanted == 0:
            size = wanted  # OFFSET 20 LIMIT 10 is exactly page 3 of 10
        self.size = size
        self.start_page = offset // size + 1
        self.skip = offset % size
        # Pages that LIMIT says we need are fetched ahead; beyond them, one at
        # a time, and only if the consumer still wants rows.
        self.last_needed = None if wanted is None else (offset + wanted - 1) // size + 1
        self.hint_key = (endpoint.path, tuple(params), size) if wanted is None and not offset else None
        self.predicted = reach.budget.known_pages(self.hint_key) if self.hint_key else None
        if self.predicted is None and self.hint_key is not None:
            self.predicted = expected_pages  # the same list with other include= values, say
        self.ahead = reach.max_concurrency
        # Without a hint the look-ahead grows, 2, 4, 8... pages up to MaxConcurrency,
        # as pages keep coming back full: a short list wastes one or two requests.
        self.window = 2
        self.mark = 1  # the window doubles once per round: when the page at this mark is consumed
        if self.predicted:
            # Pages known to exist are all queued (the pool sends MaxConcurrency at
            # a time), up to a bound on how many answers may wait in memory.
            self.ahead = self.window = 3 * reach.max_concurrency
        self.snapshot: Snapshot | None = None
        self._bodies: list[Any] | None = None  # pages read, to cache as a snapshot
        self._memos: list[dict[Any, Any]] = []  # and the rows prepared from them
        self._next_page = 1  # pages below it were submitted (pages are submitted in order)
        self._shown_base: str | None = None
        client = reach.sender.client
        if client.cache_ttl > 0 and endpoint.paginated:
            self.snapshot_key = snapshot_key(client, self.pagination, endpoint, params, size)
            found = CACHE.get(client.cache_owner, self.snapshot_key, client.cache_ttl)
            snapshot = found.body if found is not None else None
            if isinstance(snapshot, Snapshot) and (
                snapshot.complete or (self.last_needed is not None and len(snapshot.bodies) >= self.last_needed)
            ):
                self.snapshot = snapshot
            elif self.start_page == 1:
                self._bodies = []
        top = self.start_page
        self._counted: set[int] = set()
        if self.predicted and endpoint.paginated:
            top = min(self.predicted, self.start_page + self.ahead)
            if lookup and self.snapshot is None:
                # Every page the list is known to have will be sent: they count from the start, so that
                # the lookups of a join's inner loop leave room for them (the request rule).
                for page in range(self.start_page, self.predicted + 1):
                    self._count(page)
        for page in range(self.start_page, top + 1):
            if page > self.start_page and self.may_fetch is not None and not self.may_fetch():
                break  # a lookup within its budget: the pages it is known to have go as far as the budget allows
            self._submit(page)

    def _submit(self, page: int) -> None:
        if page >= self._next_page:
            self._next_page = page + 1
        if page in self._futures:
            return
        params = page_params(self.pagination, self.endpoint, self.params, page, self.size)
        if self.snapshot is not None:
            future: Future[ApiResponse | None] = Future()
            body = self.snapshot.bodies[page - 1] if page <= len(self.snapshot.bodies) else {"data": []}
            future.set_result(ApiResponse(200, body))
            self.ctx.observe(RequestRecord("GET", self._shown(page), 200, 0.0, cached=True))
            self._futures[page] = future
            return
        # Pages of a paginated list are cached as one snapshot (see the module docstring).
        cacheable = not self.endpoint.paginated
        if self.lookup:
            self._count(page, params)
        self._futures[page] = self.ctx.get(self.reach.sender, self.endpoint.path, params, self.endpoint.scope, page=True, cacheable=cacheable)

    def _count(self, page: int, params: list[tuple[str, str]] | None = None) -> None:
        """A page of a partial read of the table (a filtered list) counts towards reading it whole."""
        if page in self._counted:
            return
        self._counted.add(page)
        if params is None:
            params = page_params(self.pagination, self.endpoint, self.params, page, self.size)
        if not self.ctx.sent(self.endpoint.path, params, page=True):
            self.ctx.lookups[self.table.name] = self.ctx.lookups.get(self.table.name, 0) + 1

    def _shown(self, page: int) -> str:
        """The URL of a page served from the snapshot, as the request log shows it (the list's
        URL made once: building an ``httpx.URL`` costs more than serving the page)."""
        if self._shown_base is None:
            self._shown_base = str(httpx.URL(self.reach.sender.client.url(self.endpoint.path), params=self.params))
        if not self.endpoint.paginated:
            return self._shown_base
        return shown_page(self._shown_base, self.pagination, page, self.size)

    def close(self) -> None:
        """Stop: pages not yet sent are cancelled unless another reader shares them."""
        for f in self._futures.values():
            self.ctx.release(f)
        self._futures.clear()

    def _cache(self, body: Any, last: bool) -> dict[Any, Any] | None:
        """Keep the pages read from page 1 on, as one snapshot (CacheTTL); returns the page's memo."""
        if self._bodies is None:
            return None
        self._bodies.append(body)
        memo: dict[Any, Any] = {}
        self._memos.append(memo)
        if last or (self.last_needed is not None and len(self._bodies) >= self.last_needed):
            client = self.reach.sender.client
            CACHE.put(client.cache_owner, self.snapshot_key, ApiResponse(200, Snapshot(self._bodies, last, self._memos)))
            self._bodies = None
        return memo

    def _fetch_ahead(self, page: int) -> None:
        """After ``page`` came back full: send the next ones, as far as we know they exist."""
        if self.last_needed is not None and page >= self.last_needed:
            return
        if page >= self.mark:
            if page > 1:
                self.window = min(2 * self.window, self.ahead)
            self.mark = page + self.window
        top = page + self.window
        if self.last_needed is not None:
            top = min(top, self.last_needed)
        if self.predicted is not None:
            # Up to the known last page; past it (the list grew), one page at a time.
            top = min(top, self.predicted) if page < self.predicted else page + 1
        elif self.most_pages is not None:
            # A part of a table has no more pages than the whole: ahead up to that, then one at a time.
            top = min(top, self.most_pages) if page < self.most_pages else page + 1
        for p in range(max(page + 1, self._next_page), top + 1):
            if p not in self._futures and self.may_fetch is not None and not self.may_fetch():
                break  # a lookup past its budget: the rest may come from the whole table instead
            self._submit(p)

    def __iter__(self) -> Iterator[Obj]:
        for objs, _ in self.pages():
            yield from objs

    def pages(self) -> Iterator[Page]:
        """The list page by page: each page's objects, and where rows prepared from it are kept."""
        ctx, table = self.ctx, self.table
        collected: list[Obj] | None = [] if self.on_complete is not None else None
        page = self.start_page
        try:
            while True:
                self._submit(page)
                future = self._futures.pop(page)
                response = ctx.result(future)
                ctx.release(future)
                body = response.body if response is not None else None
                where = response.url if response is not None and response.url else self.endpoint.path
                status = response.status if response is not None else None
                data = page_data(body, where, status, self.endpoint.paginated)
                if self.endpoint.paginated and self.snapshot is None:  # a snapshot's pages were checked as they came
                    self.repeats.check(data, page, where, status)
                more = self.endpoint.paginated and has_more(self.pagination, body, data, self.size)
                memo = self._cache(body, not more)
                if self.snapshot is not None:
                    memo = self.snapshot.memo(page)
                if more:
                    self._fetch_ahead(page)
                else:
                    self.close()
                    if self.hint_key is not None:
                        self.reach.budget.remember_pages(self.hint_key, page)
                self.reach.arrivals.register(ctx, table, data, self.includes, memo)
                self.rows += len(data)
                if collected is not None:
                    if len(collected) + len(data) > ctx.store.max_result_rows:
                        collected = None
                    else:
                        collected.extend(data)
                if self.on_page is not None:
                    self.on_page(data)
                start = self.skip if page == self.start_page else 0
                yield (data[start:], None) if start else (data, memo)
                if not more:
                    break
                page += 1
            if self.on_complete is not None and self.last_needed is None:
                self.on_complete(collected, self.rows)
        finally:
            self.close()


class ReadyStream:
    """Objects already in the statement's store, served like a list."""

    def __init__(self, objs: list[Obj]) -> None:
        self.objs = objs

    def __iter__(self) -> Iterator[Obj]:
        return iter(self.objs)

    def pages(self) -> Iterator[Page]:
        yield self.objs, None

    def close(self) -> None:
        pass


class LookupStream:
    """A list that looks a value up, until the statement's lookups cost more than reading the table.

    Then the objects not yet handed out come from the whole table (``fallback``),
    and the list's further pages are not fetched.
    """

    def __init__(
        self,
        stream: ListStream,
        exhausted: Callable[[], bool],
        fallback: Callable[[], list[Obj] | None],
        key: Callable[[Obj], Any],
    ) -> None:
        self.stream = stream
        self.exhausted = exhausted
        self.fallback = fallback
        self.key = key

    def __iter__(self) -> Iterator[Obj]:
        for objs, _ in self.pages():
            yield from objs

    def pages(self) -> Iterator[Page]:
        given: set[Any] = set()
        for objs, memo in self.stream.pages():
            yield objs, memo
            given.update(self.key(o) for o in objs)
            if self.exhausted():
                rest = self.fallback()
                if rest is not None:
                    self.stream.close()
                    yield [o for o in rest if self.key(o) not in given], None
                    return

    def close(self) -> None:
        self.stream.close()
