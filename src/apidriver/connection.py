"""DB-API 2.0 connections: an in-memory SQLite database whose tables are the API.

``connect()`` validates the properties, loads the profile, opens one pooled
HTTP client and declares one virtual table per profile table (plus the
``sys_*`` tables). SQLite runs the SQL; the virtual tables fetch rows.

Lifecycle: nothing the connection owns refers back to it (the virtual
tables, the writer and the authorizer reach it through a holder or a weak
reference), so a connection nobody references is freed at once, and a
finalizer then releases its threads, sockets and database as ``close()``
would. A running statement can be cancelled from another thread
(:meth:`Connection.interrupt`, :meth:`Cursor.cancel`); ``close()`` from
another thread cancels it first, then closes.
"""

from __future__ import annotations

import threading
import weakref
from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import replace
from types import TracebackType
from typing import TYPE_CHECKING, Any

import apsw
import httpx

from . import exceptions as exc
from .cache import CACHE_PROPERTIES
from .cache import install as install_cache
from .client import CACHE, ApiClient, tls_context
from .engine.executor import Engine, StatementContext
from .engine.planner import in_affinity
from .engine.procedures import ProcedureModule, ProcedureRunner
from .engine.schema import Procedure, Table
from .engine.system import system_tables
from .engine.vtable import Module, RowIds
from .engine.writes import Writer
from .profiles import Profile, load
from .properties import CORE_PROPERTIES, Settings, parse_connection_string, resolve, shown_name
from .values import ISO8601, iso8601_collation

if TYPE_CHECKING:
    from .cache.attach import Cache

MODULE_NAME = "apidriver"
_WRITES = {apsw.SQLITE_INSERT: "INSERT", apsw.SQLITE_UPDATE: "UPDATE", apsw.SQLITE_DELETE: "DELETE"}
# Schema changes: (what the statement does, whether it is allowed on TEMP objects with other names).
_DDL = {
    apsw.SQLITE_CREATE_TABLE: ("CREATE TABLE", False),
    apsw.SQLITE_CREATE_VIEW: ("CREATE VIEW", False),
    apsw.SQLITE_CREATE_INDEX: ("CREATE INDEX", False),
    apsw.SQLITE_CREATE_TRIGGER: ("CREATE TRIGGER", False),
    apsw.SQLITE_CREATE_VTABLE: ("CREATE VIRTUAL TABLE", False),
    apsw.SQLITE_DROP_TABLE: ("DROP TABLE", False),
    apsw.SQLITE_DROP_VIEW: ("DROP VIEW", False),
    apsw.SQLITE_DROP_INDEX: ("DROP INDEX", False),
    apsw.SQLITE_DROP_TRIGGER: ("DROP TRIGGER", False),
    apsw.SQLITE_DROP_VTABLE: ("DROP TABLE", False),
    apsw.SQLITE_ALTER_TABLE: ("ALTER TABLE", False),
    apsw.SQLITE_CREATE_TEMP_TABLE: ("CREATE TEMP TABLE", True),
    apsw.SQLITE_CREATE_TEMP_VIEW: ("CREATE TEMP VIEW", True),
    apsw.SQLITE_CREATE_TEMP_INDEX: ("CREATE INDEX", True),
    apsw.SQLITE_CREATE_TEMP_TRIGGER: ("CREATE TEMP TRIGGER", True),
}
_SCRATCH_HINT = (
    "For scratch work use CREATE TEMP TABLE (or TEMP VIEW) with a name that is not an API table; "
    "it lasts until the connection closes."
)
# SQLite calls the progress handler every this many virtual-machine steps: how soon a
# cancel stops SQLite's own work (a long join or a runaway recursive CTE).
PROGRESS_STEPS = 1000
INTERRUPTED = "The statement was cancelled by Connection.interrupt()."
CLOSED_BY_OTHER = "The statement was cancelled: the connection was closed by another thread."


class _Current:
    """The statement being prepared or stepped, shared with the virtual tables without a
    reference back to the connection (which would keep it alive)."""

    def __init__(self) -> None:
        self.context = StatementContext()


def _weak(method: Callable[..., int]) -> Callable[..., int]:
    """``method`` of an object, held weakly (for callbacks SQLite keeps)."""
    ref = weakref.WeakMethod(method)

    def call(*args: Any) -> int:
        bound = ref()
        return apsw.SQLITE_DENY if bound is None else bound(*args)

    return call


