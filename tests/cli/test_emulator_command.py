"""``apidriver emulator``: the emulator's own command line, run as a subprocess."""

from __future__ import annotations

import re
import subprocess
import threading
from collections.abc import Iterator

import httpx
import pytest

from .conftest import COMMAND, apidriver, environment


@pytest.fixture
def root_url() -> Iterator[str]:
    """``apidriver emulator --port 0 --jobs 3 --api-key K``'s first stdout line; the process is killed afterwards."""
    process = subprocess.Popen(
        [*COMMAND, "emulator", "--port", "0", "--jobs", "3", "--seed", "2", "--api-key", "K"],
        stdout=subprocess.PIPE,
        stderr=subprocess.DEVNULL,
        text=True,
        env=environment(),
    )
    lines: list[str] = []
    assert process.stdout is not None
    reader = threading.Thread(target=lambda: lines.append(process.stdout.readline() if process.stdout else ""), daemon=True)
    try:
        reader.start()
        reader.join(30)
        assert lines and lines[0], "the emulator printed nothing"
        yield lines[0].rstrip("\n")
    finally:
        process.kill()
        process.wait(timeout=10)
        process.stdout.close()


def test_emulator_prints_its_root_url_and_serves(root_url: str) -> None:
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", root_url), root_url
    jobs = httpx.get(f"{root_url}/v2/jobs", headers={"Authorization": "Bearer K"})
    assert jobs.status_code == 200
    assert len(jobs.json()["data"]) == 3
    counted = apidriver("query", "SELECT count(*) AS n FROM Jobs", "-f", "csv", "--connect", f"APIKey=K;BaseURL={root_url}")
    assert counted.stdout == "n\n3\n", counted.stderr


def test_emulator_takes_the_emulators_own_options() -> None:
    result = apidriver("emulator", "--help")
    assert result.returncode == 0
    for option in ("--port", "--api-key", "--scoped-key", "--jobs", "--seed", "--latency-ms", "--rate-limit", "--task-seconds", "--credits"):
        assert option in result.stdout
    wrong = apidriver("emulator", "--jobs", "many")
    assert wrong.returncode == 2
    assert "Invalid value for '--jobs': 'many' is not a valid integer." in wrong.stderr
