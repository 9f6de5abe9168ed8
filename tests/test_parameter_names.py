"""``Connection.parameter_names``: a statement's parameters as SQLite numbers them, without running it."""

from __future__ import annotations

from typing import Any

import pytest

import apidriver


@pytest.mark.parametrize(
    ("sql", "names"),
    [
        ("SELECT 1", ()),
        ("SELECT ?, ?", (None, None)),
        ("SELECT ?3", (None, None, None)),  # ?NNN numbers the parameter: three values by position
        ("SELECT :a, @b, $c, :a", ("a", "b", "c")),  # the same name twice is one parameter
        ("SELECT $a::b, $x(y)", ("a::b", "x(y)")),  # Tcl-style names are one parameter each
        ("SELECT ':x' AS \"?\", id AS [@y] -- $z\nFROM Jobs /* :w */", ()),  # strings, quoted names and comments hold none
        ("SELECT * FROM Jobs WHERE status = :status AND tag = ?", ("status", None)),
    ],
)
def test_parameter_names(conn: Any, sql: str, names: tuple[str | None, ...]) -> None:
    assert conn.parameter_names(sql) == names


def test_parameter_names_send_nothing_and_leave_the_running_statement_alone(conn: Any) -> None:
    cursor = conn.cursor().execute("SELECT id FROM Jobs")
    requests = cursor.requests
    assert conn.parameter_names("SELECT * FROM Jobs j JOIN Tasks t ON t.job_id = j.id WHERE j.id = ?") == (None,)
    assert cursor.requests == requests
    assert len(cursor.fetchall()) > 1  # the first statement still steps


def test_parameter_names_raise_what_the_statement_would(conn: Any) -> None:
    with pytest.raises(apidriver.ProgrammingError, match="no such column: nope"):
        conn.parameter_names("SELECT nope FROM Jobs WHERE id = ?")
    with pytest.raises(apidriver.NotSupportedError, match="system table"):
        conn.parameter_names("DELETE FROM sys_tables WHERE name = ?")
