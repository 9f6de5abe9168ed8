"""Testing a connection, as Superset's "Test connection" and pool_pre_ping do: ``do_ping``
sends one small request, so a wrong key or an unreachable API fails there, not at the
first query."""

from __future__ import annotations

import socket
from collections.abc import Callable

import pytest
from sqlalchemy import create_engine, text

import apidriver
from apidriver.emulator import Emulator

from .conftest import url_for


def ping(url: str) -> bool:
    """What Superset's test-db does: a raw connection, then the dialect's do_ping."""
    engine = create_engine(url)
    try:
        connection = engine.raw_connection()
        try:
            return bool(engine.dialect.do_ping(connection))  # Superset passes the pool's proxy as is
        finally:
            connection.close()
    finally:
        engine.dispose()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def test_a_good_key_pings_with_one_small_request(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator(jobs=3, seed=1)
    emu.clear_requests()
    assert ping(url_for(emu)) is True
    [request] = emu.requests()
    assert (request["method"], request["path"], request["status"]) == ("GET", "/v2/jobs", 200)
    assert dict(request["params"])["per_page"] == "1"


def test_a_wrong_key_fails_the_ping_without_showing_it(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator()
    with pytest.raises(apidriver.AuthenticationError) as failed:
        ping(url_for(emu, key="sk-wrong-key-Zx81"))
    assert "sk-wrong-key-Zx81" not in str(failed.value)
    assert "Check the APIKey" in str(failed.value)


def test_an_unreachable_api_fails_the_ping(make_emulator: Callable[..., Emulator]) -> None:
    url = f"cloudconvert://:some-key@?BaseURL=http%3A%2F%2F127.0.0.1%3A{free_port()}&MaxRetries=0&Timeout=2"
    with pytest.raises(apidriver.OperationalError):
        ping(url)


def test_a_key_without_the_scope_of_the_ping_still_passes(make_emulator: Callable[..., Emulator]) -> None:
    """403 means the API knows the key: the connection works, some tables will be refused."""
    emu = make_emulator(scoped_keys={"user-only": ["user.read"]})
    assert ping(url_for(emu, key="user-only")) is True


def test_pre_ping_checks_a_reused_connection_with_one_request(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator()
    engine = create_engine(url_for(emu), pool_pre_ping=True)
    with engine.connect() as conn:  # a new connection is not pinged
        conn.execute(text("SELECT 1"))
    emu.clear_requests()
    with engine.connect() as conn:
        assert conn.execute(text("SELECT 1")).scalar_one() == 1
    assert [(r["method"], r["path"]) for r in emu.requests()] == [("GET", "/v2/jobs")]
    engine.dispose()


def test_ping_on_a_closed_dbapi_connection_says_so(make_emulator: Callable[..., Emulator]) -> None:
    emu = make_emulator()
    connection = apidriver.connect(APIKey=emu.api_key, BaseURL=emu.base_url)
    connection.close()
    with pytest.raises(apidriver.InterfaceError):
        connection.ping()
