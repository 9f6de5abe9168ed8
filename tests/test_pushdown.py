"""Push-down: what reaches the API, checked in the emulator's request log, and
that every query still returns exactly what SQL says."""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

import apidriver
from apidriver.emulator import Emulator

from .conftest import connect_to, raw_list


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    emulator = Emulator(jobs=120, seed=5, task_seconds=0.05).start()
    yield emulator
    emulator.stop()


@pytest.fixture
def run(emu: Emulator) -> Iterator[Callable[..., tuple[list[tuple[Any, ...]], list[dict[str, Any]]]]]:
    """Run SQL on a fresh connection; return (rows, the API requests it caused)."""
    conns: list[apidriver.Connection] = []

    def run(sql: str, *params: Any, **props: Any) -> tuple[list[tuple[Any, ...]], list[dict[str, Any]]]:
        for earlier in conns:  # pages an earlier statement asked for ahead are in, not counted here
            earlier.engine.wait_idle()
        conn = connect_to(emu, **props)
        conns.append(conn)
        emu.clear_requests()
        result = conn.cursor().execute(sql, params).fetchall()
        conn.engine.wait_idle()  # and this one's are all in
        return result, emu.requests()

    yield run
    for conn in conns:
        conn.close()


def params(request: dict[str, Any]) -> dict[str, str]:
    return dict(request["params"])


@pytest.fixture(scope="module")
def jobs(emu: Emulator) -> list[dict[str, Any]]:
    return raw_list(emu, "/jobs")


def test_equality_on_a_filter_column_goes_to_the_api(run: Any, jobs: list[dict[str, Any]]) -> None:
    result, requests = run("SELECT id FROM Jobs WHERE status = 'error'")
    assert {r[0] for r in result} == {j["id"] for j in jobs if j["status"] == "error"}
    assert len(requests) == 1
    assert requests[0]["path"] == "/v2/jobs" and params(requests[0])["filter[status]"] == "error"


def test_two_filters_in_one_request(run: Any, jobs: list[dict[str, Any]]) -> None:
    result, requests = run("SELECT id FROM Jobs WHERE status = ? AND tag = ?", "finished", "reports")
    assert {r[0] for r in result} == {j["id"] for j in jobs if j["status"] == "finished" and j["tag"] == "reports"}
    assert len(requests) == 1
    assert params(requests[0])["filter[status]"] == "finished" and params(requests[0])["filter[tag]"] == "reports"


def test_lookup_by_id_is_one_get(run: Any, jobs: list[dict[str, Any]]) -> None:
    job = jobs[17]
    result, requests = run("SELECT id, status FROM Jobs WHERE id = ?", job["id"])
    assert result == [(job["id"], job["status"])]
    assert [(r["method"], r["path"]) for r in requests] == [("GET", f"/v2/jobs/{job['id']}")]


def test_missing_id_is_an_empty_result(run: Any) -> None:
    result, requests = run("SELECT * FROM Tasks WHERE id = 'no-such-task'")
    assert result == []
    assert len(requests) == 1 and requests[0]["status"] == 404


def test_in_list_runs_one_request_per_value_concurrently(emu: Emulator, jobs: list[dict[str, Any]]) -> None:
    ids = [j["id"] for j in jobs[:6]]
    slow = Emulator(jobs=0, latency_ms=150).start()
    try:
        with connect_to(slow) as conn:
            started = time.perf_counter()
            cur = conn.cursor().execute(f"SELECT count(*) FROM Tasks WHERE job_id IN ({','.join('?' * 6)})", ids)
            assert cur.fetchone() == (0,)
            elapsed = time.perf_counter() - started
        logged = slow.requests()
        assert sorted(params(r)["filter[job_id]"] for r in logged) == sorted(ids)
        assert elapsed < 0.6, f"6 requests at 150 ms took {elapsed:.2f} s: not concurrent"
    finally:
        slow.stop()


def test_in_list_of_ids_is_one_get_each(run: Any, jobs: list[dict[str, Any]]) -> None:
    ids = [jobs[1]["id"], jobs[2]["id"], "missing-id"]
    result, requests = run("SELECT id FROM Jobs WHERE id IN (?, ?, ?)", *ids)
    assert {r[0] for r in result} == set(ids[:2])
    assert sorted(r["path"] for r in requests) == sorted(f"/v2/jobs/{i}" for i in ids)


