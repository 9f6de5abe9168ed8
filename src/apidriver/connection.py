"""DB-API 2.0 connections: an in-memory SQLite database whose tables are the API.

``connect()`` validates the properties, loads the profile, opens one pooled
HTTP client and declares one virtual table per profile table (plus the
``sys_*`` tables). SQLite runs the SQL; the virtual tables fetch rows.

Lifecycle: nothing the connection owns refers back to it (the virtual
tables, the writer and the authorizer reach it through a holder or a weak
reference), so a connection nobody references is freed at once, and a
finalizer then releases its threads, sockets and database as ``close()``
would; one still open when the interpreter exits is released the same way
then, before the modules are torn down. A running statement can be cancelled from another thread
(:meth:`Connection.interrupt`, :meth:`Cursor.cancel`); ``close()`` from
another thread cancels it first, then closes.

Local tables: besides the API's tables, the connection's database holds
whatever tables, views, indexes and triggers the user creates under other
names (plain ``CREATE TABLE``, or ``TEMP``); they are SQLite's own and live
until the connection closes. Their changes are transactional as with
``sqlite3``: a statement that changes rows of a local table opens a
transaction (unless ``isolation_level`` is None), ``commit()`` and
``rollback()`` end it. Writes to the API are sent when their statement runs
and are never undone (docs/querying.md, "Local tables and transactions").

After ``fork()``, a connection belongs to the parent: in the child, every
use raises :class:`ProgrammingError` (as sqlite3 and psycopg refuse), and
``close()`` or garbage collection there releases nothing the parent uses.
"""

from __future__ import annotations

import os
import threading
import weakref
from collections.abc import Iterator, Mapping
from contextlib import AbstractContextManager, contextmanager, nullcontext
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Any

import apsw
import apsw.ext
import httpx

from . import exceptions as exc
from .authorizer import LOCAL_HINT, Authorizer, CurrentStatement, Shape
from .cache import CACHE_PROPERTIES
from .cache import install as install_cache
from .client import ApiClient
from .engine.copies import Copies
from .engine.errors import translate
from .engine.executor import Engine, StatementContext
from .engine.procedures import ProcedureModule, ProcedureRunner
from .engine.schema import Procedure, Table
from .engine.sqlite_side import PROGRESS_STEPS, Route
from .engine.system import system_tables
from .engine.vtable import Module, RowIds
from .engine.writes import Writer
from .profiles import Profile, load
from .properties import (
    CORE_PROPERTIES,
    Settings,
    parse_connection_string,
    resolve,
    shown_name,
)
from .response_cache import CACHE
from .transport import tls_context
from .values import ISO8601, iso8601_collation

if TYPE_CHECKING:
    from .cache.attach import Cache

MODULE_NAME = "apidriver"
# The cache's module (apidriver.cache.attach.CACHE_MODULE; not imported from there: that loads SQLAlchemy).
CACHE_MODULE = "apidriver_cache"
ISOLATION_LEVELS = ("", "DEFERRED", "IMMEDIATE", "EXCLUSIVE")
"""``Connection.isolation_level`` values that open transactions (as in ``sqlite3``); None: autocommit."""


# This process's id, renewed in a child made by fork(): every use of a connection compares it with
# the id the connection was opened in (os.getpid() is a system call, and a statement checks 5 times).
_process = os.getpid()


def _forked() -> None:
    global _process
    _process = os.getpid()


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_forked)


INTERRUPTED = "The statement was cancelled by Connection.interrupt()."
CLOSED_BY_OTHER = "The statement was cancelled: the connection was closed by another thread."


def _release(pid: int, engine: Engine, client: ApiClient, storage: httpx.Client, db: apsw.Connection, copies: Copies | None) -> None:
    """Free what a connection holds: queued requests, workers, sockets, the database.

    The API client's sockets are closed once no worker uses them any more
    (a request under way ends within its Timeout, and is not retried): a
    socket closed under a thread still reading from it is a race. In a
    child made by ``fork()``, nothing: it all belongs to the parent, and
    its locks may be held by threads the child does not have.
    """
    if os.getpid() != pid:
        return
    client.stop()
    engine.pool.shutdown(on_idle=client.close)
    storage.close()
    for close in (db.close, copies.close if copies is not None else None):
        try:
            if close is not None:
                close()
        except apsw.Error:
            pass


