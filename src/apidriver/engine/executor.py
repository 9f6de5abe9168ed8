"""Running plans: which requests a plan needs, and the objects they give.

``Engine.batches`` turns a plan and SQLite's argument values into the rows
of a table, a page at a time, with their SQLite values (``engine.rows``). It decides, per value, what can go to the API exactly
(a key or filter value the API matches the way SQLite does), asks the
statement's store first (objects by key, child sets embedded in parents,
whole list results, whole tables), so the same request is never sent twice
and a join of Jobs, Tasks and TaskFiles filtered by tag needs one list
request, then fetches what is missing on the worker pool: GETs by key
concurrently, lists through :class:`~.streams.ListStream`.

Lookups by key or by filter value cost a request each; when a statement has
sent as many of them to one table as reading the whole table would cost
(or a batch of IN values would need more), the table is read once and every
further lookup is answered from it. So a statement never sends more than
about twice the requests of reading its tables.

Every row is checked against the plan's constraints with SQLite's rules
(``engine.compare``) before SQLite checks it again: rows that cannot pass
are dropped, and only rows that certainly pass count towards a LIMIT.
"""

from __future__ import annotations

import itertools
import threading
import time
from collections import Counter, OrderedDict
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from typing import Any
from urllib.parse import quote

from .. import exceptions as exc
from ..answers import ApiResponse
from ..client import ApiClient
from ..values import INTEGER, TEXT
from .compare import EQ, IS, check_any, numeric_affinity, text_affinity
from .lookahead import look_ahead
from .planner import Arg, Plan
from .rows import Batches, batch, order_rows
from .schema import Column, Pagination, Table
from .statement import FullTable, Obj, PageIndex, StatementContext
from .streams import (
    ListStream,
    LookupStream,
    Page,
    ReadyStream,
    list_params,
    object_data,
    page_params,
)
from .workers import Workers

__all__ = ["Engine", "StatementContext"]

NOTHING = object()  # a value no API object can hold (NULL with =, '.' as an id): nothing to fetch
UNSAFE = object()  # a value the API would not match as SQLite does: check it locally instead


def api_value(column: Column, value: Any, op: int, for_key: bool) -> Any:
    """The text to send the API for ``column = value``, or NOTHING, or UNSAFE.

    The API matches strings exactly; SQLite compares a TEXT column with a
    number under rules the virtual table cannot see (the other operand's
    affinity), so numbers are checked locally, as are empty strings (the
    API reads an empty filter as no filter). A key is one path segment:
    ``.`` and ``..`` would name another endpoint and can never be ids.
    """
    if value is None:
        return UNSAFE if op == IS else NOTHING
    if isinstance(value, bytes):
        return NOTHING
    if column.type == INTEGER:
        number = numeric_affinity(value)
        if isinstance(number, float) and number.is_integer() and abs(number) < 2**63:
            number = int(number)
        if isinstance(number, int) and not isinstance(number, bool):
            return str(number)
        return UNSAFE
    if column.type != TEXT or not isinstance(value, str):
        return UNSAFE
    if value == "":
        return NOTHING if for_key else UNSAFE
    if for_key and value in (".", ".."):
        return NOTHING
    return value


FAILS, POSSIBLE, CERTAIN = 0, 1, 2


