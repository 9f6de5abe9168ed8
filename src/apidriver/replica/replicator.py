"""One sync: bring the replica's tables up to date with the API, reading only what can have changed.

:class:`Replicator` takes the tables asked for, with those they travel with
(:class:`~.plan.ReplicaPlan`), and syncs them one by one, the account first
and embedded tables before their parents (:class:`~.table_sync.TableSync`:
incremental where the profile allows, else whole; :mod:`.reconcile` finds
what went). Objects that arrive without a request are written as the API's
state when they arrived (:meth:`Replicator.write_objects`), and a webhook
delivery is a signal: its objects are read again (:meth:`Replicator.refresh`).
What is written, and how rows found gone are marked, is
:class:`~.recorder.Recorder`'s business.

Safe to interrupt: every page is written in its own transaction, and a
table's watermark moves only when its whole sync succeeded, so the next
run re-reads whatever an interrupted one did not finish. Nothing is ever
deleted: rows found gone get ``_removed_at``.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

import sqlalchemy as sa

from ..answers import RequestRecord
from ..engine.schema import Table
from .clock import Moment, clock_of
from .plan import ReplicaPlan
from .reader import ApiReader, Obj
from .recorder import Recorder
from .report import Progress, SyncReport, TableReport
from .table_sync import TableSync
from .target import Target
from .upstream import ApiSource
from .writer import Counts, ReplicaWriter, spec_key


class Replicator:
    """Syncs one API connection's tables into one replica database.

    ``connection``: what the sync reads through (an :class:`apidriver.Connection`, or any
    :class:`~.upstream.ApiSource`). ``secrets``: also replicate the columns the profile marks
    as secrets (webhook signing secrets); without it they are stored as NULL, and a replica
    that holds some from before loses them at its next sync.
    """

    def __init__(
        self,
        connection: ApiSource,
        target: Target,
        observer: Callable[[RequestRecord], None] | None = None,
        progress: Progress | None = None,
        secrets: bool = False,
    ) -> None:
        self.source = connection
        self.profile = connection.profile
        self.target = target
        self.writer = ReplicaWriter(target)
        self.observer = observer
        self.progress = progress
        self.clock = clock_of(connection.root_url)
        self.plan = ReplicaPlan(self.profile, secrets)
        self.specs = self.plan.specs
        self.secrets = secrets
        self._prepared = False

    def resolve(self, tables: Iterable[str] | str | None) -> list[str]:
        """Table names as the profile spells them, with the tables they travel with (:meth:`.ReplicaPlan.resolve`)."""
        return self.plan.resolve(tables)

    def reader(self, name: str) -> ApiReader:
        """A new reader for table ``name``: its requests are observed, and counted in the progress."""
        settings = self.source.settings
        progress = self.progress
        outer = self.observer

        def observe(record: RequestRecord) -> None:
            if outer is not None:
                outer(record)
            if progress is not None:
                progress(name, 0, 1)

        return ApiReader(self.source.client, self.profile.pagination, settings["PageSize"], settings["MaxConcurrency"], observe, self.clock)

    def _recorder(self, written: set[str], report: SyncReport) -> Recorder:
        return Recorder(self.plan, self.target, self.writer, written, report, self.progress)

    # -- running ---------------------------------------------------------------------------------

    def prepare(self) -> None:
        if not self._prepared:
            self.target.prepare(self.profile.name, self.source.root_url)
            if self.plan.secret_columns:
                self.target.forget(self.plan.secret_columns)
            self._prepared = True

    def run(self, tables: Iterable[str] | str | None = None, full: bool = False) -> SyncReport:
        """Sync ``tables`` (None: the account's data); ``full`` reads every list whole."""
        started = time.monotonic()
        names = self.resolve(tables)
        self.prepare()
        report = SyncReport(self.target.shown, {name: TableReport(name) for name in names})
        written = set(names)
        run = TableSync(self._recorder(written, report), self.clock, self.reader, full)
        for spec in self.plan.units(names):
            run.sync(spec)
        run.refresh_parents()
        report.seconds = time.monotonic() - started
        return report

    def write_objects(
        self, table: str, objects: Sequence[Obj], written: set[str] | None = None, observed: Moment | None = None
    ) -> dict[str, Counts]:
        """Write objects that arrived without a request as the API's state at ``observed`` (by default now):
        the rows, children, derived rows. Rows the replica holds from a later observation stay."""
        self.prepare()
        spec = self.specs[table]
        recorder = self._recorder(set(written) if written is not None else set(self.resolve(None)), SyncReport(self.target.shown))
        with self.target.write(f"writing objects of {table}") as conn:
            counts = recorder.write(conn, spec, objects, frozenset(), observed or self.clock.moment())
        return counts

    def refresh(self, table: str, objects: Sequence[Obj], written: set[str] | None = None) -> dict[str, Counts]:
        """Bring the rows of ``objects`` (a webhook delivery's) up to date from the API, by key.

        A delivery is a signal, not a state: its payload may be late or
        replayed (a signature carries no time). Each object is read again and
        the API's answer written (older than what the replica holds: left
        alone). If the API no longer has it, the payload is the last word
        there is: it is written only if it shows more progress than the row
        (a later end: the object's own order), and the row is marked gone.
        """
        self.prepare()
        spec = self.specs[table]
        recorder = self._recorder(set(written) if written is not None else set(self.resolve(None)), SyncReport(self.target.shown))
        reader = self.reader(table)
        out: dict[str, Counts] = {}
        try:
            includes = frozenset(c.include for c in spec.columns if c.include)
            for obj in objects:
                key = spec.key_of(obj)[0]
                found, observed = reader.get(spec.get, key, includes) if spec.get is not None else (obj, self.clock.moment())
                with self.target.write(f"writing objects of {table}") as conn:
                    if found is not None:
                        counts = recorder.write(conn, spec, [found], recorder.unknown(spec, includes), observed)
                    else:
                        counts = {}
                        if self._progressed(conn, spec, obj):
                            counts = recorder.write(conn, spec, [obj], frozenset(), observed, force=True)  # (it carries its includes)
                        recorder.cascade_removed(conn, spec, recorder.reasons(conn, spec, [(key,)], observed), observed)
                for name, c in counts.items():
                    out.setdefault(name, Counts()).add(c)
        finally:
            reader.close()
        return out

    def _progressed(self, conn: sa.Connection, spec: Table, obj: Obj) -> bool:
        """Whether ``obj`` (a payload, of no known time) shows more progress than the replica's row:
        there is none, or it ended later (or ended, where the row had not). Tables without a settled
        column have no such order: never."""
        settled = self.plan.settled.get(spec.name)
        if settled is None:
            return False
        table = self.target.table(spec.name)
        stored = conn.execute(sa.select(table.c[settled]).where(self.writer.key_clause(table, spec, [spec_key(spec, obj)]))).first()
        ended = spec.column(settled).value(obj)
        if stored is None:
            return True
        before = self.target.from_target(spec.column(settled).type, stored[0])
        return ended is not None and (before is None or ended > before)
