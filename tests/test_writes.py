"""SQL writes: INSERT creates, DELETE deletes, UPDATE is refused; each checked
against the emulator's state through the raw API, with the failure cases."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

import apidriver
from apidriver.emulator import Emulator

from .conftest import CONVERSION_TASKS, connect_to, raw_list
from .emulator.support import Receiver

TASKS = CONVERSION_TASKS


@pytest.fixture
def emulator(make_emulator: Callable[..., Emulator]) -> Emulator:
    """This module's account (conftest's ``api`` client talks to it)."""
    return make_emulator(jobs=10, seed=2)


@pytest.fixture
def emu(emulator: Emulator) -> Emulator:
    return emulator


@pytest.fixture
def conn(emulator: Emulator) -> Iterator[apidriver.Connection]:
    with connect_to(emulator) as connection:
        yield connection


def calls(emu: Emulator) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in emu.requests()]


def test_insert_a_job(emu: Emulator, conn: apidriver.Connection, api: httpx.Client) -> None:
    emu.clear_requests()
    cur = conn.cursor().execute("INSERT INTO Jobs (tag, tasks) VALUES (?, ?)", ("quarterly", json.dumps(TASKS)))
    assert cur.rowcount == 1 and cur.lastrowid is not None
    assert calls(emu) == [("POST", "/v2/jobs")]
    (job,) = [j for j in raw_list(emu, "/jobs", include="tasks") if j["tag"] == "quarterly"]
    assert sorted(t["name"] for t in job["tasks"]) == ["convert", "export", "import"]


def test_insert_returning_gives_what_the_api_created(emu: Emulator, conn: apidriver.Connection, api: httpx.Client) -> None:
    cur = conn.cursor().execute(
        "INSERT INTO Jobs (tag, tasks) VALUES (?, ?) RETURNING id, tag, status, created_at, tasks", ("returning", TASKS)
    )
    (job_id, tag, status, created_at, tasks), = cur.fetchall()
    raw = api.get(f"/jobs/{job_id}").json()["data"]
    assert (tag, status) == ("returning", "waiting")
    assert created_at.tzinfo is not None and created_at.isoformat() == raw["created_at"]
    assert {t["id"] for t in json.loads(tasks)} == {t["id"] for t in raw["tasks"]}


def test_insert_with_a_webhook_url(emu: Emulator, conn: apidriver.Connection) -> None:
    receiver = Receiver()
    try:
        conn.cursor().execute(
            "INSERT INTO Jobs (tag, tasks, webhook_url) VALUES (?, ?, ?)", ("hooked", TASKS, receiver.url + "/done")
        )
        (delivery,) = receiver.wait_posts(1, "/done")
        assert delivery.json()["event"] == "job.finished" and delivery.json()["job"]["tag"] == "hooked"
    finally:
        receiver.close()


def test_insert_a_standalone_task(emu: Emulator, conn: apidriver.Connection, api: httpx.Client) -> None:
    emu.clear_requests()
    cur = conn.cursor().execute(
        "INSERT INTO Tasks (operation, payload) VALUES ('import/url', ?) RETURNING id, job_id, operation",
        ({"url": "https://example.com/a.png"},),
    )
    (task_id, job_id, operation), = cur.fetchall()
    assert calls(emu) == [("POST", "/v2/import/url")]
    raw = api.get(f"/tasks/{task_id}", params={"include": "payload"}).json()["data"]
    assert job_id is None and operation == raw["operation"] == "import/url"
    assert raw["payload"]["url"] == "https://example.com/a.png"


def test_insert_a_webhook(emu: Emulator, conn: apidriver.Connection) -> None:
    cur = conn.cursor().execute(
        "INSERT INTO Webhooks (url, events) VALUES (?, ?) RETURNING id, signing_secret, created_at",
        ("https://example.com/hook", '["job.failed"]'),
    )
    (hook_id, secret, created_at), = cur.fetchall()
    (raw,) = [w for w in raw_list(emu, "/users/me/webhooks") if str(w["id"]) == hook_id]
    assert raw["url"] == "https://example.com/hook" and raw["events"] == ["job.failed"]
    assert secret == raw["signing_secret"] and created_at is not None


def test_executemany_inserts(emu: Emulator, conn: apidriver.Connection) -> None:
    emu.clear_requests()
    cur = conn.cursor()
    cur.executemany("INSERT INTO Jobs (tag, tasks) VALUES (?, ?)", [(f"batch-{i}", TASKS) for i in range(4)])
    assert cur.rowcount == 4
    assert calls(emu) == [("POST", "/v2/jobs")] * 4
    assert {j["tag"] for j in raw_list(emu, "/jobs")} >= {f"batch-{i}" for i in range(4)}


def test_executemany_failure_says_what_was_done(emu: Emulator, conn: apidriver.Connection) -> None:
    bad = {"x": {"operation": "convert", "input": "nope-no-such-task", "output_format": "pdf"}}
    rows = [("part-0", TASKS), ("part-1", TASKS), ("part-2", bad), ("part-3", TASKS)]
    with pytest.raises(apidriver.InvalidDataError) as info:
        conn.cursor().executemany("INSERT INTO Jobs (tag, tasks) VALUES (?, ?)", rows)
    error = info.value
    assert error.failed_row == 2 and error.done_rows == 2 and len(error.created) == 2  # type: ignore[attr-defined]
    assert "Sets 0 to 1 were carried out" in str(error) and "sets 3 to 3 were not attempted" in str(error)
    assert "tasks.x.input" in str(error) and error.errors
    tags = {j["tag"] for j in raw_list(emu, "/jobs")}
    assert {"part-0", "part-1"} <= tags and not {"part-2", "part-3"} & tags


def test_multi_row_insert_failure_names_created_rows(emu: Emulator, conn: apidriver.Connection) -> None:
    with pytest.raises(apidriver.ProgrammingError) as info:
        conn.cursor().execute(
            "INSERT INTO Tasks (operation, payload) VALUES ('import/url', ?), ('bogus/op', '{}')",
            ({"url": "https://example.com/x.txt"},),
        )
    message = str(info.value)
    assert "Unknown operation 'bogus/op'" in message and "Already created by this statement" in message
    created_id = message.rsplit(": ", 1)[1].rstrip(".")
    assert any(t["id"] == created_id for t in raw_list(emu, "/tasks"))


def test_delete_by_filter(emu: Emulator, conn: apidriver.Connection) -> None:
    cur = conn.cursor()
    cur.executemany("INSERT INTO Jobs (tag, tasks) VALUES (?, ?)", [("old", TASKS)] * 3)
    emu.clear_requests()
    cur.execute("DELETE FROM Jobs WHERE tag = 'old'")
    assert cur.rowcount == 3
    log = calls(emu)
    assert log.count(("GET", "/v2/jobs")) == 1 and sum(1 for m, _ in log if m == "DELETE") == 3
    assert not [j for j in raw_list(emu, "/jobs") if j["tag"] == "old"]


def test_delete_by_id_sends_only_the_delete(emu: Emulator, conn: apidriver.Connection, api: httpx.Client) -> None:
    job_id = conn.cursor().execute("INSERT INTO Jobs (tasks) VALUES (?) RETURNING id", (TASKS,)).fetchone()[0]
    emu.clear_requests()
    cur = conn.cursor().execute("DELETE FROM Jobs WHERE id = ?", (job_id,))
    assert cur.rowcount == 1
    assert calls(emu) == [("DELETE", f"/v2/jobs/{job_id}")]
    assert api.get(f"/jobs/{job_id}").status_code == 404


def test_delete_of_a_missing_id_is_an_error(conn: apidriver.Connection) -> None:
    with pytest.raises(apidriver.NotFoundError, match="not found"):
        conn.cursor().execute("DELETE FROM Tasks WHERE id = 'no-such-task'")


def test_delete_with_other_conditions_reads_first(emu: Emulator, conn: apidriver.Connection) -> None:
    job_id = conn.cursor().execute("INSERT INTO Jobs (tag, tasks) VALUES ('keep', ?) RETURNING id", (TASKS,)).fetchone()[0]
    cur = conn.cursor().execute("DELETE FROM Jobs WHERE id = ? AND upper(tag) = 'OTHER'", (job_id,))
    assert cur.rowcount == 0
    assert any(j["id"] == job_id for j in raw_list(emu, "/jobs"))


def test_delete_tasks_and_webhooks(emu: Emulator, conn: apidriver.Connection) -> None:
    cur = conn.cursor()
    ids = [cur.execute("INSERT INTO Tasks (operation, payload) VALUES ('import/url', ?) RETURNING id", ({"url": f"https://e.com/{i}.txt"},)).fetchone()[0] for i in range(2)]
    hook = cur.execute("INSERT INTO Webhooks (url, events) VALUES ('https://e.com/h', '[\"job.created\"]') RETURNING id").fetchone()[0]
    emu.clear_requests()
    assert cur.execute("DELETE FROM Tasks WHERE id IN (?, ?)", ids).rowcount == 2
    assert cur.execute("DELETE FROM Webhooks WHERE id = ?", (hook,)).rowcount == 1
    assert sorted(calls(emu)) == sorted([("DELETE", f"/v2/tasks/{i}") for i in ids] + [("DELETE", f"/v2/webhooks/{hook}")])
    assert not {t["id"] for t in raw_list(emu, "/tasks")} & set(ids)


@pytest.mark.parametrize(
    ("sql", "match"),
    [
        ("UPDATE Jobs SET tag = 'x'", "cannot change existing Jobs"),
        ("UPDATE Tasks SET status = 'error' WHERE id = 'a'", "cannot change existing Tasks"),
        ("INSERT INTO Users (email) VALUES ('a@b.c')", "Users is read-only"),
        ("DELETE FROM Operations", "Operations is read-only"),
        ("DELETE FROM TaskFiles", "TaskFiles is read-only"),
    ],
)
def test_what_the_api_cannot_do_is_refused_before_sending(emu: Emulator, conn: apidriver.Connection, sql: str, match: str) -> None:
    emu.clear_requests()
    with pytest.raises(apidriver.NotSupportedError, match=match):
        conn.cursor().execute(sql)
    assert emu.requests() == []


@pytest.mark.parametrize(
    ("sql", "params", "match"),
    [
        ("INSERT INTO Jobs (id, tasks) VALUES ('x', '{}')", (), "cannot set id"),
        ("INSERT INTO Jobs (tag) VALUES ('t')", (), "needs tasks"),
        ("INSERT INTO Jobs (tasks) VALUES (?)", ("{not json",), "must be JSON"),
        ("INSERT INTO Jobs (tasks) VALUES (?)", ('{"a b": {"operation": "convert"}}',), "not allowed"),
        ("INSERT INTO Jobs (tasks) VALUES (?)", ('{"a": {"operation": "convrt"}}',), "Unknown operation 'convrt'"),
        ("INSERT INTO Webhooks (url, events) VALUES ('https://e.com', '[\"job.done\"]')", (), "events must be"),
    ],
)
def test_bad_input_is_caught_before_sending(emu: Emulator, conn: apidriver.Connection, sql: str, params: tuple[Any, ...], match: str) -> None:
    emu.clear_requests()
    with pytest.raises(apidriver.ProgrammingError, match=match):
        conn.cursor().execute(sql, params)
    assert emu.requests() == []


def test_api_field_errors(conn: apidriver.Connection) -> None:
    with pytest.raises(apidriver.InvalidDataError) as info:
        conn.cursor().execute("INSERT INTO Tasks (operation, payload) VALUES ('convert', '{}')")
    assert info.value.status == 422 and set(info.value.errors or {}) == {"input", "output_format"}
    assert "output_format" in str(info.value)


def test_out_of_credits(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(credits=0)
    with connect_to(emu) as conn, pytest.raises(apidriver.InsufficientCreditsError, match="402"):
        conn.cursor().execute("INSERT INTO Jobs (tasks) VALUES (?)", (TASKS,))


@pytest.mark.parametrize("kind", ["drop", "503", "500"])
def test_ambiguous_post_failures_are_not_retried(emu: Emulator, conn: apidriver.Connection, kind: str) -> None:
    emu.add_fault(kind, path="/v2/jobs", method="POST", count=1)
    emu.clear_requests()
    with pytest.raises(apidriver.AmbiguousWriteError, match="not retried"):
        conn.cursor().execute("INSERT INTO Jobs (tag, tasks) VALUES ('maybe', ?)", (TASKS,))
    assert calls(emu) == [("POST", "/v2/jobs")]
    created = [j for j in raw_list(emu, "/jobs") if j["tag"] == "maybe"]
    assert len(created) == (1 if kind == "drop" else 0)  # a drop happens after the job was made


def test_rate_limited_post_is_retried_once_it_is_safe(emu: Emulator, conn: apidriver.Connection) -> None:
    emu.add_fault("429", path="/v2/jobs", method="POST", count=1)
    conn.cursor().execute("INSERT INTO Jobs (tag, tasks) VALUES ('after-429', ?)", (TASKS,))
    assert len([j for j in raw_list(emu, "/jobs") if j["tag"] == "after-429"]) == 1


def test_read_only_refuses_every_write(emu: Emulator) -> None:
    with connect_to(emu, ReadOnly=True) as conn:
        emu.clear_requests()
        for sql in (
            "INSERT INTO Jobs (tasks) VALUES ('{}')",
            "DELETE FROM Jobs WHERE tag = 'x'",
            "UPDATE Webhooks SET url = 'x'",
            "SELECT * FROM CancelTask('abc')",
        ):
            with pytest.raises(apidriver.NotSupportedError, match="read-only"):
                conn.cursor().execute(sql)
        with pytest.raises(apidriver.NotSupportedError, match="read-only"):
            conn.cursor().callproc("DeleteJob", ["abc"])
        assert emu.requests() == []
        assert conn.cursor().execute("SELECT count(*) FROM Jobs").fetchone() == (10,)


def test_writes_are_autocommit(emu: Emulator, conn: apidriver.Connection) -> None:
    conn.cursor().execute("INSERT INTO Jobs (tag, tasks) VALUES ('kept', ?)", (TASKS,))
    conn.rollback()
    assert [j for j in raw_list(emu, "/jobs") if j["tag"] == "kept"]
