"""``apidriver shell``: statements from piped stdin, and the interactive shell through a pseudo-terminal."""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pexpect
import pytest
from prompt_toolkit.completion import CompleteEvent
from prompt_toolkit.document import Document

from apidriver.cli.shell import SqlCompleter
from apidriver.cli.statement import split_statements
from apidriver.emulator import Emulator

from ..conftest import raw_list
from .conftest import COMMAND, apidriver, connection, environment

SCRIPT = """\
.tables
SELECT id,
       status
FROM Jobs
WHERE status = 'error';
.requests
.schema Jobs
SELECT nope FROM Jobs;
.format csv
SELECT count(*) AS n FROM Jobs; SELECT 'x;y' AS s;
.quit
SELECT 'never' AS after_quit;
"""


def test_shell_runs_piped_statements(shared_emulator: Emulator, tmp_path: Path) -> None:
    result = apidriver("shell", "--connect", connection(shared_emulator), "--history", str(tmp_path / "history"), stdin=SCRIPT)
    assert result.returncode == 1  # one statement failed
    out = result.stdout
    assert re.search(r"^Jobs +Tasks +sys_procedureparameters$", out, re.MULTILINE)  # .tables, in columns
    failed = raw_list(shared_emulator, "/jobs", **{"filter[status]": "error"})
    for job in failed:
        assert re.search(rf"{job['id']}\s+error", out)  # the multi-line statement
    requests = [line for line in out.splitlines() if line.startswith("GET ")]  # .requests
    assert len(requests) == 1 and "filter%5Bstatus%5D=error" in requests[0]
    assert "Rows: GET /jobs, GET /jobs/{id} (scope task.read)." in out  # .schema Jobs
    assert "n\n" + str(len(raw_list(shared_emulator, "/jobs"))) + "\n" in out  # .format csv
    assert "s\nx;y\n" in out  # two statements on one line, a ';' inside a string
    assert "after_quit" not in out  # .quit
    assert result.stderr.splitlines() == [
        "apidriver: line 8: no such column: nope. See the columns with SELECT table_name, column_name FROM sys_tablecolumns.",
        "  SELECT nope FROM Jobs;",
        "         ^--- error here",
    ]
    assert not (tmp_path / "history").exists()  # no history without a terminal


def test_shell_script_without_errors(shared_emulator: Emulator) -> None:
    script = "SELECT username\n  FROM Users;\nSELECT 1 AS one\n"  # the last statement may lack its ';'
    result = apidriver("shell", "--format", "jsonl", "--connect", connection(shared_emulator), stdin=script)
    assert result.returncode == 0, result.stderr
    assert [json.loads(line) for line in result.stdout.splitlines()] == [{"username": "emulator"}, {"one": 1}]


def test_shell_writes(make_emulator: Any) -> None:
    emulator = make_emulator(jobs=4, seed=5)
    script = ".format csv\nDELETE FROM Jobs WHERE status IN ('finished', 'error', 'waiting');\nSELECT count(*) AS n FROM Jobs;\n"
    result = apidriver("shell", "--connect", connection(emulator), stdin=script)
    assert result.returncode == 0, result.stderr
    rows = list(csv.reader(io.StringIO(result.stdout)))
    assert rows == [["rows_affected"], ["4"], ["n"], ["0"]]
    assert raw_list(emulator, "/jobs") == []


@pytest.mark.parametrize(
    ("text", "statements"),
    [
        ("SELECT 1; -- the end", ["SELECT 1;"]),
        ("SELECT ';' AS a;\nSELECT 2", ["SELECT ';' AS a;", "SELECT 2"]),
        ("/* nothing */ ;\n;", []),
        ("-- first\nSELECT 1;", ["SELECT 1;"]),  # from its first word: a caret's offset is counted from there
        ("/* a; b */ SELECT 1 /* c; */; /* open", ["SELECT 1 /* c; */;"]),
    ],
)
def test_split_statements(text: str, statements: list[str]) -> None:
    assert split_statements(text) == statements


def completions(completer: SqlCompleter, text: str) -> list[str]:
    return [c.text for c in completer.get_completions(Document(text), CompleteEvent(completion_requested=True))]


