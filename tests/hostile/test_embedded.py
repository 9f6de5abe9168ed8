"""Embedded lists that disagree with their parent: a join answered from them keeps only the rows that match.

A job page with ``include=tasks`` answers every Tasks and TaskFiles lookup of
a join (engine/executor.py). If a task embedded under one job names another
job (a stale or mangled answer), a join on ``t.job_id = j.id`` must not pair
it with the job it came under, whatever shortcut the lookups take: SQLite
itself, given the same rows, would not.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

import apidriver

from .conftest import connect
from .server import HostileServer, Request, Wire, jobs_page


def task(task_id: str, job_id: str, files: int = 1) -> dict[str, Any]:
    return {
        "id": task_id,
        "job_id": job_id,
        "operation": "export/url",
        "status": "finished",
        "result": {"files": [{"filename": f"{task_id}-{i}.pdf", "url": f"https://example.com/{task_id}/{i}"} for i in range(files)]},
    }


def embedding(stray: bool) -> Callable[[Request, Wire], None]:
    """Six jobs, each embedding two of its own tasks; with ``stray``, job-0005 also embeds a task of
    job-0002's, and that task's file names job-0005's tasks' id (a file can only name its own task)."""

    def handler(request: Request, wire: Wire) -> None:
        if request.path != "/v2/jobs":
            wire.reply(404, {"message": "not expected here", "code": "NOT_FOUND"})
            return
        page = jobs_page(request, 6)
        for job in page["data"]:
            job["tasks"] = [task(f"{job['id']}-t{i}", job["id"]) for i in range(2)]
            if stray and job["id"] == "job-0005":
                job["tasks"].append(task("job-0002-stray", "job-0002"))
        wire.reply(200, page)

    return handler


def pairs(conn: apidriver.Connection, sql: str) -> list[tuple[Any, ...]]:
    return conn.cursor().execute(sql).fetchall()


def test_a_join_never_pairs_an_embedded_task_with_a_job_it_does_not_name(serve: Callable[..., HostileServer]) -> None:
    server = serve(embedding(stray=True))
    with connect(server, PageSize=100) as conn:
        rows = pairs(conn, "SELECT j.id, t.id, t.job_id FROM Jobs j JOIN Tasks t ON t.job_id = j.id")
        assert rows, "the join found nothing"
        assert all(job_id == tasks_job for job_id, _, tasks_job in rows), rows
        assert ("job-0005", "job-0002-stray", "job-0002") not in rows
        assert len([r for r in rows if r[0] == "job-0005"]) == 2
        files = pairs(
            conn,
            "SELECT j.id, t.id, f.task_id FROM Jobs j JOIN Tasks t ON t.job_id = j.id "
            "JOIN TaskFiles f ON f.task_id = t.id",
        )
        assert files and all(task_id == file_task for _, task_id, file_task in files), files
        assert all(job_id == task_id.split("-t")[0] for job_id, task_id, _ in files), files
        assert {r.path for r in server.requests} == {"/v2/jobs"}


def test_embedded_lists_that_agree_answer_every_pair(serve: Callable[..., HostileServer]) -> None:
    server = serve(embedding(stray=False))
    with connect(server, PageSize=100) as conn:
        rows = pairs(conn, "SELECT j.id, t.id FROM Jobs j JOIN Tasks t ON t.job_id = j.id ORDER BY 2")
        assert rows == sorted((f"job-{n:04d}", f"job-{n:04d}-t{i}") for n in range(1, 7) for i in range(2))
        files = pairs(
            conn,
            "SELECT t.id, f.filename FROM Jobs j JOIN Tasks t ON t.job_id = j.id JOIN TaskFiles f ON f.task_id = t.id "
            "WHERE j.tag = 't3'",
        )
        assert sorted(files) == [("job-0003-t0", "job-0003-t0-0.pdf"), ("job-0003-t1", "job-0003-t1-0.pdf")]
