"""Complete scans: a sync reads every row that exists for the whole read, whatever is created or deleted
between two of its pages (the emulator's actions change the account right after a given request)."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest

import apidriver
from apidriver.emulator import Emulator
from apidriver.replica.report import SyncReport
from apidriver.replica.scan import window_plan

from ..conftest import connect_to
from .conftest import scalar

MakeEmulator = Callable[..., Emulator]
JOBS = 60
PAGE = 10


def windows_for(rows: int, size: int) -> int:
    """How many windows a scan of ``rows`` rows reads when nothing changes (the last one is short)."""
    index = 0
    while window_plan(size, index).end <= rows:
        index += 1
    return index + 1


def job_ids(emulator: Emulator) -> set[str]:
    return {j.id for j in emulator.backend.job_order}


def replica_ids(url: str) -> set[str]:
    import sqlalchemy as sa

    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return {r[0] for r in conn.execute(sa.text('SELECT id FROM "Jobs"'))}
    finally:
        engine.dispose()


def sync_jobs(emulator: Emulator, url: str, **properties: Any) -> SyncReport:
    conn = connect_to(emulator, **properties)
    try:
        return apidriver.sync(conn, to=url, tables="Jobs")
    finally:
        conn.close()


def touched(emulator: Emulator) -> set[str]:
    """Job ids the emulator's actions deleted or created."""
    return {job for action in emulator.actions() for job in action["jobs"]}


