"""Running one statement for the command line: rows fetched under a progress line, timed;
splitting scripts; the parameters a statement needs; whether it deletes."""

from __future__ import annotations

import re
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import apsw

from .. import Connection, Error
from ..cursor import Cursor
from .output import Result
from .progress import Progress

# Strings, quoted names and comments: where no keyword can be.
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\[[^\]]*\]|`[^`]*`|--[^\n]*|/\*.*?(?:\*/|$)", re.DOTALL)


class ParameterError(Exception):
    """A statement's parameters and the values given do not match; the message says how to fix it."""


def bare(sql: str) -> str:
    """``sql`` without its strings, quoted names and comments."""
    return _QUOTED.sub(" ", sql)


def parameters_of(connection: Connection, sql: str) -> Sequence[str | None] | None:
    """``sql``'s parameters as SQLite numbers them (a name, or None for ``?``); None when
    SQLite cannot prepare it (the statement then fails with its own error when run)."""
    try:
        return connection.parameter_names(sql)
    except Error:
        return None


def check_parameters(parameters: Sequence[str | None] | None, positional: Sequence[Any], named: Mapping[str, Any], how: str) -> None:
    """Raise :class:`ParameterError` when the values given cannot fill a statement's ``parameters``.

    ``parameters`` come from :func:`parameters_of` (None: unknown, nothing is
    checked); names are given without their ``:``, ``@`` or ``$``, as SQLite
    reports them and the cursor binds them. ``how`` says how the caller passes
    values (the command line or the shell).
    """
    if parameters is None:
        return
    names = list(dict.fromkeys(name for name in parameters if name is not None))
    count = len(parameters) - len(names)
    named = {str(name).lstrip(":@$"): value for name, value in named.items()}  # as the cursor binds them
    if named and positional:
        raise ParameterError("give values either by position (for ?) or by name (for :NAME), not both")
    if count and len(positional) != count:
        given = "no value was given" if not positional else f"{len(positional)} {'was' if len(positional) == 1 else 'were'} given"
        raise ParameterError(f"the statement has {count} parameter{'s' if count > 1 else ''} (?) and {given}; {how}")
    missing = [n for n in names if n not in named]
    if missing:
        raise ParameterError(f"no value for the parameter{'s' if len(missing) > 1 else ''} {', '.join(missing)}; {how}")
    if positional and not count:
        raise ParameterError(f"{len(positional)} value{'s' if len(positional) > 1 else ''} given but the statement has no ? parameter")
    unknown = [n for n in named if n not in names]
    if unknown:
        raise ParameterError(f"the statement has no parameter {', '.join(unknown)}")


def deletes(sql: str) -> bool:
    """Whether ``sql`` is (or contains) a DELETE statement, not counting strings and comments."""
    return re.search(r"\bDELETE\b", bare(sql), re.IGNORECASE) is not None


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


@dataclass(frozen=True)
class Piece:
    """One statement of a script: its text, from its first word (comments before it left out)
    to its ';', and the index in the script where that text starts."""

    text: str
    start: int


def statements(text: str) -> list[Piece]:
    """The statements of ``text`` (the last may lack its ';'); comments and blanks alone are dropped."""
    pieces: list[Piece] = []

    def add(begin: int, end: int) -> None:
        at = skip_blank(text, begin, end)
        if at < end and text[at] != ";":
            pieces.append(Piece(text[at:end].rstrip(), at))

    begin = 0
    for i, ch in enumerate(text):
        if ch == ";" and apsw.complete(text[begin : i + 1]):
            add(begin, i + 1)
            begin = i + 1
    add(begin, len(text))
    return pieces


def split_statements(text: str) -> list[str]:
    """The texts of :func:`statements`."""
    return [piece.text for piece in statements(text)]


def blank(text: str) -> bool:
    """Whether ``text`` holds only blanks and comments (a block comment still open is not blank:
    more lines belong to it), as sqlite3 decides before it starts a statement."""
    return skip_blank(text, 0, len(text), open_comment=False) == len(text)


def skip_blank(text: str, at: int, end: int, open_comment: bool = True) -> int:
    """The index of the first character of ``text[at:end]`` that is neither blank nor in a comment
    (``end`` if none). A block comment left open runs to ``end`` if ``open_comment``, else it is not blank."""
    while at < end:
        if text[at].isspace():
            at += 1
        elif text.startswith("--", at, end):
            newline = text.find("\n", at, end)
            at = end if newline < 0 else newline + 1
        elif text.startswith("/*", at, end):
            close = text.find("*/", at + 2, end)
            if close < 0:
                return end if open_comment else at
            at = close + 2
        else:
            break
    return at
