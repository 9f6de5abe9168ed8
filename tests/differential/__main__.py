"""Run the differential harness at length: ``python -m tests.differential --seeds 1-5 --statements 2000``.

Prints, per seed, the statements run, the disagreements (with the SQL), the
requests sent, those over the request bound, and the time; exits 1 if
anything disagreed. ``--mode offline`` or ``--mode auto`` runs the statements
over the cache instead (the account synced into a SQLite file, read with
``Offline=true`` or ``AutoCache=true``), ``--mode copies`` on one connection with
``CacheTTL`` whose tables were read whole first (statements over one table then
run on copies, engine/copies.py): the answers must be the same.
"""

from __future__ import annotations

import argparse
import shutil
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any

import apidriver

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


ALL_TABLES = ["Jobs", "Tasks", "TaskFiles", "TaskDependencies", "Users", "Webhooks", "Operations"]


class Single:
    """One connection (over the cache), picked for every statement."""

    def __init__(self, conn: apidriver.Connection) -> None:
        self.conn = conn

    def pick(self) -> apidriver.Connection:
        return self.conn

    def close(self) -> None:
        self.conn.close()


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.differential")
    parser.add_argument("--seeds", default="1-3", help="generator seeds, e.g. 1-5 or 3,7")
    parser.add_argument("--statements", type=int, default=1000, help="statements per seed")
    parser.add_argument("--jobs", type=int, default=300, help="seeded jobs in the emulator's account")
    parser.add_argument("--data-seed", type=int, default=11)
    parser.add_argument("--show", type=int, default=10, help="disagreements to print per seed")
    parser.add_argument("--mode", choices=("live", "offline", "auto", "copies"), default="live", help="read the API, or the cache")
    args = parser.parse_args()
    started = time.perf_counter()
    data = datasets.build(jobs=args.jobs, seed=args.data_seed)
    print(f"dataset: {args.jobs} jobs (seed {args.data_seed}); full-scan requests {data.scan_requests}; built in {time.perf_counter() - started:.1f} s")
    cache: dict[str, Any] = {}
    workdir = Path(tempfile.mkdtemp(prefix="apidriver-differential-"))
    if args.mode in ("offline", "auto"):
        path = workdir / "replica.sqlite"
        conn = data.connect()
        try:
            apidriver.sync(conn, to=f"sqlite:///{path}", tables=ALL_TABLES)
        finally:
            conn.close()
        with data.oracle:  # a cache keeps no webhook signing secret (docs/history.md, "Secrets at rest")
            data.oracle.execute('UPDATE "Webhooks" SET signing_secret = NULL')
        cache = {"Offline" if args.mode == "offline" else "AutoCache": True, "CacheLocation": str(path), "CacheTolerance": 3600}
        print(f"over the cache: {', '.join(f'{k}={v}' for k, v in cache.items())}")
    failures = 0
    try:
        for seed in _seeds(args.seeds):
            gen = Generator(data.tables, data.values, seed)
            if args.mode == "copies":
                conns = Single(data.connect(CacheTTL=3600))
                for table in ALL_TABLES:  # every list whole, with and without its include= columns
                    for sql in (f'SELECT * FROM "{table}"', f'SELECT count(*) FROM "{table}"'):
                        conns.conn.cursor().execute(sql).fetchall()
            else:
                conns = Connections(data, seed) if not cache else Single(data.connect(**cache))
            t0 = time.perf_counter()
            problems, requests, rows, refused, over, kinds, where = 0, 0, 0, 0, 0, Counter(), Counter()
            try:
                for i in range(args.statements):
                    statement = gen.statement()
                    outcome = run(data, conns.pick(), statement)
                    requests += outcome.requests
                    rows += outcome.rows
                    refused += outcome.refused
                    kinds.update(statement.tags[:1])
                    where[outcome.ran_on] += 1
                    if not outcome.ok:
                        problems += 1
                        over += outcome.over_bound
                        if problems <= args.show:
                            print(f"  seed {seed} #{i}: {outcome.problem}\n    {statement}\n    oracle: {statement.oracle_sql} {statement.oracle_params!r}")
            finally:
                conns.close()
            failures += problems
            print(
                f"seed {seed}: {args.statements} statements ({dict(kinds)}), {problems} disagreements ({over} of them requests "
                f"over the bound or sent twice), {refused} refused, "
                f"{requests} requests, {rows} rows, ran on {dict(where)}, {time.perf_counter() - t0:.1f} s"
            )
    finally:
        data.emulator.stop()
        shutil.rmtree(workdir, ignore_errors=True)
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
