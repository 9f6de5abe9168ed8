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


EVERY_OPTION = [
    "--host", "127.0.0.2", "--port", "8123", "--api-key", "K",
    "--scoped-key", "ro=task.read,user.read", "--scoped-key", "w=task.write",
    "--jobs", "7", "--seed", "3", "--latency-ms", "2.5", "--rate-limit", "0", "--rate-window", "30",
    "--task-seconds", "0.5", "--credits", "9", "--retention-hours", "2.5", "--job-webhook-secret", "s3cret",
    "--allow-webhook-host", "hooks.example", "--allow-webhook-host", "*", "--keep-history",
]  # fmt: skip


def options_of(help_text: str) -> str:
    """The Options section of a --help text, whitespace made single."""
    return " ".join(help_text.partition("\nOptions:\n")[2].split())


def test_both_entry_points_take_the_same_options(monkeypatch: pytest.MonkeyPatch) -> None:
    """``apidriver emulator`` and ``python -m apidriver.emulator`` accept the same options, every one of them,
    and hand the Emulator the same settings; their --help lists the same options with the same help."""
    import runpy
    import sys

    from click.testing import CliRunner

    from apidriver.cli import cli

    made: list[dict[str, object]] = []

    class Recorded:
        def __init__(self, **settings: object) -> None:
            made.append(settings)

        def serve_forever(self) -> None:
            pass

    monkeypatch.setattr("apidriver.emulator.server.Emulator", Recorded)
    by_apidriver = CliRunner().invoke(cli, ["emulator", *EVERY_OPTION])
    assert by_apidriver.exit_code == 0, by_apidriver.output
    monkeypatch.setattr(sys, "argv", ["python -m apidriver.emulator", *EVERY_OPTION])
    with pytest.raises(SystemExit) as by_module:
        runpy.run_module("apidriver.emulator", run_name="__main__")
    assert by_module.value.code == 0
    assert made[0] == made[1] == {
        "host": "127.0.0.2", "port": 8123, "api_key": "K", "scoped_keys": {"ro": ["task.read", "user.read"], "w": ["task.write"]},
        "jobs": 7, "seed": 3, "latency_ms": 2.5, "rate_limit": 0, "rate_window": 30.0, "task_seconds": 0.5, "credits": 9,
        "retention_hours": 2.5, "job_webhook_secret": "s3cret", "allow_webhook_hosts": ("hooks.example", "*"), "keep_history": True,
    }  # fmt: skip

    module_help = subprocess.run([sys.executable, "-m", "apidriver.emulator", "--help"], capture_output=True, text=True, timeout=60, check=False, env=environment())
    command_help = apidriver("emulator", "--help")
    assert module_help.returncode == command_help.returncode == 0
    assert module_help.stdout.startswith("Usage: python -m apidriver.emulator [OPTIONS]")
    assert command_help.stdout.startswith("Usage: apidriver emulator [OPTIONS]")
    assert options_of(module_help.stdout) == options_of(command_help.stdout)
    named = {word.rstrip(",") for word in options_of(command_help.stdout).split() if word.startswith("--")}
    assert {option for option in EVERY_OPTION if option.startswith("--")} | {"--help"} <= named


def test_every_option_sets_the_emulator_keyword_of_its_name_with_its_default() -> None:
    """The command line and the Python API cannot drift: each option is an Emulator keyword, same default."""
    import inspect

    import click

    from apidriver.emulator import Emulator
    from apidriver.emulator.command import command

    keywords = inspect.signature(Emulator).parameters
    options = [p for p in command.params if isinstance(p, click.Option)]
    assert len(options) == 15
    for option in options:
        assert option.name in keywords, option.opts
        if not option.multiple:
            assert option.default == keywords[option.name].default, option.opts
