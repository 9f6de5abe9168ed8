"""Why a row left the API, on the API's clock: ``deleted`` (before it could expire) or ``expired`` (after the
retention that follows its end); and secrets, which a replica keeps only when asked."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable
from pathlib import Path
from typing import Any

import sqlalchemy as sa

import apidriver
from apidriver.emulator import Emulator
from apidriver.values import parse_timestamp

from ..conftest import connect_to
from ..emulator.support import client, create_job, wait_job
from .conftest import live_rows, quiet, same_rows, scalar

MakeEmulator = Callable[..., Emulator]
HOUR = 3600.0


def run_sync(emulator: Emulator, url: str, **options: Any) -> apidriver.replica.report.SyncReport:
    conn = connect_to(emulator, **options.pop("properties", {}))
    try:
        return apidriver.sync(conn, to=url, **options)
    finally:
        conn.close()


def rows(url: str, sql: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return [tuple(r) for r in conn.execute(sa.text(sql))]
    finally:
        engine.dispose()


def instant(value: Any) -> dt.datetime:
    return value.astimezone(dt.timezone.utc) if isinstance(value, dt.datetime) else parse_timestamp(str(value))


def test_deleted_and_expired_rows_say_so_on_the_apis_clock(make_emulator: MakeEmulator, replica_url: str) -> None:
    """Issue #16: both only got _removed_at, the sync's wall-clock time, which came out earlier than ended_at
    once the emulator's clock had moved. Now _removed_at is on the API's clock and _removed_reason says why."""
    emu = make_emulator(jobs=10, seed=5, rate_limit=0, keep_history=True)
    emu.advance_clock(10 * HOUR)  # the API's clock is ahead of ours from here on
    with client(emu) as api:
        jobs = [create_job(api, tag=f"day-{i}")["id"] for i in range(4)]
        for job in jobs:
            wait_job(emu, job)
        run_sync(emu, replica_url)
        assert api.delete(f"/jobs/{jobs[0]}").status_code == 204  # deleted by a user, an hour after it ended
        emu.advance_clock(HOUR)
        assert api.delete(f"/jobs/{jobs[1]}").status_code == 204
    report = run_sync(emu, replica_url)
    assert report["Jobs"].removed == 2
    history = {r["job"]["id"]: r for r in emu.history()["removed"]}
    removed = {r[0]: r[1:] for r in rows(replica_url, 'SELECT id, ended_at, _removed_at, _removed_reason FROM "Jobs" WHERE _removed_at IS NOT NULL')}
    for job in jobs[:2]:
        ended, removed_at, reason = removed[job]
        assert reason == history[job]["reason"] == "deleted"
        assert instant(removed_at) >= instant(ended)  # (the sync's wall clock was 10 hours earlier)
        assert instant(removed_at) >= dt.datetime.fromisoformat(history[job]["at"]).replace(microsecond=0)
    # A day and a half later every job that ended is gone: expired, children included.
    emu.advance_clock(36 * HOUR)
    report = run_sync(emu, replica_url)
    history = {r["job"]["id"]: r for r in emu.history()["removed"]}
    removed = {r[0]: r[1:] for r in rows(replica_url, 'SELECT id, ended_at, _removed_at, _removed_reason FROM "Jobs" WHERE _removed_at IS NOT NULL')}
    known = {r[0] for r in rows(replica_url, 'SELECT id FROM "Jobs"')}
    assert set(removed) == set(history) & known and len(removed) > 2  # (some expired before the first sync saw them)
    for job, (ended, removed_at, reason) in removed.items():
        assert reason == history[job]["reason"], job
        if reason == "expired":
            assert instant(removed_at) >= instant(ended) + dt.timedelta(hours=24)
    assert {r[0] for r in rows(replica_url, 'SELECT DISTINCT _removed_reason FROM "Tasks" WHERE _removed_at IS NOT NULL')} == {"deleted", "expired"}
    assert scalar(replica_url, """SELECT count(*) FROM "TaskFiles" WHERE _removed_reason = 'expired'""") > 0
    assert scalar(replica_url, 'SELECT count(*) FROM "Jobs" WHERE _removed_at IS NULL AND _removed_reason IS NOT NULL') == 0


def test_webhook_signing_secrets_are_kept_only_when_asked(history_emulator: Emulator, replica_url: str) -> None:
    """Issue #16: the replica stored every webhook's signing secret (the follower's own too): anyone who could
    read it could forge deliveries. Now they are NULL unless the sync is asked for them (secrets=True,
    --secrets); a replica that holds some loses them at its next sync, those of webhooks long gone too."""
    quiet(history_emulator)  # failed deliveries to the seeded webhooks change them
    run_sync(history_emulator, replica_url, tables="Webhooks")
    assert scalar(replica_url, 'SELECT count(*) FROM "Webhooks"') > 0
    assert scalar(replica_url, 'SELECT count(signing_secret) FROM "Webhooks"') == 0
    run_sync(history_emulator, replica_url, tables="Webhooks", secrets=True)
    assert same_rows(history_emulator, replica_url, "Webhooks", secrets=True)
    with client(history_emulator) as api:
        gone = live_rows(history_emulator, "Webhooks", "id")[0][0]
        assert api.delete(f"/webhooks/{gone}").status_code == 204
    run_sync(history_emulator, replica_url, tables="Webhooks", secrets=True)
    assert scalar(replica_url, f"""SELECT _removed_reason FROM "Webhooks" WHERE id = '{gone}' AND signing_secret IS NOT NULL""") == "deleted"
    run_sync(history_emulator, replica_url, tables="Jobs")  # any sync without secrets=True forgets them
    assert scalar(replica_url, 'SELECT count(signing_secret) FROM "Webhooks"') == 0
    assert scalar(replica_url, 'SELECT count(*) FROM "Webhooks" WHERE _removed_at IS NULL') == len(live_rows(history_emulator, "Webhooks", "id"))


def test_the_cli_keeps_secrets_only_with_secrets(history_emulator: Emulator, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from apidriver.cli.commands import cli

    url = f"sqlite:///{tmp_path / 'replica.sqlite'}"
    connection = f"APIKey={history_emulator.api_key};BaseURL={history_emulator.base_url}"
    for flags, kept in (([], 0), (["--secrets"], len(live_rows(history_emulator, "Webhooks", "id")))):
        result = CliRunner().invoke(cli, ["sync", "--connect", connection, "--to", url, "--tables", "Webhooks", *flags])
        assert result.exit_code == 0, result.output
        assert scalar(url, 'SELECT count(signing_secret) FROM "Webhooks"') == kept
