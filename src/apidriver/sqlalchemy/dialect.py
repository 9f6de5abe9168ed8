"""The SQLAlchemy dialects ``api://`` and ``cloudconvert://``.

Our SQL engine is SQLite, so the dialects subclass SQLAlchemy's SQLite
dialect: Core and the ORM compile to SQLite SQL, which the DB-API module
runs. What differs from a SQLite file is small and lives here:

- the URL: connection properties in the query string, the API key hidden
  (:mod:`.urls`);
- types: timestamps are aware UTC datetimes both ways (:mod:`.types`);
- reflection: foreign keys, column and table descriptions come from the
  ``sys_*`` tables, since SQLite cannot report them for virtual tables, and
  virtual tables have no indexes;
- pooling: a ``QueuePool``, since each DB-API connection is an independent
  API client, usable by one thread at a time;
- transactions: as with pysqlite, SQLAlchemy never sends BEGIN; the DB-API
  opens a transaction before a change to a local table, and the AUTOCOMMIT
  isolation level is the DB-API's ``isolation_level = None``.

``cloudconvert+apidriver://`` and ``api+apidriver://`` name the same dialects
(SQLAlchemy's test plugin writes URLs that way); SQLAlchemy's dialect suite
finds ``provision.py`` and ``requirements.py`` beside this module.

The dialect knows nothing of HTTP.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any, cast

from sqlalchemy import exc, pool
from sqlalchemy import types as sqltypes
from sqlalchemy.dialects.sqlite.base import (
    SQLiteCompiler,
    SQLiteDialect,
    SQLiteExecutionContext,
)
from sqlalchemy.engine import URL, Engine

from .compat import SQLALCHEMY_1, reflection_cache
from .types import UTCDateTime
from .urls import parse

if TYPE_CHECKING:
    from sqlalchemy.engine.interfaces import (
        ReflectedColumn,
        ReflectedForeignKeyConstraint,
    )

__all__ = ["APIDialect", "CloudConvertDialect"]

# SQLAlchemy's SQLite dialect is untyped; its methods are called through this alias.
_SQLite: Any = SQLiteDialect


def _regexp(pattern: str | None, value: Any) -> bool | None:
    """SQLite's REGEXP function, which ``ColumnOperators.regexp_match`` compiles to."""
    if pattern is None or value is None:
        return None
    return re.search(pattern, str(value)) is not None


class APIExecutionContext(SQLiteExecutionContext):
    """Primary keys the API assigned, for INSERTs that did not ask for them with RETURNING.

    The ORM inserts an object whose key the server assigns (``Jobs``,
    ``Webhooks``) without RETURNING unless the key column is marked as
    server-generated; it then takes the key from ``inserted_primary_key``,
    which would be empty. The DB-API cursor knows what the API created
    (``cursor.created_rows``), so the keys are filled from there.
    """

    def _setup_ins_pk_from_empty(self) -> Any:
        return self._with_created_keys(super()._setup_ins_pk_from_empty())  # type: ignore[no-untyped-call]

    def _setup_ins_pk_from_lastrowid(self) -> Any:
        return self._with_created_keys(super()._setup_ins_pk_from_lastrowid())  # type: ignore[no-untyped-call]

    def _with_created_keys(self, rows: list[Any]) -> list[Any]:
        created = getattr(self.cursor, "created_rows", None) or []
        table = getattr(self.compiled, "statement", None)
        table = getattr(table, "table", None)
        if not created or table is None:
            return rows
        keys = [c.name for c in table.primary_key]
        filled = []
        for index, row in enumerate(rows):
            made = created[index] if index < len(created) else None
            if made is None or row is None:
                filled.append(row)
                continue
            filled.append(tuple(v if v is not None else made.get(k) for v, k in zip(row, keys)))
        return filled


class APICompiler(SQLiteCompiler):
    """``RETURNING`` on SQLAlchemy 1.4, whose SQLite compiler lacks it (SQLite has it since 3.35).

    The ORM needs it to get what the API assigned (ids, secrets, timestamps)
    in the INSERT itself; 2.x's SQLite compiler already renders it.
    """

    if SQLALCHEMY_1:

        def returning_clause(self, stmt: Any, returning_cols: Any, **kw: Any) -> str:
            from sqlalchemy.sql import expression

            untyped: Any = self  # 1.4's compiler is untyped
            columns = [
                untyped._label_returning_column(stmt, c, fallback_label_name=c._non_anon_label)
                for c in getattr(expression, "_select_iterables")(returning_cols)
            ]
            return "RETURNING " + ", ".join(columns)


