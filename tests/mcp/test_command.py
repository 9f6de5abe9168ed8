"""The ``apidriver mcp`` command itself: stdout is the protocol alone, a missing SDK or key gets a hint, options are checked."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from apidriver.cli import cli
from apidriver.emulator import Emulator

from ..cli.conftest import COMMAND, connection, environment

INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}},
}


def test_stdout_carries_the_protocol_and_nothing_else(shared_emulator: Emulator, tmp_path: Path) -> None:
    errors = (tmp_path / "stderr.txt").open("w+")
    process = subprocess.Popen(
        [*COMMAND, "mcp", "--connect", connection(shared_emulator), "--log-level", "debug"],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=errors,
        text=True,
        env=environment(),
    )
    assert process.stdin is not None and process.stdout is not None

    def send(message: dict[str, object]) -> None:
        process.stdin.write(json.dumps(message) + "\n")  # type: ignore[union-attr]
        process.stdin.flush()  # type: ignore[union-attr]

    try:
        send(INITIALIZE)
        answers = [json.loads(process.stdout.readline())]
        send({"jsonrpc": "2.0", "method": "notifications/initialized"})
        send({"jsonrpc": "2.0", "id": 2, "method": "tools/list"})
        answers.append(json.loads(process.stdout.readline()))
        process.stdin.close()  # the client leaves: the server ends
        process.wait(timeout=30)
        rest = process.stdout.read()
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
        errors.close()
    stderr = (tmp_path / "stderr.txt").read_text()
    assert process.returncode == 0, stderr
    assert rest == ""  # nothing on stdout but the answers
    assert [a["id"] for a in answers] == [1, 2]
    assert answers[0]["result"]["serverInfo"]["name"] == "apidriver"
    assert answers[0]["result"]["protocolVersion"] == "2025-06-18"  # the handshake desktop assistants use today
    assert [t["name"] for t in answers[1]["result"]["tools"]] == ["list_tables", "describe_table", "run_query"]
    assert "apidriver mcp: serving MCP on stdio (read-only)" in stderr and "DEBUG" in stderr


def test_without_the_sdk_it_says_how_to_install_it() -> None:
    code = "import sys; sys.modules['mcp'] = None; from apidriver.cli import main; sys.argv = ['apidriver', 'mcp']; main()"
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, env=environment(), timeout=60, check=False)
    assert done.returncode == 1
    assert done.stderr.strip() == "apidriver: apidriver mcp needs the MCP SDK (the mcp package): pip install 'apidriver[mcp]'"
    assert done.stdout == ""


def run(*arguments: str) -> tuple[int, str]:
    done = CliRunner().invoke(cli, ["mcp", *arguments], env={"APIDRIVER_CONNECTION": None, "CLOUDCONVERT_API_KEY": None, "APIDRIVER_MCP_TOKEN": None})
    return done.exit_code, " ".join(done.stderr.split())


def test_without_a_key_it_says_how_to_connect() -> None:
    status, stderr = run()
    assert status == 2
    assert stderr == 'apidriver: no connection: pass --connect "APIKey=...", or set APIDRIVER_CONNECTION or CLOUDCONVERT_API_KEY (try: apidriver demo)'


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (("--default-rows", "500", "--max-rows", "100"), "--default-rows 500 is more than --max-rows 100"),
        (("--max-rows", "0"), "0 is not in the range x>=1"),
        (("--timeout", "-1"), "-1.0 is not in the range x>=0"),
        (("--connect", "APIKey=k;Bogus=1"), "Bogus"),
    ],
)
def test_bad_options_are_refused_before_serving(arguments: tuple[str, ...], message: str) -> None:
    status, stderr = run(*arguments)
    assert status in (1, 2)
    assert message in stderr
