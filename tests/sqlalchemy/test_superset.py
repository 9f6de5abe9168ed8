"""What Apache Superset sends through the dialect, checked without Superset installed: every
time grain of the SQLite spec (which apidriver.sqlalchemy.superset makes Superset use) parsed by
sqlglot as Superset parses it, its datetime literals, LIMIT added or wrapped, and the inspector
calls of "add a database". test_superset_spec.py checks the same against Superset itself."""

from __future__ import annotations

import datetime as dt
from collections import Counter
from typing import Any

import pytest
import sqlglot
from sqlalchemy import inspect, text
from sqlalchemy.engine import Engine

from apidriver.emulator import Emulator
from apidriver.sqlalchemy.superset_support import SQLGLOT_DIALECT

from ..conftest import raw_list

# Superset 6.1, superset/db_engine_specs/sqlite.py: SqliteEngineSpec._time_grain_expressions, every one,
# written exactly (test_superset_spec.py compares this copy with Superset's when Superset is installed).
GRAINS: dict[str | None, str] = {
    None: "{col}",
    "PT1S": "DATETIME(STRFTIME('%Y-%m-%dT%H:%M:%S', {col}))",
    "PT5S": "DATETIME({col}, printf('-%d seconds', CAST(strftime('%S', {col}) AS INT) % 5))",
    "PT30S": "DATETIME({col}, printf('-%d seconds', CAST(strftime('%S', {col}) AS INT) % 30))",
    "PT1M": "DATETIME(STRFTIME('%Y-%m-%dT%H:%M:00', {col}))",
    "PT5M": "DATETIME(STRFTIME('%Y-%m-%dT%H:%M:00', {col}), printf('-%d minutes', CAST(strftime('%M', {col}) AS INT) % 5))",
    "PT10M": "DATETIME(STRFTIME('%Y-%m-%dT%H:%M:00', {col}), printf('-%d minutes', CAST(strftime('%M', {col}) AS INT) % 10))",
    "PT15M": "DATETIME(STRFTIME('%Y-%m-%dT%H:%M:00', {col}), printf('-%d minutes', CAST(strftime('%M', {col}) AS INT) % 15))",
    "PT30M": "DATETIME(STRFTIME('%Y-%m-%dT%H:%M:00', {col}), printf('-%d minutes', CAST(strftime('%M', {col}) AS INT) % 30))",
    "PT1H": "DATETIME(STRFTIME('%Y-%m-%dT%H:00:00', {col}))",
    "PT6H": "DATETIME(STRFTIME('%Y-%m-%dT%H:00:00', {col}), printf('-%d hours', CAST(strftime('%H', {col}) AS INT) % 6))",
    "P1D": "DATETIME({col}, 'start of day')",
    "P1W": "DATETIME({col}, 'start of day',             -strftime('%w', {col}) || ' days')",
    "P1M": "DATETIME({col}, 'start of month')",
    "P3M": "DATETIME({col}, 'start of month', printf('-%d month', (strftime('%m', {col}) - 1) % 3))",
    "P1Y": "DATETIME({col}, 'start of year')",
    "P1W/1970-01-03T00:00:00Z": "DATETIME({col}, 'start of day', 'weekday 6')",
    "P1W/1970-01-04T00:00:00Z": "DATETIME({col}, 'start of day', 'weekday 0')",
    "1969-12-28T00:00:00Z/P1W": "DATETIME({col}, 'start of day',             -strftime('%w', {col}) || ' days')",
    "1969-12-29T00:00:00Z/P1W": "DATETIME({col}, 'start of day', '-' ||             ((strftime('%w', {col}) + 6) % 7) || ' days')",
    "PT0.5H": "DATETIME(STRFTIME('%Y-%m-%dT%H:%M:00', {col}), printf('-%d minutes', CAST(strftime('%M', {col}) AS INT) % 30))",
    "P0.25Y": "DATETIME({col}, 'start of month', printf('-%d month', (strftime('%m', {col}) - 1) % 3))",
}
# The grains a generic sqlglot parse refuses (issue #19: "Error parsing near ')'").
REFUSED_GENERICALLY = {
    "P1W", "P3M", "P0.25Y", "P1W/1970-01-03T00:00:00Z", "P1W/1970-01-04T00:00:00Z", "1969-12-28T00:00:00Z/P1W",
    "1969-12-29T00:00:00Z/P1W",
}
SECONDS = {"PT5S": 5, "PT30S": 30}
MINUTES = {"PT5M": 5, "PT10M": 10, "PT15M": 15, "PT30M": 30, "PT0.5H": 30}


