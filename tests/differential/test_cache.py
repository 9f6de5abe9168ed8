"""The differential harness over the cache: the same statements, read from a replica (SQLite file).

``Offline=true`` and ``AutoCache=true`` read the replica's cache tables; with
nothing changed in the account they must answer exactly what the live tables
(and the plain SQLite copy) answer.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
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


def test_reads_of_a_sqlite_cache_are_run_by_sqlite(replicated: tuple[datasets.Dataset, Path]) -> None:
    """Statements reading only the plain-named cache tables run on views over the replica file (no
    cell passes through Python); the answers, and the types Python gets, are the cache tables' own."""
    data, path = replicated
    conn = data.connect(Offline=True, CacheLocation=str(path))
    try:
        assert conn.cache is not None
        for sql in [
            "SELECT status, count(*) FROM Tasks GROUP BY status ORDER BY 1",
            "SELECT count(*) FROM Tasks",
            "SELECT j.tag, count(t.id) FROM Jobs j JOIN Tasks t ON t.job_id = j.id GROUP BY j.tag ORDER BY 1",
            "SELECT id, created_at FROM Jobs WHERE created_at >= '2000-01-01T00:00:00Z' ORDER BY created_at, id",
            "SELECT * FROM TaskFiles ORDER BY task_id, idx",
            "SELECT tag FROM Jobs WHERE tag IN (SELECT value FROM json_each(?)) ORDER BY 1",
        ]:
            params = [json.dumps(["invoices", 100])] if "?" in sql else []
            assert conn.cache.route(sql, params) is not None, sql
            routed = conn.cursor().execute(sql, params)
            rows, description = routed.fetchall(), routed.description
            on_tables = conn.cursor().execute(sql.replace(" FROM Tasks", " FROM cache.Tasks").replace(" FROM Jobs", " FROM cache.Jobs")
                                              .replace(" FROM TaskFiles", " FROM cache.TaskFiles"), params)
            assert rows == on_tables.fetchall() and description == on_tables.description, sql
            assert datasets.canonical_rows(rows) == datasets.canonical_rows([tuple(r) for r in data.oracle.execute(sql, params)]), sql
    finally:
        conn.close()


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT count(*), count(_removed_at) FROM Jobs",  # hidden columns: only the cache tables have them
        "SELECT max(rowid) > 0 FROM Jobs",
        "SELECT count(*) FROM cache.Jobs",
        "SELECT count(*) FROM Jobs WHERE twice(length(tag)) > 4",  # a function the application registered
        "SELECT count(*) FROM Jobs, scratch",  # a temporary table of the connection
        "SELECT count(*) FROM Jobs WHERE id IN (SELECT name FROM sys_tables)",
    ],
)
def test_what_the_views_cannot_answer_stays_with_the_cache_tables(replicated: tuple[datasets.Dataset, Path], sql: str) -> None:
    data, path = replicated
    conn = data.connect(Offline=True, CacheLocation=str(path))
    try:
        conn.sqlite.create_scalar_function("twice", lambda x: None if x is None else 2 * x, 1)
        conn.cursor().execute("CREATE TEMP TABLE scratch AS SELECT 1 AS one")
        assert conn.cache is not None and conn.cache.route(sql, None) is None
        assert conn.cursor().execute(sql).fetchall()
    finally:
        conn.close()


def test_auto_cache_brings_tables_up_to_date_before_sqlite_reads_them(make_emulator: Any, tmp_path: Path) -> None:
    emu = make_emulator(jobs=12, seed=3)
    path = tmp_path / "cache.sqlite"
    conn = apidriver.connect(APIKey=emu.api_key, BaseURL=emu.base_url, AutoCache=True, CacheLocation=str(path), CacheTolerance=0)
    try:
        cursor = conn.cursor()
        assert cursor.execute("SELECT count(*) FROM Jobs").fetchone() == (12,)
        assert conn.cache is not None and conn.cache.route("SELECT count(*) FROM Jobs", None) is not None
        with httpx.Client(base_url=emu.api_url, headers={"Authorization": f"Bearer {emu.api_key}"}) as api:
            api.post("/jobs", json={"tag": "later", "tasks": {"a": {"operation": "import/url", "url": "https://example.com/a.pdf"}}}).raise_for_status()
        assert cursor.execute("SELECT count(*) FROM Jobs").fetchone() == (13,)
        assert cursor.requests  # the sync that found the new job
    finally:
        conn.close()


def test_a_repeated_statement_runs_on_the_reader_with_its_new_parameters(replicated: tuple[datasets.Dataset, Path]) -> None:
    """The second run of a SQL text over the cache takes the first run's decision (Connection.planned):
    it must still run on the reader, with this run's parameters, and answer what the oracle answers."""
    data, path = replicated
    conn = data.connect(Offline=True, CacheLocation=str(path))
    sql = "SELECT count(*), min(id) FROM Jobs WHERE tag = ?"
    try:
        tags = [row[0] for row in data.oracle.execute("SELECT DISTINCT tag FROM Jobs WHERE tag IS NOT NULL ORDER BY 1 LIMIT 3")]
        assert len(tags) == 3
        for tag in tags + tags:
            cursor = conn.cursor().execute(sql, (tag,))
            assert cursor.context.ran_on == "cache reader"
            assert cursor.fetchall() == [tuple(r) for r in data.oracle.execute(sql, (tag,))], tag
    finally:
        conn.close()
