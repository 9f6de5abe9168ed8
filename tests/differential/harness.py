"""Running statements on the driver and on the oracle, and judging the difference.

Statements run on connections with different settings (``CONNECTIONS``):
small pages stress pagination and LIMIT/OFFSET arithmetic, ``TrustListOrder``
consumes ORDER BY, ``CacheTTL`` serves repeated lists from snapshots.

A statement passes when:

- both sides agree: as lists when the statement orders its whole output, as
  multisets otherwise; with LIMIT but no total order, the driver's rows must
  be as many as the oracle's and all come from the oracle's unlimited result;
- both fail, or the driver refuses the statement with a DB-API error while
  the oracle cannot run it either;
- the driver sent no request twice, and no more than twice the requests of
  full scans of the tables the statement reads, plus two.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass
from typing import Any

import apsw

import apidriver

from .dataset import Dataset, canonical_rows
from .generator import Statement


# Connection settings the statements are spread over, with their weights.
CONNECTIONS: tuple[tuple[dict[str, Any], int], ...] = (
    ({}, 6),
    ({"PageSize": 7}, 2),
    ({"PageSize": 33, "MaxConcurrency": 2}, 1),
    ({"TrustListOrder": True}, 1),
    ({"CacheTTL": 600}, 1),
)


class Connections:
    """One open connection per setting of ``CONNECTIONS``, picked at random per statement."""

    def __init__(self, dataset: Dataset, seed: int) -> None:
        import random

        self.rng = random.Random(seed)
        self.open = [(dataset.connect(**props), weight) for props, weight in CONNECTIONS]

    def pick(self) -> apidriver.Connection:
        conns = [c for c, _ in self.open]
        return self.rng.choices(conns, [w for _, w in self.open])[0]

    def close(self) -> None:
        for conn, _ in self.open:
            conn.close()


@dataclass
class Outcome:
    statement: Statement
    problem: str | None
    requests: int = 0
    rows: int = 0
    refused: bool = False
    over_bound: bool = False  # the problem is the requests (over the bound, or one sent twice)
    ran_on: str = "virtual tables"  # where SQLite ran it (StatementContext.ran_on)

    @property
    def ok(self) -> bool:
        return self.problem is None


def _oracle(dataset: Dataset, sql: str, params: list[Any]) -> list[tuple[Any, ...]]:
    return [tuple(r) for r in dataset.oracle.execute(sql, params)]


def request_bound(dataset: Dataset, statement: Statement, page_size: int = 100) -> int:
    costs = dataset.scan_costs(page_size) if page_size != 100 else dataset.scan_requests
    return 2 * sum(costs[t] for t in statement.tables) + 2


def run(dataset: Dataset, conn: apidriver.Connection, statement: Statement) -> Outcome:
    try:
        expected = canonical_rows(_oracle(dataset, statement.oracle_sql, statement.oracle_params))
        oracle_error: Exception | None = None
    except apsw.Error as error:
        expected, oracle_error = [], error
    cursor = conn.cursor()
    try:
        got = canonical_rows(cursor.execute(statement.driver_sql, statement.driver_params).fetchall())
    except apidriver.Error as error:
        if oracle_error is not None:
            return Outcome(statement, None)
        if isinstance(error, apidriver.NotSupportedError) and "SQLite answers this differently" in str(error):
            return Outcome(statement, None, refused=True)  # a documented refusal
        return Outcome(statement, f"driver failed ({type(error).__name__}: {error}); the oracle returned {len(expected)} rows")
    finally:
        requests = cursor.requests
    if oracle_error is not None:
        return Outcome(statement, f"the oracle failed ({oracle_error}) but the driver returned {len(got)} rows")
    problem = compare(dataset, statement, got, expected)
    over_bound = False
    if problem is None:
        problem = check_requests(dataset, statement, requests, conn.settings["PageSize"])
        over_bound = problem is not None
    if problem is None and conn.cache is not None:
        # Over a cache, a statement run again takes the first run's decisions (Connection.planned).
        again = conn.cursor()
        try:
            rows_again = canonical_rows(again.execute(statement.driver_sql, statement.driver_params).fetchall())
        except apidriver.Error as error:
            problem = f"run again, it failed ({type(error).__name__}: {error})"
        else:
            if rows_again != got or again.context.ran_on != cursor.context.ran_on:
                problem = f"run again, it answered differently (ran on {again.context.ran_on}, first on {cursor.context.ran_on})"
    if problem is not None:
        problem += f" [on {describe(conn)}]"
    return Outcome(statement, problem, len(requests), len(got), over_bound=over_bound, ran_on=cursor.context.ran_on)


def describe(conn: apidriver.Connection) -> str:
    """The settings of ``conn`` that differ from the defaults."""
    names = {props_name for props, _ in CONNECTIONS for props_name in props}
    shown = {n: conn.settings[n] for n in sorted(names)}
    return ", ".join(f"{k}={v}" for k, v in shown.items())


def compare(dataset: Dataset, statement: Statement, got: list[tuple[Any, ...]], expected: list[tuple[Any, ...]]) -> str | None:
    if statement.limited:
        assert statement.whole is not None
        whole = Counter(canonical_rows(_oracle(dataset, statement.whole.oracle_sql, statement.whole.oracle_params)))
        if len(got) != len(expected):
            return f"LIMIT without ORDER BY: {len(got)} rows, expected {len(expected)}"
        extra = Counter(got) - whole
        if extra:
            return f"LIMIT without ORDER BY: rows not in the unlimited result: {_short(list(extra)[:3])}"
        return None
    if statement.ordered:
        if got != expected:
            return _difference(got, expected, "in order")
        return None
    if Counter(got) != Counter(expected):
        return _difference(got, expected, "as a multiset")
    return None


def _short(rows: list[Any]) -> str:
    text = repr(rows)
    return text if len(text) <= 300 else text[:300] + "..."


def _difference(got: list[tuple[Any, ...]], expected: list[tuple[Any, ...]], how: str) -> str:
    missing = list((Counter(expected) - Counter(got)).elements())
    extra = list((Counter(got) - Counter(expected)).elements())
    text = f"results differ {how}: {len(got)} rows, expected {len(expected)}"
    if missing:
        text += f"; missing {_short(missing[:3])}"
    if extra:
        text += f"; unexpected {_short(extra[:3])}"
    if not missing and not extra:
        text += f"; first rows {_short(got[:3])} vs {_short(expected[:3])}"
    return text


def check_requests(dataset: Dataset, statement: Statement, requests: list[Any], page_size: int = 100) -> str | None:
    sent = [(r.method, r.url) for r in requests if not r.cached and r.attempt == 1]
    repeats = [k for k, n in Counter(sent).items() if n > 1]
    if repeats:
        return f"{len(repeats)} requests sent more than once, e.g. {repeats[0][0]} {repeats[0][1]}"
    bound = request_bound(dataset, statement, page_size)
    if len(sent) > bound:
        return f"{len(sent)} requests, more than the bound of {bound} (twice full scans of {sorted(statement.tables)}, plus two; PageSize {page_size})"
    return None
