"""Failures: one line on stderr and a non-zero status; --debug shows the traceback."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from apidriver.emulator import Emulator

from .conftest import apidriver, connection

HINT = (
    'apidriver: no connection: pass --connect "APIKey=...", or set APIDRIVER_CONNECTION or CLOUDCONVERT_API_KEY '
    "(try: apidriver demo)\n"
)


@pytest.mark.parametrize("command", [["query", "SELECT * FROM Jobs"], ["shell"]])
def test_missing_key_is_a_one_line_hint(command: list[str]) -> None:
    result = apidriver(*command)
    assert result.returncode == 2
    assert result.stderr == HINT
    assert result.stdout == ""


def test_missing_key_in_a_connection_string(shared_emulator: Emulator) -> None:
    result = apidriver("query", "SELECT * FROM Jobs", "--connect", f"BaseURL={shared_emulator.base_url}")
    assert result.returncode == 2
    assert result.stderr.startswith("apidriver: no API key: pass --connect")
    assert result.stderr.count("\n") == 1


def test_wrong_key_is_one_line(shared_emulator: Emulator) -> None:
    result = apidriver("query", "SELECT * FROM Users", "--connect", f"APIKey=wrong;BaseURL={shared_emulator.base_url}")
    assert result.returncode == 1
    assert result.stderr.startswith("apidriver: The API rejected the credentials (401")
    assert result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    assert "wrong" not in result.stderr  # the key never shows
    assert result.stdout == ""


def test_debug_shows_the_traceback(shared_emulator: Emulator) -> None:
    result = apidriver("--debug", "query", "SELECT * FROM Users", "--connect", f"APIKey=wrong;BaseURL={shared_emulator.base_url}")
    assert result.returncode == 1
    assert result.stderr.startswith("Traceback (most recent call last):")
    assert result.stderr.rstrip().splitlines()[-1].startswith("apidriver.exceptions.AuthenticationError: ")


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT nope FROM Jobs", "apidriver: no such column: nope."),
        ("SELECT * FROM Nope", "apidriver: no such table: Nope."),
        ("UPDATE Jobs SET tag = 'x'", "apidriver: The API cannot change existing Jobs"),
    ],
)
def test_sql_errors_are_one_line(shared_emulator: Emulator, sql: str, message: str) -> None:
    result = apidriver("query", sql, "--connect", connection(shared_emulator))
    assert result.returncode == 1
    assert result.stderr.startswith(message)
    assert result.stderr.count("\n") == 1


def test_bad_connection_property(shared_emulator: Emulator) -> None:
    result = apidriver("query", "SELECT 1", "--connect", connection(shared_emulator, Bogus="1"))
    assert result.returncode == 1
    assert result.stderr.startswith("apidriver: Unknown connection property Bogus. Known properties: ")
    assert result.stderr.count("\n") == 1


def test_api_error_during_a_scan(make_emulator: Callable[..., Emulator]) -> None:
    """A failing page fails the statement: nothing on stdout, one line on stderr."""
    emulator = make_emulator(jobs=3)
    emulator.add_fault("500", path="/v2/tasks", method="GET")
    result = apidriver("query", "SELECT id FROM Tasks", "-f", "csv", "--connect", connection(emulator, MaxRetries="0"))
    assert result.returncode == 1
    assert result.stdout == ""
    assert result.stderr.startswith("apidriver: ")
    assert "500" in result.stderr
    assert result.stderr.count("\n") == 1
