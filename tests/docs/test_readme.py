"""README.md runs: every block, in order, against an emulator; then what it says it prints."""

from __future__ import annotations

import ast
import datetime as dt
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

import apidriver
from apidriver.emulator import Emulator

from ..conftest import raw_list
from ..history.postgres import PostgresServer
from .harness import DocRun, free_port, start_emulator

DOC = "README.md"


@pytest.fixture
def emulator() -> Iterator[Emulator]:
    emulator = start_emulator(jobs=60, seed=11)
    yield emulator
    emulator.stop()


def session(emulator: Emulator, tmp_path: Path, pg: tuple[PostgresServer, str] | None) -> DocRun:
    not_run = {
        "pip install -q -e . && .venv/bin/apidriver demo": "installs into a new environment; .ci/run runs these two commands",
        "pytest tests/sqlalchemy_suite": "SQLAlchemy's suite is a pytest run of its own; .ci/run runs it",
    }
    not_run_commands = {
        "apidriver demo": "tests/cli/test_demo.py runs the demo and checks each section",
        "apidriver shell": "interactive; tests/cli drives the shell in a pseudo-terminal",
    }
    port = free_port()
    substitutions = {"127.0.0.1:8000": f"127.0.0.1:{port}", "--port 8000": f"--port {port}", "0.0.0.0:8787": f"127.0.0.1:{free_port()}"}
    if pg is None:
        not_run_commands["apidriver sync --to postgresql+psycopg://me@db/history"] = "APIDRIVER_TEST_POSTGRES=0"
    else:
        server, name = pg
        substitutions["postgresql+psycopg://me@db/history"] = server.url(name)
    # Files the reader has: a document to convert, a script of statements.
    (tmp_path / "minutes.docx").write_bytes(b"PK\x03\x04 minutes of the meeting")
    (tmp_path / "nightly.sql").write_text("SELECT count(*) FROM Jobs;\nSELECT status, count(*) FROM Jobs GROUP BY status;\n")

    def sql(block: Any, statement: str) -> Any:  # the join: on a connection of its own, to count its requests
        return apidriver.connect(APIKey=emulator.api_key, BaseURL=emulator.base_url)

    return DocRun(
        DOC, emulator, tmp_path, substitutions=substitutions, not_run=not_run, not_run_commands=not_run_commands, sql=sql
    )


def test_every_block_of_the_readme_runs(emulator: Emulator, tmp_path: Path, pg_database: Any) -> None:
    jobs = raw_list(emulator, "/jobs")
    with session(emulator, tmp_path, pg_database) as run:
        run.run()
        check(run, jobs, tmp_path)


