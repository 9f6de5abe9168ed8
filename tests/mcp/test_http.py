"""Streamable HTTP: served on loopback, a bearer token checked when given, and required on any other address."""

from __future__ import annotations

import secrets
from pathlib import Path

import httpx
import pytest
from click.testing import CliRunner

from apidriver.cli import cli
from apidriver.emulator import Emulator

from ..cli.conftest import connection
from .conftest import HttpServer

pytestmark = pytest.mark.anyio
INITIALIZE = {
    "jsonrpc": "2.0",
    "id": 1,
    "method": "initialize",
    "params": {"protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": {"name": "test", "version": "1"}},
}
ACCEPT = {"Accept": "application/json, text/event-stream"}


async def test_http_on_loopback_serves_the_tools(shared_emulator: Emulator, tmp_path: Path) -> None:
    server = HttpServer(tmp_path, "--http", "127.0.0.1:0", "--connect", connection(shared_emulator))
    try:
        assert server.url.startswith("http://127.0.0.1:") and server.url.endswith("/mcp")
        async with server.session() as session:
            assert {t.name for t in (await session.client.list_tools()).tools} == {"list_tables", "describe_table", "run_query"}
            result = await session.query("SELECT status, count(*) FROM Jobs WHERE status = ? GROUP BY status", ["error"])
            assert result["rows"][0][0] == "error" and result["requests"] == 1
    finally:
        assert server.stop() in (0, -15)  # uvicorn ends by SIGTERM once it has shut down
    assert server.stdout() == ""  # logs and the address go to stderr


async def test_a_token_is_checked_on_every_request(shared_emulator: Emulator, tmp_path: Path) -> None:
    token = secrets.token_urlsafe(24)
    server = HttpServer(tmp_path, "--http", "127.0.0.1:0", "--connect", connection(shared_emulator), env={"APIDRIVER_MCP_TOKEN": token})
    try:
        for headers in ({}, {"Authorization": "Bearer " + secrets.token_urlsafe(24)}, {"Authorization": token}):
            refused = httpx.post(server.url, json=INITIALIZE, headers={**ACCEPT, **headers})
            assert refused.status_code == 401
            assert refused.headers["www-authenticate"] == 'Bearer realm="apidriver mcp"'
            assert refused.json()["error"] == "invalid_token"
        allowed = httpx.post(server.url, json=INITIALIZE, headers={**ACCEPT, "Authorization": f"Bearer {token}"})
        assert allowed.status_code == 200
        async with server.session(token) as session:
            assert (await session.query("SELECT count(*) FROM Jobs"))["rows"] == [[60]]
    finally:
        server.stop()
    stderr = server.stderr()
    assert stderr.count("refused an HTTP request from 127.0.0.1:") == 3
    assert "missing bearer token" in stderr and "wrong bearer token" in stderr and token not in stderr


@pytest.mark.parametrize(
    ("arguments", "env", "message"),
    [
        (("--http", "0.0.0.0:8765"), {}, "an address other than 127.0.0.1 can be reached from other machines, so it needs a bearer token"),
        (("--http", "myhost.example:8765"), {}, "needs a bearer token: set APIDRIVER_MCP_TOKEN (or pass --token)"),
        (("--http", "0.0.0.0:8765", "--token", "short"), {}, "the bearer token is shorter than 16 characters; make one with"),
        (("--http", "127.0.0.1"), {}, "'127.0.0.1' is not HOST:PORT; write e.g. 127.0.0.1:8765"),
        (("--http", "[::1]:99999"), {}, "is not HOST:PORT"),
    ],
)
def test_bad_addresses_and_missing_tokens_are_usage_errors(arguments: tuple[str, ...], env: dict[str, str], message: str) -> None:
    done = CliRunner().invoke(cli, ["mcp", "--connect", "APIKey=k;BaseURL=http://127.0.0.1:9", *arguments], env={"APIDRIVER_MCP_TOKEN": None, **env})
    assert done.exit_code == 2
    assert message in " ".join(done.stderr.split())
    assert done.stdout == ""
