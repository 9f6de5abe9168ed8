"""Result sets in the command line's formats: ``table`` (rich), ``csv``, ``json``, ``jsonl``.

Values are converted by the column's type code (``cursor.description[i][1]``):
TIMESTAMP values (aware datetimes) become ISO 8601 text, JSON columns become
nested JSON in ``json``/``jsonl`` (and stay JSON text in ``csv``), BOOLEAN
values are ``true``/``false``, BLOBs are base64. NULL is an empty CSV field,
``null`` in JSON and a dim ``NULL`` in tables.
"""

from __future__ import annotations

import base64
import csv
import datetime as dt
import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import IO, Any

from rich import box
from rich.console import Console, RenderableType
from rich.table import Table
from rich.text import Text

from ..client import RequestRecord

FORMATS = ("table", "csv", "json", "jsonl")
JSON_CELL_WIDTH = 60


@dataclass
class Result:
    """What one statement gave: its columns and rows, or the rows it changed."""

    columns: list[str]
    types: list[str | None]
    rows: list[tuple[Any, ...]]
    rowcount: int = -1
    requests: list[RequestRecord] = field(default_factory=list)
    seconds: float = 0.0

    @property
    def is_query(self) -> bool:
        """True when the statement returned a result set (even an empty one)."""
        return bool(self.columns)

    def summary(self) -> str:
        """``3 rows · 1 request · 0.04 s`` (or ``2 rows affected · ...`` for a write)."""
        count = len(self.rows) if self.is_query else self.rowcount
        what = plural(count, "row") if self.is_query else affected(count)
        return f"{what} · {plural(len(self.requests), 'request')} · {self.seconds:.2f} s"


def plural(count: int, noun: str) -> str:
    return f"{count:,} {noun}{'' if count == 1 else 's'}"


def affected(rowcount: int) -> str:
    return f"{plural(max(rowcount, 0), 'row')} affected"


# -- values ----------------------------------------------------------------------------------------


def json_value(value: Any, kind: str | None) -> Any:
    """A value as JSON data: ISO 8601 timestamps, JSON columns parsed, BLOBs in base64."""
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    if kind == "JSON" and isinstance(value, str):
        try:
            return json.loads(value)
        except ValueError:
            return value
    return value


def text_value(value: Any) -> str:
    """A value as CSV or table text ('' for NULL)."""
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (dt.datetime, dt.date, dt.time)):
        return value.isoformat()
    if isinstance(value, bytes):
        return base64.b64encode(value).decode("ascii")
    return str(value)


# -- formats --------------------------------------------------------------------------------------


def write(result: Result, fmt: str, out: IO[str], console: Console | None = None) -> None:
    """Write ``result`` to ``out`` in ``fmt``. A statement without a result set prints its rowcount:
    ``3 rows affected`` in ``table`` (which ends with such a summary line), one ``rows_affected``
    record in the machine formats."""
    if fmt == "table":
        target = console or Console(file=out, highlight=False)
        if result.is_query:
            print_table(target, table(result))
        target.print(result.summary(), style="dim", highlight=False, markup=False, soft_wrap=True)
        return
    columns, rows = result.columns, result.rows
    types: Sequence[str | None] = result.types
    if not result.is_query:
        columns, rows, types = ["rows_affected"], [(max(result.rowcount, 0),)], [None]
    if fmt == "csv":
        writer = csv.writer(out, lineterminator="\n")
        writer.writerow(columns)
        writer.writerows([text_value(v) for v in row] for row in rows)
    elif fmt in ("json", "jsonl"):
        records = ({c: json_value(v, k) for c, v, k in zip(columns, row, types)} for row in rows)
        if fmt == "jsonl":
            for record in records:
                out.write(json.dumps(record, ensure_ascii=False) + "\n")
        else:
            out.write("[")
            for i, record in enumerate(records):
                out.write(("," if i else "") + "\n  " + json.dumps(record, ensure_ascii=False))
            out.write("\n]\n" if rows else "]\n")
    else:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")


def table(result: Result) -> Table:
    """The rows as a rich table: NULL dimmed, numbers right-aligned, JSON cut to one line."""
    grid = Table(box=box.SIMPLE_HEAD)
    for i, (name, kind) in enumerate(zip(result.columns, result.types)):
        numeric = any(isinstance(row[i], (int, float)) and not isinstance(row[i], bool) for row in result.rows)
        if kind == "JSON":
            grid.add_column(name, no_wrap=True, overflow="ellipsis", max_width=JSON_CELL_WIDTH)
        else:
            grid.add_column(name, justify="right" if numeric else "left", overflow="fold")
    for row in result.rows:
        grid.add_row(*(cell(value) for value in row))
    return grid


def cell(value: Any) -> RenderableType:
    if value is None:
        return Text("NULL", style="dim")
    if isinstance(value, dt.datetime):
        return Text(value.isoformat(sep=" "))
    return Text(text_value(value))


def print_table(console: Console, renderable: Table) -> None:
    """Print a table; off a terminal at its natural width, so that no cell is wrapped or cut."""
    if console.is_terminal:
        console.print(renderable)
        return
    width = Console(width=100_000).measure(renderable).maximum
    wide = Console(file=console.file, width=max(width, 20), highlight=False, color_system=None)
    wide.print(renderable)
