"""The driver's own CPU cost per row, and reading the cache, side by side with plain SQLite.

Run: ``.venv/bin/python benchmarks/engine_cpu.py`` (``--jobs 20000`` for the scale
run, ``--runs N`` repetitions, ``--cache`` adds the cache figures, ``--skip-postgres``
leaves PostgreSQL out of them, ``--cache-jobs N`` the size of the synced account).

1. Engine CPU. The emulator (its own process, no latency) holds ``--jobs`` seeded
   jobs. Each query runs on a connection with ``CacheTTL``, after a warm-up run,
   so every list comes from the statement cache and no request is sent: what is
   left is the driver's CPU. Statements over one table then run on the
   connection's copies of the snapshots (engine/copies.py); the join runs on the
   virtual tables. A last section shows where each ran, the first run on a new
   connection (which makes its copies) and the copies' SQLite memory. The same SQL runs on a plain in-memory SQLite copy
   of the same rows (same declared types, same stored values), through APSW.
   Both sides run interleaved; medians and minimums are printed, and the ratio
   of the medians is the figure the goals are about (driver: through the
   DB-API cursor, execute + fetchall, as users get rows). ``requests`` counts
   requests actually sent during the timed runs; ``peak`` is the peak of Python
   allocations during one more run (tracemalloc). A live scan (no CacheTTL,
   no latency) shows the first conversion of every row.
2. The cache (``--cache``). An account of ``--cache-jobs`` jobs is synced into a
   SQLite file; the same queries then run with ``Offline=true`` and with
   ``AutoCache=true`` (a tolerance of an hour: no sync) against Python's
   ``sqlite3`` on the same file, and over a PostgreSQL cache (``CacheConnection``,
   a throw-away server as the tests start it).
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import sqlite3
import statistics
import sys
import tempfile
import time
import tracemalloc
from collections.abc import Callable
from pathlib import Path
from typing import Any

import apsw
from emulated import emulator_process

import apidriver
from apidriver.values import format_timestamp

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench"

QUERIES: list[tuple[str, str]] = [
    ("SELECT * FROM Tasks", "every column"),
    ("SELECT id, job_id, status FROM Tasks", "three columns"),
    ("SELECT count(*) FROM Tasks", "count(*)"),
    ("SELECT j.tag, count(t.id), sum(t.credits) FROM Jobs j JOIN Tasks t ON t.job_id = j.id GROUP BY j.tag", "Jobs ⋈ Tasks GROUP BY tag"),
    ("SELECT id, status, created_at FROM Tasks ORDER BY created_at DESC, id", "ORDER BY created_at"),
    ("SELECT json_extract(payload, '$.output_format') AS format, count(*) FROM Tasks GROUP BY format", "json_extract GROUP BY"),
]
CACHE_QUERIES: list[tuple[str, str]] = [
    ('SELECT status, count(*) FROM "Tasks" GROUP BY status', "GROUP BY status on Tasks"),
    ('SELECT j.tag, count(t.id), sum(t.credits) FROM "Jobs" j JOIN "Tasks" t ON t.job_id = j.id GROUP BY j.tag', "Jobs ⋈ Tasks GROUP BY tag"),
    ('SELECT * FROM "Tasks"', "SELECT * FROM Tasks"),
    ('SELECT count(*) FROM "Tasks"', "count(*)"),
]


def plain(value: Any) -> Any:
    """A DB-API value back as SQLite stores it (timestamps as UTC text, booleans as 0/1)."""
    if isinstance(value, bool):
        return int(value)
    if isinstance(value, dt.datetime):
        return format_timestamp(value)
    return value


def copy_tables(conn: apidriver.Connection, names: list[str]) -> apsw.Connection:
    """A plain in-memory SQLite database with the same rows as the driver's tables."""
    copy = apsw.Connection(":memory:")
    for name in names:
        table = conn.engine.table(name)
        columns = ", ".join(f'"{c.name}" {c.type}' for c in table.columns)
        copy.execute(f'CREATE TABLE "{name}" ({columns})')
        rows = [tuple(plain(v) for v in row) for row in conn.cursor().execute(f'SELECT * FROM "{name}"')]
        with copy:
            copy.executemany(f'INSERT INTO "{name}" VALUES ({", ".join("?" * len(table.columns))})', rows)
    return copy


