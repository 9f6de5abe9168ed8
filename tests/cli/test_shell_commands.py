"""The shell's sqlite3-style dot-commands (.read, .output, .once, .mode, .headers, .nullvalue,
.timer, .bail, .schema), errors naming their line, Ctrl-R, and DELETE asking first."""

from __future__ import annotations

import csv
import io
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest

from apidriver.emulator import Emulator

from ..conftest import raw_list
from .conftest import COMMAND, apidriver, connection, environment
from .test_shell import Terminal


def shell(emulator: Emulator, script: str, *args: str) -> Any:
    return apidriver("shell", "--connect", connection(emulator), *args, stdin=script)


def test_read_runs_a_file_and_its_errors_name_file_and_line(shared_emulator: Emulator, tmp_path: Path) -> None:
    nightly = tmp_path / "nightly.sql"
    nightly.write_text(".mode csv\nSELECT count(*) AS n\n  FROM Jobs;\n\nSELECT nope\n  FROM Jobs;\nSELECT 'after' AS s;\n")
    result = shell(shared_emulator, f"SELECT 1 AS one;\n.read {nightly}\nSELECT missing FROM Jobs;\n")
    assert result.returncode == 1
    assert f"n\n{len(raw_list(shared_emulator, '/jobs'))}\n" in result.stdout
    assert "s\nafter\n" in result.stdout  # without .bail the script goes on
    assert result.stderr.splitlines() == [
        f"apidriver: {nightly}:5: no such column: nope. See the columns with SELECT table_name, column_name FROM sys_tablecolumns.",
        "  SELECT nope   FROM Jobs;",
        "         ^--- error here",
        "apidriver: line 3: no such column: missing. See the columns with SELECT table_name, column_name FROM sys_tablecolumns.",
        "  SELECT missing FROM Jobs;",
        "         ^--- error here",
    ]


# Lines as sqlite3 3.40 numbers them ("Parse error near line N"): blank and comment lines before
# a statement are skipped, so N is the line its first word is on.
COMMENTED = """\
-- nightly report
-- (two lines of comments)

SELECT 1 AS one;
/* a block
   comment */
SELECT nope
  FROM Jobs;
SELECT 1 FRM Jobs;
SELECT 2 AS two; SELECT bad;
-- a comment, then a command
.mode csv
SELECT 'csv' AS format;
SELECT $a::b AS parameter;
SELECT 'ééé' AS accents, status,
       missing
  FROM Jobs;
"""


def test_script_errors_name_the_line_their_statement_starts_on(shared_emulator: Emulator) -> None:
    result = shell(shared_emulator, COMMENTED)
    assert result.returncode == 1
    assert result.stdout.endswith("format\ncsv\n")  # .mode csv after a comment is still a command
    columns = "See the columns with SELECT table_name, column_name FROM sys_tablecolumns."
    assert result.stderr.splitlines() == [
        f"apidriver: line 7: no such column: nope. {columns}",
        "  SELECT nope   FROM Jobs;",  # the statement on one line, as sqlite3 shows it
        "         ^--- error here",
        'apidriver: line 9: near "Jobs": syntax error',
        "  SELECT 1 FRM Jobs;",
        "               ^--- error here",
        f"apidriver: line 10: no such column: bad. {columns}",
        "  SELECT bad;",
        "         ^--- error here",
        # One parameter, as SQLite reads it (not $a and :b): the shell takes no values.
        "apidriver: line 14: no value for the parameter a::b; the shell takes no parameter values: write the values in the statement",
        f"apidriver: line 15: no such column: missing. {columns}",
        "  SELECT 'ééé' AS accents, status,        missing   FROM Jobs;",
        " " * 28 + "error here ---^",  # past column 25 the caret comes last, as in sqlite3 (here under characters, not bytes)
    ]


def test_bail_stops_a_script_at_its_first_error(shared_emulator: Emulator) -> None:
    script = ".bail on\n.mode csv\nSELECT 1 AS a;\nSELECT nope FROM Jobs;\nSELECT 2 AS b;\n"
    result = shell(shared_emulator, script)
    assert result.returncode == 1
    assert result.stdout == "a\n1\n"
    assert result.stderr.startswith("apidriver: line 4: no such column: nope")
    flagged = shell(shared_emulator, ".mode csv\nSELECT nope FROM Jobs;\nSELECT 2 AS b;\n", "--bail")
    assert flagged.returncode == 1 and flagged.stdout == ""


def test_output_and_once_send_results_to_files(shared_emulator: Emulator, tmp_path: Path) -> None:
    everything, once = tmp_path / "all.csv", tmp_path / "once.txt"
    script = (
        f".mode csv\n.once {once}\nSELECT 'first' AS a;\nSELECT 'second' AS a;\n"
        f".output {everything}\nSELECT 'third' AS a;\nSELECT 'fourth' AS a;\n.output\nSELECT 'fifth' AS a;\n"
    )
    result = shell(shared_emulator, script)
    assert result.returncode == 0, result.stderr
    assert once.read_text() == "a\nfirst\n"
    assert everything.read_text() == "a\nthird\na\nfourth\n"
    assert result.stdout == "a\nsecond\na\nfifth\n"


