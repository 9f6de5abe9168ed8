"""apidriver.sync(): the replica in SQLite and PostgreSQL, incremental, safe to interrupt and to run twice."""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
import pytest
import sqlalchemy as sa

import apidriver
from apidriver.emulator import Emulator
from apidriver.replica import open_target
from apidriver.replica.replicator import Replicator
from apidriver.replica.report import SyncReport

from ..conftest import connect_to
from ..emulator.support import client, create_job, wait_job
from .conftest import live_rows, quiet, replica_rows, same_rows, scalar
from .postgres import PostgresServer

MakeEmulator = Callable[..., Emulator]
ACCOUNT = ("Jobs", "Tasks", "TaskFiles", "TaskDependencies", "Users", "Webhooks")
HOUR = 3600.0


def run_sync(emulator: Emulator, url: str, **options: Any) -> SyncReport:
    conn = connect_to(emulator, **options.pop("properties", {}))
    try:
        return apidriver.sync(conn, to=url, **options)
    finally:
        conn.close()


def counts(report: SyncReport) -> dict[str, tuple[int, int, int]]:
    return {t.table: (t.inserted, t.updated, t.removed) for t in report}


def test_first_sync_copies_every_table_exactly(history_emulator: Emulator, replica_url: str) -> None:
    report = run_sync(history_emulator, replica_url)
    assert [t.table for t in report] == list(ACCOUNT)
    for table in ACCOUNT:
        live = live_rows(history_emulator, table)
        assert same_rows(history_emulator, replica_url, table), table
        assert report[table].inserted == len(live) > 0
        assert (report[table].updated, report[table].removed) == (0, 0)
    assert scalar(replica_url, 'SELECT count(*) FROM "Jobs" WHERE _synced_at IS NULL OR _removed_at IS NOT NULL') == 0
    assert report.requests == sum(t.requests for t in report) > 0


def test_replica_types_are_native(history_emulator: Emulator, replica_url: str) -> None:
    run_sync(history_emulator, replica_url)
    engine = sa.create_engine(replica_url)
    try:
        columns = {c["name"]: c for c in sa.inspect(engine).get_columns("Jobs")}
        indexes = {tuple(i["column_names"]) for i in sa.inspect(engine).get_indexes("Tasks")}
        keys = sa.inspect(engine).get_pk_constraint("Jobs")["constrained_columns"]
        unique = {i["name"]: i["column_names"] for i in sa.inspect(engine).get_indexes("TaskFiles") if i["unique"]}
    finally:
        engine.dispose()
    assert list(columns)[-4:] == ["_synced_at", "_removed_at", "_removed_reason", "_exact"]
    assert keys == ["id"]
    assert unique == {"pk_taskfiles": ["task_id", "idx"]}  # composite keys may have NULL parts: unique indexes
    assert {("job_id",), ("status",), ("operation",), ("created_at",)} <= indexes
    if replica_url.startswith("postgresql"):
        assert isinstance(columns["created_at"]["type"], sa.DateTime) and columns["created_at"]["type"].timezone
        assert type(columns["tasks"]["type"]).__name__ == "JSONB"
        assert scalar(replica_url, """SELECT data_type FROM information_schema.columns WHERE table_name = 'Tasks' AND column_name = 'ended_at'""") == "timestamp with time zone"
    else:  # the driver's own declared types, holding the values a live query returns
        assert {name: str(c["type"]) for name, c in columns.items()}["created_at"] == "TIMESTAMP"
        assert str(columns["tasks"]["type"]) == "JSON"
        assert scalar(replica_url, 'SELECT typeof(created_at) || typeof(tasks) FROM "Jobs" LIMIT 1') == "texttext"


def test_sync_of_an_unchanged_account_is_cheap(history_emulator: Emulator, replica_url: str) -> None:
    small_pages = {"PageSize": 20}
    run_sync(history_emulator, replica_url, properties=small_pages)
    history_emulator.clear_requests()
    report = run_sync(history_emulator, replica_url, properties=small_pages)
    assert all(c == (0, 0, 0) for c in counts(report).values())
    # Jobs (24) and Tasks (~75): page 1 (nothing new there), then the last page (the tail: nothing gone);
    # the account and the webhooks: one each.
    assert {t.table: t.requests for t in report if t.requests} == {"Jobs": 2, "Tasks": 2, "Users": 1, "Webhooks": 1}
    assert len(history_emulator.requests()) == 6
    assert [r["query"] for r in history_emulator.requests() if r["path"] == "/v2/jobs"] == [
        "include=tasks&page=1&per_page=20",
        "include=tasks&page=2&per_page=20",
    ]


