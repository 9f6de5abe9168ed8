"""The interactive shell's history file holds statements (names, values): a new one is its owner's only."""

from __future__ import annotations

import os
import stat
import sys
from pathlib import Path

import pexpect

from apidriver.emulator import Emulator

from .conftest import COMMAND, connection, environment


def test_a_new_history_file_is_its_owners_only(shared_emulator: Emulator, tmp_path: Path) -> None:
    """Issue #16: ~/.apidriver_history was created 0644."""
    history = tmp_path / "history"
    env = environment({"TERM": "xterm", "PROMPT_TOOLKIT_NO_CPR": "1", "NO_COLOR": "1"})
    child = pexpect.spawn(
        sys.executable,
        [*COMMAND[1:], "shell", "--connect", connection(shared_emulator), "--history", str(history)],
        env=env,
        encoding="utf-8",
        timeout=30,
        dimensions=(50, 160),
    )
    try:
        child.expect("apidriver>")
        child.send("SELECT 'secret' AS s;\r")
        child.expect("apidriver>")
        child.send("\x04")
        child.expect(pexpect.EOF)
    finally:
        child.close(force=True)
    assert "SELECT 'secret'" in history.read_text()
    assert stat.S_IMODE(os.stat(history).st_mode) == 0o600
