"""Core and ORM queries: types (timestamps, JSON, booleans), aggregates, joins,
subqueries, CTEs, window functions and JSON functions, checked against the API's data."""

from __future__ import annotations

import datetime as dt
from collections import Counter, defaultdict
from typing import Any
from zoneinfo import ZoneInfo

import pandas as pd  # type: ignore[import-untyped]
import pytest
from sqlalchemy import DateTime, and_, func, select, text
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session

from apidriver.emulator import Emulator

from ..conftest import raw_list
from .models import Job, Operation, Task, Webhook

UTC = dt.timezone.utc


@pytest.fixture(scope="module")
def api_jobs(shared_emulator: Emulator) -> list[dict[str, Any]]:
    return raw_list(shared_emulator, "/jobs")


@pytest.fixture(scope="module")
def api_tasks(shared_emulator: Emulator) -> list[dict[str, Any]]:
    return raw_list(shared_emulator, "/tasks")


def when(value: str) -> dt.datetime:
    return dt.datetime.fromisoformat(value).astimezone(UTC)


@pytest.fixture(scope="module")
def middle(api_jobs: list[dict[str, Any]]) -> dt.datetime:
    """A moment between the oldest and the newest job, on a whole second."""
    times = sorted(when(j["created_at"]) for j in api_jobs)
    return times[len(times) // 2]


# -- timestamps --------------------------------------------------------------------------------


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", "America/New_York", "naive"])
def test_datetime_comparisons_in_any_zone(engine: Engine, api_jobs: list[dict[str, Any]], middle: dt.datetime, zone: str) -> None:
    bound = middle.replace(tzinfo=None) if zone == "naive" else middle.astimezone(ZoneInfo(zone))
    with Session(engine) as session:
        after = set(session.scalars(select(Job.id).where(Job.created_at > bound)))
        at = set(session.scalars(select(Job.id).where(Job.created_at == bound)))
    assert after == {j["id"] for j in api_jobs if when(j["created_at"]) > middle}
    assert at == {j["id"] for j in api_jobs if when(j["created_at"]) == middle}
    assert at  # the bound is a job's own timestamp


def test_microseconds_and_dates_compare_correctly(engine: Engine, api_jobs: list[dict[str, Any]], middle: dt.datetime) -> None:
    """A bound with microseconds sorts after the whole second; a date means its midnight UTC."""
    just_after = middle + dt.timedelta(microseconds=1)
    day = middle.date()
    with Session(engine) as session:
        assert middle not in set(session.scalars(select(Job.created_at).where(Job.created_at >= just_after)))
        since_midnight = set(session.scalars(select(Job.id).where(Job.created_at >= day)))
    midnight = dt.datetime(day.year, day.month, day.day, tzinfo=UTC)
    assert since_midnight == {j["id"] for j in api_jobs if when(j["created_at"]) >= midnight}


def test_results_are_aware_utc_also_from_expressions(engine: Engine, api_jobs: list[dict[str, Any]]) -> None:
    newest = max(when(j["created_at"]) for j in api_jobs)
    with Session(engine) as session:
        assert session.scalar(select(func.max(Job.created_at))) == newest
        created = session.scalars(select(Job.created_at)).all()
        raw = session.execute(text("SELECT max(created_at) AS m FROM Jobs").columns(m=DateTime)).scalar_one()
    assert raw == newest and raw.tzinfo is UTC
    assert all(c.tzinfo is UTC for c in created)


def test_literal_binds_render_the_stored_format(engine: Engine) -> None:
    moment = dt.datetime(2025, 3, 1, 10, 30, tzinfo=ZoneInfo("Europe/Berlin"))
    sql = str(select(Job.id).where(Job.created_at > moment).compile(engine, compile_kwargs={"literal_binds": True}))
    assert "'2025-03-01 09:30:00'" in sql


# -- JSON and booleans -------------------------------------------------------------------------


def test_json_columns_give_python_objects(engine: Engine, api_tasks: list[dict[str, Any]]) -> None:
    by_id = {t["id"]: t for t in api_tasks}
    with Session(engine) as session:
        tasks = session.scalars(select(Task)).all()
    assert len(tasks) == len(api_tasks)
    for task in tasks:
        assert task.result == by_id[task.id]["result"]
        assert task.depends_on_task_ids == by_id[task.id]["depends_on_task_ids"]


def test_json_extract_and_json_paths(engine: Engine, api_tasks: list[dict[str, Any]]) -> None:
    with Session(engine) as session:
        by_func: dict[str, Any] = dict(session.execute(select(Task.id, func.json_extract(Task.result, "$.files[0].filename"))).all())
        by_path: dict[str, Any] = dict(session.execute(select(Task.id, Task.result["files"][0]["filename"].as_string())).all())
        pngs = set(session.scalars(select(Task.id).where(func.json_extract(Task.result, "$.files[0].filename").like("%.png"))))
    expected = {t["id"]: ((t["result"] or {}).get("files") or [{}])[0].get("filename") for t in api_tasks}
    assert by_func == expected and by_path == expected
    assert pngs == {i for i, name in expected.items() if name and name.endswith(".png")}


def test_booleans(engine: Engine, shared_emulator: Emulator) -> None:
    api = raw_list(shared_emulator, "/users/me/webhooks")
    with Session(engine) as session:
        hooks = session.scalars(select(Webhook)).all()
        disabled = set(session.scalars(select(Webhook.id).where(Webhook.disabled.is_(True))))
        enabled = set(session.scalars(select(Webhook.id).where(Webhook.disabled == False)))  # noqa: E712
    assert {h.id: h.disabled for h in hooks} == {str(w["id"]): w["disabled"] for w in api}
    assert all(type(h.disabled) is bool and isinstance(h.events, list) for h in hooks)
    assert disabled == {str(w["id"]) for w in api if w["disabled"]}
    assert enabled == {str(w["id"]) for w in api if not w["disabled"]}
    assert disabled and enabled


def test_operations_booleans_and_integers(engine: Engine) -> None:
    with Session(engine) as session:
        rows = session.execute(
            select(Operation.experimental, func.count()).where(Operation.operation == "convert").group_by(Operation.experimental)
        ).all()
        cheapest = session.scalar(select(func.min(Operation.credits)).where(Operation.output_format == "pdf"))
    assert {type(flag) for flag, _ in rows} <= {bool, type(None)} and sum(n for _, n in rows) > 100
    assert isinstance(cheapest, int)


# -- SQL shapes ------------------------------------------------------------------------------------


def test_aggregates_and_group_by(engine: Engine, api_tasks: list[dict[str, Any]]) -> None:
    with Session(engine) as session:
        rows = session.execute(
            select(Task.operation, func.count(), func.sum(Task.credits)).group_by(Task.operation).order_by(Task.operation)
        ).all()
    count = Counter(t["operation"] for t in api_tasks)
    credits: dict[str, int | None] = {}
    for t in api_tasks:
        if t["credits"] is not None:
            credits[t["operation"]] = (credits.get(t["operation"]) or 0) + t["credits"]
    assert [(op, n, credits.get(op)) for op, n in sorted(count.items())] == [tuple(r) for r in rows]


def test_subquery_and_having(engine: Engine, api_tasks: list[dict[str, Any]]) -> None:
    per_job = select(Task.job_id, func.count().label("n")).where(Task.job_id.is_not(None)).group_by(Task.job_id).subquery()
    with Session(engine) as session:
        busy = set(session.scalars(select(Job.id).join(per_job, per_job.c.job_id == Job.id).where(per_job.c.n > 3)))
        having = set(session.scalars(select(Task.job_id).group_by(Task.job_id).having(func.count() > 3)))
    counts = Counter(t["job_id"] for t in api_tasks if t["job_id"])
    assert busy == having - {None} == {j for j, n in counts.items() if n > 3}
    assert busy


def test_cte_and_window_function(engine: Engine, api_tasks: list[dict[str, Any]]) -> None:
    ranked = (
        select(
            Task.job_id,
            Task.name,
            func.row_number().over(partition_by=Task.job_id, order_by=(Task.created_at, Task.id)).label("position"),
        )
        .where(Task.job_id.is_not(None))
        .cte("ranked")
    )
    with Session(engine) as session:
        first = dict(session.execute(select(ranked.c.job_id, ranked.c.name).where(ranked.c.position == 1)).all())
    expected: dict[str, str] = {}
    for t in sorted((t for t in api_tasks if t["job_id"]), key=lambda t: (t["created_at"], t["id"])):
        expected.setdefault(t["job_id"], t["name"])
    assert first == expected


def test_core_join_with_in_and_regexp(engine: Engine, api_jobs: list[dict[str, Any]], api_tasks: list[dict[str, Any]]) -> None:
    tags = ["ebooks", "invoices"]
    with engine.connect() as conn:
        rows = conn.execute(
            select(Job.tag, Task.operation)
            .join(Task, and_(Task.job_id == Job.id))
            .where(Job.tag.in_(tags), Task.operation.regexp_match("^export/"))
        ).all()
        nothing = conn.execute(select(Job.id).where(Job.status.in_([]))).all()
    tag_of = {j["id"]: j["tag"] for j in api_jobs}
    expected = Counter((tag_of[t["job_id"]], t["operation"]) for t in api_tasks if t["job_id"] and tag_of[t["job_id"]] in tags and t["operation"].startswith("export/"))
    assert Counter(tuple(r) for r in rows) == expected and expected
    assert nothing == []


def test_textual_sql_with_named_parameters(engine: Engine, api_jobs: list[dict[str, Any]], middle: dt.datetime) -> None:
    with engine.connect() as conn:
        n = conn.execute(text("SELECT count(*) FROM Jobs WHERE created_at > :since"), {"since": middle}).scalar_one()
        now = conn.execute(select(func.now())).scalar_one()
    assert n == sum(1 for j in api_jobs if when(j["created_at"]) > middle)
    # SQLite's CURRENT_TIMESTAMP is UTC text; the DateTime type of now() makes it aware.
    assert now.tzinfo is UTC and abs(now - dt.datetime.now(UTC)) < dt.timedelta(seconds=5)


# -- pandas --------------------------------------------------------------------------------------


def test_pandas_read_sql_table(engine: Engine, api_jobs: list[dict[str, Any]]) -> None:
    frame = pd.read_sql("Jobs", engine)
    assert sorted(frame["id"]) == sorted(j["id"] for j in api_jobs)
    for column in ("created_at", "started_at", "ended_at"):
        assert isinstance(frame[column].dtype, pd.DatetimeTZDtype) and str(frame[column].dt.tz) == "UTC"
    newest = max(when(j["created_at"]) for j in api_jobs)
    assert frame["created_at"].max() == pd.Timestamp(newest)


def test_pandas_read_sql_query(engine: Engine, api_tasks: list[dict[str, Any]]) -> None:
    query = select(Task.operation, func.sum(Task.credits).label("credits"), func.max(Task.ended_at).label("last")).group_by(Task.operation)
    frame = pd.read_sql(query, engine)
    assert isinstance(frame["last"].dtype, pd.DatetimeTZDtype)
    totals: dict[str, int] = defaultdict(int)
    for t in api_tasks:
        totals[t["operation"]] += t["credits"] or 0
    assert dict(zip(frame["operation"], frame["credits"].fillna(0).astype(int), strict=True)) == dict(totals)
    textual = pd.read_sql(text("SELECT id, created_at FROM Tasks WHERE operation = :op"), engine, params={"op": "convert"})
    assert isinstance(textual["created_at"].dtype, pd.DatetimeTZDtype)
    assert len(textual) == sum(1 for t in api_tasks if t["operation"] == "convert")
