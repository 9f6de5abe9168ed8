"""The driver reads the cache: AutoCache, Offline, cache.<Table> beside the live tables, REPLICATE and CACHE."""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import apidriver
from apidriver.emulator import Emulator

from ..conftest import connect_to
from ..emulator.support import client, create_job
from .conftest import live_rows, scalar

MakeEmulator = Callable[..., Emulator]
HOUR = 3600.0

# Queries whose answers must be the same over the API and over the cache: every table whole,
# joins, grouping, JSON functions, timestamps compared as text and as bound datetimes, LIKE, NULLs.
SAME_ANSWERS = [
    ("SELECT * FROM Jobs ORDER BY id", ()),
    ("SELECT * FROM Tasks ORDER BY id", ()),
    ("SELECT * FROM TaskFiles ORDER BY task_id, idx", ()),
    ("SELECT * FROM TaskDependencies ORDER BY task_id, depends_on_task_id", ()),
    ("SELECT * FROM Users", ()),
    # (every column but signing_secret: the cache keeps no secret)
    ("SELECT id, url, events, disabled, failing, created_at, updated_at, links_self FROM Webhooks ORDER BY id", ()),
    ("SELECT j.status, count(*), min(j.created_at), max(t.ended_at), sum(t.credits) FROM Jobs j JOIN Tasks t ON t.job_id = j.id GROUP BY j.status ORDER BY 1", ()),
    ("SELECT tag, count(*) FROM Jobs WHERE tag IS NOT NULL GROUP BY tag ORDER BY 2 DESC, 1", ()),
    ("SELECT id, json_extract(result, '$.files[0].filename') FROM Tasks WHERE operation = 'export/url' ORDER BY 1", ()),
    ("SELECT id FROM Jobs WHERE created_at > ? ORDER BY created_at, id", (dt.datetime.now(dt.timezone.utc) - dt.timedelta(hours=12),)),
    ("SELECT count(*) FROM Jobs WHERE created_at >= '2000-01-01 00:00:00' AND ended_at IS NULL", ()),
    ("SELECT operation, engine, count(*) FROM Tasks WHERE engine LIKE 'i%' OR code IS NOT NULL GROUP BY 1, 2 ORDER BY 1, 2", ()),
    ("SELECT f.filename FROM Jobs j JOIN Tasks t ON t.job_id = j.id JOIN TaskFiles f ON f.task_id = t.id WHERE j.tag = 'reports' ORDER BY 1", ()),
    ("SELECT typeof(j.created_at), typeof(j.tasks), typeof(u.credits), typeof(u.paying) FROM Jobs j, Users u LIMIT 1", ()),
    ("SELECT id, status FROM Tasks WHERE id = (SELECT max(id) FROM Tasks)", ()),
    # Many lookups by text into an INTEGER column (the inner loop of a join): SQLite's affinity rules.
    ("WITH RECURSIVE n(x) AS (SELECT 0 UNION ALL SELECT x + 1 FROM n WHERE x < 20) "
     "SELECT n.x, count(t.id) FROM n LEFT JOIN Tasks t ON t.credits = CAST(n.x AS TEXT) GROUP BY n.x ORDER BY n.x", ()),
]


def cache_properties(url: str) -> dict[str, str]:
    return {"CacheLocation": url.removeprefix("sqlite:///")} if url.startswith("sqlite") else {"CacheConnection": url}


def answers(conn: Any, json_values: bool) -> list[Any]:
    out = []
    for sql, params in SAME_ANSWERS:
        cursor = conn.cursor()
        cursor.execute(sql, params)
        rows = cursor.fetchall()
        if json_values:  # jsonb keeps its own key order: compare JSON by value
            kinds = [d[1] for d in cursor.description]
            rows = [tuple(json.loads(v) if k == "JSON" and v is not None else v for k, v in zip(kinds, r)) for r in rows]
        out.append((sql, cursor.description, rows))
    return out


def test_auto_cache_and_offline_answer_exactly_as_live(history_emulator: Emulator, replica_url: str) -> None:
    json_values = not replica_url.startswith("sqlite")
    live = connect_to(history_emulator)
    auto = connect_to(history_emulator, AutoCache=True, **cache_properties(replica_url))
    try:
        expected = answers(live, json_values)
        assert all(rows for _, _, rows in expected[:6])
        assert answers(auto, json_values) == expected
        secrets = auto.cursor().execute("SELECT count(*), count(signing_secret) FROM Webhooks").fetchone()
        assert secrets[0] > 0 and secrets[1] == 0
    finally:
        live.close()
        auto.close()
    offline = apidriver.connect(Offline=True, **cache_properties(replica_url))
    try:
        history_emulator.clear_requests()
        assert answers(offline, json_values) == expected
        assert history_emulator.requests() == []
    finally:
        offline.close()


