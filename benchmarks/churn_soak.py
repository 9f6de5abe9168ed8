"""Churn soak: the history never loses a job, under churn, into SQLite or PostgreSQL (not a test).

Run: ``.venv/bin/python benchmarks/churn_soak.py --minutes 10 --backend sqlite`` (or
``--backend postgresql``: a throw-away server started as the tests start theirs,
or ``--postgres URL``). ``--minutes 0.5`` is a short run.

For N minutes, against an emulator in its own process (``--keep-history``:
it remembers every job it ever had), it:

- creates jobs that finish, jobs that fail and a few that wait forever for an
  upload; deletes random jobs (running or ended); retries ended tasks
  (re-opening their jobs); and moves the emulator's clock forward
  (``--advance-hours`` every ``--advance-every`` seconds), so that jobs expire
  24 emulator-hours after they end, many times over;
- runs ``apidriver.sync`` again and again in this process (``--sync-every``),
  while ``apidriver sync --follow --listen`` (another process) receives every
  webhook delivery and reconciles every ``--reconcile`` seconds, both into the
  same replica;
- checks every ``--check-every`` seconds that every job the API ever showed
  (in an answer or a delivery) is in the replica with the last state it
  showed, once that state is older than ``--lag`` seconds (the replica lags by
  design: one sync, one delivery);
- at the end (churn stopped, one last sync), that the replica equals the
  emulator's ground truth: every job it ever had is there; a live one in its
  current state; a deleted or expired one in the last state shown, marked
  gone, with the reason the emulator gives (``deleted`` / ``expired``).

Before each clock move, it waits for a sync that began after its last
delete: a job deleted and not yet seen gone when 24 hours pass at once would
be found gone after its retention, and the API's list cannot tell that from
an expiry (such cases are counted as "undecidable", apart).

It prints the figures and a JSON line; the exit status is 1 if any job is
missing or in a wrong state at the end.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import httpx
import sqlalchemy as sa

import apidriver
from apidriver.replica.target import Target
from apidriver.values import api_timestamp
from emulated import emulator_process

ROOT = Path(__file__).resolve().parents[1]
KEY = "soak"
RETENTION = dt.timedelta(hours=24)
FINISHING = {
    "get": {"operation": "import/raw", "file": "churn", "filename": "churn.txt"},
    "out": {"operation": "export/url", "input": "get"},
}
FAILING = {"get": {"operation": "import/url", "url": "https://files.example.invalid/missing.pdf"}}
WAITING = {"upload": {"operation": "import/upload"}}


def signature(job: dict[str, Any] | None) -> tuple[Any, ...] | None:
    """What must match: status, end, and each task's id and status."""
    if job is None:
        return None
    tasks = job.get("tasks")
    if isinstance(tasks, str):
        tasks = json.loads(tasks)
    return (
        job.get("status"),
        api_timestamp(job.get("ended_at")),
        None if tasks is None else tuple(sorted((t["id"], t["status"]) for t in tasks)),
    )


