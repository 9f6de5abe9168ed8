"""Memory: what a statement holds does not grow with the rows it reads, and nothing of it stays
on the connection once its cursor is gone.

The emulator runs in its own process (its answers are not our allocations), with 4,000 jobs:
about 12,400 tasks, more than the statement store's bound of 5,000 objects. Figures at larger
scale are ``benchmarks/bench.py --jobs 20000``'s peak column.
"""

from __future__ import annotations

import gc
import subprocess
import sys
import threading
import tracemalloc
import weakref
from collections.abc import Callable, Iterator
from typing import Any

import pytest

import apidriver

MiB = 1 << 20


@pytest.fixture(scope="module")
def root() -> Iterator[str]:
    process = subprocess.Popen(
        [sys.executable, "-m", "apidriver.emulator", "--port", "0", "--api-key", "k", "--jobs", "4000", "--seed", "3",
         "--rate-limit", "0"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        yield process.stdout.readline().strip()
    finally:
        process.terminate()
        process.wait(timeout=30)


def peak_of(run: Callable[[], Any]) -> tuple[Any, float]:
    """What ``run`` returns, and the peak of Python allocations while it ran (MiB)."""
    gc.collect()
    tracemalloc.start()
    try:
        result = run()
        return result, tracemalloc.get_traced_memory()[1] / MiB
    finally:
        tracemalloc.stop()


def test_a_scan_holds_a_bounded_part_of_the_pages_it_reads(root: str) -> None:
    # Pages wait to be indexed for lookups only until the store's bound of newer objects
    # (every page of the scan was held before: 34 MiB here, 19.5 MiB for count(*) of 20,000 jobs).
    with apidriver.connect(APIKey="k", BaseURL=root) as conn:
        conn.cursor().execute("SELECT count(*) FROM Tasks").fetchall()  # page counts known, as on a repeat
        conn.engine.wait_idle()
        (count,), peak = peak_of(lambda: conn.cursor().execute("SELECT count(*) FROM Tasks").fetchone())
        assert count > 12_000
        assert peak < 26, f"peak {peak:.1f} MiB for {count} tasks"


def test_newest_rows_keep_only_what_the_limit_can_return(root: str) -> None:
    # ORDER BY a timestamp is sorted by the engine, which now takes LIMIT (and OFFSET) as the number
    # of first rows to keep between pages (every row was held before: 38 MiB here).
    with apidriver.connect(APIKey="k", BaseURL=root) as conn:
        everything = conn.cursor().execute("SELECT id, created_at FROM Tasks ORDER BY created_at DESC").fetchall()
        conn.engine.wait_idle()
        sql = "SELECT id, created_at FROM Tasks ORDER BY created_at DESC LIMIT 10 OFFSET 7"
        plan = conn.cursor().execute("EXPLAIN QUERY PLAN " + sql).fetchall()
        assert "ORDER BY" not in str(plan)  # the engine sorts; SQLite does not
        newest, peak = peak_of(lambda: conn.cursor().execute(sql).fetchall())
        assert peak < 26, f"peak {peak:.1f} MiB"
        # The same rows a full sort gives, ties in the same order (a stable sort's first rows).
        assert newest == everything[7:17]
        assert conn.cursor().execute(
            "SELECT id FROM Tasks ORDER BY created_at, id DESC LIMIT 3"
        ).fetchall() == [(r[0],) for r in sorted(everything, key=lambda r: (r[1], [-ord(c) for c in r[0]]))[:3]]


JOIN_FILES = "SELECT count(f.filename) FROM Jobs j JOIN Tasks t ON t.job_id = j.id JOIN TaskFiles f ON f.task_id = t.id"


def held_after(conn: apidriver.Connection, run: Callable[[], Any]) -> tuple[Any, float]:
    """``run()``'s result, and the MiB of Python memory still allocated once it is done (collected)."""
    conn.cursor().execute("SELECT 1").fetchall()
    gc.collect()
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        result = run()
        conn.engine.wait_idle()
        gc.collect()
        return result, (tracemalloc.get_traced_memory()[0] - before) / MiB
    finally:
        tracemalloc.stop()


def test_a_joins_lookups_leave_nothing_on_the_connection(root: str) -> None:
    # The rows prepared for a join's lookups live with the statement; only a CacheTTL snapshot's,
    # which later statements read again, are kept by the connection (14 MiB stayed before).
    with apidriver.connect(APIKey="k", BaseURL=root) as conn:

        def run() -> int:
            cursor = conn.cursor()
            (files,) = cursor.execute(JOIN_FILES).fetchone()
            conn.engine.wait_idle()
            cursor.close()
            conn.cursor().execute("SELECT 1").fetchall()
            return int(files)

        files, left = held_after(conn, run)
        assert files > 5000
        assert left < 2, f"{left:.1f} MiB left after the statement"


def test_a_cursor_whose_rows_are_all_read_lets_the_statements_objects_go(root: str) -> None:
    # A live cursor kept its statement's store until it was closed or ran again (up to ~40 MiB
    # after a big join); once SQLite has given the last row, only the rows handed out remain.
    with apidriver.connect(APIKey="k", BaseURL=root) as conn:
        cursor = conn.cursor()
        ((files,),), left = held_after(conn, lambda: cursor.execute(JOIN_FILES).fetchall())
        assert files > 5000
        assert left < 2, f"{left:.1f} MiB held by a cursor whose rows were all read"
        assert cursor.requests and cursor.rows_read > 5000  # what the statement did stays readable


def test_a_joins_pages_go_with_their_statement_not_with_the_cycle_collector(root: str) -> None:
    # The index of a page's embedded tasks was built by a closure that called itself: a reference
    # cycle holding the page, so every page's parsed JSON waited for the cyclic garbage collector
    # (8,288 objects for this statement's 5 pages; 220 now), whose passes cost ~12% of a join's CPU.
    sql = "SELECT count(*) FROM Jobs j JOIN Tasks t ON t.job_id = j.id WHERE j.tag = 'reports'"
    with apidriver.connect(APIKey="k", BaseURL=root) as conn:
        conn.cursor().execute(sql).fetchall()  # page counts known, as on a repeat
        conn.engine.wait_idle()
        gc.collect()
        gc.disable()
        try:
            cursor = conn.cursor()
            ((count,),) = cursor.execute(sql).fetchall()
            conn.engine.wait_idle()
            requests = len(cursor.requests)
            cursor.close()
            conn.cursor().execute("SELECT 1").fetchall()
            cycles = gc.collect()
        finally:
            gc.enable()
    assert count > 0 and requests > 0
    # What remains is httpx's own response cycle (~45 objects a request).
    assert cycles < 100 * requests, f"{cycles} objects left to the cycle collector by {requests} requests"


def test_a_statements_objects_are_let_go_on_a_worker_after_its_last_row(root: str) -> None:
    # Deallocating a join's pages and prepared rows took ~8% of its CPU before fetchall returned;
    # it is now handed to a worker, so the rows come first, and wait_idle() waits for it too.
    with apidriver.connect(APIKey="k", BaseURL=root) as conn:
        cursor = conn.cursor().execute(JOIN_FILES)
        freed_on: list[str] = []
        weakref.finalize(cursor.context.store, lambda: freed_on.append(threading.current_thread().name))
        assert cursor.fetchall()[0][0] > 5000
        conn.engine.wait_idle()
        assert len(freed_on) == 1 and freed_on[0].startswith("apidriver-http"), freed_on
        # A statement that ends after its connection closed lets go at once.
        cursor = conn.cursor().execute(JOIN_FILES)
        store = weakref.ref(cursor.context.store)
    cursor.close()
    assert store() is None