def timed(fn: Callable[[], int], once: bool = False) -> tuple[float, int]:
    """Seconds one call takes; unless ``once``, a call under a millisecond is repeated for 2 ms and
    averaged (a single call of a few microseconds is mostly timer and scheduling noise)."""
    started = time.perf_counter()
    rows = fn()
    elapsed = time.perf_counter() - started
    if once or elapsed >= 0.001:
        return elapsed, rows
    calls, started = 0, time.perf_counter()
    while True:
        fn()
        calls += 1
        elapsed = time.perf_counter() - started
        if elapsed >= 0.002:
            return elapsed / calls, rows


def peak_memory(fn: Callable[[], int]) -> float:
    tracemalloc.start()
    try:
        fn()
        return tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.3f}" if seconds < 0.001 else f"{seconds * 1000:8.2f}"


def side_by_side(
    title: str, queries: list[tuple[str, str]], sides: dict[str, Callable[[str], Callable[[], int]]], runs: int, requests: Callable[[], int] | None = None
) -> None:
    """Run every query on every side, interleaved; print medians, minimums and ratios to the last side."""
    names = list(sides)
    base = names[-1]
    print(title)
    header = f"   {'query':28} {'rows':>7}" + "".join(f" | {n + ' median':>18} {'min':>8}" for n in names)
    header += "".join(f" | {n + '/' + base:>14}" for n in names[:-1]) + f" | {'rows/s':>9}" + (" | req" if requests else "")
    print(header)
    print("   " + "-" * (len(header) - 3))
    for sql, label in queries:
        fns = {n: sides[n](sql) for n in names}
        times: dict[str, list[float]] = {n: [] for n in names}
        rows = 0
        for fn in fns.values():
            fn()  # warm-up: caches filled, statements prepared
        sent = requests() if requests else 0
        for _ in range(runs):
            for n in names:
                elapsed, rows = timed(fns[n])
                times[n].append(elapsed)
        sent = (requests() - sent) if requests else 0
        med = {n: statistics.median(times[n]) for n in names}
        line = f"   {label[:28]:28} {rows:>7}" + "".join(f" | {ms(med[n]):>15} ms {ms(min(times[n]))}" for n in names)
        line += "".join(f" | {med[n] / med[base]:>13.2f}x" for n in names[:-1])
        rate = f"{rows / med[names[0]]:>9,.0f}" if rows >= 1000 else f"{'-':>9}"  # result rows; aggregates: -
        line += f" | {rate}" + (f" | {sent}" if requests else "")
        print(line)


