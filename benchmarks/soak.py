"""Soak: many threads, each with its own connections, for a long time, against an
emulator that injects a mix of faults; every read checked against ground truth.

Run: ``.venv/bin/python benchmarks/soak.py --threads 8 --seconds 600 --latency-ms 20 --fault-rate 0.05``

The emulator runs in its own process (so the figures are the driver's own)
with ``--jobs`` seeded jobs whose state never changes (new jobs stay waiting:
``--task-seconds 600``), no rate limit of its own, ``--latency-ms`` on every
request, and faults at ``--fault-rate`` in all, split evenly over 500, 502,
503, 429, drop, malformed, a stall shorter than Timeout and one longer.

Each thread loops over a mix of statements on its connection: counts and
filtered scans (several pages), reads by id, a join with an aggregate, a sync
wait (WaitJob), and a write cycle (INSERT a job with a unique tag, check it,
DELETE it by id, check it is gone); now and then it cancels one of its own
scans from a timer thread. Every 50 statements it replaces its connection,
closing the old one or (every other time) just dropping it. Results are
compared with what the emulator held before the run (read with plain HTTP).

Errors are "explained" when they are what the fault policy documents for the
statement (AmbiguousWriteError for a POST that got no clear answer, resolved by
looking the job up by tag; APIUnavailableError or RateLimitError when a request
kept failing; QueryCancelledError after our own cancel); anything else is
unexplained. Every minute a line shows statements, errors, wrong results,
requests, resident memory, threads and open file descriptors; at the end, the
same after every connection is closed or dropped (and collected).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import os
import random
import sys
import threading
import time
from collections import Counter
from contextlib import AbstractContextManager
from dataclasses import dataclass, field
from typing import Any

import httpx

import apidriver
from emulated import emulator_process

KEY = "soak"
TASKS = {
    "import": {"operation": "import/url", "url": "https://example.com/soak.docx"},
    "convert": {"operation": "convert", "input": "import", "output_format": "pdf"},
    "export": {"operation": "export/url", "input": "convert"},
}


def rss_mib() -> float:
    with open("/proc/self/status") as status:
        for line in status:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) / 1024
    return float("nan")


def trimmed_rss() -> float:
    """RSS after glibc gives back the free memory it keeps (what is left is in use)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass
    return rss_mib()


def fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def emulator(args: argparse.Namespace) -> AbstractContextManager[str]:
    """An emulator in its own process (see emulated.py); yields its root URL."""
    return emulator_process(
        "--jobs", str(args.jobs), "--seed", "3", "--latency-ms", str(args.latency_ms), "--task-seconds", "600", api_key=KEY
    )


class Truth:
    """The seeded account, read with plain HTTP before any fault is switched on."""

    def __init__(self, root: str) -> None:
        with httpx.Client(base_url=root + "/v2", headers={"Authorization": f"Bearer {KEY}"}, timeout=30) as api:
            jobs: list[dict[str, Any]] = []
            page = 1
            while True:
                body = api.get("/jobs", params={"page": page, "include": "tasks"}).json()
                jobs += body["data"]
                if not body["links"]["next"]:
                    break
                page += 1
        self.jobs = {j["id"]: j for j in jobs}
        self.ids = sorted(self.jobs)
        self.by_status = Counter(j["status"] for j in jobs)
        self.errors = sorted(j["id"] for j in jobs if j["status"] == "error")
        self.tags = sorted({j["tag"] for j in jobs if j["tag"]})
        self.ended = [j["id"] for j in jobs if j["status"] in ("finished", "error")]

    def tasks_of(self, job_id: str) -> int:
        return len(self.jobs[job_id]["tasks"])

    def tasks_by_status_of_failed_jobs(self) -> list[tuple[str, int]]:
        counts = Counter(t["status"] for j in self.jobs.values() if j["status"] == "error" for t in j["tasks"])
        return sorted(counts.items())

    def per_tag(self, tag: str) -> list[tuple[str, int]]:
        return sorted((j["id"], len(j["tasks"])) for j in self.jobs.values() if j["tag"] == tag)


@dataclass
class Tally:
    statements: int = 0
    requests: int = 0
    wrong: int = 0
    explained: Counter[str] = field(default_factory=Counter)
    unexplained: Counter[str] = field(default_factory=Counter)
    examples: list[str] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def add(self, requests: int, wrong: bool = False, explained: str | None = None, unexplained: str | None = None) -> None:
        with self.lock:
            self.statements += 1
            self.requests += requests
            self.wrong += wrong
            if explained:
                self.explained[explained] += 1
            if unexplained:
                self.unexplained[unexplained] += 1
                if len(self.examples) < 10:
                    self.examples.append(unexplained)


