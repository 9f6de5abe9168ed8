"""The API key shows in no message a client receives and nowhere on the server's stderr; a wrong key is a clear tool error."""

from __future__ import annotations

import secrets
from collections.abc import Callable
from pathlib import Path

import pytest

from apidriver.emulator import Emulator

from ..cli.conftest import connection
from .conftest import HttpServer, Session, stdio_session, text_of

pytestmark = pytest.mark.anyio


@pytest.fixture
def keyed(make_emulator: Callable[..., Emulator]) -> Emulator:
    """An emulator whose key is unlike any other text (so that finding it anywhere means a leak)."""
    return make_emulator(api_key=f"sk-mcp-{secrets.token_hex(20)}", jobs=12, seed=4, rate_limit=None)


async def exercise(session: Session) -> None:
    """Every kind of call, succeeding and failing, so that every path has a chance to leak."""
    await session.client.list_tools()
    await session.call("list_tables")
    await session.call("describe_table", table="Jobs")
    await session.call("describe_table", table="nope")
    await session.client.list_resources()
    await session.client.read_resource("apidriver://tables/Users")
    await session.client.get_prompt("credits_used", {})
    await session.query("SELECT j.id, j.links_self, t.result FROM Jobs j JOIN Tasks t ON t.job_id = j.id")
    await session.query("SELECT * FROM Users")
    for failing in ("SELECT * FROM Jobs WHERE id = 'no-such-job-id'", "SELECT * FROM WaitJob('no-such-job')", "DELETE FROM Jobs", "SELEC", "ATTACH 'x' AS x"):
        await session.call("run_query", sql=failing)


async def test_the_key_is_in_no_message_and_not_on_stderr(keyed: Emulator, tmp_path: Path) -> None:
    arguments = ("--connect", connection(keyed), "--log-level", "debug")
    async with stdio_session(tmp_path, *arguments) as session:
        await exercise(session)
    assert len(session.received) >= 15  # an answer to each call
    assert not [m for m in session.received if keyed.api_key in m]
    stderr = session.stderr()
    assert "GET http://127.0.0.1" in stderr  # the debug log of every request is there, without the key
    assert keyed.api_key not in stderr

    token = secrets.token_urlsafe(24)
    server = HttpServer(tmp_path, "--http", "127.0.0.1:0", *arguments, env={"APIDRIVER_MCP_TOKEN": token})
    try:
        async with server.session(token) as over_http:
            await exercise(over_http)
    finally:
        server.stop()
    assert len(over_http.received) >= 15
    assert not [m for m in over_http.received if keyed.api_key in m or token in m]
    assert keyed.api_key not in server.stderr() and token not in server.stderr()


async def test_a_wrong_key_is_a_clear_tool_error_without_the_key(keyed: Emulator, tmp_path: Path) -> None:
    wrong = f"sk-wrong-{secrets.token_hex(16)}"
    async with stdio_session(tmp_path, "--connect", f"APIKey={wrong};BaseURL={keyed.base_url}", "--log-level", "debug") as session:
        result = await session.call("run_query", sql="SELECT id FROM Jobs")
        assert result.is_error
        text = text_of(result)
        assert text.startswith("Error executing tool run_query: AuthenticationError:")  # the SDK's prefix, then the DB-API's message
        assert "Check the APIKey connection property" in text
        catalogue = await session.call("list_tables")  # what needs no request still works
        assert not catalogue.is_error
    assert not [m for m in session.received if wrong in m]
    assert wrong not in session.stderr()
