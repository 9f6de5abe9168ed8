"""The account the differential tests query, and its plain SQLite copy (the oracle).

An emulator is seeded (``jobs`` jobs) and then given the rows that break
naive drivers: tags made of URL-special characters, quotes, brackets, a tag
that SQLite reads as the number 100 (``1e2``), unicode, empty strings and
NULLs, case and trailing-space variants for ``COLLATE NOCASE``/``RTRIM``, a
task with two files, and retried tasks. Once nothing in the account moves any
more, every table is copied through the driver by a full scan into an
in-memory SQLite database with the same declared column types, holding the
same stored values (timestamps as the driver's UTC text, booleans as 0/1,
JSON as text). The copy is checked value by value and type by type against
a second scan before anything is compared with it.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import apsw

import apidriver
from apidriver.emulator import Emulator
from apidriver.emulator.models import FileRef
from apidriver.engine.schema import Table
from apidriver.profiles import load
from apidriver.values import format_timestamp

# Tags given to seeded jobs: each one has broken a driver somewhere.
SPECIAL_TAGS: tuple[str | None, ...] = (
    "a&b",
    "#hash",
    "100%",
    "a+b c",
    "it's",
    "''",
    "[x]",
    "1e2",
    "100",
    "Ünïcødé ✓",
    "日本語",
    "",
    "Invoices",
    "invoices ",
    "a/b",
    "../users/me",
    "?page=2",
    "invoices",
    None,
)


@dataclass
class Dataset:
    """An emulator whose account no longer changes, and the oracle copy of its tables."""

    emulator: Emulator
    oracle: apsw.Connection
    tables: dict[str, Table]
    scan_requests: dict[str, int] = field(default_factory=dict)
    scan_requests_by_size: dict[int, dict[str, int]] = field(default_factory=dict)
    values: dict[tuple[str, str], list[Any]] = field(default_factory=dict)

    def connect(self, **properties: Any) -> apidriver.Connection:
        return apidriver.connect(APIKey=self.emulator.api_key, BaseURL=self.emulator.base_url, **properties)

    def scan_costs(self, page_size: int) -> dict[str, int]:
        """Requests of a full scan of each table at this page size (measured once)."""
        known = self.scan_requests_by_size.get(page_size)
        if known is None:
            conn = self.connect(PageSize=page_size)
            try:
                known = {}
                for table in self.tables.values():
                    cursor = conn.cursor()
                    cursor.execute(f'SELECT * FROM "{table.name}"').fetchall()
                    known[table.name] = len(cursor.requests)
            finally:
                conn.close()
            self.scan_requests_by_size[page_size] = known
        return known


def _special_rows(emulator: Emulator) -> None:
    """Give the seeded account the awkward values, directly in the emulator's state."""
    backend = emulator.backend
    jobs = [backend.jobs[j.id] for j in backend.list_jobs(None, None)]
    for job, tag in zip(jobs[3::7], SPECIAL_TAGS):
        job.tag = tag
    tasks = backend.list_tasks(None, None, None)
    exports = [t for t in tasks if t.operation == "export/url" and t.files]
    for task in exports[:3]:  # tasks with two files
        first = task.files[0] if task.files else FileRef("x.pdf", 1)
        task.files = [first, FileRef("second " + first.filename, (first.size or 0) + 1, url_path=first.url_path)]
        task.rendered = None
    failed = [t for t in tasks if t.status == "error" and t.job_id is not None][:4]
    emit = backend._emit
    backend._emit = lambda *args, **kwargs: None  # type: ignore[method-assign]  # no webhook deliveries: nothing may change later
    try:
        for task in failed:
            backend.retry_task(task.id)
        _settle(emulator)
    finally:
        backend._emit = emit  # type: ignore[method-assign]


def _settle(emulator: Emulator, timeout: float = 30.0) -> None:
    """Wait until every task that can end has ended (retries run on the emulator's clock)."""
    deadline = time.monotonic() + timeout
    backend = emulator.backend
    while time.monotonic() < deadline:
        backend.advance()
        moving = [
            t
            for t in backend.tasks.values()
            if t.status == "processing" or (t.retry_of_task_id is not None and not t.terminal)
        ]
        if not moving:
            return
        time.sleep(0.05)
    raise RuntimeError("the emulator's account did not settle")


def _plain(value: Any) -> Any:
    """A value read through the DB-API as SQLite stored it in the virtual table."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    return value


def _create_sql(table: Table) -> str:
    columns = ", ".join(f'"{c.name}" {c.type}' for c in table.columns)
    return f'CREATE TABLE "{table.name}" ({columns})'


def build(jobs: int = 300, seed: int = 11) -> Dataset:
    """Start the emulator, add the special rows, wait for it to settle, copy every table."""
    emulator = Emulator(jobs=jobs, seed=seed, task_seconds=0.05, rate_limit=0).start()
    try:
        _special_rows(emulator)
        profile = load("CloudConvert")
        tables = {t.name: t for t in profile.tables}
        oracle = apsw.Connection(":memory:")
        dataset = Dataset(emulator, oracle, tables)
        conn = dataset.connect()
        try:
            for table in tables.values():
                names = ", ".join(f'"{c.name}"' for c in table.columns)
                rows = [tuple(_plain(v) for v in row) for row in conn.cursor().execute(f'SELECT {names} FROM "{table.name}"')]
                oracle.execute(_create_sql(table))
                marks = ", ".join("?" * len(table.columns))
                with oracle:
                    oracle.executemany(f'INSERT INTO "{table.name}" VALUES ({marks})', rows)
                _check_copy(conn, oracle, table)
                cursor = conn.cursor().execute(f'SELECT {names} FROM "{table.name}"')
                cursor.fetchall()
                dataset.scan_requests[table.name] = len(cursor.requests)
                for i, column in enumerate(table.columns):
                    seen = list(dict.fromkeys(r[i] for r in rows))
                    dataset.values[(table.name, column.name)] = seen
        finally:
            conn.close()
        return dataset
    except BaseException:
        emulator.stop()
        raise


def _check_copy(conn: apidriver.Connection, oracle: apsw.Connection, table: Table) -> None:
    """The copy holds exactly what the driver's table holds: same values, same SQLite types."""
    exprs = ", ".join(f'typeof("{c.name}"), "{c.name}"' for c in table.columns)
    sql = f'SELECT {exprs} FROM "{table.name}"'
    mine = sorted(map(repr, (tuple(_plain(v) for v in r) for r in conn.cursor().execute(sql))))
    theirs = sorted(map(repr, oracle.execute(sql)))
    if mine != theirs:
        raise AssertionError(f"the oracle's copy of {table.name} differs from the driver's table")


def canonical_rows(rows: Sequence[Sequence[Any]]) -> list[tuple[Any, ...]]:
    """Rows with driver-side Python conversions undone and floats rounded, for comparison."""
    out = []
    for row in rows:
        values = []
        for v in row:
            v = _plain(v)
            if isinstance(v, float):
                v = float(f"{v:.10g}")
            values.append(v)
        out.append(tuple(values))
    return out
