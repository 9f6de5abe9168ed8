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
import os
from collections.abc import Callable, Iterator, Mapping, Sequence
from concurrent.futures import Future
from typing import Any
from urllib.parse import quote

from .. import exceptions as exc
from ..answers import ApiResponse
from ..client import ApiClient
from .arrivals import Arrivals
from .budget import Budget
from .compare import IS, text_affinity
from .conditions import CERTAIN, FAILS, NOTHING, UNSAFE, Condition, api_value
from .lookahead import look_ahead
from .pages import list_params, object_data, page_params
from .planner import Arg, Plan
from .rows import UNSET, Batch, Batches, batch, order_rows
from .schema import Column, Pagination, Table
from .sending import Sender
from .statement import FullTable, Obj, PageIndex, StatementContext
from .streams import ListStream, LookupStream, Page, Reach, ReadyStream
from .workers import Workers

__all__ = ["Engine", "StatementContext"]


_NOT_IDS = frozenset(("", ".", ".."))  # never an object's id: no lookup answers them from what was fetched


def _data(response: ApiResponse | None) -> Any:
    """The object a lookup by key found; None for a 404 (no such object). Any other answer raises."""
    if response is None:
        return None
    return object_data(response.body, response.url, response.status)


Prepared = tuple[Any, list[Obj], list[tuple[Any, ...]], int, int, "tuple[int, Any] | None"]
"""The rows of one lookup's objects and their SQLite values, kept by the statement: ``(holder, rows,
values, start, end, matched)``. Its rows are ``rows[start:end]`` (with ``values`` as ``rows.Batch`` has
them): a window on its page's rows, which every set of the page shares (a tuple and no copy per set,
as a join's inner loop makes one per outer row). ``holder`` is kept so that its id is not reused while
the entry lives; ``matched`` is the (column, value) every row is known to equal."""

