"""Run the differential harness at length: ``python -m tests.differential --seeds 1-5 --statements 2000``.

Prints, per seed, the statements run, the disagreements (with the SQL), the
requests sent and the time; exits 1 if anything disagreed.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter

from . import dataset as datasets
from .generator import Generator
from .harness import Connections, run


def _seeds(text: str) -> list[int]:
    out: list[int] = []
    for part in text.split(","):
        if "-" in part:
            low, high = part.split("-")
            out += list(range(int(low), int(high) + 1))
        else:
            out.append(int(part))
    return out


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.differential")
    parser.add_argument("--seeds", default="1-3", help="generator seeds, e.g. 1-5 or 3,7")
    parser.add_argument("--statements", type=int, default=1000, help="statements per seed")
    parser.add_argument("--jobs", type=int, default=300, help="seeded jobs in the emulator's account")
    parser.add_argument("--data-seed", type=int, default=11)
    parser.add_argument("--show", type=int, default=10, help="disagreements to print per seed")
    args = parser.parse_args()
    started = time.perf_counter()
    data = datasets.build(jobs=args.jobs, seed=args.data_seed)
    print(f"dataset: {args.jobs} jobs (seed {args.data_seed}); full-scan requests {data.scan_requests}; built in {time.perf_counter() - started:.1f} s")
    failures = 0
    try:
        for seed in _seeds(args.seeds):
            gen = Generator(data.tables, data.values, seed)
            conns = Connections(data, seed)
            t0 = time.perf_counter()
            problems, requests, rows, refused, kinds = 0, 0, 0, 0, Counter()
            try:
                for i in range(args.statements):
                    statement = gen.statement()
                    outcome = run(data, conns.pick(), statement)
                    requests += outcome.requests
                    rows += outcome.rows
                    refused += outcome.refused
                    kinds.update(statement.tags[:1])
                    if not outcome.ok:
                        problems += 1
                        if problems <= args.show:
                            print(f"  seed {seed} #{i}: {outcome.problem}\n    {statement}\n    oracle: {statement.oracle_sql} {statement.oracle_params!r}")
            finally:
                conns.close()
            failures += problems
            print(
                f"seed {seed}: {args.statements} statements ({dict(kinds)}), {problems} disagreements, {refused} refused, "
                f"{requests} requests, {rows} rows, {time.perf_counter() - t0:.1f} s"
            )
    finally:
        data.emulator.stop()
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
