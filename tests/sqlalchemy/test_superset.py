"""What Apache Superset sends through the dialect, checked without Superset installed: the
SQLite spec's time-grain SQL (which apidriver.sqlalchemy.superset makes Superset use), its
datetime literals, LIMIT added or wrapped, and the inspector calls of "add a database"."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from apidriver.emulator import Emulator

from ..conftest import raw_list

# Superset 6.1, superset/db_engine_specs/sqlite.py, SqliteEngineSpec._time_grain_expressions (a selection).
GRAINS = {
    "PT1S": "DATETIME(STRFTIME('%Y-%m-%dT%H:%M:%S', {col}))",
    "PT5M": "DATETIME(STRFTIME('%Y-%m-%dT%H:%M:00', {col}), printf('-%d minutes', CAST(strftime('%M', {col}) AS INT) % 5))",
    "PT1H": "DATETIME(STRFTIME('%Y-%m-%dT%H:00:00', {col}))",
    "P1D": "DATETIME({col}, 'start of day')",
    "P1W/monday": "DATETIME({col}, 'start of day', '-' || ((strftime('%w', {col}) + 6) % 7) || ' days')",
    "P1M": "DATETIME({col}, 'start of month')",
    "P3M": "DATETIME({col}, 'start of month', printf('-%d month', (strftime('%m', {col}) - 1) % 3))",
    "P1Y": "DATETIME({col}, 'start of year')",
}


def truncate(moment: dt.datetime, grain: str) -> dt.datetime:
    if grain == "PT1S":
        return moment.replace(microsecond=0)
    if grain == "PT5M":
        return moment.replace(minute=moment.minute - moment.minute % 5, second=0, microsecond=0)
    if grain == "PT1H":
        return moment.replace(minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if grain == "P1D":
        return day
    if grain == "P1W/monday":
        return day - dt.timedelta(days=day.weekday())
    if grain == "P1M":
        return day.replace(day=1)
    if grain == "P3M":
        return day.replace(day=1, month=day.month - (day.month - 1) % 3)
    return day.replace(month=1, day=1)


@pytest.fixture(scope="module")
def created(shared_emulator: Emulator) -> list[dt.datetime]:
    return [dt.datetime.fromisoformat(j["created_at"]).astimezone(dt.timezone.utc).replace(tzinfo=None) for j in raw_list(shared_emulator, "/jobs")]


@pytest.mark.parametrize("grain", sorted(GRAINS))
def test_time_grains_group_api_timestamps(engine: Engine, created: list[dt.datetime], grain: str) -> None:
    expression = GRAINS[grain].format(col="created_at")
    with engine.connect() as conn:
        rows = conn.execute(text(f"SELECT {expression} AS t, count(*) AS n FROM Jobs GROUP BY 1 ORDER BY 1")).all()
    expected = Counter(truncate(c, grain).strftime("%Y-%m-%d %H:%M:%S") for c in created)
    assert {t: n for t, n in rows} == dict(expected)


def test_datetime_literals_and_limits_as_superset_writes_them(engine: Engine, created: list[dt.datetime]) -> None:
    middle = sorted(created)[len(created) // 2]
    literal = f"'{middle.isoformat(sep=' ', timespec='seconds')}'"  # SqliteEngineSpec.convert_dttm
    query = f"SELECT id FROM Jobs WHERE created_at >= {literal} ORDER BY created_at"
    with engine.connect() as conn:
        everything = [r.id for r in conn.execute(text(query))]
        forced = [r.id for r in conn.execute(text(query + " LIMIT 6"))]  # FORCE_LIMIT
        wrapped = [r.id for r in conn.execute(text(f"SELECT * FROM ({query}) AS inner_qry LIMIT 6"))]  # WRAP_SQL
    assert len(everything) == sum(1 for c in created if c >= middle)
    assert forced == wrapped == everything[:6]


def test_the_inspector_calls_of_adding_a_database(engine: Engine) -> None:
    inspector = inspect(engine)
    tables = inspector.get_table_names()
    assert {"Jobs", "Tasks", "Webhooks"} <= set(tables)
    columns: dict[str, Any] = {c["name"]: c for c in inspector.get_columns("Jobs")}
    assert columns["created_at"]["type"].timezone is True and columns["id"]["comment"]
    assert inspector.get_pk_constraint("Jobs")["constrained_columns"] == ["id"]
    assert inspector.get_foreign_keys("Tasks")[0]["referred_table"] == "Jobs"
    assert inspector.get_indexes("Jobs") == [] and inspector.get_unique_constraints("Jobs") == []
    assert inspector.get_table_comment("Jobs")["text"]
    assert inspector.get_view_names() == [] and inspector.get_schema_names() == ["main"]
