"""How long new pooled connections of the +async dialect hold the event loop up, beside sqlite+aiosqlite.

Run: ``.venv/bin/python benchmarks/async_lag.py [--connections 50] [--bursts 5] [--rounds 3]``
(``sqlite+aiosqlite`` needs ``pip install aiosqlite``; it is in the ``test`` extra.)

A heartbeat task sleeps 2 ms at a time and records how late each wake-up is:
the loop's lag. While it runs:

- **cold N**: ``N`` tasks each check out their own connection at once from a
  new engine (``pool_size=N``), run ``SELECT 1`` and return it, so every
  connection is opened during the measurement;
- **pool burst**: SQLAlchemy's default pool (5 kept + 10 overflow), warmed
  with 5 connections; then ``--bursts`` times 15 tasks at once, so each burst
  opens the 10 overflow connections again (they are closed on return).

``SELECT 1`` sends no HTTP request: the figure is what opening connections
costs the loop. The emulator runs in its own process (``emulated.py``). Each
figure is the worst lag of a round (ms), median of ``--rounds`` rounds, and
the round's wall time. Goal (issue #19): cold 50 at most 20 ms.
"""

from __future__ import annotations

import argparse
import asyncio
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import quote

from emulated import emulator_process
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

TICK = 0.002


async def lagged(work: Callable[[], Awaitable[Any]]) -> tuple[float, float]:
    """Run ``work`` beside a heartbeat: (worst lag of a wake-up in ms, wall time of ``work`` in ms)."""
    worst = 0.0
    running = True

    async def heartbeat() -> None:
        nonlocal worst
        while running:
            due = time.perf_counter() + TICK
            await asyncio.sleep(TICK)
            worst = max(worst, time.perf_counter() - due)

    beat = asyncio.create_task(heartbeat())
    await asyncio.sleep(0.05)  # the heartbeat settles
    worst = 0.0
    started = time.perf_counter()
    await work()
    elapsed = time.perf_counter() - started
    running = False
    await beat
    return worst * 1000, elapsed * 1000


async def one_statement(engine: AsyncEngine) -> None:
    async with engine.connect() as conn:
        await conn.execute(text("SELECT 1"))


async def cold(url: str, connections: int) -> tuple[float, float]:
    engine = create_async_engine(url, pool_size=connections, max_overflow=0)
    try:
        return await lagged(lambda: asyncio.gather(*(one_statement(engine) for _ in range(connections))))
    finally:
        await engine.dispose()


async def bursts(url: str, count: int) -> tuple[float, float]:
    engine = create_async_engine(url)  # pool_size=5, max_overflow=10
    try:
        await asyncio.gather(*(one_statement(engine) for _ in range(5)))

        async def work() -> None:
            for _ in range(count):
                await asyncio.gather(*(one_statement(engine) for _ in range(15)))

        return await lagged(work)
    finally:
        await engine.dispose()


def median_of(rounds: int, scenario: Callable[[], Awaitable[tuple[float, float]]]) -> tuple[float, float]:
    results = [asyncio.run(scenario()) for _ in range(rounds)]
    return statistics.median(r[0] for r in results), statistics.median(r[1] for r in results)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=50, help="connections opened at once in the cold case (default 50)")
    parser.add_argument("--bursts", type=int, default=5, help="bursts of 15 in the default-pool case (default 5)")
    parser.add_argument("--rounds", type=int, default=3, help="rounds per figure; the median is printed (default 3)")
    args = parser.parse_args()

    urls: dict[str, str] = {}
    with tempfile.TemporaryDirectory() as tmp, emulator_process() as root:
        urls["cloudconvert+async"] = f"cloudconvert+async://:bench@?BaseURL={quote(root, safe='')}"
        try:
            import aiosqlite  # noqa: F401
        except ImportError:
            print("sqlite+aiosqlite: not installed (pip install aiosqlite) - printing apidriver alone", file=sys.stderr)
        else:
            urls["sqlite+aiosqlite"] = f"sqlite+aiosqlite:///{Path(tmp) / 'lag.db'}"

        print(f"worst event-loop lag in ms (median of {args.rounds} rounds), wall time in ms")
        print(f"{'dialect':<20} {'cold ' + str(args.connections):>12} {'wall':>8} {'pool burst':>12} {'wall':>8}")
        for name, url in urls.items():
            cold_lag, cold_wall = median_of(args.rounds, lambda url=url: cold(url, args.connections))  # type: ignore[misc]
            burst_lag, burst_wall = median_of(args.rounds, lambda url=url: bursts(url, args.bursts))  # type: ignore[misc]
            print(f"{name:<20} {cold_lag:>12.1f} {cold_wall:>8.0f} {burst_lag:>12.1f} {burst_wall:>8.0f}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
