"""Running one statement for the command line: rows fetched under a progress line, timed;
splitting scripts; the parameters a statement needs; whether it deletes."""

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
# Strings, quoted names and comments: where neither parameters nor keywords can be.
_QUOTED = re.compile(r"'(?:[^']|'')*'|\"(?:[^\"]|\"\")*\"|\[[^\]]*\]|`[^`]*`|--[^\n]*|/\*.*?(?:\*/|$)", re.DOTALL)
_PARAMETER = re.compile(r"\?(\d*)|[:@$]([A-Za-z_][A-Za-z0-9_]*)")


class ParameterError(Exception):
    """A statement's parameters and the values given do not match; the message says how to fix it."""


def bare(sql: str) -> str:
    """``sql`` without its strings, quoted names and comments."""
    return _QUOTED.sub(" ", sql)


def parameters_of(sql: str) -> tuple[int, list[str]]:
    """How many positional parameters (``?``, ``?NNN``) ``sql`` has, and the names of its named ones."""
    positional, names = 0, []
    for number, name in _PARAMETER.findall(bare(sql)):
        if name:
            if name not in names:
                names.append(name)
        else:
            positional = max(positional + 1, int(number) if number else 0)
    return positional, names


def check_parameters(sql: str, positional: Sequence[Any], named: Mapping[str, Any], how: str) -> None:
    """Raise :class:`ParameterError` when the values given cannot fill ``sql``'s parameters.

    ``how`` says how the caller passes values (the command line or the shell).
    """
    count, names = parameters_of(sql)
    if named and positional:
        raise ParameterError("give values either by position (for ?) or by name (for :NAME), not both")
    if count and len(positional) != count:
        given = "no value was given" if not positional else f"{len(positional)} {'was' if len(positional) == 1 else 'were'} given"
        raise ParameterError(f"the statement has {count} parameter{'s' if count > 1 else ''} (?) and {given}; {how}")
    missing = [n for n in names if n not in named]
    if missing:
        raise ParameterError(f"no value for {', '.join(':' + n for n in missing)}; {how}")
    if positional and not count:
        raise ParameterError(f"{len(positional)} value{'s' if len(positional) > 1 else ''} given but the statement has no ? parameter")
    unknown = [n for n in named if n not in names]
    if unknown:
        raise ParameterError(f"the statement has no parameter {', '.join(':' + n for n in unknown)}")


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


def split_statements(text: str) -> list[str]:
    """The statements of ``text``, each with its ';' (the last may lack one); comments alone are dropped."""
    pieces, start = [], 0
    for i, ch in enumerate(text):
        if ch == ";" and apsw.complete(text[start : i + 1]):
            pieces.append(text[start : i + 1])
            start = i + 1
    pieces.append(text[start:])
    return [p.strip() for p in pieces if _COMMENTS.sub("", p).strip(" ;\t\r\n")]
