"""Actions: procedures through callproc and as table-valued functions, checked
against the emulator's state through the raw API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tracemalloc
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

import apidriver
from apidriver.emulator import Emulator
from apidriver.profiles.cloudconvert import verify_webhook_signature

from .conftest import CONVERSION_TASKS, FIXTURES, connect_to, raw_list

TASKS = CONVERSION_TASKS


@pytest.fixture
def emulator(make_emulator: Callable[..., Emulator]) -> Emulator:
    """This module's account (conftest's ``api`` client talks to it)."""
    return make_emulator(jobs=5, seed=4)


@pytest.fixture
def emu(emulator: Emulator) -> Emulator:
    return emulator


@pytest.fixture
def conn(emulator: Emulator) -> Iterator[apidriver.Connection]:
    with connect_to(emulator) as connection:
        yield connection


def one(cur: apidriver.Cursor) -> dict[str, Any]:
    (row,) = cur.fetchall()
    return dict(zip([d[0] for d in cur.description], row))


def test_procedures_are_listed(conn: apidriver.Connection) -> None:
    cur = conn.cursor()
    procs = {r[0]: r[1] for r in cur.execute("SELECT name, signature FROM sys_procedures").fetchall()}
    assert procs["ConvertFile"] == "ConvertFile(path, output_format, [options], [destination])"
    assert set(procs) == {"CreateJob", "WaitJob", "WaitTask", "CancelTask", "RetryTask", "DeleteJob", "ConvertFile", "VerifyWebhookSignature"}
    params = cur.execute(
        "SELECT name, type, required FROM sys_procedureparameters WHERE procedure_name = 'CreateJob' ORDER BY ordinal"
    ).fetchall()
    assert params == [("tasks", "JSON", True), ("tag", "TEXT", False), ("wait", "BOOLEAN", False)]


def test_create_job_and_wait(emu: Emulator, conn: apidriver.Connection, api: httpx.Client) -> None:
    cur = conn.cursor()
    cur.callproc("CreateJob", [json.dumps(TASKS), "made-by-proc", True])
    job = one(cur)
    assert job["status"] == "finished" and job["tag"] == "made-by-proc"
    assert api.get(f"/jobs/{job['id']}").json()["data"]["status"] == "finished"
    assert any("/sync/v2/jobs/" in r.url for r in cur.requests)


def test_procedures_as_table_valued_functions(emu: Emulator, conn: apidriver.Connection) -> None:
    cur = conn.cursor()
    created = one(cur.execute("SELECT id, status FROM CreateJob(?, 'tvf')", (json.dumps(TASKS),)))
    assert created["status"] == "waiting"
    waited = one(cur.execute("SELECT id, status, ended_at FROM WaitJob(?)", (created["id"],)))
    assert waited["status"] == "finished" and waited["ended_at"].tzinfo is not None
    task_id = cur.execute("SELECT id FROM Tasks WHERE job_id = ? AND name = 'export'", (created["id"],)).fetchone()[0]
    assert one(cur.execute("SELECT status FROM WaitTask(?)", (task_id,)))["status"] == "finished"


def test_callproc_by_name(conn: apidriver.Connection) -> None:
    cur = conn.cursor()
    cur.callproc("createjob", {"tasks": TASKS, "tag": "named"})
    assert one(cur)["tag"] == "named"


def test_cancel_and_retry(emu: Emulator, conn: apidriver.Connection, api: httpx.Client) -> None:
    cur = conn.cursor()
    task_id = cur.execute(
        "INSERT INTO Tasks (operation, payload) VALUES ('import/upload', '{}') RETURNING id"
    ).fetchone()[0]
    cancelled = one(cur.execute("SELECT id, status, code FROM CancelTask(?)", (task_id,)))
    assert cancelled == {"id": task_id, "status": "error", "code": "CANCELLED"}
    assert api.get(f"/tasks/{task_id}").json()["data"]["code"] == "CANCELLED"
    retried = one(cur.execute("SELECT id, status, retry_of_task_id FROM RetryTask(?)", (task_id,)))
    assert retried["id"] != task_id and retried["retry_of_task_id"] == task_id and retried["status"] == "waiting"
    assert api.get(f"/tasks/{retried['id']}").status_code == 200


def test_cancel_of_an_ended_task_gives_the_api_error(emu: Emulator, conn: apidriver.Connection) -> None:
    finished = next(t for t in raw_list(emu, "/tasks") if t["status"] == "finished")
    with pytest.raises(apidriver.InvalidDataError, match="already completed"):
        conn.cursor().execute("SELECT * FROM CancelTask(?)", (finished["id"],))


def test_delete_job(emu: Emulator, conn: apidriver.Connection, api: httpx.Client) -> None:
    job = raw_list(emu, "/jobs")[0]
    cur = conn.cursor()
    cur.callproc("DeleteJob", [job["id"]])
    assert one(cur) == {"id": job["id"], "deleted": True}
    assert api.get(f"/jobs/{job['id']}").status_code == 404


def test_an_action_runs_once_per_statement(emu: Emulator, conn: apidriver.Connection) -> None:
    emu.clear_requests()
    rows = conn.cursor().execute(
        "SELECT n.x, j.id FROM (SELECT 1 AS x UNION ALL SELECT 2 UNION ALL SELECT 3) n, CreateJob(?, 'once') j",
        (json.dumps(TASKS),),
    ).fetchall()
    assert len(rows) == 3 and len({r[1] for r in rows}) == 1
    assert [r["method"] for r in emu.requests()].count("POST") == 1


def test_procedure_errors(conn: apidriver.Connection) -> None:
    cur = conn.cursor()
    with pytest.raises(apidriver.ProgrammingError, match="Unknown procedure 'Explode'.*ConvertFile"):
        cur.callproc("Explode")
    with pytest.raises(apidriver.ProgrammingError, match=r"CreateJob\(tasks, \[tag\], \[wait\]\) needs tasks"):
        cur.execute("SELECT * FROM CreateJob()")
    with pytest.raises(apidriver.ProgrammingError, match="tasks must be JSON"):
        cur.callproc("CreateJob", ["{oops"])
    with pytest.raises(apidriver.ProgrammingError, match="no parameter colour"):
        cur.callproc("WaitJob", {"colour": "red"})


def test_convert_file(tmp_path: Path, conn: apidriver.Connection, api: httpx.Client) -> None:
    source = tmp_path / "minutes.docx"
    source.write_bytes(b"PK\x03\x04 pretend docx " * 500)
    cur = conn.cursor()
    cur.callproc("ConvertFile", [str(source), "pdf"])
    result = one(cur)
    output = Path(result["output_path"])
    assert output == tmp_path / "minutes.pdf" and output.read_bytes().startswith(b"%PDF")
    assert result["size"] == output.stat().st_size and result["credits"] == 2  # docx → pdf runs on office
    job = api.get(f"/jobs/{result['job_id']}").json()["data"]
    upload = next(t for t in job["tasks"] if t["operation"] == "import/upload")
    assert upload["result"]["files"][0]["size"] == source.stat().st_size


def test_convert_file_to_a_destination_with_options(tmp_path: Path, conn: apidriver.Connection) -> None:
    source = tmp_path / "photo.png"
    source.write_bytes(b"\x89PNG fake")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    result = one(conn.cursor().execute(
        "SELECT * FROM ConvertFile(?, 'jpg', ?, ?)", (str(source), json.dumps({"engine": "graphicsmagick"}), str(out_dir))
    ))
    assert Path(result["output_path"]) == out_dir / "photo.jpg"


def test_convert_file_errors(tmp_path: Path, conn: apidriver.Connection) -> None:
    with pytest.raises(apidriver.ProgrammingError, match="no file at"):
        conn.cursor().callproc("ConvertFile", [str(tmp_path / "missing.docx"), "pdf"])
    odd = tmp_path / "thing.docx"
    odd.write_bytes(b"x")
    with pytest.raises(apidriver.OperationalError, match="INVALID_CONVERSION_TYPE"):
        conn.cursor().callproc("ConvertFile", [str(odd), "mp3"])


def test_convert_file_streams_large_files(tmp_path: Path) -> None:
    """A 40 MB upload through a separate emulator process: our memory stays small."""
    source = tmp_path / "big.txt"
    with source.open("wb") as handle:
        for _ in range(40):
            handle.write(os.urandom(1 << 20))
    process = subprocess.Popen(
        [sys.executable, "-m", "apidriver.emulator", "--port", "0", "--api-key", "k", "--task-seconds", "0.05"],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert process.stdout is not None
        root = process.stdout.readline().strip()
        with apidriver.connect(APIKey="k", BaseURL=root) as conn:
            tracemalloc.start()
            cur = conn.cursor()
            cur.callproc("ConvertFile", [str(source), "pdf", None, str(tmp_path / "out") + "/"])
            result = one(cur)
            peak = tracemalloc.get_traced_memory()[1]
            tracemalloc.stop()
        assert peak < 8 * (1 << 20), f"peak {peak / (1 << 20):.1f} MB for a 40 MB file"
        assert Path(result["output_path"]) == tmp_path / "out" / "big.pdf"
        assert Path(result["output_path"]).read_bytes().startswith(b"%PDF")
    finally:
        process.terminate()
        process.wait(timeout=10)


def test_verify_webhook_signature() -> None:
    payload = (FIXTURES / "cloudconvert-node/tests/unit/requests/webhook_job_finished_payload.json").read_bytes()
    good = "576b653f726c85265a389532988f483b5c7d7d5f40cede5f5ddf9c3f02934f35"
    assert verify_webhook_signature(payload, good, "secret")
    assert not verify_webhook_signature(payload + b" ", good, "secret")
    assert not verify_webhook_signature(payload, good, "other-secret")


def test_verify_webhook_signature_in_sql(conn: apidriver.Connection) -> None:
    payload = (FIXTURES / "cloudconvert-dotnet/CloudConvert.Test/Responses/webhook_job_created_payload.json").read_text()
    good = "88c3103f1d64282bf963af5dd8405ef26348af25b8903e10f0c288c11f0f907b"
    cur = conn.cursor()
    assert cur.execute("SELECT valid FROM VerifyWebhookSignature(?, ?, ?)", (payload, good, "9E1I8fQSLM7WsH1Y2Zp0uurYfhLqdERu")).fetchone() == (True,)
    cur.callproc("VerifyWebhookSignature", [payload, good.upper()[:-1] + "0", "9E1I8fQSLM7WsH1Y2Zp0uurYfhLqdERu"])
    assert cur.fetchone() == (False,)
