"""``python -m apidriver.emulator``: the command-line form, run as a real subprocess."""

from __future__ import annotations

import re
import signal
import subprocess
import sys
import threading
from collections.abc import Iterator

import httpx
import pytest

COMMAND = [sys.executable, "-m", "apidriver.emulator"]


def first_line(process: subprocess.Popen[str], timeout: float = 20.0) -> str:
    """The first stdout line, without hanging the test if the command never prints."""
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline() if process.stdout else ""), daemon=True)
    reader.start()
    reader.join(timeout)
    assert lines, "the emulator printed nothing"
    return lines[0].rstrip("\n")


@pytest.fixture
def running() -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The emulator command with a key, 5 seeded jobs and a read-only key; killed afterwards."""
    process = subprocess.Popen(
        [*COMMAND, "--port", "0", "--api-key", "K", "--jobs", "5", "--seed", "1", "--scoped-key", "ro=task.read"],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        yield process, first_line(process)
    finally:
        if process.poll() is None:
            process.kill()
        process.wait(timeout=10)
        if process.stdout:
            process.stdout.close()
        if process.stderr:
            process.stderr.close()


def test_command_prints_its_root_url_and_serves(running: tuple[subprocess.Popen[str], str]) -> None:
    _, url = running
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", url), url
    jobs = httpx.get(f"{url}/v2/jobs", headers={"Authorization": "Bearer K"})
    assert jobs.status_code == 200
    assert len(jobs.json()["data"]) == 5
    assert httpx.get(f"{url}/v2/jobs", headers={"Authorization": "Bearer emulator-key"}).status_code == 401


def test_command_scoped_key(running: tuple[subprocess.Popen[str], str]) -> None:
    _, url = running
    headers = {"Authorization": "Bearer ro"}
    assert httpx.get(f"{url}/v2/jobs", headers=headers).status_code == 200
    me = httpx.get(f"{url}/v2/users/me", headers=headers)
    assert me.status_code == 403
    assert me.json()["code"] == "FORBIDDEN"


def test_command_stops_cleanly_on_interrupt(running: tuple[subprocess.Popen[str], str]) -> None:
    process, url = running
    assert httpx.get(f"{url}/v2/operations", params={"filter[input_format]": "docx"}).status_code == 200
    process.send_signal(signal.SIGINT)
    assert process.wait(timeout=10) == 0


@pytest.mark.parametrize(
    ("value", "message"),
    [("ro", "use KEY=scope,scope"), ("=task.read", "use KEY=scope,scope"), ("ro=task.read,tasks.write", "unknown scope(s) tasks.write")],
)
def test_bad_scoped_key_is_a_usage_error(value: str, message: str) -> None:
    result = subprocess.run([*COMMAND, "--scoped-key", value], capture_output=True, text=True, timeout=30)
    assert result.returncode == 2
    assert result.stdout == ""
    assert "Invalid value for '--scoped-key'" in result.stderr
    assert message in result.stderr
