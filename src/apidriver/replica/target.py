"""A replica database: its SQLAlchemy engine, locked write transactions, its schema and bookkeeping.

Writes run in short transactions that hold the replica's write lock, so two
syncs into one database at once take turns and never insert a row twice:
SQLite's ``BEGIN IMMEDIATE`` (with a busy timeout; WAL lets readers go on),
PostgreSQL's ``pg_advisory_xact_lock``. Errors of the database become DB-API
errors naming the database URL without its password.

A new SQLite replica file is created readable by its owner only (``0600``;
SQLite gives its ``-wal`` and ``-shm`` files the same mode): it holds the
account's history. A :class:`Target` converts values as its kind of database
stores them (:class:`~.conversions.Conversions`).
"""

from __future__ import annotations

import datetime as dt
import os
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy import exc as saexc
from sqlalchemy.engine import URL, Connection, Engine, make_url

from .. import exceptions as exc
from ..engine.schema import Table
from .conversions import Conversions, as_utc
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


class Target(Conversions):
    """One replica database, for the tables ``specs``; its values converted as its kind stores them."""

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
        super().__init__(SQLITE if backend == "sqlite" else POSTGRESQL if backend == "postgresql" else GENERIC)
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