class APIDialect(SQLiteDialect):
    """``api:///?Profile=...&ProfileSettings=...``: any profile, properties in the query string."""

    # The SQL is SQLite's: keeping the name lets @compiles(..., "sqlite"),
    # with_variant(..., "sqlite") and sqlite_* options apply here too.
    name = "sqlite"
    driver = "apidriver"
    supports_statement_cache = True
    default_paramstyle = "qmark"
    # Reflected comments are the descriptions of tables and columns. Comments
    # are "inline" so that DDL never emits COMMENT ON, which SQLite lacks.
    supports_comments = True
    inline_comments = True

    profile: str | None = None
    """The profile a dialect name implies (None: the URL's ``Profile``)."""

    statement_compiler = APICompiler
    if SQLALCHEMY_1:
        implicit_returning = True
        full_returning = True

    colspecs = {**SQLiteDialect.colspecs, sqltypes.DateTime: UTCDateTime}
    execution_ctx_cls = APIExecutionContext

    @classmethod
    def import_dbapi(cls) -> Any:
        import apidriver

        return apidriver

    if SQLALCHEMY_1:
        # SQLAlchemy 1.4 calls dbapi() where 2.x calls import_dbapi(); 2.x warns if dbapi() exists.
        dbapi = classmethod(lambda cls: cls.import_dbapi())  # type: ignore[assignment,unused-ignore]
        _isolation_lookup: Any = {**_SQLite._isolation_lookup, "AUTOCOMMIT": None}

    @property
    def _dbapi(self) -> Any:
        """The DB-API module (``loaded_dbapi`` on SQLAlchemy 2.x, ``dbapi`` on 1.4)."""
        return self.dbapi

    @classmethod
    def get_pool_class(cls, url: URL) -> type[pool.Pool]:
        """A ``QueuePool``: connections are independent API clients worth reusing.

        SQLite's dialect picks ``SingletonThreadPool``/``NullPool`` for its
        in-memory and file databases; ours are neither. A DB-API connection
        may be used by one thread at a time (``threadsafety = 1``), which is
        exactly what a checkout from a queue gives, and reusing it keeps its
        HTTP connections alive. ``rollback()`` on return costs nothing.
        """
        return pool.QueuePool

    def create_connect_args(self, url: URL) -> tuple[list[Any], dict[str, Any]]:
        """Keyword properties for ``apidriver.connect``; bad ones fail here, before any connect."""
        from ..connection import settings_for

        parsed = parse(url, self.profile)
        try:
            settings_for(None, parsed.properties)
        except self._dbapi.Error as error:
            raise exc.ArgumentError(f"Bad {url.drivername}:// URL: {error}") from None
        return [], parsed.properties

    @classmethod
    def engine_created(cls, engine: Engine) -> None:
        """Give the engine the URL with the API key in its password, where SQLAlchemy hides it."""
        engine.url = parse(engine.url, cls.profile).url

    def _get_server_version_info(self, connection: Any) -> tuple[int, ...]:
        return tuple(self._dbapi.sqlite_version_info)

    def on_connect(self) -> Any:
        def register(dbapi_connection: Any) -> None:
            dbapi_connection.sqlite.create_scalar_function("regexp", _regexp, 2, deterministic=True)

        return register

    def get_isolation_level_values(self, dbapi_connection: Any) -> list[Any]:
        """SQLite's levels, and AUTOCOMMIT (local tables commit at once; API writes always do)."""
        return [*_SQLite.get_isolation_level_values(self, dbapi_connection), "AUTOCOMMIT"]

    def set_isolation_level(self, dbapi_connection: Any, level: Any) -> None:
        """As pysqlite's dialect does: AUTOCOMMIT is the DB-API's ``isolation_level = None``."""
        if level == "AUTOCOMMIT":
            dbapi_connection.isolation_level = None
        else:
            dbapi_connection.isolation_level = ""
            super().set_isolation_level(dbapi_connection, level)

    def detect_autocommit_setting(self, dbapi_conn: Any) -> bool:
        return bool(dbapi_conn.isolation_level is None)

    def do_ping(self, dbapi_connection: Any) -> bool:
        """One small request (``Connection.ping``): a wrong key or an unreachable API fails here.

        ``SELECT 1`` would send nothing, so "test connection" buttons (Superset)
        and ``pool_pre_ping`` would pass with a bad key. A closed connection
        answers False (the pool replaces it); API errors propagate.
        """
        try:
            dbapi_connection.ping()
        except self._dbapi.Error as error:
            if self.is_disconnect(error, dbapi_connection, None):
                return False
            raise
        return True

    def is_disconnect(self, e: Exception, connection: Any, cursor: Any) -> bool:
        """Only a closed DB-API connection is gone; API errors say nothing of the connection."""
        return isinstance(e, self._dbapi.InterfaceError) and "connection is closed" in str(e)

    # -- reflection: what PRAGMAs cannot say about virtual tables ----------------------------------

    def _described_columns(self, connection: Any, table_name: str) -> dict[str, tuple[str, str | None, bool]]:
        rows = connection.exec_driver_sql(
            "SELECT column_name, type, description, api_assigned FROM sys_tablecolumns WHERE lower(table_name) = lower(?)",
            (table_name,),
        )
        return {name: (type_, description, bool(assigned)) for name, type_, description, assigned in rows}

    @reflection_cache
    def get_columns(self, connection: Any, table_name: str, schema: str | None = None, **kw: Any) -> list[ReflectedColumn]:
        """SQLite's columns, with the driver's descriptions as comments and precise types.

        TIMESTAMP columns reflect as ``TIMESTAMP(timezone=True)`` (they give
        aware datetimes, and pandas then makes tz-aware columns) and JSON ones
        as the generic ``JSON``. Columns the API assigns on INSERT (ids,
        timestamps, ...) get a server default.
        """
        columns = _SQLite.get_columns(self, connection, table_name, schema, **kw)
        described = self._described_columns(connection, table_name)
        out: list[ReflectedColumn] = []
        for found in columns:
            column = cast("ReflectedColumn", dict(found))  # a copy: SQLite's list may sit in the reflection cache
            declared, description, assigned = described.get(column["name"], (None, None, False))
            if description:
                column["comment"] = description
            if assigned:
                # A server default tells SQLAlchemy the API fills this column on
                # INSERT, so it asks for it with RETURNING (the DB-API returns
                # what the API created). The text is never executed: nothing
                # here runs DDL.
                column["default"] = "NULL"
            if declared == "TIMESTAMP":
                column["type"] = sqltypes.TIMESTAMP(timezone=True)
            elif declared == "JSON":
                column["type"] = sqltypes.JSON()
            out.append(column)
        return out

    @reflection_cache
    def get_foreign_keys(
        self, connection: Any, table_name: str, schema: str | None = None, **kw: Any
    ) -> list[ReflectedForeignKeyConstraint]:
        """The references the profile declares (``PRAGMA foreign_key_list`` is empty for virtual tables)."""
        rows = connection.exec_driver_sql(
            "SELECT column_name, referenced_table, referenced_column FROM sys_foreignkeys "
            "WHERE lower(table_name) = lower(?)",
            (table_name,),
        ).fetchall()
        if not rows:
            return list(_SQLite.get_foreign_keys(self, connection, table_name, schema, **kw))
        return [
            {
                "name": None,
                "constrained_columns": [column],
                "referred_schema": schema,
                "referred_table": table,
                "referred_columns": [referenced],
                "options": {},
            }
            for column, table, referenced in rows
        ]

    @reflection_cache
    def get_table_comment(self, connection: Any, table_name: str, schema: str | None = None, **kw: Any) -> Any:
        """The table's description from ``sys_tables``."""
        text = connection.exec_driver_sql(
            "SELECT description FROM sys_tables WHERE lower(name) = lower(?)", (table_name,)
        ).scalar()
        return {"text": text or None}

    def _is_virtual(self, connection: Any, table_name: str, schema: str | None, **kw: Any) -> bool:
        sql = _SQLite._get_table_sql(self, connection, table_name, schema=schema, **kw)
        return bool(sql) and sql.lstrip().upper().startswith("CREATE VIRTUAL TABLE")

    @reflection_cache
    def get_indexes(self, connection: Any, table_name: str, schema: str | None = None, **kw: Any) -> Any:
        """None for virtual tables (SQLite lists a phantom ``sqlite_butoindex`` for their key)."""
        if self._is_virtual(connection, table_name, schema, **kw):
            return []
        return _SQLite.get_indexes(self, connection, table_name, schema, **kw)

    @reflection_cache
    def get_unique_constraints(self, connection: Any, table_name: str, schema: str | None = None, **kw: Any) -> Any:
        if self._is_virtual(connection, table_name, schema, **kw):
            return []
        return _SQLite.get_unique_constraints(self, connection, table_name, schema, **kw)


class CloudConvertDialect(APIDialect):
    """``cloudconvert://:API_KEY@?BaseURL=...``: the CloudConvert profile."""

    supports_statement_cache = True
    profile = "CloudConvert"


dialect = APIDialect