def test_auto_cache_refreshes_only_what_is_older_than_the_tolerance(history_emulator: Emulator, tmp_path: Path) -> None:
    path = str(tmp_path / "cache.sqlite")
    conn = connect_to(history_emulator, AutoCache=True, CacheLocation=path)
    try:
        cursor = conn.cursor()
        cursor.execute("SELECT count(*) FROM Jobs")
        assert cursor.fetchone() == (24,)
        assert [r.url.split("?")[0] for r in cursor.requests] == [history_emulator.api_url + "/jobs"]
        with client(history_emulator) as api:
            create_job(api, tag="meanwhile")
        cursor.execute("SELECT count(*) FROM Jobs")
        assert (cursor.fetchone(), cursor.requests) == ((24,), [])  # within CacheTolerance (600 s): the cache as it is
        cursor.execute("SELECT count(*) FROM Tasks t JOIN TaskFiles f ON f.task_id = t.id")
        assert cursor.requests  # Tasks (and the files cut from them) had never been synced
    finally:
        conn.close()
    eager = connect_to(history_emulator, AutoCache=True, CacheLocation=path, CacheTolerance=0)
    try:
        cursor = eager.cursor()
        cursor.execute("SELECT count(*) FROM Jobs WHERE tag = 'meanwhile'")
        assert cursor.fetchone() == (1,)
        assert len(cursor.requests) == 1  # one page: the new job; nothing else can have changed
    finally:
        eager.close()


def test_history_stays_and_live_rows_sit_beside_it(history_emulator: Emulator, replica_url: str) -> None:
    conn = connect_to(history_emulator, AutoCache=True, CacheTolerance=0, **cache_properties(replica_url))
    try:
        cursor = conn.cursor()
        before = cursor.execute("SELECT count(*) FROM Jobs").fetchone()[0]
        history_emulator.advance_clock(30 * HOUR)
        row = cursor.execute(
            "SELECT (SELECT count(*) FROM Jobs), (SELECT count(*) FROM Jobs WHERE _removed_at IS NULL), (SELECT count(*) FROM live.Jobs)"
        ).fetchone()
        assert row[0] == before and row[1] == row[2] < before  # only the jobs waiting for an upload are left in the API
        # Live and cached rows in one statement: which cached jobs the API still has.
        joined = cursor.execute("SELECT count(*) FROM Jobs c JOIN live.Jobs l ON l.id = c.id").fetchone()[0]
        assert joined == row[2]
        assert [d[0] for d in cursor.execute("SELECT * FROM Jobs LIMIT 1").description] == [d[0] for d in cursor.execute("SELECT * FROM live.Jobs LIMIT 0").description]
        removed = cursor.execute("SELECT _removed_at FROM Jobs WHERE _removed_at IS NOT NULL LIMIT 1").fetchone()[0]
        assert isinstance(removed, dt.datetime) and removed.tzinfo is not None
    finally:
        conn.close()


def test_offline_sends_nothing_needs_no_key_and_refuses_writes(history_emulator: Emulator, tmp_path: Path) -> None:
    path = str(tmp_path / "cache.sqlite")
    apidriver.sync(connect_to(history_emulator), to=f"sqlite:///{path}")
    history_emulator.clear_requests()
    offline = apidriver.connect(Offline=True, CacheLocation=path, BaseURL=history_emulator.base_url)
    try:
        cursor = offline.cursor()
        job = cursor.execute("SELECT id FROM Jobs LIMIT 1").fetchone()[0]
        with pytest.raises(apidriver.NotSupportedError, match="Offline=true"):
            cursor.execute("INSERT INTO Jobs (tasks) VALUES ('{}')")
        with pytest.raises(apidriver.NotSupportedError, match="Offline=true"):
            cursor.execute("DELETE FROM Jobs WHERE id = ?", (job,))
        with pytest.raises(apidriver.NotSupportedError, match="Offline=true"):
            cursor.execute("SELECT * FROM WaitJob(?)", (job,))
        for statement in ("REPLICATE", "CACHE SELECT * FROM Jobs"):
            with pytest.raises(apidriver.NotSupportedError, match="Offline=true"):
                cursor.execute(statement)
        assert cursor.execute("SELECT count(*) FROM Jobs WHERE id = ?", (job,)).fetchone() == (1,)
    finally:
        offline.close()
    assert history_emulator.requests() == []
    with pytest.raises(apidriver.ProgrammingError, match="no cache at"):
        apidriver.connect(Offline=True, CacheLocation=str(tmp_path / "none.sqlite"))