def test_completer() -> None:
    completer = SqlCompleter({"Jobs": ["id", "tag", "status"], "Tasks": ["id", "job_id", "status", "operation"]}, ["WaitJob"])
    assert completions(completer, "SELECT * FROM Ta") == ["Tasks"]
    assert completions(completer, "select * from jobs j join tasks t on t.") == ["id", "job_id", "status", "operation"]
    assert completions(completer, "SELECT j.") == ["id", "tag", "status", "job_id", "operation"]  # no FROM yet
    assert completions(completer, "SELECT sta FROM Jobs".replace(" FROM Jobs", "")) == ["status"]
    assert completions(completer, "SELECT o") == ["operation", "OR", "ON", "ORDER", "OFFSET"]
    assert completions(completer, "SELECT * FROM Wa") == ["WaitJob"]
    assert completions(completer, "SELECT * FROM Jobs JOIN t") == ["Tasks"]
    assert completions(completer, "SELECT t") == ["Tasks", "tag", "THEN"]
    assert completions(completer, "SELECT * FROM Jobs WHERE ") == []
    assert completions(completer, ".sch") == [".schema"]
    assert completions(completer, ".schema Ta") == ["Tasks"]
    assert completions(completer, ".format j") == ["json", "jsonl"]


# -- the interactive shell, through a pseudo-terminal ---------------------------------------------------

ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\x1b[=>]|\r")


class Terminal:
    """The shell in a pseudo-terminal; ``expect`` waits for text on the screen stream."""

    def __init__(self, child: Any) -> None:
        self.child = child
        self.seen = ""

    def expect(self, pattern: str) -> str:
        self.child.expect(pattern)
        text = ANSI.sub("", self.child.before + self.child.after)
        self.seen += text
        return text

    def expect_drawn(self, text: str) -> str:
        """Wait for ``text`` on the screen, drawn in one refresh or in several (escapes between)."""
        return self.expect(r"(\x1b\[[0-9;?]*[A-Za-z])*".join(re.escape(c) for c in text))

    def send(self, text: str) -> None:
        self.child.send(text)


def spawn_shell(emulator: Emulator, history: Path, rows: int, columns: int) -> Terminal:
    """``apidriver shell`` in a pseudo-terminal of ``rows`` × ``columns``."""
    env = environment({"TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1", "NO_COLOR": "1"})
    child = pexpect.spawn(
        sys.executable,
        [*COMMAND[1:], "shell", "--connect", connection(emulator), "--history", str(history)],
        env={k: v for k, v in env.items() if k not in ("COLUMNS", "LINES")},
        encoding="utf-8",
        timeout=30,
        dimensions=(rows, columns),
    )
    return Terminal(child)


@pytest.fixture
def terminal(shared_emulator: Emulator, tmp_path: Path) -> Iterator[Terminal]:
    shell = spawn_shell(shared_emulator, tmp_path / "history", 50, 160)
    try:
        yield shell
    finally:
        shell.child.close(force=True)


@pytest.fixture
def terminal_80(shared_emulator: Emulator, tmp_path: Path) -> Iterator[Terminal]:
    """The shell on an 80×24 terminal."""
    shell = spawn_shell(shared_emulator, tmp_path / "history", 24, 80)
    try:
        yield shell
    finally:
        shell.child.close(force=True)


def test_shell_interactive(terminal: Terminal, shared_emulator: Emulator, tmp_path: Path) -> None:
    terminal.expect("apidriver>")
    # Multi-line: Enter before the ';' continues the statement.
    terminal.send("SELECT count(*) AS n\r")
    terminal.expect(r"\.\.\.>")
    # Tab completes the table name: an incomplete name would be an error.
    terminal.send("FROM TaskDep\t")
    terminal.expect_drawn("TaskDependencies")
    terminal.send(";\r")
    shown = terminal.expect(r"1 row · \d+ requests? ")
    count = len([d for t in raw_list(shared_emulator, "/tasks") for d in t["depends_on_task_ids"]])
    assert re.search(rf"^\s+{count}\s*$", shown, re.MULTILINE), shown
    terminal.expect("apidriver>")
    terminal.send(".requests\r")
    requests = terminal.expect(r"-> 200 in [0-9.]+ ms")
    assert f"GET {shared_emulator.base_url}/v2/tasks?" in requests
    terminal.expect("apidriver>")
    # Column completion after an alias (before its FROM is typed: every table's columns).
    terminal.send("SELECT j.stat\t")
    terminal.expect_drawn("j.status")  # the completion may be drawn in a later refresh than the typing
    terminal.send(" FROM Jobs j WHERE j.stat\t")
    terminal.expect_drawn("WHERE j.status")
    terminal.send(" = 'error' LIMIT 1;\r")
    terminal.expect(r"1 row · 1 request ")  # status = ? and LIMIT: both sent to the API
    terminal.expect("apidriver>")
    terminal.send(".schema Users\r")
    schema = terminal.expect("tasks_per_minute")
    assert "Rows: GET /users/me (scope user.read)." in schema
    terminal.expect("apidriver>")
    terminal.send("\x04")  # Ctrl-D leaves
    terminal.child.expect(pexpect.EOF)
    terminal.child.close()
    assert terminal.child.exitstatus == 0
    history = (tmp_path / "history").read_text()
    assert "+SELECT count(*) AS n\n+FROM TaskDependencies;" in history
    assert "+.requests" in history


