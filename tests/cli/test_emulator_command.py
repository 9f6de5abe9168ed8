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


def test_emulator_command_declares_every_option_of_the_emulator_with_its_default() -> None:
    """The click command mirrors python -m apidriver.emulator's parser, so --help is click's and nothing drifts."""
    import click

    from apidriver.cli import cli
    from apidriver.emulator.server import parser

    command = cli.commands["emulator"]
    ours = {opt: p for p in command.params if isinstance(p, click.Option) for opt in p.opts}
    theirs = [a for a in parser()._actions if a.option_strings and a.dest != "help"]
    assert theirs
    for action in theirs:
        option = ours[action.option_strings[0]]
        if option.multiple:
            assert action.default == [], action.option_strings[0]
        else:
            assert option.default == action.default, action.option_strings[0]
    assert {o for o in ours if o.startswith("--")} - {"--help"} == {a.option_strings[0] for a in theirs}
