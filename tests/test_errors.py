"""API and network failures become clear DB-API errors; retries are bounded;
a failed page fails the query; the API key appears nowhere."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from typing import Any

import pytest

import apidriver
from apidriver.emulator import Emulator

from .conftest import connect_to

KEY = "sk-live-0123456789abcdef"


@pytest.fixture
def emu(make_emulator: Callable[..., Emulator]) -> Emulator:
    return make_emulator(jobs=30, seed=3, api_key=KEY, scoped_keys={"tasks-only": ["task.read"]})


def assert_no_key(error: BaseException) -> None:
    assert KEY not in str(error) and KEY not in repr(error)


def test_wrong_key_is_an_authentication_error(emu: Emulator) -> None:
    with apidriver.connect(APIKey="not-the-key", BaseURL=emu.base_url) as conn:
        with pytest.raises(apidriver.OperationalError) as info:
            conn.cursor().execute("SELECT * FROM Jobs")
    assert isinstance(info.value, apidriver.AuthenticationError)
    assert "APIKey" in str(info.value) and "401" in str(info.value)
    assert "not-the-key" not in str(info.value)


def test_missing_scope_is_named(emu: Emulator) -> None:
    with apidriver.connect(APIKey="tasks-only", BaseURL=emu.base_url) as conn:
        assert conn.cursor().execute("SELECT count(*) FROM Jobs").fetchone()[0] == 30
        with pytest.raises(apidriver.PermissionDeniedError) as info:
            conn.cursor().execute("SELECT * FROM Users")
    assert "user.read" in str(info.value) and info.value.status == 403


def test_operations_need_no_scope(emu: Emulator) -> None:
    with apidriver.connect(APIKey="tasks-only", BaseURL=emu.base_url) as conn:
        assert conn.cursor().execute("SELECT count(*) FROM Operations").fetchone()[0] > 2000


def test_server_errors_are_retried(emu: Emulator) -> None:
    emu.add_fault("503", path="/v2/jobs", method="GET", count=2)
    with connect_to(emu) as conn:
        cur = conn.cursor().execute("SELECT count(*) FROM Jobs")
        assert cur.fetchone() == (30,)
        statuses = [r.status for r in cur.requests]
    assert statuses[:3] == [503, 503, 200]


@pytest.mark.parametrize("kind", ["drop", "malformed", "500", "502"])
def test_transient_read_failures_are_retried(emu: Emulator, kind: str) -> None:
    emu.add_fault(kind, path="/v2/tasks", method="GET", count=1)
    with connect_to(emu) as conn:
        assert conn.cursor().execute("SELECT count(*) FROM Tasks WHERE status = 'finished'").fetchone()[0] > 0


def test_timeouts_are_retried(emu: Emulator) -> None:
    emu.add_fault("stall", path="/v2/users/me", count=1, stall_seconds=3)
    with connect_to(emu, Timeout=0.3) as conn:
        cur = conn.cursor().execute("SELECT username FROM Users")
        assert cur.fetchone() == ("emulator",)
        assert cur.requests[0].error is not None and "Timeout" in cur.requests[0].error


def test_persistent_failure_on_a_later_page_fails_the_query(emu: Emulator) -> None:
    emu.add_fault("500", path="/v2/jobs", method="GET", query="page=3", count=100)
    with connect_to(emu, PageSize=5, MaxRetries=2) as conn:
        cur = conn.cursor()
        with pytest.raises(apidriver.APIUnavailableError) as info:
            cur.execute("SELECT id FROM Jobs")
            cur.fetchall()
    assert "500" in str(info.value) and "3 attempts" in str(info.value)
    assert_no_key(info.value)


def test_failed_page_never_gives_a_partial_count(emu: Emulator) -> None:
    emu.add_fault("drop", path="/v2/jobs", method="GET", query="page=2", count=100)
    with connect_to(emu, PageSize=10, MaxRetries=1) as conn:
        with pytest.raises(apidriver.OperationalError):
            conn.cursor().execute("SELECT count(*) FROM Jobs").fetchall()


def test_rate_limit_waits_for_retry_after(emu: Emulator) -> None:
    emu.add_fault("429", path="/v2/jobs", method="GET", count=1)
    with connect_to(emu) as conn:
        started = time.monotonic()
        cur = conn.cursor().execute("SELECT count(*) FROM Jobs WHERE status = 'error'")
        cur.fetchall()
        assert time.monotonic() - started >= 1.0  # the emulator says Retry-After: 1
        assert [r.status for r in cur.requests] == [429, 200]


def test_rate_limit_that_does_not_clear_is_an_error(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(jobs=5, rate_limit=1, rate_window=600)
    with connect_to(emu) as conn:
        conn.cursor().execute("SELECT count(*) FROM Jobs").fetchall()
        with pytest.raises(apidriver.RateLimitError) as info:
            conn.cursor().execute("SELECT count(*) FROM Tasks").fetchall()
    assert "429" in str(info.value) and "MaxConcurrency" in str(info.value)


def test_unreachable_api(emu: Emulator) -> None:
    with apidriver.connect(APIKey=KEY, BaseURL="http://127.0.0.1:9", MaxRetries=1) as conn:
        with pytest.raises(apidriver.APIUnavailableError) as info:
            conn.cursor().execute("SELECT * FROM Users")
    assert "BaseURL" in str(info.value)
    assert_no_key(info.value)


def test_sql_errors_are_programming_errors(conn: apidriver.Connection) -> None:
    cur = conn.cursor()
    with pytest.raises(apidriver.ProgrammingError, match="no such table: Jobz.*sys_tables"):
        cur.execute("SELECT * FROM Jobz")
    with pytest.raises(apidriver.ProgrammingError, match="no such column: colour"):
        cur.execute("SELECT colour FROM Jobs")
    with pytest.raises(apidriver.ProgrammingError, match="syntax error"):
        cur.execute("SELEC * FROM Jobs")
    with pytest.raises(apidriver.ProgrammingError, match="parameters"):
        cur.execute("SELECT * FROM Jobs WHERE id = ?", ())


def test_empty_in_subquery(conn: apidriver.Connection) -> None:
    cur = conn.cursor()
    assert cur.execute("SELECT * FROM Jobs WHERE status IN (SELECT 'x' WHERE 0)").fetchall() == []
    assert cur.execute("SELECT * FROM Jobs WHERE id IN (SELECT 1 FROM (SELECT 1) WHERE 1 != 1)").fetchall() == []


def test_requests_are_logged_without_the_key(emu: Emulator, caplog: pytest.LogCaptureFixture) -> None:
    with caplog.at_level(logging.DEBUG, logger="apidriver"):
        with connect_to(emu) as conn:
            conn.cursor().execute("SELECT * FROM Jobs WHERE status = 'error'").fetchall()
    messages = [r.getMessage() for r in caplog.records if r.name == "apidriver"]
    assert any("GET" in m and "/v2/jobs" in m and "200" in m for m in messages)
    assert all(KEY not in m for m in caplog.text.splitlines())


@pytest.mark.parametrize("sql, params", [("SELECT :a", {}), ("SELECT :a", {"b": 1}), ("SELECT count(*) FROM Jobs WHERE tag = @t", {})])
def test_a_missing_named_parameter_says_which(conn: Any, sql: str, params: dict[str, Any]) -> None:
    with pytest.raises(apidriver.ProgrammingError, match=r"No value for the parameter :(a|t)"):
        conn.cursor().execute(sql, params)
