"""Fixtures of the history tests: a real PostgreSQL server, replica databases, live rows to compare with."""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from apidriver.emulator import Emulator
from apidriver.replica.target import Target
from apidriver.values import from_sql

from ..conftest import connect_to
from .postgres import PostgresServer, start_server

KINDS = ("sqlite", "postgresql")


@pytest.fixture(scope="session")
def postgres() -> Iterator[PostgresServer]:
    """A throw-away PostgreSQL server for the session (each xdist worker starts its own)."""
    if os.environ.get("APIDRIVER_TEST_POSTGRES") == "0":
        pytest.skip("APIDRIVER_TEST_POSTGRES=0: PostgreSQL tests skipped on request")
    server = start_server()
    yield server
    server.stop()


@pytest.fixture
def pg_url(postgres: PostgresServer) -> Iterator[str]:
    """A URL of a new, empty PostgreSQL database (dropped after the test)."""
    name = postgres.create_database()
    yield postgres.url(name)
    postgres.drop_database(name)


@pytest.fixture(params=KINDS)
def replica_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A replica database of each kind: a SQLite file, a PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'replica.sqlite'}"
    url: str = request.getfixturevalue("pg_url")
    return url


@pytest.fixture
def history_emulator(make_emulator: Callable[..., Emulator]) -> Emulator:
    """A small account (24 jobs, seed 5), no rate limit, short tasks."""
    return make_emulator(jobs=24, seed=5, rate_limit=0)


def live_rows(emulator: Emulator, table: str, columns: str = "*", json_values: bool = False) -> list[tuple[Any, ...]]:
    """``SELECT columns FROM table`` through the driver, live, sorted (JSON columns decoded with ``json_values``)."""
    conn = connect_to(emulator)
    try:
        cursor = conn.cursor().execute(f'SELECT {columns} FROM "{table}"')
        rows = cursor.fetchall()
        if json_values:
            kinds = [d[1] for d in cursor.description or ()]
            rows = [tuple(json.loads(v) if k == "JSON" and v is not None else v for k, v in zip(kinds, r)) for r in rows]
        return sorted(rows, key=repr)
    finally:
        conn.close()


SECRETS = {"Webhooks": "signing_secret"}  # not replicated unless asked for


def same_rows(emulator: Emulator, url: str, table: str, where: str = "", secrets: bool = False) -> bool:
    """Whether the replica's rows of ``table`` are the live ones (JSON compared as values on PostgreSQL,
    whose jsonb keeps its own key order; as the very text on SQLite); secret columns are NULL in the
    replica unless it keeps ``secrets``."""
    json_values = not url.startswith("sqlite")
    live = live_rows(emulator, table, json_values=json_values)
    if table in SECRETS and not secrets:
        from apidriver.profiles.cloudconvert import profile

        position = profile.table(table).index(SECRETS[table])
        live = sorted((tuple(None if i == position else v for i, v in enumerate(row)) for row in live), key=repr)
    return replica_rows(url, table, where, json_values) == live


def replica_rows(url: str, table: str, where: str = "", json_values: bool = False) -> list[tuple[Any, ...]]:
    """The replica's rows of ``table`` (its API columns), as the driver returns values (``from_sql``), sorted."""
    from apidriver.profiles.cloudconvert import profile

    spec = profile.table(table)
    target = Target(url, [spec])
    try:
        with target.read() as conn:
            sql_table = target.table(spec.name)
            statement = sa.select(*(sql_table.c[c.name] for c in spec.columns))
            if where:
                statement = statement.where(sa.text(where))
            rows = conn.execute(statement).all()
        out = [tuple(from_sql(target.from_target(c.type, v), c.type) for c, v in zip(spec.columns, r)) for r in rows]
        if json_values:
            out = [tuple(json.loads(v) if c.type == "JSON" and v is not None else v for c, v in zip(spec.columns, r)) for r in out]
        return sorted(out, key=repr)
    finally:
        target.close()


def scalar(url: str, sql: str) -> Any:
    engine = sa.create_engine(url)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()
    finally:
        engine.dispose()


def quiet(emulator: Emulator, timeout: float = 10.0) -> None:
    """Wait until the emulator has no webhook delivery in flight (failed ones update their webhook)."""
    from ..emulator.support import wait_until

    wait_until(
        lambda: not emulator.backend.outbox and not emulator.emulation.dispatcher._running,
        timeout=timeout,
        what="webhook deliveries to end",
    )
