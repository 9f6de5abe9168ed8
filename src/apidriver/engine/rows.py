"""Rows as SQLite reads them: a page of objects with their SQLite values, converted once per column.

SQLite asks a virtual table for one cell at a time, and the per-cell Python
work is the engine's CPU cost. So the values are prepared when a page
arrives, a column at a time, and only for the columns the statement uses
(its plan's mask, from ``colUsed``): ``Cursor.Column`` then returns a value
that is already there. A :class:`Batch` remembers what it converted; pages
kept in a ``CacheTTL`` snapshot keep their batches (``streams.Snapshot``), so
a statement served from the snapshot converts nothing.

Local ordering (:func:`order_rows`) sorts a table's rows by SQLite's rules
when the plan consumed an ORDER BY that the API cannot be trusted with: the
timestamp columns' ``ISO8601`` collation is a Python callback, so SQLite's
own sorter would call into Python at every comparison.
"""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Mapping, Sequence
from typing import Any

from ..values import instant_key, stored_timestamp
from .schema import Table

Obj = Mapping[str, Any]


UNSET: Any = Ellipsis
"""A value not converted yet (``Cursor.Column`` then converts it on demand). Ellipsis, a value SQLite
never holds, and one the garbage collector does not track: a row of prepared values (a tuple of text,
numbers and NULLs) is then untracked too, and full collections do not walk every cached row."""


class Batch:
    """Rows of one table (one page, or one answer) and their SQLite values.

    ``values[i]`` is row i's tuple of values by column index, plus one slot at
    the end that stays UNSET (so that ``values[-1]``, SQLite's rowid column, is
    never a column's value). Columns are converted when first asked for
    (``ensure``), all rows at once, and the tuples are made again from the
    columns (by ``zip``, in C); ``filled`` is the mask of converted columns.
    """

    __slots__ = ("_columns", "_kinds", "dicts", "filled", "matched", "rows", "values")

    def __init__(self, rows: list[Obj], width: int) -> None:
        self.rows = rows
        self._columns: list[list[Any] | None] = [None] * (width + 1)
        self.values: list[tuple[Any, ...]] = []
        self.filled = -1  # nothing made yet (not even the tuples of UNSET)
        self.dicts = all(type(r) is dict for r in rows)
        self.matched: tuple[int, Any] | None = None  # (column, value) every row is known to equal (lookups)
        self._kinds: dict[tuple[int, bool], str] = {}

    def kind(self, column: int, timestamp: bool) -> str:
        """What a converted column holds, for sorting: ``nulls``, ``text`` (timestamps: ``stamps``,
        every one in the stored form), ``numbers``, or ``mixed``. Worked out once per batch."""
        found = self._kinds.get((column, timestamp))
        if found is None:
            cells = self._columns[column]
            if cells is None:
                return "mixed"  # not converted: sorted by the general rules
            kinds = set(map(type, cells))
            kinds.discard(type(None))
            if not kinds:
                found = "nulls"
            elif kinds == {str}:
                found = "stamps" if timestamp and all(stored_timestamp(c) for c in cells if c is not None) else "text"
            elif kinds <= {int, float}:
                found = "numbers"
            else:
                found = "mixed"
            self._kinds[(column, timestamp)] = found
        return found

    def column(self, index: int) -> list[Any] | None:
        """The converted values of one column, row by row (None if it was not converted)."""
        return self._columns[index] if 0 <= index < len(self._columns) - 1 else None

    def ensure(self, table: Table, mask: int) -> list[tuple[Any, ...]]:
        """The values, with every column of ``mask`` converted."""
        filled = self.filled
        if filled >= 0 and not mask & ~filled:
            return self.values
        missing = mask & ~filled if filled >= 0 else mask
        index = 0
        columns = table.columns
        while missing:
            if missing & 1:
                self._columns[index] = columns[index].values(self.rows, self.dicts)
            missing >>= 1
            index += 1
        unset = [UNSET] * len(self.rows)
        self.values = list(zip(*[c if c is not None else unset for c in self._columns]))
        self.filled = (max(filled, 0)) | mask
        return self.values


def mask_of(columns: Sequence[int]) -> int:
    """The bit mask of column indexes."""
    mask = 0
    for c in columns:
        if c >= 0:
            mask |= 1 << c
    return mask


