"""Every value the API returns is kept, on every target: what a database cannot hold exactly (U+0000 in
PostgreSQL text and jsonb, integers beyond 64 bits, odd timestamps, lone surrogates) is kept in ``_exact``
and read back exactly through the cache; one row a database refuses never costs its page's others."""

from __future__ import annotations

import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

import apidriver
from apidriver.emulator import Emulator
from apidriver.replica import open_target
from apidriver.replica.replicator import Replicator
from apidriver.replica.report import SyncReport

from ..conftest import connect_to
from ..emulator.support import client, create_job, wait_job
from .conftest import scalar

MakeEmulator = Callable[..., Emulator]
NUL_TASKS = {"raw": {"operation": "import/raw", "file": "nul\x00content", "filename": "nul\x00name.txt"}}


def run_sync(emulator: Emulator, url: str, **options: Any) -> SyncReport:
    conn = connect_to(emulator, **options.pop("properties", {}))
    try:
        return apidriver.sync(conn, to=url, **options)
    finally:
        conn.close()


def cache_properties(url: str) -> dict[str, str]:
    return {"CacheLocation": url.removeprefix("sqlite:///")} if url.startswith("sqlite") else {"CacheConnection": url}


def everything(conn: Any, json_values: bool) -> dict[str, list[tuple[Any, ...]]]:
    """Every row of every table the account has, as the driver returns them (JSON decoded where asked)."""
    out = {}
    for table in ("Jobs", "Tasks", "TaskFiles", "TaskDependencies", "Users"):
        cursor = conn.cursor().execute(f"SELECT * FROM {table}")
        kinds = [d[1] for d in cursor.description]
        rows = [tuple(json.loads(v) if json_values and k == "JSON" and v is not None else v for k, v in zip(kinds, r)) for r in cursor.fetchall()]
        out[table] = sorted(rows, key=repr)
    return out


def test_a_nul_anywhere_is_kept_and_costs_no_row(make_emulator: MakeEmulator, replica_url: str) -> None:
    """Issue #16: one job tagged "nul\\x00byte" made every sync into PostgreSQL fail, and a first sync
    lost the whole page holding it. Now every value is kept on both targets, and read back exactly."""
    emu = make_emulator(jobs=30, seed=5, rate_limit=0)
    with client(emu) as api:
        job = create_job(api, tag="nul\x00byte", tasks=NUL_TASKS)["id"]
        wait_job(emu, job)
    report = run_sync(emu, replica_url)
    assert report["Jobs"].inserted == 31 and report["TaskFiles"].inserted > 0
    json_values = replica_url.startswith("postgresql")
    live = connect_to(emu)
    offline = apidriver.connect(Offline=True, **cache_properties(replica_url))
    try:
        assert everything(offline, json_values) == everything(live, json_values)
        cursor = offline.cursor()
        assert cursor.execute("SELECT tag FROM Jobs WHERE id = ?", (job,)).fetchone() == ("nul\x00byte",)
        assert cursor.execute("SELECT id FROM Jobs WHERE tag = ?", ("nul\x00byte",)).fetchall() == [(job,)]
        assert cursor.execute("SELECT filename FROM TaskFiles WHERE job_id = ?", (job,)).fetchall() == [("nul\x00name.txt",)]
        payload = cursor.execute("SELECT payload FROM Tasks WHERE job_id = ?", (job,)).fetchone()[0]
        assert json.loads(payload)["file"] == "nul\x00content"
    finally:
        live.close()
        offline.close()
    if json_values:  # PostgreSQL holds the closest text, and the exact value beside it
        assert scalar(replica_url, f"""SELECT tag FROM "Jobs" WHERE id = '{job}'""") == "nul\ufffdbyte"
        exact = json.loads(scalar(replica_url, f"""SELECT _exact FROM "Jobs" WHERE id = '{job}'"""))
        assert set(exact) == {"tag", "tasks"} and exact["tag"] == "nul\x00byte"  # (its tasks name the file)
        assert scalar(replica_url, f"""SELECT payload->>'file' FROM "Tasks" WHERE job_id = '{job}'""") == "nul\ufffdcontent"
    else:  # SQLite holds it as it is
        assert scalar(replica_url, f"""SELECT _exact IS NULL AND tag = 'nul' || char(0) || 'byte' FROM "Jobs" WHERE id = '{job}'""") == 1
    assert scalar(replica_url, 'SELECT count(*) FROM "Jobs" WHERE _exact IS NOT NULL') == (1 if json_values else 0)


def test_long_text_and_huge_integers(make_emulator: MakeEmulator, replica_url: str) -> None:
    """A 100,000-character tag (too long for a PostgreSQL B-tree index entry: text is hash-indexed) and an
    integer beyond 64 bits (neither SQLite nor bigint holds it: kept in _exact, the column NULL)."""
    emu = make_emulator(jobs=5, seed=5, rate_limit=0)
    long_tag = "é" + "x" * 99_999
    with client(emu) as api:
        job = create_job(api, tag=long_tag)["id"]
        wait_job(emu, job)
    emu.backend.user.credits = 2**64 - 1
    report = run_sync(emu, replica_url)
    assert report["Jobs"].inserted == 6 and report["Users"].inserted == 1
    offline = apidriver.connect(Offline=True, **cache_properties(replica_url))
    try:
        assert offline.cursor().execute("SELECT id FROM Jobs WHERE tag = ?", (long_tag,)).fetchall() == [(job,)]
    finally:
        offline.close()
    assert scalar(replica_url, 'SELECT credits FROM "Users"') is None
    assert json.loads(scalar(replica_url, 'SELECT _exact FROM "Users"')) == {"credits": 2**64 - 1}