class Condition:
    """One constraint of the plan with its value, checked against rows.

    ``test(row)`` is FAILS (SQLite will drop the row), POSSIBLE (SQLite
    decides) or CERTAIN (SQLite keeps it). The common case, a TEXT column
    equal to a string (or IN strings) under BINARY, is a plain comparison.
    """

    def __init__(self, arg: Arg, column: Column, value: Any, index: int, in_affinity: str = "text") -> None:
        """``index``: the column's position in the table (its prepared values are checked);
        ``in_affinity``: what the statement's IN subqueries apply to their values (see
        ``StatementContext.in_affinity``), which decides a number reaching a TEXT column."""
        self.arg = arg
        self.column = column
        self.value = value
        self.index = index
        self.affinity = "numeric"
        if arg.typed and column.type == TEXT and isinstance(value, (int, float)) and not isinstance(value, bool):
            # SQLite passes this IN's values one by one with the comparison's affinity applied:
            # a number reaching a TEXT column came from a subquery whose values have numeric
            # affinity (then the column's text is read as a number) or none (then text never
            # equals a number). The planner passes such an IN only when the statement's
            # subqueries have one of the two (engine.planner).
            if in_affinity not in ("numeric", "blob"):
                raise exc.InternalError(
                    f"{arg.column} IN (subquery) got the number {value!r} from a subquery whose affinity is {in_affinity}; please report this."
                )
            self.affinity = in_affinity
        self.test = self._compile()

    def _compile(self) -> Callable[[Any], int]:
        arg, column, value = self.arg, self.column, self.value
        plain = column.type == TEXT and arg.op in (EQ, IS) and arg.collation.upper() == "BINARY"
        if plain and isinstance(value, str):
            return lambda v: CERTAIN if v == value else FAILS
        if plain and arg.multi and all(isinstance(v, str) for v in value):
            wanted = frozenset(value)
            return lambda v: CERTAIN if v in wanted else FAILS
        if self.affinity == "blob":
            return lambda v: FAILS  # a TEXT column's value (text or NULL) never equals a number without affinity

        def test(v: Any) -> int:
            possible, certain = check_any(column.type, arg.op, arg.collation, v, value, arg.typed)
            return CERTAIN if certain else POSSIBLE if possible else FAILS

        return test

    def api_values(self, for_key: bool) -> list[str] | None:
        """The distinct texts to request for this constraint, or None when it cannot go to the API."""
        values = self.value if self.arg.multi else [self.value]
        out: list[str] = []
        for v in values:
            text = api_value(self.column, v, self.arg.op, for_key)
            if text is UNSAFE:
                return None
            if text is not NOTHING:
                out.append(text)
        return sorted(set(out))


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

    def __init__(self, engine: Engine, table: Table, columns: list[Column]) -> None:
        self.engine = engine
        self.table = table
        self.counters: dict[str, Counter[Any]] = {c.name.lower(): Counter() for c in columns}
        self.columns = columns

    def count(self, objs: list[Obj]) -> None:
        dicts = all(type(o) is dict for o in objs)
        for column in self.columns:
            self.counters[column.name.lower()].update(column.values(objs, dicts))

    def remember(self) -> None:
        size = self.engine.list_page_size()
        for column, counter in self.counters.items():
            for value, rows in counter.items():
                if rows >= size and isinstance(value, str) and value:
                    self.engine.remember_pages(("count", self.table.name, column, value), rows)


