"""The differential harness in the suite: generated statements, driver against a plain SQLite copy.

A fixed set of seeds runs in CI; ``python -m tests.differential --seeds 1-20
--statements 2000`` runs thousands locally (see ``__main__.py``).
"""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from . import dataset as datasets
from .generator import Generator
from .harness import Connections, run

STATEMENTS_PER_SEED = 120


@pytest.fixture(scope="module")
def data() -> Iterator[datasets.Dataset]:
    built = datasets.build(jobs=300, seed=11)
    yield built
    built.emulator.stop()




def test_the_copy_is_what_the_driver_reads(data: datasets.Dataset) -> None:
    """The oracle is only as good as its copy: every table, every special value, checked at build."""
    tags = {row[0] for row in data.oracle.execute('SELECT tag FROM "Jobs"')}
    assert {"1e2", "", "../users/me", "Ünïcødé ✓", None} <= tags
    files_per_task = max(n for (n,) in data.oracle.execute('SELECT count(*) FROM "TaskFiles" GROUP BY task_id'))
    assert files_per_task >= 2
    assert next(data.oracle.execute('SELECT count(*) FROM "Tasks" WHERE retry_of_task_id IS NOT NULL'))[0] >= 1


@pytest.mark.parametrize("seed", [101, 102, 103])
def test_generated_statements_agree_with_plain_sqlite(data: datasets.Dataset, seed: int) -> None:
    generator = Generator(data.tables, data.values, seed)
    conns = Connections(data, seed)
    problems = []
    try:
        for i in range(STATEMENTS_PER_SEED):
            statement = generator.statement()
            outcome = run(data, conns.pick(), statement)
            if not outcome.ok:
                problems.append(f"#{i}: {outcome.problem}\n  {statement}\n  oracle: {statement.oracle_sql} {statement.oracle_params!r}")
    finally:
        conns.close()
    assert not problems, f"{len(problems)} of {STATEMENTS_PER_SEED} statements disagree:\n" + "\n".join(problems[:10])
