"""Running plans: requests, pagination, concurrency and statement-level reuse.

``Engine.objects`` turns a plan and SQLite's argument values into the row
objects of a table. Within one statement a :class:`StatementStore` keeps what
was fetched, so the same request is never sent twice, and objects that arrive
embedded in others (every task of a job comes with the job) answer later
lookups without any request: a join of Jobs, Tasks and TaskFiles filtered by
tag needs one list request.

Pages of a list are fetched ahead on worker threads (at most
``MaxConcurrency`` at a time) while SQLite consumes the first ones; the API
gives no page count, so the look-ahead stops at the first short page and
over-fetches at most that many pages. Workers only do HTTP and JSON parsing:
they never touch the APSW connection or the store.
"""

from __future__ import annotations

import itertools
from collections import OrderedDict
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import quote

from .. import exceptions as exc
from ..client import ApiClient, ApiResponse, RequestRecord
from ..values import BOOLEAN, INTEGER, REAL, integer_affinity, text_affinity
from .planner import Arg, Plan
from .schema import Column, Endpoint, Pagination, Table

Obj = Mapping[str, Any]


class StatementStore:
    """What one statement has fetched, bounded in size (least recently used goes first).

    - ``objects``: (table, key) → (object, includes it was fetched with);
    - ``sets``: (table, column, value) → every object with column = value,
      as a complete list (from a finished list request, or an embedding);
    - ``results``: request identity → its complete list of objects.
    """

    def __init__(self, max_objects: int = 20000, max_sets: int = 20000, max_result_rows: int = 20000) -> None:
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
class StatementContext:
    """Per-statement state: the store, the HTTP requests made, planning options.

    ``in_sets`` is off for statements with ``IN (SELECT ...)``: APSW fails
    ("SQLError: <NULL>") when such a subquery yields an empty set to a
    virtual table that takes IN values all at once. ``tables`` are the tables
    the statement reads (lower case), reported by SQLite's authorizer while
    the statement is prepared, before any planning; ``deletes`` the tables it
    deletes from. Writes record what they ``created`` and ``deleted``;
    ``refused`` is the error the authorizer stopped the statement with.
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
    max_responses: int = 200
    _responses: OrderedDict[Any, Future[ApiResponse | None]] = field(default_factory=OrderedDict)

    def observe(self, record: RequestRecord) -> None:
        self.requests.append(record)

    def get(self, engine: Engine, path: str, params: list[tuple[str, str]], scope: str | None, allow_404: bool = False) -> Future[ApiResponse | None]:
        """A GET on the worker pool; the same GET twice in a statement shares one answer."""
        key = (path, tuple(params))
        future = self._responses.get(key)
        if future is not None and not future.cancelled():
            self._responses.move_to_end(key)
            return future
        future = engine.pool.submit(
            engine.client.request, "GET", path, params=params, scope=scope, observer=self.observe, allow_404=allow_404
        )
        self._responses[key] = future
        while len(self._responses) > self.max_responses:
            self._responses.popitem(last=False)
        return future


def matches(column: Column, value: Any, wanted: Any) -> bool:
    """SQLite's ``column = wanted`` (or ``IN`` a set) for an already converted value."""
    if value is None:
        return False
    if isinstance(wanted, (set, frozenset, list, tuple)):
        return any(matches(column, value, w) for w in wanted)
    if column.type in (INTEGER, BOOLEAN, REAL):
        other = integer_affinity(wanted)
        return other is not None and not isinstance(other, str) and value == other
    other_text = text_affinity(wanted)
    return other_text is not None and value == other_text


def _param_value(value: Any) -> str | None:
    """A constraint value as text for a request parameter (None: cannot match)."""
    return text_affinity(value)


