"""How close the joins of bench.py can come to the latency bound: the least a Python client over APSW must do.

Run: ``.venv/bin/python benchmarks/join_floor.py`` (``--runs N``).

bench.py's queries 6 (Jobs ⋈ Tasks) and 7 (Jobs ⋈ Tasks ⋈ TaskFiles) read
jobs with their tasks embedded (``include=tasks``): 20 and 3 pages of up to
244 kB. For each, on one emulator (2,000 jobs, 50 ms latency) and in one run,
this prints side by side, against the bound (ceil(requests / 8) x 50 ms):

- **floor**: the same requests (the driver's own, from the emulator's log) on
  8 httpx threads, each answer parsed with orjson; no SQL, no rows;
- **least**: the floor, plus each page cut into tuples on its worker thread as
  it arrives (jobs; tasks by job id; files by task id), plus the same SQL run
  by SQLite over three virtual tables that only hand those tuples over. No
  value conversion, no check, no request log, no bounds: less than any correct
  driver can do, so it is a floor for a driver built on APSW's virtual tables;
- **apidriver**: the query through the DB-API, as bench.py runs it.

The answers of "least" are checked against apidriver's, so both do the same query.
"""

from __future__ import annotations

import argparse
import math
import statistics
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

import apsw
import httpx
import orjson
from emulated import emulator_process

import apidriver

LATENCY_MS = 50
CONCURRENCY = 8
Q6 = "SELECT j.tag, count(t.id), sum(t.credits) FROM Jobs j JOIN Tasks t ON t.job_id = j.id GROUP BY j.tag"
Q7 = (
    "SELECT f.filename, f.url FROM Jobs j JOIN Tasks t ON t.job_id = j.id JOIN TaskFiles f ON f.task_id = t.id "
    "WHERE j.tag = ?"
)
COLUMNS = {"Jobs": ("id", "tag"), "Tasks": ("id", "job_id", "credits"), "TaskFiles": ("task_id", "filename", "url")}
LOOKUP = {"Tasks": 1, "TaskFiles": 0}  # the column each inner table is looked up by

Shaped = tuple[list[tuple[Any, ...]], dict[Any, list[tuple[Any, ...]]], dict[Any, list[tuple[Any, ...]]]]


def shape(body: Any) -> Shaped:
    """One page of jobs as tuples: the jobs, their tasks by job id, the tasks' files by task id."""
    jobs, tasks, files = [], {}, {}
    for job in body["data"]:
        jobs.append((job["id"], job.get("tag")))
        own = tasks[job["id"]] = []
        for task in job.get("tasks") or []:
            own.append((task["id"], task.get("job_id"), task.get("credits")))
            found = (task.get("result") or {}).get("files") or []
            files[task["id"]] = [(task["id"], f.get("filename"), f.get("url")) for f in found]
    return jobs, tasks, files


class Least:
    """Three virtual tables over the shaped pages of one statement: Jobs is scanned page by page as
    the pages arrive; Tasks and TaskFiles are looked up by job id and task id."""

    def __init__(self) -> None:
        self.pages: list[Future[Shaped]] = []
        self.index: dict[str, dict[Any, list[tuple[Any, ...]]]] = {}
        self.db = apsw.Connection(":memory:")
        self.db.createmodule("least", self)
        for name in COLUMNS:
            self.db.execute(f"CREATE VIRTUAL TABLE temp.{name} USING least()")

    def run(self, sql: str, params: tuple[Any, ...], pages: list[Future[Shaped]]) -> list[tuple[Any, ...]]:
        self.pages, self.index = pages, {"Tasks": {}, "TaskFiles": {}}
        return self.db.execute(sql, params).fetchall()

    def Create(self, db: Any, module: str, database: str, name: str, *args: Any) -> tuple[str, Any]:
        return f"CREATE TABLE x({', '.join(COLUMNS[name])})", _Table(self, name)

    Connect = Create


class _Table:
    def __init__(self, least: Least, name: str) -> None:
        self.least, self.name = least, name

    def BestIndex(self, constraints: Any, orderbys: Any) -> Any:
        column = LOOKUP.get(self.name)
        for i, (c, op) in enumerate(constraints):
            if c == column and op == apsw.SQLITE_INDEX_CONSTRAINT_EQ:
                usage: list[Any] = [None] * len(constraints)
                usage[i] = (0, True)
                return usage, 1, None, False, 10
        return None if column is None else (None, 0, None, False, 1e9)

    def Open(self) -> _Cursor:
        return _Cursor(self.least, self.name)

    def Disconnect(self) -> None:
        pass

    Destroy = Disconnect