def test_or_on_one_column_becomes_in(run: Any, jobs: list[dict[str, Any]]) -> None:
    result, requests = run("SELECT id FROM Jobs WHERE status = 'error' OR status = 'waiting'")
    assert {r[0] for r in result} == {j["id"] for j in jobs if j["status"] in ("error", "waiting")}
    assert sorted(params(r)["filter[status]"] for r in requests) == ["error", "waiting"]


def test_impossible_conditions_send_nothing(run: Any) -> None:
    for sql in ("SELECT * FROM Jobs WHERE status = NULL", "SELECT * FROM Jobs WHERE status IN (SELECT 1 WHERE 0)"):
        result, requests = run(sql)
        assert result == [] and requests == []


def test_limit_alone_asks_for_that_many(run: Any, jobs: list[dict[str, Any]]) -> None:
    result, requests = run("SELECT id FROM Jobs LIMIT 7")
    assert [r[0] for r in result] == [j["id"] for j in jobs[:7]]
    assert len(requests) == 1 and params(requests[0])["per_page"] == "7"


def test_limit_with_a_pushed_filter(run: Any, jobs: list[dict[str, Any]]) -> None:
    result, requests = run("SELECT id FROM Jobs WHERE status = 'finished' LIMIT 3")
    assert len(result) == 3
    finished = {j["id"] for j in jobs if j["status"] == "finished"}
    assert {r[0] for r in result} <= finished
    assert len(requests) == 1 and params(requests[0])["per_page"] == "3"


def test_offset_maps_to_a_page(run: Any, jobs: list[dict[str, Any]]) -> None:
    result, requests = run("SELECT id FROM Jobs LIMIT 5 OFFSET 20")
    assert [r[0] for r in result] == [j["id"] for j in jobs[20:25]]
    assert len(requests) == 1 and params(requests[0])["page"] == "5" and params(requests[0])["per_page"] == "5"


def test_unaligned_offset(run: Any, jobs: list[dict[str, Any]]) -> None:
    result, _ = run("SELECT id FROM Jobs LIMIT 4 OFFSET 98")
    assert [r[0] for r in result] == [j["id"] for j in jobs[98:102]]


def test_limit_with_a_local_filter_is_not_pushed(run: Any, jobs: list[dict[str, Any]]) -> None:
    result, requests = run("SELECT id FROM Jobs WHERE tag LIKE 'rep%' LIMIT 3")
    matching = [j["id"] for j in jobs if (j["tag"] or "").lower().startswith("rep")]
    assert len(result) == 3 and {r[0] for r in result} <= set(matching)
    assert all(params(r)["per_page"] == "100" for r in requests)


def test_order_by_limit_scans_everything(run: Any, jobs: list[dict[str, Any]]) -> None:
    result, requests = run("SELECT id, created_at FROM Jobs ORDER BY created_at ASC, id LIMIT 5")
    expected = sorted(jobs, key=lambda j: (j["created_at"], j["id"]))[:5]
    assert [r[0] for r in result] == [j["id"] for j in expected]
    pages = {params(r)["page"] for r in requests}
    assert {"1", "2"} <= pages and all(params(r)["per_page"] == "100" for r in requests)


def test_limit_with_a_filter_on_a_later_page(run: Any, jobs: list[dict[str, Any]]) -> None:
    # Fewer matching rows on the first page than asked for: more pages are read.
    result, _ = run("SELECT id FROM Jobs WHERE status = 'error' LIMIT 50", PageSize=5)
    errors = [j["id"] for j in jobs if j["status"] == "error"]
    assert sorted(r[0] for r in result) == sorted(errors[:50])


