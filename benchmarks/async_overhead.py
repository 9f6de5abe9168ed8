"""What the asyncio dialect costs per statement, against the sync dialect on the same emulator.

Run: ``.venv/bin/python benchmarks/async_overhead.py [--statements 400]``

Starts ``Emulator(jobs=30, seed=1)`` in-process with no latency and runs the
same statements through ``create_engine("cloudconvert://...")`` and
``create_async_engine("cloudconvert+async://...")``, one connection each,
one statement at a time:

- ``SELECT 1``: no HTTP request, so the figure is the adapter alone (a hop
  to the connection's worker thread and back, and SQLAlchemy's greenlet);
- a lookup by id (``WHERE id = ?``): one GET per statement;
- ``stream()`` of a 30-row query fetched 10 rows at a time.

Prints the mean time per statement of each and the async overhead in µs.
The emulator runs in the same process, so the HTTP figures include serving.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import time
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from sqlalchemy import create_engine, text
from sqlalchemy.ext.asyncio import create_async_engine

from apidriver.emulator import Emulator


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=400, help="statements per round (3 rounds, best kept)")
    args = parser.parse_args()
    n = args.statements

    with Emulator(jobs=30, seed=1, task_seconds=60) as emu:
        query = f"?BaseURL={quote(emu.base_url, safe='')}"
        sync_engine = create_engine(f"cloudconvert://:{emu.api_key}@{query}")
        with sync_engine.connect() as conn:
            job_id = conn.execute(text("SELECT id FROM Jobs LIMIT 1")).scalar_one()
            by_id = text("SELECT id, status, created_at FROM Jobs WHERE id = :id")
            sync = {
                "SELECT 1 (no request)": timed(lambda: conn.execute(text("SELECT 1")).scalar_one(), n),
                "lookup by id (1 GET)": timed(lambda: conn.execute(by_id, {"id": job_id}).one(), n // 4),
                "stream 30 rows, 10 per batch (1 GET)": timed(
                    lambda: list(conn.execution_options(stream_results=True, max_row_buffer=10).execute(text("SELECT id FROM Jobs"))),
                    n // 8,
                ),
            }
        sync_engine.dispose()

        async def run_async() -> dict[str, float]:
            engine = create_async_engine(f"cloudconvert+async://:{emu.api_key}@{query}")
            async with engine.connect() as conn:

                async def one() -> object:
                    return (await conn.execute(text("SELECT 1"))).scalar_one()

                async def lookup() -> object:
                    return (await conn.execute(by_id, {"id": job_id})).one()

                async def stream() -> object:
                    result = await conn.stream(text("SELECT id FROM Jobs"))
                    rows = []
                    async for batch in result.partitions(10):
                        rows += batch
                    return rows

                out = {
                    "SELECT 1 (no request)": await timed_async(one, n),
                    "lookup by id (1 GET)": await timed_async(lookup, n // 4),
                    "stream 30 rows, 10 per batch (1 GET)": await timed_async(stream, n // 8),
                }
            await engine.dispose()
            return out

        asynchronous = asyncio.run(run_async())

    print(f"{'statement':40} {'sync µs':>10} {'async µs':>10} {'overhead µs':>12}")
    for name, seconds in sync.items():
        other = asynchronous[name]
        print(f"{name:40} {seconds * 1e6:10.0f} {other * 1e6:10.0f} {(other - seconds) * 1e6:12.0f}")
    overheads = [asynchronous[k] - sync[k] for k in sync]
    print(f"median overhead per statement: {statistics.median(overheads) * 1e6:.0f} µs")


if __name__ == "__main__":
    main()
