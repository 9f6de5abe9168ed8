"""Long statements: progress notifications while they run; a cancellation (or the server's --timeout) stops their requests."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from pathlib import Path

import anyio
import pytest

from apidriver.emulator import Emulator

from ..cli.conftest import connection
from .conftest import HttpServer, Session, stdio_session, text_of

pytestmark = pytest.mark.anyio
SCAN = "SELECT count(*) FROM Jobs"  # 300 jobs, 5 a page: 60 pages, 2 at a time, 100 ms each (about 3 s)


@pytest.fixture
def slow(make_emulator: Callable[..., Emulator]) -> Emulator:
    return make_emulator(jobs=300, seed=3, latency_ms=100, rate_limit=None)


def slow_connection(emulator: Emulator) -> str:
    return connection(emulator, PageSize="5", MaxConcurrency="2")


async def settled(emulator: Emulator) -> int:
    """The requests the emulator answered, once those already on the wire have been answered too."""
    await anyio.sleep(0.3)
    return len(emulator.requests())


@asynccontextmanager
async def served(transport: str, tmp_path: Path, *arguments: str) -> AsyncIterator[Session]:
    """A session over stdio (the 2026 protocol, or the initialize handshake of today's assistants) or streamable HTTP."""
    if transport == "http":
        server = HttpServer(tmp_path, "--http", "127.0.0.1:0", *arguments)
        try:
            async with server.session() as session:
                yield session
        finally:
            server.stop()
    else:
        async with stdio_session(tmp_path, *arguments, mode=transport) as session:
            yield session


@pytest.mark.parametrize("transport", ["auto", "legacy", "http"])
async def test_a_cancelled_scan_sends_nothing_more_and_reported_progress(slow: Emulator, tmp_path: Path, transport: str) -> None:
    async with served(transport, tmp_path, "--connect", slow_connection(slow)) as session:
        messages: list[str] = []
        going = anyio.Event()

        async def progress(value: float, total: float | None, message: str | None) -> None:
            messages.append(message or "")
            if int((message or "0").split()[0]) >= 4:  # "N requests sent, M rows read": the scan is well under way
                going.set()

        async with anyio.create_task_group() as group:
            group.start_soon(session.client.call_tool, "run_query", {"sql": SCAN}, None, progress)
            with anyio.fail_after(10):
                await going.wait()
            group.cancel_scope.cancel()  # the client sends notifications/cancelled
        at_cancel = await settled(slow)
        await anyio.sleep(1.0)  # uncancelled, the scan would send about 20 requests in this time
        assert len(slow.requests()) == at_cancel
        assert 4 <= at_cancel < 30
        assert messages and all(re.fullmatch(r"\d+ requests sent, \d+ rows read", m) for m in messages)
        # The connection is free again: the next statement runs.
        assert (await session.query("SELECT count(*) FROM Users"))["rows"] == [[1]]


async def test_the_server_timeout_cancels_a_statement(slow: Emulator, tmp_path: Path) -> None:
    async with stdio_session(tmp_path, "--connect", slow_connection(slow), "--timeout", "0.5") as session:
        result = await session.call("run_query", sql=SCAN)
        assert result.is_error
        assert "ran longer than 0.5 s (the server's --timeout) and was cancelled; nothing more was sent" in text_of(result)
        at_error = await settled(slow)
        await anyio.sleep(0.8)
        assert len(slow.requests()) == at_error < 30
