"""The ``REPLICATE`` and ``CACHE`` statements: recognised before SQLite sees the SQL.

Grammar (keywords in any case, after any blanks and comments)::

    REPLICATE [table] [;]
    CACHE [WITH TRUNCATE] select-statement

No SQLite statement starts with either keyword, so recognising them by
their first word cannot take other SQL for them. This module only reads
the statement (it is imported by every cursor, so it stays light);
:mod:`.statements` carries it out.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from .. import exceptions as exc

_BLANKS = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?(?:\*/|$))*", re.DOTALL)
_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_$]*")
# Whether the first word is one of the two (one match: every statement a cursor runs passes here).
_SPECIAL = re.compile(r"(?:\s+|--[^\n]*(?:\n|$)|/\*.*?(?:\*/|$))*(?:REPLICATE|CACHE)(?![A-Za-z0-9_$])", re.DOTALL | re.IGNORECASE)
_QUOTED = {'"': '"', "[": "]", "`": "`"}


def _skip(text: str, at: int) -> int:
    match = _BLANKS.match(text, at)
    return match.end() if match else at


def _word(text: str, at: int) -> tuple[str, int]:
    match = _WORD.match(text, at)
    return (match.group(), match.end()) if match else ("", at)


def _identifier(text: str, at: int) -> tuple[str | None, int]:
    """A bare or quoted identifier at ``at`` ("..", [..], `..`), or None."""
    if at < len(text) and text[at] in _QUOTED:
        close = _QUOTED[text[at]]
        out, i = [], at + 1
        while i < len(text):
            if text[i] == close:
                if close != "]" and text[i + 1 : i + 2] == close:
                    out.append(close)
                    i += 2
                    continue
                return "".join(out), i + 1
            out.append(text[i])
            i += 1
        raise exc.ProgrammingError(f"Unclosed {text[at]} in the table name of: {text.strip()}")
    word, end = _word(text, at)
    return (word or None), end


@dataclass(frozen=True)
class CacheStatement:
    """A recognised ``REPLICATE`` or ``CACHE`` statement."""

    kind: str  # "REPLICATE" or "CACHE"
    table: str | None = None
    truncate: bool = False
    select: str = ""


def recognise(sql: str) -> CacheStatement | None:
    """The statement if ``sql`` is a ``REPLICATE`` or ``CACHE`` statement, else None (cheap: one match)."""
    if _SPECIAL.match(sql) is None:
        return None
    at = _skip(sql, 0)
    word, end = _word(sql, at)
    keyword = word.upper()
    if keyword == "REPLICATE":
        at = _skip(sql, end)
        table, end = _identifier(sql, at)
        if table is not None:
            at = _skip(sql, end)
        if at < len(sql) and sql[at] == ";":
            at = _skip(sql, at + 1)
        if at != len(sql):
            raise exc.ProgrammingError(
                f"Unexpected {sql[at:at + 30]!r} after REPLICATE: write REPLICATE for every table, or REPLICATE Jobs for one."
            )
        return CacheStatement("REPLICATE", table=table)
    if keyword == "CACHE":
        at = _skip(sql, end)
        truncate = False
        word, end = _word(sql, at)
        if word.upper() == "WITH":
            option, option_end = _word(sql, _skip(sql, end))
            after = _skip(sql, option_end)
            if option.upper() == "TRUNCATE" and _word(sql, after)[0].upper() != "AS" and sql[after : after + 1] != "(":
                truncate, at = True, after
            elif option.upper() in ("AUTOCOMMIT", "SCHEMA", "DROP", "ALTER"):
                raise exc.ProgrammingError(f"CACHE WITH {option.upper()} is not supported; CACHE [WITH TRUNCATE] SELECT ... is.")
            # else: a SELECT that starts with a common table expression (WITH x AS (...) SELECT ...)
        select = sql[at:]
        if not select.strip(" \t\r\n;"):
            raise exc.ProgrammingError("CACHE needs a SELECT: CACHE [WITH TRUNCATE] SELECT ... FROM Jobs ...")
        first, _ = _word(sql, at)
        if first.upper() not in ("SELECT", "WITH", "VALUES"):
            raise exc.ProgrammingError(
                f"CACHE stores the rows of a SELECT into the cached table of the same name: write CACHE [WITH TRUNCATE] SELECT ... "
                f"(got {sql[at:at + 30]!r})."
            )
        return CacheStatement("CACHE", truncate=truncate, select=select)
    return None