def batch(table: Table, objs: list[Obj], memo: dict[Any, Any] | None) -> Batch:
    """The batch of ``table``'s rows in the objects of one page (derived tables: the rows cut from them).

    ``memo`` keeps the batch with its page (a ``CacheTTL`` snapshot's page), for
    the next statement reading the same page.
    """
    if memo is not None:
        found: Batch | None = memo.get(table.name)
        if found is not None:
            return found
    derived = table.derived
    rows: list[Obj] = objs if derived is None else [row for obj in objs for row in derived.rows(obj)]
    made = Batch(rows, len(table.columns))
    if memo is not None:
        memo[table.name] = made
    return made


class Batches:
    """Batches of the objects lookups return (a set the store holds, one object), by the holder's
    identity: the inner loop of a join asks for the same sets statement after statement when they
    come from a ``CacheTTL`` snapshot, and again within a statement. Each entry keeps its holder,
    so an identity is never reused while it is remembered; the oldest go first. One per
    connection (``Engine.lookups``), so what it keeps alive goes with the connection."""

    def __init__(self, size: int = 4096) -> None:
        self.size = size
        self._entries: OrderedDict[tuple[int, str], tuple[Any, Batch]] = OrderedDict()
        self._lock = threading.Lock()

    def get(self, table: Table, holder: Any, objs: list[Obj]) -> Batch:
        """The batch of ``table``'s rows in ``objs`` (held by ``holder``: the list itself, or the one object)."""
        key = (id(holder), table.name)
        entry = self._entries.get(key)
        if entry is not None and entry[0] is holder:
            return entry[1]
        made = batch(table, objs, None)
        with self._lock:
            self._entries[key] = (holder, made)
            while len(self._entries) > self.size:
                self._entries.popitem(last=False)  # O(1): deleting a dict's first keys one by one is not
        return made



def sort_key(value: Any, timestamp: bool) -> tuple[int, Any]:
    """How SQLite orders ``value`` (NULL, numbers, text, blobs; text by the column's collation)."""
    if value is None:
        return (0, 0)
    kind = type(value)
    if kind is str:
        return (2, instant_key(value) if timestamp else value)
    if kind is int or kind is float or kind is bool:
        return (1, value)
    return (3, bytes(value))


def order_rows(
    rows: list[Obj],
    values: list[tuple[Any, ...]],
    terms: Sequence[tuple[int, bool, bool]],
    kinds: Sequence[set[str]] | None = None,
) -> tuple[list[Obj], list[tuple[Any, ...]]]:
    """``rows`` sorted by ``terms`` (column index, descending, timestamp column), as SQLite's ORDER BY.

    NULLs come first ascending and last descending (SQLite's default; a
    virtual table is never offered NULLS FIRST/LAST). Text under BINARY sorts
    as Python compares str: code point order is UTF-8 byte order. A column
    whose other values are all text (timestamps: all in the stored form) or
    all numbers sorts by the values themselves; any other mix by SQLite's
    order of types (``sort_key``). ``kinds``: per term, what the batches the
    rows come from hold in that column (``Batch.kind``), when known.
    """
    order = list(range(len(rows)))
    for term in range(len(terms) - 1, -1, -1):  # stable sorts, the last term first
        column, descending, timestamp = terms[term]
        cells = [row[column] for row in values]
        nulls = [i for i in order if cells[i] is None]
        rest = [i for i in order if cells[i] is not None] if nulls else order
        if kinds is not None:
            held = kinds[term] - {"nulls"}
        else:
            types = {type(cells[i]) for i in rest}
            held = {"mixed"} if types - {str, int, float} else set()
            if str in types:
                held.add("stamps" if timestamp and all(stored_timestamp(cells[i]) for i in rest) else "text")
            if types & {int, float}:
                held.add("numbers")
        if len(held) <= 1 and held <= ({"stamps"} if timestamp else {"text", "numbers"}):
            rest.sort(key=cells.__getitem__, reverse=descending)
        else:
            keys = [sort_key(v, timestamp) for v in cells]
            rest.sort(key=keys.__getitem__, reverse=descending)
        order = rest + nulls if descending else nulls + rest
    return [rows[i] for i in order], [values[i] for i in order]
