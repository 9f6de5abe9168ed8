"""Reflection: the inspector, MetaData.reflect, automap and sqlacodegen, all from the
driver's own metadata (sys_tables, sys_tablecolumns, sys_foreignkeys)."""

from __future__ import annotations

import importlib.util
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import (
    JSON,
    TIMESTAMP,
    Boolean,
    Integer,
    MetaData,
    String,
    inspect,
    select,
)
from sqlalchemy.engine import Engine
from sqlalchemy.ext.automap import automap_base
from sqlalchemy.orm import Session, configure_mappers

from apidriver.emulator import Emulator

from ..conftest import raw_list
from .conftest import SQLALCHEMY_1, url_for

API_TABLES = {"Jobs", "Tasks", "TaskFiles", "TaskDependencies", "Users", "Webhooks", "Operations"}


@pytest.fixture(scope="module")
def described(engine: Engine) -> dict[tuple[str, str], tuple[str, str]]:
    """(table, column) → (declared type, description), read with plain SQL."""
    with engine.connect() as conn:
        rows = conn.exec_driver_sql("SELECT table_name, column_name, type, description FROM sys_tablecolumns").all()
    return {(t, c): (ty, d) for t, c, ty, d in rows}


def test_table_names(engine: Engine) -> None:
    names = inspect(engine).get_table_names()
    assert API_TABLES <= set(names)
    assert {"sys_tables", "sys_tablecolumns", "sys_foreignkeys"} <= set(names)
    assert inspect(engine).get_view_names() == []


@pytest.mark.parametrize("table", sorted(API_TABLES))
def test_columns_types_and_comments(engine: Engine, described: dict[tuple[str, str], tuple[str, str]], table: str) -> None:
    columns = inspect(engine).get_columns(table)
    expected = [c for (t, c) in described if t == table]
    assert [c["name"] for c in columns] == expected
    kinds = {"TEXT": String, "INTEGER": Integer, "BOOLEAN": Boolean, "JSON": JSON, "TIMESTAMP": TIMESTAMP}
    for column in columns:
        declared, description = described[(table, column["name"])]
        assert column["comment"] == description
        assert isinstance(column["type"], kinds[declared]), (column["name"], column["type"])
        if declared == "TIMESTAMP":
            assert getattr(column["type"], "timezone", None) is True


def test_table_comment(engine: Engine) -> None:
    with engine.connect() as conn:
        description = conn.exec_driver_sql("SELECT description FROM sys_tables WHERE name = 'Tasks'").scalar()
    assert inspect(engine).get_table_comment("Tasks") == {"text": description}


@pytest.mark.parametrize(
    ("table", "key"),
    [("Jobs", ["id"]), ("Tasks", ["id"]), ("TaskFiles", ["task_id", "idx"]), ("Operations", ["operation", "input_format", "output_format", "engine"])],
)
def test_primary_keys(engine: Engine, table: str, key: list[str]) -> None:
    assert inspect(engine).get_pk_constraint(table)["constrained_columns"] == key


def test_foreign_keys(engine: Engine) -> None:
    insp = inspect(engine)
    tasks = {(fk["constrained_columns"][0], fk["referred_table"], fk["referred_columns"][0]) for fk in insp.get_foreign_keys("Tasks")}
    assert {("job_id", "Jobs", "id"), ("retry_of_task_id", "Tasks", "id"), ("user_id", "Users", "id")} <= tasks
    files = {(fk["constrained_columns"][0], fk["referred_table"]) for fk in insp.get_foreign_keys("TaskFiles")}
    assert ("task_id", "Tasks") in files and ("job_id", "Jobs") in files
    assert insp.get_foreign_keys("Jobs") == []


def test_virtual_tables_have_no_indexes(engine: Engine) -> None:
    insp = inspect(engine)
    for table in API_TABLES:
        assert insp.get_indexes(table) == [] and insp.get_unique_constraints(table) == []


def test_metadata_reflect_and_query(engine: Engine, shared_emulator: Emulator) -> None:
    metadata = MetaData()
    metadata.reflect(engine)
    assert API_TABLES <= set(metadata.tables)
    tasks, jobs = metadata.tables["Tasks"], metadata.tables["Jobs"]
    assert [fk.target_fullname for fk in tasks.c.job_id.foreign_keys] == ["Jobs.id"]
    with engine.connect() as conn:
        rows = conn.execute(
            select(jobs.c.id, tasks.c.name, tasks.c.result).join(tasks, tasks.c.job_id == jobs.c.id).where(jobs.c.status == "error")
        ).all()
    api = {t["id"]: t for t in raw_list(shared_emulator, "/tasks")}
    failed = {j["id"] for j in raw_list(shared_emulator, "/jobs", **{"filter[status]": "error"})}
    expected = sorted((t["job_id"], t["name"]) for t in api.values() if t["job_id"] in failed)
    assert sorted((r.id, r.name) for r in rows) == expected
    assert all(r.result is None or isinstance(r.result, dict) for r in rows)


def test_automap_builds_working_classes(engine: Engine, shared_emulator: Emulator) -> None:
    Base: Any = automap_base()  # noqa: N806
    Base.prepare(autoload_with=engine)
    Jobs, Tasks = Base.classes.Jobs, Base.classes.Tasks  # noqa: N806
    with Session(engine) as session:
        job = session.scalars(select(Jobs).where(Jobs.status == "finished").order_by(Jobs.created_at).limit(1)).one()
        names = sorted(t.name for t in job.tasks_collection)
        task = session.scalars(select(Tasks).where(Tasks.job_id == job.id).limit(1)).one()
        assert task.jobs is job
    api = raw_list(shared_emulator, "/tasks", **{"filter[job_id]": job.id})
    assert names == sorted(t["name"] for t in api)
    assert job.created_at.tzinfo is not None


@pytest.mark.skipif(SQLALCHEMY_1, reason="sqlacodegen 3 needs SQLAlchemy 2")
def test_sqlacodegen_generates_importable_models(shared_emulator: Emulator, tmp_path: Path, engine: Engine) -> None:
    url = url_for(shared_emulator)
    generated = subprocess.run(
        [sys.executable, "-m", "sqlacodegen", url, "--tables", ",".join(sorted(API_TABLES))],
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    ).stdout
    path = tmp_path / "cloudconvert_models.py"
    path.write_text(generated)
    spec = importlib.util.spec_from_file_location("cloudconvert_models", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    configure_mappers()
    assert "comment='Job id (UUID).'" in generated
    with Session(engine) as session:
        jobs = session.scalars(select(module.Jobs).where(module.Jobs.status == "error")).all()
        assert jobs and all(job.status == "error" for job in jobs)
        tasks = [t for job in jobs for t in job.Tasks]
        assert tasks and all(t.job_id in {j.id for j in jobs} for t in tasks)