def check(run: DocRun, jobs: list[dict[str, Any]], tmp_path: Path) -> None:
    """What the README says its blocks print."""
    assert len(run.ran) >= 14 and len(run.outcomes) - len(run.ran) == 3  # not run: the installs, the clone, the suite
    ns = run.namespace

    # Your own account: read-only from one line on; a DELETE is refused before anything is sent.
    own = run.outcome('export APIDRIVER_CONNECTION="ReadOnly=true"')
    assert "1 request" in own.command("apidriver query").stdout
    refused = run.outcome("ReadOnly=True)").stdout
    assert "read-only (ReadOnly=true)" in refused and "Nothing was sent" in refused

    # Quick start (DB-API): the failed jobs, with aware UTC datetimes, and the requests made.
    printed = run.outcome("for job_id, tag, created_at in cur:").stdout.splitlines()
    failed = {j["id"] for j in jobs if j["status"] == "error"}
    assert failed and {line.split()[0] for line in printed[:-1]} == failed
    assert ns["created_at"].utcoffset() == dt.timedelta(0)
    assert "method='GET'" in printed[-1] and "filter%5Bstatus%5D=error" in printed[-1]  # sent to the API

    # The join of jobs, tasks and files: one request.
    ((_, rows, requests),) = run.outcome("JOIN TaskFiles f ON f.task_id = t.id").results
    assert rows and requests == 1

    # Quick start (SQLAlchemy): the ORM loop printed each failed job with its tasks; pandas keeps UTC.
    assert {row.id for row in ns["failed"]} == failed
    assert {line.split()[0] for line in run.outcome("class Job(Base):").stdout.splitlines()} == failed
    assert str(ns["jobs"]["created_at"].dtype) == "datetime64[us, UTC]"

    # Writes: the job created is what the API made; rowcount is what was deleted.
    assert ns["status"] in ("waiting", "processing") and re.fullmatch(r"[0-9a-f-]{36}", ns["job_id"])
    deleted = sum(1 for j in jobs if j["tag"] == "reports" and j["status"] == "error")
    assert run.outcome("print(cur.rowcount)").stdout == f"{deleted}\n"

    # Actions: ConvertFile's row, a cancelled task, a job waited for.
    converted, cancelled, created = run.outcome('cur.callproc("ConvertFile"').stdout.splitlines()
    path, filename, size, credits, job = ast.literal_eval(converted)
    assert (path, filename, size) == ("minutes.pdf", "minutes.pdf", (tmp_path / "minutes.pdf").stat().st_size)
    assert credits >= 1 and re.fullmatch(r"[0-9a-f-]{36}", job)
    assert ast.literal_eval(cancelled) == ("error", "CANCELLED")
    assert ast.literal_eval(created)[1] == "finished"

    # History: sync, into SQLite and PostgreSQL; --follow until Ctrl-C; the replica read offline.
    history = run.outcome("apidriver sync --follow --interval 60")
    assert history.command("apidriver sync").stdout.startswith(f"Replica: sqlite:///{tmp_path}/cloudconvert.sqlite")
    assert history.command("apidriver sync --follow --interval").stdout.endswith("Stopped.\n")
    assert history.command("apidriver sync --follow --listen").stdout.endswith("Stopped (webhook deleted).\n")
    assert "1 row · 0 requests" in history.command("apidriver query").stdout  # Offline: nothing sent

    # The MCP configuration starts `apidriver mcp`.
    (server,) = run.outcome('"mcpServers"').value["mcpServers"].values()
    assert (server["command"], server["args"]) == ("apidriver", ["mcp"])

    # The command line: the DELETE's line says N rows in N + 1 requests (a list, a DELETE per row).
    cli = run.outcome("apidriver describe Jobs")
    affected = re.fullmatch(r"(\d+) rows affected · (\d+) requests · [\d.]+ s\n", cli.command("apidriver query \"DELETE").stdout)
    assert affected and int(affected[1]) >= 1 and int(affected[2]) == int(affected[1]) + 1
    assert cli.command("apidriver query \"SELECT * FROM Tasks").stderr.startswith("GET http://127.0.0.1:")  # --requests
    assert cli.command("apidriver shell < nightly.sql").stdout.count(" · 1 request · ") == 2
    assert "Replica: sqlite:///history.sqlite" in cli.command("apidriver sync --to sqlite:///history.sqlite").stdout
    assert "serving MCP on stdio (read-only)" in cli.command("apidriver mcp").stderr  # and ended with its input

    # The emulator: the root URL, then the job webhook secret.
    first, second = run.outcome("python -m apidriver.emulator --port 0").commands[0].stdout.splitlines()[:2]
    assert re.fullmatch(r"http://127\.0\.0\.1:\d+", first) and second.startswith("job_webhook_secret=")


def test_verify_webhook_signature_after_a_plain_import() -> None:
    """The README's spelling works in a fresh interpreter that imported nothing but apidriver."""
    code = "import apidriver; print(apidriver.profiles.cloudconvert.verify_webhook_signature(b'{}', 'x', 's'))"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False, timeout=60)
    assert (result.returncode, result.stdout) == (0, "False\n"), result.stderr
