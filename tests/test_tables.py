"""Each table holds exactly what the raw API returns, converted as documented."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import httpx

import apidriver
from apidriver.emulator import Emulator

from .conftest import raw_list


def ts(value: str | None) -> dt.datetime | None:
    return dt.datetime.fromisoformat(value) if value else None


def rows(conn: apidriver.Connection, sql: str, *params: Any) -> list[dict[str, Any]]:
    cur = conn.cursor().execute(sql, params)
    names = [d[0] for d in cur.description]
    return [dict(zip(names, r)) for r in cur.fetchall()]


def test_jobs_equal_the_api(conn: apidriver.Connection, shared_emulator: Emulator) -> None:
    raw = {j["id"]: j for j in raw_list(shared_emulator, "/jobs")}
    got = {r["id"]: r for r in rows(conn, "SELECT * FROM Jobs")}
    assert got.keys() == raw.keys() and len(got) == 60
    for job_id, job in raw.items():
        row = got[job_id]
        assert row["tag"] == job["tag"]
        assert row["status"] == job["status"]
        assert row["created_at"] == ts(job["created_at"])
        assert row["started_at"] == ts(job["started_at"])
        assert row["ended_at"] == ts(job["ended_at"])
        assert row["links_self"] == job["links"]["self"]


def test_tasks_equal_the_api(conn: apidriver.Connection, shared_emulator: Emulator) -> None:
    raw = {t["id"]: t for t in raw_list(shared_emulator, "/tasks", include="payload")}
    got = {r["id"]: r for r in rows(conn, "SELECT * FROM Tasks")}
    assert got.keys() == raw.keys()
    for task_id, task in raw.items():
        row = got[task_id]
        for name in ("job_id", "name", "operation", "status", "code", "message", "percent", "credits", "engine",
                     "engine_version", "retry_of_task_id", "copy_of_task_id", "user_id", "priority", "host_name", "storage"):
            assert row[name] == task.get(name), name
        assert json.loads(row["payload"]) == task["payload"]
        assert (json.loads(row["result"]) if row["result"] else None) == task["result"]
        assert json.loads(row["depends_on_task_ids"]) == task["depends_on_task_ids"]
        assert row["created_at"] == ts(task["created_at"])
        assert row["ended_at"] == ts(task["ended_at"])


def test_task_files_flatten_results(conn: apidriver.Connection, shared_emulator: Emulator) -> None:
    expected = set()
    for task in raw_list(shared_emulator, "/tasks"):
        for i, f in enumerate((task.get("result") or {}).get("files") or []):
            expected.add((task["id"], i, task["job_id"], task["operation"], f["filename"], f.get("size"), f.get("url"), f.get("md5"), f.get("dir")))
    got = {
        tuple(r.values())
        for r in rows(conn, "SELECT task_id, idx, job_id, operation, filename, size, url, md5, dir FROM TaskFiles")
    }
    assert got == expected and len(got) > 100


def test_task_dependencies_flatten_inputs(conn: apidriver.Connection, shared_emulator: Emulator) -> None:
    expected = {(t["id"], d) for t in raw_list(shared_emulator, "/tasks") for d in t["depends_on_task_ids"]}
    got = {(r["task_id"], r["depends_on_task_id"]) for r in rows(conn, "SELECT * FROM TaskDependencies")}
    assert got == expected and got


def test_users_is_the_account(conn: apidriver.Connection, api_user: dict[str, Any]) -> None:
    (row,) = rows(conn, "SELECT * FROM Users")
    assert row["id"] == api_user["id"]
    assert row["username"] == api_user["username"]
    assert row["credits"] == api_user["credits"]
    assert row["paying"] is api_user["paying"]
    assert row["created_at"] == ts(api_user["created_at"])


def test_webhooks_equal_the_api(conn: apidriver.Connection, shared_emulator: Emulator) -> None:
    raw = {str(w["id"]): w for w in raw_list(shared_emulator, "/users/me/webhooks")}
    got = {r["id"]: r for r in rows(conn, "SELECT * FROM Webhooks")}
    assert got.keys() == raw.keys() and got
    for key, hook in raw.items():
        assert got[key]["url"] == hook["url"]
        assert json.loads(got[key]["events"]) == hook["events"]
        assert got[key]["signing_secret"] == hook["signing_secret"]
        assert got[key]["disabled"] is hook["disabled"]


def test_operations_equal_the_catalogue(conn: apidriver.Connection, shared_emulator: Emulator) -> None:
    raw = httpx.get(shared_emulator.api_url + "/operations").json()["data"]
    got = rows(conn, "SELECT operation, input_format, output_format, engine, credits, meta_group FROM Operations")
    assert len(got) == len(raw) > 2000
    assert {(r["operation"], r["input_format"], r["output_format"], r["engine"], r["credits"]) for r in got} == {
        (e["operation"], e["input_format"], e["output_format"], e["engine"], e["credits"]) for e in raw
    }
    (docx,) = rows(conn, "SELECT * FROM Operations WHERE operation = 'convert' AND input_format = 'docx' AND output_format = 'pdf'")
    assert docx["engine"] == "office" and docx["credits"] == 2 and docx["meta_group"] == "document"


def test_operation_options_need_include(conn: apidriver.Connection, shared_emulator: Emulator) -> None:
    cur = conn.cursor().execute(
        "SELECT json_array_length(options), json_extract(engine_versions, '$[0].version') FROM Operations "
        "WHERE input_format = 'jpg' AND output_format = 'png'"
    )
    count, version = cur.fetchone()
    assert count > 0 and version
    assert any("include=" in r.url and "options" in r.url for r in cur.requests)


def test_json_columns_work_with_json_extract(conn: apidriver.Connection) -> None:
    cur = conn.cursor().execute(
        "SELECT json_extract(result, '$.files[0].filename'), filename FROM Tasks t JOIN TaskFiles f ON f.task_id = t.id "
        "WHERE f.idx = 0 LIMIT 20"
    )
    pairs = cur.fetchall()
    assert pairs and all(a == b for a, b in pairs)


def test_every_table_and_column_is_described(conn: apidriver.Connection) -> None:
    tables = rows(conn, "SELECT name, description FROM sys_tables")
    names = {t["name"] for t in tables}
    assert {"Jobs", "Tasks", "TaskFiles", "TaskDependencies", "Users", "Webhooks", "Operations", "sys_tables"} <= names
    assert all(t["description"] for t in tables)
    columns = rows(conn, "SELECT table_name, column_name, type, description FROM sys_tablecolumns")
    assert all(c["description"] and c["type"] for c in columns)
    described = {(c["table_name"], c["column_name"]) for c in columns}
    cur = conn.cursor()
    for name in names:
        for info in cur.execute(f'PRAGMA table_info("{name}")').fetchall():
            assert (name, info[1]) in described


def test_pushdown_is_documented(conn: apidriver.Connection) -> None:
    pushdown = dict(
        ((r["table_name"], r["column_name"]), r["pushdown"])
        for r in rows(conn, "SELECT table_name, column_name, pushdown FROM sys_tablecolumns WHERE pushdown IS NOT NULL")
    )
    assert "filter[status]" in pushdown[("Jobs", "status")]
    assert "GET /jobs/{id}" in pushdown[("Jobs", "id")]
    assert "filter[job_id]" in pushdown[("Tasks", "job_id")]
    assert "via Tasks.id" in pushdown[("TaskFiles", "task_id")]
    assert ("Jobs", "created_at") not in pushdown


def test_foreign_keys_are_declared(conn: apidriver.Connection) -> None:
    fks = {
        (r["table_name"], r["column_name"]): (r["referenced_table"], r["referenced_column"])
        for r in rows(conn, "SELECT * FROM sys_foreignkeys")
    }
    assert fks[("Tasks", "job_id")] == ("Jobs", "id")
    assert fks[("TaskFiles", "task_id")] == ("Tasks", "id")
    assert fks[("TaskFiles", "job_id")] == ("Jobs", "id")


def test_table_reference_is_up_to_date() -> None:
    from pathlib import Path

    from apidriver.profiles import load
    from apidriver.reference import markdown

    committed = (Path(__file__).resolve().parent.parent / "docs" / "tables.md").read_text()
    assert committed == markdown(load("CloudConvert")), "run: python -m apidriver.reference > docs/tables.md"
