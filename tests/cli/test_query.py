"""``apidriver query``: formats, requests, parameters, writes, and where the connection comes from."""

from __future__ import annotations

import csv
import datetime as dt
import io
import json
from collections.abc import Callable
from typing import Any

import pytest

from apidriver.emulator import Emulator

from ..conftest import connect_to, raw_list
from .conftest import apidriver, connection

ERRORS_SQL = "SELECT id, tag, status, created_at, tasks FROM Jobs WHERE status = 'error'"


@pytest.fixture(scope="module")
def failed_jobs(shared_emulator: Emulator) -> dict[str, dict[str, Any]]:
    jobs = {j["id"]: j for j in raw_list(shared_emulator, "/jobs", include="tasks", **{"filter[status]": "error"})}
    assert len(jobs) >= 2
    return jobs


def test_query_csv(shared_emulator: Emulator, failed_jobs: dict[str, dict[str, Any]]) -> None:
    result = apidriver("query", ERRORS_SQL, "--format", "csv", "--connect", connection(shared_emulator))
    assert result.returncode == 0, result.stderr
    assert result.stderr == ""
    rows = list(csv.DictReader(io.StringIO(result.stdout)))
    assert {r["id"] for r in rows} == set(failed_jobs)
    for row in rows:
        job = failed_jobs[row["id"]]
        assert row["tag"] == (job["tag"] or "")  # NULL is an empty field
        assert row["status"] == "error"
        created = dt.datetime.fromisoformat(row["created_at"])
        assert created.utcoffset() == dt.timedelta(0)
        assert created == dt.datetime.fromisoformat(job["created_at"])
        assert [t["id"] for t in json.loads(row["tasks"])] == [t["id"] for t in job["tasks"]]


@pytest.mark.parametrize("fmt", ["json", "jsonl"])
def test_query_json_formats(shared_emulator: Emulator, failed_jobs: dict[str, dict[str, Any]], fmt: str) -> None:
    result = apidriver("query", ERRORS_SQL, "--format", fmt, "--connect", connection(shared_emulator))
    assert result.returncode == 0, result.stderr
    if fmt == "json":
        records = json.loads(result.stdout)
    else:
        records = [json.loads(line) for line in result.stdout.splitlines()]
    assert {r["id"] for r in records} == set(failed_jobs)
    for record in records:
        job = failed_jobs[record["id"]]
        assert list(record) == ["id", "tag", "status", "created_at", "tasks"]
        assert record["tag"] == job["tag"]  # None stays null
        assert dt.datetime.fromisoformat(record["created_at"]) == dt.datetime.fromisoformat(job["created_at"])
        assert isinstance(record["tasks"], list)  # a JSON column is nested, not a string
        assert [t["id"] for t in record["tasks"]] == [t["id"] for t in job["tasks"]]


def test_query_json_empty_result(shared_emulator: Emulator) -> None:
    result = apidriver("query", "SELECT id FROM Jobs WHERE tag = 'no such tag'", "-f", "json", "--connect", connection(shared_emulator))
    assert result.returncode == 0, result.stderr
    assert json.loads(result.stdout) == []


def test_query_table(shared_emulator: Emulator, failed_jobs: dict[str, dict[str, Any]]) -> None:
    result = apidriver("query", "SELECT id, tag FROM Jobs WHERE status = 'error'", "--connect", connection(shared_emulator))
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    header = next(line for line in lines if line.strip())
    assert header.split() == ["id", "tag"]
    for job_id, job in failed_jobs.items():
        line = next(line for line in lines if job_id in line)  # never wrapped off a terminal
        assert line.split() == [job_id, job["tag"] or "NULL"]
    assert lines[-1].startswith(f"{len(failed_jobs)} rows · 1 request · ")


def test_query_requests_on_stderr(shared_emulator: Emulator) -> None:
    result = apidriver("query", "SELECT id FROM Jobs WHERE status = 'error'", "-f", "csv", "--requests", "--connect", connection(shared_emulator))
    assert result.returncode == 0, result.stderr
    lines = result.stderr.splitlines()
    assert len(lines) == 1
    assert lines[0].startswith(f"GET {shared_emulator.base_url}/v2/jobs?")
    assert "filter%5Bstatus%5D=error" in lines[0]
    assert " -> 200 in " in lines[0]
    assert "GET" not in result.stdout


def test_query_parameters_and_stdin(shared_emulator: Emulator, failed_jobs: dict[str, dict[str, Any]]) -> None:
    job_id = next(iter(failed_jobs))
    sql = "SELECT id, status FROM Jobs\nWHERE id = :job"
    result = apidriver("query", "-", "-p", "job", job_id, "-f", "jsonl", "--requests", "--connect", connection(shared_emulator), stdin=sql)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == [{"id": job_id, "status": "error"}]
    assert result.stderr.startswith(f"GET {shared_emulator.base_url}/v2/jobs/{job_id} -> 200")


