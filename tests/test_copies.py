"""CacheTTL copies (engine/copies.py): a statement over one table a snapshot holds whole runs on a
real SQLite table, with exactly the answers, the order and the requests of the virtual table."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import apidriver
from apidriver.emulator import Emulator

from .conftest import connect_to

# Statements over one table that read its whole list: every type of column checked, sorted,
# grouped and converted. They run on copies.
ONE_TABLE = [
    ("SELECT * FROM Tasks", ()),
    ("SELECT id, job_id, status FROM Tasks", ()),
    ("SELECT count(*) FROM Tasks", ()),
    ("SELECT status, count(*), sum(credits), avg(credits) FROM Tasks GROUP BY status ORDER BY status", ()),
    ("SELECT id, status, created_at FROM Tasks ORDER BY created_at DESC, id", ()),
    ("SELECT id, created_at FROM Tasks ORDER BY created_at LIMIT 7 OFFSET 3", ()),
    ("SELECT id FROM Tasks ORDER BY ended_at DESC, started_at, id", ()),
    ("SELECT id, created_at FROM Tasks ORDER BY created_at COLLATE BINARY DESC, id", ()),
    ("SELECT id FROM Tasks ORDER BY CAST(created_at AS TEXT), id", ()),
    ("SELECT json_extract(payload, '$.output_format') AS format, count(*) FROM Tasks GROUP BY format ORDER BY 1", ()),
    ("SELECT id FROM Tasks WHERE created_at > ? ORDER BY id", ("2000-01-01T00:00:00Z",)),
    ("SELECT count(*) FROM Tasks WHERE created_at >= ?", ("2000-01-01 00:00:00+00:00",)),
    ("SELECT id FROM Tasks WHERE credits >= 1 AND ended_at IS NOT NULL", ()),
    ("SELECT id FROM Tasks WHERE operation LIKE 'import/%' OR operation GLOB 'conv*'", ()),
    ("SELECT DISTINCT operation FROM Tasks", ()),
    ("SELECT typeof(payload), typeof(credits), typeof(created_at), typeof(depends_on_task_ids) FROM Tasks", ()),
    ("SELECT min(created_at), max(ended_at), count(DISTINCT job_id) FROM Tasks", ()),
    ("SELECT id, status FROM Tasks LIMIT 5", ()),
    ("SELECT * FROM TaskFiles", ()),
    ("SELECT tag, count(*) FROM Jobs GROUP BY tag ORDER BY 2 DESC, 1", ()),
]
# Statements planned as a GET by key or an API filter send that request (or take its own cached
# answer), as without copies: a copy answers only what the virtual table reads from the snapshot.
KEYED = [
    ("SELECT id FROM Tasks WHERE id = ?", None),  # the first task's id
    ("SELECT id FROM Tasks WHERE status IN ('error', 'finished') AND credits >= 0", ()),
    ("SELECT * FROM Jobs WHERE tag = 'reports'", ()),
    ("SELECT * FROM TaskFiles WHERE task_id = ?", None),
]


def settled(emulator: Emulator) -> None:
    """Wait until no task changes any more (answers compared across connections must not move;
    tasks waiting for an upload wait for ever)."""
    sql = "SELECT id, status, started_at, ended_at, credits FROM Tasks ORDER BY id"
    with connect_to(emulator) as conn:
        before = conn.cursor().execute(sql).fetchall()
        for _ in range(100):
            time.sleep(0.3)
            now = conn.cursor().execute(sql).fetchall()
            if now == before:
                return
            before = now
    raise AssertionError("the emulator's tasks did not settle")


@pytest.fixture(scope="module")
def quiet() -> Iterator[Emulator]:
    """An account whose tasks have all ended: its answers stay the same for the module."""
    emulator = Emulator(jobs=40, seed=23, task_seconds=0.01).start()
    settled(emulator)
    yield emulator
    emulator.stop()


def run(conn: apidriver.Connection, sql: str, params: Any = ()) -> tuple[list[tuple[Any, ...]], apidriver.Cursor]:
    cursor = conn.cursor()
    return cursor.execute(sql, params).fetchall(), cursor


def test_statements_over_one_table_run_on_copies_with_the_virtual_tables_answers(quiet: Emulator) -> None:
    apidriver.clear_cache()
    with connect_to(quiet) as live, connect_to(quiet, CacheTTL=600) as cached:
        # The snapshots: both lists of Tasks (with include=payload, and without: TaskFiles are cut from
        # that one, as the virtual table reads them), and Jobs.
        for sql in ("SELECT * FROM Tasks", "SELECT * FROM TaskFiles", "SELECT * FROM Jobs"):
            run(cached, sql)
        (first,) = run(live, "SELECT id FROM Tasks LIMIT 1")[0][0]
        for sql, params in ONE_TABLE + KEYED:
            values = (first,) if params is None else params
            expected, _ = run(live, sql, values)
            got, cursor = run(cached, sql, values)
            assert got == expected, sql  # in the same order: the copies have the API's order
            if (sql, params) in KEYED:
                assert cursor.context.ran_on == "virtual tables", sql
                continue
            assert cursor.context.ran_on == "copies", sql
            assert cursor.requests and all(r.cached for r in cursor.requests), sql
            assert cursor.rows_read > 0, sql


def test_a_copy_sends_nothing_and_shows_the_snapshots_pages(quiet: Emulator) -> None:
    apidriver.clear_cache()
    with connect_to(quiet, CacheTTL=600, PageSize=10) as conn:
        _, first = run(conn, "SELECT * FROM Tasks")
        assert first.context.ran_on == "virtual tables" and not any(r.cached for r in first.requests)
        quiet.clear_requests()
        rows, cursor = run(conn, "SELECT count(*), max(created_at) FROM Tasks")
        assert cursor.context.ran_on == "copies"
        assert quiet.requests() == []
        assert sorted(r.url for r in cursor.requests) == sorted(r.url for r in first.requests)  # the same pages, cached
        assert rows[0][0] == len(run(conn, "SELECT id FROM Tasks")[0])


def test_a_list_without_the_included_columns_serves_the_statements_that_do_not_read_them(quiet: Emulator) -> None:
    apidriver.clear_cache()
    with connect_to(quiet, CacheTTL=600) as conn:
        run(conn, "SELECT id FROM Tasks")  # /tasks without include=payload
        count = run(conn, "SELECT count(*) FROM Tasks")[0][0][0]
        _, cursor = run(conn, "SELECT status, count(*) FROM Tasks GROUP BY status")
        assert cursor.context.ran_on == "copies"
        quiet.clear_requests()
        rows, cursor = run(conn, "SELECT json_extract(payload, '$.operation') FROM Tasks")
        assert cursor.context.ran_on == "virtual tables"  # payload needs the other list
        assert quiet.requests() and len(rows) == count
        assert any(r[0] is not None for r in rows)


def test_what_a_copy_cannot_run_runs_on_the_virtual_table(quiet: Emulator) -> None:
    apidriver.clear_cache()
    with connect_to(quiet, CacheTTL=600) as conn, connect_to(quiet) as live:
        run(conn, "SELECT * FROM Tasks")
        run(conn, "SELECT * FROM Jobs")
        conn.sqlite.create_scalar_function("twice", lambda x: None if x is None else 2 * x)
        live.sqlite.create_scalar_function("twice", lambda x: None if x is None else 2 * x)
        others = [
            "SELECT twice(credits) FROM Tasks",  # a function of the application's
            "SELECT a.id, b.id FROM Tasks a JOIN Tasks b ON b.job_id = a.job_id AND b.id <> a.id",  # a self-join
            "SELECT t.id FROM Tasks t JOIN Jobs j ON j.id = t.job_id WHERE j.tag = 'reports'",  # two tables
            "SELECT id FROM Tasks WHERE job_id IN (SELECT id FROM Jobs)",  # a subquery
            "SELECT id, rowid FROM Tasks",  # the virtual table's rowids
            "SELECT id FROM Tasks ORDER BY created_at COLLATE ISO8601",  # names the collation itself
            "SELECT id FROM Tasks WHERE created_at > '2000-01-01T00:00:00Z' ORDER BY created_at",  # compares and sorts
        ]
        for sql in others:
            got, cursor = run(conn, sql)
            assert cursor.context.ran_on == "virtual tables", sql
            assert sorted(got, key=repr) == sorted(run(live, sql)[0], key=repr), sql


def test_a_value_the_column_would_convert_keeps_the_table_off_the_copies(make_emulator: Callable[..., Emulator]) -> None:
    emulator = make_emulator(jobs=6, seed=3, task_seconds=0.01)
    settled(emulator)
    task = next(iter(emulator.backend.tasks.values()))
    task.payload = 42  # type: ignore[assignment]  # JSON text '42' in a column of NUMERIC affinity
    apidriver.clear_cache()
    with connect_to(emulator, CacheTTL=600) as conn:
        run(conn, "SELECT * FROM Tasks")
        rows, cursor = run(conn, "SELECT payload, typeof(payload) FROM Tasks WHERE id = ?", (task.id,))
        assert cursor.context.ran_on == "virtual tables"
        assert rows == [("42", "text")]  # the virtual table's value, not the integer a copy would hold


def test_sorting_a_timestamp_outside_the_stored_form_runs_on_the_virtual_table(make_emulator: Callable[..., Emulator]) -> None:
    emulator = make_emulator(jobs=6, seed=3, task_seconds=0.01)
    settled(emulator)
    task = next(iter(emulator.backend.tasks.values()))
    task.created_at = -61_000_000_000.0  # the year 37: its text is not in the stored form, nor sorted as text
    apidriver.clear_cache()
    with connect_to(emulator, CacheTTL=600) as conn, connect_to(emulator) as live:
        run(conn, "SELECT * FROM Tasks")
        sql = "SELECT id, created_at FROM Tasks ORDER BY created_at, id"
        rows, cursor = run(conn, sql)
        assert cursor.context.ran_on == "virtual tables"
        assert rows == run(live, sql)[0] and rows[0][0] == task.id
        _, cursor = run(conn, "SELECT count(*) FROM Tasks WHERE created_at < '1000-01-01'")
        assert cursor.context.ran_on == "copies"  # the exact copy, with the collation, holds it


def test_copies_follow_the_snapshot_writes_expiry_and_clear_cache(make_emulator: Callable[..., Emulator]) -> None:
    emulator = make_emulator(jobs=8, seed=5, task_seconds=0.01)
    settled(emulator)
    apidriver.clear_cache()
    # A TTL long enough that the steps within it (a POST by another connection among them) fit
    # under a loaded CI machine; 0.5 s did not always.
    with connect_to(emulator, CacheTTL=2.5) as conn, connect_to(emulator) as other:
        run(conn, "SELECT * FROM Jobs")
        before = run(conn, "SELECT count(*) FROM Jobs")[0][0][0]
        job = {"t": {"operation": "import/url", "url": "https://example.com/a"}}
        inserting = other.cursor()
        inserting.execute("INSERT INTO Jobs (tasks) VALUES (?)", (job,))
        rows, cursor = run(conn, "SELECT count(*) FROM Jobs")
        assert cursor.context.ran_on == "copies" and rows == [(before,)]  # within CacheTTL: the snapshot's rows
        # A lookup by key sends its GET, as it would without copies: the new job is there.
        new_id = inserting.created_rows[0]["id"]
        rows, cursor = run(conn, "SELECT id FROM Jobs WHERE id = ?", (new_id,))
        assert cursor.context.ran_on == "virtual tables" and rows == [(new_id,)]
        time.sleep(2.6)
        rows, cursor = run(conn, "SELECT count(*) FROM Jobs")
        assert cursor.context.ran_on == "virtual tables" and rows == [(before + 1,)]  # expired: read again
        conn.cursor().execute("INSERT INTO Jobs (tasks) VALUES (?)", (job,))  # a write drops the snapshots
        rows, cursor = run(conn, "SELECT count(*) FROM Jobs")
        assert cursor.context.ran_on == "virtual tables" and rows == [(before + 2,)]
        run(conn, "SELECT * FROM Jobs")
        assert run(conn, "SELECT count(*) FROM Jobs")[1].context.ran_on == "copies"
        conn.clear_cache()
        assert run(conn, "SELECT count(*) FROM Jobs")[1].context.ran_on == "virtual tables"


def test_a_table_larger_than_the_bound_is_not_copied(quiet: Emulator) -> None:
    apidriver.clear_cache()
    with connect_to(quiet, CacheTTL=600) as conn:
        assert conn.copies is not None
        conn.copies.max_rows = 5
        rows, _ = run(conn, "SELECT * FROM Tasks")
        again, cursor = run(conn, "SELECT * FROM Tasks")
        assert cursor.context.ran_on == "virtual tables" and again == rows and len(rows) > 5


def test_a_statement_on_a_copy_is_cancelled_by_interrupt(quiet: Emulator) -> None:
    apidriver.clear_cache()
    with connect_to(quiet, CacheTTL=600) as conn:
        run(conn, "SELECT * FROM Tasks")
        slow = "SELECT count(*) FROM Tasks WHERE length(printf('%.*c', 20000000 + length(id), 'x')) < 0"  # ~10 ms a row
        timer = threading.Timer(0.2, conn.interrupt)
        timer.start()
        started = time.perf_counter()
        with pytest.raises(apidriver.QueryCancelledError):
            run(conn, slow)
        timer.join()
        assert time.perf_counter() - started < 5
        _, cursor = run(conn, "SELECT count(*) FROM Tasks")
        assert cursor.context.ran_on == "copies"  # the connection goes on


def test_without_cache_ttl_there_are_no_copies(quiet: Emulator) -> None:
    with connect_to(quiet) as conn:
        assert conn.copies is None
        run(conn, "SELECT * FROM Tasks")
        assert run(conn, "SELECT count(*) FROM Tasks")[1].context.ran_on == "virtual tables"
