"""Fewest requests and no sequential N+1: page-count hints, the look-ahead for
nested-loop lookups, the result cache and rate-limit pacing. Figures (wall
times, memory) are measured by ``python -m apidriver.bench``, not here; the
few time bounds below are loose checks that requests overlapped at all."""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterator

import httpx
import pytest

import apidriver
from apidriver.emulator import Emulator

from .conftest import connect_to, raw_list


def settle(emu: Emulator, *connections: apidriver.Connection) -> None:
    """Let requests still in flight (pages fetched ahead) land, then clear the log."""
    for connection in connections:
        connection.engine.wait_idle()
    emu.clear_requests()


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    emulator = Emulator(jobs=250, seed=8, task_seconds=0.05).start()
    yield emulator
    emulator.stop()


def test_a_list_read_again_sends_exactly_its_pages(emu: Emulator) -> None:
    with connect_to(emu, PageSize=20) as conn:
        cur = conn.cursor()
        settle(emu, conn)
        assert cur.execute("SELECT count(*) FROM Jobs").fetchone() == (250,)
        conn.engine.wait_idle()
        first = len(emu.requests())
        assert 13 <= first <= 13 + 8  # 13 pages, plus at most MaxConcurrency fetched ahead
        settle(emu, conn)
        assert cur.execute("SELECT count(*) FROM Jobs").fetchone() == (250,)
        second = sorted(int(dict(r["params"])["page"]) for r in emu.requests())
        assert second == list(range(1, 14))


def test_a_list_that_grew_is_still_read_to_the_end(make_emulator: Callable[..., Emulator]) -> None:
    small = make_emulator(jobs=30, seed=1)
    with connect_to(small, PageSize=10) as conn:
        cur = conn.cursor()
        assert cur.execute("SELECT count(*) FROM Jobs").fetchone() == (30,)
        tasks = {"t": {"operation": "import/url", "url": "https://example.com/a.txt"}}
        cur.executemany("INSERT INTO Jobs (tasks) VALUES (?)", [(tasks,)] * 15)
        assert cur.execute("SELECT count(*) FROM Jobs").fetchone() == (45,)


def test_nested_loop_lookups_are_fetched_ahead_concurrently(make_emulator: Callable[..., Emulator]) -> None:
    slow = make_emulator(jobs=120, seed=9, latency_ms=150)
    # Small pages make reading Jobs whole (24 pages) dearer than 12 lookups, so lookups it is.
    with connect_to(slow, PageSize=5, MaxConcurrency=16) as conn:
        cur = conn.cursor()
        assert cur.execute("SELECT count(*) FROM Jobs").fetchone() == (120,)  # now its size is known
        ids = [r[0] for r in cur.execute("SELECT id FROM Tasks WHERE operation = 'convert' AND job_id IS NOT NULL LIMIT 12").fetchall()]
        sql = f"SELECT t.id, j.tag FROM Tasks t JOIN Jobs j ON j.id = t.job_id WHERE t.id IN ({','.join('?' * 12)})"
        plan = [r[3] for r in cur.execute("EXPLAIN QUERY PLAN " + sql, ids).fetchall()]
        assert "Jobs get" in plan[1]  # one GET per task: the pattern the look-ahead is for
        settle(slow, conn)
        started = time.perf_counter()
        rows = cur.execute(sql, ids).fetchall()
        elapsed = time.perf_counter() - started
        conn.engine.wait_idle()
    assert len(rows) == 12
    job_gets = [r for r in slow.requests() if r["path"].startswith("/v2/jobs/")]
    assert len(job_gets) == len({r["path"] for r in job_gets}) == 12
    # 12 task GETs and 12 job GETs at 150 ms, 16 at a time: ~3 round trips; one by one would be 14.
    assert elapsed < 1.6, f"{elapsed:.2f} s: the job lookups did not overlap"


def test_lookups_stop_once_reading_the_table_is_cheaper(make_emulator: Callable[..., Emulator]) -> None:
    """The nested loop of a join sends at most as many lookups as reading the table costs, then reads it."""
    emu = make_emulator(jobs=150, seed=4, rate_limit=0)
    with connect_to(emu) as conn:
        cur = conn.cursor()
        cur.execute("SELECT count(*) FROM Jobs").fetchall()  # Jobs: 2 pages, now known
        settle(emu, conn)
        rows = cur.execute("SELECT t.id, j.tag FROM Tasks t LEFT JOIN Jobs j ON j.id = t.job_id").fetchall()
        conn.engine.wait_idle()
    requests = emu.requests()
    job_gets = [r for r in requests if r["path"].startswith("/v2/jobs/")]
    job_pages = [r for r in requests if r["path"] == "/v2/jobs"]
    task_pages = [r for r in requests if r["path"] == "/v2/tasks"]
    assert len(rows) == sum(1 for _ in raw_list(emu, "/tasks"))
    assert len(job_gets) <= 2 and len(job_pages) == 2  # at most a full read's worth of lookups, then the read
    assert len(requests) <= 2 * (len(task_pages) + 2) + 2