def test_every_page_is_read(run: Any, jobs: list[dict[str, Any]]) -> None:
    result, requests = run("SELECT count(*) FROM Jobs", PageSize=7)
    assert result == [(len(jobs),)]
    pages = sorted(int(params(r)["page"]) for r in requests)
    needed = -(-len(jobs) // 7)
    assert pages[:needed] == list(range(1, needed + 1))
    assert all(params(r)["per_page"] == "7" for r in requests)
    assert len(requests) <= needed + 8  # look-ahead over-fetches at most MaxConcurrency pages


def test_join_of_jobs_tasks_and_files_by_tag_is_one_request(run: Any, emu: Emulator) -> None:
    sql = """
        SELECT j.id, t.id, f.filename
        FROM Jobs j JOIN Tasks t ON t.job_id = j.id JOIN TaskFiles f ON f.task_id = t.id
        WHERE j.tag = 'reports'
    """
    result, requests = run(sql)
    expected = {
        (j["id"], t["id"], f["filename"])
        for j in raw_list(emu, "/jobs", include="tasks")
        if j["tag"] == "reports"
        for t in j["tasks"]
        for f in (t["result"] or {}).get("files", [])
    }
    assert set(result) == expected and expected
    assert len(requests) == 1 and params(requests[0])["filter[tag]"] == "reports"


def test_join_of_all_jobs_and_tasks_needs_no_task_requests(run: Any, jobs: list[dict[str, Any]]) -> None:
    result, requests = run("SELECT j.status, count(t.id) FROM Jobs j JOIN Tasks t ON t.job_id = j.id GROUP BY j.status")
    assert sum(r[1] for r in result) > len(jobs)
    assert {r["path"] for r in requests} == {"/v2/jobs"}


def test_tasks_are_embedded_only_when_the_statement_reads_them(run: Any) -> None:
    _, plain = run("SELECT count(*) FROM Jobs")
    assert all("include" not in params(r) for r in plain)
    _, joined = run("SELECT count(*) FROM Jobs j JOIN TaskFiles f ON f.job_id = j.id")
    assert {params(r).get("include") for r in joined} == {"tasks"}
    _, everything = run("SELECT * FROM Jobs")  # the tasks column is asked for
    assert {params(r).get("include") for r in everything} == {"tasks"}


def test_tasks_by_job_reuse_the_embedded_tasks(run: Any, jobs: list[dict[str, Any]]) -> None:
    result, requests = run(
        "SELECT t.id FROM Tasks t WHERE t.job_id IN (SELECT id FROM Jobs WHERE status = 'error')"
    )
    assert result
    assert all(r["path"] == "/v2/jobs" for r in requests) or all(
        r["path"] in ("/v2/jobs", "/v2/tasks") for r in requests
    )


def test_same_request_is_never_sent_twice(run: Any) -> None:
    _, requests = run(
        "SELECT a.id, b.id FROM Jobs a JOIN Jobs b ON a.tag = b.tag WHERE a.status = 'error' AND b.status = 'error'"
    )
    keys = [(r["method"], r["path"], r["query"]) for r in requests]
    assert len(keys) == len(set(keys))


def test_files_of_one_task_come_from_the_task(run: Any, emu: Emulator) -> None:
    task = next(t for t in raw_list(emu, "/tasks") if t["operation"] == "export/url" and t["result"])
    result, requests = run("SELECT filename, url FROM TaskFiles WHERE task_id = ?", task["id"])
    assert result == [(f["filename"], f["url"]) for f in task["result"]["files"]]
    assert [r["path"] for r in requests] == [f"/v2/tasks/{task['id']}"]


def test_task_files_by_operation_use_the_task_filter(run: Any) -> None:
    result, requests = run("SELECT count(*) FROM TaskFiles WHERE operation = 'export/url' AND url IS NOT NULL")
    assert result[0][0] > 0
    assert {params(r)["filter[operation]"] for r in requests} == {"export/url"}


def test_timestamp_filters_are_exact(run: Any, jobs: list[dict[str, Any]]) -> None:
    pivot = dt.datetime.fromisoformat(sorted(j["created_at"] for j in jobs)[60])
    result, _ = run("SELECT id FROM Jobs WHERE created_at >= ?", pivot)
    assert {r[0] for r in result} == {j["id"] for j in jobs if dt.datetime.fromisoformat(j["created_at"]) >= pivot}
    naive, _ = run("SELECT id FROM Jobs WHERE created_at >= ?", pivot.replace(tzinfo=None))
    assert set(naive) == set(result)
    other_zone = pivot.astimezone(dt.timezone(dt.timedelta(hours=5, minutes=30)))
    shifted, _ = run("SELECT id FROM Jobs WHERE created_at >= ?", other_zone)
    assert set(shifted) == set(result)


def test_sqlite_date_functions_compare_correctly(run: Any, jobs: list[dict[str, Any]]) -> None:
    result, _ = run("SELECT count(*) FROM Jobs WHERE created_at > datetime('now', '-6 hours')")
    cutoff = dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=6)
    expected = sum(1 for j in jobs if dt.datetime.fromisoformat(j["created_at"]) > cutoff)
    assert abs(result[0][0] - expected) <= 1  # a job may cross the boundary while the test runs