class _Cursor:
    def __init__(self, least: Least, name: str) -> None:
        self.least, self.name = least, name
        self.rows: list[tuple[Any, ...]] = []
        self.i = self.n = self.page = 0
        self.scan = False

    def Filter(self, number: int, name: str, args: Any) -> None:
        self.scan = not args
        if self.scan:
            self.page, self.rows, self.i, self.n = 0, [], 0, 0
            self._next_page()
        else:
            self.rows = self.least.index[self.name].get(args[0], [])
            self.i, self.n = 0, len(self.rows)

    def _next_page(self) -> None:
        pages, index = self.least.pages, self.least.index
        while self.i >= self.n and self.page < len(pages):
            jobs, tasks, files = pages[self.page].result()
            self.page += 1
            index["Tasks"].update(tasks)
            index["TaskFiles"].update(files)
            self.rows, self.i, self.n = jobs, 0, len(jobs)

    def Eof(self) -> bool:
        return self.i >= self.n

    def Next(self) -> None:
        self.i += 1
        if self.scan and self.i >= self.n:
            self._next_page()

    def Column(self, number: int) -> Any:
        return self.rows[self.i][number]

    def Rowid(self) -> int:
        return self.i

    def Close(self) -> None:
        pass


def median_ms(fn: Callable[[], Any], runs: int, before: Callable[[], Any] | None = None) -> float:
    times = []
    for _ in range(runs):
        if before is not None:
            before()
        started = time.perf_counter()
        fn()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=15)
    args = parser.parse_args()
    with emulator_process("--jobs", "2000", "--seed", "1", "--latency-ms", str(LATENCY_MS), api_key="bench") as root:
        conn = apidriver.connect(APIKey="bench", BaseURL=root, MaxConcurrency=CONCURRENCY, PageSize=100)
        tags = conn.cursor().execute("SELECT tag, count(*) FROM Jobs WHERE tag IS NOT NULL GROUP BY tag ORDER BY 2 DESC")
        tag = tags.fetchall()[0][0]
        least = Least()
        limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
        http = httpx.Client(base_url=root, headers={"Authorization": "Bearer bench"}, limits=limits, timeout=60)
        print(f"Emulator: 2,000 jobs, {LATENCY_MS} ms latency; {CONCURRENCY} threads; median of {args.runs} runs\n")
        print(f"{'query':28} {'requests':>8} {'bound':>6} | {'floor':>13} | {'least':>13} | {'apidriver':>13}")
        with http, ThreadPoolExecutor(CONCURRENCY) as pool:
            for label, sql, params in (("6 Jobs ⋈ Tasks", Q6, ()), ("7 Jobs ⋈ Tasks ⋈ TaskFiles", Q7, (tag,))):

                def driver(sql: str = sql, params: tuple[Any, ...] = params) -> list[tuple[Any, ...]]:
                    return conn.cursor().execute(sql, params).fetchall()

                expected = sorted(driver(), key=repr)  # and the page counts are known from here on
                conn.engine.wait_idle()
                httpx.delete(root + "/_emulator/requests")
                driver()
                conn.engine.wait_idle()
                time.sleep(0.05)
                entries = sorted(httpx.get(root + "/_emulator/requests").json(), key=lambda e: e["time"])
                targets = [e["path"] + (f"?{e['query']}" if e.get("query") else "") for e in entries]

                def fetch(target: str) -> Any:
                    return orjson.loads(http.get(target).content)

                def floor(targets: list[str] = targets) -> None:
                    list(pool.map(fetch, targets))

                def least_run(targets: list[str] = targets, sql: str = sql, params: tuple[Any, ...] = params) -> list[Any]:
                    pages = [pool.submit(lambda t=t: shape(fetch(t))) for t in targets]
                    return least.run(sql, params, pages)

                floor()
                if sorted(least_run(), key=repr) != expected:
                    raise SystemExit(f"query {label}: the least client's answer differs from apidriver's")
                bound = math.ceil(len(targets) / CONCURRENCY) * LATENCY_MS
                figures = [median_ms(floor, args.runs), median_ms(least_run, args.runs),
                           median_ms(driver, args.runs, before=conn.engine.wait_idle)]
                print(f"{label:28} {len(targets):>8} {bound:>4}ms | "
                      + " | ".join(f"{ms:>6.1f}ms {ms / bound:>4.2f}x" for ms in figures))
        conn.close()
    print("\nfloor: the requests alone. least: the requests, the pages cut into tuples as they arrive, and SQLite's "
          "join over minimal virtual tables (no conversion, no checks): a floor for any driver on APSW's virtual tables.")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
