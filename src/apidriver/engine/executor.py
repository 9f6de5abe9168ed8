"""Running plans: which requests a plan needs, and the objects they give.

``Engine.objects`` turns a plan and SQLite's argument values into the row
objects of a table. It asks the statement's store first (objects by key,
child sets embedded in parents, whole list results), so the same request is
never sent twice and a join of Jobs, Tasks and TaskFiles filtered by tag
needs one list request. What is missing is fetched on the worker pool:
GETs by key concurrently, lists through :class:`~.streams.ListStream`.
Every object is re-checked against the constraints the plan consumed, with
SQLite's comparison rules, so consuming them is exact.
"""

from __future__ import annotations

import itertools
import threading
from collections import OrderedDict
from collections.abc import Iterable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from typing import Any
from urllib.parse import quote

from .. import exceptions as exc
from ..client import ApiClient, ApiResponse
from ..values import BOOLEAN, INTEGER, REAL, integer_affinity, text_affinity
from .lookahead import look_ahead
from .planner import Arg, Plan
from .schema import Column, Endpoint, Pagination, Table
from .statement import Obj, StatementContext
from .streams import KeyScan, ListStream, ReadyStream, page_params
from .workers import Workers

__all__ = ["Engine", "StatementContext", "matches"]


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


def _key_value(column: Column, value: Any) -> Any:
    """A constraint value as the key it names (None: it names nothing)."""
    return integer_affinity(value) if column.type in (INTEGER, BOOLEAN) else text_affinity(value)


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


def _data(response: ApiResponse | None) -> Any:
    if response is None or not isinstance(response.body, Mapping):
        return None
    return response.body.get("data")


