"""A replica database: its SQLAlchemy engine, its schema, locked writes and value conversions.

Writes run in short transactions that hold the replica's write lock, so two
syncs into one database at once take turns and never insert a row twice:
SQLite's ``BEGIN IMMEDIATE`` (with a busy timeout; WAL lets readers go on),
PostgreSQL's ``pg_advisory_xact_lock``. Errors of the database become DB-API
errors naming the database URL without its password.

A new SQLite replica file is created readable by its owner only (``0600``;
SQLite gives its ``-wal`` and ``-shm`` files the same mode): it holds the
account's history. Values a database cannot hold exactly are kept in the
row's ``_exact`` column (see :mod:`.schema`, :meth:`Target.row_to_target`).
"""

from __future__ import annotations

import datetime as dt
import json
import math
import os
from collections.abc import Iterable, Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as saexc
from sqlalchemy.engine import URL, Connection, Engine, make_url

from .. import exceptions as exc
from ..engine.schema import Table
from ..values import (
    BOOLEAN,
    INTEGER,
    JSON,
    REAL,
    TEXT,
    TIMESTAMP,
    format_timestamp,
    parse_timestamp,
)
from .schema import (
    GENERIC,
    META_TABLE,
    POSTGRESQL,
    SCHEMA_VERSION,
    SQLITE,
    STATE_TABLE,
    hash_index_name,
    index_name,
    replica_metadata,
)

LOCK_KEY = 0x61706964726976  # "apidriv": the PostgreSQL advisory lock of replica writes
BUSY_TIMEOUT = 60.0  # seconds a SQLite writer waits for another one
FILE_MODE = 0o600  # a new SQLite replica: its owner's only
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1


def default_url(profile_name: str, directory: str | None = None) -> str:
    """The embedded default: a SQLite file named after the profile in the working directory."""
    path = os.path.abspath(os.path.join(directory or os.getcwd(), f"{profile_name.lower()}.sqlite"))
    return sqlite_url(path)


def sqlite_url(path: str) -> str:
    return "sqlite:///" + os.path.abspath(os.path.expanduser(path))


