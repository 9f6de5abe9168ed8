"""What PEP 249's and SQLAlchemy's shared suites expect, one test per gap they found (issue #21).

Local tables (any table that is not an API or sys table) are SQLite's own:
transactions, lastrowid, rowcount and description behave as with sqlite3.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from typing import Any

import pytest

import apidriver
from apidriver.emulator import Emulator

from .conftest import connect_to

WEBHOOK = ("https://example.com/hook", '["job.finished"]')


@pytest.fixture
def fresh(emulator: Emulator) -> Iterator[apidriver.Connection]:
    """A connection to an emulator of this test alone (for tests that write to the API)."""
    connection = connect_to(emulator)
    yield connection
    connection.close()


# -- rowcount, description, type codes --------------------------------------------------------------


def test_rowcount_after_ddl_is_minus_one_not_the_last_inserts_count(conn: apidriver.Connection) -> None:
    cur = conn.cursor()
    cur.execute("CREATE TEMP TABLE a (x)")
    cur.executemany("INSERT INTO a VALUES (?)", [(1,), (2,), (3,)])
    assert cur.rowcount == 3
    cur.execute("CREATE TEMP TABLE b (x)")
    assert cur.rowcount == -1
    fresh_cursor = conn.cursor()
    fresh_cursor.execute("DROP TABLE b")
    assert fresh_cursor.rowcount == -1
    cur.execute("UPDATE a SET x = x + 1 WHERE x > 1")
    assert cur.rowcount == 2
    cur.execute("SELECT * FROM a")
    assert cur.rowcount == -1


def test_rowcount_of_dml_with_returning_is_known_once_its_rows_are_read(conn: apidriver.Connection) -> None:
    cur = conn.cursor()
    cur.execute("CREATE TEMP TABLE r (x)")
    cur.execute("INSERT INTO r VALUES (1), (2), (3) RETURNING x")
    assert cur.rowcount == -1  # SQLite counts the changes when the statement ends, as with sqlite3
    assert cur.fetchall() == [(1,), (2,), (3,)]
    assert cur.rowcount == 3


def test_description_follows_a_table_recreated_with_other_columns(conn: apidriver.Connection) -> None:
    cur = conn.cursor()
    cur.execute("CREATE TEMP TABLE tt (x INT)")
    cur.execute("INSERT INTO tt VALUES (1)")
    cur.execute("SELECT * FROM tt")
    assert [d[0] for d in cur.description] == ["x"] and cur.fetchall() == [(1,)]
    cur.execute("DROP TABLE tt")
    cur.execute("CREATE TEMP TABLE tt (x TEXT, y BLOB)")
    cur.execute("INSERT INTO tt VALUES ('a', x'00')")
    cur.execute("SELECT * FROM tt")  # the same SQL text: APSW's cached statement
    assert [(d[0], d[1]) for d in cur.description] == [("x", "TEXT"), ("y", "BLOB")]
    assert cur.fetchall() == [("a", b"\x00")]


def test_description_follows_alter_table_add_column_also_without_rows(conn: apidriver.Connection) -> None:
    cur = conn.cursor()
    cur.execute("CREATE TEMP TABLE grow (x INT)")
    cur.execute("SELECT * FROM grow")
    assert [d[0] for d in cur.description] == ["x"]
    cur.execute("ALTER TABLE grow ADD COLUMN y TEXT")
    cur.execute("SELECT * FROM grow")  # no row: the columns still follow the schema
    assert [d[0] for d in cur.description] == ["x", "y"] and cur.fetchall() == []
    cur.execute("INSERT INTO grow VALUES (1, 'one')")
    cur.execute("ALTER TABLE grow ADD COLUMN z REAL")
    cur.execute("SELECT * FROM grow")
    assert [d[0] for d in cur.description] == ["x", "y", "z"] and cur.fetchall() == [(1, "one", None)]


@pytest.mark.parametrize(
    ("declared", "kind"),
    [
        ("VARCHAR(20)", apidriver.STRING),
        ("CHARACTER(5)", apidriver.STRING),
        ("CLOB", apidriver.STRING),
        ("INT", apidriver.NUMBER),
        ("BIGINT", apidriver.NUMBER),
        ("DECIMAL(10,2)", apidriver.NUMBER),
        ("FLOAT", apidriver.NUMBER),
        ("DOUBLE PRECISION", apidriver.NUMBER),
        ("BOOLEAN", apidriver.NUMBER),
        ("BLOB", apidriver.BINARY),
        ("TIME", apidriver.DATETIME),
        ("DATE", apidriver.DATETIME),
        ("DATETIME", apidriver.DATETIME),
        ("TIMESTAMP", apidriver.DATETIME),
    ],
)
def test_type_codes_of_declared_types_follow_sqlites_affinity(conn: apidriver.Connection, declared: str, kind: Any) -> None:
    cur = conn.cursor()
    cur.execute(f"CREATE TEMP TABLE typed (c {declared})")
    try:
        cur.execute("SELECT c FROM typed")
        code = cur.description[0][1]
        assert code == kind
        others = [k for k in (apidriver.STRING, apidriver.BINARY, apidriver.NUMBER, apidriver.DATETIME) if k is not kind]
        assert all(code != k for k in others)
    finally:
        cur.execute("DROP TABLE typed")


def test_type_codes_of_api_columns_are_unchanged(conn: apidriver.Connection) -> None:
    cur = conn.cursor().execute("SELECT id, created_at, tasks FROM Jobs LIMIT 1")
    assert [d[1] for d in cur.description] == ["TEXT", "TIMESTAMP WITH TIME ZONE", "JSON"]
    assert cur.description[1][1] == apidriver.DATETIME and cur.description[2][1] == apidriver.STRING


def test_exceptions_are_attributes_of_the_connection(conn: apidriver.Connection) -> None:
    for name in (
        "Warning", "Error", "InterfaceError", "DatabaseError", "DataError", "OperationalError",
        "IntegrityError", "InternalError", "ProgrammingError", "NotSupportedError",
    ):  # fmt: skip
        assert getattr(conn, name) is getattr(apidriver, name)
    with pytest.raises(conn.ProgrammingError):
        conn.cursor().execute("SELECT * FROM no_such_table")


# -- local tables -----------------------------------------------------------------------------------


def test_lastrowid_after_an_insert_into_a_local_table(conn: apidriver.Connection) -> None:
    cur = conn.cursor()
    cur.execute("CREATE TABLE lookup (id INTEGER PRIMARY KEY, name TEXT)")
    cur.execute("INSERT INTO lookup (name) VALUES ('a')")
    assert cur.lastrowid == 1
    cur.execute("INSERT INTO lookup (id, name) VALUES (41, 'b')")
    assert cur.lastrowid == 41
    cur.execute("SELECT * FROM lookup")
    assert cur.lastrowid == 41  # unchanged by a statement that inserts nothing


def test_plain_create_table_makes_a_local_table_of_this_connection(shared_emulator: Emulator) -> None:
    one, other = connect_to(shared_emulator), connect_to(shared_emulator)
    try:
        cur = one.cursor()
        cur.execute("CREATE TABLE lookup (status TEXT PRIMARY KEY, label TEXT)")
        cur.executemany("INSERT INTO lookup VALUES (?, ?)", [("finished", "done"), ("error", "failed")])
        cur.execute("CREATE VIEW labels AS SELECT label FROM lookup")
        cur.execute("CREATE INDEX lookup_label ON lookup (label)")
        rows = cur.execute(
            "SELECT l.label, count(*) FROM Jobs j JOIN lookup l ON l.status = j.status GROUP BY l.label ORDER BY 1"
        ).fetchall()
        expected = cur.execute(
            "SELECT CASE status WHEN 'finished' THEN 'done' ELSE 'failed' END, count(*) FROM Jobs "
            "WHERE status IN ('finished', 'error') GROUP BY 1 ORDER BY 1"
        ).fetchall()
        assert rows == expected and rows
        assert ("lookup", "table") in cur.execute("SELECT name, type FROM main.sqlite_master").fetchall()
        with pytest.raises(apidriver.ProgrammingError, match="no such table"):
            other.cursor().execute("SELECT * FROM lookup")  # each connection is its own database
    finally:
        one.close()
        other.close()


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE Users (a)",
        "CREATE TEMP TABLE webhooks (a)",
        "CREATE VIEW sys_tables AS SELECT 1",
        "DROP TABLE Jobs",
        "ALTER TABLE Tasks ADD COLUMN x",
        "CREATE INDEX i ON Jobs (tag)",
        "CREATE TRIGGER t AFTER INSERT ON Jobs BEGIN SELECT 1; END",
        "CREATE VIRTUAL TABLE x USING apidriver()",
    ],
)
def test_api_and_sys_tables_still_refuse_ddl(conn: apidriver.Connection, sql: str) -> None:
    """Refused by the authorizer, or by SQLite itself for virtual tables (triggers: ProgrammingError)."""
    before = conn.cursor().execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall()
    with pytest.raises((apidriver.NotSupportedError, apidriver.ProgrammingError)) as raised:
        conn.cursor().execute(sql)
    assert any(s in str(raised.value) for s in ("virtual table", "cannot be created, dropped, altered", "own tables only"))
    assert conn.cursor().execute("SELECT type, name, sql FROM sqlite_master ORDER BY name").fetchall() == before
    assert conn.cursor().execute("SELECT count(*) FROM sqlite_temp_master").fetchone() == (0,)


def test_the_cache_module_is_among_the_reserved_modules() -> None:
    from apidriver import connection
    from apidriver.cache import attach

    assert connection.CACHE_MODULE == attach.CACHE_MODULE  # kept apart so that connecting loads no SQLAlchemy


def test_a_temp_table_cannot_be_renamed_to_hide_an_api_table(conn: apidriver.Connection) -> None:
    cur = conn.cursor()
    cur.execute("CREATE TEMP TABLE scratch (a)")
    with pytest.raises(apidriver.NotSupportedError, match="cannot be shadowed"):
        cur.execute("ALTER TABLE temp.scratch RENAME TO Jobs")
    assert cur.execute("SELECT name FROM sqlite_temp_master").fetchall() == [("scratch",)]
    cur.execute("ALTER TABLE temp.scratch RENAME TO scratch2")  # other names are fine
    assert cur.execute("SELECT name FROM sqlite_temp_master").fetchall() == [("scratch2",)]
    assert cur.execute("SELECT count(*) FROM Jobs").fetchone()[0] > 0


# -- transactions -----------------------------------------------------------------------------------


def test_rollback_undoes_changes_to_local_tables(conn: apidriver.Connection) -> None:
    cur = conn.cursor()
    cur.execute("CREATE TEMP TABLE notes (x)")
    assert not conn.in_transaction  # DDL opens no transaction, as with sqlite3
    cur.execute("INSERT INTO notes VALUES (1)")
    assert conn.in_transaction
    conn.commit()
    assert not conn.in_transaction
    cur.execute("INSERT INTO notes VALUES (2)")
    cur.execute("DELETE FROM notes WHERE x = 1")
    conn.rollback()
    assert cur.execute("SELECT x FROM notes").fetchall() == [(1,)]
    assert not conn.in_transaction


def test_a_mixed_transaction_rolls_back_the_local_part_only(fresh: apidriver.Connection) -> None:
    cur = fresh.cursor()
    cur.execute("CREATE TABLE sent (webhook_id TEXT)")
    cur.execute("INSERT INTO Webhooks (url, events) VALUES (?, ?) RETURNING id", WEBHOOK)
    (created,) = cur.fetchone()
    cur.execute("INSERT INTO sent VALUES (?)", (created,))
    fresh.rollback()
    assert cur.execute("SELECT count(*) FROM sent").fetchone() == (0,)  # the local row is undone
    assert cur.execute("SELECT id FROM Webhooks WHERE id = ?", (created,)).fetchall() == [(created,)]  # the API's stays


def test_autocommit_commits_local_changes_at_once(conn: apidriver.Connection) -> None:
    conn.autocommit = True
    assert conn.isolation_level is None
    cur = conn.cursor()
    cur.execute("CREATE TEMP TABLE auto (x)")
    cur.execute("INSERT INTO auto VALUES (1)")
    assert not conn.in_transaction
    conn.rollback()
    assert cur.execute("SELECT x FROM auto").fetchall() == [(1,)]


def test_setting_isolation_level_none_commits_what_is_open(conn: apidriver.Connection) -> None:
    cur = conn.cursor()
    cur.execute("CREATE TEMP TABLE pending (x)")
    cur.execute("INSERT INTO pending VALUES (1)")
    conn.isolation_level = None
    conn.rollback()
    assert cur.execute("SELECT x FROM pending").fetchall() == [(1,)]


def test_a_bad_isolation_level_is_refused_with_the_valid_ones(conn: apidriver.Connection) -> None:
    with pytest.raises(apidriver.ProgrammingError, match="isolation_level must be None .* 'IMMEDIATE'"):
        conn.isolation_level = "SERIALIZABLE"
    assert conn.isolation_level == ""


def test_api_writes_open_no_transaction(fresh: apidriver.Connection) -> None:
    fresh.cursor().execute("INSERT INTO Webhooks (url, events) VALUES (?, ?)", WEBHOOK)
    assert not fresh.in_transaction


# -- SQLAlchemy: what pandas and metadata.create_all need ------------------------------------------


def _engine(emulator: Emulator, **options: Any) -> Any:
    from sqlalchemy import create_engine

    from .sqlalchemy.conftest import url_for

    return create_engine(url_for(emulator), **options)


def test_metadata_create_all_and_inserted_primary_key(shared_emulator: Emulator) -> None:
    from sqlalchemy import Column, Integer, MetaData, String, Table, insert, select

    metadata = MetaData()
    lookup = Table("lookup", metadata, Column("id", Integer, primary_key=True), Column("name", String(20)))
    engine = _engine(shared_emulator, pool_size=1, max_overflow=0)
    try:
        metadata.create_all(engine)
        with engine.begin() as connection:
            result = connection.execute(insert(lookup).values(name="a"))
            assert result.inserted_primary_key == (1,)
        with engine.connect() as connection:
            connection.execute(insert(lookup).values(name="b"))
            connection.rollback()
            assert connection.execute(select(lookup.c.name)).scalars().all() == ["a"]
    finally:
        engine.dispose()


def test_pandas_to_sql_makes_a_local_table_to_join(shared_emulator: Emulator) -> None:
    import pandas as pd

    engine = _engine(shared_emulator, pool_size=1, max_overflow=0)
    try:
        frame = pd.DataFrame({"status": ["finished", "error"], "label": ["done", "failed"]})
        assert frame.to_sql("status_labels", engine, index=False) == 2
        joined = pd.read_sql(
            "SELECT l.label, count(*) AS n FROM Jobs j JOIN status_labels l USING (status) GROUP BY l.label", engine
        )
        assert set(joined["label"]) <= {"done", "failed"} and joined["n"].sum() > 0
    finally:
        engine.dispose()


def test_autocommit_isolation_level_reaches_the_dbapi(shared_emulator: Emulator) -> None:
    engine = _engine(shared_emulator, pool_size=1, max_overflow=0)
    try:
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as connection:
            assert connection.connection.dbapi_connection.isolation_level is None
        with engine.connect() as connection:
            assert connection.connection.dbapi_connection.isolation_level == ""
    finally:
        engine.dispose()


def test_the_dialect_urls_with_the_driver_name(shared_emulator: Emulator) -> None:
    from sqlalchemy import create_engine, text

    from .sqlalchemy.conftest import url_for

    for scheme in ("cloudconvert", "api"):
        url = url_for(shared_emulator, scheme).replace(f"{scheme}://", f"{scheme}+apidriver://", 1)
        engine = create_engine(url)
        try:
            assert engine.dialect.driver == "apidriver"
            with engine.connect() as connection:
                assert connection.execute(text("SELECT count(*) FROM sys_tables")).scalar() >= 7
        finally:
            engine.dispose()


def test_naive_datetime_in_a_local_table_comes_back_aware_utc(shared_emulator: Emulator) -> None:
    """The documented exception to "local tables behave as SQLite's own" on SQLAlchemy (requirements.datetime)."""
    from sqlalchemy import Column, DateTime, Integer, MetaData, Table, insert, select

    metadata = MetaData()
    stamps = Table("stamps", metadata, Column("id", Integer, primary_key=True), Column("at", DateTime))
    engine = _engine(shared_emulator, pool_size=1, max_overflow=0)
    try:
        metadata.create_all(engine)
        with engine.begin() as connection:
            connection.execute(insert(stamps).values(at=dt.datetime(2024, 5, 1, 12, 0)))
            assert connection.execute(select(stamps.c.at)).scalar() == dt.datetime(2024, 5, 1, 12, 0, tzinfo=dt.timezone.utc)
    finally:
        engine.dispose()
