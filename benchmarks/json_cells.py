"""How fast JSON cells are written: ``values.json_text`` (orjson, stdlib bytes) against ``json.dumps``.

Run: ``.venv/bin/python benchmarks/json_cells.py [--jobs 100]``

Reads one page of jobs with their tasks (``include=tasks``) from an
in-process emulator and encodes every JSON cell a scan of Jobs and Tasks
makes (``Jobs.tasks``, ``Tasks.result``, ``Tasks.payload``) both ways, best
of 7 rounds. Prints the cells, their size, both times and the ratio.
"""

from __future__ import annotations

import argparse
import json
import time
from collections.abc import Callable
from typing import Any

import httpx

from apidriver.emulator import Emulator
from apidriver.values import json_text


def best(function: Callable[[Any], object], cells: list[Any]) -> float:
    times = []
    for _ in range(7):
        started = time.perf_counter()
        for cell in cells:
            function(cell)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--jobs", type=int, default=100, help="jobs on the page (at most 100)")
    args = parser.parse_args()
    with Emulator(jobs=args.jobs, seed=3) as emu:
        page = httpx.get(
            emu.api_url + "/jobs",
            params={"include": "tasks", "per_page": min(args.jobs, 100)},
            headers={"Authorization": f"Bearer {emu.api_key}"},
        ).json()["data"]
    cells = [job["tasks"] for job in page]
    cells += [task[field] for job in page for task in job["tasks"] for field in ("result", "payload") if task.get(field) is not None]
    stdlib = best(lambda v: json.dumps(v, ensure_ascii=False, separators=(",", ":")), cells)
    ours = best(json_text, cells)
    size = sum(len(json_text(c)) for c in cells)
    print(f"{len(cells)} JSON cells, {size / 1024:.0f} KiB of JSON text")
    print(f"json.dumps      {stdlib * 1e3:7.2f} ms")
    print(f"values.json_text {ours * 1e3:6.2f} ms   ({stdlib / ours:.1f}x faster, same bytes)")


if __name__ == "__main__":
    main()