def test_like_is_done_locally(run: Any, jobs: list[dict[str, Any]]) -> None:
    result, requests = run("SELECT id FROM Jobs WHERE tag LIKE '%o%'")
    assert {r[0] for r in result} == {j["id"] for j in jobs if "o" in (j["tag"] or "").lower()}
    assert all("filter[tag]" not in params(r) for r in requests)


def test_api_filters_are_rechecked_exactly(run: Any) -> None:
    # SQL '=' is case-sensitive; an API that matched loosely would not change the answer.
    result, _ = run("SELECT count(*) FROM Jobs WHERE tag = 'REPORTS'")
    assert result == [(0,)]


@pytest.mark.parametrize("tag", ["a&b=c", "x]y[z", "100%", "it's \"quoted\"", "ünïcødé ✓", "a+b c/d?e#f"])
def test_values_with_any_characters_reach_the_api(make_emulator: Callable[..., Emulator], tag: str) -> None:
    emu = make_emulator(jobs=0)
    headers = {"Authorization": f"Bearer {emu.api_key}"}
    tasks = {"t": {"operation": "import/url", "url": "https://example.com/a.txt"}}
    for value in (tag, tag + "-other"):
        assert httpx.post(emu.api_url + "/jobs", json={"tag": value, "tasks": tasks}, headers=headers).status_code == 201
    emu.clear_requests()
    with connect_to(emu) as conn:
        result = conn.cursor().execute("SELECT tag FROM Jobs WHERE tag = ?", (tag,)).fetchall()
    assert result == [(tag,)]
    (request,) = emu.requests()
    assert params(request)["filter[tag]"] == tag


def test_page_size_sets_per_page(run: Any) -> None:
    _, requests = run("SELECT * FROM Webhooks", PageSize=2)
    assert all(params(r)["per_page"] == "2" for r in requests)


def test_cursor_reports_its_requests(emu: Emulator, jobs: list[dict[str, Any]]) -> None:
    with connect_to(emu) as conn:
        cur = conn.cursor().execute("SELECT id, status FROM Jobs WHERE id = ?", (jobs[0]["id"],))
        cur.fetchall()
        (record,) = cur.requests
        assert record.method == "GET" and record.status == 200
        assert record.url.endswith(f"/v2/jobs/{jobs[0]['id']}")
        assert record.duration_ms >= 0
        assert emu.api_key not in str(record)


def test_trusted_list_order_reads_one_page(run: Any, jobs: list[dict[str, Any]]) -> None:
    sql = "SELECT id FROM Jobs ORDER BY created_at DESC LIMIT 5"
    newest = sorted(jobs, key=lambda j: j["created_at"], reverse=True)[:5]
    result, requests = run(sql, TrustListOrder=True)
    assert [r[0] for r in result] == [j["id"] for j in newest]
    assert len(requests) == 1 and params(requests[0])["per_page"] == "5"
    # Only the order the API is seen to use is taken: ascending still reads everything.
    _, ascending = run("SELECT id FROM Jobs ORDER BY created_at LIMIT 5", TrustListOrder=True)
    assert all(params(r)["per_page"] == "100" for r in ascending) and len(ascending) >= 2
    # Several requests (IN) cannot be merged in order either.
    # (Each value's list, or the whole table when the process has seen it is as cheap: PAGE_HINTS are per
    # API root and key, and an earlier test's emulator on the same port may have left them.)
    result, merged = run("SELECT id FROM Jobs WHERE status IN ('error', 'finished') ORDER BY created_at DESC LIMIT 5", TrustListOrder=True)
    wanted = sorted((j for j in jobs if j["status"] in ("error", "finished")), key=lambda j: j["created_at"], reverse=True)
    assert [r[0] for r in result] == [j["id"] for j in wanted[:5]]
    assert merged and all(params(r)["per_page"] == "100" for r in merged)
    assert {params(r).get("filter[status]") for r in merged} in ({"error", "finished"}, {None})
