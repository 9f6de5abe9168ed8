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
        "apidriver: line 3: no such column: missing. See the columns with SELECT table_name, column_name FROM sys_tablecolumns.",
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
