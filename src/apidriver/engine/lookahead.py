"""Turning a nested loop's one-lookup-per-outer-row into concurrent batches.

When SQLite joins with an API table as the inner loop (``Tasks t JOIN Jobs j
ON j.id = t.job_id WHERE t.status = 'error'``), it asks for one job per task,
one at a time. At the first such lookup the engine looks at the row each
running scan has just handed out and finds which column held the value
looked up (``Tasks.job_id``). From then on, the values of that column in the
rows the scan has not handed out yet — and in every page it receives later —
are requested concurrently ahead of time; each lookup then finds its answer
already fetched or in flight. A wrong guess only costs requests, never
correctness: lookups still ask for exactly the value SQLite gives.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .schema import Table
from .statement import Link, StatementContext


def look_ahead(table_of: Callable[[str], Table], ctx: StatementContext, table: str, column: str, value: Any, submit: Callable[[Any], None]) -> None:
    """A lookup of ``table.column = value`` missed: learn its source and prefetch what follows
    (``table_of``: a table's spec by name, to read the outer scan's current row)."""
    key = (table, column.lower())
    if key in ctx.links:
        return
    link = _find(table_of, ctx, value, submit)
    ctx.links[key] = link
    if link is not None:
        scan = ctx.scans.get(link.outer)
        if scan is not None:
            for obj in scan.upcoming():
                link.submit(link.column.value(obj))


def _find(table_of: Callable[[str], Table], ctx: StatementContext, value: Any, submit: Callable[[Any], None]) -> Link | None:
    if value is None:
        return None
    for outer, scan in list(ctx.scans.items()):
        if scan.position < 0 or scan.position >= len(scan.data):
            continue
        current = scan.data[scan.position]
        for column in table_of(outer).columns:
            if column.value(current) == value:
                seen: set[Any] = {value}

                def once(v: Any, seen: set[Any] = seen) -> None:
                    if v is not None and v not in seen:
                        seen.add(v)
                        submit(v)

                return Link(outer, column, once)
    return None
