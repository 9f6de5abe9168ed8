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

from ..answers import RequestRecord

FORMATS = ("table", "vertical", "markdown", "csv", "tsv", "json", "jsonl")
MACHINE_FORMATS = ("csv", "tsv", "json", "jsonl")  # a write prints one rows_affected record
JSON_CELL_WIDTH = 60  # off a terminal, where no width limits a table
MIN_CELL_WIDTH = 10  # a column is never squeezed below this (or its header, or its widest value)
ATOM_WIDTH = 40  # a word up to this long (an id, half a timestamp, an e-mail address) is never folded


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


def write(
    result: Result, fmt: str, out: IO[str], console: Console | None = None, options: Options | None = None, summary: bool = True
) -> None:
    """Write ``result`` to ``out`` in ``fmt``.

    A statement without a result set prints its rowcount: ``3 rows affected`` in
    the formats people read (table and vertical end with such a summary line,
    unless ``summary`` is off: a file gets the data only), one ``rows_affected``
    record in the machine formats.
    """
    options = options or Options()
    if fmt in ("table", "vertical"):
        target = console or Console(file=out, highlight=False, emoji=False)
        if result.is_query:
            if fmt == "vertical":
                write_vertical(result, target.file, options, target.width if target.is_terminal else None)
            else:
                print_table(target, result, options)
        if summary:
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
    lines, JSON is cut with an ellipsis); None leaves every column its natural
    width, JSON's at most ``JSON_CELL_WIDTH``.
    """
    options = options or Options()
    grid = Table(box=box.SIMPLE_HEAD, show_header=options.headers)
    for i, (name, kind) in enumerate(zip(result.columns, result.types)):
        width = widths[i] if widths is not None else None
        if kind == "JSON":
            limit = JSON_CELL_WIDTH if width is None else None
            grid.add_column(name, no_wrap=True, overflow="ellipsis", max_width=limit, width=width)
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
    values). If that is too wide, text is folded onto as few lines as fit,
    but a column keeps at least its header, ``MIN_CELL_WIDTH`` (less if its
    values are narrower) and its longest word of at most ``ATOM_WIDTH``
    characters, so that ids and other short atomic values stay whole. JSON,
    cut to one line, gets the room the other columns leave.
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
        header = len(name) if options.headers else 0
        want = max(header, len(widest[-1]), 1)
        floor = max(header, MIN_CELL_WIDTH)
        if kind != "JSON":
            floor = max(floor, max((len(w) for t in texts for w in t.split() if len(w) <= ATOM_WIDTH), default=0))
        natural.append(want)
        least.append(min(want, floor))
    room = available - (3 * len(natural) + 1)  # padding and separators of box.SIMPLE_HEAD
    if sum(natural) <= room:
        return natural
    if sum(least) > room:
        return None

    # As few lines per row as possible: the smallest fold L at which every text column
    # fits in 1/L of its natural width (or its least), JSON at its least; the room left
    # then makes the narrowest wants whole first (a text column gets nothing it cannot
    # be whole with: its rows still take L lines), and JSON gets the rest.
    def fold(i: int, lines: int) -> int:
        if kinds[i] == "JSON":
            return least[i]
        return max(least[i], _wrapped_width(widest[i], lines))

    lines = 1
    while sum(fold(i, lines) for i in range(len(natural))) > room:
        lines += 1
    widths = [fold(i, lines) for i in range(len(natural))]
    spare = room - sum(widths)
    for i in sorted(range(len(widths)), key=lambda i: natural[i] - widths[i]):
        need = natural[i] - widths[i]
        extra = min(need, spare) if kinds[i] == "JSON" else need if need <= spare else 0
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
    wide = Console(file=console.file, width=max(width, 20), highlight=False, color_system=None, emoji=False)
    wide.print(renderable)


def in_columns(names: Sequence[str], width: int, size: int | None = None) -> list[str]:
    """``names`` in as many columns as fit in ``width``, read down each column first, as sqlite3's
    ``.tables`` lays them out (each column ``size`` wide, the longest name's length by default)."""
    if not names:
        return []
    size = max(size or 0, *map(len, names))
    columns = max(1, (width + 2) // (size + 2))
    rows = -(-len(names) // columns)
    return ["  ".join(f"{names[j]:<{size}}" for j in range(i, len(names), rows)).rstrip() for i in range(rows)]


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
