"""History figures: apidriver.sync into SQLite and PostgreSQL, incremental syncs, --follow, AutoCache/Offline.

Run: ``.venv/bin/python benchmarks/replica.py`` (``--jobs N`` to change the
account, ``--postgres URL`` to use your own server instead of a throw-away one
started like the tests start theirs, ``--skip-postgres`` for SQLite only).

The emulator runs in its own process: 10,000 seeded jobs (about 31,000 tasks),
50 ms latency per request, no rate limit, retention 48 hours (so that no seeded
job expires while the benchmark runs and "nothing changed" means it). It prints:

1. the first sync of the whole account into SQLite and into PostgreSQL, each in
   a fresh process: wall time, requests, rows written per second, peak RSS;
2. incremental syncs: with nothing changed, and after 100 new jobs ran;
3. ``--follow`` with webhooks: the delay from a delivery's arrival to its rows
   being committed (queryable), median and max over 100 jobs;
4. the same queries live, with AutoCache (fresh, and with CacheTolerance=0:
   an incremental sync first) and Offline, over each cache.
"""

from __future__ import annotations

import argparse
import json
import os
import resource
import statistics
import subprocess
import sys
import threading
import time
from contextlib import AbstractContextManager
from pathlib import Path
from typing import Any

import httpx

import apidriver
from emulated import emulator_process

ROOT = Path(__file__).resolve().parents[1]
KEY = "bench"
LATENCY_MS = 50
QUERIES = {
    "jobs by status": "SELECT status, count(*) FROM Jobs GROUP BY status",
    "credits by tag (join)": "SELECT j.tag, sum(t.credits) FROM Jobs j JOIN Tasks t ON t.job_id = j.id GROUP BY j.tag",
    "one job by id": "SELECT id, status, ended_at FROM Jobs WHERE id = ?",
}
TASKS = {
    "import": {"operation": "import/url", "url": "https://example.com/report.docx"},
    "convert": {"operation": "convert", "input": "import", "output_format": "pdf"},
    "export": {"operation": "export/url", "input": "convert"},
}


def emulator(jobs: int) -> AbstractContextManager[str]:
    """An emulator in its own process (see emulated.py); yields its root URL."""
    return emulator_process(
        "--jobs", str(jobs), "--seed", "1", "--latency-ms", str(LATENCY_MS), "--task-seconds", "0.05", "--retention-hours", "48", api_key=KEY
    )


def connection_string(root: str) -> str:
    return f"APIKey={KEY};BaseURL={root}"


def child_sync(root: str, to: str) -> None:
    """In a fresh process: one sync, its figures as JSON on stdout."""
    started = time.perf_counter()
    report = apidriver.sync(connection_string(root), to=to)
    wall = time.perf_counter() - started
    rows = sum(t.inserted + t.updated for t in report)
    peak = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux
    print(json.dumps({"wall": wall, "requests": report.requests, "rows": rows, "peak_mib": peak, "tables": report.as_dict()}))


def first_sync(root: str, to: str) -> dict[str, Any]:
    result = subprocess.run([sys.executable, __file__, "--child-sync", root, to], capture_output=True, text=True, check=True)
    figures: dict[str, Any] = json.loads(result.stdout)
    return figures