EXPLAINED_READ = (apidriver.APIUnavailableError, apidriver.RateLimitError)


class Worker:
    def __init__(self, number: int, root: str, truth: Truth, tally: Tally, args: argparse.Namespace, stop: threading.Event) -> None:
        self.number = number
        self.root = root
        self.truth = truth
        self.tally = tally
        self.args = args
        self.stop = stop
        self.rng = random.Random(number)
        self.conn: apidriver.Connection | None = None
        self.cycles = 0
        self.writes = 0

    def connect(self) -> apidriver.Connection:
        return apidriver.connect(
            APIKey=KEY, BaseURL=self.root, Timeout=self.args.timeout, MaxRetries=4, PageSize=self.args.page_size, WaitTimeout=30
        )

    def run(self) -> None:
        done = 0
        while not self.stop.is_set():
            if self.conn is None or done % 50 == 0:
                if self.conn is not None:
                    self.cycles += 1
                    if self.cycles % 2:
                        self.conn.close()
                    # else: dropped without close(): the garbage collector must release it
                self.conn = self.connect()
            self.one(self.conn)
            done += 1
        if self.conn is not None:
            self.conn.close()
            self.conn = None

    def one(self, conn: apidriver.Connection) -> None:
        pick = self.rng.random()
        truth = self.truth
        if pick < 0.15:
            self.read(conn, "SELECT count(*) FROM Jobs WHERE status = 'finished'", (), [(truth.by_status["finished"],)])
        elif pick < 0.30:
            self.read(conn, "SELECT id FROM Jobs WHERE status = 'error' ORDER BY id", (), [(i,) for i in truth.errors])
        elif pick < 0.45:
            job_id = self.rng.choice(truth.ids)
            job = truth.jobs[job_id]
            self.read(conn, "SELECT id, status, tag FROM Jobs WHERE id = ?", (job_id,), [(job_id, job["status"], job["tag"])])
        elif pick < 0.55:
            job_id = self.rng.choice(truth.ids)
            self.read(conn, "SELECT count(*) FROM Tasks WHERE job_id = ?", (job_id,), [(truth.tasks_of(job_id),)])
        elif pick < 0.65:
            self.read(
                conn,
                "SELECT t.status, count(*) FROM Jobs j JOIN Tasks t ON t.job_id = j.id WHERE j.status = 'error' "
                "GROUP BY t.status ORDER BY t.status",
                (),
                truth.tasks_by_status_of_failed_jobs(),
            )
        elif pick < 0.72:
            tag = self.rng.choice(truth.tags)
            self.read(
                conn,
                "SELECT j.id, count(t.id) FROM Jobs j LEFT JOIN Tasks t ON t.job_id = j.id WHERE j.tag = ? GROUP BY j.id ORDER BY j.id",
                (tag,),
                truth.per_tag(tag),
            )
        elif pick < 0.78:
            job_id = self.rng.choice(truth.ended)
            self.read(conn, "SELECT id, status FROM WaitJob(?)", (job_id,), [(job_id, truth.jobs[job_id]["status"])])
        elif pick < 0.80:
            self.cancelled_scan(conn)
        else:
            self.write_cycle(conn)

    def read(self, conn: apidriver.Connection, sql: str, params: tuple[Any, ...], expected: list[tuple[Any, ...]]) -> None:
        cur = conn.cursor()
        try:
            rows = cur.execute(sql, params).fetchall()
        except EXPLAINED_READ as error:
            self.tally.add(len(cur.requests), explained=type(error).__name__)
            return
        except apidriver.Error as error:
            self.tally.add(len(cur.requests), unexplained=f"{type(error).__name__}: {error}"[:300])
            return
        wrong = rows != expected
        self.tally.add(len(cur.requests), wrong=wrong)
        if wrong and len(self.tally.examples) < 10:
            self.tally.examples.append(f"wrong result for {sql} {params}: {rows[:3]} != {expected[:3]}")

    def cancelled_scan(self, conn: apidriver.Connection) -> None:
        cur = conn.cursor()
        timer = threading.Timer(self.rng.uniform(0.0, 0.1), cur.cancel)
        timer.start()
        try:
            rows = cur.execute("SELECT id FROM Jobs WHERE status = 'error' ORDER BY id").fetchall()
        except apidriver.QueryCancelledError:
            self.tally.add(len(cur.requests), explained="QueryCancelledError (our own cancel)")
            return
        except EXPLAINED_READ as error:
            self.tally.add(len(cur.requests), explained=type(error).__name__)
            return
        except apidriver.Error as error:
            self.tally.add(len(cur.requests), unexplained=f"{type(error).__name__}: {error}"[:300])
            return
        finally:
            timer.cancel()
        self.tally.add(len(cur.requests), wrong=rows != [(i,) for i in self.truth.errors])

    def count_tag(self, conn: apidriver.Connection, tag: str) -> list[str] | None:
        """Ids of jobs with ``tag`` (None if the lookup itself kept failing)."""
        for _ in range(5):
            cur = conn.cursor()
            try:
                rows = cur.execute("SELECT id FROM Jobs WHERE tag = ?", (tag,)).fetchall()
            except EXPLAINED_READ as error:
                self.tally.add(len(cur.requests), explained=type(error).__name__)
                continue
            self.tally.add(len(cur.requests))
            return [r[0] for r in rows]
        return None

    def write_cycle(self, conn: apidriver.Connection) -> None:
        self.writes += 1
        tag = f"soak-{self.number}-{self.writes}"
        cur = conn.cursor()
        try:
            (job_id,) = cur.execute("INSERT INTO Jobs (tag, tasks) VALUES (?, ?) RETURNING id", (tag, TASKS)).fetchone()
            self.tally.add(len(cur.requests))
        except apidriver.AmbiguousWriteError:
            self.tally.add(len(cur.requests), explained="AmbiguousWriteError (resolved by tag)")
            job_id = None
        except apidriver.RateLimitError:
            self.tally.add(len(cur.requests), explained="RateLimitError")
            return
        except apidriver.Error as error:
            self.tally.add(len(cur.requests), unexplained=f"INSERT {type(error).__name__}: {error}"[:300])
            return
        found = self.count_tag(conn, tag)
        if found is None:
            return
        if job_id is not None and found != [job_id]:
            self.tally.add(0, wrong=True)
            self.tally.examples.append(f"job {job_id} ({tag}) not found after INSERT: {found}")
        if len(found) > 1:
            self.tally.add(0, wrong=True)  # a POST carried out twice
            self.tally.examples.append(f"{tag} created {len(found)} times")
        for existing in found:
            cur = conn.cursor()
            try:
                cur.execute("DELETE FROM Jobs WHERE id = ?", (existing,))
                self.tally.add(len(cur.requests), wrong=cur.rowcount != 1)
            except EXPLAINED_READ as error:
                self.tally.add(len(cur.requests), explained=f"{type(error).__name__} (DELETE)")
            except apidriver.Error as error:
                self.tally.add(len(cur.requests), unexplained=f"DELETE {type(error).__name__}: {error}"[:300])
        left = self.count_tag(conn, tag)
        if left:
            # a DELETE that kept failing leaves the job: delete it again (explained above), else it is wrong
            cur = conn.cursor()
            try:
                cur.execute("DELETE FROM Jobs WHERE tag = ?", (tag,))
                self.tally.add(len(cur.requests))
            except apidriver.Error as error:
                self.tally.add(len(cur.requests), explained=f"{type(error).__name__} (cleanup)")


