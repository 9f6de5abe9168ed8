"""polars and pandas: timestamps come back zone-aware (UTC) by every route, and JSON
columns are objects through select() and text through text(), as docs/sqlalchemy.md says."""

from __future__ import annotations

import datetime as dt
import json
from typing import Any

import polars as pl
import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import Engine

import apidriver
from apidriver.emulator import Emulator

from ..conftest import connect_to, raw_list
from .models import Task

UTC_MICROSECONDS = pl.Datetime("us", "UTC")


@pytest.fixture(scope="module")
def api_jobs(shared_emulator: Emulator) -> list[dict[str, Any]]:
    return raw_list(shared_emulator, "/jobs")


def newest(api_jobs: list[dict[str, Any]]) -> dt.datetime:
    return max(dt.datetime.fromisoformat(j["created_at"]) for j in api_jobs)


def check(frame: pl.DataFrame, api_jobs: list[dict[str, Any]]) -> None:
    assert frame.schema["created_at"] == UTC_MICROSECONDS
    assert frame["created_at"].max() == newest(api_jobs)
    assert frame.height == len(api_jobs)


def test_polars_through_an_engine(engine: Engine, api_jobs: list[dict[str, Any]]) -> None:
    check(pl.read_database("SELECT id, created_at, ended_at FROM Jobs", connection=engine), api_jobs)


def test_polars_through_a_sqlalchemy_connection(engine: Engine, api_jobs: list[dict[str, Any]]) -> None:
    with engine.connect() as conn:
        check(pl.read_database(text("SELECT created_at FROM Jobs"), connection=conn), api_jobs)


def test_polars_through_a_dbapi_connection(shared_emulator: Emulator, api_jobs: list[dict[str, Any]]) -> None:
    conn = connect_to(shared_emulator)
    try:
        frame = pl.read_database("SELECT created_at, started_at FROM Jobs", connection=conn)
        check(frame, api_jobs)
        assert frame.schema["started_at"] == UTC_MICROSECONDS
        cursor = conn.cursor().execute("SELECT created_at FROM Jobs LIMIT 1")
        assert cursor.description[0][1] == apidriver.DATETIME  # the type code still compares as PEP 249 says
    finally:
        conn.close()


def test_json_columns_objects_through_select_text_through_text(engine: Engine, shared_emulator: Emulator) -> None:
    api = {t["id"]: t for t in raw_list(shared_emulator, "/tasks")}
    with engine.connect() as conn:
        typed = dict(conn.execute(select(Task.id, Task.result)).all())
        textual = dict(conn.execute(text("SELECT id, result FROM Tasks")).all())
    with_result = [i for i, t in api.items() if t["result"] is not None]
    assert with_result
    for task_id in with_result:
        assert typed[task_id] == api[task_id]["result"]  # the JSON type decodes
        assert isinstance(textual[task_id], str)  # text() has no column types: the stored JSON text
        assert json.loads(textual[task_id]) == api[task_id]["result"]
