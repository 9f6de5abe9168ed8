"""What a plan's constraint sends to the API, and how the engine checks rows against it.

A value goes to the API only where the API matches it exactly as SQLite
would (``api_value``); every row is still checked with SQLite's rules
(``Condition.test``), to drop rows early and to count those that certainly
pass towards a LIMIT.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from .. import exceptions as exc
from ..values import INTEGER, TEXT
from .compare import EQ, IS, check_any, numeric_affinity
from .planner import Arg
from .schema import Column

NOTHING = object()  # a value no API object can hold (NULL with =, '.' as an id): nothing to fetch
UNSAFE = object()  # a value the API would not match as SQLite does: check it locally instead


def api_value(column: Column, value: Any, op: int, for_key: bool) -> Any:
    """The text to send the API for ``column = value``, or NOTHING, or UNSAFE.

    The API matches strings exactly; SQLite compares a TEXT column with a
    number under rules the virtual table cannot see (the other operand's
    affinity), so numbers are checked locally, as are empty strings (the
    API reads an empty filter as no filter). A key is one path segment:
    ``.`` and ``..`` would name another endpoint and can never be ids.
    """
    if value is None:
        return UNSAFE if op == IS else NOTHING
    if isinstance(value, bytes):
        return NOTHING
    if column.type == INTEGER:
        number = numeric_affinity(value)
        if isinstance(number, float) and number.is_integer() and abs(number) < 2**63:
            number = int(number)
        if isinstance(number, int) and not isinstance(number, bool):
            return str(number)
        return UNSAFE
    if column.type != TEXT or not isinstance(value, str):
        return UNSAFE
    if value == "":
        return NOTHING if for_key else UNSAFE
    if for_key and value in (".", ".."):
        return NOTHING
    return value


FAILS, POSSIBLE, CERTAIN = 0, 1, 2


class Condition:
    """One constraint of the plan with its value, checked against rows.

    ``test(row)`` is FAILS (SQLite will drop the row), POSSIBLE (SQLite
    decides) or CERTAIN (SQLite keeps it). The common case, a TEXT column
    equal to a string (or IN strings) under BINARY, is a plain comparison.
    """

    def __init__(self, arg: Arg, column: Column, value: Any, index: int, in_affinity: str = "text") -> None:
        """``index``: the column's position in the table (its prepared values are checked);
        ``in_affinity``: what the statement's IN subqueries apply to their values (see
        ``StatementContext.in_affinity``), which decides a number reaching a TEXT column."""
        self.arg = arg
        self.column = column
        self.value = value
        self.index = index
        self.affinity = "numeric"
        if arg.typed and column.type == TEXT and isinstance(value, (int, float)) and not isinstance(value, bool):
            # SQLite passes this IN's values one by one with the comparison's affinity applied:
            # a number reaching a TEXT column came from a subquery whose values have numeric
            # affinity (then the column's text is read as a number) or none (then text never
            # equals a number). The planner passes such an IN only when the statement's
            # subqueries have one of the two (engine.planner).
            if in_affinity not in ("numeric", "blob"):
                raise exc.InternalError(
                    f"{arg.column} IN (subquery) got the number {value!r} from a subquery whose affinity is {in_affinity}; please report this."
                )
            self.affinity = in_affinity
        self.test = self._compile()

    def _compile(self) -> Callable[[Any], int]:
        arg, column, value = self.arg, self.column, self.value
        plain = column.type == TEXT and arg.op in (EQ, IS) and arg.collation.upper() == "BINARY"
        if plain and isinstance(value, str):
            return lambda v: CERTAIN if v == value else FAILS
        if plain and arg.multi and all(isinstance(v, str) for v in value):
            wanted = frozenset(value)
            return lambda v: CERTAIN if v in wanted else FAILS
        if self.affinity == "blob":
            return lambda v: FAILS  # a TEXT column's value (text or NULL) never equals a number without affinity

        def test(v: Any) -> int:
            possible, certain = check_any(column.type, arg.op, arg.collation, v, value, arg.typed)
            return CERTAIN if certain else POSSIBLE if possible else FAILS

        return test

    def api_values(self, for_key: bool) -> list[str] | None:
        """The distinct texts to request for this constraint, or None when it cannot go to the API."""
        values = self.value if self.arg.multi else [self.value]
        out: list[str] = []
        for v in values:
            text = api_value(self.column, v, self.arg.op, for_key)
            if text is UNSAFE:
                return None
            if text is not NOTHING:
                out.append(text)
        return sorted(set(out))
