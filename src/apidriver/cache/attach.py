"""A connection's cache: which tables read it, AutoCache's refreshes, Offline's guard.

With ``CacheLocation`` or ``CacheConnection`` set, the cache's tables are
``cache.Jobs``, ``cache.Tasks``, ... beside the live tables (so one
statement can join live and cached rows), and ``REPLICATE`` and ``CACHE``
statements fill it. With ``AutoCache=true`` or ``Offline=true`` the plain
names (``Jobs``) read the cache instead; with AutoCache the live tables stay
reachable as ``live.Jobs``.
"""

from __future__ import annotations

import datetime as dt
import os
import time
import weakref
from typing import TYPE_CHECKING, Any

import apsw
import sqlalchemy as sa

from .. import exceptions as exc
from ..answers import RequestRecord
from ..engine.schema import Table
from ..replica.replicator import Replicator
from ..replica.report import SyncReport
from ..replica.schema import replica_specs
from ..replica.target import Target, default_url, sqlite_url
from ..replica.schema import SQLITE
from .reader import Reader, Routes
from .source import CacheSource, Lookups
from .vtable import CacheModule

if TYPE_CHECKING:
    from ..engine.sqlite_side import Route
    from .host import CacheHost
    from ..engine.writes import Writer

CACHE_MODULE = "apidriver_cache"
EXPLICIT, AUTO, OFFLINE = "explicit", "auto", "offline"


class Cache:
    """The cache of one connection (a replica database) and how its statements use it."""

    def __init__(self, connection: CacheHost, url: str, mode: str, tolerance: float) -> None:
        # Weakly: the cache tables SQLite keeps hold the cache, and a connection nobody
        # references must be collectable (see connection.py).
        self.connection: CacheHost = weakref.proxy(connection)
        self.mode = mode
        self.tolerance = tolerance
        self.specs = {s.name.lower(): s for s in replica_specs(connection.profile.tables)}
        self.target = Target(url, self.specs.values())
        self.source = CacheSource(self.target)
        self._ready = False
        self._replicator: Replicator | None = None
        self._fresh_until: dict[str, float] = {}
        self._statement: object | None = None
        self._refreshed: set[str] = set()
        self._lookups: Lookups | None = None
        self._reader: Reader | None = None
        self._no_reader = False
        self.routes = Routes(self, self.reader) if mode in (AUTO, OFFLINE) and self.target.kind == SQLITE else None

    @property
    def shown(self) -> str:
        return self.target.shown

    def spec(self, name: str) -> Table:
        return self.specs[name.lower()]

    def close(self) -> None:
        if self._reader is not None:
            self._reader.close()
            self._reader = None
        self.target.close()

    # -- SQLite reading the cache itself --------------------------------------------------------

    def reader(self) -> Reader | None:
        """The connection that reads a SQLite cache through views (``cache.reader``), made on first use;
        None when the cache cannot be read that way (not ready: the cache tables then say why)."""
        if self._reader is None and not self._no_reader:
            try:
                self.ready()
            except exc.Error:
                return None
            try:
                self._reader = Reader(self, self.target.url.database or "", lambda: self.connection.current_statement.cancel.is_set)
            except apsw.Error:
                self._no_reader = True  # a file SQLite cannot attach: the cache tables read it as before
        return self._reader

    def route(self, sql: str, bindings: Any, main: apsw.Connection | None = None) -> Route | None:
        """Where ``sql`` runs: on the reader (and the description it shows), or None (the driver's connection).
        ``main``: the driver's SQLite connection, when the caller has it at hand."""
        if self.routes is None:
            return None
        return self.routes.route(main if main is not None else self.connection.sqlite, sql, bindings)

    def forget_routes(self) -> None:
        if self.routes is not None:
            self.routes.forget()

    # -- the replica's schema ----------------------------------------------------------------

    def ready(self) -> None:
        """Create or upgrade the replica's tables on first use; with Offline, only check they are there."""
        if self._ready:
            return
        if self.mode == OFFLINE:
            with self.target.read("checking the cache") as conn:
                present = set(sa.inspect(conn).get_table_names())
            missing = [s.name for s in self.specs.values() if s.name not in present]
            if missing:
                raise exc.ProgrammingError(
                    f"Offline=true, but the cache {self.shown} has no table {', '.join(missing)}: "
                    f"fill it first, e.g. apidriver sync --to '{self.shown}'."
                )
        else:
            self.replicator().prepare()
        self._ready = True

    def replicator(self) -> Replicator:
        """The one Replicator of this cache; its requests count for the statement being run."""
        if self._replicator is None:

            def observe(record: RequestRecord) -> None:
                self.connection.current_statement.observe(record)

            self._replicator = Replicator(self.connection, self.target, observer=observe)
        return self._replicator

    # -- reading ------------------------------------------------------------------------------------

    def before_read(self, spec: Table) -> None:
        """Called before a cache table's rows are read: AutoCache brings the table up to date first.

        Once per statement and table, and only if the last sync of the
        table is older than ``CacheTolerance`` seconds.
        """
        if self.mode != AUTO:
            self.ready()
            return
        name = spec.derived.parent if spec.derived is not None else spec.name
        if self._fresh_until.get(name, 0.0) > time.monotonic():
            return  # known fresh, so the cache is ready: every statement over the cache passes here
        self.ready()
        self._this_statement()
        if name in self._refreshed:
            return
        self._refreshed.add(name)
        if not self._fresh(name):
            self.refresh([name])

    def _this_statement(self) -> None:
        """Per-statement state starts afresh with each statement."""
        context = self.connection.current_statement
        if context is not self._statement:
            self._statement, self._refreshed, self._lookups = context, set(), None

    def lookups(self) -> Lookups:
        """The repeated lookups of the statement being run (see :class:`~.source.Lookups`)."""
        self._this_statement()
        if self._lookups is None:  # made by the statement's first lookup (most statements make none)
            self._lookups = Lookups(self.source)
        return self._lookups

    def _fresh(self, name: str) -> bool:
        if self._fresh_until.get(name, 0.0) > time.monotonic():
            return True
        with self.target.read("reading the cache's bookkeeping") as conn:
            synced_at = self.target.state(conn, name)["synced_at"]
        if synced_at is None:
            return False
        age = (dt.datetime.now(dt.timezone.utc) - synced_at).total_seconds()
        if 0 <= age < self.tolerance:
            self._fresh_until[name] = time.monotonic() + self.tolerance - age
            return True
        return False

    def refresh(self, tables: list[str] | None, full: bool = False) -> SyncReport:
        """Sync ``tables`` (None: the account's data) into the cache; requests count for the statement."""
        if self.mode == OFFLINE:
            raise exc.NotSupportedError("Offline=true: the cache cannot be brought up to date (that needs the API). Nothing was sent.")
        self.ready()
        report = self.replicator().run(tables, full)
        deadline = time.monotonic() + self.tolerance
        for name in report.tables:
            self._fresh_until[name] = deadline
        return report

    # -- writing through a cache table -------------------------------------------------------------

    def writer(self, spec: Table, action: str, schema: str) -> Writer:
        """Where a write to a cache table goes: the API, for the plain names (not Offline)."""
        if schema != "main":
            raise exc.NotSupportedError(
                f"{action} on {schema}.{spec.name} refused: the cache is written by syncs, REPLICATE and CACHE; "
                f"{action} on {spec.name} changes the API. Nothing was sent."
            )
        if self.mode == OFFLINE:
            raise exc.NotSupportedError(f"{action} on {spec.name} refused: Offline=true sends nothing to the API. Nothing was sent.")
        return self.connection.writer

    def rowid(self, table: str, key: Any) -> int:
        return self.connection.rowids.rowid(table, key)


