"""SQLite's comparison rules, in Python, for checking rows before SQLite sees them.

The engine never asks SQLite to skip its own check of a constraint (``omit``
stays false, except an OFFSET a plain scan applies by page arithmetic): what
it checks here only decides which rows are worth handing to SQLite, and how
many of them certainly pass, so that a LIMIT can stop the fetching early.
Each check therefore answers two questions about a row:

- ``possible``: could SQLite find the constraint true? Rows for which this
  is false are dropped (SQLite would drop them too).
- ``certain``: will SQLite find it true? Only such rows count towards LIMIT.

They differ when the statement's text does not fix the semantics. SQLite
applies numeric affinity to a TEXT column compared with an operand that has
numeric affinity (a join on an INTEGER column, ``CAST(.. AS INTEGER)``), and
text affinity otherwise; a virtual table only sees the operand's value. A
number compared with a TEXT column is therefore checked both ways. Checks
whose rules are not implemented here (REGEXP, MATCH, unknown collations) are
possible and never certain.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from typing import Any

import apsw

from ..values import BOOLEAN, INTEGER, JSON, REAL, TIMESTAMP, instant_key

EQ = apsw.SQLITE_INDEX_CONSTRAINT_EQ
IS = apsw.SQLITE_INDEX_CONSTRAINT_IS
NE = apsw.SQLITE_INDEX_CONSTRAINT_NE
ISNOT = apsw.SQLITE_INDEX_CONSTRAINT_ISNOT
GT = apsw.SQLITE_INDEX_CONSTRAINT_GT
GE = apsw.SQLITE_INDEX_CONSTRAINT_GE
LT = apsw.SQLITE_INDEX_CONSTRAINT_LT
LE = apsw.SQLITE_INDEX_CONSTRAINT_LE
ISNULL = apsw.SQLITE_INDEX_CONSTRAINT_ISNULL
ISNOTNULL = apsw.SQLITE_INDEX_CONSTRAINT_ISNOTNULL
LIKE = apsw.SQLITE_INDEX_CONSTRAINT_LIKE
GLOB = apsw.SQLITE_INDEX_CONSTRAINT_GLOB
# Operators a constraint may carry that this module evaluates (others: possible, never certain).
EVALUATED = frozenset({EQ, IS, NE, ISNOT, GT, GE, LT, LE, ISNULL, ISNOTNULL, LIKE, GLOB})
OPERATOR_TEXT = {EQ: "=", IS: "IS", NE: "!=", ISNOT: "IS NOT", GT: ">", GE: ">=", LT: "<", LE: "<=", ISNULL: "IS NULL",
                 ISNOTNULL: "IS NOT NULL", LIKE: "LIKE", GLOB: "GLOB"}

NUMERIC_TYPES = frozenset({INTEGER, REAL, BOOLEAN, TIMESTAMP, JSON})  # declared types with numeric affinity

_SPACE = " \t\n\v\f\r"
_NUMBER = re.compile(r"[ \t\n\v\f\r]*[+-]?(?:(\d+)|\d+\.\d*|\.\d+|\d+(?:\.\d*)?[eE][+-]?\d+|\.\d+[eE][+-]?\d+)[ \t\n\v\f\r]*\Z")
_converter = apsw.Connection(":memory:")


def numeric_affinity(value: Any) -> Any:
    """What SQLite's NUMERIC affinity makes of ``value`` (text that reads as a number becomes one)."""
    if not isinstance(value, str):
        return value
    match = _NUMBER.match(value)
    if match is None:
        return value
    if match.group(1) is not None:
        number = int(value.strip(_SPACE))
        if -(2**63) <= number < 2**63:
            return number
        return float(number)
    return float(value.strip(_SPACE))


@functools.lru_cache(maxsize=4096)
def _real_text(value: float) -> str:
    return str(_converter.execute("SELECT CAST(? AS TEXT)", (value,)).fetchall()[0][0])


def text_affinity(value: Any) -> Any:
    """What SQLite's TEXT affinity makes of ``value`` (numbers become their SQLite text)."""
    if isinstance(value, bool):
        return str(int(value))
    if isinstance(value, int):
        return str(value)
    if isinstance(value, float):
        return _real_text(value)
    return value


def _rank(value: Any) -> int:
    if value is None:
        return 0
    if isinstance(value, (int, float)):
        return 1
    if isinstance(value, str):
        return 2
    return 3


def _fold(text: str, collation: str) -> Any:
    if collation == "NOCASE":
        return text.translate(_ASCII_LOWER)
    if collation == "RTRIM":
        return text.rstrip(" ")
    if collation == "ISO8601":
        return instant_key(text)
    return text


