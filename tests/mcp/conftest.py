"""``apidriver mcp`` as a subprocess, talked to with the MCP SDK's own client (stdio and streamable HTTP).

Every message the client receives is recorded (as the JSON it was sent as),
and the server's stderr goes to a file, so that tests can search them all.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Mapping, Sequence
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import anyio
import httpx2
import pytest
from mcp import Client, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamable_http_client
from mcp_types import CallToolResult

from ..cli.conftest import environment

COMMAND = [sys.executable, "-m", "apidriver.cli", "mcp"]


@pytest.fixture(scope="module")
def anyio_backend() -> str:
    """The SDK runs on anyio; the tests on asyncio (module scope, for the module-wide servers)."""
    return "asyncio"


@dataclass
class Session:
    """A client connected to a running ``apidriver mcp``, with what it received and the server's stderr."""

    client: Client
    received: list[str]
    stderr_path: Path

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    async def query(self, sql: str, parameters: Sequence[Any] | Mapping[str, Any] | None = None, **arguments: Any) -> dict[str, Any]:
        """``run_query``, which must succeed: its structured result."""
        result = await self.call("run_query", sql=sql, parameters=parameters, **arguments)
        assert not result.is_error, text_of(result)
        assert len(result.content) == 1 and result.structured_content is None  # the JSON text, once
        answer: dict[str, Any] = json.loads(text_of(result))
        return answer

    async def call(self, tool: str, **arguments: Any) -> CallToolResult:
        return await self.client.call_tool(tool, {k: v for k, v in arguments.items() if v is not None})


def text_of(result: CallToolResult) -> str:
    """The text of a tool result (its first content block)."""
    return "".join(getattr(block, "text", "") for block in result.content)


@asynccontextmanager
async def recorded(transport: AbstractAsyncContextManager[Any], received: list[str]) -> AsyncIterator[Any]:
    """``transport``, with every message read from the server appended to ``received`` as JSON text."""
    async with transport as (read, write):
        send, receive = anyio.create_memory_object_stream[Any](64)

        async def pump() -> None:
            async with send:
                async for item in read:
                    message = getattr(item, "message", None)
                    received.append(message.model_dump_json(by_alias=True) if message is not None else repr(item))
                    await send.send(item)

        async with anyio.create_task_group() as group:
            group.start_soon(pump)
            try:
                yield receive, write
            finally:
                group.cancel_scope.cancel()


@asynccontextmanager
async def stdio_session(tmp_path: Path, *args: str, env: Mapping[str, str] | None = None, mode: str = "auto") -> AsyncIterator[Session]:
    """``apidriver mcp ARGS`` on stdio, as a desktop assistant starts it."""
    stderr_path = tmp_path / f"stderr-{time.monotonic_ns()}.txt"
    received: list[str] = []
    with stderr_path.open("w") as errlog:
        params = StdioServerParameters(command=COMMAND[0], args=[*COMMAND[1:], *args], env=environment(env))
        async with Client(recorded(stdio_client(params, errlog=errlog), received), mode=mode, cache=None) as client:  # type: ignore[arg-type]
            yield Session(client, received, stderr_path)


class HttpServer:
    """``apidriver mcp --http ... ARGS`` in a subprocess; :attr:`url` once it listens."""

    def __init__(self, tmp_path: Path, *args: str, env: Mapping[str, str] | None = None) -> None:
        self.stderr_path = tmp_path / f"http-stderr-{time.monotonic_ns()}.txt"
        self._errlog = self.stderr_path.open("w")
        self.process = subprocess.Popen(
            [*COMMAND, *args], stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=self._errlog, env=environment(env), text=True
        )
        self.url = self._wait_for_url()

    def _wait_for_url(self, timeout: float = 30) -> str:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            found = re.search(r"serving MCP on (http://\S+)", self.stderr())
            if found:
                return found.group(1)
            if self.process.poll() is not None:
                raise AssertionError(f"apidriver mcp --http exited with {self.process.returncode}: {self.stderr()}")
            time.sleep(0.05)
        raise AssertionError(f"apidriver mcp --http did not start: {self.stderr()}")

    def stderr(self) -> str:
        return self.stderr_path.read_text()

    def stdout(self) -> str:
        assert self.process.stdout is not None
        return self.process.stdout.read()

    def stop(self) -> int:
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._errlog.close()
        return self.process.returncode

    @asynccontextmanager
    async def session(self, token: str | None = None) -> AsyncIterator[Session]:
        """A client of this server over streamable HTTP, sending ``token`` as its bearer token."""
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        received: list[str] = []
        async with httpx2.AsyncClient(headers=headers, timeout=httpx2.Timeout(30, read=60)) as http:
            transport = recorded(streamable_http_client(self.url, http_client=http), received)
            async with Client(transport, cache=None) as client:  # type: ignore[arg-type]
                yield Session(client, received, self.stderr_path)

