"""The edges of reliability: each test pins one defect of issue #11 (idempotent
DELETE, partial DELETE reports, values checked at connect, parameters the
driver cannot represent, dot segments, wait limits, messages and logs)."""

from __future__ import annotations

import json
import logging
import math
import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

import apidriver
from apidriver.emulator import Emulator

from .conftest import CONVERSION_TASKS, connect_to, raw_list
from .emulator.support import wait_until

KEY = "sk-AUDIT-SECRET-9f8e"


@pytest.fixture
def emu(make_emulator: Callable[..., Emulator]) -> Emulator:
    return make_emulator(jobs=6, seed=5)


@pytest.fixture
def conn(emu: Emulator) -> Iterator[apidriver.Connection]:
    with connect_to(emu, Timeout=2, MaxRetries=2) as connection:
        yield connection


def new_jobs(emu: Emulator, tag: str, count: int = 1) -> list[str]:
    """Jobs created through the raw API (newest last)."""
    with httpx.Client(base_url=emu.api_url, headers={"Authorization": f"Bearer {emu.api_key}"}) as api:
        return [api.post("/jobs", json={"tag": tag, "tasks": CONVERSION_TASKS}).json()["data"]["id"] for _ in range(count)]


def job_exists(emu: Emulator, job_id: str) -> bool:
    with httpx.Client(base_url=emu.api_url, headers={"Authorization": f"Bearer {emu.api_key}"}) as api:
        return api.get(f"/jobs/{job_id}").status_code == 200


def sent(emu: Emulator, method: str | None = None) -> list[tuple[str, str]]:
    return [(r["method"], r["path"]) for r in emu.requests() if method is None or r["method"] == method]


# -- 1. DELETE by id after an unanswered attempt -------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["drop", "stall"])
def test_delete_by_id_after_an_unanswered_attempt_reports_success(emu: Emulator, kind: str) -> None:
    (job_id,) = new_jobs(emu, "gone")
    emu.add_fault(kind, path=f"/v2/jobs/{job_id}", method="DELETE", count=1, stall_seconds=1)
    emu.clear_requests()
    with connect_to(emu, Timeout=0.3, MaxRetries=2) as conn:
        cur = conn.cursor().execute("DELETE FROM Jobs WHERE id = ?", (job_id,))
        assert cur.rowcount == 1
        assert [r.status for r in cur.requests] == [None, 404]
    wait_until(lambda: len(sent(emu)) >= 2 or None, timeout=3, what="the stalled DELETE to be logged")
    assert sent(emu) == [("DELETE", f"/v2/jobs/{job_id}")] * 2
    assert not job_exists(emu, job_id)


def test_delete_procedure_after_an_unanswered_attempt_reports_success(emu: Emulator) -> None:
    (job_id,) = new_jobs(emu, "gone")
    emu.add_fault("drop", path=f"/v2/jobs/{job_id}", method="DELETE", count=1)
    with connect_to(emu, MaxRetries=2) as conn:
        assert conn.cursor().execute("SELECT id, deleted FROM DeleteJob(?)", (job_id,)).fetchall() == [(job_id, True)]


def test_delete_of_a_missing_id_is_still_not_found(conn: apidriver.Connection) -> None:
    with pytest.raises(apidriver.NotFoundError):
        conn.cursor().execute("DELETE FROM Jobs WHERE id = 'no-such-job'")


# -- 5. a multi-row DELETE that fails part-way ------------------------------------------------------------------------------


def test_partial_delete_says_what_was_deleted_failed_and_not_attempted(emu: Emulator) -> None:
    ids = new_jobs(emu, "batch", 4)
    with connect_to(emu, MaxRetries=0) as conn:
        order = [r[0] for r in conn.cursor().execute("SELECT id FROM Jobs WHERE tag = 'batch'").fetchall()]
        assert sorted(order) == sorted(ids)
        failing = order[1]
        emu.add_fault("500", path=f"/v2/jobs/{failing}", method="DELETE", count=100)
        emu.clear_requests()
        cur = conn.cursor()
        cur.execute("SELECT 1").fetchall()
        with pytest.raises(apidriver.APIUnavailableError) as info:
            cur.execute("DELETE FROM Jobs WHERE tag = 'batch'")
    error = info.value
    assert error.deleted == [order[0]]  # type: ignore[attr-defined]
    assert error.failed == failing  # type: ignore[attr-defined]
    assert error.not_attempted == order[2:]  # type: ignore[attr-defined]
    message = str(error)
    assert f"Deleted by this statement before the failure (not undone): {order[0]}" in message
    assert f"failed: {failing}" in message and "500" in message
    assert f"not attempted: {', '.join(order[2:])}" in message
    assert cur.rowcount == -1
    # exactly one DELETE per row up to the failing one; nothing after it
    assert [p for _, p in sent(emu, "DELETE")] == [f"/v2/jobs/{order[0]}", f"/v2/jobs/{failing}"]
    assert [job_exists(emu, i) for i in order] == [False, True, True, True]


