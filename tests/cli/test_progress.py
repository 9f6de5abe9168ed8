"""Progress of long scans: a line on stderr when it is a terminal, nothing otherwise."""

from __future__ import annotations

import re
import sys
from collections.abc import Callable

import pexpect
import pytest

from apidriver.emulator import Emulator

from .conftest import COMMAND, apidriver, connection, environment

SQL = "SELECT count(*) AS n FROM Jobs WHERE tag LIKE 'x%'"  # LIKE is not pushed: every page is read


@pytest.fixture
def slow(make_emulator: Callable[..., Emulator]) -> str:
    """A connection whose full scan reads 9 pages one after the other, each taking at least 0.15 s."""
    emulator = make_emulator(jobs=40, seed=1, latency_ms=150)
    return connection(emulator, PageSize="5", MaxConcurrency="1")


def test_progress_on_a_terminal(slow: str) -> None:
    child = pexpect.spawn(sys.executable, [*COMMAND[1:], "query", SQL, "--connect", slow], env=environment(), encoding="utf-8", timeout=60)
    child.expect(pexpect.EOF)
    child.close()
    assert child.exitstatus == 0
    assert re.search(r"\d+ requests? · \d+ rows? fetched · \d+\.\d s", child.before), child.before


def test_no_progress_when_stderr_is_not_a_terminal(slow: str) -> None:
    result = apidriver("query", SQL, "--connect", slow)
    assert result.returncode == 0
    assert result.stderr == ""
    assert result.stdout.splitlines()[-1].startswith("1 row · ")
