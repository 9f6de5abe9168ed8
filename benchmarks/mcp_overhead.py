"""What ``run_query`` through ``apidriver mcp`` costs per call, against the same statement through the DB-API.

Run: ``.venv/bin/python benchmarks/mcp_overhead.py [--calls 200]``

Starts the emulator in its own process (``Emulator(jobs=30, seed=1)``, no
latency, no rate limit), then runs each statement, one call at a time:

- through the DB-API: ``cursor.execute(sql, params)`` and ``fetchall()`` on
  one read-only connection (the server's kind of connection);
- through ``apidriver mcp`` on stdio (a subprocess, as desktop assistants
  start it), called with the MCP SDK's client: ``call_tool("run_query")``;
- through ``apidriver mcp --http 127.0.0.1:0`` (streamable HTTP), the same way.

The statements: ``sys_tables`` (no HTTP request: the figure is the MCP
layers alone), a lookup by id (one GET), and a 30-row list with
timestamps and a JSON column (one GET, and the rows' conversion). Prints
the mean time per call (best of 3 rounds, after 20 warm-up calls) and the
overhead of each transport over the DB-API. The emulator's work is in
every figure alike.
"""

from __future__ import annotations

import argparse
import re
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

import apidriver

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emulated import emulator_process  # noqa: E402

KEY = "bench"
COMMAND = [sys.executable, "-m", "apidriver.cli", "mcp"]


def timed(function: Callable[[], object], count: int) -> float:
    """Mean seconds per call over ``count`` calls (after 20 warm-up calls), best of 3 rounds."""
    for _ in range(20):
        function()
    rounds = []
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(count):
            function()
        rounds.append((time.perf_counter() - started) / count)
    return min(rounds)


async def timed_async(function: Callable[[], Awaitable[object]], count: int) -> float:
    for _ in range(20):
        await function()
    rounds = []
    for _ in range(3):
        started = time.perf_counter()
        for _ in range(count):
            await function()
        rounds.append((time.perf_counter() - started) / count)
    return min(rounds)


def statements(conn: apidriver.Connection) -> list[tuple[str, str, list[Any] | None]]:
    job_id = conn.cursor().execute("SELECT id FROM Jobs LIMIT 1").fetchone()[0]
    return [
        ("sys_tables (no request)", "SELECT name, kind FROM sys_tables", None),
        ("lookup by id (1 GET)", "SELECT id, status, created_at FROM Jobs WHERE id = ?", [job_id]),
        ("30 rows with JSON (1 GET)", "SELECT id, tag, status, created_at, tasks FROM Jobs", None),
    ]


async def through_mcp(client: Client, cases: list[tuple[str, str, list[Any] | None]], count: int) -> list[float]:
    out = []
    for _, sql, parameters in cases:
        arguments: dict[str, Any] = {"sql": sql, **({"parameters": parameters} if parameters else {})}

        async def call() -> None:
            result = await client.call_tool("run_query", arguments)
            assert not result.is_error, result.content

        out.append(await timed_async(call, count))
    return out


async def over_stdio(connection: str, cases: list[tuple[str, str, list[Any] | None]], count: int) -> list[float]:
    with tempfile.TemporaryFile("w+") as errlog:
        params = StdioServerParameters(command=COMMAND[0], args=[*COMMAND[1:], "--connect", connection])
        from mcp.client.stdio import stdio_client

        async with Client(stdio_client(params, errlog=errlog), cache=None) as client:  # type: ignore[arg-type]
            return await through_mcp(client, cases, count)


async def over_http(connection: str, cases: list[tuple[str, str, list[Any] | None]], count: int) -> list[float]:
    with tempfile.NamedTemporaryFile("w+", suffix=".log") as errlog:
        process = subprocess.Popen([*COMMAND, "--connect", connection, "--http", "127.0.0.1:0"], stderr=errlog, stdout=subprocess.DEVNULL)
        try:
            url = None
            for _ in range(600):
                found = re.search(r"serving MCP on (http://\S+)", Path(errlog.name).read_text())
                if found:
                    url = found.group(1)
                    break
                time.sleep(0.05)
            assert url is not None, Path(errlog.name).read_text()
            async with Client(url, cache=None) as client:
                return await through_mcp(client, cases, count)
        finally:
            process.terminate()
            process.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--calls", type=int, default=200, help="calls per round (3 rounds) of each statement and way")
    args = parser.parse_args()
    with emulator_process("--jobs", "30", "--seed", "1", api_key=KEY) as root:
        connection = f"APIKey={KEY};BaseURL={root}"
        with apidriver.connect(connection, ReadOnly=True) as conn:
            cases = statements(conn)
            cursor = conn.cursor()
            direct = [timed(lambda s=sql, p=params: cursor.execute(s, p).fetchall(), args.calls) for _, sql, params in cases]
        stdio = anyio.run(over_stdio, connection, cases, args.calls)
        http = anyio.run(over_http, connection, cases, args.calls)
    print(f"mean time per call, best of 3 rounds of {args.calls} calls (emulator in its own process, no latency)\n")
    print(f"{'statement':<28}{'DB-API':>10}{'MCP stdio':>12}{'overhead':>11}{'MCP HTTP':>12}{'overhead':>11}")
    for (name, _, _), d, s, h in zip(cases, direct, stdio, http):
        print(f"{name:<28}{d * 1e3:>8.2f}ms{s * 1e3:>10.2f}ms{(s - d) * 1e3:>+9.2f}ms{h * 1e3:>10.2f}ms{(h - d) * 1e3:>+9.2f}ms")


if __name__ == "__main__":
    main()