def create_jobs(root: str, count: int, tag: str) -> list[str]:
    with httpx.Client(base_url=root + "/v2", headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as api:
        ids = []
        for _ in range(count):
            response = api.post("/jobs", json={"tag": tag, "tasks": TASKS})
            response.raise_for_status()
            ids.append(response.json()["data"]["id"])
        return ids


def wait_ended(root: str, ids: list[str]) -> None:
    with httpx.Client(base_url=root + "/sync/v2", headers={"Authorization": f"Bearer {KEY}"}, timeout=60) as api:
        for job in ids:
            api.get(f"/jobs/{job}").raise_for_status()


def timed_sync(root: str, to: str) -> tuple[float, apidriver.replica.report.SyncReport]:
    started = time.perf_counter()
    report = apidriver.sync(connection_string(root), to=to)
    return time.perf_counter() - started, report


def follow_delays(root: str, to: str, jobs: int) -> list[float]:
    """Delivery → commit, for the job.finished deliveries of ``jobs`` new jobs."""
    from apidriver.replica import open_target
    from apidriver.replica.follow import Delivery, Follower
    from apidriver.replica.replicator import Replicator

    sys.path.insert(0, str(ROOT))
    from tests.history.postgres import free_port

    conn = apidriver.connect(connection_string(root))
    target = open_target(conn, to)
    port = free_port()
    finished: list[Delivery] = []
    synced = threading.Event()
    follower = Follower(
        conn,
        Replicator(conn, target),
        interval=3600,
        listen=f"127.0.0.1:{port}",
        public_url=f"http://127.0.0.1:{port}/hook",
        on_sync=lambda report: synced.set(),
        on_delivery=lambda d: finished.append(d) if d.event == "job.finished" else None,
    )
    thread = threading.Thread(target=follower.run, daemon=True)
    thread.start()
    synced.wait(600)
    for _ in range(jobs // 10):
        create_jobs(root, 10, "followed")
        time.sleep(0.2)
    deadline = time.monotonic() + 120
    while len(finished) < jobs and time.monotonic() < deadline:
        time.sleep(0.1)
    follower.stop()
    thread.join(60)
    target.close()
    conn.close()
    return [d.written - d.received for d in finished if d.written is not None]


def query_times(root: str, properties: dict[str, Any], job_id: str, runs: int = 3) -> dict[str, tuple[float, int]]:
    """Median seconds and requests of each query on a connection with ``properties``."""
    conn = apidriver.connect(connection_string(root), **properties) if "Offline" not in properties else apidriver.connect(**properties)
    out = {}
    try:
        for name, sql in QUERIES.items():
            times, requests = [], 0
            for _ in range(runs):
                cursor = conn.cursor()
                started = time.perf_counter()
                cursor.execute(sql, (job_id,) if "?" in sql else None)
                cursor.fetchall()
                times.append(time.perf_counter() - started)
                requests = len(cursor.requests)
            out[name] = (statistics.median(times), requests)
    finally:
        conn.close()
    return out


def cache_properties(url: str) -> dict[str, Any]:
    return {"CacheLocation": url.removeprefix("sqlite:///")} if url.startswith("sqlite") else {"CacheConnection": url}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=10_000)
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL database to use (default: a throw-away server)")
    parser.add_argument("--skip-postgres", action="store_true")
    parser.add_argument("--child-sync", nargs=2, metavar=("ROOT", "URL"), help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child_sync:
        child_sync(*args.child_sync)
        return 0

    server = None
    targets: dict[str, str] = {}
    workdir = Path(os.environ.get("TMPDIR", "/tmp")) / f"apidriver-bench-{os.getpid()}"
    workdir.mkdir(parents=True, exist_ok=True)
    targets["SQLite"] = f"sqlite:///{workdir / 'replica.sqlite'}"
    if not args.skip_postgres:
        if args.postgres:
            targets["PostgreSQL"] = args.postgres
        else:
            sys.path.insert(0, str(ROOT))
            from tests.history.postgres import start_server

            server = start_server()
            targets["PostgreSQL"] = server.url(server.create_database())
    try:
        with emulator(args.jobs) as root:
            print(f"Emulator: {args.jobs:,} jobs, {LATENCY_MS} ms latency, no rate limit; MaxConcurrency 8, PageSize 100.\n")
            print("1. First sync of the whole account (fresh process each)")
            for name, url in targets.items():
                f = first_sync(root, url)
                tables = ", ".join(f"{t} {v['inserted']:,}" for t, v in f["tables"].items())
                print(f"   {name:<10} {f['wall']:6.1f} s  {f['requests']:5,} requests  {f['rows'] / f['wall']:8,.0f} rows/s  peak RSS {f['peak_mib']:5.0f} MiB")
                print(f"              rows: {tables}")

            print("\n2. Incremental syncs")
            for name, url in targets.items():
                wall, report = timed_sync(root, url)
                print(f"   {name:<10} nothing changed: {report.requests:3} requests, {wall:5.2f} s  ({ {t.table: t.requests for t in report if t.requests} })")
            ids = create_jobs(root, 100, "new")
            wait_ended(root, ids)
            for name, url in targets.items():
                wall, report = timed_sync(root, url)
                print(f"   {name:<10} 100 new jobs:    {report.requests:3} requests, {wall:5.2f} s  (Jobs +{report['Jobs'].inserted}, Tasks +{report['Tasks'].inserted})")
            for name, url in targets.items():
                wall, report = timed_sync(root, url)
                print(f"   {name:<10} again, unchanged: {report.requests:3} requests, {wall:5.2f} s")

            print("\n3. --follow with webhooks: delivery of job.finished → rows committed")
            for name, url in targets.items():
                delays = follow_delays(root, url, 100)
                print(f"   {name:<10} {len(delays)} jobs: median {statistics.median(delays) * 1000:5.1f} ms, max {max(delays) * 1000:6.1f} ms")

            print("\n4. Queries: median of 3 runs (requests of the last run)")
            job_id = ids[0]
            live = query_times(root, {}, job_id)
            for name, url in targets.items():
                auto = query_times(root, {"AutoCache": True, **cache_properties(url)}, job_id)
                eager = query_times(root, {"AutoCache": True, "CacheTolerance": 0, **cache_properties(url)}, job_id)
                offline = query_times(root, {"Offline": True, **cache_properties(url)}, job_id)
                print(f"   cache in {name}")
                for query in QUERIES:
                    cells = [f"{label} {t * 1000:7.1f} ms / {r:3} req" for label, (t, r) in (
                        ("live", live[query]), ("AutoCache", auto[query]), ("AutoCache+sync", eager[query]), ("Offline", offline[query]))]
                    print(f"     {query:<22} " + " | ".join(cells))
    finally:
        if server is not None:
            server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
