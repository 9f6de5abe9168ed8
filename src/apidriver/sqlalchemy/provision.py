"""Provisioning for SQLAlchemy's dialect suite (``sqlalchemy.testing.suite``), backends ``cloudconvert`` and ``api``.

SQLAlchemy's test plugin imports this module through
``Dialect.load_provisioning`` and looks its hooks up by the URL's backend
name, so the SQLite hooks it ships (for the backend ``sqlite``) never apply
here. The database the suite works in is the local part of each connection:
its tables are local tables (docs/querying.md, "Local tables and
transactions"). Each DB-API connection is its own in-memory database, so the
test engines keep one connection per thread (``SingletonThreadPool``), as
SQLAlchemy's ``sqlite://`` engines do: the suite's tables, created on one
checkout, are there on the next. Only the test plugin imports this module.
"""

from __future__ import annotations

import os
import tempfile
from typing import Any

from sqlalchemy import event, pool
from sqlalchemy.engine import URL, Engine
from sqlalchemy.testing import config, provision
from sqlalchemy.testing.provision import (
    create_db,
    drop_db,
    follower_url_from_main,
    post_configure_engine,
    stop_test_class_outside_fixtures,
    temp_table_keyword_args,
    update_db_opts,
)

BACKENDS = ("cloudconvert", "api")
# Hooks that SQLAlchemy 1.4's test plugin does not have (an ImportError here would drop every hook).
post_configure_testing_engine: Any = getattr(provision, "post_configure_testing_engine", None)
upsert: Any = getattr(provision, "upsert", None)


@update_db_opts.for_db(*BACKENDS)
def _update_db_opts(db_url: URL, db_opts: dict[str, Any], options: Any = None) -> None:
    """One DB-API connection per thread: the suite's tables live in that connection's database."""
    db_opts["poolclass"] = pool.SingletonThreadPool


@follower_url_from_main.for_db(*BACKENDS)
def _follower_url_from_main(url: URL, ident: str) -> URL:
    """Every connection already has a database of its own: followers (xdist workers) use the same URL."""
    return url


@create_db.for_db(*BACKENDS)
def _create_db(cfg: Any, eng: Engine, ident: str) -> None:
    """Nothing to create: a connection's database exists as soon as it connects."""


@drop_db.for_db(*BACKENDS)
def _drop_db(cfg: Any, eng: Engine, ident: str) -> None:
    """Nothing to drop: a connection's database goes with it."""


def _schema_file(engine: Engine, follower_ident: str | None) -> str:
    name = f"apidriver_{follower_ident or 'main'}_{os.getpid()}_test_schema.db"
    return os.path.join(tempfile.gettempdir(), name)


@post_configure_engine.for_db(*BACKENDS)
def _post_configure_engine(url: URL, engine: Engine, follower_ident: str | None) -> None:
    """The suite's second schema, ``test_schema``: a database file attached to each connection
    (as SQLAlchemy does for SQLite), removed when the engine is disposed."""
    path = _schema_file(engine, follower_ident)

    @event.listens_for(engine, "connect")
    def attach(dbapi_connection: Any, connection_record: Any) -> None:
        cursor = dbapi_connection.cursor()
        cursor.execute("ATTACH DATABASE ? AS test_schema", (path,))
        cursor.close()

    @event.listens_for(engine, "engine_disposed")
    def remove(engine: Engine) -> None:
        if os.path.exists(path):
            os.remove(path)


def _post_configure_testing_engine(url: URL, engine: Engine, options: dict[str, Any], scope: str) -> None:
    """The suite's ``sqlite_savepoint`` and ``sqlite_share_pool`` options, as for SQLite.

    ``sqlite_savepoint``: BEGIN sent by SQLAlchemy, the DB-API in autocommit,
    so that SAVEPOINT works. ``sqlite_share_pool``: a new test engine shares
    the main engine's connection (and so its tables).
    """
    if options.get("sqlite_savepoint"):

        @event.listens_for(engine, "connect")
        def autocommit(dbapi_connection: Any, connection_record: Any) -> None:
            dbapi_connection.isolation_level = None

        @event.listens_for(engine, "begin")
        def begin(conn: Any) -> None:
            conn.exec_driver_sql("BEGIN")

    if options.get("sqlite_share_pool") and hasattr(engine.pool, "_transfer_from"):
        options["use_reaper"] = False
        engine.pool._transfer_from(config.db.pool)


if post_configure_testing_engine is not None:
    post_configure_testing_engine.for_db(*BACKENDS)(_post_configure_testing_engine)


@stop_test_class_outside_fixtures.for_db(*BACKENDS)
def _stop_test_class_outside_fixtures(config: Any, db: Engine, cls: Any) -> None:
    """A fresh connection (and so an empty database) for each test class, as for ``sqlite://``."""
    db.dispose()


@temp_table_keyword_args.for_db(*BACKENDS)
def _temp_table_keyword_args(cfg: Any, eng: Engine) -> dict[str, Any]:
    return {"prefixes": ["TEMPORARY"]}


def _upsert(
    cfg: Any,
    table: Any,
    returning: Any,
    *,
    set_lambda: Any = None,
    sort_by_parameter_order: bool = False,
    index_elements: Any = None,
) -> Any:
    """SQLite's ``INSERT ... ON CONFLICT``, which local tables have."""
    from sqlalchemy.dialects.sqlite import insert

    stmt = insert(table)
    if set_lambda:
        stmt = stmt.on_conflict_do_update(set_=set_lambda(stmt.excluded))
    else:
        stmt = stmt.on_conflict_do_nothing()
    return stmt.returning(*returning, sort_by_parameter_order=sort_by_parameter_order)


if upsert is not None:
    upsert.for_db(*BACKENDS)(_upsert)