def test_read_only_refuses_replicate_and_cache_before_sending(history_emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    apidriver.sync(connect_to(history_emulator), to=f"sqlite:///{path}")
    before = path.read_bytes()
    history_emulator.clear_requests()
    conn = connect_to(history_emulator, ReadOnly=True, CacheLocation=str(path))
    try:
        cursor = conn.cursor()
        for statement in ("REPLICATE", "REPLICATE Jobs", "CACHE SELECT * FROM Jobs", "CACHE WITH TRUNCATE SELECT id FROM Jobs"):
            with pytest.raises(apidriver.NotSupportedError, match=r"read-only \(ReadOnly=true\)\. Nothing was sent"):
                cursor.execute(statement)
        assert history_emulator.requests() == []
        assert cursor.execute("SELECT count(*) FROM cache.Jobs").fetchone() == (24,)  # reading the cache still works
    finally:
        conn.close()
    assert path.read_bytes() == before


def test_writes_through_auto_cache_go_to_the_api(history_emulator: Emulator, tmp_path: Path) -> None:
    conn = connect_to(history_emulator, AutoCache=True, CacheLocation=str(tmp_path / "cache.sqlite"))
    try:
        cursor = conn.cursor()
        cursor.execute("INSERT INTO Jobs (tag, tasks) VALUES ('via-cache', ?) RETURNING id, status", ({"a": {"operation": "import/url", "url": "https://x.example/a.pdf"}},))
        job_id, status = cursor.fetchone()
        assert status == "waiting" and [r.method for r in cursor.requests] == ["POST"]
        cursor.execute("DELETE FROM Jobs WHERE id = ?", (job_id,))
        assert cursor.rowcount == 1 and [r.method for r in cursor.requests][-1] == "DELETE"
        with pytest.raises(apidriver.NotSupportedError):
            cursor.execute("UPDATE Jobs SET tag = 'x'")
        requests = len(history_emulator.requests())
        for statement in ("DELETE FROM cache.Jobs", "INSERT INTO cache.Jobs (tasks) VALUES ('{}')"):
            with pytest.raises(apidriver.NotSupportedError, match="the cache is written by syncs"):
                cursor.execute(statement)
        assert len(history_emulator.requests()) == requests
    finally:
        conn.close()
    with client(history_emulator) as api:
        assert api.get(f"/jobs/{job_id}").status_code == 404


def test_replicate_statement(history_emulator: Emulator, replica_url: str) -> None:
    conn = connect_to(history_emulator, **cache_properties(replica_url))
    try:
        cursor = conn.cursor()
        cursor.execute("REPLICATE")
        assert [d[0] for d in cursor.description] == ["table_name", "inserted", "updated", "removed", "requests"]
        rows = {r[0]: r[1:] for r in cursor.fetchall()}
        assert list(rows) == ["Jobs", "Tasks", "TaskFiles", "TaskDependencies", "Users", "Webhooks"]
        assert rows["Jobs"][0] == 24 and len(cursor.requests) == sum(r[3] for r in rows.values())
        cursor.execute("/* again */ replicate [Jobs];  -- one table")
        assert cursor.fetchall() == [("Jobs", 0, 0, 0, 1)]
        cursor.execute("SELECT (SELECT count(*) FROM Jobs), (SELECT count(*) FROM cache.Jobs)")  # live and cached
        assert cursor.fetchone() == (24, 24)
    finally:
        conn.close()


def test_cache_statement_stores_a_querys_rows(history_emulator: Emulator, replica_url: str) -> None:
    conn = connect_to(history_emulator, **cache_properties(replica_url))
    try:
        cursor = conn.cursor()
        cursor.execute("CACHE SELECT id, tag, status FROM Jobs WHERE tag = ?", ("podcasts",))
        invoices = live_rows(history_emulator, "Jobs", "id, tag, status")
        invoices = [r for r in invoices if r[1] == "podcasts"]
        assert len(invoices) == 4
        assert cursor.fetchall() == [("Jobs", len(invoices), len(invoices), 0, 0)]
        cached = cursor.execute("SELECT id, tag, status, created_at FROM cache.Jobs ORDER BY id").fetchall()
        assert [r[:3] for r in cached] == sorted(invoices) and {r[3] for r in cached} == {None}  # only what was selected
        cursor.execute("CACHE SELECT * FROM Jobs WHERE tag = 'reports'")
        reports = cursor.fetchone()[1]
        cursor.execute("CACHE WITH TRUNCATE SELECT * FROM Jobs WHERE tag = 'podcasts'")
        assert cursor.fetchone() == ("Jobs", len(invoices), 0, len(invoices), reports)
        assert cursor.execute("SELECT count(*), count(created_at) FROM cache.Jobs").fetchone() == (len(invoices), len(invoices))
    finally:
        conn.close()


@pytest.mark.parametrize(
    ("statement", "message"),
    [
        ("CACHE DELETE FROM Jobs", "CACHE stores the rows of a SELECT"),
        ("CACHE WITH x AS (SELECT 1) DELETE FROM Jobs", "may only read"),
        ("CACHE SELECT id FROM Jobs; DELETE FROM Jobs", "may only read|one SELECT"),
        ("CACHE SELECT id FROM Jobs; SELECT 1", "one SELECT"),
        ("CACHE SELECT tag FROM Jobs", "select id too"),
        ("CACHE SELECT count(*) FROM Jobs", "an expression is not a column"),
        ("CACHE SELECT j.id, t.id FROM Jobs j JOIN Tasks t ON t.job_id = j.id", "columns of one table"),
        ("CACHE SELECT id FROM cache.Jobs", "select FROM Jobs instead"),
        ("CACHE SELECT name FROM sys_tables", "not one"),
        ("CACHE WITH AUTOCOMMIT SELECT * FROM Jobs", "not supported"),
        ("CACHE", "needs a SELECT"),
        ("REPLICATE Jobs Tasks", "REPLICATE Jobs for one"),
        ("REPLICATE Nope", "No table Nope"),
    ],
)
def test_cache_statement_errors(history_emulator: Emulator, tmp_path: Path, statement: str, message: str) -> None:
    conn = connect_to(history_emulator, CacheLocation=str(tmp_path / "cache.sqlite"))
    try:
        history_emulator.clear_requests()
        with pytest.raises(apidriver.ProgrammingError, match=message):
            conn.cursor().execute(statement)
        assert [r["method"] for r in history_emulator.requests()] in ([], ["GET"]) and conn.cursor().execute("SELECT count(*) FROM Jobs").fetchone() == (24,)
    finally:
        conn.close()


def test_the_keywords_elsewhere_are_plain_sql(history_emulator: Emulator) -> None:
    conn = connect_to(history_emulator)
    try:
        cursor = conn.cursor()
        row = cursor.execute("-- CACHE this?\nSELECT 'REPLICATE' AS cache, count(*) AS replicate FROM Jobs WHERE coalesce(tag, '') != 'CACHE'").fetchone()
        assert row == ("REPLICATE", 24)
        with pytest.raises(apidriver.ProgrammingError, match="needs a cache database"):
            cursor.execute("REPLICATE")
        with pytest.raises(apidriver.ProgrammingError, match="CacheLocation"):
            cursor.execute("  cache select * from Jobs")
    finally:
        conn.close()


def test_cache_properties_are_checked_and_the_password_hidden(history_emulator: Emulator, tmp_path: Path) -> None:
    with pytest.raises(apidriver.ProgrammingError, match="not both"):
        connect_to(history_emulator, CacheLocation=str(tmp_path / "a.sqlite"), CacheConnection="sqlite:///b.sqlite")
    with pytest.raises(apidriver.ProgrammingError, match="CacheTolerance"):
        connect_to(history_emulator, CacheTolerance="-1")
    conn = connect_to(history_emulator, CacheConnection="postgresql+psycopg://me:s3cret@127.0.0.1:1/nowhere")
    try:
        assert "s3cret" not in repr(conn.settings)
        with pytest.raises(apidriver.OperationalError) as info:
            conn.cursor().execute("REPLICATE")
        assert "me:***@127.0.0.1" in str(info.value) and "s3cret" not in str(info.value)
    finally:
        conn.close()


def test_sqlalchemy_reads_the_cache_offline(history_emulator: Emulator, tmp_path: Path) -> None:
    path = tmp_path / "cache.sqlite"
    apidriver.sync(connect_to(history_emulator), to=f"sqlite:///{path}")
    engine = sa.create_engine("cloudconvert://", connect_args={"Offline": True, "CacheLocation": str(path)})
    try:
        with engine.connect() as conn:
            count = conn.execute(sa.text("SELECT count(*) FROM Jobs WHERE status = :s"), {"s": "finished"}).scalar()
            newest = conn.execute(sa.text("SELECT max(created_at) FROM Jobs")).scalar()
    finally:
        engine.dispose()
    assert count == scalar(f"sqlite:///{path}", """SELECT count(*) FROM "Jobs" WHERE status = 'finished'""") > 0
    assert newest == scalar(f"sqlite:///{path}", 'SELECT max(created_at) FROM "Jobs"')
