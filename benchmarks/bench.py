"""Requests and wall time of typical queries: apidriver against the baseline a user writes today.

Run: ``.venv/bin/python benchmarks/bench.py`` (``--quick`` skips the slow rate-limit
scan; ``--runs N`` sets repetitions; ``--jobs 20000`` the scale run, ``--no-sdk``
without the SDK baseline).

It starts the emulator in a separate process (2,000 seeded jobs, 50 ms latency per
request) and runs each query several times through the DB-API, then the same
question with the official ``cloudconvert`` SDK: a sequential page loop and
Python filtering/joining. For each it prints the rows, the HTTP requests (of
the first run and of a repeat, where page-count hints apply), the minimum a
query can need with 100 rows a page, the median wall time, the lower bound
on wall time for that many requests: ceil(requests / concurrency) × latency,
and the peak of Python allocations during one more run (tracemalloc).
Then the peak Python memory of a 100,000-row scan (and of a 25,000-row one,
to show it does not grow with rows), and a scan that needs more requests than
the rate limit allows in a minute.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
import tracemalloc
from collections import Counter, defaultdict
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from contextlib import AbstractContextManager
from dataclasses import dataclass
from typing import Any

import httpx
import orjson

import apidriver
from emulated import emulator_process

LATENCY_MS = 50
CONCURRENCY = 8
PAGE = 100


def emulator(*args: str) -> AbstractContextManager[str]:
    """An emulator in its own process (see emulated.py); yields its root URL."""
    return emulator_process(*args, api_key="bench")


def log(root: str) -> list[dict[str, Any]]:
    return list(httpx.get(root + "/_emulator/requests").json())


def clear(root: str) -> None:
    httpx.delete(root + "/_emulator/requests")


@dataclass
class Figures:
    rows: int
    first_requests: int
    repeat_requests: int
    median_s: float
    peak_mib: float = 0.0
    server_s: float = 0.0
    floor_s: float = 0.0


def server_span(entries: list[dict[str, Any]]) -> float:
    """Seconds from the first request's arrival at the emulator to the start of the last answer
    (latency, queueing behind the emulator's one event loop, its own work)."""
    if not entries:
        return 0.0
    return max(e["time"] + e.get("duration_ms", 0) / 1000 for e in entries) - min(e["time"] for e in entries)


def measure_sql(root: str, conn: apidriver.Connection, sql: str, params: tuple[Any, ...], runs: int) -> Figures:
    counts, times, spans, rows = [], [], [], 0
    entries: list[dict[str, Any]] = []
    for _ in range(runs):
        conn.engine.wait_idle()
        clear(root)
        started = time.perf_counter()
        rows = len(conn.cursor().execute(sql, params).fetchall())
        times.append(time.perf_counter() - started)
        conn.engine.wait_idle()  # pages fetched ahead count too
        time.sleep(0.05)
        entries = log(root)
        counts.append(len(entries))
        spans.append(server_span(entries))
    tracemalloc.start()
    try:
        conn.cursor().execute(sql, params).fetchall()
        peak = tracemalloc.get_traced_memory()[1] / 2**20
    finally:
        tracemalloc.stop()
    conn.engine.wait_idle()
    return Figures(rows, counts[0], counts[-1], statistics.median(times), peak, statistics.median(spans), replay(root, entries, runs))


def replay(root: str, entries: list[dict[str, Any]], runs: int) -> float:
    """The floor under the driver: the median time of the same requests (the last run's, in the order
    they arrived) sent with plain httpx on CONCURRENCY threads, each answer parsed with orjson, no
    SQL, no rows. What a query takes beyond it is the driver's own work."""
    if not entries:
        return 0.0
    targets = [e["path"] + (f"?{e['query']}" if e.get("query") else "") for e in sorted(entries, key=lambda e: e["time"])]
    limits = httpx.Limits(max_connections=CONCURRENCY, max_keepalive_connections=CONCURRENCY)
    with httpx.Client(base_url=root, headers={"Authorization": "Bearer bench"}, limits=limits, timeout=60) as http:
        with ThreadPoolExecutor(CONCURRENCY) as pool:

            def one(target: str) -> Any:
                return orjson.loads(http.get(target).content)

            list(pool.map(one, targets))  # connections opened, as the driver's are
            times = []
            for _ in range(runs):
                started = time.perf_counter()
                list(pool.map(one, targets))
                times.append(time.perf_counter() - started)
    return statistics.median(times)


def measure_python(root: str, fn: Callable[[], int], runs: int) -> Figures:
    counts, times, rows = [], [], 0
    for _ in range(runs):
        clear(root)
        started = time.perf_counter()
        rows = fn()
        times.append(time.perf_counter() - started)
        time.sleep(0.05)
        counts.append(len(log(root)))
    return Figures(rows, counts[0], counts[-1], statistics.median(times))


def bound(requests: int) -> float:
    return math.ceil(requests / CONCURRENCY) * LATENCY_MS / 1000 if requests else 0.0


# -- the baseline: the official SDK, a sequential page loop, Python filtering -------------------------


def sdk_pages(resource: Any, **params: Any) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    page = 1
    while True:
        data = resource.all({**params, "page": page, "per_page": PAGE}) or []
        out.extend(dict(d) for d in data)
        if len(data) < PAGE:
            return out
        page += 1


def baseline(cloudconvert: Any, job_id: str, twenty: list[str], tag: str) -> dict[int, Callable[[], int]]:
    Job, Task = cloudconvert.Job, cloudconvert.Task

    def q4() -> int:
        jobs = sorted(sdk_pages(Job), key=lambda j: j["created_at"], reverse=True)
        return len(jobs[:10])

    def q5() -> int:
        return sum(len(sdk_pages(Task, **{"filter[job_id]": i})) for i in twenty)

    def q6() -> int:  # a page loop per table, joined in Python
        tag_of = {j["id"]: j["tag"] for j in sdk_pages(Job)}
        per_tag: dict[Any, list[int]] = defaultdict(lambda: [0, 0])
        for task in sdk_pages(Task):
            if task["job_id"] in tag_of:
                per_tag[tag_of[task["job_id"]]][0] += 1
                per_tag[tag_of[task["job_id"]]][1] += int(task.get("credits") or 0)
        return len(per_tag)

    def q7() -> int:
        tagged = {j["id"] for j in sdk_pages(Job, **{"filter[tag]": tag})}
        return sum(
            len((task.get("result") or {}).get("files") or []) for task in sdk_pages(Task) if task["job_id"] in tagged
        )

    def q6_embedded() -> int:  # the same with include=tasks: one loop, if the user knows the trick
        per_tag: dict[Any, int] = defaultdict(int)
        for job in sdk_pages(Job, include="tasks"):
            per_tag[job["tag"]] += len(job.get("tasks") or [])
        return len(per_tag)

    def q7_embedded() -> int:
        return sum(
            len((task.get("result") or {}).get("files") or [])
            for job in sdk_pages(Job, include="tasks", **{"filter[tag]": tag})
            for task in job.get("tasks") or []
        )

    return {
        -6: q6_embedded,
        -7: q7_embedded,
        1: lambda: 1 if sdk_pages(Job) is not None else 0,
        2: lambda: len(sdk_pages(Job, **{"filter[status]": "error"})),
        3: lambda: 1 if Job.show(job_id) else 0,
        4: q4,
        5: q5,
        6: q6,
        7: q7,
        8: lambda: 1 if sdk_pages(Job) is not None else 0,
        9: lambda: len(Job.all({"page": 1, "per_page": 10}) or []),  # trusting the order too: one page
    }


# -- the report ----------------------------------------------------------------------------------------


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=5)
    parser.add_argument("--quick", action="store_true", help="skip the rate-limit scan (over a minute)")
    parser.add_argument("--jobs", type=int, default=2000, help="seeded jobs (20000 for the scale run)")
    parser.add_argument("--no-sdk", action="store_true", help="skip the official SDK baseline")
    args = parser.parse_args()

    with emulator("--jobs", str(args.jobs), "--seed", "1", "--latency-ms", str(LATENCY_MS)) as root:
        conn = apidriver.connect(APIKey="bench", BaseURL=root, MaxConcurrency=CONCURRENCY, PageSize=PAGE)
        cached = apidriver.connect(APIKey="bench", BaseURL=root, CacheTTL=600)
        trusted = apidriver.connect(APIKey="bench", BaseURL=root, TrustListOrder=True)
        cur = conn.cursor()
        jobs = cur.execute("SELECT id, status, tag FROM Jobs").fetchall()
        errors = sum(1 for j in jobs if j[1] == "error")
        tag = Counter(j[2] for j in jobs if j[2]).most_common(1)[0][0]
        tagged = sum(1 for j in jobs if j[2] == tag)
        twenty = [j[0] for j in jobs[:20]]
        job_id = jobs[len(jobs) // 2][0]
        in_list = ",".join("?" * 20)
        full = math.ceil(len(jobs) / PAGE)
        queries: list[tuple[int, str, str, tuple[Any, ...], int, apidriver.Connection]] = [
            (1, "count(*) of Jobs", "SELECT count(*) FROM Jobs", (), full, conn),
            (2, "jobs with status = 'error'", "SELECT id, tag, created_at, ended_at FROM Jobs WHERE status = 'error'", (),
             math.ceil(errors / PAGE), conn),
            (3, "one job by id", "SELECT * FROM Jobs WHERE id = ?", (job_id,), 1, conn),
            (4, "10 newest jobs (ORDER BY created_at DESC LIMIT 10)",
             "SELECT id, created_at FROM Jobs ORDER BY created_at DESC LIMIT 10", (), full, conn),
            (5, "tasks of 20 jobs (job_id IN ...)", f"SELECT * FROM Tasks WHERE job_id IN ({in_list})", tuple(twenty), 20, conn),
            (6, "tasks and credits per tag (Jobs ⋈ Tasks)",
             "SELECT j.tag, count(t.id), sum(t.credits) FROM Jobs j JOIN Tasks t ON t.job_id = j.id GROUP BY j.tag", (), full, conn),
            (7, f"files of jobs tagged '{tag}' (Jobs ⋈ Tasks ⋈ TaskFiles)",
             "SELECT f.filename, f.url FROM Jobs j JOIN Tasks t ON t.job_id = j.id JOIN TaskFiles f ON f.task_id = t.id "
             "WHERE j.tag = ?", (tag,), math.ceil(tagged / PAGE), conn),
            (8, "query 1 again with CacheTTL", "SELECT count(*) FROM Jobs", (), 0, cached),
            (9, "query 4 with TrustListOrder (newest first assumed)",
             "SELECT id, created_at FROM Jobs ORDER BY created_at DESC LIMIT 10", (), 1, trusted),
        ]
        cached.cursor().execute("SELECT count(*) FROM Jobs").fetchall()  # fills the cache for query 8
        cached.engine.wait_idle()

        import cloudconvert

        cloudconvert.configure(api_key="bench", sandbox=False, endpoint=root, sync_endpoint=root + "/sync")
        base = baseline(cloudconvert, job_id, twenty, tag)

        print(f"Emulator: {len(jobs)} jobs, {LATENCY_MS} ms latency; apidriver MaxConcurrency={CONCURRENCY}, PageSize={PAGE}; {args.runs} runs each\n")
        header = (f"{'#':>2} {'query':52} {'rows':>6} {'req 1st':>7} {'req rep':>7} {'min':>4} {'median':>8} {'bound':>7} {'ratio':>5} "
                  f"{'server':>7} {'floor':>7} {'/floor':>6} {'peak':>8} | {'SDK req':>7} {'SDK median':>10} {'speed-up':>8}")
        print(header)
        print("-" * len(header))
        results = {}
        for number, name, sql, params, minimum, connection in queries:
            ours = measure_sql(root, connection, sql, params, args.runs)
            theirs = Figures(0, 0, 0, float("nan")) if args.no_sdk else measure_python(root, base[number], max(1, args.runs // 2))
            b = bound(ours.repeat_requests)
            ratio = ours.median_s / b if b else float("nan")
            results[number] = (ours, theirs, minimum, b)
            print(
                f"{number:>2} {name[:52]:52} {ours.rows:>6} {ours.first_requests:>7} {ours.repeat_requests:>7} {minimum:>4} "
                f"{ours.median_s * 1000:>6.0f}ms {b * 1000:>5.0f}ms {ratio:>5.2f} {ours.server_s * 1000:>5.0f}ms "
                f"{ours.floor_s / b if b else float('nan'):>6.2f}x "
                f"{ours.median_s / ours.floor_s if ours.floor_s else float('nan'):>5.2f}x {ours.peak_mib:>5.1f}MiB | "
                f"{theirs.repeat_requests:>7} "
                f"{theirs.median_s * 1000:>8.0f}ms {theirs.median_s / ours.median_s:>7.1f}x"
            )
        print("\nbound: ceil(requests / concurrency) x latency for the repeat's requests. server: the emulator's span, from the "
              "first request's arrival to the start of the last answer (median of the runs). floor: the same requests sent with "
              "plain httpx on as many threads and parsed with orjson, no driver, against the bound; /floor: the median against it "
              "(what the driver's own work adds).")
        if args.no_sdk:
            conn.close()
            cached.close()
            trusted.close()
            return 0
        embedded = {n: measure_python(root, base[-n], max(1, args.runs // 2)) for n in (6, 7)}
        print(
            "\nreq 1st / rep: requests of the first run and of a repeat (the same lists then go out at once, exactly)."
            "\nmin: fewest requests the query can need at 100 rows a page. Query 4 needs a full scan: the API"
            "\ndocuments no list order, so 'newest' cannot be taken from the first page. Query 5: the API filters"
            "\none job_id per request. bound: ceil(requests / concurrency) x latency for the repeat's requests."
            "\nSDK: the official cloudconvert SDK, a sequential page loop per table, filtering and joining in Python."
            + "".join(
                f"\nSDK for query {n} with include=tasks (one loop over jobs): {f.repeat_requests} requests, "
                f"{f.median_s * 1000:.0f} ms; apidriver is {f.median_s / results[n][0].median_s:.1f}x faster."
                for n, f in embedded.items()
            )
        )
        conn.close()
        cached.close()
        trusted.close()

    memory()
    if not args.quick:
        rate_limited()
    return 0


def memory() -> None:
    print("\nMemory of a streaming scan (Python allocations of this process; emulator in its own process):")
    with emulator("--jobs", "34000", "--seed", "2") as root:
        with apidriver.connect(APIKey="bench", BaseURL=root, PageSize=100) as conn:
            for limit in (25_000, 100_000):
                tracemalloc.start()
                started = time.perf_counter()
                rows = 0
                for _ in conn.cursor().execute("SELECT id, job_id, status, created_at FROM Tasks LIMIT ?", (limit,)):
                    rows += 1
                elapsed = time.perf_counter() - started
                peak = tracemalloc.get_traced_memory()[1]
                tracemalloc.stop()
                conn.engine.wait_idle()
                print(f"  {rows:>7} rows: peak {peak / 2**20:6.1f} MiB, {elapsed:5.1f} s (under tracemalloc)")


def rate_limited() -> None:
    print("\nA scan needing more requests than the rate limit allows in a minute (30 per minute, 41 pages):")
    with emulator("--jobs", "2000", "--seed", "1", "--rate-limit", "30") as root:
        with apidriver.connect(APIKey="bench", BaseURL=root, PageSize=50) as conn:
            started = time.perf_counter()
            count = conn.cursor().execute("SELECT count(*) FROM Jobs").fetchone()[0]
            elapsed = time.perf_counter() - started
            conn.engine.wait_idle()
        statuses = Counter(r["status"] for r in log(root))
        print(f"  {count} jobs counted (all of them) in {elapsed:.1f} s; answers: {dict(statuses)}")


if __name__ == "__main__":
    sys.exit(main())