def test_shell_interactive_error_then_continues(terminal: Terminal) -> None:
    terminal.expect("apidriver>")
    terminal.send("SELECT * FROM Nope;\r")
    terminal.expect("apidriver: no such table: Nope")
    terminal.expect("apidriver>")
    terminal.send("SELECT 40 + 2 AS answer;\r")
    shown = terminal.expect(r"1 row · 0 requests")
    assert re.search(r"^\s+42\s*$", shown, re.MULTILINE), shown
    terminal.send(".quit\r")
    terminal.child.expect(pexpect.EOF)
    terminal.child.close()
    assert terminal.child.exitstatus == 0


def test_tables_in_columns_on_80_columns(terminal_80: Terminal) -> None:
    terminal_80.expect("apidriver>")
    terminal_80.send(".tables\r")
    terminal_80.expect(r"Jobs +Tasks +sys_procedureparameters")  # the first line ...
    terminal_80.expect(r"VerifyWebhookSignature\(\)[^\n]*\n")  # ... to the last
    shown = terminal_80.seen[terminal_80.seen.rindex("Jobs ") :]
    lines = [line for line in shown.splitlines() if line.strip()]
    names = shown.split()
    tables = ["Jobs", "Operations", "TaskDependencies", "TaskFiles", "Tasks", "Users", "Webhooks"]
    system = ["sys_foreignkeys", "sys_procedureparameters", "sys_procedures", "sys_tablecolumns", "sys_tables"]
    procedures = ["CancelTask()", "ConvertFile()", "CreateJob()", "DeleteJob()", "RetryTask()", "VerifyWebhookSignature()", "WaitJob()", "WaitTask()"]
    assert sorted(names) == sorted(tables + system + procedures)
    assert len(lines) == 7 and all(len(line) <= 80 for line in lines), shown  # 3 columns of 25: 4 lines of tables, 3 of procedures
    assert lines[0].split() == ["Jobs", "Tasks", "sys_procedureparameters"]  # down each column first, as sqlite3
    assert lines[4].split() == ["CancelTask()", "DeleteJob()", "WaitJob()"]
    terminal_80.expect("apidriver>")
    terminal_80.send(".tables %job%\r")
    terminal_80.expect(r"Jobs\r\nCreateJob\(\) +DeleteJob\(\) +WaitJob\(\)\r\n")  # nothing else matches
    terminal_80.expect("apidriver>")
    terminal_80.send(".quit\r")
    terminal_80.child.expect(pexpect.EOF)


def test_errors_at_the_prompt_point_at_their_place(terminal_80: Terminal) -> None:
    terminal_80.expect("apidriver>")
    terminal_80.send("SELECT id, nope FROM Jobs;\r")
    shown = terminal_80.expect(r"\^--- error here")
    assert "apidriver: no such column: nope" in shown
    assert f"\n  SELECT id, nope FROM Jobs;\n{' ' * 13}^--- error here" in shown, shown
    terminal_80.expect("apidriver>")
    terminal_80.send("SELECT 1 FRM Jobs;\r")
    shown = terminal_80.expect(r"\^--- error here")
    caret = " " * 15 + "^--- error here"
    assert f'apidriver: near "Jobs": syntax error\n  SELECT 1 FRM Jobs;\n{caret}' in shown, shown
    terminal_80.expect("apidriver>")
    terminal_80.send(".quit\r")
    terminal_80.child.expect(pexpect.EOF)


def test_once_at_the_prompt_writes_data_and_shows_the_summary(terminal_80: Terminal, tmp_path: Path) -> None:
    target = tmp_path / "once.txt"
    terminal_80.expect("apidriver>")
    terminal_80.send(f".once {target}\r")
    terminal_80.expect("apidriver>")
    terminal_80.send("SELECT 'kept' AS a;\r")
    terminal_80.expect(r"1 row · 0 requests · \d+\.\d\d s")  # on the terminal ...
    assert [line.strip() for line in target.read_text().splitlines() if line.strip()] == ["a", "──────", "kept"]  # ... not in the file
    terminal_80.expect("apidriver>")
    terminal_80.send(".quit\r")
    terminal_80.child.expect(pexpect.EOF)