def shown_url(url: str | URL) -> str:
    """A database URL as it may be printed: the password masked."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except saexc.ArgumentError:
        return "<unparseable URL>"


class Target:
    """One replica database, for the tables ``specs``."""

    def __init__(self, url: str, specs: Iterable[Table]) -> None:
        try:
            self.url = make_url(url)
        except saexc.ArgumentError:
            raise exc.ProgrammingError(
                f"Bad database URL {url!r}: use a SQLAlchemy URL such as sqlite:///history.sqlite "
                "or postgresql+psycopg://user:password@host/dbname."
            ) from None
        self.shown = shown_url(self.url)
        backend = self.url.get_backend_name()
        self.kind = SQLITE if backend == "sqlite" else POSTGRESQL if backend == "postgresql" else GENERIC
        self.specs = {s.name: s for s in specs}
        self.metadata = replica_metadata(self.specs.values(), self.kind)
        self.engine = self._create_engine()

    def _create_engine(self) -> Engine:
        options: dict[str, Any] = {}
        if self.kind == SQLITE:
            database = self.url.database or ""
            if not database or database == ":memory:":
                raise exc.ProgrammingError("The replica must be a SQLite file (sqlite:///path/to/file.sqlite), not an in-memory database.")
            options["connect_args"] = {"timeout": BUSY_TIMEOUT}
        elif self.kind == POSTGRESQL:
            options["pool_pre_ping"] = True
        try:
            engine = sa.create_engine(self.url, **options)
        except (saexc.NoSuchModuleError, ModuleNotFoundError, ImportError) as error:
            hint = " (pip install 'apidriver[postgresql]')" if self.kind == POSTGRESQL else ""
            raise exc.ProgrammingError(f"Cannot use the database {self.shown}: its SQLAlchemy driver is not installed{hint}: {error}.") from None
        except saexc.ArgumentError as error:
            raise exc.ProgrammingError(f"Bad database URL {self.shown}: {error}.") from None
        if self.kind == SQLITE:
            _sqlite_transactions(engine)
        return engine

    def close(self) -> None:
        self.engine.dispose()

    def table(self, name: str) -> sa.Table:
        return self.metadata.tables[name]

    # -- transactions ------------------------------------------------------------------------

    @contextmanager
    def errors(self, doing: str) -> Iterator[None]:
        """Turn the database's errors into DB-API errors that name it (password masked)."""
        try:
            yield
        except exc.Error:
            raise
        except saexc.DBAPIError as error:
            cause = str(error.orig).strip().splitlines()[0] if error.orig is not None else str(error)
            kind = exc.IntegrityError if isinstance(error, saexc.IntegrityError) else exc.OperationalError
            raise kind(f"The replica database {self.shown} failed while {doing}: {cause}") from error
        except saexc.SQLAlchemyError as error:
            raise exc.OperationalError(f"The replica database {self.shown} failed while {doing}: {error}") from error

    @contextmanager
    def write(self, doing: str = "writing") -> Iterator[Connection]:
        """A transaction holding the replica's write lock; committed when the block ends."""
        with self.errors(doing), self.engine.connect() as conn:
            with conn.execution_options(apidriver_write=True).begin():
                if self.kind == POSTGRESQL:
                    conn.execute(sa.text("SELECT pg_advisory_xact_lock(:key)"), {"key": LOCK_KEY})
                yield conn

    @contextmanager
    def read(self, doing: str = "reading") -> Iterator[Connection]:
        with self.errors(doing), self.engine.connect() as conn:
            yield conn

    # -- schema ---------------------------------------------------------------------------------

    def prepare(self, profile_name: str, api_root: str) -> None:
        """Create the replica's tables, or bring an older replica's up to date (columns, indexes).

        Columns are only ever added: a replica keeps what it holds. A new
        SQLite file is created readable by its owner only.
        """
        if self.kind == SQLITE and self.url.database:
            _create_private(self.url.database)
        with self.write("creating or upgrading the replica's tables") as conn:
            inspector = sa.inspect(conn)
            existing = set(inspector.get_table_names())
            for table in self.metadata.sorted_tables:
                if table.name not in existing:
                    table.create(conn)
                    continue
                present = {c["name"] for c in inspector.get_columns(table.name)}
                for column in table.columns:
                    if column.name not in present:
                        type_sql = column.type.compile(dialect=conn.dialect)
                        conn.execute(sa.text(f"ALTER TABLE {_quote(conn, table.name)} ADD COLUMN {_quote(conn, column.name)} {type_sql}"))
                indexes = {i["name"] for i in inspector.get_indexes(table.name)}
                for index in table.indexes:
                    if index.name not in indexes:
                        index.create(conn)
                    if index.name is not None and index.name.startswith("hx_"):
                        # Schema version 1 had B-tree indexes on text, which refuse long values on PostgreSQL.
                        indexed = next(iter(index.columns)).name
                        if index_name(table.name, indexed) in indexes and hash_index_name(table.name, indexed) == index.name:
                            conn.execute(sa.text(f"DROP INDEX IF EXISTS {_quote(conn, index_name(table.name, indexed))}"))
            meta = self.table(META_TABLE)
            values = {"schema_version": str(SCHEMA_VERSION), "profile": profile_name, "api_root": api_root}
            stored = {name: value for name, value in conn.execute(sa.select(meta.c.name, meta.c.value))}
            if stored.get("profile") not in (None, profile_name):
                raise exc.ProgrammingError(
                    f"The replica {self.shown} holds data of the {stored['profile']} profile, not {profile_name}: use another database."
                )
            for name, value in values.items():
                if name not in stored:
                    conn.execute(meta.insert().values(name=name, value=value))
                elif stored[name] != value:
                    conn.execute(meta.update().where(meta.c.name == name).values(value=value))

    def forget(self, columns: Mapping[str, Iterable[str]]) -> int:
        """Set ``columns`` (table → column names: the secrets a replica does not keep) to NULL in every
        row, those of rows long gone included; returns how many rows held one. (SQLite keeps freed
        pages until ``VACUUM``.)"""
        count = 0
        with self.write("forgetting secrets") as conn:
            for name, names in columns.items():
                if name not in self.metadata.tables:
                    continue
                table = self.table(name)
                for column in names:
                    result = conn.execute(table.update().where(table.c[column].is_not(None)).values({column: None}))
                    count += result.rowcount
        return count

    def meta(self, conn: Connection, name: str) -> str | None:
        meta = self.table(META_TABLE)
        value = conn.execute(sa.select(meta.c.value).where(meta.c.name == name)).scalar()
        return None if value is None else str(value)

    def set_meta(self, conn: Connection, name: str, value: str) -> None:
        meta = self.table(META_TABLE)
        if conn.execute(meta.update().where(meta.c.name == name).values(value=value)).rowcount == 0:
            conn.execute(meta.insert().values(name=name, value=value))

    def state(self, conn: Connection, table_name: str) -> dict[str, Any]:
        """The bookkeeping of ``table_name``: watermark (UTC text), synced_at and full_at (aware datetimes)."""
        state = self.table(STATE_TABLE)
        row = conn.execute(sa.select(state).where(state.c.table_name == table_name)).mappings().first()
        if row is None:
            return {"watermark": None, "synced_at": None, "full_at": None}
        return {"watermark": row["watermark"], "synced_at": as_utc(row["synced_at"]), "full_at": as_utc(row["full_at"])}

    def save_state(self, conn: Connection, table_name: str, watermark: str | None, synced_at: dt.datetime, full: bool) -> None:
        """Record a completed sync of ``table_name``; the watermark never goes back."""
        state = self.table(STATE_TABLE)
        old = self.state(conn, table_name)
        if old["watermark"] is not None and (watermark is None or old["watermark"] > watermark):
            watermark = old["watermark"]
        values: dict[str, Any] = {"watermark": watermark, "synced_at": self.timestamp(synced_at)}
        if full:
            values["full_at"] = self.timestamp(synced_at)
        if conn.execute(state.update().where(state.c.table_name == table_name).values(**values)).rowcount == 0:
            conn.execute(state.insert().values(table_name=table_name, **values))

    # -- values -------------------------------------------------------------------------------------

    def timestamp(self, value: dt.datetime) -> Any:
        """A time as this target stores it (``_synced_at``, ``_removed_at``)."""
        return format_timestamp(value) if self.kind == SQLITE else value.astimezone(dt.timezone.utc)

    def to_target(self, sql_type: str, value: Any) -> Any:
        """A driver (SQLite) value of a column of ``sql_type`` as this target stores it (best effort:
        :meth:`row_to_target` keeps what a target cannot hold exactly in ``_exact``)."""
        if value is None or self.kind == SQLITE:
            return value
        if sql_type == TIMESTAMP:
            return parse_timestamp(str(value))
        if sql_type == JSON:
            return json.loads(value) if isinstance(value, str) else value
        if sql_type == BOOLEAN:
            return bool(value)
        if sql_type == INTEGER and not isinstance(value, int):
            raise exc.DataError(f"The API sent {value!r} where a whole number belongs; the replica cannot store it.")
        if sql_type == REAL:
            try:
                return float(value)
            except (TypeError, ValueError):
                raise exc.DataError(f"The API sent {value!r} where a number belongs; the replica cannot store it.") from None
        return value

    def _exactly(self, sql_type: str, value: Any) -> Any:
        """``value`` as this target stores it; :class:`ValueError` if it cannot hold it exactly."""
        if value is None:
            return None
        if self.kind == SQLITE:
            if isinstance(value, int) and not INT64_MIN <= value <= INT64_MAX:
                raise ValueError("an integer beyond 64 bits")
            if isinstance(value, str) and not value.isascii():
                value.encode("utf-8")  # a lone surrogate raises UnicodeEncodeError (a ValueError)
            return value
        if isinstance(value, str) and ("\x00" in value or not (value.isascii() or _utf8(value))):
            raise ValueError("text with U+0000 or a lone surrogate")
        if sql_type == TIMESTAMP:
            return parse_timestamp(str(value))
        if sql_type == JSON:
            if isinstance(value, str) and "\\u0000" in value:
                raise ValueError("JSON with U+0000")
            return json.loads(value) if isinstance(value, str) else value
        if sql_type == BOOLEAN:
            if value not in (0, 1):
                raise ValueError("not a boolean")
            return bool(value)
        if sql_type == INTEGER:
            if not isinstance(value, int) or isinstance(value, bool) or not INT64_MIN <= value <= INT64_MAX:
                raise ValueError("not a 64-bit integer")
            return value
        if sql_type == REAL:
            if not isinstance(value, (int, float)) or isinstance(value, bool) or not math.isfinite(value):
                raise ValueError("not a number")
            return float(value)
        return value

    def holds(self, sql_type: str, value: Any) -> bool:
        """Whether this target holds ``value`` exactly in a column of ``sql_type`` (else it is in ``_exact``)."""
        try:
            self._exactly(sql_type, value)
        except (ValueError, TypeError, OverflowError):
            return False
        return True

    def row_to_target(self, columns: Sequence[tuple[str, str]], row: Sequence[Any]) -> tuple[list[Any], str | None]:
        """A row of driver values (``columns``: name and type of each) as this target stores it, and
        its ``_exact`` text (None: every value fits).

        A value the target cannot hold exactly is
        stored as the closest value it can hold (text with U+0000 and lone
        surrogates replaced by U+FFFD) or NULL, and kept exactly in ``_exact``:
        a JSON object (ASCII) of column name → value.
        """
        if self.kind == SQLITE and not any(
            (type(v) is int and not INT64_MIN <= v <= INT64_MAX) or (type(v) is str and not v.isascii() and not _utf8(v)) for v in row
        ):
            return list(row), None  # the common case: SQLite holds the driver's values as they are
        out: list[Any] = []
        exact: dict[str, Any] | None = None
        for (name, sql_type), value in zip(columns, row):
            try:
                out.append(self._exactly(sql_type, value))
            except (ValueError, TypeError, OverflowError):
                if exact is None:
                    exact = {}
                exact[name] = value
                out.append(self._closest(sql_type, value))
        return out, (None if exact is None else json.dumps(exact, ensure_ascii=True, separators=(",", ":")))

    def _closest(self, sql_type: str, value: Any) -> Any:
        """What a column holds in place of a value it cannot hold exactly (the exact one is in ``_exact``)."""
        if not isinstance(value, str) or sql_type not in (TEXT, JSON):
            return None
        text = _replace_unholdable(value)
        if sql_type == TEXT or self.kind == SQLITE:
            return text
        try:
            return json.loads(text.replace("\\u0000", "\\ufffd"))
        except ValueError:
            return None

    @staticmethod
    def exact_values(exact: str | None) -> dict[str, Any]:
        """The exact values a row's ``_exact`` keeps, by column name."""
        if not exact:
            return {}
        values: dict[str, Any] = json.loads(exact)
        return values

    def from_target(self, sql_type: str, value: Any) -> Any:
        """A stored value as the driver's (SQLite) value: what a live query returns."""
        if value is None or self.kind == SQLITE:
            return value
        if sql_type == TIMESTAMP:
            if isinstance(value, dt.datetime):
                return format_timestamp(value if value.tzinfo is not None else value.replace(tzinfo=dt.timezone.utc))
            return format_timestamp(parse_timestamp(str(value)))
        if sql_type == JSON:
            if isinstance(value, str):
                value = json.loads(value)
            return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
        if sql_type == BOOLEAN:
            return 1 if value else 0
        return value


