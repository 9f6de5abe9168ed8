"""Query planning for one virtual table: which constraints the API can answer.

``plan()`` runs inside SQLite's ``xBestIndex``: it must be pure (no I/O),
because APSW caches prepared statements and will not call it again for new
parameter values. It picks one of three access paths:

- ``get``: ``key = ?`` or ``key IN (...)`` → one GET of the object per value;
- ``list``: equality or ``IN`` on columns with an API filter → list requests
  with those filters (one per combination of ``IN`` values);
- ``list`` without arguments: a full scan.

Every constraint it consumes is also re-checked by the engine in Python with
SQLite's comparison rules (see ``Engine.objects``), so telling SQLite to
``omit`` its own check is exact even when the API filter is looser (a
case-insensitive tag match, say). That is what makes the LIMIT/OFFSET rules
safe: LIMIT is consumed only when every constraint is consumed, there is no
ORDER BY, and the plan is a list; OFFSET is consumed (page arithmetic) only
for a plain scan, and otherwise left for SQLite to apply to the rows we send.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import apsw

from .schema import Table

EQ = apsw.SQLITE_INDEX_CONSTRAINT_EQ
LIMIT = apsw.SQLITE_INDEX_CONSTRAINT_LIMIT
OFFSET = apsw.SQLITE_INDEX_CONSTRAINT_OFFSET
SCAN_UNIQUE = apsw.SQLITE_INDEX_SCAN_UNIQUE
IMPOSSIBLE_COST = 1e15


@dataclass(frozen=True)
class Arg:
    """One value SQLite passes to Filter, in argv order.

    ``role`` is ``key`` (the object id for a GET), ``filter`` (a request
    parameter), ``check`` (a constraint only re-checked locally), ``limit`` or
    ``offset``. ``column`` is this table's column; ``source`` the column of
    the table that is actually requested (the parent, for derived tables).
    """

    role: str
    column: str = ""
    source: str = ""
    multi: bool = False


@dataclass(frozen=True)
class Plan:
    table: str
    kind: str  # "get", "list", "stub" (key only, for DELETE), "static" (rows known in advance) or "none"
    args: tuple[Arg, ...] = ()
    includes: frozenset[str] = field(default_factory=frozenset)
    offset_consumed: bool = False

    @property
    def fast_lookup(self) -> tuple[str, str] | None:
        """(column, source column) when the plan is one ``filter = ?`` or ``key = ?`` and nothing else."""
        if self.kind in ("list", "get") and len(self.args) == 1 and self.args[0].role in ("filter", "key") and not self.args[0].multi:
            return self.args[0].column, self.args[0].source.lower()
        return None

    def describe(self) -> str:
        if self.kind == "none":
            return f"{self.table}: cannot be read without its key"
        parts = []
        for a in self.args:
            op = "IN" if a.multi else "="
            if a.role in ("key", "filter"):
                parts.append(f"{a.column} {op} ? ({'GET by key' if a.role == 'key' else 'API filter'})")
            elif a.role == "check":
                parts.append(f"{a.column} {op} ? (checked locally)")
            else:
                parts.append(a.role.upper())
        how = "get" if self.kind == "get" else "list" if any(a.role == "filter" for a in self.args) else "scan"
        return f"{self.table} {how}" + (": " + ", ".join(parts) if parts else "")


def plan(
    table: Table,
    source: Table,
    info: apsw.IndexInfo,
    cheap_columns: frozenset[str],
    in_sets: bool = True,
    embed_includes: frozenset[str] = frozenset(),
    deleting: bool = False,
    trust_order: bool = False,
) -> tuple[Plan, float, int]:
    """Choose an access path; fill ``info``'s constraint usage. Returns (plan, cost, rows).

    ``source`` is the table whose endpoints are called (``table`` itself, or
    its parent when ``table`` is derived). ``cheap_columns`` are source
    columns whose equality lookups are usually answered from objects another
    table embeds (Tasks.job_id from Jobs), which makes them cheap inner loops.
    With ``in_sets`` an ``IN`` reaches Filter as one set (so its values can be
    fetched concurrently); without, SQLite calls Filter once per value.
    ``embed_includes`` are ``include=`` values that make the API embed child
    objects the statement will read too. ``deleting``: the statement deletes
    from this table, so a condition on the key alone needs no fetch at all.
    ``trust_order``: the user vouches that lists come in the order their
    endpoint declares (``Endpoint.order``), so a matching ORDER BY is consumed.
    """
    if table.static is not None:
        return Plan(table.name, "static"), 1.0, table.estimated_rows
    if deleting:
        stub = _stub_plan(table, info, in_sets)
        if stub is not None:
            return stub, 1.0, 1
    derived = table.derived
    get_key = source.get_key if source.get is not None else None

    def source_column(name: str) -> str | None:
        if derived is None:
            return name
        return derived.columns.get(name)

    keys: list[int] = []
    filters: list[int] = []
    unusable = False
    limit_i = offset_i = None
    for i in range(info.nConstraint):
        op = info.get_aConstraint_op(i)
        if op == LIMIT:
            limit_i = i
            continue
        if op == OFFSET:
            offset_i = i
            continue
        if not info.get_aConstraint_usable(i):
            unusable = True
            continue
        col = info.get_aConstraint_iColumn(i)
        if op != EQ or col < 0:
            continue
        src = source_column(table.columns[col].name)
        if src is None:
            continue
        if get_key is not None and src.lower() == get_key.lower():
            keys.append(i)
        elif source.list is not None and source.column(src).filter:
            filters.append(i)

    args: list[Arg] = []
    consumed: set[int] = set()
    seen_columns: set[str] = set()

    def use(i: int, role: str) -> None:
        col = table.columns[info.get_aConstraint_iColumn(i)].name
        src = source_column(col) or col
        if role in ("key", "filter") and col in seen_columns:
            role = "check"
        seen_columns.add(col)
        multi = in_sets and bool(info.get_aConstraintUsage_in(i))
        if multi:
            info.set_aConstraintUsage_in(i, True)
        args.append(Arg(role, col, src, multi))
        info.set_aConstraintUsage_argvIndex(i, len(args))
        info.set_aConstraintUsage_omit(i, True)
        consumed.add(i)

    if keys:
        kind = "get"
        use(keys[0], "key")
        for i in keys[1:] + filters:
            use(i, "check")
    elif source.list is not None:
        kind = "list"
        for i in filters:
            use(i, "filter")
    else:
        kind = "none"

    order_consumed = False
    if trust_order and kind == "list" and derived is None and source.list is not None and source.list.order:
        column, descending = source.list.order
        single_request = not any(a.multi for a in args)
        if (
            single_request
            and info.nOrderBy == 1
            and info.get_aOrderBy_iColumn(0) == table.index(column)
            and bool(info.get_aOrderBy_desc(0)) == descending
        ):
            info.orderByConsumed = True
            order_consumed = True

    offset_consumed = False
    others_consumed = all(
        i in consumed
        for i in range(info.nConstraint)
        if info.get_aConstraint_op(i) not in (LIMIT, OFFSET) and info.get_aConstraint_usable(i)
    )
    if kind == "list" and limit_i is not None and others_consumed and not unusable and (info.nOrderBy == 0 or order_consumed):
        pushed_filters = bool(args)
        args.append(Arg("limit"))
        info.set_aConstraintUsage_argvIndex(limit_i, len(args))
        info.set_aConstraintUsage_omit(limit_i, True)
        if offset_i is not None:
            args.append(Arg("offset"))
            info.set_aConstraintUsage_argvIndex(offset_i, len(args))
            offset_consumed = not pushed_filters and derived is None
            info.set_aConstraintUsage_omit(offset_i, offset_consumed)

    includes: set[str] = set(embed_includes)
    if derived is None:
        for idx in info.colUsed:
            if 0 <= idx < len(table.columns) and table.columns[idx].include:
                includes.add(table.columns[idx].include)  # type: ignore[arg-type]

    result = Plan(table.name, kind, tuple(args), frozenset(includes), offset_consumed)
    cost, rows = _cost(result, source, cheap_columns)
    if kind == "get" and len(args) >= 1 and not args[0].multi:
        info.idxFlags = SCAN_UNIQUE
    return result, cost, rows


REQUEST = 100.0  # the cost of one HTTP round trip, in SQLite's cost units


def _cost(p: Plan, source: Table, cheap: frozenset[str]) -> tuple[float, int]:
    """Costs in requests (plus rows): steer SQLite towards plans that need few requests.

    A lookup answered by objects another table embeds costs almost nothing;
    a GET by key costs one request per value; a list costs a request per
    page of its estimated rows.
    """
    if p.kind == "none":
        return IMPOSSIBLE_COST, 1
    combos = 1
    for a in p.args:
        if a.role in ("key", "filter") and a.multi:
            combos *= 10
    if p.kind == "get":
        return REQUEST * combos, combos
    filters = [a for a in p.args if a.role == "filter"]
    limited = any(a.role == "limit" for a in p.args)
    if not filters:
        rows = source.estimated_rows
        cost = REQUEST * max(1, rows // 100) + rows
    elif any(a.source.lower() in cheap for a in filters):
        rows = 3 * combos
        cost = 1.0 * combos
    else:
        per_combo = max(1, source.estimated_rows // 50)
        rows = per_combo * combos
        cost = REQUEST * max(1, per_combo // 100) * combos + rows
    if limited:
        rows = min(rows, 100)
        cost = min(cost, REQUEST)
    return cost, rows


def _stub_plan(table: Table, info: apsw.IndexInfo, in_sets: bool) -> Plan | None:
    """``DELETE ... WHERE key = ?`` (or ``IN``) and nothing else: the key is the whole row needed."""
    if len(table.key) != 1 or table.write is None or table.write.delete is None:
        return None
    key_index = table.index(table.key[0])
    if not set(info.colUsed) <= {key_index}:
        return None
    chosen = None
    for i in range(info.nConstraint):
        if not info.get_aConstraint_usable(i):
            return None
        if info.get_aConstraint_op(i) != EQ or info.get_aConstraint_iColumn(i) != key_index or chosen is not None:
            return None
        chosen = i
    if chosen is None:
        return None
    multi = in_sets and bool(info.get_aConstraintUsage_in(chosen))
    if multi:
        info.set_aConstraintUsage_in(chosen, True)
    info.set_aConstraintUsage_argvIndex(chosen, 1)
    info.set_aConstraintUsage_omit(chosen, True)
    return Plan(table.name, "stub", (Arg("key", table.key[0], table.key[0], multi),))
