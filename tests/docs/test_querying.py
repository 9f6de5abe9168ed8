"""docs/querying.md runs: its SQL against an emulator (timestamps in any ISO 8601 form compare as
instants), and its local-table example."""

from __future__ import annotations

import ast
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import apidriver
from apidriver.emulator import Emulator

from ..conftest import raw_list
from .harness import Block, DocRun, start_emulator

DOC = "docs/querying.md"


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    emulator = start_emulator(jobs=40, seed=3)
    yield emulator
    emulator.stop()


def test_every_block_of_the_querying_page(emulator: Emulator, tmp_path: Path) -> None:
    conn = apidriver.connect(APIKey=emulator.api_key, BaseURL=emulator.base_url)

    def sql(block: Block, statement: str) -> Any:
        return conn

    try:
        with DocRun(DOC, emulator, tmp_path, sql=sql) as run:
            run.run()
    finally:
        conn.close()
    assert len(run.ran) == len(run.outcomes) == 3

    # A list passed as one JSON parameter works like a literal list.
    tagged = [j for j in raw_list(emulator, "/jobs") if j.get("tag") in ("invoices", "reports")]
    assert tagged and int(run.outcome("json_each(?)").stdout) == len(tagged)

    # Three spellings of one instant count the same jobs; a date means its midnight (UTC), earlier.
    counts = [rows[0][0] for _, rows, _ in run.outcome("SELECT count(*) FROM Jobs WHERE created_at >=").results]
    assert counts[0] == counts[1] == counts[2] <= counts[3]

    # The local table joins the API's jobs.
    jobs = Counter(j["status"] for j in raw_list(emulator, "/jobs"))
    printed = ast.literal_eval(run.outcome("CREATE TABLE labels").stdout)
    assert sorted(printed) == sorted([("done", jobs["finished"]), ("failed", jobs["error"])])
