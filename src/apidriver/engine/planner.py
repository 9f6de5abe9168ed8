"""Query planning for one virtual table: which constraints the API can answer.

``plan()`` runs inside SQLite's ``xBestIndex``: it must be pure (no I/O),
because APSW caches prepared statements and will not call it again for new
parameter values. It picks one of three access paths:

- ``get``: ``key = ?`` or ``key IN (...)`` → one GET of the object per value;
- ``list``: equality or ``IN`` on columns with an API filter → list requests
  with those filters (one per combination of ``IN`` values);
- ``list`` without filters: a full scan.

What it promises SQLite is never more than is true:

- no constraint is omitted: SQLite checks every row itself, with its own
  affinity and collation rules, which a virtual table cannot fully know (the
  affinity of a join's other operand never reaches it). The engine checks
  rows too (``engine.compare``), but only to drop rows early and to count the
  ones that certainly pass. The one exception is an IN whose values SQLite
  passes one by one (``Arg.typed``): those arrive with the comparison's
  affinity applied, so the engine's check is exact, and it replaces SQLite's;
- LIMIT is taken as a hint, when every constraint is an argument and the
  order needs no sorting: SQLite still applies it, and the engine stops
  fetching once that many rows certainly pass;
- OFFSET is consumed (applied by page arithmetic) only for a plain scan of a
  paginated list with no other constraint; otherwise SQLite skips the rows;
- no plan claims to return at most one row (``SQLITE_INDEX_SCAN_UNIQUE``).

Which of the key or filter arguments is actually sent to the API is decided
per value at run time (``Engine.batches``): a value the API would not match
the way SQLite does (a number against a TEXT column, an empty string, a
collation other than BINARY) turns that argument into a local check.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import apsw

from ..values import TEXT, TIMESTAMP
from .compare import EQ, EVALUATED, IS, KNOWN_COLLATIONS, OPERATOR_TEXT
from .rows import mask_of
from .schema import Table

LIMIT = apsw.SQLITE_INDEX_CONSTRAINT_LIMIT
OFFSET = apsw.SQLITE_INDEX_CONSTRAINT_OFFSET
IMPOSSIBLE_COST = 1e15

__all__ = ["EQ", "Arg", "Plan", "in_affinity", "plan"]


@dataclass(frozen=True)
class Arg:
    """One value SQLite passes to Filter, in argv order.

    ``role`` is ``key`` (the object id for a GET), ``filter`` (a request
    parameter), ``check`` (a constraint only checked locally), ``limit`` or
    ``offset``. ``column`` is this table's column; ``source`` the column of
    the table that is actually requested (the parent, for derived tables).
    ``op`` and ``collation`` are the constraint's, as SQLite gave them.
    ``typed``: an IN whose values SQLite passes one by one, with the
    comparison's affinity already applied; the engine checks it exactly and
    SQLite does not check it again (its own re-check of such an IN on a
    virtual table compares a TEXT column as text even when the subquery's
    values call for numeric affinity, unlike the same query on a table).
    """

    role: str
    column: str = ""
    source: str = ""
    multi: bool = False
    op: int = EQ
    collation: str = "BINARY"
    typed: bool = False
    index: int = -1  # the column's position in the table (-1: LIMIT, OFFSET)


@dataclass(frozen=True)
class Plan:
    """An access path. ``mask``: the columns whose values are prepared for each row (those
    SQLite reads, those the engine checks, those it sorts by). ``order``: the ORDER BY the
    plan took over, as (column index, descending, timestamp column) terms; ``api_order``:
    taken over because the user vouches for the list's order (TrustListOrder), which holds
    only for rows that come straight from the whole list; any other rows are sorted."""

    table: str
    kind: str  # "get", "list", "stub" (key only, for DELETE), "static" (rows known in advance) or "none"
    args: tuple[Arg, ...] = ()
    includes: frozenset[str] = field(default_factory=frozenset)
    offset_consumed: bool = False
    mask: int = 0
    order: tuple[tuple[int, bool, bool], ...] = ()
    api_order: bool = False

    @cached_property
    def lookup(self) -> Arg | None:
        """The one ``column = ?`` of a plain key or filter lookup (a join's inner loop), if that is the plan."""
        if self.kind in ("get", "list") and len(self.args) == 1:
            arg = self.args[0]
            if arg.role in ("key", "filter") and not arg.multi and arg.op == EQ and arg.collation.upper() == "BINARY":
                return arg
        return None

    def describe(self) -> str:
        if self.kind == "none":
            return f"{self.table}: cannot be read without its key"
        parts = []
        for a in self.args:
            op = "IN" if a.multi else OPERATOR_TEXT.get(a.op, f"op{a.op}")
            collate = f" COLLATE {a.collation}" if a.collation.upper() not in ("BINARY",) else ""
            if a.role in ("key", "filter"):
                parts.append(f"{a.column}{collate} {op} ? ({'GET by key' if a.role == 'key' else 'API filter'})")
            elif a.role == "check":
                parts.append(f"{a.column}{collate} {op} ? (checked locally)")
            else:
                parts.append(a.role.upper())
        how = "get" if self.kind == "get" else "list" if any(a.role == "filter" for a in self.args) else "scan"
        return f"{self.table} {how}" + (": " + ", ".join(parts) if parts else "")


def reads_whole_list(description: str) -> bool:
    """Whether the plan ``description`` (``Plan.describe``, SQLite's idxStr, as EXPLAIN QUERY PLAN
    shows it) reads its table's whole list: no GET by key, no API filter."""
    table, _, rest = description.partition(" ")
    return bool(table) and (rest == "scan" or rest.startswith("scan:"))


def plan(
    table: Table,
    source: Table,
    info: apsw.IndexInfo,
    cheap_columns: frozenset[str],
    in_sets: bool = True,
    embed_includes: frozenset[str] = frozenset(),
    deleting: bool = False,
    trust_order: bool = False,
    read_columns: frozenset[str] = frozenset(),
    in_affinity: str = "text",
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
    ``read_columns``: the columns of this table that any part of the statement reads.
    ``in_affinity``: what the statement's IN subqueries apply to their values
    (``StatementContext.in_affinity``); when it is ``mixed``, an IN whose values
    come one by one into a TEXT column is left to SQLite (a number could mean
    numeric affinity or none, and only SQLite knows which IN it came from).

    An ORDER BY on this table's columns is taken over when the rows can be
    sorted here more cheaply than by SQLite (a timestamp column: its ISO8601
    collation is a Python callback SQLite would call at every comparison), or
    with ``trust_order`` as the list's own order.
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
    checks: list[int] = []
    limit_i = offset_i = None
    unusable = unhandled = per_value_in = False
    for i in range(info.nConstraint):
        op = info.get_aConstraint_op(i)
        usable = info.get_aConstraint_usable(i)
        if op in (LIMIT, OFFSET):
            if usable:
                if op == LIMIT:
                    limit_i = i
                else:
                    offset_i = i
            continue
        if not usable:
            unusable = True
            continue
        col = info.get_aConstraint_iColumn(i)
        if col < 0 or op not in EVALUATED:
            unhandled = True  # rowid constraints, MATCH, REGEXP, functions: SQLite's alone
            continue
        if info.get_aConstraintUsage_in(i) and not in_sets:
            if in_affinity == "mixed" and table.columns[col].type == TEXT:
                unhandled = True  # SQLite evaluates this IN itself (see in_affinity above)
                continue
            per_value_in = True
        src = source_column(table.columns[col].name)
        binary = info.get_aConstraint_collation(i).upper() == "BINARY"
        if op in (EQ, IS) and src is not None and binary:
            if get_key is not None and src.lower() == get_key.lower():
                keys.append(i)
                continue
            if source.list is not None and source.column(src).filter:
                filters.append(i)
                continue
        checks.append(i)

    args: list[Arg] = []
    seen_columns: set[str] = set()

    def use(i: int, role: str) -> None:
        col = table.columns[info.get_aConstraint_iColumn(i)].name
        src = source_column(col) or col
        if role in ("key", "filter") and col.lower() in seen_columns:
            role = "check"
        if role in ("key", "filter"):
            seen_columns.add(col.lower())
        is_in = bool(info.get_aConstraintUsage_in(i))
        multi = in_sets and is_in
        if multi:
            info.set_aConstraintUsage_in(i, True)
        collation = info.get_aConstraint_collation(i)
        typed = is_in and not in_sets and collation.upper() in KNOWN_COLLATIONS
        args.append(Arg(role, col, src, multi, info.get_aConstraint_op(i), collation, typed, info.get_aConstraint_iColumn(i)))
        info.set_aConstraintUsage_argvIndex(i, len(args))
        info.set_aConstraintUsage_omit(i, typed)

    if keys:
        kind = "get"
        use(keys[0], "key")
        for i in keys[1:] + filters + checks:
            use(i, "check")
    elif source.list is not None:
        kind = "list"
        for i in filters:
            use(i, "filter")
        for i in checks:
            use(i, "check")
    else:
        kind = "none"
        for i in filters + checks:
            use(i, "check")

    api_order = False
    order: tuple[tuple[int, bool, bool], ...] = ()
    terms = [(info.get_aOrderBy_iColumn(k), bool(info.get_aOrderBy_desc(k))) for k in range(info.nOrderBy)]
    if terms and kind in ("list", "get") and all(c >= 0 for c, _ in terms) and info.distinct in (0, 1):
        if trust_order and kind == "list" and derived is None and source.list is not None and source.list.order:
            column, descending = source.list.order
            single_request = not any(a.multi for a in args)
            api_order = single_request and terms == [(table.index(column), descending)]
        if api_order or any(table.columns[c].type == TIMESTAMP for c, _ in terms):
            order = tuple((c, d, table.columns[c].type == TIMESTAMP) for c, d in terms)
            info.orderByConsumed = True

    offset_consumed = False
    local_order = bool(order) and not api_order
    if (
        kind == "list"
        and limit_i is not None
        and not (unusable or unhandled or per_value_in)
        and (info.nOrderBy == 0 or api_order or local_order)
    ):
        # With an ORDER BY the engine sorts (local_order), every row is still read, and
        # LIMIT + OFFSET only bounds how many of the first rows the sort keeps.
        plain_scan = not args
        args.append(Arg("limit"))
        info.set_aConstraintUsage_argvIndex(limit_i, len(args))
        info.set_aConstraintUsage_omit(limit_i, True)  # a hint: SQLite applies LIMIT anyway
        if offset_i is not None:
            args.append(Arg("offset"))
            info.set_aConstraintUsage_argvIndex(offset_i, len(args))
            paginated = source.list is not None and source.list.paginated
            offset_consumed = plain_scan and derived is None and paginated and not local_order
            info.set_aConstraintUsage_omit(offset_i, offset_consumed)

    includes: set[str] = set(embed_includes)
    if derived is None:
        # Every instance of a table in the statement asks for the same include= values, so
        # that a self-join's lookups and scans send the same requests (and share them).
        for spec in table.columns:
            if spec.include and (spec.name.lower() in read_columns or table.index(spec.name) in info.colUsed):
                includes.add(spec.include)

    used = [c for c in info.colUsed if c < len(table.columns)]
    if any(c >= 63 for c in info.colUsed):
        used = list(range(len(table.columns)))  # SQLite's mask folds columns past 63 into one bit
    checked = [a.index for a in args if a.index >= 0]
    mask = mask_of(used + checked + [c for c, _, _ in order])
    result = Plan(table.name, kind, tuple(args), frozenset(includes), offset_consumed, mask, order, api_order)
    cost, rows = _cost(result, source, cheap_columns)
    return result, cost, rows


_NUMERIC_AFFINITIES = frozenset("CDE")  # NUMERIC, INTEGER, REAL in SQLite's affinity strings


def in_affinity(program: Iterable[Sequence[Any]]) -> str:
    """What a statement's IN subqueries apply to their values, from its compiled program (EXPLAIN rows).

    SQLite builds the right-hand side of ``x IN (SELECT ...)`` with ``MakeRecord``,
    whose P4 is the affinity string of the comparison (A: none, B: text, C/D/E:
    numeric). Records of other uses (automatic indexes, writes) may add letters:
    that can only make the answer ``mixed``, never a wrong one. ``text`` when no
    value can reach a TEXT column as a number; ``numeric`` or ``blob`` when
    numbers may come and mean that; ``mixed`` when both occur.
    """
    letters: set[str] = set()
    for row in program:
        if len(row) > 5 and row[1] == "MakeRecord" and isinstance(row[5], str) and row[5] and set(row[5]) <= set("ABCDE"):
            letters.update(row[5])
    numeric, blob = bool(letters & _NUMERIC_AFFINITIES), "A" in letters
    return "mixed" if numeric and blob else "numeric" if numeric else "blob" if blob else "text"


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
    limited = any(a.role == "limit" for a in p.args) and not (p.order and not p.api_order)  # sorted here: read whole
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
    checks = sum(1 for a in p.args if a.role == "check")
    if checks:
        rows = max(1, rows // (2**checks))
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
        if (
            info.get_aConstraint_op(i) != EQ
            or info.get_aConstraint_iColumn(i) != key_index
            or info.get_aConstraint_collation(i).upper() != "BINARY"
            or chosen is not None
        ):
            return None
        chosen = i
    if chosen is None:
        return None
    multi = in_sets and bool(info.get_aConstraintUsage_in(chosen))
    if multi:
        info.set_aConstraintUsage_in(chosen, True)
    info.set_aConstraintUsage_argvIndex(chosen, 1)
    info.set_aConstraintUsage_omit(chosen, False)
    return Plan(table.name, "stub", (Arg("key", table.key[0], table.key[0], multi),))