def _release(engine: Engine, client: ApiClient, storage: httpx.Client, db: apsw.Connection) -> None:
    """Free what a connection holds: queued requests, workers, sockets, the database.

    The API client's sockets are closed once no worker uses them any more
    (a request under way ends within its Timeout, and is not retried): a
    socket closed under a thread still reading from it is a race.
    """
    client.stop()
    engine.pool.shutdown(on_idle=client.close)
    storage.close()
    try:
        db.close()
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
    """A DB-API 2.0 connection. Writes are autocommit: an HTTP call cannot be rolled back."""

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
        current = self._current = _Current()
        self._closed = False
        self._using = threading.RLock()  # held while a statement steps (see Cursor)
        self._cursors: weakref.WeakSet[Cursor] = weakref.WeakSet()
        read_only = bool(settings["ReadOnly"])
        self.writer = Writer(self.engine, self.client, lambda: current.context, self.rowids, read_only)
        # Upload forms and download URLs live on storage hosts: never send them the API key.
        self.storage = httpx.Client(timeout=settings["Timeout"], follow_redirects=True, verify=tls_context())
        self.procedures = {p.name.lower(): p for p in profile.procedures}
        self.runner = ProcedureRunner(
            self.client, self.storage, lambda: current.context, settings, {"root_url": self.root_url, **profile.extras}, read_only,
            self.engine.submit,
        )
        self._api_tables = {t.name.lower(): t for t in profile.tables}
        self._db = apsw.Connection(":memory:")
        self._db.create_collation(ISO8601, iso8601_collation)
        self._finalizer = weakref.finalize(self, _release, self.engine, self.client, self.storage, self._db)
        self._finalizer.atexit = False  # at exit there is nothing to release, and nothing to wait for
        self._db.set_progress_handler(lambda: current.context.cancel.is_set, PROGRESS_STEPS)
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
        self._in_sets: OrderedDict[str, tuple[bool, str]] = OrderedDict()
        # CacheLocation/CacheConnection/AutoCache/Offline: cache.<Table>, and the plain names over the cache.
        self.cache: Cache | None = None
        try:
            self.cache = install_cache(self, MODULE_NAME)
        except BaseException:
            self.close()
            raise
        self._db.authorizer = _weak(self._authorize)  # SQLite keeps it: no reference back to the connection

    def _authorize(self, action: int, name: str | None, column: str | None, database: str | None, trigger: str | None) -> int:
        """Runs while SQLite prepares a statement, before any planning or request.

        Notes which tables the statement reads and deletes from and how many
        SELECTs it has (planning uses them), refuses writes the API or the
        ReadOnly setting does not allow, and refuses schema changes that
        would touch or shadow the API tables, so that such a statement sends
        nothing and changes nothing.
        """
        context = self._active
        if action == apsw.SQLITE_SELECT:
            context.selects += 1
            return apsw.SQLITE_OK
        if action in _DDL:
            return self._authorize_ddl(action, name, column, database)
        if not name:
            return apsw.SQLITE_OK
        lowered = name.lower()
        if action == apsw.SQLITE_READ:
            context.tables.add(lowered)
            if column:
                context.columns.setdefault(lowered, set()).add(column.lower())
            if lowered not in self._reserved and not lowered.startswith("sqlite_"):
                context.foreign_reads = True
            procedure = self.procedures.get(lowered)
            if procedure is not None:
                refusal = self.runner.refusal(procedure)
                if refusal is not None:
                    context.refused = refusal
                    return apsw.SQLITE_DENY
        elif action in _WRITES and lowered in self._api_tables:
            refusal = self.writer.refusal(self._api_tables[lowered], _WRITES[action])
            if refusal is not None:
                context.refused = refusal
                return apsw.SQLITE_DENY
            if action == apsw.SQLITE_DELETE:
                context.deletes.add(lowered)
        elif action in _WRITES and lowered in self._reserved and (database or "main") == "main":
            context.refused = exc.NotSupportedError(f"{name} is a system table of apidriver: it cannot be changed.")
            return apsw.SQLITE_DENY
        return apsw.SQLITE_OK

    def _authorize_ddl(self, action: int, name: str | None, detail: str | None, database: str | None) -> int:
        """CREATE/DROP/ALTER: allowed only on TEMP objects whose names do not shadow an API table."""
        what, temp_ok = _DDL[action]
        self._in_sets.clear()  # names may now resolve to other tables
        if self.cache is not None:
            self.cache.forget_routes()
        if action == apsw.SQLITE_ALTER_TABLE:
            database, name = name, detail  # ALTER TABLE reports (database, table)
        elif action in (apsw.SQLITE_CREATE_TEMP_INDEX, apsw.SQLITE_CREATE_TEMP_TRIGGER, apsw.SQLITE_CREATE_INDEX, apsw.SQLITE_CREATE_TRIGGER):
            name = detail or name  # the table the index or trigger is on
        lowered = (name or "").lower()
        if lowered in self._reserved:
            kind = "a procedure" if lowered in self.procedures else "an API table" if lowered in self._api_tables else "a system table"
            message = f"{what} {name}: {name} is {kind} of this connection and cannot be created, dropped, altered or shadowed. {_SCRATCH_HINT}"
        elif temp_ok or (database or "main") not in ("main",):
            return apsw.SQLITE_OK
        elif action == apsw.SQLITE_ALTER_TABLE and database == "temp":
            return apsw.SQLITE_OK
        elif action in (apsw.SQLITE_DROP_TABLE, apsw.SQLITE_DROP_VIEW, apsw.SQLITE_DROP_INDEX, apsw.SQLITE_DROP_TRIGGER) and database == "temp":
            return apsw.SQLITE_OK
        else:
            message = f"{what} {name or ''}: the main schema holds the API's tables and cannot be changed. {_SCRATCH_HINT}"
        self._active.refused = exc.NotSupportedError(message)
        return apsw.SQLITE_DENY

    def in_sets(self, sql: str, bindings: Any) -> bool:
        """Whether IN constraints of ``sql`` may reach the API tables as whole sets.

        APSW fails a statement when an all-at-once IN gets an empty set from a
        subquery, so sets are used only when SQLite, preparing the statement
        (in EXPLAIN mode, which runs nothing), reports a single SELECT and no
        table but ours: then every IN has a literal or bound list on its
        right. Decided once per SQL text (APSW caches the statements too).
        """
        return self.in_facts(sql, bindings)[0]

    def in_facts(self, sql: str, bindings: Any) -> tuple[bool, str]:
        """``in_sets`` and what the statement's IN subqueries apply to their values
        (``engine.planner.in_affinity``, read from the same EXPLAIN), once per SQL text."""
        known = self._in_sets.get(sql)
        if known is not None:
            self._in_sets.move_to_end(sql)
            return known
        previous, probe = self._active, StatementContext()
        self._activate(probe)
        try:
            program = self._db.cursor().execute(sql, bindings, can_cache=False, explain=1).fetchall()
        except Exception:
            return False, "mixed"  # the statement itself will fail (with its own error), or run with values one by one
        finally:
            self._activate(previous)
        answer = (probe.selects <= 1 and not probe.foreign_reads, in_affinity(program))
        self._in_sets[sql] = answer
        while len(self._in_sets) > 512:
            self._in_sets.popitem(last=False)
        return answer

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
        self._cursors.add(cursor)
        return cursor

    def commit(self) -> None:
        """Nothing to do: every write was sent to the API when it ran."""
        self._check_open()

    def rollback(self) -> None:
        """Nothing to undo (writes are autocommit); kept cheap for connection pools."""
        self._check_open()

    def close(self) -> None:
        """Close the connection; from another thread while a statement runs, cancel it first.

        The running statement then fails with :class:`QueryCancelledError`
        (waits end at once; a write already sent is waited for, up to
        ``Timeout``). If it has not stopped within ``Timeout`` + 1 s,
        ``close()`` raises :class:`ProgrammingError` and changes nothing.
        """
        if self._closed:
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
        for cursor in list(self._cursors):
            cursor._context.cancel.set(reason)

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
        if self._closed:
            raise exc.InterfaceError("The connection is closed.")

    @property
    def _active(self) -> StatementContext:
        """The statement being prepared or stepped."""
        return self._current.context

    def _activate(self, context: StatementContext) -> None:
        self._current.context = context

    @contextmanager
    def _stepping(self) -> Iterator[None]:
        """Held while a cursor runs SQLite; close() from another thread waits for it."""
        if not self._using.acquire(blocking=False):
            raise exc.ProgrammingError(
                "The connection is in use by another thread (a connection may be used by one thread at a time; "
                "Connection.interrupt() and close() are the exceptions)."
            )
        try:
            self._check_open()
            yield
        finally:
            self._using.release()

    @property
    def sqlite(self) -> apsw.Connection:
        """The underlying APSW connection (for SQL functions and advanced use)."""
        return self._db


from .cursor import Cursor  # noqa: E402  (cursor needs Connection's module loaded)


def connect(connection_string: str | None = None, **properties: Any) -> Connection:
    """Open a connection: ``connect("Profile=CloudConvert;APIKey=...")`` or ``connect(APIKey=...)``.

    Property names are case-insensitive; see ``apidriver.properties`` and the
    README for the list. Unknown properties raise :class:`ProgrammingError`.
    """
    profile, settings = settings_for(connection_string, properties)
    return Connection(profile, settings)