def test_output_files_in_table_format_get_the_data_only(shared_emulator: Emulator, tmp_path: Path) -> None:
    table, vertical = tmp_path / "table.txt", tmp_path / "vertical.txt"
    script = (
        f".output {table}\nSELECT 'first' AS a;\nSELECT 'second' AS a;\n.output\n"
        f".mode vertical\n.once {vertical}\nSELECT 'third' AS a;\nSELECT 'fourth' AS a;\n"
    )
    result = shell(shared_emulator, script)
    assert result.returncode == 0, result.stderr
    lines = [line.strip() for line in table.read_text().splitlines() if line.strip()]
    assert [line for line in lines if set(line) != {"─"}] == ["a", "first", "a", "second"]
    assert "row" not in table.read_text()  # no "1 row · 0 requests · 0.00 s"
    assert vertical.read_text() == "*************************** 1. row ***************************\na: third\n"
    assert re.fullmatch(r"\*+ 1\. row \*+\na: fourth\n1 row · 0 requests · \d\.\d\d s\n", result.stdout)  # stdout keeps it


def test_headers_nullvalue_mode_and_timer(shared_emulator: Emulator) -> None:
    jobs = raw_list(shared_emulator, "/jobs")
    script = ".mode tsv\n.headers off\n.nullvalue (none)\n.timer on\nSELECT id, tag FROM Jobs;\n.headers\n"
    result = shell(shared_emulator, script)
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout.split("headers: off")[0]), delimiter="\t"))
    assert {tuple(r) for r in rows} == {(j["id"], j["tag"] or "(none)") for j in jobs}
    assert "headers: off" in result.stdout
    assert re.fullmatch(r"Run time: \d+\.\d{3} s\n", result.stderr)


def test_schema_without_a_name_describes_every_table(shared_emulator: Emulator) -> None:
    result = shell(shared_emulator, ".schema\n")
    assert result.returncode == 0, result.stderr
    for table in ("Jobs", "Tasks", "TaskFiles", "TaskDependencies", "Users", "Webhooks", "Operations"):
        assert re.search(rf"^\s*{table}\b", result.stdout, re.MULTILINE), table
    assert "Rows: GET /users/me (scope user.read)." in result.stdout


def test_the_shell_takes_no_parameters(shared_emulator: Emulator) -> None:
    result = shell(shared_emulator, "SELECT id FROM Jobs WHERE id = ?;\n")
    assert result.returncode == 1
    assert "the shell takes no parameter values: write the values in the statement" in result.stderr
    assert "bindings" not in result.stderr


# -- in a pseudo-terminal ----------------------------------------------------------------------------


@pytest.fixture
def writable_terminal(make_emulator: Callable[..., Emulator], tmp_path: Path) -> Iterator[tuple[Terminal, Emulator]]:
    emu = make_emulator(jobs=6, seed=8)
    env = environment({"TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1", "NO_COLOR": "1"})
    history = tmp_path / "history"
    history.write_text("\n# 2026-01-01 00:00:00\n+SELECT count(*) AS jobs_counted FROM Jobs;\n")
    child = pexpect.spawn(
        sys.executable,
        [*COMMAND[1:], "shell", "--connect", connection(emu), "--history", str(history)],
        env={k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")},
        encoding="utf-8",
        timeout=30,
        dimensions=(40, 120),
    )
    try:
        yield Terminal(child), emu
    finally:
        child.close(force=True)


def test_ctrl_r_searches_the_history_without_crashing(writable_terminal: tuple[Terminal, Emulator]) -> None:
    terminal, emu = writable_terminal
    terminal.expect("apidriver>")
    terminal.send("\x12")  # Ctrl-R
    terminal.expect("reverse-i-search")
    terminal.send("jobs_count")
    terminal.expect_drawn("jobs_counted")
    terminal.send("\r")  # accept the found line ...
    terminal.send("\r")  # ... and run it
    shown = terminal.expect(r"1 row · \d+ requests?")
    assert re.search(rf"^\s+{len(raw_list(emu, '/jobs'))}\s*$", shown, re.MULTILINE), shown
    assert "Unhandled exception" not in terminal.seen
    terminal.expect("apidriver>")
    terminal.send(".quit\r")
    terminal.child.expect(pexpect.EOF)


def test_delete_asks_first_and_confirm_off_does_not(writable_terminal: tuple[Terminal, Emulator]) -> None:
    terminal, emu = writable_terminal
    first, second = sorted(j["id"] for j in raw_list(emu, "/jobs"))[:2]
    terminal.expect("apidriver>")
    terminal.send(f"DELETE FROM Jobs WHERE id = '{first}';\r")
    terminal.expect(r"Run it\? \[y/N\]")
    terminal.send("n\r")
    terminal.expect("Not run.")
    assert first in {j["id"] for j in raw_list(emu, "/jobs")}
    terminal.expect("apidriver>")
    terminal.send(f"DELETE FROM Jobs WHERE id = '{first}';\r")
    terminal.expect(r"Run it\? \[y/N\]")
    terminal.send("y\r")
    terminal.expect("1 row affected")
    terminal.expect("apidriver>")
    terminal.send(".confirm off\r")
    terminal.expect("apidriver>")
    terminal.send(f"DELETE FROM Jobs WHERE id = '{second}';\r")
    terminal.expect("1 row affected")
    assert "Run it?" not in terminal.seen.split(".confirm off")[1]
    assert {first, second}.isdisjoint(j["id"] for j in raw_list(emu, "/jobs"))
    terminal.send(".quit\r")
    terminal.child.expect(pexpect.EOF)