class Soak:
    def __init__(self, args: argparse.Namespace, root: str, url: str) -> None:
        self.args = args
        self.root = root
        self.url = url
        self.connection = f"APIKey={KEY};BaseURL={root}"
        self.api = httpx.Client(base_url=root + "/v2", headers={"Authorization": f"Bearer {KEY}"}, timeout=30)
        self.control = httpx.Client(base_url=root + "/_emulator", timeout=60)
        self.rng = random.Random(args.seed)
        self.stop = threading.Event()
        self.syncs = 0
        self.sync_errors: list[str] = []
        self.sync_started = 0.0  # local time the running (or last) sync of this process began
        self.sync_finished = 0.0  # ... and when the last one ended
        self.last_delete = 0.0
        self.counts = {"created": 0, "deleted": 0, "retried": 0, "clock moves": 0, "refused": 0}
        self.truth: dict[str, Any] = {}
        self.since: dict[str, tuple[Any, float]] = {}  # job → (expected, local time first expected)
        self.flagged_missing: set[str] = set()
        self.flagged_wrong: set[str] = set()
        self.details: list[dict[str, Any]] = []  # the first jobs a check found missing or wrong, as it found them
        self.checks = 0
        self.follower_lines: list[str] = []
        self.spec = __import__("apidriver.profiles.cloudconvert", fromlist=["profile"]).profile.table("Jobs")

    # -- the processes ----------------------------------------------------------------------------

    @contextmanager
    def follower(self) -> Iterator[subprocess.Popen[str]]:
        sys.path.insert(0, str(ROOT))
        from tests.history.postgres import free_port

        port = free_port()
        hook = f"http://127.0.0.1:{port}/hook"
        command = [sys.executable, "-m", "apidriver.cli", "sync", "--follow", "--to", self.url, "--connect", self.connection]
        command += ["--listen", f"127.0.0.1:{port}", "--public-url", hook, "--interval", str(self.args.reconcile)]
        process = subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env={**os.environ, "NO_COLOR": "1"})

        def read() -> None:
            assert process.stdout is not None
            for line in process.stdout:
                self.follower_lines.append(line.rstrip())

        threading.Thread(target=read, daemon=True).start()
        try:
            deadline = time.monotonic() + 120
            while not any(w["url"] == hook for w in self.api.get("/users/me/webhooks").json()["data"]):
                if process.poll() is not None or time.monotonic() > deadline:
                    raise RuntimeError("the follower did not start:\n" + "\n".join(self.follower_lines[-20:]))
                time.sleep(0.2)
            yield process
        finally:
            process.send_signal(signal.SIGTERM)
            try:
                process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()

    def sync_loop(self) -> None:
        while not self.stop.is_set():
            self.sync_once()
            self.stop.wait(self.args.sync_every)

    def sync_once(self) -> None:
        self.sync_started = time.time()
        try:
            apidriver.sync(self.connection, to=self.url)
            self.syncs += 1
        except apidriver.Error as error:
            self.sync_errors.append(f"{type(error).__name__}: {error}")
        self.sync_finished = time.time()

    # -- churn -----------------------------------------------------------------------------------

    def live_jobs(self) -> list[dict[str, Any]]:
        return [j["job"] for j in self.truth.get("jobs", [])]

    def churn_once(self) -> None:
        roll = self.rng.random()
        live = self.live_jobs()
        if roll < 0.45 or not live:
            tasks = FINISHING if roll < 0.30 else FAILING if roll < 0.43 else WAITING
            response = self.api.post("/jobs", json={"tag": f"churn-{self.counts['created']}", "tasks": tasks})
            if response.status_code == 201:
                self.counts["created"] += 1
            else:
                self.counts["refused"] += 1
        elif roll < 0.75:
            job = self.rng.choice(live)
            self.last_delete = time.time()
            if self.api.delete(f"/jobs/{job['id']}").status_code == 204:
                self.counts["deleted"] += 1
        else:
            ended = [t for j in live if j["status"] in ("finished", "error") for t in j.get("tasks") or [] if t["status"] in ("finished", "error")]
            if ended and self.api.post(f"/tasks/{self.rng.choice(ended)['id']}/retry").status_code == 201:
                self.counts["retried"] += 1

    def advance_clock(self) -> None:
        """Move the clock once a sync that began after the last delete has ended (see the docstring)."""
        deadline = time.monotonic() + 120
        while not (self.sync_finished > self.sync_started > self.last_delete) and time.monotonic() < deadline:
            time.sleep(0.05)
        self.control.post("/clock", json={"advance": self.args.advance_hours * 3600}).raise_for_status()
        self.counts["clock moves"] += 1

    # -- checking ---------------------------------------------------------------------------------------

    def replica(self) -> dict[str, dict[str, Any]]:
        target = Target(self.url, [self.spec])
        try:
            with target.read("checking") as conn:
                table = target.table("Jobs")
                rows = conn.execute(
                    sa.select(table.c.id, table.c.status, table.c.ended_at, table.c.tasks, table.c._removed_at, table.c._removed_reason, table.c._exact)
                ).all()
        finally:
            target.close()
        out = {}
        for row in rows:
            exact = Target.exact_values(row._exact)
            out[row.id] = {
                "status": row.status,
                "ended_at": target.from_target("TIMESTAMP", row.ended_at),
                "tasks": exact.get("tasks", target.from_target("JSON", row.tasks)),
                "removed_at": None if row._removed_at is None else target.from_target("TIMESTAMP", row._removed_at),
                "reason": row._removed_reason,
            }
        return out

    def expectations(self) -> dict[str, tuple[Any, ...]]:
        """Per job the API ever showed: (signature of the last state shown, removal reason or None, ended_at)."""
        out = {}
        for entry in self.truth["jobs"]:
            if entry["shown"] is not None:
                out[entry["job"]["id"]] = (signature(entry["shown"]), None, None)
        for entry in self.truth["removed"]:
            if entry["shown"] is not None:
                out[entry["job"]["id"]] = (signature(entry["shown"]), entry["reason"], api_timestamp(entry["job"].get("ended_at")))
        return out

    def compare(self, expected: dict[str, tuple[Any, ...]], replica: dict[str, dict[str, Any]], settled: set[str]) -> tuple[set[str], set[str], set[str]]:
        """The jobs of ``settled`` missing from the replica, in a wrong state, and gone for an undecidable reason."""
        missing, wrong, undecidable = set(), set(), set()
        for job in settled:
            state, reason, ended = expected[job]
            row = replica.get(job)
            if row is None:
                missing.add(job)
                continue
            if signature(row) != state:
                wrong.add(job)
            elif reason is None and row["removed_at"] is not None:
                wrong.add(job)
            elif reason is not None and row["reason"] != reason:
                found_late = ended is not None and row["removed_at"] is not None and (
                    dt.datetime.fromisoformat(row["removed_at"]).replace(tzinfo=dt.timezone.utc)
                    >= dt.datetime.fromisoformat(ended).replace(tzinfo=dt.timezone.utc) + RETENTION - dt.timedelta(seconds=1)
                )
                (undecidable if reason == "deleted" and row["reason"] == "expired" and found_late else wrong).add(job)
        return missing, wrong, undecidable

    def check(self) -> None:
        """Every job shown longer than --lag seconds ago is in the replica with the last state shown."""
        self.truth = self.control.get("/history").json()
        replica = self.replica()
        now = time.time()
        expected = self.expectations()
        settled = set()
        for job, want in expected.items():
            before = self.since.get(job)
            if before is None or before[0] != want:
                self.since[job] = (want, now)
            elif now - before[1] > self.args.lag:
                settled.add(job)
        missing, wrong, _ = self.compare(expected, replica, settled)
        for job in sorted((missing | wrong) - self.flagged_missing - self.flagged_wrong)[:3]:
            self.details.append({"job": job, "expected": expected[job], "replica": replica.get(job), "for seconds": round(now - self.since[job][1], 1)})
        self.flagged_missing |= missing
        self.flagged_wrong |= wrong
        self.checks += 1

    # -- the run --------------------------------------------------------------------------------------

    def run(self) -> dict[str, Any]:
        started = time.monotonic()
        apidriver.sync(self.connection, to=self.url)  # the seeded account, before any churn
        self.truth = self.control.get("/history").json()
        with self.follower():
            syncer = threading.Thread(target=self.sync_loop, daemon=True)
            syncer.start()
            deadline = time.monotonic() + self.args.minutes * 60
            next_check = time.monotonic() + self.args.check_every
            next_clock = time.monotonic() + self.args.advance_every
            while time.monotonic() < deadline:
                self.churn_once()
                if time.monotonic() >= next_clock:
                    self.advance_clock()
                    next_clock = time.monotonic() + self.args.advance_every
                if time.monotonic() >= next_check:
                    self.check()
                    next_check = time.monotonic() + self.args.check_every
                time.sleep(self.rng.expovariate(self.args.rate))
            # Churn stops; let deliveries land, then one last sync reads what is left.
            self.stop.set()
            syncer.join(300)
            time.sleep(3)
            self.sync_once()
            time.sleep(2)
            self.check()
        truth = self.truth
        replica = self.replica()
        expected = self.expectations()
        ever = {e["job"]["id"] for e in truth["jobs"]} | {e["job"]["id"] for e in truth["removed"]}
        never_shown = ever - set(expected)
        missing, wrong, undecidable = self.compare(expected, replica, set(expected))
        # The live jobs: the replica holds their current state (the last sync showed them all).
        for entry in truth["jobs"]:
            row = replica.get(entry["job"]["id"])
            if row is not None and signature(row) != signature(entry["job"]):
                wrong.add(entry["job"]["id"])
        deliveries = sum(1 for line in self.follower_lines if " written in " in line)
        reconciles = sum(1 for line in self.follower_lines if " sync: " in line)
        return {
            "backend": self.args.backend,
            "minutes": round((time.monotonic() - started) / 60, 2),
            "jobs ever": len(ever),
            "jobs created": self.counts["created"],
            "jobs deleted": sum(1 for e in truth["removed"] if e["reason"] == "deleted"),
            "jobs expired": sum(1 for e in truth["removed"] if e["reason"] == "expired"),
            "tasks retried": self.counts["retried"],
            "clock moves": self.counts["clock moves"],
            "syncs run": self.syncs + 1 + reconciles,
            "sync errors": len(self.sync_errors),
            "deliveries written": deliveries,
            "deliveries refused": sum(1 for line in self.follower_lines if "delivery refused" in line),
            "checks": self.checks,
            "missing at some check (past the lag)": len(self.flagged_missing),
            "wrong at some check (past the lag)": len(self.flagged_wrong),
            "never shown by the API": len(never_shown),
            "jobs missing": len(missing),
            "rows in a wrong state": len(wrong),
            "undecidable removal reasons": len(undecidable),
            "replica rows": len(replica),
            "examples": {"missing": sorted(missing)[:3], "wrong": sorted(wrong)[:3], "errors": self.sync_errors[:3], "checks": self.details[:6]},
        }