# What happens right after the n-th page: (do, which rows, how many), positions in the list, newest first.
CHANGES = {
    "delete the 5 newest": lambda n: [{"do": "delete_jobs", "offset": 0, "count": 5}],
    "delete 6 across the next page's start": lambda n: [{"do": "delete_jobs", "offset": max(0, window_plan(PAGE, n - 1).end - 3), "count": 6}],
    "delete the page just read": lambda n: [{"do": "delete_jobs", "offset": window_plan(PAGE, n - 1).start, "count": window_plan(PAGE, n - 1).size}],
    "delete 25 newest (more than any overlap)": lambda n: [{"do": "delete_jobs", "offset": 0, "count": 25}],
    "create 7": lambda n: [{"do": "create_jobs", "count": 7, "tag": "during"}],
    "create 4 and delete 4 newest older ones": lambda n: [{"do": "delete_jobs", "offset": 0, "count": 4}, {"do": "create_jobs", "count": 4, "tag": "during"}],
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_a_first_sync_reads_every_job_whatever_changes_between_two_pages(make_emulator: MakeEmulator, tmp_path: Path, change: str) -> None:
    pages = windows_for(JOBS, PAGE)
    for boundary in range(1, pages):  # after page 1, after page 2, ... before the last
        emu = make_emulator(jobs=JOBS, seed=3, rate_limit=0, task_seconds=600)
        before = job_ids(emu)
        for spec in CHANGES[change](boundary):
            emu.add_action(path="/v2/jobs", method="GET", after=boundary, **spec)
        url = f"sqlite:///{tmp_path / f'{boundary}.sqlite'}"
        report = sync_jobs(emu, url, PageSize=PAGE, MaxConcurrency=1)
        assert all(a["done"] for a in emu.actions()), (change, boundary)
        lived_through = before - touched(emu)  # existed for the whole read
        missing = lived_through - replica_ids(url)
        assert not missing, f"{change} after page {boundary}: {len(missing)} jobs never read"
        # Cost: the pages of the list, plus one page read again per shift an overlap could not absorb.
        assert report["Jobs"].requests <= pages + 2 + 2 * report["Jobs"].rereads, (change, boundary)
        # Re-reads grow with the shift a change makes, one page's worth at a time.
        assert report["Jobs"].rereads <= (4 if "25" in change else 2 if "just read" in change else 1), (change, boundary)


@pytest.mark.parametrize("change", ["delete the 5 newest", "delete 25 newest (more than any overlap)", "create 4 and delete 4 newest older ones"])
def test_pages_read_ahead_are_as_complete(make_emulator: MakeEmulator, tmp_path: Path, change: str) -> None:
    """Windows fetched concurrently (MaxConcurrency=4) prove completeness whatever order they were answered in."""
    for boundary in (1, 3):
        emu = make_emulator(jobs=JOBS, seed=4, rate_limit=0, task_seconds=600, latency_ms=5)
        before = job_ids(emu)
        for spec in CHANGES[change](boundary):
            emu.add_action(path="/v2/jobs", method="GET", after=boundary, **spec)
        url = f"sqlite:///{tmp_path / f'{boundary}.sqlite'}"
        sync_jobs(emu, url, PageSize=PAGE, MaxConcurrency=4)
        assert not (before - touched(emu)) - replica_ids(url), (change, boundary)


def test_the_issue_reproduction_600_jobs_5_newest_deleted_after_page_2(make_emulator: MakeEmulator, tmp_path: Path) -> None:
    """Issue #16: 600 jobs, one page at a time, the 5 newest deleted once page 2 is answered: the first
    sync used to insert 595 rows (5 jobs that still exist never read)."""
    emu = make_emulator(jobs=600, seed=1, rate_limit=0, task_seconds=600, latency_ms=2)
    before = job_ids(emu)
    emu.add_action(path="/v2/jobs", method="GET", after=2, do="delete_jobs", offset=0, count=5)
    url = f"sqlite:///{tmp_path / 'replica.sqlite'}"
    report = sync_jobs(emu, url, MaxConcurrency=1)
    deleted = touched(emu)
    assert len(deleted) == 5 and deleted <= replica_ids(url)  # read on page 1, before they went
    assert replica_ids(url) == before  # all 600: the 595 that live on among them
    assert report["Jobs"].inserted == 600 and report["Jobs"].rereads == 0
    assert report["Jobs"].requests == windows_for(600, 100) == 7  # 600 rows in windows of 86 to 100: 7 requests (6 plain pages)
    # The next sync finds the 5 gone, deleted by someone (they never ended: they cannot have expired).
    report = sync_jobs(emu, url, MaxConcurrency=1)
    assert report["Jobs"].removed == 5
    assert scalar(url, """SELECT count(*) FROM "Jobs" WHERE _removed_reason = 'deleted'""") == 5


def test_an_incremental_sync_reads_every_new_job_under_deletes(make_emulator: MakeEmulator, tmp_path: Path) -> None:
    """The head of an incremental sync (new jobs, newest first, down to the last sync's newest) is a
    complete scan too: the issue's second symptom (two incremental syncs still missing 4 jobs)."""
    emu = make_emulator(jobs=40, seed=2, rate_limit=0, task_seconds=600)
    url = f"sqlite:///{tmp_path / 'replica.sqlite'}"
    sync_jobs(emu, url, PageSize=PAGE, MaxConcurrency=1)
    created = []
    with httpx.Client(base_url=emu.api_url, headers={"Authorization": f"Bearer {emu.api_key}"}) as api:
        for i in range(35):
            response = api.post("/jobs", json={"tag": f"new-{i}", "tasks": {"a": {"operation": "import/raw", "file": "x", "filename": "x.txt"}}})
            created.append(response.json()["data"]["id"])
    for boundary in (1, 2):
        emu.add_action(path="/v2/jobs", method="GET", query="page", after=boundary, do="delete_jobs", offset=0, count=4)
    report = sync_jobs(emu, url, PageSize=PAGE, MaxConcurrency=1)
    lived_through = set(created) - touched(emu)
    assert len(lived_through) == 27 and lived_through <= replica_ids(url)
    assert report["Jobs"].requests <= 16  # the head (5 pages + 1 read again), the open jobs, the tail


def test_replicate_and_auto_cache_read_the_same_way(make_emulator: MakeEmulator, tmp_path: Path) -> None:
    emu = make_emulator(jobs=JOBS, seed=6, rate_limit=0, task_seconds=600)
    before = job_ids(emu)
    emu.add_action(path="/v2/jobs", method="GET", after=2, do="delete_jobs", offset=0, count=8)
    cache = tmp_path / "cache.sqlite"
    conn = connect_to(emu, CacheLocation=str(cache), PageSize=PAGE, MaxConcurrency=1)
    try:
        conn.cursor().execute("REPLICATE Jobs").fetchall()
    finally:
        conn.close()
    assert not (before - touched(emu)) - replica_ids(f"sqlite:///{cache}")
