"""One table's sync: read what can have changed from the API, write it, and find what went.

A table whose list comes newest first, that can be read by key and whose
rows settle (:meth:`~.plan.ReplicaPlan.incremental`) is synced incrementally:

1. **head**: a complete scan of the list (:class:`~.scan.Scan`: windows
   that overlap, so no row that exists for the whole read is skipped however
   rows are created or deleted meanwhile), newest first, until an accepted
   window reaches the newest ``created_at`` the last complete sync saw (the
   watermark); on the first sync, the whole list. Embedded children (a job's
   tasks) and derived rows (task files, dependencies) are written with their
   parent.
2. **refresh**: rows not yet settled and not seen in the head are listed by
   the filter that finds open ones (``extras["replica"]["open"]``: status
   waiting, then processing), and those still missing are read by key (a
   404 marks them gone, with their children).
3. **tail**: what the API no longer has (:mod:`.reconcile`).

Other tables (webhooks, the account, the catalogue) are scanned whole: rows
not listed are marked gone. The list order is checked on every page read;
if the API ever breaks it, that sync reads the whole list instead. A table's
watermark moves only when its whole sync succeeded.
"""

from __future__ import annotations

import datetime as dt
import time
from collections.abc import Callable, Mapping, Sequence
from typing import Any

import sqlalchemy as sa

from .. import exceptions as exc
from ..engine.schema import Table
from .clock import ApiClock, Moment
from .reader import ApiReader, Obj, Page
from .reconcile import Reconciler
from .recorder import Recorder
from .scan import OrderCheck
from .schema import REMOVED_AT
from .writer import Key