@contextmanager
def target_url(args: argparse.Namespace) -> Iterator[str]:
    if args.backend == "sqlite":
        with tempfile.TemporaryDirectory(prefix="churn-soak-") as directory:
            yield f"sqlite:///{directory}/replica.sqlite"
        return
    if args.postgres:
        yield args.postgres
        return
    sys.path.insert(0, str(ROOT))
    from tests.history.postgres import start_server

    server = start_server()
    try:
        yield server.url(server.create_database())
    finally:
        server.stop()


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--minutes", type=float, default=1.0)
    parser.add_argument("--backend", choices=("sqlite", "postgresql"), default="sqlite")
    parser.add_argument("--postgres", metavar="URL", help="a PostgreSQL database to use (default: a throw-away server)")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--jobs", type=int, default=150, help="jobs seeded before the churn")
    parser.add_argument("--rate", type=float, default=4.0, help="churn operations a second (on average)")
    parser.add_argument("--sync-every", type=float, default=3.0, help="seconds between this process's syncs")
    parser.add_argument("--reconcile", type=float, default=15.0, help="--interval of the follower")
    parser.add_argument("--advance-every", type=float, default=20.0, help="seconds between clock moves")
    parser.add_argument("--advance-hours", type=float, default=4.0, help="hours the clock moves each time")
    parser.add_argument("--check-every", type=float, default=10.0)
    parser.add_argument("--lag", type=float, default=20.0, help="seconds a state may take to reach the replica")
    args = parser.parse_args()
    emulator_args = ["--jobs", str(args.jobs), "--seed", str(args.seed), "--task-seconds", "2", "--latency-ms", "2", "--keep-history"]
    with emulator_process(*emulator_args, api_key=KEY) as root, target_url(args) as url:
        figures = Soak(args, root, url).run()
    width = max(len(k) for k in figures)
    for name, value in figures.items():
        if name != "examples":
            print(f"{name:<{width}}  {value}")
    print(json.dumps(figures, default=str))
    return 1 if figures["jobs missing"] or figures["rows in a wrong state"] else 0


if __name__ == "__main__":
    sys.exit(main())
