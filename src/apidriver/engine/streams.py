"""Reading a paginated list: pages fetched ahead, in order, never partially.

The API gives no page count. The first time a list is read, page 1 goes
alone; while pages come back full, further pages go out ahead of the one
being consumed, 2, then 4, then up to ``MaxConcurrency`` at once, so the last
full page may be followed by up to that many wasted requests (one or two for
a short list). The number of pages a list had
is remembered (``executor.PAGE_HINTS``, per credentials and API root): the
next read of the same list queues exactly those pages at once (the pool sends
``MaxConcurrency`` at a time), then carries on page by page only if the last
one turns out full (the list grew).

With ``CacheTTL``, a list is cached whole, as one snapshot of consecutive
pages from page 1: a statement reads a list either entirely from one
snapshot or entirely from the API, never a cached page 1 followed by fresh
pages (which would repeat or miss rows that moved between pages).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator, Mapping
from concurrent.futures import Future
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import httpx
import orjson

from .. import exceptions as exc
from ..answers import ApiResponse, RequestRecord
from ..response_cache import CACHE
from .schema import Endpoint, Pagination, Table
from .statement import Obj, StatementContext

if TYPE_CHECKING:
    from .executor import Engine


def list_params(endpoint: Endpoint, includes: Iterable[str], filters: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
    """The parameters of a request to ``endpoint``: its own, the ``include=`` values, the filters."""
    params = dict(endpoint.params)
    wanted = sorted(set(includes))
    if wanted:
        merged = [p for p in params.get("include", "").split(",") if p] + wanted
        params["include"] = ",".join(dict.fromkeys(merged))
    return list(params.items()) + sorted((filters or {}).items())


def page_data(body: Any, where: str, status: int | None = None, paginated: bool = False) -> list[Any]:
    """The objects of one list answer: its ``data``, a list of objects (unless ``paginated``, one
    object counts as a list of one: ``/users/me`` is the Users list).

    Anything else (no body, ``[]``, ``{"data": null}``, a string, a list
    holding something other than objects) raises
    :class:`UnexpectedResponseError`: read as an empty page, it would end
    the list there, silently partial. ``where`` is the URL (or path) asked.
    """
    data = body.get("data") if isinstance(body, Mapping) else None
    if isinstance(data, list):
        # Objects as orjson makes them (the usual case, checked fast), or any mapping.
        if all(type(o) is dict for o in data) or all(isinstance(o, Mapping) for o in data):
            return data
    elif isinstance(data, Mapping) and not paginated:
        return [data]
    said = f" {status}" if status is not None else ""
    raise _unexpected(
        f"GET {where} answered{said} with {_shape(body)}, not a page of the list (an object whose \"data\" is a list "
        "of objects). The list cannot be read whole, so the statement fails rather than return part of it. Check "
        "BaseURL: something between here and the API (a proxy?) may be answering instead of it.",
        status, where,
    )


def _unexpected(message: str, status: int | None, where: str) -> exc.Error:
    return exc.api_error(exc.UnexpectedResponseError, message, "GET", where, status)


def object_data(body: Any, where: str, status: int | None = None) -> dict[str, Any]:
    """The object of a lookup's answer: its ``data``, an object.

    Anything else raises :class:`UnexpectedResponseError`: taken for "no
    such object", it would hide a row that exists (only a 404 says that).
    """
    data = body.get("data") if isinstance(body, Mapping) else None
    if isinstance(data, dict):
        return data
    said = f" {status}" if status is not None else ""
    raise _unexpected(
        f"GET {where} answered{said} with {_shape(body, list_page=False)}, not an object (an object whose \"data\" is the "
        "object asked for). Check BaseURL: something between here and the API (a proxy?) may be answering instead of it.",
        status, where,
    )


def _shape(body: Any, list_page: bool = True) -> str:
    """What a body that is not a list page is, for a message (never its values)."""
    if not isinstance(body, Mapping):
        return "no body" if body is None else f"a JSON {_kind(body)} instead of an object"
    if "data" not in body:
        return 'an object without "data"'
    data = body["data"]
    if not isinstance(data, list) or not list_page:
        return f'"data": {_kind(data)}'
    position = next(i for i, o in enumerate(data) if not isinstance(o, Mapping))
    return f'a "data" list holding a {_kind(data[position])} at position {position}'


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, (int, float)):
        return "number"
    if isinstance(value, str):
        return "string"
    return "array" if isinstance(value, list) else "object"


class PageRepeats:
    """The pages one read of a list has had, to refuse a page that repeats an earlier one.

    A server that ignores the page parameter (or cycles through a few pages)
    answers full pages with a ``next`` link forever: without this, a scan
    would never end. A page is known by the ids of its objects, in order
    (whole objects when they have no ``id``): one small number per page.
    A list that moves by a whole page between two reads (a page's worth of
    new objects meanwhile) looks the same, and fails the same way; read
    again, it passes.
    """

    def __init__(self) -> None:
        self._pages: dict[int, int] = {}

    def check(self, data: list[Any], page: int, where: str, status: int | None = None) -> None:
        if not data:
            return
        fingerprint = hash(tuple(_identity(o) for o in data))
        first = self._pages.setdefault(fingerprint, page)
        if first != page:
            said = f" {status}" if status is not None else ""
            raise _unexpected(
                f"GET {where} (page {page}) answered{said} with the same {len(data)} objects as page {first} of the same "
                "list: the server does not page this list (it ignores the page parameter), or the list moved by a "
                "whole page while it was read. It was not read to its end, so the statement fails rather than "
                "return part of it (or never end). Try again; if it repeats, check BaseURL and what answers there.",
                status, where,
            )


def _identity(obj: Any) -> Any:
    key = obj.get("id") if isinstance(obj, Mapping) else None
    if isinstance(key, (str, int)):
        return key
    return orjson.dumps(obj, option=orjson.OPT_SORT_KEYS)


def has_more(pagination: Pagination, body: Any, data: list[Any], size: int) -> bool:
    """Whether a list goes on after this page: a short page is the last, else its links say."""
    if len(data) < size:
        return False
    if pagination.next_link is not None:
        return bool(pagination.next_link(body))
    links = body.get("links") if isinstance(body, Mapping) else None
    if isinstance(links, Mapping) and "next" in links:
        return bool(links.get("next"))
    return True


def page_params(engine: Engine, endpoint: Endpoint, base: list[tuple[str, str]], page: int, size: int) -> list[tuple[str, str]]:
    """The parameters of one page request (the same function builds every page request)."""
    if not endpoint.paginated:
        return list(base)
    pag = engine.pagination
    return list(base) + [(pag.page_param, str(page)), (pag.size_param, str(size))]


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


class ListStream:
    """The objects of one list request, page by page; a failed page fails the stream."""

    def __init__(
        self,
        engine: Engine,
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
        self.engine = engine
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
        size = engine.list_page_size()
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
        self.predicted = engine.known_pages(self.hint_key) if self.hint_key else None
        if self.predicted is None and self.hint_key is not None:
            self.predicted = expected_pages  # the same list with other include= values, say
        self.ahead = engine.max_concurrency
        # Without a hint the look-ahead grows, 2, 4, 8... pages up to MaxConcurrency,
        # as pages keep coming back full: a short list wastes one or two requests.
        self.window = 2
        self.mark = 1  # the window doubles once per round: when the page at this mark is consumed
        if self.predicted:
            # Pages known to exist are all queued (the pool sends MaxConcurrency at
            # a time), up to a bound on how many answers may wait in memory.
            self.ahead = self.window = 3 * engine.max_concurrency
        self.snapshot: Snapshot | None = None
        self._bodies: list[Any] | None = None  # pages read, to cache as a snapshot
        self._memos: list[dict[Any, Any]] = []  # and the rows prepared from them
        self._next_page = 1  # pages below it were submitted (pages are submitted in order)
        self._shown_base: str | None = None
        client = engine.client
        if client.cache_ttl > 0 and endpoint.paginated:
            self.snapshot_key = "list " + str(httpx.URL(client.url(endpoint.path), params=[*params, (engine.pagination.size_param, str(size))]))
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
        params = page_params(self.engine, self.endpoint, self.params, page, self.size)
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
        self._futures[page] = self.ctx.get(self.engine, self.endpoint.path, params, self.endpoint.scope, page=True, cacheable=cacheable)

    def _count(self, page: int, params: list[tuple[str, str]] | None = None) -> None:
        """A page of a partial read of the table (a filtered list) counts towards reading it whole."""
        if page in self._counted:
            return
        self._counted.add(page)
        if params is None:
            params = page_params(self.engine, self.endpoint, self.params, page, self.size)
        if not self.ctx.sent(self.endpoint.path, params, page=True):
            self.ctx.lookups[self.table.name] = self.ctx.lookups.get(self.table.name, 0) + 1

    def _shown(self, page: int) -> str:
        """The URL of a page served from the snapshot, as the request log shows it (the list's
        URL made once: building an ``httpx.URL`` costs more than serving the page)."""
        if self._shown_base is None:
            self._shown_base = str(httpx.URL(self.engine.client.url(self.endpoint.path), params=self.params))
        if not self.endpoint.paginated:
            return self._shown_base
        pagination = self.engine.pagination
        joiner = "&" if "?" in self._shown_base else "?"
        return f"{self._shown_base}{joiner}{pagination.page_param}={page}&{pagination.size_param}={self.size}"

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
            client = self.engine.client
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
                if self.endpoint.paginated:
                    self.repeats.check(data, page, where, status)
                more = self.endpoint.paginated and has_more(self.engine.pagination, body, data, self.size)
                memo = self._cache(body, not more)
                if self.snapshot is not None:
                    memo = self.snapshot.memo(page)
                if more:
                    self._fetch_ahead(page)
                else:
                    self.close()
                    if self.hint_key is not None:
                        self.engine.remember_pages(self.hint_key, page)
                self.engine.register(ctx, table, data, self.includes, memo)
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
