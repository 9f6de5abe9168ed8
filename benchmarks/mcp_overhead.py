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
the median time per call (after 20 warm-up calls) and the CPU per call of
the process that runs the statement (this one for the DB-API, the server
for MCP), with the overhead of each transport (stdio/HTTP) over the DB-API.
CPU is the steadier figure on a shared machine. The emulator's work is in
every time alike and in no CPU figure.
"""

from __future__ import annotations

import argparse
import os
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from functools import partial
from pathlib import Path
from typing import Any

import anyio
from mcp import Client, StdioServerParameters

import apidriver

sys.path.insert(0, str(Path(__file__).resolve().parent))
from emulated import emulator_process  # noqa: E402

KEY = "bench"
COMMAND = [sys.executable, "-m", "apidriver.cli", "mcp"]


Figures = tuple[float, float]
"""(median wall seconds of one call, CPU seconds per call of the process doing the work)."""


def timed(function: Callable[[], object], count: int, cpu: Callable[[], float]) -> Figures:
    """The median seconds of one call over ``count`` calls, after 20 warm-up calls (a median: other processes'
    bursts on a shared machine move a mean more than the cost measured), and ``cpu()`` spent per call."""
    for _ in range(20):
        function()
    times = []
    spent = cpu()
    for _ in range(count):
        started = time.perf_counter()
        function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), (cpu() - spent) / count


async def timed_async(function: Callable[[], Awaitable[object]], count: int, cpu: Callable[[], float]) -> Figures:
    for _ in range(20):
        await function()
    times = []
    spent = cpu()
    for _ in range(count):
        started = time.perf_counter()
        await function()
        times.append(time.perf_counter() - started)
    return statistics.median(times), (cpu() - spent) / count


def process_cpu(pid: int) -> Callable[[], float]:
    """CPU seconds (user + system) process ``pid`` has used so far, from /proc (Linux)."""
    ticks = os.sysconf("SC_CLK_TCK")

    def read() -> float:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / ticks

    return read


def server_pid() -> int:
    """The ``apidriver mcp`` child of this process."""
    for children in Path(f"/proc/{os.getpid()}/task").glob("*/children"):
        for pid in children.read_text().split():
            if b"mcp" in Path(f"/proc/{pid}/cmdline").read_bytes().split(b"\0"):
                return int(pid)
    raise RuntimeError("apidriver mcp is not a child of this process")


def run(cursor: apidriver.Cursor, sql: str, parameters: list[Any] | None) -> None:
    cursor.execute(sql, parameters).fetchall()


def statements(conn: apidriver.Connection) -> list[tuple[str, str, list[Any] | None]]:
    (job_id,) = conn.cursor().execute("SELECT id FROM Jobs LIMIT 1").fetchall()[0]
    return [
        ("sys_tables (no request)", "SELECT name, kind FROM sys_tables", None),
        ("lookup by id (1 GET)", "SELECT id, status, created_at FROM Jobs WHERE id = ?", [job_id]),
        ("30 rows with JSON (1 GET)", "SELECT id, tag, status, created_at, tasks FROM Jobs", None),
    ]


async def through_mcp(client: Client, cases: list[tuple[str, str, list[Any] | None]], count: int) -> list[Figures]:
    cpu = process_cpu(server_pid())
    out = []
    for _, sql, parameters in cases:
        arguments: dict[str, Any] = {"sql": sql, **({"parameters": parameters} if parameters else {})}

        async def call() -> None:
            result = await client.call_tool("run_query", arguments)
            assert not result.is_error, result.content

        out.append(await timed_async(call, count, cpu))
    return out


async def over_stdio(connection: str, cases: list[tuple[str, str, list[Any] | None]], count: int) -> list[Figures]:
    with tempfile.TemporaryFile("w+") as errlog:
        params = StdioServerParameters(command=COMMAND[0], args=[*COMMAND[1:], "--connect", connection])
        from mcp.client.stdio import stdio_client

        async with Client(stdio_client(params, errlog=errlog), cache=None) as client:
            return await through_mcp(client, cases, count)


async def over_http(connection: str, cases: list[tuple[str, str, list[Any] | None]], count: int) -> list[Figures]:
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
    parser.add_argument("--calls", type=int, default=300, help="timed calls of each statement, each way")
    args = parser.parse_args()
    with emulator_process("--jobs", "30", "--seed", "1", api_key=KEY) as root:
        connection = f"APIKey={KEY};BaseURL={root}"
        with apidriver.connect(connection, ReadOnly=True) as conn:
            cases = statements(conn)
            cursor = conn.cursor()
            direct = [timed(partial(run, cursor, sql, params), args.calls, time.process_time) for _, sql, params in cases]
        stdio = anyio.run(over_stdio, connection, cases, args.calls)
        http = anyio.run(over_http, connection, cases, args.calls)
    print(f"per call, over {args.calls} calls (emulator in its own process, no latency); CPU: of the process that runs")
    print("the statement (this one for the DB-API, the server for MCP; the MCP client's own CPU is not counted)\n")
    print(f"{'':<28}{'median wall time':^40}{'CPU per call':^40}".rstrip())
    header = f"{'DB-API':>9}{'stdio':>9}{'HTTP':>9}{'overhead':>13}"
    print(f"{'statement':<28}{header}   {header}")
    for (name, _, _), d, s, h in zip(cases, direct, stdio, http):
        cells = []
        for i in (0, 1):
            cells.append(
                f"{d[i] * 1e3:>7.2f}ms{s[i] * 1e3:>7.2f}ms{h[i] * 1e3:>7.2f}ms{(s[i] - d[i]) * 1e3:>+6.1f}/{(h[i] - d[i]) * 1e3:>+5.1f}ms"
            )
        print(f"{name:<28}{cells[0]}   {cells[1]}".rstrip())

if __name__ == "__main__":
    main()