def test_single_row_delete_failure_keeps_its_message(emu: Emulator) -> None:
    (job_id,) = new_jobs(emu, "one")
    emu.add_fault("500", path=f"/v2/jobs/{job_id}", method="DELETE", count=100)
    with connect_to(emu, MaxRetries=0) as conn, pytest.raises(apidriver.APIUnavailableError) as info:
        conn.cursor().execute("DELETE FROM Jobs WHERE id = ?", (job_id,))
    assert "not attempted" not in str(info.value) and "Deleted by" not in str(info.value)
    assert info.value.failed == job_id  # type: ignore[attr-defined]


# -- 6. secrets never echoed by parse errors --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "text",
    [KEY, f"APIKey={KEY};Timeout=x", f"{KEY};BaseURL=http://x", f"BaseURL=http://x;{KEY}", f"APIKey='{KEY}", f"Timeout={KEY}", f"{KEY}=1"],
)
def test_parse_errors_never_echo_values(text: str) -> None:
    try:
        apidriver.connect(text)
    except apidriver.ProgrammingError as error:
        message = str(error)
    else:  # pragma: no cover - every case above is an error
        raise AssertionError("connected")
    for piece in ("AUDIT", "SECRET", "9f8e", "sk-"):
        assert piece not in message, message


def test_parse_error_points_at_the_position() -> None:
    with pytest.raises(apidriver.ProgrammingError, match=r"position 10\b.*Name=Value"):
        apidriver.connect(f"Timeout=5;{KEY}")


def test_a_typo_in_a_property_name_is_named() -> None:
    with pytest.raises(apidriver.ProgrammingError, match="PageSise.*PageSize"):
        apidriver.connect("APIKey=k;PageSise=10")


# -- 7. bad values refused at connect ----------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("props", "named", "allowed"),
    [
        ({"BaseURL": "127.0.0.1:9"}, "BaseURL", "http:// or https://"),
        ({"BaseURL": "ftp://127.0.0.1:9"}, "BaseURL", "http:// or https://"),
        ({"BaseURL": "http://"}, "BaseURL", "host"),
        ({"Timeout": "0"}, "Timeout", "more than 0"),
        ({"Timeout": "nan"}, "Timeout", "more than 0"),
        ({"Timeout": "inf"}, "Timeout", "more than 0"),
        ({"RateLimitWindow": "nan"}, "RateLimitWindow", "number"),
        ({"CacheTTL": "-inf"}, "CacheTTL", "number"),
        ({"MaxRetries": "1000"}, "MaxRetries", "0 to"),
        ({"WaitTimeout": "0"}, "WaitTimeout", "more than 0"),
    ],
)
def test_bad_values_are_refused_at_connect(emu: Emulator, props: dict[str, str], named: str, allowed: str) -> None:
    emu.clear_requests()
    with pytest.raises(apidriver.ProgrammingError) as info:
        apidriver.connect(APIKey=KEY, **{"BaseURL": emu.base_url, **props})
    message = str(info.value)
    assert named in message and allowed in message, message
    assert KEY not in message
    assert emu.requests() == []


# -- 8. parameters the driver cannot represent ---------------------------------------------------------------------------------


@pytest.mark.parametrize("value", [2**63, -(2**63) - 1, 10**30])
def test_integers_beyond_64_bits_are_a_data_error(conn: apidriver.Connection, value: int) -> None:
    with pytest.raises(apidriver.DataError, match=r"parameter 1 .*64-bit"):
        conn.cursor().execute("SELECT * FROM Jobs WHERE id = ?", (value,))