def test_query_booleans_and_aggregates(shared_emulator: Emulator) -> None:
    result = apidriver("query", "SELECT paying, credits, count(*) AS n FROM Users", "-f", "json", "--connect", connection(shared_emulator))
    assert result.returncode == 0, result.stderr
    [record] = json.loads(result.stdout)
    assert record["paying"] in (True, False)
    assert isinstance(record["credits"], int)
    assert record["n"] == 1


def test_query_one_statement_only(shared_emulator: Emulator) -> None:
    result = apidriver("query", "SELECT 1; SELECT 2;", "--connect", connection(shared_emulator))
    assert result.returncode == 2
    assert "one statement (2 given)" in result.stderr
    assert result.stdout == ""


@pytest.fixture
def writable(make_emulator: Callable[..., Emulator]) -> Emulator:
    return make_emulator(jobs=5, seed=3)


def test_query_insert_returning_then_delete(writable: Emulator) -> None:
    tasks = json.dumps({"import": {"operation": "import/url", "url": "https://example.com/a.docx"}})
    sql = "INSERT INTO Jobs (tag, tasks) VALUES ('cli', :tasks) RETURNING id, tag, created_at"
    inserted = apidriver("query", sql, "-p", "tasks", tasks, "-f", "json", "--requests", "--connect", connection(writable))
    assert inserted.returncode == 0, inserted.stderr
    [record] = json.loads(inserted.stdout)
    assert record["tag"] == "cli"
    dt.datetime.fromisoformat(record["created_at"])
    assert inserted.stderr.startswith(f"POST {writable.base_url}/v2/jobs -> 201")
    assert [j["id"] for j in raw_list(writable, "/jobs", **{"filter[tag]": "cli"})] == [record["id"]]

    deleted = apidriver("query", "DELETE FROM Jobs WHERE tag = 'cli'", "--connect", connection(writable))
    assert deleted.returncode == 0, deleted.stderr
    assert deleted.stdout.startswith("1 row affected · ")
    assert raw_list(writable, "/jobs", **{"filter[tag]": "cli"}) == []


@pytest.mark.parametrize(("fmt", "parse"), [("csv", lambda s: list(csv.DictReader(io.StringIO(s)))), ("json", json.loads)])
def test_query_rowcount_in_machine_formats(writable: Emulator, fmt: str, parse: Callable[[str], Any]) -> None:
    before = len(raw_list(writable, "/jobs"))
    result = apidriver("query", "DELETE FROM Jobs WHERE status IN ('finished', 'error', 'waiting')", "-f", fmt, "--connect", connection(writable))
    assert result.returncode == 0, result.stderr
    parsed = parse(result.stdout)
    assert [str(r["rows_affected"]) for r in parsed] == [str(before)]
    with connect_to(writable) as conn:
        assert conn.cursor().execute("SELECT count(*) FROM Jobs").fetchone() == (0,)


def test_query_connection_from_environment(shared_emulator: Emulator) -> None:
    result = apidriver("query", "SELECT username FROM Users", "-f", "csv", env={"APIDRIVER_CONNECTION": connection(shared_emulator)})
    assert result.returncode == 0, result.stderr
    assert result.stdout == "username\nemulator\n"


def test_query_key_from_cloudconvert_api_key(shared_emulator: Emulator) -> None:
    env = {"CLOUDCONVERT_API_KEY": shared_emulator.api_key, "APIDRIVER_CONNECTION": f"BaseURL={shared_emulator.base_url}"}
    result = apidriver("query", "SELECT username FROM Users", "-f", "csv", env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "username\nemulator\n"


def test_query_connect_option_wins_over_environment(shared_emulator: Emulator) -> None:
    env = {"APIDRIVER_CONNECTION": "APIKey=wrong;BaseURL=http://127.0.0.1:9"}
    result = apidriver("query", "SELECT username FROM Users", "-f", "csv", "--connect", connection(shared_emulator), env=env)
    assert result.returncode == 0, result.stderr
    assert result.stdout == "username\nemulator\n"


def test_parameter_names_come_from_sqlite(shared_emulator: Emulator) -> None:
    # SQLite reads $a::b as one parameter (a Tcl-style name), where a regex saw $a and :b.
    named = apidriver("query", "SELECT $a::b AS v, :s AS s", "-p", "a::b", "x", "-p", ":s", "y", "-f", "json", "--connect", connection(shared_emulator))
    assert named.returncode == 0, named.stderr
    assert json.loads(named.stdout) == [{"v": "x", "s": "y"}]
    missing = apidriver("query", "SELECT $a::b AS v", "--connect", connection(shared_emulator))
    assert missing.returncode == 2
    assert "no value for the parameter a::b;" in missing.stderr
    numbered = apidriver("query", "SELECT ?2 AS b, ?1 AS a", "1", "2", "-f", "csv", "--connect", connection(shared_emulator))
    assert numbered.stdout == "b,a\n2,1\n", numbered.stderr
    commented = apidriver("query", "SELECT 1 AS one -- :x ?", "-f", "csv", "--connect", connection(shared_emulator))
    assert commented.returncode == 0 and commented.stdout == "one\n1\n", commented.stderr