Window = tuple[list[Obj], list[tuple[Any, ...]], int, int]
"""Rows a lookup answered: ``rows[start:end]`` and their values ``values[start:end]``."""


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
        self._pid = os.getpid()
        self.embedded_keys = self._embedded_keys()
        self.sender = Sender(client, self.pool)
        self.budget = Budget(pagination, page_size, client.cache_owner)
        self.arrivals = Arrivals(self.tables)
        self.reach = Reach(self.sender, self.budget, self.arrivals, max_concurrency)
        self.lookups = Batches()  # rows prepared for lookups answered from CacheTTL snapshots (engine.rows)
        self._masks: dict[tuple[str, int], list[tuple[int, Column]]] = {}
        # Each table's source (the parent of a derived table), by name: looked up on every lookup.
        self._sources = {t.name: self.source_of(t).name for t in self.tables.values()}

    def close(self) -> None:
        """Cancel requests not yet sent (those under way finish or fail on their own)."""
        self.pool.shutdown()

    def submit(self, fn: Any, *args: Any, **kwargs: Any) -> Future[Any]:
        """Run an HTTP request on the worker pool."""
        return self.sender.submit(fn, *args, **kwargs)

    def wait_idle(self, timeout: float = 30.0) -> None:
        """Wait until no request is in flight (pages fetched ahead finish after their statement)
        and what finished statements held is let go (``let_go``)."""
        self.pool.wait_idle(timeout)

    def let_go(self, held: list[Any]) -> None:
        """Let go of what a finished statement held on a worker (``StatementContext.let_go``):
        its last row reaches the caller before the deallocation, not after it. At once when the
        connection is closed, or in a child made by fork(), where the workers and their lock
        belong to the parent."""
        if os.getpid() != self._pid:
            held.clear()
            return
        try:
            self.pool.submit(held.clear)
        except exc.InterfaceError:  # the connection is closed
            held.clear()

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
        tests = [(c.index, c.test) for c in conditions]
        # Sorted here with LIMIT (and OFFSET) known and no row in doubt: only the first ``top``
        # rows of the order can be handed out, so only they are kept between pages.
        top = wanted if local_order and not tests else None
        if local_order:
            wanted = None  # every row is needed before the first can be handed out
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
                if top is not None and len(kept_rows) >= max(2 * top, 1000):
                    # A stable sort's first rows of (first rows so far + more) are its first rows of all.
                    kept_rows, kept_values = self._ordered(plan, kept_rows, kept_values, kinds)
                    del kept_rows[top:], kept_values[top:]
                continue
            if rows:
                yield rows, values_
            if stop:
                return
        if local_order and kept_rows:
            yield self._ordered(plan, kept_rows, kept_values, kinds)

    def looked_up(self, ctx: StatementContext, table: Table, plan: Plan, values: Sequence[Any]) -> Window | None:
        """The rows of a plain lookup (``column = ?``) answered from what the statement holds, or None."""
        lookup = plan.lookup
        if lookup is None:
            return None
        hit = self._lookup(ctx, table, plan, lookup, values[0])
        if hit is None or not plan.order:
            return hit
        rows, values_, start, end = hit
        if end - start < 2:
            return hit
        ordered = order_rows(rows[start:end], values_[start:end], plan.order)
        return ordered[0], ordered[1], 0, len(ordered[0])

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

    def _lookup(self, ctx: StatementContext, table: Table, plan: Plan, arg: Arg, value: Any) -> Window | None:
        """``column = 'text'`` answered from what the statement holds (the inner loops of joins), or None.

        This runs once per row of a join's outer loop, so it is kept to a few dictionary lookups.
        """
        if type(value) is not str or value in _NOT_IDS:
            return None
        store = ctx.store
        source = self._sources[table.name]
        on: str | None
        holder: Any  # an object (a lookup by key), or a set of them
        if arg.role == "key":
            on = None
            holder = store.get_object(source, value, plan.includes)
        else:
            on = arg.source.lower()
            holder = store.get_set(source, on, value, plan.includes)
        if holder is None:
            return None
        batch_: Batch | None = None
        if self.client.cache_ttl > 0:
            # The sets may come from a CacheTTL snapshot, the same objects statement after statement.
            batch_ = self.lookups.get(table, holder, [holder] if on is None else holder)
            values = batch_.ensure(table, plan.mask)
            rows, start, end, matched = batch_.rows, 0, len(values), batch_.matched
        else:
            key = (id(holder), table.name, plan.mask)
            made = ctx.prepared.get(key)
            if made is None or made[0] is not holder:
                made = self._prepared(ctx, table, holder, [holder] if on is None else holder, plan.mask, on, arg.index)
            _, rows, values, start, end, matched = made
        index = arg.index
        if matched is not None and matched[0] == index and matched[1] == value:
            return rows, values, start, end
        keep = [i for i in range(start, end) if values[i][index] == value]
        if len(keep) == end - start:
            # A set looked up by the value it is keyed by: every row, every time.
            if batch_ is not None:
                batch_.matched = (index, value)
            else:
                ctx.prepared[key] = (holder, rows, values, start, end, (index, value))
            return rows, values, start, end
        return [rows[i] for i in keep], [values[i] for i in keep], 0, len(keep)

    def _prepared(
        self, ctx: StatementContext, table: Table, holder: Any, objs: list[Obj], mask: int, on: str | None = None, by: int = -1
    ) -> Prepared:
        """The rows of ``table`` in ``objs`` with their values for ``mask``, made once per statement.

        Without CacheTTL every statement has objects of its own, so what is prepared for a
        lookup is kept with the statement (``ctx.prepared``) and goes with it. A holder that
        came in a page (a set of embedded children, ``on`` their column, or one object
        when ``on`` is None) is prepared with the others of its kind in that page, in one
        ``Batch``: a join's inner loop looks them all up in turn. Otherwise a lookup of a row
        or two converts its cells directly (a ``Batch`` costs more to set up than that).
        """
        key = (id(holder), table.name, mask)
        found: Prepared | None = ctx.prepared.get(key)
        if found is not None and found[0] is holder:
            return found
        index = ctx.store.page_of.get(id(holder))
        if index is not None and self._prepare_page(ctx, table, holder, index, mask, on, by):
            paged: Prepared | None = ctx.prepared.get(key)
            if paged is not None and paged[0] is holder:
                return paged
        derived = table.derived
        rows: list[Obj] = objs if derived is None else [row for obj in objs for row in derived.rows(obj)]
        if len(rows) <= 8:
            columns = self._mask_columns(table, mask)
            width = len(table.columns) + 1
            values = []
            for row in rows:
                cells = [UNSET] * width
                for i, column in columns:
                    cells[i] = column.value(row)
                values.append(tuple(cells))
        else:
            values = Batch(rows, len(table.columns)).ensure(table, mask)
        made = (holder, rows, values, 0, len(rows), None)
        if len(ctx.prepared) >= ctx.max_prepared:
            ctx.prepared.clear()  # a bound, not a cache policy: whatever is looked up again is made again
        ctx.prepared[key] = made
        return made

    def _prepare_page(
        self, ctx: StatementContext, table: Table, holder: Any, index: PageIndex, mask: int, on: str | None, by: int = -1
    ) -> bool:
        """Prepare ``holder`` and the holders of its kind in the page ``index`` (see :meth:`_prepared`)
        in one ``Batch``; each gets exactly the rows and values it would get alone. False when
        ``holder`` is not among them, or there are too few or too many to be worth it.

        ``by``: the column the lookups are by. Where it is converted, each holder whose rows all
        hold its own key there is marked as matching it (``matched``, see ``Prepared``), so that looking
        it up by that key keeps every row without comparing them one by one.
        """
        source = self._sources[table.name]
        members: list[tuple[Any, Any]]  # (the key it is found by, the set or object)
        if on is not None:
            members = [(value, held) for (name, column, value), held in index.sets.items() if name == source and column == on]
        else:  # one object: the page's embedded objects of its table, or the page's own
            members = [(key, obj) for (name, key), obj in index.children.items() if name == source]
            if not any(m is holder for _, m in members):
                members = [(key, obj) for (name, key), obj in index.objects.items() if name == source]
        if not 1 < len(members) <= 2000 or not any(m is holder for _, m in members):
            return False
        derived = table.derived
        rows: list[Obj] = []
        keys: list[Any] = []  # each row's holder's key
        bounds: list[tuple[Any, Any, int, int]] = []
        for key, member in members:
            start = len(rows)
            objs = member if on is not None else [member]
            if derived is None:
                rows.extend(objs)
            else:
                for obj in objs:
                    rows.extend(derived.rows(obj))
            end = len(rows)
            keys += [key] * (end - start)
            bounds.append((key, member, start, end))
        made = Batch(rows, len(table.columns))
        values = made.ensure(table, mask)
        cells = made.column(by) if by >= 0 else None
        every = cells == keys  # (the usual case: checked for the whole page at once, in C)
        prepared = ctx.prepared
        if len(prepared) + len(bounds) > ctx.max_prepared:
            prepared.clear()  # a bound, not a cache policy: whatever is looked up again is made again
        name = table.name
        for key, member, start, end in bounds:
            matched = None
            if type(key) is str and cells is not None and (every or cells[start:end].count(key) == end - start):
                matched = (by, key)
            prepared[(id(member), name, mask)] = (member, rows, values, start, end, matched)
        return True

    def _mask_columns(self, table: Table, mask: int) -> list[tuple[int, Column]]:
        key = (table.name, mask)
        found = self._masks.get(key)
        if found is None:
            found = self._masks[key] = [(i, c) for i, c in enumerate(table.columns) if mask >> i & 1]
        return found

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
            if self._combos_cost(source, combos) > self.budget.lookup_budget(source, batch=True):
                return self._scan(ctx, source, includes, None, 0), False  # one read beats the lists of every combination
            if repeat:
                # The inner loop of a join sends these lists for every outer row: once they would
                # cost more than reading the table, read it and answer from it (the request rule).
                unsent = sum(1 for combo in combos if not self._list_sent(ctx, source, combo, includes))
                if unsent and self.budget.lookups_exhausted(ctx, source, unsent, includes):
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

    def _combos_cost(self, source: Table, combos: list[dict[str, str]]) -> int:
        """Pages the lists of ``combos`` are expected to take: a value counted in the table's last
        full read (``ValueCounts``) by its pages, any other at least one."""
        cost = 0
        for combo in combos:
            pages = self.budget.filtered_cost(source, combo) if len(combo) == 1 else None
            cost += pages or 1
        return cost

    def _list_sent(self, ctx: StatementContext, source: Table, combo: Mapping[str, str], includes: frozenset[str]) -> bool:
        """Whether the first page of this filtered list was already sent in this statement."""
        assert source.list is not None
        endpoint = source.list
        filters = {source.column(col).filter or col: value for col, value in combo.items()}
        first = page_params(self.pagination, endpoint, list_params(endpoint, includes, filters), 1, self.budget.list_page_size())
        return ctx.sent(endpoint.path, first, page=True)

    # -- single objects ---------------------------------------------------------------------------

    def _get_request(self, ctx: StatementContext, source: Table, key: str, includes: frozenset[str]) -> Future[ApiResponse | None]:
        assert source.get is not None
        path = source.get.path.replace("{key}", quote(key, safe=""))
        return ctx.get(self.sender, path, list_params(source.get, includes), source.get.scope, allow_404=True)

    def _by_key(
        self, ctx: StatementContext, source: Table, keys: list[str], includes: frozenset[str], single: bool, repeat: bool = False
    ) -> Iterator[Page]:
        """The objects with these keys (texts as the API names them), as one page."""
        key_col = source.column(source.get_key)
        stored = [key_col.value({key_col.path or key_col.name: k}) for k in keys]
        if not single and len(keys) > self.budget.lookup_budget(source, batch=True) and source.list is not None:
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
        if missing and single and repeat and self.budget.lookups_exhausted(ctx, source, len(missing), includes):
            full = self._full(ctx, source, includes)
            if full is not None:
                hit = full.by_key.get(stored[0])
                yield [hit] if hit is not None else [], None
                return
        for text, key in missing:
            if not ctx.sent(*self._get_identity(source, text, includes)):
                self.budget.count_lookup(ctx, source)
            pending[key] = self._get_request(ctx, source, text, includes)
        if single and pending:

            def prefetch(value: Any) -> None:
                text = api_value(key_col, value, 0, True)
                if not isinstance(text, str) or self.budget.lookups_exhausted(ctx, source, 1, includes):
                    return
                key = key_col.value({key_col.path or key_col.name: text})
                if ctx.store.get_object(source.name, key, includes) is None and not ctx.sent(*self._get_identity(source, text, includes)):
                    self.budget.count_lookup(ctx, source)
                    self._get_request(ctx, source, text, includes)

            look_ahead(self.table, ctx, source.name, source.get_key, stored[0], prefetch)
        results: list[Obj] = []
        try:
            for key in stored:
                obj: Obj | None = found.get(key)
                if obj is None and key in pending:
                    obj = _data(ctx.result(pending.pop(key)))
                    if obj is not None:
                        self.arrivals.register(ctx, source, [obj], includes)
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
        first = page_params(self.pagination, endpoint, params, 1, self.budget.list_page_size())
        lookup = bool(combo) and not batch and wanted is None and not offset
        column, text = next(iter(combo.items())) if combo else ("", "")

        def from_full() -> list[Obj] | None:
            full = self._full(ctx, source, includes)  # the other filters of the combination are checked by the caller
            return full.where(column.lower(), text) if full is not None else None

        # Once the statement's lookups of the table cost what reading it whole does (or every page of
        # the whole list went out already), the table is read whole and answers this lookup and the next.
        if lookup and (
            self.budget.lookups_exhausted(ctx, source, 0 if ctx.sent(endpoint.path, first, page=True) else 1, includes)
            or (not ctx.sent(endpoint.path, first, page=True) and self.budget.whole_list_sent(ctx, source, includes))
        ):
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
                first = page_params(self.pagination, endpoint, params, 1, self.budget.list_page_size())
                if ctx.sent(endpoint.path, first, page=True) or self.budget.lookups_exhausted(ctx, source, 1, includes):
                    return
                self.budget.count_lookup(ctx, source)
                ctx.get(self.sender, endpoint.path, first, endpoint.scope, page=True, cacheable=False)

            look_ahead(self.table, ctx, source.name, column, next(iter(combo.values())), prefetch)
        only = next(iter(combo.items())) if len(combo) == 1 else None

        counts = self.budget.value_counter(source) if not combo and endpoint.paginated and not offset and wanted is None else None

        def complete(objs: list[Obj] | None, rows: int) -> None:
            if objs is not None:
                ctx.store.put_result(key, objs)
                if only is not None:
                    ctx.store.put_set(source.name, only[0].lower(), only[1], objs, includes)
            if not combo and endpoint.paginated:
                self.budget.remember_pages(("rows", source.name), rows)
                if counts is not None:
                    counts.remember()

        if not combo:
            expected = self.budget.scan_cost(source)
        else:
            expected = self.budget.filtered_cost(source, combo) if only is not None else None
        # A join's inner loop looking values up, or one list of an IN's batch: each spends the
        # statement's lookups of the table, and gives way to reading it whole once they cost more.
        guarded = (lookup and repeat) or (batch and wanted is None and not offset)
        budget = (lambda: not self.budget.lookups_exhausted(ctx, source, 1, includes, batch)) if guarded else None
        stream = ListStream(
            self.reach, ctx, source, endpoint, params, includes, wanted, offset, None if offset else complete, lookup=bool(combo),
            expected_pages=expected, may_fetch=budget, most_pages=self.budget.scan_cost(source) if combo else None,
            on_page=counts.count if counts is not None else None,
        )
        if not guarded:
            return stream
        # A long list looked up may itself use up the budget: the rest then comes from the whole table.
        return LookupStream(
            stream, lambda: self.budget.lookups_exhausted(ctx, source, 0, includes, batch), from_full, lambda o: source.key_of(o)
        )