def install(connection: CacheHost, api_module: str) -> Cache | None:
    """Set up the cache of ``connection`` from its properties (None when it has none).

    Declares ``cache.<Table>``; with AutoCache or Offline also re-declares the
    plain table names over the cache, and with AutoCache ``live.<Table>``
    over the API (module ``api_module``).
    """
    settings = connection.settings
    location, url = settings["CacheLocation"], settings["CacheConnection"]
    auto, offline = bool(settings["AutoCache"]), bool(settings["Offline"])
    if not (location or url or auto or offline):
        return None
    if location and url:
        raise exc.ProgrammingError("Give the cache as CacheLocation (a SQLite file) or as CacheConnection (a database URL), not both.")
    target_url = str(url) if url else sqlite_url(str(location)) if location else default_url(connection.profile.name)
    mode = OFFLINE if offline else AUTO if auto else EXPLICIT
    cache = Cache(connection, target_url, mode, float(settings["CacheTolerance"]))
    if mode == OFFLINE and cache.target.kind == SQLITE and not os.path.exists(cache.target.url.database or ""):
        cache.close()
        raise exc.ProgrammingError(
            f"Offline=true, but there is no cache at {cache.target.url.database}: fill it first "
            f"(apidriver sync --to '{cache.shown}'), or set CacheLocation to where it is."
        )
    db = connection.sqlite
    module: Any = CacheModule(cache)
    db.create_module(CACHE_MODULE, module, use_bestindex_object=True)
    db.execute("ATTACH ':memory:' AS cache")
    names = [s.name for s in cache.specs.values()]
    for name in names:
        db.execute(f'CREATE VIRTUAL TABLE cache."{name}" USING {CACHE_MODULE}()')
    if mode in (AUTO, OFFLINE):
        for name in names:
            db.execute(f'DROP TABLE main."{name}"')
            db.execute(f'CREATE VIRTUAL TABLE main."{name}" USING {CACHE_MODULE}()')
    if mode == AUTO:
        db.execute("ATTACH ':memory:' AS live")
        for name in names:
            db.execute(f'CREATE VIRTUAL TABLE live."{name}" USING {api_module}()')
    if mode == OFFLINE:
        connection.client.request = _offline  # type: ignore[method-assign]  # not one request, whatever asks
    return cache


def _offline(method: str, path: str, **kwargs: Any) -> Any:
    raise exc.NotSupportedError(f"Offline=true: {method} {path} was not sent (the connection reads the cache only).")