def _data(response: ApiResponse | None) -> Any:
    """The object a lookup by key found; None for a 404 (no such object). Any other answer raises."""
    if response is None:
        return None
    return object_data(response.body, response.url, response.status)


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
        self._page_params: dict[tuple[str, frozenset[str], int], list[list[tuple[str, str]]]] = {}
        self.lookups = Batches()  # rows prepared for lookups answered from the store (engine.rows)

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

    def _value_counter(self, source: Table) -> ValueCounts | None:
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

    # -- rows ------------------------------------------------------------------------------------

    def batches(
        self, ctx: StatementContext, table: Table, plan: Plan, values: Sequence[Any], repeat: bool = False, looked: bool = False
    ) -> Iterator[tuple[list[Obj], list[tuple[Any, ...]]]]:
        """The rows of ``table`` for ``plan`` with SQLite's argument ``values``, a page at a time:
        the row objects and their SQLite values (``rows.Batch``: the plan's columns converted).

        ``repeat``: SQLite filters this cursor again (the inner loop of a join looking
        values up): such lookups count towards reading the table whole instead.
        ``looked``: ``looked_up`` already found nothing in the store for this lookup.

        Rows that cannot satisfy the plan's constraints are left out; SQLite
        checks the others itself. With a LIMIT, fetching stops once that many
        rows (plus any OFFSET SQLite still skips) certainly pass. A plan that
        took over an ORDER BY gets its rows sorted here, unless they come
        straight from a list whose order the user vouches for (TrustListOrder).
        """
        mask = plan.mask
        if plan.kind in ("static", "stub"):
            objs = list(table.static() if plan.kind == "static" else self._stubs(ctx, table, plan, values))  # type: ignore[misc]
            made = batch(table, objs, None)
            yield self._ordered(plan, made.rows, made.ensure(table, mask))
            return
        if plan.kind == "none":
            raise exc.ProgrammingError(
                f"{table.name} can only be read by its key: add a condition such as {table.get_key} = '...' to the WHERE clause."
            )
        hit = None if looked else self.looked_up(ctx, table, plan, values)
        if hit is not None:
            yield hit
            return
        limit: int | None = None
        offset = 0
        conditions: list[Condition] = []
        for arg, value in zip(plan.args, values):
            if arg.role == "limit":
                limit = int(value) if value is not None and int(value) >= 0 else None
            elif arg.role == "offset":
                offset = max(0, int(value or 0))
            else:
                conditions.append(Condition(arg, table.columns[arg.index], value, arg.index, ctx.in_affinity))
        if limit == 0:
            return
        wanted = None if limit is None else limit + (0 if plan.offset_consumed else offset)
        source = self.source_of(table)
        pages, in_api_order = self._pages(ctx, source, plan, conditions, wanted, offset if plan.offset_consumed else 0, repeat)
        local_order = bool(plan.order) and not (plan.api_order and in_api_order)
        if local_order:
            wanted = None  # every row is needed before the first can be handed out
        tests = [(c.index, c.test) for c in conditions]
        counted = 0
        kept_rows: list[Obj] = []
        kept_values: list[tuple[Any, ...]] = []
        kinds: list[set[str]] = [set() for _ in plan.order]
        for objs, memo in pages:
            made = batch(table, objs, memo)
            rows, values_ = made.rows, made.ensure(table, mask)
            if local_order:
                for held, (column, _, timestamp) in zip(kinds, plan.order):
                    held.add(made.kind(column, timestamp))
            if tests:
                rows, values_, certain, stop = self._filter(rows, values_, tests, None if wanted is None else wanted - counted)
                counted += certain
            elif wanted is not None and counted + len(rows) >= wanted:
                rows, values_, stop = rows[: wanted - counted], values_[: wanted - counted], True
                counted = wanted
            else:
                counted += len(rows)
                stop = False
            if local_order:
                kept_rows.extend(rows)
                kept_values.extend(values_)
                continue
            if rows:
                yield rows, values_
            if stop:
                return
        if local_order and kept_rows:
            yield self._ordered(plan, kept_rows, kept_values, kinds)

    def looked_up(
        self, ctx: StatementContext, table: Table, plan: Plan, values: Sequence[Any]
    ) -> tuple[list[Obj], list[tuple[Any, ...]]] | None:
        """The rows of a plain lookup (``column = ?``) answered from what the statement holds, or None."""
        lookup = plan.lookup
        if lookup is None:
            return None
        hit = self._lookup(ctx, table, plan, lookup, values[0])
        return None if hit is None else self._ordered(plan, *hit)

    @staticmethod
    def _filter(
        rows: list[Obj], values: list[tuple[Any, ...]], tests: list[tuple[int, Callable[[Any], int]]], wanted: int | None
    ) -> tuple[list[Obj], list[tuple[Any, ...]], int, bool]:
        """The rows SQLite could keep, how many it certainly keeps, and whether ``wanted`` certain rows were reached."""
        out_rows: list[Obj] = []
        out_values: list[tuple[Any, ...]] = []
        certain = 0
        for row, value in zip(rows, values):
            verdict = CERTAIN
            for index, test in tests:
                result = test(value[index])
                if result < verdict:
                    verdict = result
                    if verdict == FAILS:
                        break
            if verdict == FAILS:
                continue
            out_rows.append(row)
            out_values.append(value)
            if verdict == CERTAIN:
                certain += 1
                if wanted is not None and certain >= wanted:
                    return out_rows, out_values, certain, True
        return out_rows, out_values, certain, False

    @staticmethod
    def _ordered(
        plan: Plan, rows: list[Obj], values: list[tuple[Any, ...]], kinds: list[set[str]] | None = None
    ) -> tuple[list[Obj], list[tuple[Any, ...]]]:
        """``rows`` in the ORDER BY the plan took over (as they are when it took none)."""
        if not plan.order or len(rows) < 2:
            return rows, values
        return order_rows(rows, values, plan.order, kinds)

    def _lookup(
        self, ctx: StatementContext, table: Table, plan: Plan, arg: Arg, value: Any
    ) -> tuple[list[Obj], list[tuple[Any, ...]]] | None:
        """``column = 'text'`` answered from what the statement holds (the inner loops of joins), or None."""
        if type(value) is not str or value in ("", ".", ".."):
            return None
        source = self.source_of(table)
        if arg.role == "key":
            obj = ctx.store.get_object(source.name, value, plan.includes)
            if obj is None:
                return None
            made = self.lookups.get(table, obj, [obj])
        else:
            objs = ctx.store.get_set(source.name, arg.source.lower(), value, plan.includes)
            if objs is None:
                return None
            made = self.lookups.get(table, objs, objs)
        values = made.ensure(table, plan.mask)
        index = arg.index
        if made.matched == (index, value):
            return made.rows, values
        keep = [i for i, v in enumerate(values) if v[index] == value]
        if len(keep) == len(values):
            made.matched = (index, value)  # a set looked up by the value it is keyed by: every row, every time
            return made.rows, values
        return [made.rows[i] for i in keep], [values[i] for i in keep]

    def _stubs(self, ctx: StatementContext, table: Table, plan: Plan, values: Sequence[Any]) -> Iterator[Obj]:
        """DELETE by key alone: the key is all SQLite needs, so nothing is fetched."""
        key_arg, value = plan.args[0], values[0]
        column = table.column(key_arg.column)
        for v in sorted({x for x in (value if key_arg.multi else [value]) if x is not None and not isinstance(x, bytes)}, key=repr):
            key = api_value(column, v, key_arg.op, True)
            if key is NOTHING or key is UNSAFE:
                key = v  # ('.', '..': the writer refuses them as ids without sending anything)
            stored = column.value({column.path or column.name: key})
            ctx.stubs.add((table.name, stored))
            yield {column.path or column.name: stored}

    def _pages(
        self,
        ctx: StatementContext,
        source: Table,
        plan: Plan,
        conditions: list[Condition],
        wanted: int | None,
        offset: int,
        repeat: bool,
    ) -> tuple[Iterator[Page], bool]:
        """The pages of source objects the plan needs, and whether they come straight from the
        whole list (in the order the API sends it: the only order TrustListOrder vouches for)."""
        includes = plan.includes
        keys = next((c for c in conditions if c.arg.role == "key"), None)
        if keys is not None:
            texts = keys.api_values(for_key=True)
            if texts is not None:
                return self._by_key(ctx, source, texts, includes, not keys.arg.multi, repeat), False
        filters: list[tuple[Condition, list[str]]] = []
        for c in conditions:
            if c.arg.role == "filter":
                texts = c.api_values(for_key=False)
                if texts is not None:
                    filters.append((c, texts))
        if any(not texts for _, texts in filters):
            return iter(()), False  # an equality no row can meet (= NULL, an empty IN list)
        if plan.order and not (plan.api_order and not filters):
            wanted = None  # sorted here: every row is needed
        exact = len(filters) == len(conditions) and all(c.arg.op != IS for c, _ in filters)
        if not filters:
            return self._scan(ctx, source, includes, wanted if not conditions else None, offset), True
        combos = [dict(c) for c in itertools.product(*[[(cond.arg.source, t) for t in texts] for cond, texts in filters])]
        if len(combos) > 1 and source.list is not None:
            if len(combos) > self.lookup_budget(source, batch=True):
                return self._scan(ctx, source, includes, None, 0), False  # one read beats a request per combination
            if repeat:
                # The inner loop of a join sends these lists for every outer row: once they would
                # cost more than reading the table, read it and answer from it (the request rule).
                unsent = sum(1 for combo in combos if not self._list_sent(ctx, source, combo, includes))
                if unsent and self._lookups_exhausted(ctx, source, unsent, includes):
                    full = self._full(ctx, source, includes)
                    if full is not None:
                        column, texts = filters[0][0].arg.source.lower(), filters[0][1]
                        return iter([([o for t in texts for o in full.where(column, t)], None)]), False
        single = len(combos) == 1 and len(filters) == 1 and not filters[0][0].arg.multi
        if single:
            (column, text), = combos[0].items()
            hit = ctx.store.get_set(source.name, column.lower(), text, includes)
            if hit is not None:
                return iter([(hit, None)]), False
        return self._combos(ctx, source, combos, includes, wanted if exact else None, offset, single, repeat), False

    def _combos(
        self,
        ctx: StatementContext,
        source: Table,
        combos: list[dict[str, str]],
        includes: frozenset[str],
        wanted: int | None,
        offset: int,
        single: bool,
        repeat: bool,
    ) -> Iterator[Page]:
        """The lists of each combination of filter values, each object once."""
        seen: set[Any] | None = set() if len(combos) > 1 else None
        batch_ = len(combos) > 1
        streams = [self._list(ctx, source, combo, includes, wanted, offset, single, batch_, repeat) for combo in combos]
        try:
            for stream in streams:
                for objs, memo in stream.pages():
                    if seen is not None:
                        fresh = []
                        for obj in objs:
                            key = source.key_of(obj)
                            if key not in seen:
                                seen.add(key)
                                fresh.append(obj)
                        if len(fresh) != len(objs):
                            objs, memo = fresh, None
                    yield objs, memo
        finally:
            for stream in streams:
                stream.close()

    def _list_sent(self, ctx: StatementContext, source: Table, combo: Mapping[str, str], includes: frozenset[str]) -> bool:
        """Whether the first page of this filtered list was already sent in this statement."""
        assert source.list is not None
        endpoint = source.list
        filters = {source.column(col).filter or col: value for col, value in combo.items()}
        first = page_params(self, endpoint, list_params(endpoint, includes, filters), 1, self.list_page_size())
        return ctx.sent(endpoint.path, first, page=True)

    # -- single objects ---------------------------------------------------------------------------

    def _get_request(self, ctx: StatementContext, source: Table, key: str, includes: frozenset[str]) -> Future[ApiResponse | None]:
        assert source.get is not None
        path = source.get.path.replace("{key}", quote(key, safe=""))
        return ctx.get(self, path, list_params(source.get, includes), source.get.scope, allow_404=True)

    def _by_key(
        self, ctx: StatementContext, source: Table, keys: list[str], includes: frozenset[str], single: bool, repeat: bool = False
    ) -> Iterator[Page]:
        """The objects with these keys (texts as the API names them), as one page."""
        key_col = source.column(source.get_key)
        stored = [key_col.value({key_col.path or key_col.name: k}) for k in keys]
        if not single and len(keys) > self.lookup_budget(source, batch=True) and source.list is not None:
            full = self._full(ctx, source, includes)  # one read beats a GET per value
            if full is not None:
                yield [o for k in stored if (o := full.by_key.get(k)) is not None], None
                return
        found: dict[Any, Obj] = {}
        pending: dict[Any, Future[ApiResponse | None]] = {}
        for text, key in zip(keys, stored):
            hit = ctx.store.get_object(source.name, key, includes)
            if hit is not None:
                found[key] = hit
        missing = [(t, k) for t, k in zip(keys, stored) if k not in found]
        if missing and single and repeat and self._lookups_exhausted(ctx, source, len(missing), includes):
            full = self._full(ctx, source, includes)
            if full is not None:
                hit = full.by_key.get(stored[0])
                yield [hit] if hit is not None else [], None
                return
        for text, key in missing:
            if not ctx.sent(*self._get_identity(source, text, includes)):
                self._count_lookup(ctx, source)
            pending[key] = self._get_request(ctx, source, text, includes)
        if single and pending:

            def prefetch(value: Any) -> None:
                text = api_value(key_col, value, 0, True)
                if not isinstance(text, str) or self._lookups_exhausted(ctx, source, 1, includes):
                    return
                key = key_col.value({key_col.path or key_col.name: text})
                if ctx.store.get_object(source.name, key, includes) is None and not ctx.sent(*self._get_identity(source, text, includes)):
                    self._count_lookup(ctx, source)
                    self._get_request(ctx, source, text, includes)

            look_ahead(self, ctx, source.name, source.get_key, stored[0], prefetch)
        results: list[Obj] = []
        try:
            for key in stored:
                obj: Obj | None = found.get(key)
                if obj is None and key in pending:
                    obj = _data(ctx.result(pending.pop(key)))
                    if obj is not None:
                        self.register(ctx, source, [obj], includes)
                if obj is not None:
                    results.append(obj)
        finally:
            for f in pending.values():
                ctx.release(f)
        yield results, None

    def _get_identity(self, source: Table, text: str, includes: frozenset[str]) -> tuple[str, list[tuple[str, str]]]:
        assert source.get is not None
        return source.get.path.replace("{key}", quote(text, safe="")), list_params(source.get, includes)

    # -- lookups and whole tables ---------------------------------------------------------------

    def _count_lookup(self, ctx: StatementContext, source: Table) -> None:
        """One more request that reads part of ``source`` (a GET by key, a page of a filtered list):
        all of them count against reading the table whole instead."""
        ctx.lookups[source.name] = ctx.lookups.get(source.name, 0) + 1

    def _lookups_exhausted(self, ctx: StatementContext, source: Table, more: int, includes: frozenset[str]) -> bool:
        """Whether ``more`` lookups in ``source`` would cost more than what reading it whole still costs.

        Pages of the whole list that this statement already sent (the outer
        scan of a self-join, say) cost nothing more, so a join of a table
        with itself reads it once.
        """
        if source.list is None or source.name in ctx.store.too_big:
            return False
        spent = ctx.lookups.get(source.name, 0) + more
        known = self.scan_cost(source)
        if known is None:
            return spent > self.lookup_budget(source)
        if spent > known:
            return True
        path = source.list.path
        shared = sum(1 for params in self._full_pages(source, includes, known) if ctx.sent(path, params, page=True))
        return spent > known - shared

    def _full_pages(self, source: Table, includes: frozenset[str], pages: int) -> list[list[tuple[str, str]]]:
        """The parameters of pages 1..``pages`` of the whole list of ``source`` (made once: lookups ask often)."""
        key = (source.name, includes, pages)
        known = self._page_params.get(key)
        if known is None:
            assert source.list is not None
            endpoint, size = source.list, self.list_page_size()
            params = list_params(endpoint, includes)
            known = self._page_params[key] = [page_params(self, endpoint, params, p, size) for p in range(1, pages + 1)]
            if len(self._page_params) > 64:
                del self._page_params[next(iter(self._page_params))]
        return known

    def _full(self, ctx: StatementContext, source: Table, includes: frozenset[str]) -> FullTable | None:
        """Every object of ``source`` (read once per statement and includes), or None if too many."""
        full = ctx.store.get_full(source.name, includes)
        if full is not None:
            return full
        if source.list is None:
            return None
        objs: list[Obj] = []
        stream = self._list(ctx, source, {}, includes, None, 0, False)
        try:
            for page, _ in stream.pages():
                objs.extend(page)
                if len(objs) > ctx.store.max_full_rows:
                    ctx.store.too_big.add(source.name)
                    return None
        finally:
            stream.close()

        def value(column: str, obj: Obj) -> Any:
            return text_affinity(source.column(column).value(obj))  # as filter values are sent

        full = FullTable(objs, includes, lambda o: source.key_of(o)[0] if len(source.key) == 1 else source.key_of(o), value)
        ctx.store.full[source.name] = full
        return full

    def _scan(self, ctx: StatementContext, source: Table, includes: frozenset[str], wanted: int | None, offset: int) -> Iterator[Page]:
        full = ctx.store.get_full(source.name, includes)
        if full is not None and not offset:
            yield full.objs, None
            return
        stream = self._list(ctx, source, {}, includes, wanted, offset, False)
        try:
            yield from stream.pages()
        finally:
            stream.close()

    # -- lists --------------------------------------------------------------------------------------

    def _list(
        self,
        ctx: StatementContext,
        source: Table,
        combo: Mapping[str, str],
        includes: frozenset[str],
        wanted: int | None,
        offset: int,
        single: bool = False,
        batch: bool = False,
        repeat: bool = False,
    ) -> ListStream | ReadyStream | LookupStream:
        """The objects of one list request (``combo``: source column → filter text).

        ``batch``: one of several lists an IN needs, decided on as a whole; else
        a lookup that may find the table is cheaper to read whole by now.
        """
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
        params = list_params(endpoint, includes, filters)
        first = page_params(self, endpoint, params, 1, self.list_page_size())
        lookup = bool(combo) and not batch and wanted is None and not offset
        column, text = next(iter(combo.items())) if combo else ("", "")

        def from_full() -> list[Obj] | None:
            full = self._full(ctx, source, includes)  # the other filters of the combination are checked by the caller
            return full.where(column.lower(), text) if full is not None else None

        if lookup and repeat and self._lookups_exhausted(ctx, source, 0 if ctx.sent(endpoint.path, first, page=True) else 1, includes):
            objs = from_full()
            if objs is not None:
                return ReadyStream(objs)
        if single and wanted is None and not offset:
            (column, _), = combo.items()
            column_spec = source.column(column)

            def prefetch(value: Any) -> None:
                text = api_value(column_spec, value, 0, False)
                if not isinstance(text, str) or ctx.store.get_set(source.name, column.lower(), text, includes) is not None:
                    return
                params = list_params(endpoint, includes, {column_spec.filter or column: text})
                first = page_params(self, endpoint, params, 1, self.list_page_size())
                if ctx.sent(endpoint.path, first, page=True) or self._lookups_exhausted(ctx, source, 1, includes):
                    return
                self._count_lookup(ctx, source)
                ctx.get(self, endpoint.path, first, endpoint.scope, page=True, cacheable=False)

            look_ahead(self, ctx, source.name, column, next(iter(combo.values())), prefetch)
        only = next(iter(combo.items())) if len(combo) == 1 else None

        counts = self._value_counter(source) if not combo and endpoint.paginated and not offset and wanted is None else None

        def complete(objs: list[Obj] | None, rows: int) -> None:
            if objs is not None:
                ctx.store.put_result(key, objs)
                if only is not None:
                    ctx.store.put_set(source.name, only[0].lower(), only[1], objs, includes)
            if not combo and endpoint.paginated:
                self.remember_pages(("rows", source.name), rows)
                if counts is not None:
                    counts.remember()

        if not combo:
            expected = self.scan_cost(source)
        else:
            expected = self.filtered_cost(source, combo) if only is not None else None
        budget = (lambda: not self._lookups_exhausted(ctx, source, 1, includes)) if lookup and repeat else None
        stream = ListStream(
            self, ctx, source, endpoint, params, includes, wanted, offset, None if offset else complete, lookup=bool(combo),
            expected_pages=expected, may_fetch=budget, most_pages=self.scan_cost(source) if combo else None,
            on_page=counts.count if counts is not None else None,
        )
        if not (lookup and repeat):
            return stream
        # A long list looked up may itself use up the budget: the rest then comes from the whole table.
        return LookupStream(stream, lambda: self._lookups_exhausted(ctx, source, 0, includes), from_full, lambda o: source.key_of(o))

    def register(
        self, ctx: StatementContext, table: Table, objs: list[Obj], includes: frozenset[str], memo: dict[Any, Any] | None = None
    ) -> None:
        """Remember fetched objects, and the complete child sets they embed (when the store is next used).

        ``memo``: where the page keeps what was made from it (a ``CacheTTL`` snapshot's page).
        The objects are counted at once (``rows_read``, for progress lines); indexing waits.
        """
        ctx.rows_read += self.count_objects(table, objs)

        def index() -> PageIndex:
            if memo is None:
                return self.index(table, objs, includes)
            key = ("index", table.name, includes)
            made = memo.get(key)
            if made is None:
                made = memo[key] = self.index(table, objs, includes)
            return made

        ctx.store.defer(index)

    def count_objects(self, table: Table, objs: list[Obj]) -> int:
        """How many objects a page brought, with the child objects they embed."""
        count = len(objs)
        for embed in table.embeds:
            child = self.table(embed.table)
            for obj in objs:
                children = obj.get(embed.field) if isinstance(obj, dict) else None
                if isinstance(children, list):
                    count += self.count_objects(child, children)
        return count

    def index(self, table: Table, objs: list[Obj], includes: frozenset[str]) -> PageIndex:
        """The objects of one page by key, and the child sets they embed (recursively)."""
        out = PageIndex(includes)

        def add(table: Table, objs: list[Obj], into: dict[tuple[str, Any], Obj]) -> None:
            keyed = bool(table.key)
            embeds = [(e, self.table(e.table)) for e in table.embeds]
            name = table.name
            for obj in objs:
                if not isinstance(obj, dict):
                    continue
                key = table.key_of(obj) if keyed else ()
                if keyed:
                    into[(name, key[0] if len(key) == 1 else key)] = obj
                for embed, child in embeds:
                    children = obj.get(embed.field)
                    if isinstance(children, list):
                        out.sets[(child.name, embed.key.lower(), key[0] if key else None)] = children
                        add(child, children, out.children)

        add(table, objs, out.objects)
        return out
