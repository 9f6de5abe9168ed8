"""docs/sqlalchemy.md runs: every block, in order, against an emulator; then the recipes' results
are checked against the API's own data."""

from __future__ import annotations

import datetime as dt
from collections import defaultdict
from collections.abc import Iterator
from typing import Any

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session

from apidriver.emulator import Emulator

from ..conftest import raw_list
from .harness import DocRun, api_at, start_emulator

DOC = "docs/sqlalchemy.md"
UTC = dt.UTC


@pytest.fixture(scope="module")
def emulator() -> Iterator[Emulator]:
    emulator = start_emulator(jobs=60, seed=11)
    yield emulator
    emulator.stop()


@pytest.fixture(scope="module")
def run(emulator: Emulator, tmp_path_factory: pytest.TempPathFactory) -> Iterator[DocRun]:
    """The guide's blocks, run in order; the namespace they leave behind stays for the checks below
    (its engine still reaching the emulator)."""
    sqlacodegen = {
        "sqlacodegen 'cloudconvert://:YOUR_API_KEY@' --tables Jobs,Tasks,TaskFiles > models.py":
        "tests/sqlalchemy/test_reflection.py runs sqlacodegen on the emulator and imports the classes it writes"
    }
    with api_at(emulator), DocRun(DOC, emulator, tmp_path_factory.mktemp("sqlalchemy_doc"), not_run_commands=sqlacodegen) as session:
        session.run()
        yield session


@pytest.fixture(scope="module")
def doc(run: DocRun) -> dict[str, Any]:
    return run.namespace


def when(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value).astimezone(UTC)


def test_every_block_ran_and_every_mapped_class_reads(run: DocRun, doc: dict[str, Any]) -> None:
    assert len(run.ran) >= 17 and [o.block.lang for o in run.outcomes if o.not_run] == ["sh"]  # sqlacodegen
    classes = [m.class_ for m in doc["Base"].registry.mappers]
    assert len(classes) == 7  # one per API table
    with Session(doc["engine"]) as session:
        for cls in classes:
            assert session.scalars(select(cls).limit(3)).all(), cls.__name__


def test_failed_jobs_recipe(doc: dict[str, Any], emulator: Emulator) -> None:
    jobs = {j["id"]: j for j in raw_list(emulator, "/jobs")}
    tasks = raw_list(emulator, "/tasks")
    since = min(when(j["ended_at"]) for j in jobs.values() if j["ended_at"])
    with Session(doc["engine"]) as session:
        emulator.clear_requests()
        rows = doc["failed_jobs"](session, since)
        requests = emulator.requests()
    expected = {
        (t["job_id"], t["name"], t["code"], t["message"])
        for t in tasks
        if t["job_id"] and t["status"] == "error" and jobs[t["job_id"]]["status"] == "error" and when(jobs[t["job_id"]]["ended_at"]) >= since
    }
    assert expected and {(r.id, r.name, r.code, r.message) for r in rows} == expected
    assert len(requests) == 1


def test_credits_per_operation_recipe(doc: dict[str, Any], emulator: Emulator) -> None:
    tasks = raw_list(emulator, "/tasks")
    since = dt.datetime.now(UTC) - dt.timedelta(hours=12)
    with Session(doc["engine"]) as session:
        rows = doc["credits_per_operation"](session, since)
    expected: dict[str, list[int]] = defaultdict(lambda: [0, 0])
    for t in tasks:
        if t["credits"] is not None and t["ended_at"] and when(t["ended_at"]) >= since:
            expected[t["operation"]][0] += 1
            expected[t["operation"]][1] += t["credits"]
    assert expected and {op: [n, c] for op, n, c in rows} == dict(expected)
    assert [c for _, _, c in rows] == sorted((c for _, _, c in rows), reverse=True)


def test_joinedload_downloads_recipe(doc: dict[str, Any], emulator: Emulator) -> None:
    invoices = {j["id"] for j in raw_list(emulator, "/jobs") if j["tag"] == "invoices"}
    urls = [
        f.get("url")
        for t in raw_list(emulator, "/tasks")
        if t["job_id"] in invoices
        for f in ((t["result"] or {}).get("files") or [])
    ]
    assert sorted(doc["downloads"]) == sorted(u for u in urls if u)
    assert doc["downloads"]


def test_other_recipes_results(doc: dict[str, Any], emulator: Emulator) -> None:
    jobs = raw_list(emulator, "/jobs")
    assert sum(n for _, _, n in doc["by_status"]) == len(jobs)
    latest = {r.tag: r.id for r in doc["latest"]}
    newest: dict[str, dict[str, Any]] = {}
    for j in jobs:
        if j["tag"] and (j["tag"] not in newest or j["created_at"] > newest[j["tag"]]["created_at"]):
            newest[j["tag"]] = j
    assert latest == {tag: j["id"] for tag, j in newest.items()}
    seconds = [r.seconds for r in doc["slowest"]]
    assert len(seconds) == 5 and seconds == sorted(seconds, reverse=True)
    assert doc["remaining"] == raw_list_user(emulator)["credits"]
    assert str(doc["jobs_frame"]["created_at"].dt.tz) == "UTC"
    assert str(doc["jobs_pl"].schema["created_at"]) == "Datetime(time_unit='us', time_zone='UTC')"
    assert set(doc["async_failed"]) == {j["id"] for j in jobs if j["status"] == "error"}
    assert {r.id for r in doc["rows"]} == {j["id"] for j in jobs if j["status"] == "error"}


def raw_list_user(emulator: Emulator) -> dict[str, Any]:
    import httpx

    response = httpx.get(emulator.api_url + "/users/me", headers={"Authorization": f"Bearer {emulator.api_key}"})
    return dict(response.json()["data"])