HOSTILE = {  # a job as a misbehaving API (or a proxy) might send it
    "id": "hostile-1",
    "tag": "lone \ud800 surrogate",
    "status": "finished",
    "created_at": "0000-00-00 00:00:00",  # a MySQL zero date
    "started_at": "2026-02-30T00:00:00Z",  # no such day
    "ended_at": "+10000-01-01T00:00:00Z",  # beyond datetime and ISO 8601's four digits
    "tasks": [{"id": "t-\x00", "name": "\udfff", "status": "finished", "big": 2**70}],
    "links": {"self": "http://x/v2/jobs/hostile-1"},
}


def test_values_no_database_holds_are_kept_exactly(history_emulator: Emulator, replica_url: str) -> None:
    conn = connect_to(history_emulator)
    target = open_target(conn, replica_url)
    try:
        replicator = Replicator(conn, target)
        spec = replicator.specs["Jobs"]
        neighbour = {**HOSTILE, "id": "plain-2", "tag": "plain", "created_at": "2026-01-01T00:00:00Z", "started_at": None, "ended_at": None, "tasks": []}
        replicator.write_objects("Jobs", [HOSTILE, neighbour], {"Jobs"})
        with target.read() as db:
            table = target.table("Jobs")
            rows = {r.id: r for r in db.execute(sa.select(table))}
        assert set(rows) == {"hostile-1", "plain-2"}  # the odd row costs no other
        row = rows["hostile-1"]
        exact = target.exact_values(row._exact)
        values = {c.name: exact.get(c.name, target.from_target(c.type, row._mapping[c.name])) for c in spec.columns}
        assert values["tag"] == "lone \ud800 surrogate"
        assert (values["created_at"], values["started_at"], values["ended_at"]) == (
            "0000-00-00 00:00:00",
            "2026-02-30T00:00:00Z",
            "+10000-01-01T00:00:00Z",
        )
        assert json.loads(values["tasks"]) == HOSTILE["tasks"]
        assert rows["plain-2"]._exact is None and rows["plain-2"].tag == "plain"
    finally:
        target.close()
        conn.close()


def test_a_row_the_database_refuses_costs_no_other(make_emulator: MakeEmulator, replica_url: str) -> None:
    """Whatever a database refuses (here a rule the user added to the replica), the page's other rows are
    written, the sync says which row it could not store, and its bookkeeping does not move on."""
    emu = make_emulator(jobs=12, seed=5, rate_limit=0)
    run_sync(emu, replica_url, tables="Jobs")
    engine = sa.create_engine(replica_url)
    try:
        with engine.begin() as db:
            if replica_url.startswith("postgresql"):
                db.execute(sa.text("""ALTER TABLE "Jobs" ADD CONSTRAINT not_refused CHECK (tag IS NULL OR tag <> 'refused') NOT VALID"""))
            else:
                db.execute(sa.text("""CREATE TRIGGER not_refused BEFORE INSERT ON "Jobs" WHEN NEW.tag = 'refused' BEGIN SELECT RAISE(ABORT, 'refused'); END"""))
            watermark = db.execute(sa.text("SELECT watermark FROM _apidriver_sync WHERE table_name = 'Jobs'")).scalar()
    finally:
        engine.dispose()
    with client(emu) as api:
        before = create_job(api, tag="before")["id"]
        refused = create_job(api, tag="refused")["id"]
        after = create_job(api, tag="after")["id"]
    with pytest.raises(apidriver.DataError, match=f"refused 1 row.*{refused}"):
        run_sync(emu, replica_url, tables="Jobs")
    assert scalar(replica_url, f"""SELECT count(*) FROM "Jobs" WHERE id IN ('{before}', '{after}')""") == 2
    assert scalar(replica_url, f"""SELECT count(*) FROM "Jobs" WHERE id = '{refused}'""") == 0
    assert scalar(replica_url, "SELECT watermark FROM _apidriver_sync WHERE table_name = 'Jobs'") == watermark
    engine = sa.create_engine(replica_url)
    try:
        with engine.begin() as db:
            db.execute(sa.text('ALTER TABLE "Jobs" DROP CONSTRAINT not_refused' if replica_url.startswith("postgresql") else "DROP TRIGGER not_refused"))
    finally:
        engine.dispose()
    report = run_sync(emu, replica_url, tables="Jobs")
    assert report["Jobs"].inserted == 1
    assert scalar(replica_url, f"""SELECT tag FROM "Jobs" WHERE id = '{refused}'""") == "refused"


def test_a_new_replica_is_its_owners_only(history_emulator: Emulator, tmp_path: Path) -> None:
    """Issue #16: the replica file was created 0644 (and held every webhook's signing secret)."""
    import os
    import stat

    path = tmp_path / "replica.sqlite"
    run_sync(history_emulator, f"sqlite:///{path}")
    made = [p for p in (path, tmp_path / "replica.sqlite-wal", tmp_path / "replica.sqlite-shm") if p.exists()]
    assert path in made and all(stat.S_IMODE(os.stat(p).st_mode) == 0o600 for p in made), [oct(os.stat(p).st_mode) for p in made]
    # The cache's file too (REPLICATE), and the default one of AutoCache; a file that exists keeps its mode.
    cache = tmp_path / "cache.sqlite"
    conn = connect_to(history_emulator, CacheLocation=str(cache))
    try:
        conn.cursor().execute("REPLICATE Users").fetchall()
    finally:
        conn.close()
    assert stat.S_IMODE(os.stat(cache).st_mode) == 0o600
    mine = tmp_path / "mine.sqlite"
    mine.touch(mode=0o640)
    os.chmod(mine, 0o640)
    run_sync(history_emulator, f"sqlite:///{mine}", tables="Users")
    assert stat.S_IMODE(os.stat(mine).st_mode) == 0o640
