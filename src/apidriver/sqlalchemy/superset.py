"""The Apache Superset DB engine spec of the ``cloudconvert://`` and ``api://`` dialects.

Superset picks a spec by the URL's backend name; without one it falls back
to its generic spec, which has no time grains (charts cannot group by day or
month) and no SQLite function list. Our SQL is SQLite's and every timestamp
column holds SQLite's own UTC text (``YYYY-MM-DD HH:MM:SS``), so SQLite's
spec is right for the SQL: its time grains (``DATETIME(col, 'start of
month')`` ...), ``LIMIT`` handling and datetime literals work unchanged on
API tables. What this spec adds (the parts that need no Superset live in
:mod:`.superset_support`, tested without it):

- Superset's SQL parser reads our engine names as SQLite (it parsed them
  generically, refusing the week and quarter grains): registered in
  ``SQLGLOT_DIALECTS`` when Superset loads this module.
- The driver's errors become Superset error types with the driver's own
  message (a wrong key: "The API rejected the credentials ..."), not
  ``(builtins.NoneType) None [SQL: ...]``.
- SQL Lab's Stop cancels the statement (``Connection.interrupt()``), from
  whichever Superset process serves the Stop.

Registered through the ``superset.db_engine_specs`` entry point; only
Superset imports this module (it needs Superset installed).
"""

from __future__ import annotations

import re
import weakref
from collections.abc import Callable
from typing import Any

from flask import current_app  # type: ignore[import-not-found,unused-ignore]
from sqlglot.dialects.dialect import Dialects  # type: ignore[import-not-found,unused-ignore]
from superset.db_engine_specs.sqlite import SqliteEngineSpec  # type: ignore[import-not-found,unused-ignore]
from superset.errors import SupersetErrorType  # type: ignore[import-not-found,unused-ignore]

from .superset_support import (
    ERROR_PATTERNS,
    StopWatch,
    register_sqlglot_dialect,
    shown_message,
)

try:  # Superset 5 and later
    from superset.sql.parse import SQLGLOT_DIALECTS  # type: ignore[import-not-found,unused-ignore]
except ImportError:  # pragma: no cover - Superset 4
    from superset.sql_parse import SQLGLOT_DIALECTS  # type: ignore[import-not-found,no-redef,unused-ignore]

__all__ = ["APIDriverEngineSpec"]

# Watches of statements whose rows are still to be fetched (SQL Lab fetches after executing).
_watches: weakref.WeakKeyDictionary[Any, StopWatch] = weakref.WeakKeyDictionary()


def _metadata_says_stopped(query_id: int) -> Callable[[], bool]:
    """A check, run on the watch's thread, of whether the query's row in Superset's metadata says stopped."""
    from superset.extensions import db  # type: ignore[import-not-found,unused-ignore]
    from superset.models.sql_lab import Query  # type: ignore[import-not-found,unused-ignore]
    from superset.utils.core import QueryStatus  # type: ignore[import-not-found,unused-ignore]

    app = current_app._get_current_object()

    def stopped() -> bool:
        with app.app_context():
            try:
                status = db.session.query(Query.status).filter(Query.id == query_id).scalar()
            finally:
                db.session.remove()
        return status in (QueryStatus.STOPPED, QueryStatus.TIMED_OUT)

    return stopped


class APIDriverEngineSpec(SqliteEngineSpec):  # type: ignore[misc,unused-ignore]
    """``cloudconvert://`` and ``api://``: SQLite's spec, named for the API."""

    engine = "cloudconvert"
    engine_aliases = {"api"}
    engine_name = "CloudConvert (apidriver)"
    disable_ssh_tunneling = True  # the connection is HTTPS to the API, not a socket to tunnel
    supports_file_upload = False  # CSV upload creates tables: the API has no such thing

    metadata: dict[str, Any] = {
        **SqliteEngineSpec.metadata,
        "description": "CloudConvert API v2 (and other REST APIs) as SQL tables, through apidriver.",
        "homepage_url": "https://github.com/apidriver/apidriver",
        "pypi_packages": ["apidriver"],
        "connection_string": "cloudconvert://:API_KEY@",
        "notes": "Any connection property goes in the query string: cloudconvert://:API_KEY@?Timeout=10",
    }

    # The driver's message is shown as it is (message ""), with the error's type.
    custom_errors: dict[re.Pattern[str], tuple[str, Any, dict[str, Any]]] = {
        pattern: ("", SupersetErrorType[kind], extra) for pattern, kind, extra in ERROR_PATTERNS
    }

    @classmethod
    def _extract_error_message(cls, ex: Exception) -> str:
        """The driver's message, without SQLAlchemy's wrapping; a wrong key says where the key goes."""
        message = shown_message(ex)
        return str(super()._extract_error_message(ex)) if message is None else message

    @classmethod
    def has_implicit_cancel(cls) -> bool:
        """Stop needs no cancel request: the running statement watches its query's status (execute_with_cursor)."""
        return True

    @classmethod
    def execute_with_cursor(cls, cursor: Any, sql: str, query: Any) -> None:
        """Run a SQL Lab statement while watching whether the query is stopped, until its rows are fetched.

        SQL Lab's Stop (in any Superset process) marks the query stopped in the
        metadata database; the watch sees it within ``DB_POLL_INTERVAL_SECONDS``
        (1 s unless configured for "cloudconvert") and calls
        ``Connection.interrupt()``, so the statement ends with
        ``QueryCancelledError`` and Superset reports the query stopped.
        """
        earlier = _watches.pop(cursor, None)  # a statement whose rows were never fetched
        if earlier is not None:
            earlier.stop()
        interval = float(current_app.config.get("DB_POLL_INTERVAL_SECONDS", {}).get(cls.engine, 1))
        watch = StopWatch(_metadata_says_stopped(query.id), cursor.connection.interrupt, interval).start()
        try:
            super().execute_with_cursor(cursor, sql, query)
        except BaseException:
            watch.stop()
            raise
        _watches[cursor] = watch
        weakref.finalize(cursor, watch.stop)

    @classmethod
    def fetch_data(cls, cursor: Any, limit: int | None = None) -> list[tuple[Any, ...]]:
        """Fetch (further pages are requests too: a Stop still cancels them), then end the statement's watch."""
        watch = _watches.pop(cursor, None)
        try:
            rows: list[tuple[Any, ...]] = super().fetch_data(cursor, limit)
            return rows
        finally:
            if watch is not None:
                watch.stop()


register_sqlglot_dialect(SQLGLOT_DIALECTS, [APIDriverEngineSpec.engine, *sorted(APIDriverEngineSpec.engine_aliases)], Dialects.SQLITE)
