"""docs/history.md runs: syncs into SQLite and PostgreSQL, the cache through the driver, psql, the
story of time in the emulator; and the plain-tool queries of "Reading the replica with other tools",
run with Python's sqlite3 on the synced file, agree with the driver where the page says they do."""

from __future__ import annotations

import datetime as dt
import json
import re
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import psycopg
import pytest

import apidriver
from apidriver.emulator import Emulator
from apidriver.values import format_timestamp

from ..conftest import CONVERSION_TASKS, raw_list
from ..emulator.support import client, create_job, wait_job
from .harness import Block, DocRun, free_port, start_emulator

DOC = "docs/history.md"
UTC = dt.UTC


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    emulator = start_emulator(jobs=40, seed=6)
    with client(emulator) as api:  # the reader's account has a tag PostgreSQL cannot hold as it is
        wait_job(emulator, create_job(api, tag="nul\x00byte", tasks=CONVERSION_TASKS)["id"])
    emulator.backend.user.credits = 2**64 - 1  # and a number SQLite cannot (see "Values a database cannot hold")
    yield emulator
    emulator.stop()


def test_every_block_of_the_history_page(emulator: Emulator, tmp_path: Path, pg_database: Any) -> None:
    jobs = raw_list(emulator, "/jobs")
    created = sorted(dt.datetime.fromisoformat(j["created_at"]).astimezone(UTC) for j in jobs)
    middle = created[len(created) // 2] - dt.timedelta(seconds=1)  # a moment inside the account's day
    port = free_port()
    substitutions = {
        "2026-12-04T10:00:00Z": middle.strftime("%Y-%m-%dT%H:%M:%SZ"),
        "2026-12-04 10:00:00": middle.strftime("%Y-%m-%d %H:%M:%S"),
        "0.0.0.0:8787": f"127.0.0.1:{free_port()}",
        "127.0.0.1:8000": f"127.0.0.1:{port}",
        "localhost:8000": f"localhost:{port}",
        "--port 8000": f"--port {port}",
        "/srv/history.sqlite": "history.sqlite",
    }
    not_run: dict[str, str] = {}
    if pg_database is None:
        pg_url = f"sqlite:///{tmp_path / 'postgresql-stand-in.sqlite'}"
        not_run["-- PostgreSQL: which rows keep exact values"] = not_run["psql -h db.example.com"] = "APIDRIVER_TEST_POSTGRES=0"
    else:
        server, name = pg_database
        pg_url = server.url(name)
        substitutions["-h db.example.com -d history"] = f"-h 127.0.0.1 -p {server.port} -U apidriver -d {name}"
    substitutions["postgresql+psycopg://me@db.example.com/history"] = substitutions["postgresql+psycopg://me@db/history"] = pg_url
    def sql(block: Block, statement: str) -> Any:
        if "-- PostgreSQL" in block.code:
            server, name = pg_database
            conn: Any = psycopg.connect(f"host=127.0.0.1 port={server.port} user=apidriver dbname={name}")
        elif "Timestamps are UTC text" in block.code:  # other tools: plain SQLite on the file
            conn = sqlite3.connect(tmp_path / "cloudconvert.sqlite")
        elif "live.Jobs" in statement:
            conn = apidriver.connect(f"APIKey={emulator.api_key};BaseURL={emulator.base_url};AutoCache=true;CacheLocation=cloudconvert.sqlite")
        elif "cache.Jobs" in statement:
            conn = apidriver.connect(f"APIKey={emulator.api_key};BaseURL={emulator.base_url};CacheLocation=cloudconvert.sqlite")
        else:  # REPLICATE, CACHE: a cache of their own
            conn = apidriver.connect(f"APIKey={emulator.api_key};BaseURL={emulator.base_url};CacheLocation=cache.sqlite")
        return conn

    with DocRun(DOC, emulator, tmp_path, substitutions=substitutions, not_run=not_run, sql=sql) as run:
        run.run()
        check(run, emulator, tmp_path, middle, pg_database is not None)


def check(run: DocRun, emulator: Emulator, tmp_path: Path, middle: dt.datetime, postgresql: bool) -> None:
    """What the page says its blocks print."""
    assert len(run.ran) == len(run.outcomes) - (0 if postgresql else 2)

    syncs = run.outcome("apidriver sync --full")
    assert syncs.command("apidriver sync").stdout.startswith(f"Replica: sqlite:///{tmp_path}/cloudconvert.sqlite")
    assert syncs.command("apidriver sync --follow --interval").stdout.endswith("Stopped.\n")
    assert syncs.command("apidriver sync --follow --listen").stdout.endswith("Stopped (webhook deleted).\n")
    report = run.namespace["report"]  # the same database as the command's --to: nothing new since
    assert (report["Jobs"].inserted, report["Jobs"].updated, report["Jobs"].removed) == (0, 0, 0) and 0 < report.requests < 10

    if postgresql:  # the tag with U+0000: the column holds U+FFFD, _exact the tag as it is
        ((_, rows, _),) = run.outcome("-- PostgreSQL: which rows keep exact values").results
        assert [(r[1], json.loads(r[2])["tag"]) for r in rows] == [("nul\ufffdbyte", "nul\x00byte")]
        (psql,) = run.outcome("psql -h").commands
        assert psql.stdout.split()[:3] == ["count", "-------", "0"]  # nothing forgotten yet

    # Other tools: the T...Z text misses the rows of its day; the stored form and datetime() find
    # them, as many as the driver finds with the T...Z text.
    results = [rows for _, rows, _ in run.outcome("Timestamps are UTC text").results]
    (wrong,), (stored,), (normalised,) = results[0][0], results[1][0], results[2][0]
    offline = apidriver.connect(Offline=True, CacheLocation=str(tmp_path / "cloudconvert.sqlite"))
    try:
        iso = middle.strftime("%Y-%m-%dT%H:%M:%SZ")
        (driver,) = offline.cursor().execute("SELECT count(*) FROM Jobs WHERE created_at > ?", (iso,)).fetchone()
        (jobs,) = offline.cursor().execute("SELECT count(*) FROM Jobs").fetchone()
        times = [format_timestamp(t) for (t,) in offline.cursor().execute("SELECT created_at FROM Jobs")]
    finally:
        offline.close()
    # The T...Z text compares as text: a row of its own day is after it only on a later day (the
    # account's jobs span the day before and the day of the run when it runs soon after midnight).
    as_text = sum(1 for t in times if t > iso)
    assert wrong == as_text < driver == stored == normalised
    assert sum(n for _, n in results[3]) == jobs  # by day
    assert dict(results[4]) == {None: jobs}  # nothing forgotten: every row live
    assert all(ended is not None and removed is None for _, ended, removed in results[5])
    assert results[6] and all(file for _, file in results[6])
    assert results[7] == [("Users", emulator.backend.user.id, '{"credits":18446744073709551615}')]

    # Time in the emulator: 30 hours later only the jobs waiting for an upload are live; all 100 kept.
    story = run.outcome("curl -s -X POST")
    (live,) = numbers(story.command('apidriver query "SELECT count(*) FROM Jobs"').stdout)
    kept, gone = numbers(story.command('apidriver query "SELECT count(*), count(_removed_at)').stdout)
    reasons = dict(line.split("|") for line in story.command("sqlite3 cloudconvert.sqlite").stdout.split())
    assert 0 < live < 100 and (kept, gone) == (100, 100 - live)
    assert reasons == {"": str(live), "expired": str(gone)}


def numbers(table: str) -> list[int]:
    """The numbers of the one row of a result printed as a table."""
    (row,) = [line for line in table.splitlines() if re.fullmatch(r"[\s\d]+", line) and line.strip()]
    return [int(n) for n in row.split()]