def settings_for(connection_string: str | None, properties: Mapping[str, Any]) -> tuple[Profile, Settings]:
    """Validate the properties of a connection and find its profile."""
    raw: dict[str, Any] = dict(parse_connection_string(connection_string or ""))
    lowered = {k.lower(): k for k in raw}
    for name, value in properties.items():
        if name.lower() in lowered:
            del raw[lowered[name.lower()]]
        raw[name] = value
    profile_value = next((v for k, v in raw.items() if k.lower() == "profile" and v), "CloudConvert")
    profile = load(str(profile_value))
    specs = list(CORE_PROPERTIES) + list(CACHE_PROPERTIES) + list(profile.properties)
    specs = [replace(p, env=profile.api_key_env) if p.name == "APIKey" else p for p in specs]
    settings = resolve(raw, specs)
    scheme = str(settings["AuthScheme"])
    if scheme.lower() not in {s.lower() for s in profile.auth_schemes}:
        shown = shown_name(scheme)
        called = f"AuthScheme {shown!r}" if shown is not None else "The AuthScheme given"
        raise exc.ProgrammingError(
            f"{called} is not supported by the {profile.name} profile; use {' or '.join(profile.auth_schemes)}."
        )
    return profile, settings


class Connection:
    """A DB-API 2.0 connection. Writes to the API are autocommit (an HTTP call cannot be rolled
    back); changes to local tables are transactional, as with ``sqlite3``."""

    # PEP 249's optional extension: the exceptions as attributes of the connection (as sqlite3 has).
    Warning = exc.Warning
    Error = exc.Error
    InterfaceError = exc.InterfaceError
    DatabaseError = exc.DatabaseError
    DataError = exc.DataError
    OperationalError = exc.OperationalError
    IntegrityError = exc.IntegrityError
    InternalError = exc.InternalError
    ProgrammingError = exc.ProgrammingError
    NotSupportedError = exc.NotSupportedError

    def __init__(self, profile: Profile, settings: Settings) -> None:
        if not settings["APIKey"] and not settings["Offline"]:  # Offline sends nothing: no key needed
            where = f" or the {profile.api_key_env} environment variable" if profile.api_key_env else ""
            raise exc.ProgrammingError(f"No API key: set APIKey in the connection string{where}.")
        self.profile = profile
        self.settings = settings
        self.root_url = (profile.root_url(settings)).rstrip("/")
        self.base_url = self.root_url + profile.api_prefix
        hint = "Check the APIKey connection property" + (
            f" (or the {profile.api_key_env} environment variable)." if profile.api_key_env else "."
        )
        self.client = ApiClient(
            self.base_url,
            profile.headers(settings),
            timeout=settings["Timeout"],
            max_retries=settings["MaxRetries"],
            max_connections=settings["MaxConcurrency"],
            auth_hint=hint,
            error_details=profile.error_details,
            cache_ttl=settings["CacheTTL"],
            rate_window=settings["RateLimitWindow"] or 60.0,
            max_response_size=settings["MaxResponseSize"],
        )
        tables: list[Table] = list(profile.tables)
        tables += system_tables(lambda: tables, lambda: profile.procedures)
        self.tables = tables
        self.engine = Engine(
            {t.name: t for t in self.tables},
            self.client,
            profile.pagination,
            settings["PageSize"],
            settings["MaxConcurrency"],
        )
        self.rowids = RowIds()
        current = self._current = CurrentStatement()
        self._closed = False
        self._using = threading.RLock()  # held while a statement steps (see Cursor)
        # The cursors made, for _cancel_all: weak references by id (a WeakSet costs each cursor two
        # Python-level calls, at its making and at its end); dead ones are dropped as the dict grows.
        self._cursors: dict[int, weakref.ref[Cursor]] = {}
        self._prune_cursors_at = 64
        read_only = bool(settings["ReadOnly"])
        self.writer = Writer(self.engine, self.client, lambda: current.context, self.rowids, read_only)
        # Upload forms and download URLs live on storage hosts: never send them the API key.
        self.storage = httpx.Client(timeout=settings["Timeout"], follow_redirects=True, verify=tls_context())
        self.procedures = {p.name.lower(): p for p in profile.procedures}
        self.runner = ProcedureRunner(
            self.client, self.storage, lambda: current.context, settings, {"root_url": self.root_url, **profile.extras}, read_only,
            self.engine.submit,
        )
        self._db = apsw.Connection(":memory:")
        self._db.create_collation(ISO8601, iso8601_collation)
        self._pid = os.getpid()
        cancelled = lambda: current.context.cancel.is_set  # noqa: E731
        # CacheTTL: statements over one table a snapshot holds whole run on a copy (engine/copies.py).
        self.copies = Copies(self.engine, cancelled) if settings["CacheTTL"] else None
        self._finalizer = weakref.finalize(self, _release, self._pid, self.engine, self.client, self.storage, self._db, self.copies)
        # Left open at exit, it is closed by the finalizer then (which waits for nothing): an APSW database
        # with virtual tables still open when the interpreter clears its modules crashes the process (SIGSEGV,
        # in APSW's vtable Disconnect) whenever a reference cycle holds the connection, as any
        # module-level function does.
        self._db.set_progress_handler(cancelled, PROGRESS_STEPS)
        module: Any = Module(  # (APSW's typing protocol is stricter than what it accepts)
            self.engine, lambda: current.context, self.rowids, self.writer, bool(settings["TrustListOrder"])
        )
        self._db.create_module(MODULE_NAME, module, use_bestindex_object=True)
        for table in self.tables:
            self._db.execute(f'CREATE VIRTUAL TABLE "{table.name}" USING {MODULE_NAME}()')
        for procedure in profile.procedures:
            procedure_module: Any = ProcedureModule(procedure, self.runner)
            self._db.create_module(procedure.name, procedure_module, use_bestindex_object=True, eponymous_only=True)
        self._reserved = {t.name.lower() for t in self.tables} | set(self.procedures)
        self._authorizer = Authorizer(
            self._db, current, self._reserved, {t.name.lower(): t for t in profile.tables}, self.procedures,
            {MODULE_NAME, CACHE_MODULE} | set(self.procedures), self.writer, self.runner,
        )
        self._isolation_level: str | None = ""
        # CacheLocation/CacheConnection/AutoCache/Offline: cache.<Table>, and the plain names over the cache.
        self.cache: Cache | None = None
        try:
            self.cache = install_cache(self, MODULE_NAME)
        except BaseException:
            self.close()
            raise
        # Statements the SQLite cache's reader runs, by SQL text, with their shape (see planned()).
        self._on_reader: dict[str, tuple[Shape, Route]] = {}
        self._authorizer.on_schema_change.append(self._on_reader.clear)
        if self.cache is not None:
            self._authorizer.on_schema_change.append(self.cache.forget_routes)
            if self.copies is not None:
                self.copies.close()  # the plain names may be the cache's tables: never copied
                self.copies = None
        if self.copies is not None:
            self._authorizer.on_schema_change.append(self.copies.forget)
        self._db.authorizer = self._authorizer.authorize  # SQLite keeps it: it holds no reference to the connection

    def shape(self, sql: str, bindings: Any) -> Shape:
        """What preparing ``sql`` tells about it (see :meth:`Authorizer.shape`); nothing runs."""
        return self._authorizer.shape(sql, bindings)

    def route(self, sql: str, bindings: Any, shape: Shape, context: StatementContext) -> Route | None:
        """Where a statement runs when not on the driver's connection (None): a SQLite cache's reader
        (cache/reader.py), or the copies of tables a CacheTTL snapshot holds whole (engine/copies.py);
        and the result's description there."""
        route: Route | None = None
        where = "virtual tables"
        if self.cache is not None:
            routed = self.cache.route(sql, bindings, self._db)
            if routed is not None:
                if len(self._on_reader) >= 512:
                    self._on_reader.clear()  # a bound, not a cache policy
                self._on_reader[sql] = (shape, routed)
            route, where = routed, "cache reader"
        elif self.copies is not None and shape.one_table is not None:
            route = self.copies.route(self._db, sql, bindings, shape.one_table, shape.columns, shape.functions, shape.description, context)
            where = "copies"
        if route is not None:
            context.ran_on = where
        return route

    def planned(self, sql: str, context: StatementContext) -> tuple[Shape, Route] | None:
        """The shape and route of a statement the cache's reader ran before (None: not one), in one
        step: repeated statements over a SQLite cache cost a dict lookup here instead of the
        shape's, the route's and the REPLICATE/CACHE check's (``shape`` and ``route`` do the rest)."""
        known = self._on_reader.get(sql)
        if known is None:
            return None
        shape, routed = known
        cache = self.cache
        assert cache is not None
        for spec in routed.tables:
            cache.before_read(spec)  # AutoCache: bring the tables up to date first
        context.ran_on = "cache reader"
        return shape, routed

    def parameter_names(self, sql: str) -> tuple[str | None, ...]:
        """The parameters of ``sql``'s first statement, as SQLite numbers them when it prepares it
        (nothing runs, nothing is sent): each one's name without its ``:``, ``@`` or ``$``
        (``$a::b`` is one parameter, ``a::b``), or None for ``?`` and ``?NNN``.

        Raises the error the statement would fail with if it cannot be prepared.
        """
        with self.using(), self.probing() as probe:
            try:
                info = apsw.ext.query_info(self._db, sql)
            except Exception as error:
                failure = probe.refused if isinstance(error, apsw.AuthError) and probe.refused else translate(error, sql)
                raise failure from error
        names = info.bindings_names if info.bindings_count else ()
        return tuple(None if name is None or name.isdigit() else name for name in names)

    def in_sets(self, sql: str, bindings: Any) -> bool:
        """Whether IN constraints of ``sql`` may reach the API tables as whole sets (see :meth:`shape`)."""
        return self.shape(sql, bindings).in_sets

    def procedure(self, name: str) -> Procedure:
        """The profile procedure called ``name`` (any case)."""
        try:
            procedure: Procedure = self.procedures[name.lower()]
            return procedure
        except KeyError:
            known = ", ".join(p.name for p in self.procedures.values())
            raise exc.ProgrammingError(f"Unknown procedure {name!r}. Procedures: {known}.") from None

    # -- DB-API -------------------------------------------------------------------------------

    def cursor(self) -> Cursor:
        self._check_open()
        cursor = Cursor(self)
        cursors = self._cursors
        if len(cursors) >= self._prune_cursors_at:
            self._cursors = cursors = {k: ref for k, ref in cursors.items() if ref() is not None}
            self._prune_cursors_at = 2 * len(cursors) + 64
        cursors[id(cursor)] = weakref.ref(cursor)  # an id seen before belonged to a cursor now gone
        return cursor

    def commit(self) -> None:
        """Commit the open transaction of local tables; writes to the API were sent when they ran."""
        self._check_open()
        if self._db.in_transaction:
            self._end("COMMIT")

    def rollback(self) -> None:
        """Undo the changes to local tables since the transaction began; writes to the API stay done.

        Without an open transaction it does nothing (cheap for connection pools).
        """
        self._check_open()
        if self._db.in_transaction:
            self._end("ROLLBACK")

    def _end(self, statement: str) -> None:
        with self.using():
            try:
                self._db.execute(statement)
            except apsw.Error as error:
                raise translate(error, statement) from error

    def around(self, shape: Shape) -> AbstractContextManager[None]:
        """What a statement of this ``shape`` needs around it, as the cursor runs it.

        A statement that changes local tables opens a transaction first (as
        ``sqlite3`` does). ``ALTER TABLE temp.x RENAME TO y`` runs in a
        savepoint, undone if ``y`` is a reserved name: a TEMP table named like
        an API or sys table would hide it (SQLite looks in temp first), and
        SQLite's authorizer reports only the old name of a rename, so the new
        one is checked once the rename is done.
        """
        if shape.local_writes and self._isolation_level is not None and not self._db.in_transaction:
            self._db.execute(f"BEGIN {self._isolation_level}")
        if not shape.renames_temp:
            return _NOTHING  # almost every statement: no generator to make and step
        return self._renaming()

    @contextmanager
    def _renaming(self) -> Iterator[None]:
        self._db.execute("SAVEPOINT apidriver_rename")
        try:
            yield
            hidden = [n for (n,) in self._db.execute("SELECT name FROM temp.sqlite_master") if n.lower() in self._reserved]
        except BaseException:
            self._db.execute("ROLLBACK TO apidriver_rename; RELEASE apidriver_rename")
            raise
        if hidden:
            self._db.execute("ROLLBACK TO apidriver_rename; RELEASE apidriver_rename")
            raise exc.NotSupportedError(
                f"ALTER TABLE ... RENAME TO {hidden[0]}: {hidden[0]} is a table of this connection and cannot be "
                f"shadowed. {LOCAL_HINT}"
            )
        self._db.execute("RELEASE apidriver_rename")

    @property
    def isolation_level(self) -> str | None:
        """As in ``sqlite3``: ``""`` (the default), ``"DEFERRED"``, ``"IMMEDIATE"`` or ``"EXCLUSIVE"``
        open a transaction of that kind before a statement that changes rows of a local table;
        None is autocommit (each statement commits at once). Setting None commits what is open.
        """
        return self._isolation_level

    @isolation_level.setter
    def isolation_level(self, level: str | None) -> None:
        if level is not None and (not isinstance(level, str) or level.upper() not in ISOLATION_LEVELS):
            raise exc.ProgrammingError(
                f"isolation_level must be None (autocommit) or one of {', '.join(repr(v) for v in ISOLATION_LEVELS)}, "
                f"not {level!r}."
            )
        self._check_open()
        if level is None:
            self.commit()
        self._isolation_level = None if level is None else level.upper()

    @property
    def autocommit(self) -> bool:
        """True when ``isolation_level`` is None: every statement commits at once.

        False (the default): changes to local tables wait for ``commit()``.
        Writes to the API are sent at once either way.
        """
        return self._isolation_level is None

    @autocommit.setter
    def autocommit(self, value: bool) -> None:
        self.isolation_level = None if value else ""

    @property
    def in_transaction(self) -> bool:
        """Whether a transaction is open: changes to local tables not yet committed (as in ``sqlite3``)."""
        return not self._closed and bool(self._db.in_transaction)

    def close(self) -> None:
        """Close the connection; from another thread while a statement runs, cancel it first.

        The running statement then fails with :class:`QueryCancelledError`
        (waits end at once; a write already sent is waited for, up to
        ``Timeout``). If it has not stopped within ``Timeout`` + 1 s,
        ``close()`` raises :class:`ProgrammingError` and changes nothing.
        """
        if self._closed:
            return
        if os.getpid() != self._pid:
            self._closed = True  # in this process only; the parent's connection is untouched
            return
        waited = self._using.acquire(blocking=False)
        if not waited:
            self._cancel_all(CLOSED_BY_OTHER)
            if not self._using.acquire(timeout=float(self.settings["Timeout"]) + 1.0):
                raise exc.ProgrammingError(
                    "close() could not stop the statement running in another thread (it is waiting for a write it "
                    "sent); the connection stays open. Call close() again once that statement has ended."
                )
        try:
            if self._closed:
                return
            self._closed = True
            self._cancel_all(CLOSED_BY_OTHER if not waited else "The statement was cancelled: the connection was closed.")
            if waited:
                # Requests not yet sent are cancelled; those under way (pages fetched
                # ahead) get a moment to finish rather than landing after close().
                self.engine.close()
                self.engine.wait_idle(timeout=2.0)
            self._finalizer()
            if self.cache is not None:
                self.cache.close()
            if self.copies is not None:
                self.copies.close()
        finally:
            self._using.release()

    def interrupt(self) -> None:
        """Cancel the statements of this connection: the one running (from any thread) and
        any cursor in the middle of its rows.

        Waits for answers, retry backoffs and rate-limit waits end at once,
        and SQLite's own work stops within a few thousand steps; each of
        those statements fails with :class:`QueryCancelledError` (at
        ``execute`` or at its next fetch). A request already sent is not
        cut: its answer is dropped (a write already sent is waited for).
        Statements started later run normally, so the connection stays
        usable. With nothing running, it does nothing.
        """
        self._cancel_all(INTERRUPTED)

    def _cancel_all(self, reason: str) -> None:
        self._current.context.cancel.set(reason)
        for ref in list(self._cursors.values()):
            cursor = ref()
            if cursor is not None:
                cursor.context.cancel.set(reason)

    @property
    def closed(self) -> bool:
        return self._closed

    def ping(self) -> None:
        """Check that the API answers and accepts the credentials: one small GET, or an error.

        Connecting sends nothing, so a wrong key or an unreachable host shows
        only at the first query; tools that "test the connection" (SQLAlchemy's
        ``do_ping``, Superset) call this. The request is the first page, one
        item long, of the first table that needs the key. A 403 (the key lacks
        that table's scope) still proves the key valid, so it passes.
        """
        self._check_open()
        table = next((t for t in self.profile.tables if t.list is not None and t.list.scope), None)
        if table is None or table.list is None:
            return
        pagination = self.profile.pagination
        params = list(table.list.params.items()) + ([(pagination.size_param, "1")] if table.list.paginated else [])
        try:
            self.client.request("GET", table.list.path, params=params, scope=table.list.scope)
        except exc.PermissionDeniedError:
            pass

    def clear_cache(self) -> None:
        """Drop the cached GET answers of this connection's credentials (see ``CacheTTL``)."""
        CACHE.clear(self.client.cache_owner)

    def __enter__(self) -> Connection:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc_value: BaseException | None, tb: TracebackType | None) -> None:
        self.close()

    def __repr__(self) -> str:
        state = "closed" if self._closed else "open"
        return f"<apidriver.Connection profile={self.profile.name} base_url={self.base_url} {state}>"

    # -- internals ------------------------------------------------------------------------------

    def _check_open(self) -> None:
        if _process != self._pid:
            raise exc.ProgrammingError(
                f"This connection was opened in process {self._pid} and cannot be used in process {os.getpid()}, a "
                "child made by fork(): its sockets, threads and locks belong to the parent. Open a new connection in "
                "the child (e.g. in a multiprocessing initializer), or start processes with the 'spawn' method."
            )
        if self._closed:
            raise exc.InterfaceError("The connection is closed.")

    @property
    def current_statement(self) -> StatementContext:
        """The statement being prepared or stepped (the cache counts its requests there and reads its refusal)."""
        return self._current.context

    def probing(self) -> AbstractContextManager[StatementContext]:
        """A throw-away statement context, current while SQLite only prepares a statement: what the
        authorizer and the planning note goes there, not into the statement being run."""
        return self._current.probing()

    def make_current(self, context: StatementContext) -> None:
        """``context`` is the statement's whose SQLite steps come next (a cursor's, before it steps)."""
        self._current.context = context

    def using(self) -> AbstractContextManager[None]:
        """Held while a cursor runs SQLite; close() from another thread waits for it."""
        return _Hold(self)  # made each time: one kept by the connection would make a reference cycle

    def hold(self) -> None:
        """What ``using()`` does on entry, for the cursor's execute and fetch, which pair it with
        :meth:`release` in try/finally (a ``with`` costs them a third of a microsecond more)."""
        self._check_open()  # first: after fork() the lock may be held by a thread of the parent
        if not self._using.acquire(blocking=False):
            raise exc.ProgrammingError(
                "The connection is in use by another thread (a connection may be used by one thread at a time; "
                "Connection.interrupt() and close() are the exceptions)."
            )
        if self._closed:  # closed while this thread waited for the lock
            self._using.release()
            raise exc.InterfaceError("The connection is closed.")

    def release(self) -> None:
        """Let go of what :meth:`hold` took."""
        self._using.release()

    @property
    def sqlite(self) -> apsw.Connection:
        """The underlying APSW connection (for SQL functions and advanced use)."""
        return self._db


class _Hold:
    """:meth:`Connection.using`: a plain context manager, not a generator (every statement enters
    it two to four times)."""

    __slots__ = ("connection",)

    def __init__(self, connection: Connection) -> None:
        self.connection = connection

    def __enter__(self) -> None:
        self.connection.hold()

    def __exit__(self, *exc_info: object) -> None:
        self.connection.release()


_NOTHING = nullcontext()


from .cursor import Cursor  # noqa: E402  (cursor needs Connection's module loaded)


def connect(connection_string: str | None = None, **properties: Any) -> Connection:
    """Open a connection: ``connect("Profile=CloudConvert;APIKey=...")`` or ``connect(APIKey=...)``.

    Property names are case-insensitive; see ``apidriver.properties`` and the
    README for the list. Unknown properties raise :class:`ProgrammingError`.
    """
    profile, settings = settings_for(connection_string, properties)
    return Connection(profile, settings)
