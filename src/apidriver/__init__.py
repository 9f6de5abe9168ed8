"""apidriver: SQL over REST APIs, through DB-API 2.0 (PEP 249).

>>> import apidriver
>>> conn = apidriver.connect("Profile=CloudConvert;APIKey=...")
>>> conn.cursor().execute("SELECT id, tag FROM Jobs WHERE status = 'error'").fetchall()
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from .version import __version__

if TYPE_CHECKING:
    from .replica.report import Progress, SyncReport

apilevel = "2.0"
threadsafety = 1  # threads may share the module, not connections
paramstyle = "qmark"  # ":name" with a mapping works too


def _defer_httpx_cli() -> None:
    """Keep httpx's command line (click, rich, pygments: ~40 ms) out of ``import apidriver``.

    ``import httpx`` imports ``httpx._main`` for its ``httpx`` console script
    whenever click and rich are installed, as they are with apidriver. A
    stand-in module is put in its place before httpx is first imported; its
    ``main`` loads the real one on first call, so ``httpx.main()`` still works.
    Nothing is done if httpx was imported already.
    """
    import sys

    if "httpx" in sys.modules or "httpx._main" in sys.modules:
        return
    import types

    stand_in = types.ModuleType("httpx._main", "Stand-in: the real module is loaded by main() (see apidriver).")

    def main(*args: object, **kwargs: object) -> object:
        import importlib

        if sys.modules.get("httpx._main") is stand_in:
            del sys.modules["httpx._main"]
        real = importlib.import_module("httpx._main")
        return real.main(*args, **kwargs)

    stand_in.main = main  # type: ignore[attr-defined]
    sys.modules["httpx._main"] = stand_in


_defer_httpx_cli()

import apsw as _apsw  # noqa: E402

# The SQL engine is SQLite; SQLAlchemy's SQLite dialect reads these.
sqlite_version: str = _apsw.sqlite_lib_version()
sqlite_version_info: tuple[int, ...] = tuple(int(p) for p in sqlite_version.split("."))

from .response_cache import clear_cache  # noqa: E402
from .connection import Connection, connect  # noqa: E402
from .cursor import Cursor  # noqa: E402
from .exceptions import (  # noqa: E402
    AmbiguousWriteError,
    APIUnavailableError,
    AuthenticationError,
    BadRequestError,
    DatabaseError,
    DataError,
    Error,
    InsufficientCreditsError,
    IntegrityError,
    InterfaceError,
    InternalError,
    InvalidDataError,
    NotFoundError,
    NotSupportedError,
    OperationalError,
    PermissionDeniedError,
    ProgrammingError,
    QueryCancelledError,
    RateLimitError,
    UnexpectedResponseError,
    Warning,
)
from .typeobjects import (  # noqa: E402
    BINARY,
    DATETIME,
    NUMBER,
    ROWID,
    STRING,
    Binary,
    Date,
    DateFromTicks,
    Time,
    TimeFromTicks,
    Timestamp,
    TimestampFromTicks,
)

__all__ = [
    "BINARY",
    "DATETIME",
    "NUMBER",
    "ROWID",
    "STRING",
    "APIUnavailableError",
    "AmbiguousWriteError",
    "AuthenticationError",
    "BadRequestError",
    "Binary",
    "Connection",
    "Cursor",
    "DataError",
    "DatabaseError",
    "Date",
    "DateFromTicks",
    "Error",
    "InsufficientCreditsError",
    "IntegrityError",
    "InterfaceError",
    "InternalError",
    "InvalidDataError",
    "NotFoundError",
    "NotSupportedError",
    "OperationalError",
    "PermissionDeniedError",
    "ProgrammingError",
    "QueryCancelledError",
    "RateLimitError",
    "Time",
    "TimeFromTicks",
    "Timestamp",
    "TimestampFromTicks",
    "UnexpectedResponseError",
    "Warning",
    "__version__",
    "apilevel",
    "clear_cache",
    "connect",
    "paramstyle",
    "sqlite_version",
    "sqlite_version_info",
    "sync",
    "threadsafety",
]


def sync(
    connection: Connection | str,
    to: str | None = None,
    tables: Iterable[str] | str | None = None,
    *,
    full: bool = False,
    progress: Progress | None = None,
    secrets: bool = False,
) -> SyncReport:
    """Copy the account into the database ``to`` and keep what the API has since forgotten.

    :param connection: an open :class:`apidriver.Connection`, or a connection string (the call
        then opens and closes its own connection).
    :param to: a SQLAlchemy URL (``sqlite:///history.sqlite``, ``postgresql+psycopg://...``);
        by default ``<profile>.sqlite`` in the working directory.
    :param tables: table names (a list or ``"Jobs,Tasks"``); by default the account's data
        (every table but the operations catalogue). Derived tables come with their parent.
    :param full: read every list whole instead of only what can have changed.
    :param progress: called with each table's progress while it syncs.
    :param secrets: also copy secrets (webhook signing secrets); by default they are stored as NULL,
        and a replica that holds some from before loses them.
    :returns: per table, rows inserted, updated and newly gone, requests and seconds.
    """
    from .replica import sync as replicate  # SQLAlchemy is imported only when a sync runs

    if isinstance(connection, str):
        with connect(connection) as own:
            return replicate(own, to, tables, full=full, progress=progress, secrets=secrets)
    return replicate(connection, to, tables, full=full, progress=progress, secrets=secrets)