def test_largest_64_bit_integers_work(conn: apidriver.Connection) -> None:
    assert conn.cursor().execute("SELECT ?, ?", (2**63 - 1, -(2**63))).fetchone() == (2**63 - 1, -(2**63))


@pytest.mark.parametrize("value", [math.nan, -math.nan])
def test_nan_is_refused(conn: apidriver.Connection, value: float) -> None:
    with pytest.raises(apidriver.DataError, match="NaN"):
        conn.cursor().execute("SELECT ?", (value,))


@pytest.mark.parametrize("sql", ["SELECT id FROM Jobs WHERE id = ?", "SELECT id FROM Jobs WHERE status = ?", "SELECT id FROM Tasks WHERE job_id = ?"])
def test_infinity_in_a_key_or_filter_works(emu: Emulator, conn: apidriver.Connection, sql: str) -> None:
    assert conn.cursor().execute(sql, (math.inf,)).fetchall() == []
    assert conn.cursor().execute(sql, (-math.inf,)).fetchall() == []


@pytest.mark.parametrize("size", [70_000, 10_000])
@pytest.mark.parametrize("sql", ["SELECT id FROM Jobs WHERE id = ?", "SELECT id FROM Jobs WHERE tag = ?"])
def test_huge_filter_or_key_values_are_a_data_error(emu: Emulator, conn: apidriver.Connection, sql: str, size: int) -> None:
    emu.clear_requests()
    with pytest.raises(apidriver.DataError, match="too long") as info:
        conn.cursor().execute(sql, ("x" * size,)).fetchall()
    assert len(str(info.value)) < 600
    assert emu.requests() == []


@pytest.mark.parametrize("value", [object(), {1, 2}, frozenset(), 1 + 2j, [object()], {"a": object()}, Ellipsis])
def test_unrepresentable_parameters_are_refused(emu: Emulator, conn: apidriver.Connection, value: Any) -> None:
    emu.clear_requests()
    with pytest.raises(apidriver.ProgrammingError, match=r"parameter 1 .*(cannot|not)"):
        conn.cursor().execute("SELECT * FROM Jobs WHERE tag = ?", (value,))
    with pytest.raises(apidriver.ProgrammingError, match=r"parameter :x .*(cannot|not)"):
        conn.cursor().execute("SELECT * FROM Jobs WHERE tag = :x", {"x": value})
    assert emu.requests() == []


def test_representable_parameters_still_bind(conn: apidriver.Connection) -> None:
    import datetime as dt
    import decimal
    import uuid
    from pathlib import PurePosixPath

    u = uuid.UUID(int=5)
    row = conn.cursor().execute(
        "SELECT ?, ?, ?, ?, ?, ?", (u, decimal.Decimal("1.5"), PurePosixPath("/a/b"), {"a": [1, dt.date(2024, 1, 2)]}, True, b"x")
    ).fetchone()
    assert row == (str(u), "1.5", "/a/b", '{"a":[1,"2024-01-02"]}', 1, b"x")


# -- 9. dot segments never reach another endpoint ---------------------------------------------------------------------------


@pytest.mark.parametrize("value", [".", "..", "../users/me", "./"])
@pytest.mark.parametrize(
    "sql",
    [
        "SELECT * FROM CancelTask(?)",
        "SELECT * FROM RetryTask(?)",
        "SELECT * FROM WaitTask(?)",
        "SELECT * FROM WaitJob(?)",
        "SELECT * FROM DeleteJob(?)",
        "DELETE FROM Jobs WHERE id = ?",
        "DELETE FROM Tasks WHERE id = ?",
    ],
)
def test_dot_segments_never_reach_another_endpoint(emu: Emulator, conn: apidriver.Connection, sql: str, value: str) -> None:
    emu.clear_requests()
    with pytest.raises(apidriver.NotFoundError):
        conn.cursor().execute(sql, (value,)).fetchall()
    for request in emu.requests():
        path = request["raw_path"]
        segments = path.split("/")
        assert "." not in segments and ".." not in segments
        assert path.count("/") >= 3, f"{request['method']} {path} reached another endpoint"
    if value in (".", ".."):
        assert emu.requests() == []


# -- 10. WaitJob / WaitTask limits ------------------------------------------------------------------------------------------