def test_joins_prefer_what_jobs_embed(emu: Emulator) -> None:
    with connect_to(emu) as conn:
        cur = conn.cursor()
        settle(emu, conn)
        rows = cur.execute(
            "SELECT t.id, j.tag FROM Tasks t JOIN Jobs j ON j.id = t.job_id WHERE t.status = 'error'"
        ).fetchall()
        assert rows
        assert {r["path"] for r in emu.requests()} == {"/v2/jobs"}


def test_cache_answers_repeats_without_requests(emu: Emulator) -> None:
    apidriver.clear_cache()
    with connect_to(emu, CacheTTL=60) as conn, connect_to(emu, CacheTTL=60) as other:
        settle(emu, conn)
        first = conn.cursor().execute("SELECT count(*) FROM Tasks").fetchone()
        assert emu.requests()
        settle(emu, conn)
        cur = conn.cursor().execute("SELECT count(*) FROM Tasks")
        assert cur.fetchone() == first
        extra = emu.requests()
        assert not extra, ([str(r) for r in cur.requests], [r["query"] for r in extra])
        assert cur.requests and all(r.cached for r in cur.requests)
        assert other.cursor().execute("SELECT count(*) FROM Tasks").fetchone() == first
        assert emu.requests() == []  # same key, same answers


def test_cache_is_not_shared_across_keys(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(jobs=20, seed=2, scoped_keys={"second-key": ["task.read"]})
    apidriver.clear_cache()
    with connect_to(emu, CacheTTL=60) as conn:
        conn.cursor().execute("SELECT count(*) FROM Jobs").fetchall()
    emu.clear_requests()
    with apidriver.connect(APIKey="second-key", BaseURL=emu.base_url, CacheTTL=60) as conn:
        conn.cursor().execute("SELECT count(*) FROM Jobs").fetchall()
    assert emu.requests()


def test_cache_expires_and_clears(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(jobs=20, seed=2)
    apidriver.clear_cache()
    with connect_to(emu, CacheTTL=0.3) as conn:
        cur = conn.cursor()
        cur.execute("SELECT count(*) FROM Jobs").fetchall()
        time.sleep(0.4)
        emu.clear_requests()
        cur.execute("SELECT count(*) FROM Jobs").fetchall()
        assert emu.requests(), "an expired answer was used"
        emu.clear_requests()
        conn.clear_cache()
        cur.execute("SELECT count(*) FROM Jobs").fetchall()
        assert emu.requests(), "clear_cache() kept answers"


def test_a_write_clears_the_cache(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(jobs=20, seed=2)
    apidriver.clear_cache()
    with connect_to(emu, CacheTTL=60) as conn:
        cur = conn.cursor()
        assert cur.execute("SELECT count(*) FROM Jobs").fetchone() == (20,)
        cur.execute("INSERT INTO Jobs (tasks) VALUES (?)", ({"t": {"operation": "import/url", "url": "https://e.com/a"}},))
        assert cur.execute("SELECT count(*) FROM Jobs").fetchone() == (21,)


def test_a_scan_over_the_rate_limit_slows_down_and_completes(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(jobs=125, seed=4, rate_limit=20, rate_window=1.0)
    with connect_to(emu, PageSize=5, RateLimitWindow=1.0) as conn:
        started = time.perf_counter()
        assert conn.cursor().execute("SELECT count(*) FROM Jobs").fetchone() == (125,)
        elapsed = time.perf_counter() - started
    statuses = [r["status"] for r in emu.requests()]
    pages = [r for r in emu.requests() if r["status"] == 200]
    assert len(pages) >= 26 and elapsed >= 0.9  # 26+ requests at 20 a second need a second window
    assert statuses.count(429) <= 5, f"pacing should avoid most 429s: {statuses.count(429)}"


def test_requests_reuse_connections(emu: Emulator) -> None:
    with connect_to(emu, PageSize=10) as conn:
        client: httpx.Client = conn.client._http
        conn.cursor().execute("SELECT count(*) FROM Jobs").fetchall()
        pool = client._transport._pool  # type: ignore[attr-defined]
        assert 0 < len(pool.connections) <= 8


def test_a_filtered_list_read_after_its_table_sends_exactly_its_pages(make_emulator: Callable[..., Emulator]) -> None:
    """A full read of Jobs counts each status: the first read of one status's list then queues
    exactly its pages at once, as a repeat does, instead of one page and then guessing ahead."""
    emu = make_emulator(jobs=150, seed=6, rate_limit=0)
    statuses = Counter(j["status"] for j in raw_list(emu, "/jobs"))
    status, count = statuses.most_common(1)[0]
    assert count > 20
    with connect_to(emu, PageSize=10) as conn:
        cur = conn.cursor()
        cur.execute("SELECT count(*) FROM Jobs").fetchall()
        for _ in range(2):  # the first read, and a repeat
            settle(emu, conn)
            rows = cur.execute("SELECT id FROM Jobs WHERE status = ?", (status,)).fetchall()
            conn.engine.wait_idle()
            pages = sorted(int(dict(r["params"])["page"]) for r in emu.requests())
            assert len(rows) == count and pages == list(range(1, -(-count // 10) + 1))
