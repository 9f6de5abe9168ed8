"""Writes: refused by a read-only server, done by one started with --allow-writes (and seen by the emulator)."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
import pytest

from apidriver.emulator import Emulator

from ..cli.conftest import connection
from ..conftest import CONVERSION_TASKS
from .conftest import stdio_session, text_of

pytestmark = pytest.mark.anyio
INSERT = "INSERT INTO Jobs (tag, tasks) VALUES (?, ?) RETURNING id, tag, status"


def job(emulator: Emulator, job_id: str) -> httpx.Response:
    return httpx.get(f"{emulator.api_url}/jobs/{job_id}", headers={"Authorization": f"Bearer {emulator.api_key}"})


async def test_a_write_is_refused_read_only_and_done_with_allow_writes(emulator: Emulator, tmp_path: Path) -> None:
    tasks = json.dumps(CONVERSION_TASKS)
    async with stdio_session(tmp_path, "--connect", connection(emulator)) as session:
        refused = await session.call("run_query", sql=INSERT, parameters=["from-mcp", tasks])
        assert refused.is_error and "INSERT on Jobs refused: the connection is read-only (ReadOnly=true). Nothing was sent." in text_of(refused)
    assert [r for r in emulator.requests() if r["method"] == "POST"] == []

    async with stdio_session(tmp_path, "--connect", connection(emulator), "--allow-writes") as session:
        run = next(t for t in (await session.client.list_tools()).tools if t.name == "run_query")
        assert run.annotations is not None and run.annotations.destructive_hint is True and run.annotations.read_only_hint is False
        assert "Writes are allowed" in (session.client.instructions or "")
        created = await session.query(INSERT, ["from-mcp", tasks])
        job_id, tag, status = created["rows"][0]
        assert tag == "from-mcp" and status in ("waiting", "processing")
        assert [line.split(" ")[0] for line in created["request_log"]] == ["POST"]
        seen = job(emulator, job_id)
        assert seen.status_code == 200 and seen.json()["data"]["tag"] == "from-mcp"

        by_procedure = await session.query("SELECT id, tag FROM CreateJob(?, 'by-procedure')", [tasks])
        assert job(emulator, by_procedure["rows"][0][0]).json()["data"]["tag"] == "by-procedure"

        deleted = await session.query("DELETE FROM Jobs WHERE id = ?", [job_id])
        assert deleted["rows_affected"] == 1 and deleted["columns"] == []
        assert job(emulator, job_id).status_code == 404


async def test_allow_writes_keeps_a_read_only_connection_read_only(emulator: Emulator, tmp_path: Path) -> None:
    async with stdio_session(tmp_path, "--connect", connection(emulator, ReadOnly="true"), "--allow-writes") as session:
        run = next(t for t in (await session.client.list_tools()).tools if t.name == "run_query")
        assert run.annotations is not None and run.annotations.read_only_hint is True
        refused = await session.call("run_query", sql="DELETE FROM Jobs")
        assert refused.is_error and "read-only (ReadOnly=true)" in text_of(refused)
    assert [r for r in emulator.requests() if r["method"] == "DELETE"] == []