def test_wait_job_gives_up_after_wait_timeout(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(task_seconds=30)
    (job_id,) = new_jobs(emu, "slow")
    with connect_to(emu, WaitTimeout=0.6, Timeout=5) as conn:
        started = time.monotonic()
        with pytest.raises(apidriver.OperationalError, match=r"WaitJob.*0\.6 s.*WaitTimeout") as info:
            conn.cursor().execute("SELECT * FROM WaitJob(?)", (job_id,))
        elapsed = time.monotonic() - started
    assert 0.5 <= elapsed < 2.0, elapsed
    assert not isinstance(info.value, apidriver.InternalError)


def test_wait_task_takes_its_own_timeout_argument(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(task_seconds=30)
    (job_id,) = new_jobs(emu, "slow")
    task = raw_list(emu, "/tasks", **{"filter[job_id]": job_id})[0]
    with connect_to(emu) as conn:
        started = time.monotonic()
        with pytest.raises(apidriver.OperationalError, match=r"WaitTask.*0\.4 s"):
            conn.cursor().execute("SELECT * FROM WaitTask(?, 0.4)", (task["id"],))
        assert time.monotonic() - started < 2.0
        params = conn.cursor().execute(
            "SELECT name FROM sys_procedureparameters WHERE procedure_name IN ('WaitJob', 'WaitTask')"
        ).fetchall()
    assert params.count(("timeout",)) == 2


def test_wait_job_returns_when_the_job_ends(emu: Emulator) -> None:
    (job_id,) = new_jobs(emu, "quick")
    with connect_to(emu, WaitTimeout=10) as conn:
        ((status,),) = conn.cursor().execute("SELECT status FROM WaitJob(?)", (job_id,)).fetchall()
    assert status in ("finished", "error")


# -- 11. small things --------------------------------------------------------------------------------------------------------


def test_rowcount_after_a_failed_execute_is_minus_one(conn: apidriver.Connection) -> None:
    cur = conn.cursor()
    cur.execute("DELETE FROM Jobs WHERE id = ?", (raw_id := cur.execute("SELECT id FROM Jobs LIMIT 1").fetchone()[0],))
    assert cur.rowcount == 1 and raw_id
    with pytest.raises(apidriver.ProgrammingError):
        cur.execute("SELEC 1")
    assert cur.rowcount == -1


def test_unexpected_errors_read_as_one_sentence() -> None:
    from apidriver.engine.errors import translate

    error = translate(RuntimeError("Cannot send a request, as the client has been closed."))
    assert isinstance(error, apidriver.InternalError)
    assert ".." not in str(error) and str(error).endswith("Please report this.")


def test_api_messages_without_a_full_stop_still_read_well(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(credits=0)
    with connect_to(emu) as conn, pytest.raises(apidriver.InsufficientCreditsError) as info:
        conn.cursor().execute("INSERT INTO Jobs (tasks) VALUES (?)", (json.dumps(CONVERSION_TASKS),))
    assert "minutes. Add credits" in str(info.value)


def test_retries_and_waits_are_logged_at_info_and_give_ups_at_warning(emu: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    emu.add_fault("503", path="/v2/jobs", method="GET", count=1)
    emu.add_fault("429", path="/v2/tasks", method="GET", count=1)
    emu.add_fault("500", path="/v2/users/me", method="GET", count=100)
    with caplog.at_level(logging.INFO, logger="apidriver"), connect_to(emu, MaxRetries=1) as conn:
        conn.cursor().execute("SELECT count(*) FROM Jobs").fetchall()
        conn.cursor().execute("SELECT count(*) FROM Tasks WHERE status = 'error'").fetchall()
        with pytest.raises(apidriver.APIUnavailableError):
            conn.cursor().execute("SELECT * FROM Users").fetchall()
    records = [(r.levelno, r.getMessage()) for r in caplog.records if r.name.startswith("apidriver")]
    infos = [m for level, m in records if level == logging.INFO]
    warnings = [m for level, m in records if level == logging.WARNING]
    assert any("503" in m and "/v2/jobs" in m and "retrying" in m.lower() for m in infos), records
    assert any("429" in m and "/v2/tasks" in m and "waiting" in m.lower() for m in infos), records
    assert any("/v2/users/me" in m and "giving up" in m.lower() for m in warnings), records
    assert not any(level >= logging.WARNING for level, m in records if "/v2/jobs" in m or "/v2/tasks" in m)