def test_new_jobs_and_jobs_that_end_are_picked_up(make_emulator: MakeEmulator, replica_url: str) -> None:
    history_emulator = make_emulator(jobs=24, seed=5, rate_limit=0, task_seconds=600)  # tasks end when the clock says
    run_sync(history_emulator, replica_url)
    with client(history_emulator) as api:
        for i in range(3):
            create_job(api, tag=f"new-{i}")
    report = run_sync(history_emulator, replica_url)
    assert report["Jobs"].inserted == 3
    assert report["Tasks"].inserted == 9
    history_emulator.advance_clock(1800)
    quiet(history_emulator)  # the seeded webhooks' failed deliveries of these jobs change them
    history_emulator.clear_requests()
    report = run_sync(history_emulator, replica_url)
    assert report["Jobs"].updated == 3 and report["Jobs"].inserted == 0
    assert report["Tasks"].updated == 9
    assert report["TaskFiles"].inserted > 0  # the files the tasks produced
    statuses = replica_rows(replica_url, "Jobs", "tag LIKE 'new-%'")
    assert {row[2] for row in statuses} == {"finished"}
    for table in ACCOUNT:
        assert same_rows(history_emulator, replica_url, table), table


def test_thirty_hours_later_every_job_of_the_first_day_is_still_there(
    history_emulator: Emulator, replica_url: str, request: pytest.FixtureRequest
) -> None:
    run_sync(history_emulator, replica_url)
    first_day = live_rows(history_emulator, "Jobs")
    open_jobs = [j for j in first_day if j[5] is None]  # waiting for uploads: the API keeps them
    history_emulator.advance_clock(30 * HOUR)
    assert len(live_rows(history_emulator, "Jobs")) == len(open_jobs)
    report = run_sync(history_emulator, replica_url)
    assert report["Jobs"].removed == len(first_day) - len(open_jobs)
    assert report["Tasks"].removed > 0 and report["TaskFiles"].removed > 0
    assert replica_rows(replica_url, "Jobs", json_values=True) == sorted(live_json(first_day), key=repr)
    assert scalar(replica_url, 'SELECT count(*) FROM "Jobs" WHERE _removed_at IS NOT NULL') == len(first_day) - len(open_jobs)
    # Offline, through the driver: every job, and no request.
    path = replica_url.removeprefix("sqlite:///")
    properties = {"CacheLocation": path} if replica_url.startswith("sqlite") else {"CacheConnection": replica_url}
    offline = apidriver.connect(Offline=True, **properties)
    history_emulator.clear_requests()
    try:
        cursor = offline.cursor()
        cursor.execute("SELECT * FROM Jobs")
        assert sorted(live_json(cursor.fetchall()), key=repr) == sorted(live_json(first_day), key=repr)
        assert cursor.requests == [] and history_emulator.requests() == []
    finally:
        offline.close()
    if replica_url.startswith("postgresql"):
        server: PostgresServer = request.getfixturevalue("postgres")
        database = replica_url.rsplit("/", 1)[1]
        assert int(server.psql(database, 'SELECT count(*) FROM "Jobs"')) == len(first_day)
        assert int(server.psql(database, 'SELECT count(*) FROM "Jobs" WHERE _removed_at IS NULL')) == len(open_jobs)


def live_json(rows: list[tuple[Any, ...]]) -> list[tuple[Any, ...]]:
    """Jobs rows with their JSON column (tasks, the 8th) decoded."""
    return [tuple(json.loads(v) if i == 7 and v is not None else v for i, v in enumerate(r)) for r in rows]


def test_jobs_gone_behind_open_ones_are_found_cheaply(history_emulator: Emulator, tmp_path: Path) -> None:
    """Jobs that never end (waiting for an upload) stay in the API and pin the end of the list:
    the jobs gone before them are found by counting, not by asking about each one."""
    url = f"sqlite:///{tmp_path / 'replica.sqlite'}"
    pages = {"PageSize": 3}
    run_sync(history_emulator, url, properties=pages)
    jobs = live_rows(history_emulator, "Jobs", "id, ended_at")
    history_emulator.advance_clock(30 * HOUR)
    history_emulator.clear_requests()
    report = run_sync(history_emulator, url, properties=pages)
    assert report["Jobs"].removed == sum(1 for _, ended in jobs if ended is not None)
    assert replica_rows(url, "Jobs", "_removed_at IS NULL") == live_rows(history_emulator, "Jobs")
    gets = [r for r in history_emulator.requests() if r["path"].startswith("/v2/jobs/")]
    assert report["Jobs"].requests < 20 and len(gets) <= 1  # not one GET per job gone