def engine_cpu(jobs: int, runs: int) -> None:
    with emulator_process("--jobs", str(jobs), "--seed", "1", "--task-seconds", "0.05", api_key=KEY) as root:
        time.sleep(0.5)
        apidriver.clear_cache()
        conn = apidriver.connect(APIKey=KEY, BaseURL=root, CacheTTL=3600)
        before = apsw.memory_used()
        copy = copy_tables(conn, ["Jobs", "Tasks"])
        plain_memory = apsw.memory_used() - before
        tasks = next(copy.execute('SELECT count(*) FROM "Tasks"'))[0]
        sent: list[int] = []

        def driver(sql: str) -> Callable[[], int]:
            def run() -> int:
                cursor = conn.cursor()
                rows = len(cursor.execute(sql).fetchall())
                sent.append(sum(1 for r in cursor.requests if not r.cached))
                return rows

            return run

        def sqlite_side(sql: str) -> Callable[[], int]:
            return lambda: len(copy.execute(sql).fetchall())

        print(f"Emulator: {jobs:,} jobs, {tasks:,} tasks, no latency; driver with CacheTTL (lists from the statement cache); {runs} runs each.\n")
        side_by_side("1. Engine CPU: driver (DB-API) against plain SQLite (APSW, in memory), same rows, same SQL", QUERIES,
                     {"driver": driver, "SQLite": sqlite_side}, runs, requests=lambda: sum(sent))
        print("\n   Peak Python memory of one run (tracemalloc), driver / plain SQLite:")
        for sql, label in QUERIES:
            print(f"   {label[:28]:28} {peak_memory(driver(sql)):7.1f} MiB / {peak_memory(sqlite_side(sql)):6.1f} MiB")
        conn.close()

        print("\n   Where each ran, and the first run on a new connection (the snapshots are there; its copies are")
        print("   made by the first statement that can use them), against the repeat's median above:")
        used = apsw.memory_used()
        fresh = apidriver.connect(APIKey=KEY, BaseURL=root, CacheTTL=3600)
        for sql, label in QUERIES:
            cursor = fresh.cursor()
            elapsed, rows = timed(lambda: len(cursor.execute(sql).fetchall()), once=True)
            print(f"   {label[:28]:28} {cursor.context.ran_on:>15} {ms(elapsed)} ms")
        print(f"   SQLite memory of the new connection's copies: {(apsw.memory_used() - used) / 2**20:.1f} MiB "
              f"(the plain SQLite copy of Jobs and Tasks: {plain_memory / 2**20:.1f} MiB)")
        fresh.close()

        print("\n   Live, no CacheTTL, no latency (every row fetched and converted):")
        live = apidriver.connect(APIKey=KEY, BaseURL=root)
        for sql, label in QUERIES[:3]:
            best, requests = float("inf"), 0
            for _ in range(max(1, runs // 2)):
                cursor = live.cursor()
                elapsed, rows = timed(lambda: len(cursor.execute(sql).fetchall()), once=True)
                live.engine.wait_idle()
                best, requests = min(best, elapsed), len(cursor.requests)
            print(f"   {label[:28]:28} {rows:>7} rows {ms(best)} ms (best) {rows / best:>9,.0f} rows/s {requests:>5} requests")
        live.close()


def cache_figures(jobs: int, runs: int, skip_postgres: bool) -> None:
    sys.path.insert(0, str(ROOT))
    workdir = Path(tempfile.mkdtemp(prefix="apidriver-engine-cpu-"))
    path = workdir / "replica.sqlite"
    server = None
    with emulator_process("--jobs", str(jobs), "--seed", "1", "--task-seconds", "0.05", "--retention-hours", "48", api_key=KEY) as root:
        time.sleep(0.5)
        started = time.perf_counter()
        apidriver.sync(f"APIKey={KEY};BaseURL={root}", to=f"sqlite:///{path}")
        print(f"\n2. The cache: {jobs:,} jobs synced into SQLite in {time.perf_counter() - started:.1f} s; {runs} runs each.")
        offline = apidriver.connect(Offline=True, CacheLocation=str(path))
        auto = apidriver.connect(APIKey=KEY, BaseURL=root, AutoCache=True, CacheLocation=str(path), CacheTolerance=3600)
        lite = sqlite3.connect(str(path))
        sent: list[int] = []

        def on(conn: apidriver.Connection) -> Callable[[str], Callable[[], int]]:
            def side(sql: str) -> Callable[[], int]:
                def run() -> int:
                    cursor = conn.cursor()
                    rows = len(cursor.execute(sql).fetchall())
                    sent.append(len(cursor.context.requests))  # (not cursor.requests: a copy the sqlite3 side has no cost for)
                    return rows

                return run

            return side

        def sqlite_side(sql: str) -> Callable[[], int]:
            return lambda: len(lite.execute(sql).fetchall())

        side_by_side(f"   SQLite file ({os.path.getsize(path) / 2**20:.0f} MiB): Offline and AutoCache against sqlite3 on the same file",
                     CACHE_QUERIES, {"Offline": on(offline), "AutoCache": on(auto), "sqlite3": sqlite_side}, runs, requests=lambda: sum(sent))
        offline.close()
        auto.close()
        if not skip_postgres:
            from tests.history.postgres import start_server

            try:
                server = start_server()
            except Exception as error:  # no PostgreSQL here: say so and go on
                print(f"   PostgreSQL: not measured ({error})")
            if server is not None:
                try:
                    url = server.url(server.create_database())
                    apidriver.sync(f"APIKey={KEY};BaseURL={root}", to=url)
                    pg = apidriver.connect(Offline=True, CacheConnection=url)
                    side_by_side("   PostgreSQL cache (CacheConnection): Offline against the same SQL on the SQLite file (sqlite3)",
                                 CACHE_QUERIES, {"Offline PG": on(pg), "sqlite3 file": sqlite_side}, max(3, runs // 2))
                    pg.close()
                finally:
                    server.stop()
        lite.close()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--runs", type=int, default=9)
    parser.add_argument("--cache", action="store_true", help="also measure reading the cache")
    parser.add_argument("--cache-only", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--cache-jobs", type=int, default=5000)
    parser.add_argument("--skip-postgres", action="store_true")
    args = parser.parse_args()
    if not args.cache_only:
        engine_cpu(args.jobs, args.runs)
    if args.cache or args.cache_only:
        cache_figures(args.cache_jobs, args.runs, args.skip_postgres)
    return 0


if __name__ == "__main__":
    sys.exit(main())