_ASCII_LOWER = {c: c + 32 for c in range(ord("A"), ord("Z") + 1)}
KNOWN_COLLATIONS = frozenset({"BINARY", "NOCASE", "RTRIM", "ISO8601"})


def _order(a: Any, b: Any, collation: str) -> int:
    """SQLite's comparison of two non-NULL values after affinities: -1, 0 or 1."""
    ra, rb = _rank(a), _rank(b)
    if ra != rb:
        return -1 if ra < rb else 1
    if ra == 2:
        a, b = _fold(a, collation), _fold(b, collation)
    elif ra == 3:
        a, b = bytes(a), bytes(b)
    return -1 if a < b else 1 if a > b else 0


def _compare(op: int, column_value: Any, wanted: Any, collation: str) -> bool:
    if op == ISNULL:
        return column_value is None
    if op == ISNOTNULL:
        return column_value is not None
    if op in (IS, ISNOT):
        if column_value is None or wanted is None:
            same = column_value is None and wanted is None
        else:
            same = _order(column_value, wanted, collation) == 0
        return same if op == IS else not same
    if column_value is None or wanted is None:
        return False
    order = _order(column_value, wanted, collation)
    if op == EQ:
        return order == 0
    if op == NE:
        return order != 0
    if op == GT:
        return order > 0
    if op == GE:
        return order >= 0
    if op == LT:
        return order < 0
    return order <= 0  # LE


def _like(column_value: Any, pattern: Any, glob: bool) -> bool | None:
    """SQLite's LIKE (ASCII case-insensitive) or GLOB; None when not decided here."""
    if column_value is None or pattern is None:
        return False
    text, pat = text_affinity(column_value), text_affinity(pattern)
    if not isinstance(text, str) or not isinstance(pat, str):
        return None
    regex = _glob_regex(pat) if glob else _like_regex(pat)
    if regex is None:
        return None
    return regex.match(text) is not None


@functools.lru_cache(maxsize=512)
def _like_regex(pattern: str) -> re.Pattern[str]:
    out = []
    for ch in pattern:
        if ch == "%":
            out.append(".*")
        elif ch == "_":
            out.append(".")
        elif ch.isascii() and ch.isalpha():
            out.append(f"[{ch.lower()}{ch.upper()}]")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out) + r"\Z", re.DOTALL)


@functools.lru_cache(maxsize=512)
def _glob_regex(pattern: str) -> re.Pattern[str] | None:
    if "[" in pattern:
        return None  # character classes: left to SQLite
    out = []
    for ch in pattern:
        if ch == "*":
            out.append(".*")
        elif ch == "?":
            out.append(".")
        else:
            out.append(re.escape(ch))
    return re.compile("".join(out) + r"\Z", re.DOTALL)


def check(column_type: str, op: int, collation: str, column_value: Any, wanted: Any, typed: bool = False) -> tuple[bool, bool]:
    """(possible, certain) for ``column <op> wanted`` on a value of a column of ``column_type``.

    ``typed``: the value's type tells the affinity SQLite compares with (the
    values of an IN that SQLite passes one by one have had the comparison's
    affinity applied already: a number reaching a TEXT column means numeric
    affinity), so the answer is exact.
    """
    if op not in EVALUATED or collation.upper() not in KNOWN_COLLATIONS:
        return True, False
    collation = collation.upper()
    if op in (LIKE, GLOB):
        result = _like(column_value, wanted, op == GLOB)
        return (True, False) if result is None else (result, result)
    if column_type in NUMERIC_TYPES:
        left, right = column_value, numeric_affinity(wanted)
        result = _compare(op, left, right, collation)
        return result, result
    # A TEXT column: text affinity on the other operand, unless that operand has numeric
    # affinity (unknown here), in which case numeric affinity applies to the column instead.
    if isinstance(wanted, (int, float)) and not isinstance(wanted, bool):
        as_number = _compare(op, numeric_affinity(column_value), wanted, collation)
        if typed:
            return as_number, as_number
        as_text = _compare(op, column_value, text_affinity(wanted), collation)
        return as_text or as_number, as_text and as_number
    as_text = _compare(op, column_value, wanted, collation)
    return as_text, as_text


def check_any(column_type: str, op: int, collation: str, column_value: Any, wanted: Any, typed: bool = False) -> tuple[bool, bool]:
    """``check`` for ``column IN wanted`` (a set) or ``column <op> wanted`` (one value)."""
    if not isinstance(wanted, (set, frozenset, list, tuple)):
        return check(column_type, op, collation, column_value, wanted, typed)
    possible = certain = False
    for w in wanted:
        p, c = check(column_type, op, collation, column_value, w)
        possible = possible or p
        certain = certain or c
        if certain:
            break
    return possible, certain


Check = Callable[[Any], tuple[bool, bool]]
