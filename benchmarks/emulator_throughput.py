"""How many list pages per second the CloudConvert emulator serves.

Run: ``.venv/bin/python benchmarks/emulator_throughput.py [--jobs 2000] [--seconds 3]``

Starts ``Emulator(jobs=2000, seed=1, rate_limit=0)`` in-process with no latency and reads
``GET /v2/jobs?per_page=100&page=N`` (cycling over the 20 pages), plain and
with ``include=tasks``, first from one client and then from 8 client threads
(one httpx client each, kept-alive connections). Prints requests, seconds and
requests/s per row. The client runs in the same process as the server, so the
figures are a lower bound of what a separate client would see.
"""

from __future__ import annotations

import argparse
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx

from apidriver.emulator import Emulator


@dataclass
class Row:
    name: str
    threads: int
    requests: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.requests / self.seconds if self.seconds else 0.0


def run(emu: Emulator, include: str | None, threads: int, seconds: float) -> Row:
    """Hammer the jobs list for ``seconds`` from ``threads`` threads; count the answers."""
    pages = max(1, -(-len(emu.backend.job_order) // 100))
    counts = [0] * threads
    errors: list[str] = []
    stop_at = time.monotonic() + seconds
    start = threading.Barrier(threads + 1)

    def worker(index: int) -> None:
        params: dict[str, str | int] = {"per_page": 100}
        if include:
            params["include"] = include
        with httpx.Client(base_url=emu.api_url, headers={"Authorization": f"Bearer {emu.api_key}"}, timeout=30) as client:
            client.get("/users/me")  # open the connection before the clock starts
            start.wait()
            n = index
            while time.monotonic() < stop_at:
                response = client.get("/jobs", params={**params, "page": n % pages + 1})
                if response.status_code != 200 or len(response.json()["data"]) == 0:
                    errors.append(f"{response.status_code} {response.text[:200]}")
                    return
                counts[index] += 1
                n += 1

    workers = [threading.Thread(target=worker, args=(i,)) for i in range(threads)]
    for w in workers:
        w.start()
    start.wait()
    began = time.monotonic()
    for w in workers:
        w.join()
    elapsed = time.monotonic() - began
    if errors:
        raise SystemExit(f"requests failed: {errors[0]}")
    label = "GET /v2/jobs?per_page=100" + (f"&include={include}" if include else "")
    return Row(label, threads, sum(counts), elapsed)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--jobs", type=int, default=2000)
    parser.add_argument("--seconds", type=float, default=3.0, help="duration of each measurement")
    args = parser.parse_args()
    rows: list[Row] = []
    with Emulator(jobs=args.jobs, seed=1, rate_limit=0) as emu:
        measure: list[Callable[[], Row]] = [
            lambda: run(emu, None, 1, args.seconds),
            lambda: run(emu, "tasks", 1, args.seconds),
            lambda: run(emu, None, 8, args.seconds),
            lambda: run(emu, "tasks", 8, args.seconds),
        ]
        for m in measure:
            rows.append(m())
    print(f"emulator with {args.jobs} seeded jobs, {args.seconds:g} s per row")
    print(f"{'request':<42} {'threads':>7} {'requests':>9} {'seconds':>8} {'requests/s':>11}")
    for row in rows:
        print(f"{row.name:<42} {row.threads:>7} {row.requests:>9} {row.seconds:>8.2f} {row.rate:>11.1f}")


if __name__ == "__main__":
    main()