def _utf8(text: str) -> bool:
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True


def _replace_unholdable(text: str) -> str:
    """``text`` with U+0000 and lone surrogates replaced by U+FFFD."""
    return "".join("\ufffd" if c == "\x00" or "\ud800" <= c <= "\udfff" else c for c in text)


def _create_private(path: str) -> None:
    """Create the SQLite file ``path`` readable by its owner only, if it does not exist yet.

    (A missing directory is left for SQLite to report, as it reports it.)
    """
    if path.startswith("file:"):
        return
    try:
        fd = os.open(os.path.abspath(os.path.expanduser(path)), os.O_WRONLY | os.O_CREAT | os.O_EXCL, FILE_MODE)
    except (FileExistsError, FileNotFoundError, NotADirectoryError, PermissionError):
        return
    os.close(fd)


def as_utc(value: Any) -> dt.datetime | None:
    """A stored time (our UTC text on SQLite, a datetime elsewhere) as an aware UTC datetime."""
    if value is None:
        return None
    if isinstance(value, dt.datetime):
        return value.replace(tzinfo=dt.timezone.utc) if value.tzinfo is None else value.astimezone(dt.timezone.utc)
    return parse_timestamp(str(value))


def _quote(conn: Connection, name: str) -> str:
    return str(conn.dialect.identifier_preparer.quote(name))


def _sqlite_transactions(engine: Engine) -> None:
    """pysqlite begins transactions lazily and deferred; writers must take the lock up front.

    With ``BEGIN IMMEDIATE`` a second writer waits (busy timeout) instead of
    failing with "database is locked" when both upgrade from a read.
    """

    @event.listens_for(engine, "connect")
    def connect(dbapi_connection: Any, record: Any) -> None:
        dbapi_connection.isolation_level = None  # we say BEGIN ourselves
        dbapi_connection.execute("PRAGMA journal_mode=WAL")  # readers go on while a sync writes
        # In WAL mode NORMAL never corrupts and keeps the order of commits (a power cut may lose the
        # last ones, as a kill would): what interruption safety needs, without an fsync per page.
        dbapi_connection.execute("PRAGMA synchronous=NORMAL")

    @event.listens_for(engine, "begin")
    def begin(conn: Connection) -> None:
        conn.exec_driver_sql("BEGIN IMMEDIATE" if conn.get_execution_options().get("apidriver_write") else "BEGIN")
