"""The differential harness over the cache: the same statements, read from a replica (SQLite file).

``Offline=true`` and ``AutoCache=true`` read the replica's cache tables; with
nothing changed in the account they must answer exactly what the live tables
(and the plain SQLite copy) answer.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import apidriver

from . import dataset as datasets
from .generator import Generator
from .harness import run

ALL_TABLES = ["Jobs", "Tasks", "TaskFiles", "TaskDependencies", "Users", "Webhooks", "Operations"]


@pytest.fixture(scope="module")
def replicated(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[datasets.Dataset, Path]]:
    data = datasets.build(jobs=300, seed=11)
    with data.oracle:  # a cache keeps no webhook signing secret (docs/history.md, "Secrets at rest")
        data.oracle.execute('UPDATE "Webhooks" SET signing_secret = NULL')
    path = tmp_path_factory.mktemp("cache") / "replica.sqlite"
    conn = data.connect()
    try:
        apidriver.sync(conn, to=f"sqlite:///{path}", tables=ALL_TABLES)
    finally:
        conn.close()
    yield data, path
    data.emulator.stop()


@pytest.mark.parametrize("mode, seed", [("Offline", 201), ("AutoCache", 202)])
def test_the_cache_answers_what_the_api_answers(replicated: tuple[datasets.Dataset, Path], mode: str, seed: int) -> None:
    data, path = replicated
    conn = data.connect(**{mode: True, "CacheLocation": str(path), "CacheTolerance": 3600})
    generator = Generator(data.tables, data.values, seed)
    problems = []
    try:
        for i in range(100):
            statement = generator.statement()
            outcome = run(data, conn, statement)
            if not outcome.ok:
                problems.append(f"#{i}: {outcome.problem}\n  {statement}")
    finally:
        conn.close()
    assert not problems, f"{len(problems)} of 100 statements disagree:\n" + "\n".join(problems[:10])