class Engine:
    """Executes plans for one connection: its client, its worker pool, its profile's specs."""

    def __init__(
        self,
        tables: Mapping[str, Table],
        client: ApiClient,
        pagination: Pagination,
        page_size: int,
        max_concurrency: int,
    ) -> None:
        self.tables = {name.lower(): t for name, t in tables.items()}
        self.client = client
        self.pagination = pagination
        self.page_size = page_size
        self.max_concurrency = max_concurrency
        self.pool = ThreadPoolExecutor(max_workers=max_concurrency, thread_name_prefix="apidriver-http")
        self.embedded_keys = self._embedded_keys()

    def close(self) -> None:
        self.pool.shutdown(wait=False, cancel_futures=True)

    def _embedded_keys(self) -> dict[str, frozenset[str]]:
        out: dict[str, set[str]] = {}
        for t in self.tables.values():
            for e in t.embeds:
                out.setdefault(e.table.lower(), set()).add(e.key.lower())
        return {k: frozenset(v) for k, v in out.items()}

    def table(self, name: str) -> Table:
        return self.tables[name.lower()]

    def reads(self, statement_tables: set[str], name: str) -> bool:
        """Whether a statement reading ``statement_tables`` reads ``name`` or a table derived from it."""
        wanted = name.lower()
        for t in statement_tables:
            spec = self.tables.get(t)
            if spec is not None and (t == wanted or (spec.derived is not None and spec.derived.parent.lower() == wanted)):
                return True
        return False

    def source_of(self, table: Table) -> Table:
        return self.table(table.derived.parent) if table.derived is not None else table

    # -- rows ------------------------------------------------------------------------------

    def objects(self, ctx: StatementContext, table: Table, plan: Plan, values: Sequence[Any]) -> Iterator[Obj]:
        """Row objects of ``table`` for ``plan`` with SQLite's argument ``values``."""
        if plan.kind == "static":
            assert table.static is not None
            yield from table.static()
            return
        if plan.kind == "stub":
            # DELETE by key alone: the row's key is all SQLite needs, so nothing is fetched.
            key_arg, value = plan.args[0], values[0]
            column = table.column(key_arg.column)
            for v in value if key_arg.multi else [value]:
                key = integer_affinity(v) if column.type in (INTEGER, BOOLEAN) else text_affinity(v)
                if key is not None:
                    ctx.stubs.add((table.name, key))
                    yield {column.path or column.name: key}
            return
        if plan.kind == "none":
            raise exc.ProgrammingError(
                f"{table.name} can only be read by its key: add a condition such as {table.get_key} = '...' to the WHERE clause."
            )
        bound = list(zip(plan.args, values))
        limit = offset = None
        checks: list[tuple[Column, Any]] = []
        for arg, value in bound:
            if arg.role == "limit":
                limit = int(value) if value is not None and int(value) >= 0 else None
            elif arg.role == "offset":
                offset = max(0, int(value or 0))
            else:
                checks.append((table.column(arg.column), value))
        if limit == 0:
            return
        wanted = None if limit is None else limit + (0 if plan.offset_consumed else (offset or 0))
        source = self.source_of(table)
        produced = 0
        for obj in self._source_objects(ctx, source, plan, bound, wanted, offset if plan.offset_consumed else 0):
            rows = table.derived.rows(obj) if table.derived is not None else (obj,)
            for row in rows:
                if all(matches(col, col.value(row), want) for col, want in checks):
                    yield row
                    produced += 1
                    if wanted is not None and produced >= wanted:
                        return

    def _source_objects(
        self, ctx: StatementContext, source: Table, plan: Plan, bound: list[tuple[Arg, Any]], wanted: int | None, offset: int
    ) -> Iterator[Obj]:
        includes = plan.includes
        if plan.kind == "get":
            key_arg, key_value = next((a, v) for a, v in bound if a.role == "key")
            keys = key_value if key_arg.multi else [key_value]
            yield from self._get_many(ctx, source, keys, includes)
            return
        filters = [(a, v) for a, v in bound if a.role == "filter"]
        choices: list[list[tuple[str, str]]] = []
        for arg, value in filters:
            options = sorted({p for v in (value if arg.multi else [value]) if (p := _param_value(v)) is not None})
            if not options:
                return  # = NULL, or an empty IN list: nothing can match
            choices.append([(arg.source, o) for o in options])
        combos = [dict(c) for c in itertools.product(*choices)] if choices else [{}]
        streams = [self._list(ctx, source, combo, includes, wanted, offset) for combo in combos]
        try:
            for stream in streams:
                yield from stream
        finally:
            for stream in streams:
                stream.close()

    # -- single objects ------------------------------------------------------------------------

    def _get_many(self, ctx: StatementContext, source: Table, keys: Iterable[Any], includes: frozenset[str]) -> Iterator[Obj]:
        assert source.get is not None
        key_col = source.column(source.get_key)
        ordered: list[Any] = []
        for k in keys:
            v = integer_affinity(k) if key_col.type in (INTEGER, BOOLEAN) else text_affinity(k)
            if v is not None and v not in ordered:
                ordered.append(v)
        found: dict[Any, Obj | None] = {}
        pending: dict[Any, Future[ApiResponse | None]] = {}
        for v in ordered:
            hit = ctx.store.get_object(source.name, v, includes)
            if hit is not None:
                found[v] = hit
            else:
                path = source.get.path.replace("{key}", quote(str(v), safe=""))
                pending[v] = ctx.get(self, path, self._params(source.get, includes), source.get.scope, allow_404=True)
        try:
            for v in ordered:
                if v in found:
                    obj = found[v]
                else:
                    response = pending.pop(v).result()
                    obj = _data(response) if response is not None else None
                    if obj is not None:
                        self._register(ctx, source, [obj], includes)
                if obj is not None:
                    yield obj
        finally:
            for f in pending.values():
                f.cancel()

    # -- lists ------------------------------------------------------------------------------------

    def _params(self, endpoint: Endpoint, includes: frozenset[str], filters: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
        params = dict(endpoint.params)
        if includes:
            merged = [p for p in params.get("include", "").split(",") if p] + sorted(includes)
            params["include"] = ",".join(dict.fromkeys(merged))
        out = list(params.items())
        out += sorted((filters or {}).items())
        return out

    def _list(self, ctx: StatementContext, source: Table, combo: Mapping[str, str], includes: frozenset[str], wanted: int | None, offset: int) -> ListStream:
        assert source.list is not None
        filters = {source.column(col).filter or col: value for col, value in combo.items()}
        key = ("list", source.name, tuple(sorted(filters.items())), includes)
        cached = ctx.store.get_result(key)
        if cached is None and len(combo) >= 1:
            for col, value in combo.items():
                subset = ctx.store.get_set(source.name, col.lower(), value, includes)
                if subset is not None:
                    cached = subset  # other filters are re-checked by the caller
                    break
        if cached is not None and offset == 0:
            return ListStream.ready(cached)
        params = self._params(source.list, includes, filters)
        single_filter = next(iter(combo.items())) if len(combo) == 1 else None

        def complete(objs: list[Obj]) -> None:
            ctx.store.put_result(key, objs)
            if single_filter is not None:
                ctx.store.put_set(source.name, single_filter[0].lower(), single_filter[1], objs, includes)

        return ListStream(
            self, ctx, source, source.list, params, includes, wanted, offset, on_complete=None if offset else complete
        )

    def _register(self, ctx: StatementContext, table: Table, objs: Iterable[Obj], includes: frozenset[str]) -> None:
        """Remember fetched objects, and the complete child sets they embed."""
        store = ctx.store
        for obj in objs:
            if not isinstance(obj, Mapping):
                continue
            if table.key:
                key = table.key_of(obj)
                store.put_object(table.name, key[0] if len(key) == 1 else key, obj, includes)
            for embed in table.embeds:
                children = obj.get(embed.field)
                if not isinstance(children, list):
                    continue
                child = self.table(embed.table)
                own = table.key_of(obj)[0] if table.key else None
                store.put_set(child.name, embed.key.lower(), own, children, frozenset())
                self._register(ctx, child, children, frozenset())


def _data(response: ApiResponse | None) -> Any:
    if response is None or not isinstance(response.body, Mapping):
        return None
    return response.body.get("data")


class ListStream:
    """The objects of one list request, page by page, fetching ahead.

    Page 1 goes alone; only if it is full do further pages go out, up to
    ``max_concurrency`` ahead of the one being consumed. A short or empty page
    (or ``links.next`` = null) ends the list. Any failed page fails the whole
    stream: rows are never silently missing.
    """

    def __init__(
        self,
        engine: Engine | None,
        ctx: StatementContext | None,
        table: Table | None,
        endpoint: Endpoint | None,
        params: list[tuple[str, str]],
        includes: frozenset[str],
        wanted: int | None,
        offset: int,
        on_complete: Callable[[list[Obj]], None] | None = None,
        ready: list[Obj] | None = None,
    ) -> None:
        self.engine = engine
        self.ctx = ctx
        self.table = table
        self.endpoint = endpoint
        self.params = params
        self.includes = includes
        self.on_complete = on_complete
        self._ready = ready
        self._futures: dict[int, Future[ApiResponse | None]] = {}
        self._closed = False
        if ready is not None or engine is None or endpoint is None:
            return
        self.paginated = endpoint.paginated
        size = engine.page_size
        if engine.pagination.max_size:
            size = min(size, engine.pagination.max_size)
        if wanted is not None and not offset:
            size = max(1, min(size, wanted))
        elif wanted is not None and wanted <= size and offset % wanted == 0:
            size = wanted  # OFFSET 20 LIMIT 10 is exactly page 3 of 10
        self.size = size
        self.start_page = offset // size + 1
        self.skip = offset % size
        # Pages that LIMIT says we need: fetched ahead. Beyond them, one at a
        # time, only if the consumer still wants rows.
        self.last_needed = None if wanted is None else (offset + wanted - 1) // size + 1
        self.ahead = engine.max_concurrency
        self._submit(self.start_page)

    @classmethod
    def ready(cls, objs: list[Obj]) -> ListStream:
        return cls(None, None, None, None, [], frozenset(), None, 0, ready=objs)

    def _submit(self, page: int) -> None:
        assert self.engine is not None and self.endpoint is not None and self.ctx is not None
        if page in self._futures:
            return
        params = list(self.params)
        if self.paginated:
            pag = self.engine.pagination
            params += [(pag.page_param, str(page)), (pag.size_param, str(self.size))]
        self._futures[page] = self.ctx.get(self.engine, self.endpoint.path, params, self.endpoint.scope)

    def close(self) -> None:
        """Stop: pages not yet sent are cancelled (a shared one is simply re-sent if needed)."""
        self._closed = True
        for f in self._futures.values():
            f.cancel()
        self._futures.clear()

    def __iter__(self) -> Iterator[Obj]:
        if self._ready is not None:
            yield from self._ready
            return
        assert self.engine is not None and self.table is not None and self.ctx is not None
        collected: list[Obj] | None = [] if self.on_complete is not None else None
        page = self.start_page
        try:
            while True:
                if page not in self._futures:
                    self._submit(page)
                response = self._futures.pop(page).result()
                body = response.body if response is not None else None
                data = body.get("data") if isinstance(body, Mapping) else None
                if data is None:
                    data = []
                elif isinstance(data, Mapping):
                    data = [data]
                elif not isinstance(data, list):
                    raise exc.InterfaceError(f"{self.endpoint.path if self.endpoint else ''} answered without a data list.")
                more = self.paginated and self._has_more(body, data)
                if not more:
                    self.close()
                elif self.last_needed is None or page < self.last_needed:
                    top = page + self.ahead
                    if self.last_needed is not None:
                        top = min(top, self.last_needed)
                    for p in range(page + 1, top + 1):
                        self._submit(p)
                self.engine._register(self.ctx, self.table, data, self.includes)
                if collected is not None:
                    if len(collected) + len(data) > self.ctx.store.max_result_rows:
                        collected = None
                    else:
                        collected.extend(data)
                start = self.skip if page == self.start_page else 0
                for obj in data[start:]:
                    yield obj
                if not more:
                    break
                page += 1
            if collected is not None and self.on_complete is not None and self.last_needed is None:
                self.on_complete(collected)
        finally:
            self.close()

    def _has_more(self, body: Any, data: list[Obj]) -> bool:
        assert self.engine is not None
        if len(data) < self.size:
            return False
        nxt = self.engine.pagination.next_link
        if nxt is not None:
            return bool(nxt(body))
        links = body.get("links") if isinstance(body, Mapping) else None
        if isinstance(links, Mapping) and "next" in links:
            return bool(links.get("next"))
        return True
