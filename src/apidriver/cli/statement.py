"""Running one statement for the command line: rows fetched under a progress line, timed."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from typing import Any

import apsw

from ..cursor import Cursor
from .output import Result
from .progress import Progress

_COMMENTS = re.compile(r"--[^\n]*|/\*.*?(\*/|$)", re.DOTALL)


def run(cursor: Cursor, sql: str, parameters: Sequence[Any] | Mapping[str, Any] | None = None, progress: bool | None = None) -> Result:
    """Execute ``sql`` and fetch every row; ``progress`` None means: when stderr is a terminal."""
    started = time.perf_counter()
    with Progress(cursor, enabled=progress) as shown:
        cursor.execute(sql, parameters)
        rows: list[tuple[Any, ...]] = []
        if cursor.description is not None:
            for row in cursor:
                rows.append(row)
                shown.rows += 1
    description = cursor.description or ()
    return Result(
        columns=[str(d[0]) for d in description],
        types=[d[1] for d in description],
        rows=rows,
        rowcount=cursor.rowcount,
        requests=cursor.requests,
        seconds=time.perf_counter() - started,
    )


def split_statements(text: str) -> list[str]:
    """The statements of ``text``, each with its ';' (the last may lack one); comments alone are dropped."""
    pieces, start = [], 0
    for i, ch in enumerate(text):
        if ch == ";" and apsw.complete(text[start : i + 1]):
            pieces.append(text[start : i + 1])
            start = i + 1
    pieces.append(text[start:])
    return [p.strip() for p in pieces if _COMMENTS.sub("", p).strip(" ;\t\r\n")]
