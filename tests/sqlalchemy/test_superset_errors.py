"""The Superset spec's Superset-free parts (apidriver.sqlalchemy.superset_support) against real driver
errors and a real running statement: which error type each driver error gets, the message Superset
shows (never SQLAlchemy's "(builtins.NoneType) None [SQL: ...]" wrapping, never the key), and the
watch that stops a statement once Superset marks its query stopped."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.exc import DBAPIError

import apidriver
from apidriver.emulator import Emulator
from apidriver.sqlalchemy.superset_support import (
    KEY_HINT,
    StopWatch,
    driver_message,
    error_kind,
    shown_message,
)

from ..conftest import connect_to
from .conftest import url_for

WRONG_KEY = "sk-superset-wrong-4711"


def failure(connect: Callable[[], Any], sql: str) -> apidriver.Error:
    """The driver's error for ``sql`` on a new connection."""
    connection = connect()
    try:
        with pytest.raises(apidriver.Error) as raised:
            connection.cursor().execute(sql)
    finally:
        connection.close()
    return raised.value


def test_each_driver_error_gets_its_superset_type(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(jobs=3, scoped_keys={"users-only": ["user.read"]})

    def on(**properties: Any) -> Callable[[], Any]:
        properties.setdefault("APIKey", emu.api_key)
        return lambda: apidriver.connect(BaseURL=emu.base_url, **properties)

    cases = {
        "CONNECTION_INVALID_PASSWORD_ERROR": failure(on(APIKey=WRONG_KEY), "SELECT id FROM Jobs"),
        "CONNECTION_DATABASE_PERMISSIONS_ERROR": failure(on(APIKey="users-only"), "SELECT id FROM Jobs"),
        "COLUMN_DOES_NOT_EXIST_ERROR": failure(on(), "SELECT nosuchcolumn FROM Jobs"),
        "TABLE_DOES_NOT_EXIST_ERROR": failure(on(), "SELECT * FROM NoSuchTable"),
        "SYNTAX_ERROR": failure(on(), "SELEC id FROM Jobs"),
    }
    unreachable = failure(lambda: apidriver.connect(APIKey=WRONG_KEY, BaseURL="http://127.0.0.1:9", MaxRetries=0), "SELECT id FROM Jobs")
    emu.add_fault("503", path="/v2/jobs", rate=1.0)
    down = failure(on(MaxRetries=0), "SELECT id FROM Jobs")
    emu.clear_faults()
    emu.add_fault("429", path="/v2/jobs", rate=1.0, retry_after=0)
    limited = failure(on(MaxRetries=0), "SELECT id FROM Jobs")
    emu.clear_faults()

    assert isinstance(cases["CONNECTION_INVALID_PASSWORD_ERROR"], apidriver.AuthenticationError)
    assert isinstance(cases["CONNECTION_DATABASE_PERMISSIONS_ERROR"], apidriver.PermissionDeniedError)
    assert isinstance(unreachable, apidriver.APIUnavailableError) and isinstance(down, apidriver.APIUnavailableError)
    assert isinstance(limited, apidriver.RateLimitError)
    for kind, error in cases.items():
        assert error_kind(str(error)) == kind, error
    assert error_kind(str(unreachable)) == error_kind(str(down)) == "CONNECTION_HOST_DOWN_ERROR"
    assert error_kind(str(limited)) == "GENERIC_DB_ENGINE_ERROR"


def test_a_wrong_key_shows_the_drivers_message_however_superset_wraps_it(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(jobs=3)
    engine = create_engine(url_for(emu, key=WRONG_KEY))
    try:
        with pytest.raises(DBAPIError) as raised, engine.connect() as conn:
            conn.execute(text("SELECT id FROM Jobs"))
    finally:
        engine.dispose()
    wrapped = raised.value
    original = wrapped.orig
    assert isinstance(original, apidriver.AuthenticationError)
    # Superset's "test connection" keeps only the text: DBAPIError(str(error), None, None).
    text_only = DBAPIError(str(original), None, None)  # type: ignore[arg-type]
    assert str(text_only).startswith("(builtins.NoneType) None")
    # SQL Lab hands over str() of its own exception, chained from the driver's.
    sql_lab_text = f"cloudconvert error: {shown_message(original)}"

    expected = str(original) + KEY_HINT
    assert shown_message(original) == shown_message(wrapped) == shown_message(text_only) == expected
    assert shown_message(sql_lab_text) == sql_lab_text  # the hint is not added twice
    assert expected.startswith("The API rejected the credentials (401 UNAUTHENTICATED).")
    for message in (expected, sql_lab_text):
        assert WRONG_KEY not in message and "builtins" not in message and "[SQL:" not in message


def test_errors_the_driver_did_not_raise_are_left_to_superset() -> None:
    assert driver_message(ValueError("something else")) is None
    assert driver_message(DBAPIError("SELECT 1", None, ValueError("boom"))) is None  # type: ignore[arg-type]


def test_the_watch_interrupts_a_running_statement_once_the_query_is_stopped(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(jobs=5)
    emu.add_fault("stall", path="/v2/jobs", stall_seconds=30, count=1)  # the statement waits on this answer
    connection = connect_to(emu)
    stopped = threading.Event()

    def stop_once_the_request_waits() -> None:
        deadline = time.monotonic() + 20
        while not emu.pending_requests() and time.monotonic() < deadline:
            time.sleep(0.01)
        stopped.set()  # what Superset's Stop does: the query's status becomes "stopped"

    threading.Thread(target=stop_once_the_request_waits, daemon=True).start()
    started = time.monotonic()
    with StopWatch(stopped.is_set, connection.interrupt, interval=0.02) as watch, pytest.raises(apidriver.QueryCancelledError):
        connection.cursor().execute("SELECT status, count(*) FROM Jobs GROUP BY status")
    assert watch.interrupted and time.monotonic() - started < 20  # not the 30 s stall
    cursor = connection.cursor()
    cursor.execute("SELECT count(*) FROM Jobs")  # the connection stays usable
    assert cursor.fetchone() == (5,)
    connection.close()


def test_an_unstopped_query_runs_to_its_end_and_a_failing_check_is_tolerated(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(jobs=5, latency_ms=100)
    connection = connect_to(emu)
    checks: list[int] = []

    def metadata_unreachable() -> bool:
        checks.append(1)
        raise RuntimeError("database is locked")

    interrupts: list[int] = []
    with StopWatch(metadata_unreachable, lambda: interrupts.append(1), interval=0.01) as watch:
        cursor = connection.cursor()
        cursor.execute("SELECT count(*) FROM Jobs")
        assert cursor.fetchone() == (5,)
    after = len(checks)
    time.sleep(0.05)
    assert checks and len(checks) == after  # it asked while the statement ran, and stopped asking with the block
    assert not watch.interrupted and not interrupts
    connection.close()
