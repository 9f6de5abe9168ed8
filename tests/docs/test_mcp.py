"""docs/mcp.md runs: its commands start the server (stdio, until its input ends) with each connection
the page shows; its client configurations are valid JSON that start this server."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest

import apidriver
from apidriver.emulator import Emulator

from .harness import DocRun, start_emulator

DOC = "docs/mcp.md"


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    emulator = start_emulator(jobs=10, seed=1)
    yield emulator
    emulator.stop()


def test_every_block_of_the_mcp_guide(emulator: Emulator, tmp_path: Path) -> None:
    # A cache the reader has made (apidriver sync --to sqlite:///history.sqlite), for the Offline line.
    apidriver.sync(f"APIKey={emulator.api_key};BaseURL={emulator.base_url}", to=f"sqlite:///{tmp_path / 'history.sqlite'}")
    not_run = {
        "claude mcp add cloudconvert": "needs Claude Code installed",
        "# server: apidriver 0.1.0, protocol 2025-11-25": "a transcript of a session (tests/mcp drives the same tools with the SDK's client)",
        "median wall time": "what benchmarks/mcp_overhead.py printed once",
    }
    not_run_commands = {
        "apidriver mcp --http 127.0.0.1:8765": "serves until stopped; tests/mcp/test_http.py serves HTTP and connects with the SDK's client",
    }
    substitutions = {"http://127.0.0.1:8000": emulator.base_url}
    with DocRun(DOC, emulator, tmp_path, substitutions=substitutions, not_run=not_run, not_run_commands=not_run_commands) as run:
        run.run()

    # Each command started the server on stdio and ended with its input: the connections are valid.
    commands = [c for o in run.ran for c in o.commands if c.command.startswith("apidriver mcp")]
    assert len(commands) == 4
    assert all("serving MCP on stdio (read-only)" in c.stderr for c in commands), [c.stderr for c in commands]

    # The client configurations start `apidriver mcp` or reach its HTTP endpoint; the result is JSON.
    configs = [o.value for o in run.ran if o.block.lang == "json" and ("mcpServers" in o.value or "servers" in o.value)]
    servers = [server for config in configs for server in (config.get("mcpServers") or config.get("servers")).values()]
    assert len(servers) >= 4
    for server in servers:
        assert (server.get("command") == "apidriver" and server["args"][0] == "mcp") or server["url"].endswith("/mcp")
    (result,) = [o.value for o in run.ran if o.block.lang == "json" and "columns" in o.value]
    assert set(result) >= {"columns", "rows", "truncated", "requests", "request_log"}
    assert json.loads(json.dumps(result)) == result