def test_a_retried_task_reopens_its_job(make_emulator: MakeEmulator, replica_url: str) -> None:
    history_emulator = make_emulator(jobs=24, seed=5, rate_limit=0, task_seconds=600)
    with client(history_emulator) as api:
        job = create_job(api, tag="retry")
        history_emulator.advance_clock(1800)
        job = wait_job(history_emulator, job["id"])
        run_sync(history_emulator, replica_url)
        export = next(t for t in job["tasks"] if t["name"] == "export-it")
        assert api.post(f"/tasks/{export['id']}/retry").status_code == 201
        report = run_sync(history_emulator, replica_url)
        assert report["Tasks"].inserted == 1
        assert report["Jobs"].updated == 1  # read again: its new task re-opened it
        assert replica_rows(replica_url, "Jobs", "tag = 'retry'")[0][2] in ("waiting", "processing")
    history_emulator.advance_clock(600)
    run_sync(history_emulator, replica_url)
    assert same_rows(history_emulator, replica_url, "Jobs")


def test_deleted_jobs_are_marked_gone_never_deleted(history_emulator: Emulator, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'replica.sqlite'}"
    pages = {"PageSize": 5}  # 24 jobs: 5 pages
    run_sync(history_emulator, url, properties=pages)
    jobs = live_rows(history_emulator, "Jobs", "id, status")
    waiting = next(j for j, s in jobs if s == "processing" or s == "waiting")
    ended = [j for j, s in jobs if s in ("finished", "error")]
    middle = ended[len(ended) // 2]
    with client(history_emulator) as api:
        assert api.delete(f"/jobs/{waiting}").status_code == 204
        assert api.delete(f"/jobs/{middle}").status_code == 204
    history_emulator.clear_requests()
    report = run_sync(history_emulator, url, properties=pages)
    # The open job is read by key (404: gone). The ended one from the middle of the list: the API has
    # fewer jobs than the replica has live ones, so the list is scanned whole; a complete scan that
    # does not list it proves it gone, without asking about it.
    assert report["Jobs"].removed == 2
    assert scalar(url, f"""SELECT _removed_reason FROM "Jobs" WHERE id = '{waiting}'""") == "deleted"
    assert scalar(url, f"""SELECT _removed_reason FROM "Jobs" WHERE id = '{middle}'""") == "deleted"  # ended, not expired
    assert scalar(url, f"""SELECT count(*) FROM "Tasks" WHERE job_id IN ('{waiting}', '{middle}') AND _removed_at IS NULL""") == 0
    assert scalar(url, f"""SELECT count(*) FROM "Tasks" WHERE job_id = '{middle}' AND _removed_reason = 'deleted'""") > 0
    assert f"/v2/jobs/{waiting}" in {r["path"] for r in history_emulator.requests()}
    assert f"/v2/jobs/{middle}" not in {r["path"] for r in history_emulator.requests()}
    assert scalar(url, 'SELECT count(*) FROM "Jobs"') == len(jobs)  # never deleted
    report = run_sync(history_emulator, url, full=True, properties=pages)
    assert counts(report)["Jobs"] == (0, 0, 0)
    assert same_rows(history_emulator, url, "Jobs") is False  # the replica keeps the two the API forgot
    assert replica_rows(url, "Jobs", "_removed_at IS NULL") == live_rows(history_emulator, "Jobs")


def test_two_syncs_at_once_neither_corrupt_nor_duplicate(history_emulator: Emulator, replica_url: str) -> None:
    reports: list[SyncReport] = []
    errors: list[BaseException] = []

    def one() -> None:
        try:
            reports.append(run_sync(history_emulator, replica_url, properties={"PageSize": 10}))
        except BaseException as error:  # noqa: BLE001 - reported below
            errors.append(error)

    threads = [threading.Thread(target=one) for _ in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(60)
    assert errors == [] and len(reports) == 2
    for table in ACCOUNT:
        live = live_rows(history_emulator, table)
        assert same_rows(history_emulator, replica_url, table), table
        assert reports[0][table].inserted + reports[1][table].inserted == len(live)
    assert scalar(replica_url, "SELECT count(*) FROM _apidriver_sync") == 4


def test_a_failed_sync_keeps_no_partial_bookkeeping_and_the_next_completes_it(history_emulator: Emulator, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'replica.sqlite'}"
    history_emulator.add_fault("503", path="/v2/jobs", method="GET", query="page=3", count=50)
    with pytest.raises(apidriver.APIUnavailableError):
        run_sync(history_emulator, url, properties={"PageSize": 5, "MaxRetries": 1, "MaxConcurrency": 1})  # no page read ahead
    written = scalar(url, 'SELECT count(*) FROM "Jobs"')
    answered = set()  # the rows of the pages answered before the failing one, committed as they came
    for r in history_emulator.requests():
        if r["path"] == "/v2/jobs" and r["status"] == 200:
            page, size = int(dict(r["params"])["page"]), int(dict(r["params"])["per_page"])
            answered.update(range((page - 1) * size, min(page * size, 24)))
    assert written == len(answered) > 0
    assert scalar(url, "SELECT count(*) FROM _apidriver_sync WHERE table_name = 'Jobs'") == 0
    history_emulator.clear_faults()
    report = run_sync(history_emulator, url, properties={"PageSize": 5})
    assert report["Jobs"].inserted == len(live_rows(history_emulator, "Jobs")) - written
    assert replica_rows(url, "Jobs") == live_rows(history_emulator, "Jobs")


def test_a_target_that_is_down_gives_a_clear_error(history_emulator: Emulator, tmp_path: Path) -> None:
    from .postgres import free_port

    url = f"postgresql+psycopg://someone:s3cret@127.0.0.1:{free_port()}/history"
    history_emulator.clear_requests()
    with pytest.raises(apidriver.OperationalError) as info:
        run_sync(history_emulator, url)
    message = str(info.value)
    assert "postgresql+psycopg://someone:***@127.0.0.1" in message and "s3cret" not in message
    assert history_emulator.api_key not in message
    assert history_emulator.requests() == []  # nothing read from the API for a replica that cannot take it
    with pytest.raises(apidriver.OperationalError, match="unable to open database file"):
        run_sync(history_emulator, f"sqlite:///{tmp_path / 'missing' / 'dir' / 'replica.sqlite'}")
    with pytest.raises(apidriver.ProgrammingError, match="Bad database URL"):
        run_sync(history_emulator, "not a url")


def test_an_older_replica_is_upgraded(history_emulator: Emulator, replica_url: str) -> None:
    """A replica of schema version 1 (no _removed_reason, _exact; B-tree indexes on PostgreSQL text; a
    column a later profile added) is brought up to date by the next sync and keeps its rows."""
    postgres = replica_url.startswith("postgresql")
    run_sync(history_emulator, replica_url, tables="Jobs")
    engine = sa.create_engine(replica_url)
    try:
        with engine.begin() as conn:
            for table in ("Jobs", "Tasks", "TaskFiles", "TaskDependencies"):
                conn.execute(sa.text(f'ALTER TABLE "{table}" DROP COLUMN _removed_reason'))
                conn.execute(sa.text(f'ALTER TABLE "{table}" DROP COLUMN _exact'))
            conn.execute(sa.text('ALTER TABLE "Jobs" DROP COLUMN links_self'))
            if postgres:  # version 1 indexed text with B-trees, which refuse long values
                conn.execute(sa.text("DROP INDEX hx_jobs_tag"))
                conn.execute(sa.text('CREATE INDEX ix_jobs_tag ON "Jobs" (tag)'))
                conn.execute(sa.text("DROP INDEX hx_jobs_status"))
            else:
                conn.execute(sa.text("DROP INDEX ix_jobs_status"))
            conn.execute(sa.text("UPDATE _apidriver_replica SET value = '1' WHERE name = 'schema_version'"))
    finally:
        engine.dispose()
    with client(history_emulator) as api:
        long_tagged = create_job(api, tag="long " * 2000)  # 10,000 characters: too long for a B-tree entry
    wait_job(history_emulator, long_tagged["id"])
    report = run_sync(history_emulator, replica_url)
    assert report["Jobs"].updated == len(live_rows(history_emulator, "Jobs")) - 1  # links_self filled in again
    assert report["Jobs"].inserted == 1
    assert same_rows(history_emulator, replica_url, "Jobs") and same_rows(history_emulator, replica_url, "Tasks")
    assert scalar(replica_url, 'SELECT count(*) FROM "Jobs" WHERE _removed_at IS NULL AND _removed_reason IS NULL') == len(live_rows(history_emulator, "Jobs"))
    assert scalar(replica_url, "SELECT value FROM _apidriver_replica WHERE name = 'schema_version'") == "2"
    engine = sa.create_engine(replica_url)
    try:
        indexes = {i["name"] for i in sa.inspect(engine).get_indexes("Jobs")}
    finally:
        engine.dispose()
    if postgres:
        assert {"hx_jobs_status", "hx_jobs_tag", "ix_jobs_created_at"} <= indexes and "ix_jobs_tag" not in indexes
    else:
        assert {"ix_jobs_status", "ix_jobs_tag"} <= indexes


def test_one_replica_holds_one_account(history_emulator: Emulator, tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'replica.sqlite'}"
    run_sync(history_emulator, url)
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        conn.execute(sa.text("UPDATE _apidriver_replica SET value = '123' WHERE name = 'account'"))
    engine.dispose()
    with pytest.raises(apidriver.ProgrammingError, match="account 123"):
        run_sync(history_emulator, url)


def test_a_list_out_of_order_is_read_whole(make_emulator: MakeEmulator, tmp_path: Path) -> None:
    history_emulator = make_emulator(jobs=24, seed=5, rate_limit=0, task_seconds=600)  # nothing changes meanwhile
    url = f"sqlite:///{tmp_path / 'replica.sqlite'}"
    run_sync(history_emulator, url, properties={"PageSize": 5})
    with client(history_emulator) as api:
        new = create_job(api, tag="late")
    order = history_emulator.backend.job_order
    order.append(order.pop(0))  # the oldest job now comes first: the list is not newest first any more
    history_emulator.clear_requests()
    report = run_sync(history_emulator, url, properties={"PageSize": 5})
    assert (report["Jobs"].inserted, report["Jobs"].removed) == (1, 0)
    job_pages = [dict(r["params"]) for r in history_emulator.requests() if r["path"] == "/v2/jobs"]
    read = set()
    for params in job_pages:
        page, size = int(params["page"]), int(params["per_page"])
        read.update(range((page - 1) * size, page * size))
    assert set(range(26)) <= read and len(job_pages) <= 8  # 25 jobs, every one: the order could not be trusted
    assert scalar(url, f"""SELECT tag FROM "Jobs" WHERE id = '{new["id"]}'""") == "late"
    assert same_rows(history_emulator, url, "Jobs")


def test_sync_paces_itself_under_the_rate_limit(make_emulator: MakeEmulator, tmp_path: Path) -> None:
    emu = make_emulator(jobs=12, seed=2, rate_limit=8, rate_window=1.0)
    report = run_sync(emu, f"sqlite:///{tmp_path / 'replica.sqlite'}", properties={"PageSize": 4, "RateLimitWindow": 1.0})
    assert report["Jobs"].inserted == 12
    assert report.requests > 8  # more than one window's worth, without a RateLimitError


def test_tables_and_the_default_file(history_emulator: Emulator, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    connection_string = f"APIKey={history_emulator.api_key};BaseURL={history_emulator.base_url}"
    report = apidriver.sync(connection_string, tables="TaskFiles")
    assert report.target == f"sqlite:///{tmp_path / 'cloudconvert.sqlite'}"
    assert [t.table for t in report] == ["Tasks", "TaskFiles", "TaskDependencies"]  # a derived table comes with its parent
    assert os.path.exists(tmp_path / "cloudconvert.sqlite")
    report = apidriver.sync(connection_string, tables=["operations"])
    assert [t.table for t in report] == ["Operations"]  # the catalogue only when named
    assert report["Operations"].inserted == len(live_rows(history_emulator, "Operations", "operation"))
    with pytest.raises(apidriver.ProgrammingError, match="No table Nope"):
        apidriver.sync(connection_string, tables="Jobs,Nope")


def test_requests_go_through_the_connection(history_emulator: Emulator, tmp_path: Path) -> None:
    """The replica is written by a Replicator any code can drive; its requests can be observed."""
    seen: list[str] = []
    conn = connect_to(history_emulator)
    target = open_target(conn, f"sqlite:///{tmp_path / 'r.sqlite'}")
    try:
        Replicator(conn, target, observer=lambda record: seen.append(record.url)).run(["Users"])
    finally:
        target.close()
        conn.close()
    assert seen == [history_emulator.api_url + "/users/me"]
    assert httpx.get(history_emulator.base_url + "/_emulator/requests").json()[-1]["path"] == "/v2/users/me"