class Engine:
    """Executes plans for one connection: its client, its worker pool, its tables."""

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
        self.pool = Workers(max_concurrency, "apidriver-http")  # engine/workers.py: no threads while idle
        self.embedded_keys = self._embedded_keys()
        self.hint_owner = client.cache_owner

    def close(self) -> None:
        """Cancel requests not yet sent (those under way finish or fail on their own)."""
        self.pool.shutdown()

    def submit(self, fn: Any, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run an HTTP request on the worker pool."""
        return self.pool.submit(fn, *args, **kwargs)

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until no request is in flight (pages fetched ahead finish after their statement)."""
        self.pool.wait_idle(timeout)

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

    # -- rows ------------------------------------------------------------------------------------

    def objects(self, ctx: StatementContext, table: Table, plan: Plan, values: Sequence[Any]) -> Iterator[Obj]:
        """Row objects of ``table`` for ``plan`` with SQLite's argument ``values``."""
        if plan.kind == "static":
            assert table.static is not None
            yield from table.static()
            return
        if plan.kind == "stub":
            # DELETE by key alone: the key is all SQLite needs, so nothing is fetched.
            key_arg, value = plan.args[0], values[0]
            column = table.column(key_arg.column)
            for v in value if key_arg.multi else [value]:
                key = _key_value(column, v)
                if key is not None:
                    ctx.stubs.add((table.name, key))
                    yield {column.path or column.name: key}
            return
        if plan.kind == "none":
            raise exc.ProgrammingError(
                f"{table.name} can only be read by its key: add a condition such as {table.get_key} = '...' to the WHERE clause."
            )
        if plan.fast_lookup is not None:
            # The common inner-loop lookups of a join (``Tasks.job_id = ?``, ``Tasks.id = ?``):
            # answered by what the statement already holds, with no request and little work.
            lookup_column, source_column = plan.fast_lookup
            source = self.source_of(table)
            if plan.kind == "get":
                key = _key_value(source.column(source_column), values[0])
                obj = ctx.store.get_object(source.name, key, plan.includes) if key is not None else None
                hit = [obj] if obj is not None else None
            else:
                hit = ctx.store.get_set(source.name, source_column, text_affinity(values[0]), plan.includes)
            if hit is not None:
                col = table.column(lookup_column)
                wanted_value = values[0]
                for obj in hit:
                    for row in table.derived.rows(obj) if table.derived is not None else (obj,):
                        if matches(col, col.value(row), wanted_value):
                            yield row
                return
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
        for obj in self._source_objects(ctx, source, plan, bound, wanted, (offset or 0) if plan.offset_consumed else 0):
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
            yield from self._get_many(ctx, source, key_value if key_arg.multi else [key_value], includes, not key_arg.multi)
            return
        filters = [(a, v) for a, v in bound if a.role == "filter"]
        choices: list[list[tuple[str, str]]] = []
        for arg, value in filters:
            options = sorted({p for v in (value if arg.multi else [value]) if (p := text_affinity(v)) is not None})
            if not options:
                return  # = NULL, or an empty IN list: nothing can match
            choices.append([(arg.source, o) for o in options])
        combos = [dict(c) for c in itertools.product(*choices)] if choices else [{}]
        single = len(combos) == 1 and len(combos[0]) == 1 and not filters[0][0].multi
        streams = [self._list(ctx, source, combo, includes, wanted, offset, single) for combo in combos]
        try:
            for stream in streams:
                yield from stream
        finally:
            for stream in streams:
                stream.close()

    # -- single objects ---------------------------------------------------------------------------

    def _get_request(self, ctx: StatementContext, source: Table, key: Any, includes: frozenset[str]) -> Future[ApiResponse | None]:
        assert source.get is not None
        path = source.get.path.replace("{key}", quote(str(key), safe=""))
        return ctx.get(self, path, self._params(source.get, includes), source.get.scope, allow_404=True)

    def _get_many(
        self, ctx: StatementContext, source: Table, keys: Iterable[Any], includes: frozenset[str], single: bool
    ) -> Iterator[Obj]:
        key_col = source.column(source.get_key)
        ordered = list(dict.fromkeys(k for v in keys if (k := _key_value(key_col, v)) is not None))
        found: dict[Any, Obj] = {}
        pending: dict[Any, Future[ApiResponse | None]] = {}
        for v in ordered:
            hit = ctx.store.get_object(source.name, v, includes)
            if hit is not None:
                found[v] = hit
            else:
                pending[v] = self._get_request(ctx, source, v, includes)
        if single and pending:

            def prefetch(value: Any) -> None:
                key = _key_value(key_col, value)
                if key is not None and ctx.store.get_object(source.name, key, includes) is None:
                    self._get_request(ctx, source, key, includes)

            look_ahead(self, ctx, source.name, source.get_key, ordered[0], prefetch)
        results: list[Obj] = []
        try:
            for v in ordered:
                obj: Obj | None = found.get(v)
                if obj is None:
                    obj = _data(ctx.result(pending.pop(v)))
                    if obj is not None:
                        self.register(ctx, source, [obj], includes)
                if obj is not None:
                    results.append(obj)
        finally:
            for f in pending.values():
                f.cancel()
        yield from results if single else KeyScan(ctx, source.name, results)

    # -- lists --------------------------------------------------------------------------------------

    def _params(self, endpoint: Endpoint, includes: frozenset[str], filters: Mapping[str, str] | None = None) -> list[tuple[str, str]]:
        params = dict(endpoint.params)
        if includes:
            merged = [p for p in params.get("include", "").split(",") if p] + sorted(includes)
            params["include"] = ",".join(dict.fromkeys(merged))
        out = list(params.items())
        out += sorted((filters or {}).items())
        return out

    def _list(
        self,
        ctx: StatementContext,
        source: Table,
        combo: Mapping[str, str],
        includes: frozenset[str],
        wanted: int | None,
        offset: int,
        single: bool = False,
    ) -> ListStream | ReadyStream:
        assert source.list is not None
        endpoint = source.list
        filters = {source.column(col).filter or col: value for col, value in combo.items()}
        key = ("list", source.name, tuple(sorted(filters.items())), includes)
        cached = ctx.store.get_result(key)
        for col, value in combo.items():
            if cached is None:
                cached = ctx.store.get_set(source.name, col.lower(), value, includes)  # other filters are re-checked
        if cached is not None and offset == 0:
            return ReadyStream(cached)
        if single and wanted is None and not offset:
            (column, _), = combo.items()

            def prefetch(value: Any) -> None:
                text = text_affinity(value)
                if text is None or ctx.store.get_set(source.name, column.lower(), text, includes) is not None:
                    return
                params = self._params(endpoint, includes, {source.column(column).filter or column: text})
                ctx.get(self, endpoint.path, page_params(self, endpoint, params, 1, self.list_page_size()), endpoint.scope, page=True)

            look_ahead(self, ctx, source.name, column, next(iter(combo.values())), prefetch)
        params = self._params(endpoint, includes, filters)
        only = next(iter(combo.items())) if len(combo) == 1 else None

        def complete(objs: list[Obj]) -> None:
            ctx.store.put_result(key, objs)
            if only is not None:
                ctx.store.put_set(source.name, only[0].lower(), only[1], objs, includes)

        return ListStream(self, ctx, source, endpoint, params, includes, wanted, offset, None if offset else complete)

    def register(self, ctx: StatementContext, table: Table, objs: Iterable[Obj], includes: frozenset[str]) -> None:
        """Remember fetched objects, and the complete child sets they embed."""
        store = ctx.store
        keyed = bool(table.key)
        embeds = [(e, self.table(e.table)) for e in table.embeds]
        for obj in objs:
            if not isinstance(obj, dict):
                continue
            key = table.key_of(obj) if keyed else ()
            if keyed:
                store.put_object(table.name, key[0] if len(key) == 1 else key, obj, includes)
            for embed, child in embeds:
                children = obj.get(embed.field)
                if isinstance(children, list):
                    store.put_set(child.name, embed.key.lower(), key[0] if key else None, children, frozenset())
                    self.register(ctx, child, children, frozenset())
