"""``apidriver sync``: the command, its output, SIGKILL at any moment, --follow until SIGTERM."""

from __future__ import annotations

import os
import signal
import subprocess
import threading
from collections.abc import Callable
from pathlib import Path

import apidriver
from apidriver.emulator import Emulator

from ..cli.conftest import COMMAND, apidriver as run_apidriver, connection, environment
from ..conftest import connect_to
from ..emulator.support import client, create_job, wait_until
from .conftest import live_rows, same_rows, scalar
from .postgres import free_port

MakeEmulator = Callable[..., Emulator]


def test_sync_prints_what_it_did_per_table(history_emulator: Emulator, tmp_path: Path) -> None:
    first = subprocess.run([*COMMAND, "sync", "--connect", connection(history_emulator)], cwd=tmp_path, capture_output=True, text=True, env=environment(), timeout=60)
    assert first.returncode == 0, first.stderr
    lines = first.stdout.splitlines()
    assert lines[0] == f"Replica: sqlite:///{tmp_path / 'cloudconvert.sqlite'}"  # the embedded default, named
    assert lines[1].split() == ["table", "inserted", "updated", "newly", "gone", "requests", "seconds"]
    jobs = next(line.split() for line in lines if line.startswith("Jobs "))
    assert jobs[1:4] == ["24", "0", "0"] and jobs[4] == "1"
    assert lines[-1].startswith(f"{sum(int(line.split()[1].replace(',', '')) for line in lines[2:-1]):,} rows inserted, 0 updated, 0 newly gone")
    assert first.stderr == ""  # no progress line: stderr is not a terminal
    second = subprocess.run([*COMMAND, "sync", "--connect", connection(history_emulator)], cwd=tmp_path, capture_output=True, text=True, env=environment(), timeout=60)
    assert second.returncode == 0 and "0 rows inserted, 0 updated, 0 newly gone" in second.stdout


def test_sync_to_postgresql_some_tables(history_emulator: Emulator, pg_url: str) -> None:
    result = run_apidriver("sync", "--connect", connection(history_emulator), "--to", pg_url, "--tables", "Jobs")
    assert result.returncode == 0, result.stderr
    assert [line.split()[0] for line in result.stdout.splitlines()[2:-1]] == ["Jobs"]
    assert same_rows(history_emulator, pg_url, "Jobs")


def test_sync_errors_are_one_line(history_emulator: Emulator) -> None:
    down = f"postgresql+psycopg://me:s3cret@127.0.0.1:{free_port()}/history"
    result = run_apidriver("sync", "--connect", connection(history_emulator), "--to", down)
    assert result.returncode == 1
    assert result.stderr.startswith("apidriver: The replica database postgresql+psycopg://me:***@127.0.0.1")
    assert len(result.stderr.splitlines()) == 1 and "s3cret" not in result.stderr + result.stdout
    usage = run_apidriver("sync", "--connect", connection(history_emulator), "--listen", "127.0.0.1:0")
    assert usage.returncode == 2 and "--follow" in usage.stderr
    assert run_apidriver("sync", "--connect", connection(history_emulator), "--tables", "Nope", "--to", "sqlite:////tmp/x.sqlite").returncode == 1


def test_sigkill_at_any_moment_loses_nothing(make_emulator: MakeEmulator, replica_url: str) -> None:
    emu = make_emulator(jobs=120, seed=9, rate_limit=0, latency_ms=30)
    command = [*COMMAND, "sync", "--connect", connection(emu, PageSize="10", MaxConcurrency="2"), "--to", replica_url]
    process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=environment())
    try:
        wait_until(lambda: _count(replica_url, "Tasks") >= 30, timeout=30, interval=0.02, what="some tasks written")
        assert process.poll() is None, "the sync ended before it could be killed"
        process.send_signal(signal.SIGKILL)
        process.wait(10)
    finally:
        if process.poll() is None:
            process.kill()
    written = _count(replica_url, "Tasks")
    assert 30 <= written < len(live_rows(emu, "Tasks", "id"))
    assert scalar(replica_url, "SELECT count(*) FROM _apidriver_sync WHERE table_name = 'Tasks'") == 0  # no watermark yet
    report = apidriver.sync(connect_to(emu, PageSize=10), to=replica_url)
    assert report["Tasks"].inserted == len(live_rows(emu, "Tasks", "id")) - written
    for table in ("Jobs", "Tasks", "TaskFiles", "TaskDependencies"):
        assert same_rows(emu, replica_url, table), table


def _count(url: str, table: str) -> int:
    try:
        return int(scalar(url, f'SELECT count(*) FROM "{table}"') or 0)
    except Exception:  # noqa: BLE001 - not created yet
        return 0


def test_follow_until_sigterm_then_the_webhook_is_gone(make_emulator: MakeEmulator, tmp_path: Path) -> None:
    emu = make_emulator(jobs=3, seed=1, rate_limit=0)
    port = free_port()
    hook = f"http://127.0.0.1:{port}/hook"
    command = [*COMMAND, "sync", "--follow", "--interval", "30", "--listen", f"127.0.0.1:{port}", "--public-url", hook, "--connect", connection(emu)]
    process = subprocess.Popen(command, cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=environment())
    try:
        wait_until(lambda: any(h.url == hook for h in emu.backend.webhooks.values()), timeout=20, what="the webhook")
        with client(emu) as api:
            job = create_job(api, tag="followed")["id"]
        url = f"sqlite:///{tmp_path / 'cloudconvert.sqlite'}"
        wait_until(lambda: _status(url, job) == "finished", timeout=10, what="the job in the replica")
        process.send_signal(signal.SIGTERM)
        out, err = process.communicate(timeout=20)
    finally:
        if process.poll() is None:
            process.kill()
    assert process.returncode == 0, err
    assert "job.finished " + job in out and out.rstrip().endswith("Stopped (webhook deleted).")
    assert all(h.url != hook for h in emu.backend.webhooks.values())


def _status(url: str, job: str) -> str | None:
    try:
        value = scalar(url, f"""SELECT status FROM "Jobs" WHERE id = '{job}'""")
    except Exception:  # noqa: BLE001 - not created yet
        return None
    return None if value is None else str(value)


def test_follow_by_polling_prints_each_sync(make_emulator: MakeEmulator, tmp_path: Path) -> None:
    emu = make_emulator(jobs=3, seed=1, rate_limit=0)
    process = subprocess.Popen(
        [*COMMAND, "sync", "--follow", "--interval", "0.2", "--connect", connection(emu)],
        cwd=tmp_path, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=dict(environment(), PYTHONUNBUFFERED="1"),
    )
    lines: list[str] = []
    reader = threading.Thread(target=lambda: lines.extend(iter(process.stdout.readline, "")), daemon=True)  # type: ignore[union-attr]
    reader.start()
    try:
        wait_until(lambda: sum(" sync: " in line for line in lines) >= 3, timeout=20, what="three syncs")
        process.send_signal(signal.SIGINT)
        process.wait(20)
        reader.join(5)
    finally:
        if process.poll() is None:
            process.kill()
    out = "".join(lines)
    assert "Following: a sync every 0.2 s" in out and out.rstrip().endswith("Stopped.")
    assert os.path.exists(tmp_path / "cloudconvert.sqlite")