def truncate(moment: dt.datetime, grain: str | None) -> dt.datetime:
    """What each grain makes of a UTC time, computed in Python."""
    if grain is None:
        return moment
    if grain == "PT1S":
        return moment.replace(microsecond=0)
    if grain in SECONDS:
        return moment.replace(second=moment.second - moment.second % SECONDS[grain], microsecond=0)
    if grain == "PT1M":
        return moment.replace(second=0, microsecond=0)
    if grain in MINUTES:
        return moment.replace(minute=moment.minute - moment.minute % MINUTES[grain], second=0, microsecond=0)
    if grain == "PT1H":
        return moment.replace(minute=0, second=0, microsecond=0)
    if grain == "PT6H":
        return moment.replace(hour=moment.hour - moment.hour % 6, minute=0, second=0, microsecond=0)
    day = moment.replace(hour=0, minute=0, second=0, microsecond=0)
    if grain == "P1D":
        return day
    if grain in ("P1W", "1969-12-28T00:00:00Z/P1W"):  # weeks starting on Sunday
        return day - dt.timedelta(days=(day.weekday() + 1) % 7)
    if grain == "1969-12-29T00:00:00Z/P1W":  # starting on Monday
        return day - dt.timedelta(days=day.weekday())
    if grain == "P1W/1970-01-03T00:00:00Z":  # ending on Saturday: that Saturday
        return day + dt.timedelta(days=(5 - day.weekday()) % 7)
    if grain == "P1W/1970-01-04T00:00:00Z":  # ending on Sunday
        return day + dt.timedelta(days=(6 - day.weekday()) % 7)
    if grain == "P1M":
        return day.replace(day=1)
    if grain in ("P3M", "P0.25Y"):
        return day.replace(day=1, month=day.month - (day.month - 1) % 3)
    assert grain == "P1Y"
    return day.replace(month=1, day=1)


def as_text(value: Any) -> str:
    """A grain's value as SQLite's text (the bare column comes back as an aware datetime)."""
    if isinstance(value, dt.datetime):
        return value.astimezone(dt.UTC).strftime("%Y-%m-%d %H:%M:%S")
    return str(value)


@pytest.fixture(scope="module")
def created(shared_emulator: Emulator) -> list[dt.datetime]:
    return [dt.datetime.fromisoformat(j["created_at"]).astimezone(dt.UTC).replace(tzinfo=None) for j in raw_list(shared_emulator, "/jobs")]


@pytest.mark.parametrize("grain", list(GRAINS), ids=str)
def test_every_time_grain_parses_as_sqlite_and_groups_api_timestamps(engine: Engine, created: list[dt.datetime], grain: str | None) -> None:
    expression = GRAINS[grain].format(col="created_at")
    written = f"SELECT {expression} AS t, count(*) AS n FROM Jobs GROUP BY 1 ORDER BY 1"
    # Superset parses with the dialect SQLGLOT_DIALECTS gives our engine, and SQL Lab runs the SQL it regenerates.
    (regenerated,) = sqlglot.transpile(written, read=SQLGLOT_DIALECT, write=SQLGLOT_DIALECT)
    expected = Counter(truncate(c, grain).strftime("%Y-%m-%d %H:%M:%S") for c in created)
    with engine.connect() as conn:
        for sql in (written, regenerated):
            assert {as_text(t): n for t, n in conn.execute(text(sql))} == dict(expected), sql


def test_the_generic_parser_refuses_the_week_and_quarter_grains() -> None:
    """Why the dialect must be registered: without it Superset parses generically, and these fail."""
    refused = set()
    for grain, expression in GRAINS.items():
        sql = f"SELECT {expression.format(col='created_at')} AS t FROM Jobs"
        sqlglot.parse_one(sql, dialect=SQLGLOT_DIALECT)
        try:
            sqlglot.parse_one(sql)
        except sqlglot.errors.ParseError:
            refused.add(grain)
    assert refused == REFUSED_GENERICALLY


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
