"""Long statements on a terminal: a progress line on stderr (requests, rows read from the API,
rows returned), nothing when stderr is not a terminal; Ctrl-C ends them with status 130."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable
from pathlib import Path

import pexpect
import pytest

from apidriver.emulator import Emulator

from .conftest import COMMAND, apidriver, connection, environment

SQL = "SELECT count(*) AS n FROM Jobs WHERE tag LIKE 'x%'"  # LIKE is not pushed: every page is read
ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]|\r")


@pytest.fixture
def slow(make_emulator: Callable[..., Emulator]) -> str:
    """A connection whose full scan reads 9 pages one after the other, each taking at least 0.15 s."""
    emulator = make_emulator(jobs=40, seed=1, latency_ms=150)
    return connection(emulator, PageSize="5", MaxConcurrency="1")


@pytest.fixture
def slower(make_emulator: Callable[..., Emulator]) -> str:
    """A connection whose full scan takes at least 30 pages × 0.3 s: time to press Ctrl-C in the middle."""
    emulator = make_emulator(jobs=60, seed=1, latency_ms=300)
    return connection(emulator, PageSize="2", MaxConcurrency="1")


def spawn(*args: str) -> pexpect.spawn:
    """``apidriver ARGS`` in an 80×24 pseudo-terminal."""
    return pexpect.spawn(sys.executable, [*COMMAND[1:], *args], env=environment({"TERM": "xterm"}), encoding="utf-8", timeout=60, dimensions=(24, 80))


def test_progress_on_a_terminal(slow: str) -> None:
    child = spawn("query", SQL, "--connect", slow)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    shown = ANSI.sub("", child.before)
    # count(*) returns nothing until every page is read: the line counts the rows read meanwhile.
    assert re.search(r"\d+ requests? · [1-9][\d,]* rows? read · 0 returned · \d+\.\d s", shown), shown


def test_no_progress_when_stderr_is_not_a_terminal(slow: str) -> None:
    result = apidriver("query", SQL, "--connect", slow)
    assert result.returncode == 0
    assert result.stderr == ""
    assert result.stdout.splitlines()[-1].startswith("1 row · ")


def test_ctrl_c_cancels_a_query_with_status_130(slower: str) -> None:
    child = spawn("query", "SELECT status, count(*) FROM Jobs GROUP BY status", "--connect", slower)
    child.expect(r"[2-9] requests · \d+ rows read")  # under way, in the middle of its pages
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130, child.before
    shown = ANSI.sub("", child.before)
    assert shown.rstrip().endswith("apidriver: interrupted"), shown
    assert "Traceback" not in shown and "Aborted!" not in shown and "status" not in shown  # no result either


def test_ctrl_c_stops_a_piped_script_with_status_130(slower: str, tmp_path: Path) -> None:
    script = tmp_path / "script.sql"
    script.write_text(".mode csv\nSELECT 'first' AS a;\nSELECT status, count(*) FROM Jobs GROUP BY status;\nSELECT 'after' AS a;\n")
    command = " ".join(["exec", *COMMAND, "shell", "--connect", f"'{slower}'", "<", str(script)])
    child = pexpect.spawn("/bin/sh", ["-c", command], env=environment({"TERM": "xterm"}), encoding="utf-8", timeout=60, dimensions=(24, 80))
    child.expect("first")
    child.expect(r"[2-9] requests · \d+ rows read")
    child.sendintr()
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 130, child.before
    shown = ANSI.sub("", child.before)
    assert "after" not in shown, shown  # the script stops, as sqlite3's does
    assert "Traceback" not in shown, shown