def faults(root: str, rate: float, timeout: float) -> None:
    kinds: list[dict[str, Any]] = [{"kind": k} for k in ("500", "502", "503", "429", "drop", "malformed")]
    kinds += [{"kind": "stall", "stall_seconds": timeout / 3}, {"kind": "stall", "stall_seconds": timeout * 1.5}]
    each = 1 - (1 - rate) ** (1 / len(kinds))  # independent draws that add up to ``rate``
    specs = [{**k, "rate": each, "retry_after": 0.2} for k in kinds]
    httpx.post(root + "/_emulator/faults", json=specs).raise_for_status()


def served(root: str) -> tuple[int, Counter[str]]:
    """Requests the emulator answered since the last call, and the faults among them (the log is then cleared)."""
    log = httpx.get(root + "/_emulator/requests", timeout=60).json()
    httpx.delete(root + "/_emulator/requests")
    return len(log), Counter(r["fault"] for r in log if r["fault"])


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--latency-ms", type=float, default=20)
    parser.add_argument("--fault-rate", type=float, default=0.05)
    parser.add_argument("--jobs", type=int, default=200)
    parser.add_argument("--page-size", type=int, default=25)
    parser.add_argument("--timeout", type=float, default=2.0)
    parser.add_argument("--report-every", type=float, default=60)
    args = parser.parse_args(argv)

    gc.collect()
    start = (rss_mib(), threading.active_count(), fds())
    start_blocks = sys.getallocatedblocks()
    with emulator(args) as root:
        truth = Truth(root)
        faults(root, args.fault_rate, args.timeout)
        served(root)
        print(
            f"Soak: {args.threads} threads, {args.seconds:.0f} s, {args.latency_ms:g} ms latency, {args.fault_rate:.1%} faults "
            f"(500, 502, 503, 429, drop, malformed, stall {args.timeout / 3:.2g} s and {args.timeout * 1.5:.2g} s; Timeout "
            f"{args.timeout:g} s), {len(truth.ids)} seeded jobs, PageSize {args.page_size}"
        )
        print(f"start: RSS {start[0]:.1f} MiB, Python blocks {start_blocks}, threads {start[1]}, fds {start[2]}")
        print(
            f"{'min':>4} {'statements':>10} {'explained':>9} {'unexplained':>11} {'wrong':>5} {'requests':>8} {'served':>7} "
            f"{'faults':>6} {'RSS MiB':>8} {'py blocks':>9} {'threads':>7} {'fds':>4}"
        )
        tally = Tally()
        stop = threading.Event()
        workers = [Worker(n, root, truth, tally, args, stop) for n in range(args.threads)]
        threads = [threading.Thread(target=w.run, name=f"soak-{w.number}") for w in workers]
        began = time.monotonic()
        for t in threads:
            t.start()
        total_served, total_faults = 0, Counter[str]()
        minute = 0
        while time.monotonic() - began < args.seconds:
            time.sleep(min(args.report_every, max(0.0, args.seconds - (time.monotonic() - began))))
            minute += 1
            count, kinds = served(root)
            total_served += count
            total_faults += kinds
            with tally.lock:
                print(
                    f"{minute:>4} {tally.statements:>10} {sum(tally.explained.values()):>9} {sum(tally.unexplained.values()):>11} "
                    f"{tally.wrong:>5} {tally.requests:>8} {total_served:>7} {sum(total_faults.values()):>6} {rss_mib():>8.1f} "
                    f"{sys.getallocatedblocks():>9} {threading.active_count():>7} {fds():>4}",
                    flush=True,
                )
        stop.set()
        for t in threads:
            t.join()
        workers.clear()
        closed_at = time.monotonic()
        # Requests still under way (a stalled page fetched ahead) end with their Timeout; idle workers after 1 s.
        while time.monotonic() - closed_at < args.timeout * 2 + 2:
            gc.collect()
            if threading.active_count() <= start[1] and fds() <= start[2] + 1:  # +1: the emulator's stdout pipe
                break
            time.sleep(0.1)
        count, kinds = served(root)
        total_served += count
        total_faults += kinds
        end = (rss_mib(), threading.active_count(), fds())
    print(f"\nend (all connections closed or dropped, {time.monotonic() - closed_at:.1f} s later): RSS {end[0]:.1f} MiB, threads {end[1]}, fds {end[2]} (fds include the emulator's pipe until it stops)")
    print(f"statements {tally.statements} ({tally.statements / args.seconds:.1f}/s), requests sent {tally.requests}, answered by the emulator {total_served}")
    print(f"faults injected: {dict(sorted(total_faults.items()))}")
    print(f"explained errors: {dict(tally.explained)}")
    print(f"unexplained errors: {dict(tally.unexplained) or 0}")
    print(f"wrong results: {tally.wrong}")
    for example in tally.examples:
        print(f"  {example}")
    gc.collect()
    print(
        f"after the emulator stopped: threads {threading.active_count()}, fds {fds()}, RSS {rss_mib():.1f} MiB, "
        f"Python blocks {sys.getallocatedblocks()}, RSS after returning the C allocator's free memory {trimmed_rss():.1f} MiB"
    )
    ok = tally.wrong == 0 and not tally.unexplained and threading.active_count() <= start[1] and fds() <= start[2]
    print("OK" if ok else "NOT OK")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
