"""Result sets in the command line's formats.

``table`` (rich, aligned), ``vertical`` (one record per block, like sqlite3's
``.mode line`` or litecli's ``\\G``), ``markdown``, ``csv``, ``tsv``, ``json``
and ``jsonl``. On a terminal a table never drops a column: cells are folded
(JSON cut to one line) to fit, and when even that cannot fit every column the
rows are shown vertically instead.

Values are converted by the column's type code (``cursor.description[i][1]``):
timestamps (aware datetimes) become ISO 8601 text, JSON columns become
nested JSON in ``json``/``jsonl`` (and stay JSON text elsewhere), BOOLEAN
values are ``true``/``false``, BLOBs are base64. NULL is ``NULL`` (dim) in
tables and vertical output, an empty field in csv/tsv/markdown and ``null`` in
JSON; :class:`Options` can change that text and leave the header out.
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

FORMATS = ("table", "vertical", "markdown", "csv", "tsv", "json", "jsonl")
MACHINE_FORMATS = ("csv", "tsv", "json", "jsonl")  # a write prints one rows_affected record
JSON_CELL_WIDTH = 60
MIN_CELL_WIDTH = 10  # a column is never squeezed below this (or its header, or its widest value)


@dataclass
class Options:
    """How results are printed besides their format (the shell's .headers and .nullvalue)."""

    headers: bool = True
    null: str | None = None
    """The text of NULL; None: the format's own (``NULL`` in tables, empty in csv/tsv/markdown)."""


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


def write(result: Result, fmt: str, out: IO[str], console: Console | None = None, options: Options | None = None) -> None:
    """Write ``result`` to ``out`` in ``fmt``.

    A statement without a result set prints its rowcount: ``3 rows affected`` in
    the formats people read (table and vertical end with such a summary line),
    one ``rows_affected`` record in the machine formats.
    """
    options = options or Options()
    if fmt in ("table", "vertical"):
        target = console or Console(file=out, highlight=False)
        if result.is_query:
            if fmt == "vertical":
                write_vertical(result, target.file, options, target.width if target.is_terminal else None)
            else:
                print_table(target, result, options)
        target.print(result.summary(), style="dim", highlight=False, markup=False, soft_wrap=True)
        return
    if fmt == "markdown":
        if result.is_query:
            write_markdown(result, out, options)
        else:
            out.write(affected(result.rowcount) + "\n")
        return
    if fmt not in MACHINE_FORMATS:
        raise ValueError(f"unknown format {fmt!r}; use one of {', '.join(FORMATS)}")
    columns, rows = result.columns, result.rows
    types: Sequence[str | None] = result.types
    if not result.is_query:
        columns, rows, types = ["rows_affected"], [(max(result.rowcount, 0),)], [None]
    if fmt in ("csv", "tsv"):
        null = options.null or ""
        writer = csv.writer(out, lineterminator="\n", delimiter="," if fmt == "csv" else "\t")
        if options.headers:
            writer.writerow(columns)
        writer.writerows([null if v is None else text_value(v) for v in row] for row in rows)
        return
    records = ({c: json_value(v, k) for c, v, k in zip(columns, row, types)} for row in rows)
    if fmt == "jsonl":
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    else:
        out.write("[")
        for i, record in enumerate(records):
            out.write(("," if i else "") + "\n  " + json.dumps(record, ensure_ascii=False))
        out.write("\n]\n" if rows else "]\n")


# -- table ---------------------------------------------------------------------------------------


def _numeric(result: Result, index: int) -> bool:
    return any(isinstance(row[index], (int, float)) and not isinstance(row[index], bool) for row in result.rows)


def _cell_text(value: Any, null: str) -> str:
    if value is None:
        return null
    if isinstance(value, dt.datetime):
        return value.isoformat(sep=" ")
    return text_value(value)


def table(result: Result, options: Options | None = None, widths: Sequence[int] | None = None) -> Table:
    """The rows as a rich table: NULL dimmed, numbers right-aligned, JSON cut to one line.

    ``widths`` fixes each column's width (text beyond it is folded onto more
    lines, JSON is cut with an ellipsis); None leaves every column its natural width.
    """
    options = options or Options()
    grid = Table(box=box.SIMPLE_HEAD, show_header=options.headers)
    for i, (name, kind) in enumerate(zip(result.columns, result.types)):
        width = widths[i] if widths is not None else None
        if kind == "JSON":
            grid.add_column(name, no_wrap=True, overflow="ellipsis", max_width=JSON_CELL_WIDTH, width=width)
        else:
            grid.add_column(name, justify="right" if _numeric(result, i) else "left", overflow="fold", width=width)
    for row in result.rows:
        grid.add_row(*(cell(value, options.null) for value in row))
    return grid


def cell(value: Any, null: str | None = None) -> RenderableType:
    if value is None:
        return Text("NULL" if null is None else null, style="dim")
    return Text(_cell_text(value, ""))


def column_widths(result: Result, available: int, options: Options | None = None) -> list[int] | None:
    """Widths that fit every column in ``available`` characters, or None if they cannot.

    Each column first gets its natural width (the widest of its header and
    values; JSON at most ``JSON_CELL_WIDTH``); if that is too wide, every column
    keeps at least ``max(header, MIN_CELL_WIDTH)`` (less if its values are
    narrower), folded onto as few lines as fit.
    """
    options = options or Options()
    null = "NULL" if options.null is None else options.null
    natural: list[int] = []
    least: list[int] = []
    widest: list[str] = []
    kinds = list(result.types)
    for i, (name, kind) in enumerate(zip(result.columns, result.types)):
        texts = [line for row in result.rows for line in _cell_text(row[i], null).splitlines()]
        widest.append(max(texts, key=len, default=""))
        longest = len(widest[-1])
        header = len(name) if options.headers else 0
        want = max(header, longest, 1)
        if kind == "JSON":
            want = min(want, max(header, JSON_CELL_WIDTH))
        natural.append(want)
        least.append(min(want, max(header, MIN_CELL_WIDTH)))
    room = available - (3 * len(natural) + 1)  # padding and separators of box.SIMPLE_HEAD
    if sum(natural) <= room:
        return natural
    if sum(least) > room:
        return None
    # As few lines per row as possible: the smallest fold L at which every column
    # fits in 1/L of its natural width (or its least); the room left then makes
    # the narrowest wants whole first.
    def fold(i: int, lines: int) -> int:
        if kinds[i] == "JSON":  # one line, cut: any width from its least will do
            return max(least[i], -(-natural[i] // lines))
        return max(least[i], _wrapped_width(widest[i], lines))

    lines = 1
    while sum(fold(i, lines) for i in range(len(natural))) > room:
        lines += 1
    widths = [fold(i, lines) for i in range(len(natural))]
    spare = room - sum(widths)
    for i in sorted(range(len(widths)), key=lambda i: natural[i] - widths[i]):
        extra = min(natural[i] - widths[i], spare)
        widths[i] += extra
        spare -= extra
    return widths


def _wrapped_width(text: str, lines: int) -> int:
    """The narrowest width at which ``text`` wraps (at spaces, folding longer words) onto ``lines`` lines."""
    if lines <= 1 or len(text) <= 1:
        return len(text)

    def count(width: int) -> int:
        used, current = 1, 0
        for word in text.split(" "):
            size = len(word)
            if current and current + 1 + size <= width:
                current += 1 + size
                continue
            if current:
                used += 1
            used += (size - 1) // width if size else 0
            current = size % width or (width if size else 0)
        return used

    low, high = -(-len(text) // lines), len(text)
    while low < high:
        middle = (low + high) // 2
        if count(middle) <= lines:
            high = middle
        else:
            low = middle + 1
    return low


def print_table(console: Console, result: Result, options: Options | None = None) -> None:
    """A table that shows every column.

    On a terminal: folded to the terminal's width, or vertical when the columns
    cannot all fit. Off a terminal: at its natural width, so no cell is wrapped or cut.
    """
    options = options or Options()
    if console.is_terminal:
        widths = column_widths(result, console.width, options)
        if widths is None:
            write_vertical(result, console.file, options, console.width)
        else:
            console.print(table(result, options, widths))
        return
    renderable = table(result, options)
    width = Console(width=100_000).measure(renderable).maximum
    wide = Console(file=console.file, width=max(width, 20), highlight=False, color_system=None)
    wide.print(renderable)


# -- vertical, markdown ----------------------------------------------------------------------------


def write_vertical(result: Result, out: IO[str], options: Options | None = None, width: int | None = None) -> None:
    """One block per row, a ``name: value`` line per column (sqlite3's ``.mode line``, litecli's ``\\G``).

    With a terminal ``width``, JSON values are cut to one line of it, as in tables.
    """
    options = options or Options()
    null = "NULL" if options.null is None else options.null
    indent = max((len(c) for c in result.columns), default=0)
    room = max((width or 0) - indent - 2, JSON_CELL_WIDTH)
    for number, row in enumerate(result.rows, 1):
        out.write(f"{'*' * 27} {number}. row {'*' * 27}\n")
        for name, value, kind in zip(result.columns, row, result.types):
            text = _cell_text(value, null)
            if width and kind == "JSON" and len(text) > room:
                text = text[: room - 1] + "…"
            text = text.replace("\n", "\n" + " " * (indent + 2))
            out.write(f"{name:>{indent}}: {text}\n")
    out.flush()


def write_markdown(result: Result, out: IO[str], options: Options | None = None) -> None:
    """A GitHub-flavoured Markdown table (numbers right-aligned; ``|`` escaped, newlines as ``<br>``)."""
    options = options or Options()
    null = options.null or ""

    def escape(text: str) -> str:
        return text.replace("\\", "\\\\").replace("|", "\\|").replace("\r\n", "<br>").replace("\n", "<br>")

    out.write("| " + " | ".join(escape(c) for c in result.columns) + " |\n")
    out.write("|" + "|".join("---:" if _numeric(result, i) else "---" for i in range(len(result.columns))) + "|\n")
    for row in result.rows:
        out.write("| " + " | ".join(escape(_cell_text(v, null)) for v in row) + " |\n")
