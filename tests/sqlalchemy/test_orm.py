"""ORM relationships through the declared foreign keys: lazy, selectin and joined loading,
and what each costs in API requests."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import create_engine, func, select
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session, joinedload, selectinload

from apidriver.emulator import Emulator

from ..conftest import raw_list
from .conftest import overlap, url_for
from .models import Job, Task, TaskFile


@pytest.fixture(scope="module")
def emu() -> Iterator[Emulator]:
    """60 jobs and 20 ms per request, so that sequential requests would show."""
    emulator = Emulator(jobs=60, seed=3, task_seconds=0.05, latency_ms=20).start()
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def orm_engine(emu: Emulator) -> Iterator[Engine]:
    eng = create_engine(url_for(emu))
    yield eng
    eng.dispose()


@pytest.fixture(scope="module")
def api_jobs(emu: Emulator) -> list[dict[str, Any]]:
    return raw_list(emu, "/jobs")


@pytest.fixture(scope="module")
def api_tasks(emu: Emulator) -> dict[str | None, list[dict[str, Any]]]:
    """The API's tasks by job id."""
    by_job: dict[str | None, list[dict[str, Any]]] = defaultdict(list)
    for task in raw_list(emu, "/tasks"):
        by_job[task["job_id"]].append(task)
    return by_job


def files_of(task: dict[str, Any]) -> list[str]:
    return [f["filename"] for f in ((task.get("result") or {}).get("files") or [])]


def test_lazy_loading_of_tasks_and_files(orm_engine: Engine, emu: Emulator, api_tasks: dict[str | None, list[dict[str, Any]]]) -> None:
    with Session(orm_engine) as session:
        job = session.scalars(select(Job).where(Job.status == "error")).first()
        assert job is not None
        emu.clear_requests()
        tasks = job.tasks
        [request] = emu.requests()
        assert request["path"] == "/v2/tasks" and dict(request["params"])["filter[job_id]"] == job.id
        expected = api_tasks[job.id]
        assert {t.id for t in tasks} == {t["id"] for t in expected}
        assert all(t.job is job for t in tasks)
        for task in tasks:
            assert [f.filename for f in sorted(task.files, key=lambda f: f.idx)] == files_of(next(t for t in expected if t["id"] == task.id))


def test_selectinload_of_50_jobs_is_one_concurrent_batch(orm_engine: Engine, emu: Emulator, api_tasks: dict[str | None, list[dict[str, Any]]]) -> None:
    with Session(orm_engine) as session:
        emu.clear_requests()
        jobs = session.scalars(select(Job).order_by(Job.created_at).limit(50).options(selectinload(Job.tasks))).all()
        requests = emu.requests()
    assert len(jobs) == 50
    for job in jobs:
        assert {t.id for t in job.tasks} == {t["id"] for t in api_tasks[job.id]}
    task_requests = [r for r in requests if r["path"] == "/v2/tasks"]
    assert len(requests) == 1 + len(task_requests)
    filtered = [r for r in task_requests if "filter[job_id]" in dict(r["params"])]
    if filtered:
        # One IN (...) statement whose 50 values go to the API as 50 concurrent filtered lists...
        assert len(task_requests) == len(filtered) == 50
        assert {dict(r["params"])["filter[job_id]"] for r in task_requests} == {j.id for j in jobs}
        assert overlap(task_requests) >= 4
    else:
        # ...unless reading Tasks whole is known to cost fewer requests than 50 lists.
        pages = sorted(int(dict(r["params"])["page"]) for r in task_requests)
        assert pages == list(range(1, len(pages) + 1)) and len(pages) < 50


def test_selectinload_two_levels(orm_engine: Engine, emu: Emulator, api_tasks: dict[str | None, list[dict[str, Any]]]) -> None:
    with Session(orm_engine) as session:
        jobs = session.scalars(
            select(Job).where(Job.tag == "invoices").options(selectinload(Job.tasks).selectinload(Task.files))
        ).all()
        assert jobs
        for job in jobs:
            for task in job.tasks:
                expected = next(t for t in api_tasks[job.id] if t["id"] == task.id)
                assert [f.filename for f in sorted(task.files, key=lambda f: f.idx)] == files_of(expected)


def test_joinedload_is_one_request(orm_engine: Engine, emu: Emulator, api_tasks: dict[str | None, list[dict[str, Any]]]) -> None:
    with Session(orm_engine) as session:
        emu.clear_requests()
        jobs = session.scalars(select(Job).options(joinedload(Job.tasks).joinedload(Task.files))).unique().all()
        requests = emu.requests()
        assert len(jobs) == 60
        for job in jobs:
            assert {t.id for t in job.tasks} == {t["id"] for t in api_tasks[job.id]}
            for task in job.tasks:
                expected = next(t for t in api_tasks[job.id] if t["id"] == task.id)
                assert sorted(f.filename or "" for f in task.files) == sorted(files_of(expected))
    # The jobs list with the tasks embedded: nothing else.
    assert [(r["path"], dict(r["params"]).get("include")) for r in requests] == [("/v2/jobs", "tasks")]


def test_many_to_one_and_join_in_orm(orm_engine: Engine, api_jobs: list[dict[str, Any]], api_tasks: dict[str | None, list[dict[str, Any]]]) -> None:
    with Session(orm_engine) as session:
        rows = session.execute(
            select(Job.tag, func.count(TaskFile.idx))
            .join(Job.tasks)
            .join(Task.files)
            .where(Task.operation == "export/url")
            .group_by(Job.tag)
        ).all()
        task = session.scalars(select(Task).where(Task.job_id.is_not(None)).limit(1)).one()
        assert task.job is not None and task.job.id == task.job_id
    jobs = {j["id"]: j for j in api_jobs}
    expected: dict[str | None, int] = defaultdict(int)
    for job_id, tasks in api_tasks.items():
        for t in tasks:
            if job_id is not None and t["operation"] == "export/url" and files_of(t):
                expected[jobs[job_id]["tag"]] += len(files_of(t))
    assert dict(rows) == dict(expected)


def test_session_query_legacy_forms(orm_engine: Engine, api_jobs: list[dict[str, Any]]) -> None:
    with Session(orm_engine) as session:
        assert session.query(Job).filter_by(status="error").count() == sum(1 for j in api_jobs if j["status"] == "error")
        convert = session.query(Task).filter(Task.operation == "convert").order_by(Task.created_at.desc()).first()
        assert convert is not None and convert.operation == "convert"