class TableSync:
    """Syncs the tables of one run, one at a time (``readers(name)``: a new reader for a table)."""

    def __init__(self, recorder: Recorder, clock: ApiClock, readers: Callable[[str], ApiReader], full: bool) -> None:
        self.recorder = recorder
        self.plan = recorder.plan
        self.target = recorder.target
        self.readers = readers
        self.full = full
        self.reconciler = Reconciler(recorder, clock)

    def sync(self, spec: Table) -> None:
        """Sync ``spec`` (read from its own list), counting requests, re-reads and seconds in the report."""
        started = time.monotonic()
        includes = frozenset(c.include for c in spec.columns if c.include)
        reader = self.readers(spec.name)
        try:
            if self.plan.incremental(spec):
                self._sync_incremental(spec, reader, includes)
            else:
                self._sync_whole(spec, reader, includes)
        finally:
            reader.close()
            entry = self.recorder.report.tables[spec.name]
            entry.requests += reader.requests
            entry.rereads += reader.rereads
            entry.seconds += time.monotonic() - started

    def refresh_parents(self) -> None:
        """Parents of children first seen on their own: a new task in an ended job re-opened it."""
        recorder = self.recorder
        for name, keys in recorder.new_children.items():
            spec = self.plan.specs[name]
            todo = [k for k in keys if (k,) not in recorder.seen.get(name, set())]
            if not todo or spec.get is None:
                continue
            includes = frozenset(c.include for c in spec.columns if c.include)
            reader = self.readers(name)
            started = time.monotonic()
            try:
                self._read_by_key(spec, reader, todo, includes)  # (a parent gone meanwhile is found by the next sync)
            finally:
                reader.close()
                entry = recorder.report.tables[name]
                entry.requests += reader.requests
                entry.seconds += time.monotonic() - started
            recorder.check_rejected(spec)

    # -- whole tables -------------------------------------------------------------------------------------

    def _check_account(self, spec: Table, objects: Sequence[Obj]) -> None:
        """A replica holds one account: refuse to mix another one in."""
        if spec.name != self.plan.account_table or len(objects) != 1:
            return
        account = str(spec.key_of(objects[0])[0])
        with self.target.write("checking the account") as conn:
            stored = self.target.meta(conn, "account")
            if stored is None:
                self.target.set_meta(conn, "account", account)
            elif stored != account:
                raise exc.ProgrammingError(
                    f"The replica {self.target.shown} holds the data of account {stored}; this API key belongs to account "
                    f"{account}. Sync each account into its own database."
                )

    def _sync_whole(self, spec: Table, reader: ApiReader, includes: frozenset[str]) -> None:
        """Small tables: scan the list whole, mark the rows it does not list gone."""
        assert spec.list is not None
        recorder = self.recorder
        scan = self.plan.scan(spec, reader, includes)
        pages = list(scan)
        objects = [o for p in pages if p.accepted for o in p.objects]
        self._check_account(spec, objects)
        for page in pages:
            recorder.write_page(spec, page, includes)
        recorder.check_rejected(spec)
        assert scan.started is not None and scan.ended is not None
        with self.target.write(f"recording the sync of {spec.name}") as conn:
            if spec.key:
                gone = self.reconciler.not_listed(conn, spec, recorder.seen.get(spec.name, set()), scan.started.local)
                recorder.cascade_removed(conn, spec, recorder.reasons(conn, spec, gone, scan.ended), scan.ended)
            self.target.save_state(conn, spec.name, None, dt.datetime.now(dt.timezone.utc), True)

    # -- incremental tables -----------------------------------------------------------------------------

    def _sync_incremental(self, spec: Table, reader: ApiReader, includes: frozenset[str]) -> None:
        assert spec.list is not None and spec.list.order is not None and spec.get is not None
        recorder = self.recorder
        created = spec.column(spec.list.order[0])
        with self.target.read(f"reading the state of {spec.name}") as conn:
            state = self.target.state(conn, spec.name)
        watermark = None if self.full else state["watermark"]
        order = OrderCheck()

        def wanted(page: Page) -> bool:
            if watermark is None or order.broken:
                return True
            oldest = created.value(page.objects[-1]) if page.objects else None
            return oldest is None or oldest >= watermark

        # 1. the head, down to the watermark.
        table = self.target.table(spec.name)
        live_count = self.reconciler.live_count(spec)
        scan = self.plan.scan(spec, reader, includes, wanted=wanted, expected=live_count if watermark is None else None)
        for page in scan:
            order.check([created.value(o) for o in page.objects])
            recorder.write_page(spec, page, includes)
        complete = scan.complete
        newest = order.newest
        seen = recorder.seen.setdefault(spec.name, set())
        settled = spec.column(self.plan.settled[spec.name])

        # 2. rows not settled yet, not seen above: read them by key.
        covered = self._covered_by_parent(spec)
        with self.target.read(f"reading {spec.name}") as conn:
            open_rows = conn.execute(
                sa.select(*(table.c[k] for k in spec.key), *(table.c[c] for c in covered))
                .where(table.c[settled.name].is_(None))
                .where(table.c[REMOVED_AT].is_(None))
            ).all()
        todo = [r[0] for r in open_rows if (r[0],) not in seen and not any(v is not None for v in r[1:])]
        if todo and spec.name in self.plan.open:
            # A list of what is still open (e.g. status waiting, processing) answers most of them at once;
            # it need not be complete: what it misses is read by key below.
            column, values = self.plan.open[spec.name]
            parameter = spec.column(column).filter or column
            for value in values:
                for page in reader.pages(spec.list, includes, filters={parameter: value}):
                    recorder.write_page(spec, page, includes)
            todo = [key for key in todo if (key,) not in seen]
        gone = self._read_by_key(spec, reader, todo, includes)

        # 3. what the API no longer has.
        gone.update(self.reconciler.gone(spec, reader, includes, order, seen, set(gone), scan if complete else None))
        recorder.check_rejected(spec)
        with self.target.write(f"recording the sync of {spec.name}") as conn:
            for at, keys in _by_time(gone).items():
                recorder.cascade_removed(conn, spec, recorder.reasons(conn, spec, keys, at), at)
            self.target.save_state(conn, spec.name, newest, dt.datetime.now(dt.timezone.utc), complete)

    def _read_by_key(self, spec: Table, reader: ApiReader, keys: Sequence[Any], includes: frozenset[str]) -> dict[Key, Moment]:
        """Read ``keys`` one by one (concurrently) and write them; returns the keys the API no longer has,
        with when it said so."""
        assert spec.get is not None
        gone: dict[Key, Moment] = {}
        batch: list[Obj] = []
        when: Moment | None = None
        for key, obj, observed in reader.get_many(spec.get, keys, includes):
            if obj is None:
                gone[(key,)] = observed
            else:
                batch.append(obj)
                when = observed if when is None or observed.local < when.local else when
                if len(batch) >= 100:
                    self.recorder.write_page(spec, Page(0, batch, False, when), includes)
                    batch, when = [], None
        if batch and when is not None:
            self.recorder.write_page(spec, Page(0, batch, False, when), includes)
        return gone

    def _covered_by_parent(self, spec: Table) -> list[str]:
        """Columns that name a parent read in this run: such rows are refreshed with their parent."""
        out = []
        written = self.recorder.written
        for name in written:
            parent = self.plan.specs[name]
            for embed in parent.embeds:
                if embed.table == spec.name and parent.name in written and self.plan.incremental(parent):
                    out.append(embed.key)
        return out


def _by_time(gone: Mapping[Key, Moment]) -> dict[Moment, list[Key]]:
    out: dict[Moment, list[Key]] = {}
    for key, at in gone.items():
        out.setdefault(at, []).append(key)
    return out
